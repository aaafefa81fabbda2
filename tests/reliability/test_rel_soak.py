"""Issue 6, item 1 at engine level: the Poller over every demo account under faults.

The core of the dashboard's fault soak, without the dashboard: one `Poller.run` loop per
demo account (as the dashboard runs them), 20% of the simulator's answers faulty (429 with
retry-after, 500/503/529, dropped connections, slow answers) for 30 simulated minutes in
which batches are created, progress and end, with a two-minute outage of each account in the
middle. Time moves by advancing the simulator's clock and waking the loops; each round waits
for every loop's update (an event), never for a wall clock.

At the end (faults off, the clock moved on until everything created has ended): no loop died,
every batch the simulator holds is in the Poller's state with the status and counts a fresh,
fault-free read gives, each account's health showed its outage and recovered, and no batch
was announced as ended twice. Memory is then watched over five more simulated minutes of
polls under the same faults, with nothing new to learn: it must stay flat (Python's count of
allocated blocks, which unlike RSS does not keep what the allocator has not given back).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from batchtui.core.errors import CreateOutcomeUnknown
from batchtui.core.polling import Health, Poller, PollUpdate
from batchtui.core.submit import submit_file
from batchtui.sim import Simulator
from batchtui.sim.faults import FaultConfig
from batchtui.sim.scenario import DEMO_ACCOUNTS
from reliability.figures import record
from reliability.harness import scenario_engine

MINUTE = 60.0
ROUND = 15.0  # simulated seconds between polls: the accounts' active interval
SOAK = 30 * MINUTE
OUTAGE = (10 * MINUTE, 12 * MINUTE)
FAULT_RATE = 0.2
# During the outage every answer fails, each account its own way, so health has each to show.
OUTAGES = {"acme-prod": ("429", Health.RATE_LIMITED), "claude-team": ("529", Health.RATE_LIMITED),
           "gemini-lab": ("drop", Health.UNREACHABLE), "acme-research": ("503", Health.ERROR)}
SUBMIT_EVERY = 5 * MINUTE
SUBMITTERS = {"acme-prod": "openai", "claude-team": "anthropic", "gemini-lab": "gemini"}


class Seen(NamedTuple):
    """What the test keeps of an update: small, so the test itself holds no batches."""

    account: str
    cycle: int
    health: Health
    changed: tuple[tuple[str, bool], ...]  # (batch id, terminal)


class Rounds:
    """on_update for the Poller: collects updates and says when every account has reported."""

    def __init__(self) -> None:
        self.updates: list[Seen] = []
        self.waiting: set[str] = set()
        self.all_in = asyncio.Event()

    def expect(self, accounts: set[str]) -> None:
        self.waiting = set(accounts)
        self.all_in.clear()

    def __call__(self, update: PollUpdate) -> None:
        self.updates.append(Seen(update.account, update.cycle, update.status.health,
                                 tuple((b.id, b.is_terminal) for b in update.changed)))
        self.waiting.discard(update.account)
        if not self.waiting:
            self.all_in.set()


def line(provider: str, tag: str, i: int) -> dict:
    if provider == "openai":
        return {"custom_id": f"{tag}-{i}", "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": str(i)}]}}
    if provider == "anthropic":
        return {"custom_id": f"{tag}-{i}", "params": {"model": "claude-haiku-4-5", "max_tokens": 16,
                                                       "messages": [{"role": "user", "content": str(i)}]}}
    return {"key": f"{tag}-{i}", "request": {"contents": [{"role": "user", "parts": [{"text": str(i)}]}]}}


LEAK_ROUNDS = 20  # five simulated minutes of polls at the end, memory measured across them


def memory() -> tuple[int, int]:
    """(allocated blocks, RSS bytes) after a full collection."""
    gc.collect()
    return sys.getallocatedblocks(), int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_poller_soak_under_faults(tmp_path):
    sim = Simulator(seed=11, manual_clock=True, scenario="demo")
    engine = scenario_engine(tmp_path / "home", sim)
    names = {a.name for a in DEMO_ACCOUNTS}
    working = [a for a in DEMO_ACCOUNTS if not a.reject_key]
    workspaces = {a.name: sim.world.workspace(a.provider.value, a.name) for a in working}
    scenario_batches = sum(len(ws.batches) for ws in workspaces.values())
    rounds = Rounds()
    poller = Poller(engine, rounds)
    rounds.expect(names)
    tasks = {a.name: asyncio.create_task(poller.run(a), name=f"poll {a.name}") for a in engine.accounts()}

    async def next_round(seconds: float) -> None:
        await asyncio.wait_for(rounds.all_in.wait(), timeout=120)
        dead = [name for name, task in tasks.items() if task.done()]
        assert not dead, f"poll loops ended: {dead} ({[tasks[n].exception() for n in dead]})"
        rounds.expect(names)
        sim.clock.advance(seconds)
        poller.wake()

    submitted: list[tuple[str, str]] = []
    unknown_outcomes = 0
    try:
        for ws in workspaces.values():
            ws.faults = FaultConfig(rate=FAULT_RATE, retry_after=2)
        elapsed = 0.0
        while elapsed < SOAK:
            in_outage = OUTAGE[0] <= elapsed < OUTAGE[1]
            for name, ws in workspaces.items():
                kind = OUTAGES[name][0]
                ws.faults.rate, ws.faults.kinds = (1.0, (kind,)) if in_outage else (FAULT_RATE, FaultConfig().kinds)
            if elapsed % SUBMIT_EVERY == 0 and not in_outage:
                await asyncio.wait_for(rounds.all_in.wait(), timeout=120)  # submit between polls
                for name, provider in SUBMITTERS.items():
                    n = 20 + len(submitted)  # sizes differ: Anthropic finds a lost create by size
                    path = tmp_path / f"{name}-{n}.jsonl"
                    path.write_text("".join(json.dumps(line(provider, f"s{n}", i)) + "\n" for i in range(n)))
                    try:
                        done = await submit_file(engine, engine.settings.account(name), path,
                                                 model="gemini-2.5-flash" if provider == "gemini" else None)
                    except CreateOutcomeUnknown:
                        unknown_outcomes += 1  # a 500 refused it before anything was made: checked below
                        continue
                    submitted.append((name, done.batch.id))
            await next_round(ROUND)
            elapsed += ROUND

        # Faults off; let every batch made so far end, polling as the clock goes.
        faults: Counter = Counter()
        for ws in workspaces.values():
            faults.update(ws.faults.injected)
            ws.faults = FaultConfig()
        for _ in range(4 * 3):
            await next_round(20 * MINUTE)
        for _ in range(2):  # two quiet rounds: the last changes land, then nothing changes
            await next_round(ROUND)
        await asyncio.wait_for(rounds.all_in.wait(), timeout=120)

        # Every batch the simulator holds is in the Poller's state as a fresh, fault-free read
        # sees it (the loops are all waiting for the next wake now).
        checked = 0
        for account in engine.accounts([a.name for a in working]):
            fresh = {b.id: b for b in await engine.list_account(account)}
            assert set(fresh) == {b.id for b in sim.world.visible(workspaces[account.name])}
            known = poller.known(account.name)
            for batch_id, batch in fresh.items():
                assert batch_id in known, f"{account.name}: {batch_id} never reached the Poller"
                assert (known[batch_id].status, known[batch_id].counts) == (batch.status, batch.counts), batch_id
                checked += 1

        # Polls with nothing new to learn, under the same faults: memory must not grow with them.
        for ws in workspaces.values():
            ws.faults = FaultConfig(rate=FAULT_RATE, retry_after=2)
        await next_round(ROUND)  # a first faulty round warms whatever it warms
        before = memory()
        for _ in range(LEAK_ROUNDS):
            await next_round(ROUND)
        await asyncio.wait_for(rounds.all_in.wait(), timeout=120)
        after = memory()
        for ws in workspaces.values():
            faults.update(ws.faults.injected)
    finally:
        for task in tasks.values():
            task.cancel()
        results = await asyncio.gather(*tasks.values(), return_exceptions=True)
    crashed = [r for r in results if not isinstance(r, asyncio.CancelledError)]
    assert crashed == [], "a poll loop died with an unhandled exception"

    # Every submission made exactly one batch (a refused create made none).
    assert sum(len(ws.batches) for ws in workspaces.values()) - scenario_batches == len(submitted)
    assert all(poller.known(name)[batch_id].is_terminal for name, batch_id in submitted)

    # Health: each account showed its own outage, and recovered; the refused key stayed refused.
    health: dict[str, list[Health]] = {}
    for update in rounds.updates:
        health.setdefault(update.account, []).append(update.health)
    for name, (_, during) in OUTAGES.items():
        seen = health[name]
        assert during in seen, (name, Counter(seen))
        assert Health.OK in seen[seen.index(during):], f"{name} never recovered"
        assert seen[-1] is Health.OK
    assert set(health["old-intern-key"]) == {Health.AUTH_ERROR}

    # No batch announced as ended twice: a batch turns terminal in `changed` once.
    ended: Counter = Counter()
    last: dict[tuple[str, str], bool] = {}
    for update in rounds.updates:
        for batch_id, terminal in update.changed:
            key = (update.account, batch_id)
            if terminal and not last.get(key, False) and update.cycle > 1:
                ended[key] += 1
            last[key] = terminal
    assert ended and max(ended.values()) == 1

    blocks, rss = after[0] - before[0], after[1] - before[1]
    assert blocks < 0.005 * before[0], f"{blocks:,} more memory blocks after {LEAK_ROUNDS} rounds of polls"
    await engine.aclose()
    engine.close_ledger()
    record("poller_soak_engine", simulated_minutes=int(SOAK / MINUTE), poll_updates=len(rounds.updates),
           faults_injected=sum(faults.values()), faults_by_kind=dict(sorted(faults.items())), batches_checked=checked, batches_created=len(submitted), creates_refused_unknown=unknown_outcomes,
           batches_ended_during_soak=len(ended), leak_window_polls=LEAK_ROUNDS * len(names),
           leak_window_block_growth=blocks, leak_window_rss_growth_mb=round(rss / 2**20, 1),
           unhandled_exceptions=0)
