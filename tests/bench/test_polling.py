"""Polling efficiency: HTTP requests per steady-state poll cycle, counted by the simulator's
per-workspace request counter (and, per request, by a recording transport).

Per provider, two accounts at each size (10 and 10,000 batches; 250 in the smoke run):
- "mixed": mostly terminal, three active batches among the newest and one older active batch
  buried under newer finished ones (so the listing cannot reach it);
- "idle": every batch terminal.

The Poller runs as the dashboard runs it (auto-analysis on). Targets, asserted in the smoke
run as well: a steady cycle costs at most one list request plus one request per active batch;
an idle account one list request per slow interval; no terminal batch is ever fetched again;
the listing stops within its first page; none of it grows with the number of terminal batches.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter

import httpx
import pytest

from batchtui.core.accounts import Account
from batchtui.core.config import Settings
from batchtui.core.engine import Engine
from batchtui.core.ledger import Ledger
from batchtui.core.models import Provider
from batchtui.core.paths import Paths
from batchtui.core.polling import Poller
from batchtui.core.pricing import PriceTable
from batchtui.sim import Simulator
from batchtui.sim.bulk import seed_many
from batchtui.sim.world import Plan

PROVIDERS = ("openai", "anthropic", "gemini")
ACTIVE = 3  # the newest active batches of a mixed account (plus one buried)
STEADY_CYCLES = 3
HOUR = 3600.0


class RecordingTransport(httpx.AsyncBaseTransport):
    """Every request the engine sends: (key, method, path, response bytes)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.log: list[tuple[str, str, str, int]] = []
        self.simulator_cpu = 0.0  # the in-process simulator's share of this process's CPU

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        start = time.process_time()
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.simulator_cpu += time.process_time() - start
        key = next((v for k, v in request.headers.items() if k in ("authorization", "x-api-key", "x-goog-api-key")), "")
        self.log.append((key.removeprefix("Bearer "), request.method, request.url.path, len(body)))
        return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)


def _populate(sim: Simulator, provider: str, name: str, key: str, n: int, mixed: bool) -> set[str]:
    """n batches in a fresh workspace; the ids of the active ones."""
    from batchtui.sim import anthropic, gemini, openai

    seeder = {"openai": openai.seed_batch, "anthropic": anthropic.seed_batch, "gemini": gemini.seed_batch}[provider]
    ws = sim.world.add_workspace(provider, name, key)
    if not mixed:
        seed_many(sim.world, ws, batches=n, active=0)
        return set()
    now = sim.world.now()
    # One long-running batch, then a newer one that already finished: the listing stops at the
    # finished one, so the running one below it needs a request of its own.
    buried = seeder(sim.world, ws, n_requests=3, model=_model(provider), created_at=now - 2 * HOUR,
                    plan=Plan(duration=12 * HOUR), custom_id_prefix="buried")
    seeder(sim.world, ws, n_requests=3, model=_model(provider), created_at=now - HOUR, plan=Plan(duration=60),
           custom_id_prefix="done")
    made = seed_many(sim.world, ws, batches=n - 2, active=ACTIVE)
    return {buried.id} | {b.id for b in made[-ACTIVE:]}


