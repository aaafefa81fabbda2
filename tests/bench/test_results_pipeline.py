"""The results pipeline on a big results file served by `batchtui sim` on loopback, per
provider format (OpenAI output + error files, Anthropic results, Gemini responses file):

- fetch, against `curl -s -o` of the same URLs with the same headers, in two rows: the
  download (`download_results`, the first stage of `fetch_results`: the files on disk under
  their final names, complete, sha256-hashed, fsynced and recorded in the ledger; the figure
  the target is about), and the whole `fetch_results` (that, then the analysis and its ledger
  records); each in a fresh process, timed inside, alternating with curl;
- analysis of the fetched files (outcomes, usage per model, cost) against a plain
  `json.loads` loop computing the same totals, and against `wc -l` on the files (the I/O floor);
- Anthropic only: our streaming analysis against the official SDK iterating
  `messages.batches.results()`, both reading the same results over loopback;
- the peak RSS of the fetch process at 20 MB and 200 MB (it must not grow with the file).

Every run also checks the answers: curl's bytes hash like ours, and every baseline's totals
equal ours.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from batchtui.core.accounts import Account
from batchtui.core.config import Settings
from batchtui.core.engine import Engine
from batchtui.core.fetch import analyse_results
from batchtui.core.ledger import Ledger
from batchtui.core.models import Provider
from batchtui.core.paths import Paths
from batchtui.core.pricing import PriceTable
from batchtui.core.providers import make_client
from batchtui.core.results import analyze_files
from bench.support import alternate, child_env, median, run_json, sim_process
from bench.totals import anthropic_sdk_totals, our_totals, stdlib_totals

PROVIDERS = ("openai", "anthropic", "gemini")
# (label, result lines): the simulator's lines are ~1-3 kB, 2 kB on average, ~1% errors.
FULL_SIZES = (("20 MB", 10_000), ("200 MB", 100_000))
SMOKE_SIZES = (("smoke", 120),)
FETCH = ["-m", "bench.fetch_once"]  # a module: tests/bench must not come first on sys.path
MB = 1e6


@pytest.fixture(scope="module")
def sim():
    with sim_process() as server:
        yield server


def _download_requests(provider: str, base_url: str, key: str, refs: list[str]) -> list[tuple[str, dict[str, str]]]:
    """The URLs and headers our client downloads with, for curl to fetch the same bytes."""
    if provider == "openai":
        headers = {"Authorization": f"Bearer {key}", "Accept": "application/binary"}
        return [(f"{base_url}/files/{ref}/content", headers) for ref in refs]
    if provider == "anthropic":
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01", "accept": "application/binary",
                   "accept-encoding": "identity"}
        return [(ref, headers) for ref in refs]  # results_url, on the simulator's own host
    return [(f"{base_url}/download/v1beta/{ref}:download?alt=media", {"x-goog-api-key": key}) for ref in refs]


def _curl(curl: str, downloads: list[tuple[str, dict[str, str]]], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [curl, "-s", "--fail"]
    paths = []
    for index, (url, headers) in enumerate(downloads):
        path = out_dir / f"file{index}.jsonl"
        for name, value in headers.items():
            args += ["-H", f"{name}: {value}"]
        args += ["-o", str(path), url]
        paths.append(path)
    subprocess.run(args, check=True, timeout=600)
    return paths


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _engine(home: Path, account: Account, key: str) -> Engine:
    home.mkdir(parents=True, exist_ok=True)
    settings = Settings().model_copy(update={"accounts": [account]})
    paths = Paths(config_dir=home, data_dir=home)
    return Engine(settings=settings, paths=paths, ledger=Ledger.open(paths.ledger_file),
                  prices=PriceTable.load(settings.prices), key_lookup=lambda _: key)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_results_pipeline(provider, sim, full, report, tmp_path):
    sizes = FULL_SIZES if full else SMOKE_SIZES
    rounds = 3 if full else 1
    analysis_rounds = 5 if full else 1
    curl = shutil.which("curl")
    report.context.update(provider=provider, rounds=rounds, statistic="median of alternating rounds",
                          curl=curl or "not installed")
    prices = PriceTable.load({})
    peak_rss: dict[str, float] = {}
    for label, lines in sizes:
        key = f"bench-{provider}-{lines}"
        batch_id = sim.control("bulk", {"provider": provider, "key": key, "requests": lines})["batch_id"]
        base_url = sim.urls[provider]
        account = Account(name="bench", provider=Provider(provider), base_url=base_url)

        async def refs() -> list[str]:
            client = make_client(account, key)
            try:
                return [f.ref for f in (await client.get_batch(batch_id)).result_files]
            finally:
                await client.aclose()

        downloads = _download_requests(provider, base_url, key, asyncio.run(refs()))

        # -- fetch: ours (a fresh process per round, each stage) and curl, alternating -------
        runs: dict[str, list[dict]] = {"download": [], "fetch": []}

        def ours(stage: str):
            return lambda: runs[stage].append(run_json(
                [*FETCH, provider, base_url, key, batch_id, str(tmp_path / "ours"), stage], env=child_env()))

        variants = {"download": ours("download"), "fetch": ours("fetch")}
        if curl:
            variants["curl"] = lambda: _curl(curl, downloads, tmp_path / "curl")
        times = alternate(variants, rounds)
        last = runs["fetch"][-1]
        size = last["bytes"]
        assert last["lines"] == lines and sum(last["outcomes"].values()) == lines
        for run in runs["download"] + runs["fetch"]:
            assert run["sha256"] == last["sha256"] and run["file_lines"] == lines and all(run["recorded"])
        peak_rss[label] = max(run["peak_rss_mb"] for run in runs["download"] + runs["fetch"])
        note = f"{size / MB:.0f} MB, {len(downloads)} file(s)"
        rows = (("download", f"fetch {label}: on disk, hashed, recorded (MB/s)", 0.8, note),
                ("fetch", f"fetch {label}: + analysis, all of fetch_results (MB/s)", None, "the same, then the analysis"))
        if curl:
            curl_paths = sorted((tmp_path / "curl").glob("file*.jsonl"))
            assert [_sha256(p) for p in curl_paths] == last["sha256"], "curl and fetch_results got different bytes"
            curl_mbps = size / MB / median(times["curl"].wall)
            for stage, measure, target, row_note in rows:
                ours_mbps = size / MB / median([run["seconds"] for run in runs[stage]])  # timed inside
                report.compare(measure, ours_mbps, curl_mbps, "MB/s", "curl -s -o", higher_is_better=True,
                               target_ratio=target, note=row_note)
        else:
            for stage, measure, _, _ in rows:
                report.figure(measure, size / MB / median([run["seconds"] for run in runs[stage]]), "MB/s",
                              note="curl not installed: no comparison")

        # -- analysis of the fetched files: ours, a json.loads loop, wc -l ----------------
        paths = [Path(p) for p in last["files"]]
        parser = make_client(account, key).parse_result_line
        answers: dict[str, tuple] = {}

        def ours_analysis():
            summary = analyze_files(paths, parser)
            answers["ours"] = our_totals(summary), prices.cost(Provider(provider), summary.usage_by_model)

        def stdlib_analysis():
            totals = stdlib_totals(paths, provider)
            usage = {model: _usage(counts) for model, counts in totals[1].items()}
            answers["stdlib"] = totals, prices.cost(Provider(provider), usage)

        analysis = {"ours": ours_analysis, "stdlib": stdlib_analysis}
        if shutil.which("wc"):
            analysis["wc"] = lambda: subprocess.run(["wc", "-l", *map(str, paths)], check=True, capture_output=True)
        times = alternate(analysis, analysis_rounds)
        assert answers["ours"] == answers["stdlib"], "the json.loads loop and the analyzer disagree"
        assert answers["ours"][0][0] == last["outcomes"]
        # CPU time: all three run in this process (or its child) on a file in the page cache.
        ours_mbps = size / MB / median(times["ours"].cpu)
        report.compare(f"analysis {label} (MB/s of CPU)", ours_mbps, size / MB / median(times["stdlib"].cpu), "MB/s",
                       "json.loads loop", higher_is_better=True, target_ratio=2.0)
        if "wc" in times:
            report.compare(f"analysis {label} vs I/O floor (MB/s of CPU)", ours_mbps,
                           size / MB / median(times["wc"].cpu), "MB/s", "wc -l", higher_is_better=True,
                           note="the share of the I/O floor we reach")

        # -- Anthropic: streaming analysis against the official SDK, both over loopback ----
        if provider == "anthropic":
            engine = _engine(tmp_path / "stream-home", account, key)

            async def stream():
                batch = await engine.client(account).get_batch(batch_id)
                summary = await analyse_results(engine, account, batch, record=False)
                answers["stream"] = our_totals(summary)
                await engine.aclose()

            def sdk():
                answers["sdk"] = anthropic_sdk_totals(base_url, key, batch_id)

            times = alternate({"ours": lambda: asyncio.run(stream()), "sdk": sdk}, 2 if full else 1)
            engine.close_ledger()
            assert answers["stream"] == answers["sdk"] == answers["ours"][0]
            report.compare(f"analysis {label} over loopback (MB/s)", size / MB / median(times["ours"].wall),
                           size / MB / median(times["sdk"].wall), "MB/s", "anthropic SDK results()",
                           higher_is_better=True, target_ratio=3.0,
                           note="download + analysis, no file written")

    # -- memory: the whole fetch + analysis, a fresh process per run ------------------------
    for label, rss in peak_rss.items():
        report.limit(f"peak RSS, fetch + analysis {label}", rss, "MB", 100)
    if len(peak_rss) == 2:
        small, large = peak_rss.values()
        report.figure("RSS growth 20 MB -> 200 MB", large - small, "MB", target="flat (< 10 MB)",
                      met=large - small < 10)


def _usage(counts: tuple[int, ...]):
    from batchtui.core.results import usage_from_counts

    return usage_from_counts(counts)
