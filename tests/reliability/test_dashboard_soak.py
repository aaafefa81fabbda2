"""Issue 6, item 1: the dashboard under a fault soak.

The real app (headless, through Pilot) watches the demo scenario while every account's
simulated provider answers 20% of requests with a fault: 429 with retry-after, 500, 503,
529 (Anthropic), a connection dropped mid-response, or a slow answer. Over 100 simulated
minutes batches appear, run and end, and a few more are submitted through the engine. Then
the faults stop and the dashboard settles. It must not crash, must end with every batch the
simulator holds showing its true status and counts, must have shown each account's trouble on
the health strip and shown it recover, must never announce one transition twice, and must
not grow in memory.

Time is the simulator's: each step advances its hand-driven clock, wakes every poll loop and
waits for each account's next poll to be handled (message hook), never for a timer. The
transport's retry back-off is recorded instead of slept.
"""

from __future__ import annotations

import gc
import json
import re
import sys
import time
from collections import Counter, defaultdict

from textual.worker import Worker, WorkerState

from batchtui.core import fetch
from batchtui.core.errors import BatchtuiError
from batchtui.core.polling import Health
from batchtui.core.providers import make_client
from batchtui.core.submit import submit_file
from batchtui.core.transport import RetryPolicy
from batchtui.demo import demo_engine
from batchtui.sim.faults import ALL_KINDS, FaultConfig
from batchtui.sim.scenario import DEMO_ACCOUNTS
from batchtui.ui.app import make_app
from batchtui.ui.messages import BatchesUpdated
from batchtui.ui.widgets.batch_table import BatchTable
from batchtui.ui.widgets.health import LABELS, HealthStrip
from reliability.dashboard_support import Messages, capture_toasts, rss_mib
from reliability.figures import record
from reliability.harness import RecordedSleep

START = 1_767_268_800.0  # 2026-01-01 12:00 UTC
SIZE = (160, 45)
# demo_engine polls every 60/speed real seconds: at this speed, once in ~17 real hours. The only
# polls are the ones each step asks for, plus whatever back-off the loops schedule themselves.
NO_TIMER_SPEED = 0.001
STEP = 60.0  # simulated seconds per step
FAULT_STEPS = 100  # simulated minutes with faults on
WARM_STEP = FAULT_STEPS // 2  # memory is compared from here (the scenario's short batches have ended)
MAX_GROWTH_MIB = 10.0  # resident memory, second half against first (it climbs while the early
MAX_BLOCK_GROWTH = 1.03  # batches end and are analysed, the simulator's result files included)
FAULT_RATE = 0.2
# Long enough that the poll loop never wakes itself on a rate limit during a step (it waits
# this many real seconds); the transport's inline retry waits it out in simulated time.
RETRY_AFTER = 30.0
# One retry: most faults are absorbed inline, and ~3% of requests still fail a whole poll, so
# every account's health has something to show.
POLICY = RetryPolicy(max_retries=1, base_delay=0.0, max_delay=0.0)
SETTLE_CYCLES = 30  # at most; settling ends at the first cycle in which nothing changed
WORKING = [a for a in DEMO_ACCOUNTS if not a.reject_key]
REFUSED = [a for a in DEMO_ACCOUNTS if a.reject_key]
KEYS = {a.name: a.key for a in DEMO_ACCOUNTS}
# step -> (account, model or None): batches submitted through the engine while faults are on.
SUBMISSIONS = {4: ("acme-prod", None), 10: ("claude-team", None), 16: ("gemini-lab", "gemini-2.5-flash"),
               22: ("acme-research", None), 28: ("claude-team", None), 34: ("acme-prod", None)}
NOTICE = re.compile(r"^(?P<account>[\w.-]+): batch (?P<id>\S+) "
                    r"(?:now has (?P<failed>[\d,]+) failed requests|(?P<status>[a-z_]+)(?:, [\d,]+ failed)?)$")