def _model(provider: str) -> str:
    from batchtui.sim.bulk import DEFAULT_MODELS

    return DEFAULT_MODELS[provider]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_polling(provider, full, report, tmp_path):
    sizes = (10, 10_000) if full else (10, 250)
    sim = Simulator(scenario=None, manual_clock=True)
    accounts, active_ids, keys = [], {}, {}
    for n in sizes:
        for kind in ("mixed", "idle"):
            name, key = f"{kind}-{n}", f"key-{provider}-{kind}-{n}"
            active_ids[name] = _populate(sim, provider, name, key, n, mixed=kind == "mixed")
            accounts.append(Account(name=name, provider=Provider(provider), base_url=sim.base_url(provider)))
            keys[name] = key
    recorder = RecordingTransport(sim.transport())
    home = tmp_path / "home"
    home.mkdir()
    settings = Settings().model_copy(update={"accounts": accounts})
    paths = Paths(config_dir=home, data_dir=home)
    engine = Engine(settings=settings, paths=paths, ledger=Ledger.open(paths.ledger_file),
                    prices=PriceTable.load(settings.prices), transport=recorder,
                    key_lookup=lambda account: keys[account.name])
    report.context.update(provider=provider, sizes=list(sizes), active=ACTIVE + 1, steady_cycles=STEADY_CYCLES)
    steady: dict[str, dict] = {}

    async def run() -> None:
        poller = Poller(engine, lambda _update: None)  # as the dashboard runs it: auto-analysis on
        for account in accounts:
            ws = sim.world.workspace(provider, account.name)
            cold_cpu = time.process_time()
            await poller.poll_once(account)
            cold_cpu = time.process_time() - cold_cpu
            cold = sum(ws.requests.values())
            worst: Counter = Counter()
            for _ in range(STEADY_CYCLES):
                sim.clock.advance(60)
                ws.requests.clear()
                logged, priced = len(recorder.log), _analysed(paths.ledger_file, account.name)
                cpu, simulated = time.process_time(), recorder.simulator_cpu
                update = await poller.poll_once(account)
                cpu = time.process_time() - cpu - (recorder.simulator_cpu - simulated)
                requests = recorder.log[logged:]
                # Auto-analysis prices one finished batch per cycle from its results: those
                # downloads are counted apart from the polling itself.
                analysed = _analysed(paths.ledger_file, account.name) - priced
                terminal = {b.id for b in poller.known(account.name).values() if b.is_terminal}
                by_id = [_last(path) for _, method, path, _ in requests if method == "GET" and _is_by_id(path)]
                results = sum(1 for _, _, path, _ in requests if _is_results(path)) + sum(
                    1 for bid in by_id if _member(bid, analysed))
                cycle = Counter(
                    requests=sum(ws.requests.values()) - results,
                    results=results,
                    lists=sum(1 for _, method, path, _ in requests if method == "GET" and _is_list(path)),
                    terminal_refetched=sum(1 for bid in by_id if _member(bid, terminal) and not _member(bid, analysed)),
                    bytes=sum(size for _, _, path, size in requests if not _is_results(path)),
                )
                for field, value in cycle.items():
                    worst[field] = max(worst[field], value)
                worst["cpu_ms"] = max(worst["cpu_ms"], cpu * 1000)
            steady[account.name] = {**worst, "cold": cold, "cold_cpu_s": cold_cpu,
                                    "interval": update.status.next_poll_in, "active": len(active_ids[account.name])}
        await engine.aclose()

    asyncio.run(run())
    engine.close_ledger()

    for account in accounts:
        s = steady[account.name]
        kind, n = account.name.split("-")
        label = f"{kind} account, {int(n):,} batches"
        report.figure(f"cold first poll, {label} (requests)", s["cold"], "requests",
                      note=f"{s['cold_cpu_s']:.2f} s CPU")
        if kind == "mixed":
            report.limit(f"steady cycle, {label} (requests)", s["requests"], "requests", 1 + s["active"],
                         note=f"{s['active']} active: 1 list + 1 per active at most")
            assert s["requests"] <= 1 + s["active"], s
        else:
            report.limit(f"steady cycle, {label} (requests)", s["requests"], "requests", 1,
                         note=f"every {s['interval']:.0f} s (the slow interval)")
            assert s["requests"] == 1 and s["interval"] == account.poll_idle_seconds, s
        report.limit(f"steady cycle, {label} (list requests)", s["lists"], "requests", 1)
        report.limit(f"steady cycle, {label} (terminal batches re-fetched)", s["terminal_refetched"], "batches", 0)
        report.figure(f"steady cycle, {label} (bytes received, polling)", s["bytes"] / 1000, "kB")
        report.limit(f"steady cycle, {label} (results downloads, auto-analysis)", s["results"], "requests", 1,
                     note="one unpriced finished batch per cycle, by design")
        report.figure(f"steady cycle, {label} (engine CPU, simulator excluded)", s["cpu_ms"], "ms")
        assert s["lists"] <= 1 and s["terminal_refetched"] == 0 and s["results"] <= 1, s
    for kind in ("mixed", "idle"):
        small, large = (steady[f"{kind}-{n}"]["requests"] for n in sizes)
        report.figure(f"steady requests, {kind}: {sizes[0]:,} vs {sizes[1]:,} batches", large - small, "requests",
                      target="no growth (0)", met=large == small)
        assert large == small


def _analysed(ledger_file, account: str) -> set[str]:
    """The batches the ledger holds an analysis of (read beside the engine's connection)."""
    with sqlite3.connect(ledger_file) as conn:
        return {row[0] for row in conn.execute("SELECT batch_id FROM analyses WHERE account = ?", (account,))}


def _last(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _member(path_id: str, ids: set[str]) -> bool:
    # Paths carry an id's last segment (Gemini's batches/ID as ID).
    return path_id in {_last(i) for i in ids}


def _is_list(path: str) -> bool:
    return path.endswith(("/v1/batches", "/messages/batches", "/v1beta/batches"))


def _is_results(path: str) -> bool:
    return path.endswith(("/results", "/content")) or path.endswith(":download")


def _is_by_id(path: str) -> bool:
    return not _is_list(path) and not _is_results(path) and "/batches/" in path
