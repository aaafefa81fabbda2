"""`--bench`: run the benchmarks at full size and write bench-results/<name>.json.

Without it (inside `make test`) each benchmark runs once at a tiny size, as a smoke test
that still checks every answer (totals, bytes, request counts) but never a time.
"""

from __future__ import annotations

import re

import pytest

from bench.support import Report


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--bench", action="store_true", default=False,
                     help="run tests/bench at full size, print the tables and write bench-results/*.json")


@pytest.fixture(scope="session")
def full(pytestconfig: pytest.Config) -> bool:
    return bool(pytestconfig.getoption("--bench", default=False))


@pytest.fixture
def report(request: pytest.FixtureRequest, full: bool):
    """This test's report, named after it (test_results_pipeline[anthropic] -> results_pipeline-anthropic)."""
    name = re.sub(r"^test_", "", request.node.name)
    name = re.sub(r"\[(.*)\]$", r"-\1", name)
    result = Report(name, full)
    yield result
    result.finish()