def request_lines(provider: str, tag: str, n: int = 12) -> list[dict]:
    if provider == "anthropic":
        return [{"custom_id": f"{tag}-{i}", "params": {"model": "claude-haiku-4-5", "max_tokens": 64,
                                                        "messages": [{"role": "user", "content": f"q{i}"}]}}
                for i in range(n)]
    if provider == "gemini":
        return [{"key": f"{tag}-{i}", "request": {"contents": [{"role": "user", "parts": [{"text": f"q{i}"}]}]}}
                for i in range(n)]
    return [{"custom_id": f"{tag}-{i}", "method": "POST", "url": "/v1/chat/completions",
             "body": {"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": f"q{i}"}]}}
            for i in range(n)]


class Soak:
    """What the message hook sees, folded into what the assertions need."""

    def __init__(self) -> None:
        self.handled: dict[str, int] = defaultdict(int)  # account -> newest poll cycle handled
        self.polls = 0
        self.failed_polls: Counter[str] = Counter()  # health -> polls that ended in it
        self.seen_active: set[tuple[str, str]] = set()  # batches the app was told are running
        self.worker_errors: list[str] = []
        self.changed_per_poll: list[int] = []
        self.messages = Messages(self.on_message, keep=False)

    def on_message(self, message) -> None:
        if isinstance(message, BatchesUpdated):
            for update in message.updates:
                self.polls += 1
                self.changed_per_poll.append(len(update.changed))
                self.handled[update.account] = max(self.handled[update.account], update.cycle)
                if update.status.health is not Health.OK:
                    self.failed_polls[update.status.health.value] += 1
                self.seen_active.update(b.key for b in update.changed if not b.is_terminal)
        elif isinstance(message, Worker.StateChanged) and message.state is WorkerState.ERROR:
            self.worker_errors.append(f"{message.worker.name}: {message.worker.error!r}")

    async def cycle(self, app, accounts: list[str]) -> None:
        """Wake every poll loop and wait until each account's next poll has been handled: a poll
        that started after this call, so it saw the clock as it is now."""
        wanted = {name: app.poller.state(name).cycle + 1 for name in accounts}
        app.poll_now()
        await self.messages.until(lambda: all(self.handled[n] >= c for n, c in wanted.items()))


def allocated_blocks() -> int:
    """Python's live allocated blocks after a collection: unlike RSS, it gives back what is freed."""
    gc.collect()
    return sys.getallocatedblocks()


def strip_line(app) -> str:
    return app.screen.query_one(HealthStrip).content.plain


def check_strip_shows(app, names: list[str]) -> dict[str, Health]:
    """The health strip says what the app knows about each account; returns what it says."""
    shown = strip_line(app)
    for name in names:
        assert f"{name} {LABELS[app.account_statuses[name].health]}" in shown, (name, shown)
    return {name: app.account_statuses[name].health for name in names}


