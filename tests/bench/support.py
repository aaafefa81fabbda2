"""What every benchmark shares: side-by-side timing, the report (table + JSON), the simulator
as a separate process on loopback, and small subprocess helpers.

Timing rule: whatever is compared is run in the same process run, on the same data,
alternating (A B A B ...) so a burst of load from elsewhere on the machine hits both sides;
the figure is the median of the rounds. No test ever fails on a time: targets are reported
as met or missed by how much.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO / "bench-results"


# -- timing ------------------------------------------------------------------------------------


@dataclass
class Timings:
    wall: list[float] = field(default_factory=list)
    # This process's CPU seconds plus those of any child it waited for (wc, curl): on a busy
    # machine the fairer measure of CPU-bound work done in one process.
    cpu: list[float] = field(default_factory=list)


def alternate(variants: dict[str, Callable[[], Any]], rounds: int) -> dict[str, Timings]:
    """Each variant run in turn `rounds` times (A B C A B C ...), timed."""
    times = {name: Timings() for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            cpu, wall = _cpu(), time.perf_counter()
            run()
            times[name].wall.append(time.perf_counter() - wall)
            times[name].cpu.append(_cpu() - cpu)
    return times


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def median(values: list[float]) -> float:
    return statistics.median(values)


# -- the report --------------------------------------------------------------------------------


@dataclass
class Row:
    measure: str
    value: float
    unit: str
    baseline: float | None = None  # the figure it is compared with, same unit
    baseline_name: str | None = None
    ratio: float | None = None  # how many times better than the baseline (>1 is better)
    target: str | None = None  # e.g. ">= 2x", "<= 100 MB"
    met: bool | None = None
    note: str = ""


@dataclass
class Report:
    """One benchmark's rows; printed as a table and, with --bench, written as JSON."""

    name: str
    full: bool
    rows: list[Row] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)

    def figure(self, measure: str, value: float, unit: str, *, target: str | None = None, met: bool | None = None,
               note: str = "") -> Row:
        row = Row(measure, value, unit, target=target, met=met, note=note)
        self.rows.append(row)
        return row

    def compare(self, measure: str, ours: float, theirs: float, unit: str, baseline_name: str, *,
                higher_is_better: bool, target_ratio: float | None = None, note: str = "") -> Row:
        """Our figure against a baseline measured side by side; ratio > 1 means we are better."""
        ratio = ours / theirs if higher_is_better else theirs / ours
        met = None if target_ratio is None else ratio >= target_ratio
        target = None if target_ratio is None else f">= {target_ratio:g}x"
        if target_ratio is not None and not met:
            note = (note + "; " if note else "") + f"missed by {(1 - ratio / target_ratio) * 100:.0f}%"
        row = Row(measure, ours, unit, theirs, baseline_name, ratio, target, met, note)
        self.rows.append(row)
        return row

    def limit(self, measure: str, value: float, unit: str, limit: float, *, note: str = "") -> Row:
        """A figure with a ceiling (memory, milliseconds)."""
        met = value <= limit
        if not met:
            note = (note + "; " if note else "") + f"over by {value - limit:.1f} {unit}"
        row = Row(measure, value, unit, target=f"<= {limit:g} {unit}", met=met, note=note)
        self.rows.append(row)
        return row

    def table(self) -> str:
        head = ("measure", "ours", "baseline", "ratio", "target", "verdict")
        lines = [head]
        for r in self.rows:
            base = "" if r.baseline is None else f"{_num(r.baseline)} {r.unit} ({r.baseline_name})"
            verdict = "" if r.met is None else ("met" if r.met else "MISSED")
            if r.note:
                verdict = f"{verdict} {r.note}".strip()
            lines.append((r.measure, f"{_num(r.value)} {r.unit}", base,
                          "" if r.ratio is None else f"{r.ratio:.2f}x", r.target or "", verdict))
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        out = [f"== {self.name} ({'full size' if self.full else 'smoke size'}) =="]
        for i, line in enumerate(lines):
            out.append(" | ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
            if i == 0:
                out.append("-+-".join("-" * w for w in widths))
        return "\n".join(out)

    def finish(self) -> None:
        print("\n" + self.table())
        if not self.full:
            return  # a smoke run (inside `make test`) writes nothing
        RESULTS_DIR.mkdir(exist_ok=True)
        body = {"benchmark": self.name, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "machine": machine(), "context": self.context, "rows": [asdict(r) for r in self.rows]}
        (RESULTS_DIR / f"{self.name}.json").write_text(json.dumps(body, indent=2) + "\n")


def _num(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e6:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": sys.platform,
            "load_average": load}


# -- the simulator, served by `batchtui sim` in its own process ---------------------------------


class SimProcess:
    """`batchtui sim --scenario empty` on a loopback port, with its /_sim controls."""

    def __init__(self, proc: subprocess.Popen, urls: dict[str, str]) -> None:
        self.proc = proc
        self.urls = urls  # provider -> base URL
        self.host = urls["openai"].rsplit("/openai/v1", 1)[0]
        self.http = httpx.Client(base_url=self.host, timeout=600)

    def control(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(f"/_sim/{path}", json=body)
        response.raise_for_status()
        return response.json()

    def state(self) -> dict[str, Any]:
        return self.http.get("/_sim/state").json()

    def requests(self, provider: str, workspace: str) -> dict[str, int]:
        """The simulator's request counter of one workspace ("GET batches.list" -> n)."""
        for ws in self.state()["workspaces"]:
            if ws["provider"] == provider and ws["workspace"] == workspace:
                return ws["requests"]
        return {}

    def rss_mb(self) -> float:
        return rss_of(self.proc.pid)


@contextmanager
def sim_process(*, speed: float = 1.0) -> Iterator[SimProcess]:
    proc = subprocess.Popen([sys.executable, "-m", "batchtui", "sim", "--port", "0", "--scenario", "empty",
                             "--speed", str(speed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO)
    urls = {}
    try:
        for _ in range(3):
            provider, url = proc.stdout.readline().split()
            urls[provider] = url
        sim = SimProcess(proc, urls)
        sim.http.get("/_sim/clock").raise_for_status()  # up and answering
        yield sim
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


class ProviderSims:
    """One `batchtui sim` process per provider, used as one: as real providers are three
    separate services, each answering on its own CPU. A benchmark that lists providers
    concurrently against one simulator process would have every provider wait on the others'
    page-building (one Python thread), a cost that only its concurrent side pays.

    Quacks like `SimProcess` for `add_accounts` and the benchmarks: `urls`, `control`, `state`,
    `requests`."""

    def __init__(self, sims: dict[str, SimProcess]) -> None:
        self.sims = sims  # provider -> the simulator serving it (and only it)
        self.urls = {provider: sim.urls[provider] for provider, sim in sims.items()}

    def control(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Sent to the named provider's simulator, or to all three (their answers' lists joined)."""
        provider = body.get("provider")
        if provider is not None:
            return self.sims[provider].control(path, body)
        merged: dict[str, Any] = {}
        for sim in self.sims.values():
            for key, value in sim.control(path, body).items():
                merged[key] = merged.get(key, []) + value if isinstance(value, list) else value
        return merged

    def state(self) -> dict[str, Any]:
        """Every provider's workspaces, each from its own simulator (the clock is OpenAI's)."""
        states = {provider: sim.state() for provider, sim in self.sims.items()}
        workspaces = [ws for provider, state in states.items() for ws in state["workspaces"]
                      if ws["provider"] == provider]
        return {"now": states["openai"]["now"], "workspaces": workspaces}

    def requests(self, provider: str, workspace: str) -> dict[str, int]:
        return self.sims[provider].requests(provider, workspace)


@contextmanager
def provider_sims(*, speed: float = 1.0) -> Iterator[ProviderSims]:
    """Three simulators on loopback, one per provider (see `ProviderSims`)."""
    with ExitStack() as stack:
        yield ProviderSims({provider: stack.enter_context(sim_process(speed=speed))
                            for provider in ("openai", "anthropic", "gemini")})


def add_accounts(sim: SimProcess | ProviderSims, env: dict[str, str], *, per_provider: int, batches: int,
                 active: int) -> list[str]:
    """`per_provider` accounts of each provider in the simulator (`batches` each, the newest
    `active` running) and in BATCHTUI_HOME's config, keys in the test file keyring; their names."""
    names = []
    for index in range(per_provider):
        for provider in ("openai", "anthropic", "gemini"):
            name, key = f"{provider}-{index}", f"bench-key-{provider}-{index}"
            sim.control("populate", {"provider": provider, "key": key, "batches": batches, "active": active})
            result = subprocess.run([sys.executable, "-m", "batchtui", "accounts", "add", name, "--provider", provider,
                                     "--base-url", sim.urls[provider], "--key-stdin", "--no-check"],
                                    input=key + "\n", env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stderr
            names.append(name)
    return names


def cli_env(home: Path) -> dict[str, str]:
    """A benchmark's BATCHTUI_HOME with keys in the test file keyring (tests/support)."""
    return child_env(BATCHTUI_HOME=str(home / "home"), PYTHON_KEYRING_BACKEND="support.filekeyring.FileKeyring",
                     BATCHTUI_TEST_KEYRING=str(home / "keyring.json"))


# -- processes ---------------------------------------------------------------------------------


def rss_of(pid: int) -> float:
    """Resident memory of a live process in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_json(args: list[str], *, env: dict[str, str] | None = None, timeout: float = 900) -> dict[str, Any]:
    """Run a helper script that prints one JSON object as its last line; that object."""
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO,
                            env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a benchmark subprocess: no real keys, the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "tests")])
    env.update(extra)
    return env