async def test_dashboard_soak_under_provider_faults(tmp_path, monkeypatch):
    toasts = capture_toasts(monkeypatch)
    engine, sim = demo_engine(tmp_path / "home", speed=NO_TIMER_SPEED, seed=6, start=START, manual_clock=True)
    sleeps = RecordedSleep()
    engine.policy, engine.sleep = POLICY, sleeps
    for ws in sim.world.by_name.values():
        ws.faults = FaultConfig(rate=FAULT_RATE, kinds=ALL_KINDS, retry_after=RETRY_AFTER, slow_seconds=0.01,
                                reject_key=ws.faults.reject_key)
    names = [a.name for a in DEMO_ACCOUNTS]
    working = [a.name for a in WORKING]
    soak = Soak()
    app = make_app(engine, clock=sim.clock.datetime, demo=True)
    submitted, submit_failures, rss = [], [], []
    on_strip: dict[str, set[Health]] = defaultdict(set)  # what the health strip showed at each step
    started = time.perf_counter()
    try:
        async with app.run_test(size=SIZE, message_hook=soak.messages) as pilot:
            await soak.messages.until(lambda: all(soak.handled[n] >= 1 for n in names))
            for step in range(FAULT_STEPS):
                sim.clock.advance(STEP)
                if step in SUBMISSIONS:
                    name, model = SUBMISSIONS[step]
                    account = engine.settings.account(name)
                    path = tmp_path / f"submit-{step}.jsonl"
                    path.write_text("".join(json.dumps(line) + "\n"
                                            for line in request_lines(account.provider.value, f"s{step}")))
                    try:
                        submitted.append((await submit_file(engine, account, path, model=model)).batch.key)
                    except BatchtuiError as exc:  # a fault hit the create: said, never a crash
                        submit_failures.append(type(exc).__name__)
                await soak.cycle(app, names)
                await pilot.pause()
                for name, health in check_strip_shows(app, names).items():
                    on_strip[name].add(health)
                rss.append(rss_mib())
                if step == WARM_STEP:
                    blocks_warm = allocated_blocks()
                assert app.is_running and not soak.worker_errors

            served = sum(sum(ws.requests.values()) for ws in sim.world.by_name.values() if not ws.faults.reject_key)
            for ws in sim.world.by_name.values():
                ws.faults.rate = 0.0  # faults stop; what was injected stays counted
            for _ in range(SETTLE_CYCLES):
                before = soak.polls
                await soak.cycle(app, names)
                quiet = not any(soak.changed_per_poll[before:])
                if quiet and all(app.account_statuses[n].health is Health.OK for n in working):
                    break
            await pilot.pause()
            rss_end, blocks_end = rss_mib(), allocated_blocks()
            check_strip_shows(app, names)
            final_strip = strip_line(app)
            # Ended batches whose usage is only in their results (Anthropic, Gemini) were all
            # priced from them, including those a fault interrupted and those older than
            # the listing reaches after the first poll.
            unpriced = [k for k, b in app.batches.items() if b.is_terminal and b.result_files and b.usage is None
                        and engine.ledger.analysis(*k) is None]
            assert unpriced == []
            checked = await compare_with_simulator(app, engine, sim)
            assert app.is_running and not soak.worker_errors
            table = app.screen.query_one(BatchTable)
            assert set(table.shown) == set(app.batches)
            for key, batch in app.batches.items():  # the table shows what the app knows
                assert table.cell(key, "status").plain == batch.status.value.replace("_", " ")
    finally:
        await engine.aclose()
        engine.close_ledger()
    wall = time.perf_counter() - started

    # Each working account's trouble showed, and it recovered; the refused key stayed refused.
    for name in working:
        trouble = on_strip[name] - {Health.OK, Health.PENDING}
        assert trouble, f"{name} never showed a fault on the health strip"
        assert app.account_statuses[name].health is Health.OK
    for account in REFUSED:
        assert app.account_statuses[account.name].health is Health.AUTH_ERROR
    assert all(f"{name} ok" in final_strip for name in working)

    ended, failures = notices(toasts)
    # Exactly one "ended" toast per batch the app saw running that has ended since.
    ends = Counter(ended)
    assert all(n == 1 for n in ends.values()), [k for k, n in ends.items() if n > 1]
    expected = {key for key in soak.seen_active if app.batches[key].is_terminal}
    assert set(ends) == expected
    assert expected, "the soak saw batches end"
    # "More failures" toasts: never the same count twice for a batch, always rising.
    for key, counts in failures.items():
        assert counts == sorted(set(counts)), (key, counts)

    injected = Counter()
    for ws in sim.world.by_name.values():
        injected.update(ws.faults.injected)
    for kind in ("429", "500", "503", "529", "drop", "slow"):
        assert injected[kind] > 0, f"no {kind} fault was injected"
    assert RETRY_AFTER in sleeps.delays  # retry-after was honoured (in simulated time)
    assert len(submitted) >= 3
    assert set(submitted) <= set(app.batches)
    growth = rss_end - rss[WARM_STEP]
    assert growth < MAX_GROWTH_MIB, f"resident memory grew {growth:.1f} MiB after warm-up: {rss}"
    assert blocks_end < blocks_warm * MAX_BLOCK_GROWTH, (blocks_warm, blocks_end)

    record("dashboard_soak",
           simulated_minutes=round(FAULT_STEPS * STEP / 60, 1), fault_rate=FAULT_RATE,
           requests_served=served, faults_injected=dict(sorted(injected.items())),
           faults_total=sum(injected.values()), fault_share=round(sum(injected.values()) / served, 3),
           retries_waited_in_simulated_time=len(sleeps.delays), polls=soak.polls,
           polls_ending_in=dict(soak.failed_polls),
           health_shown={n: sorted(h.value for h in on_strip[n]) for n in names},
           batches_checked=checked, batches_submitted=len(submitted), submits_refused_by_faults=len(submit_failures),
           ended_notices=len(ended), failure_notices=sum(len(c) for c in failures.values()),
           duplicate_notices=0, toasts=len(toasts), worker_errors=0,
           rss_mib_first_step=round(rss[0], 1), rss_mib_half_way=round(rss[WARM_STEP], 1),
           rss_mib_end=round(rss_end, 1), allocated_blocks_half_way=blocks_warm, allocated_blocks_end=blocks_end,
           wall_seconds=round(wall, 1))


def notices(toasts) -> tuple[list[tuple[str, str]], dict[tuple[str, str], list[int]]]:
    """The batch notices among the toasts (one per toast, or one per line of a collapsed one)."""
    ended: list[tuple[str, str]] = []
    failures: dict[tuple[str, str], list[int]] = defaultdict(list)
    for toast in toasts:
        if toast.title not in ("Batch ended", "More failures") and not toast.title.endswith("batches changed"):
            continue
        for line in toast.message.splitlines():
            match = NOTICE.match(line)
            assert match, line
            key = (match["account"], match["id"])
            if match["failed"]:
                failures[key].append(int(match["failed"].replace(",", "")))
            else:
                ended.append(key)
    return ended, failures


async def compare_with_simulator(app, engine, sim) -> int:
    """Every batch each working account's workspace holds is in the app, with the status and
    counts a fault-free client reads now, and nothing else is. Returns how many were compared."""
    checked = 0
    for scenario in WORKING:
        account = engine.settings.account(scenario.name)
        ws = sim.world.workspace(account.provider.value, account.name)
        held = {b.id: b for b in sim.world.visible(ws)}
        client = make_client(account, KEYS[account.name], transport=sim.transport())
        try:
            truth = {b.id: b async for b in client.list_batches()}
        finally:
            await client.aclose()
        mine = {bid: b for (name, bid), b in app.batches.items() if name == account.name}
        assert set(truth) == set(held) == set(mine), account.name
        now = sim.world.now()
        for bid, batch in mine.items():
            want = truth[bid]
            assert (batch.status, batch.provider_status, batch.counts, batch.ended_at) == \
                   (want.status, want.provider_status, want.counts, want.ended_at), (account.name, bid)
            assert batch.is_terminal == held[bid].snapshot(now).phase.terminal
            checked += 1
    return checked


async def test_every_ended_batch_is_priced_in_time_even_after_a_passing_fault(tmp_path, monkeypatch):
    """What the soak found: the poller prices one ended batch per cycle from its results, but
    took candidates only from the cycle's listing, which after the first poll stops before the
    older ended batches, so they stayed unpriced; and a fault while reading the results struck
    a batch off for the whole session."""
    from batchtui.core import polling
    from batchtui.core.errors import UnreachableError

    engine, sim = demo_engine(tmp_path / "home", speed=NO_TIMER_SPEED, seed=6, start=START, manual_clock=True)
    account = engine.settings.account("claude-team")
    attempts: list[str] = []
    real = fetch.analyse_results

    async def first_one_cut(engine_, account_, batch, **kw):
        attempts.append(batch.id)
        if len(attempts) == 1:
            raise UnreachableError("api.anthropic.com unreachable (RemoteProtocolError)", account=account_.name)
        return await real(engine_, account_, batch, **kw)

    monkeypatch.setattr("batchtui.core.fetch.analyse_results", first_one_cut)
    poller = polling.Poller(engine, lambda update: None)
    try:
        await poller.poll_once(account)
        ended = [b for b in poller.known(account.name).values()
                 if b.is_terminal and b.result_files and b.usage is None]
        assert len(ended) >= 3
        for _ in range(len(ended) + 1):
            await poller.poll_once(account)
        assert [b.id for b in ended if engine.ledger.analysis(account.name, b.id) is None] == []
        assert attempts[1] == attempts[0]  # the interrupted one was tried again on the next cycle
        assert len(attempts) == len(ended) + 1
    finally:
        await engine.aclose()
        engine.close_ledger()
