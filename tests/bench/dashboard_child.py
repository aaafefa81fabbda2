"""The dashboard benchmark's measurements, each in a fresh process, printing one JSON line.

    PYTHONPATH=.:tests python -m bench.dashboard_child MODE [ARGS]

startup-bare           a bare Textual app painting a one-row DataTable; prints "painted" at its first frame
startup-real           `make_app` over BATCHTUI_HOME's accounts and ledger (no polling); "painted" at the
                       first frame (the table shows the newest rows), "loaded" once every row is placed
updates ROUNDS         UI-thread CPU to apply poll cycles where 1% / all of the batches changed, and RSS
responsive URLS_JSON   key latency (cursor, filter typing) while every account polls the simulator at URLS

The app runs headless (Textual's run_test) at 200x50. Keys are simulator keys from the file keyring.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime, timedelta, timezone

SIZE = (200, 50)
POLLED_AT = datetime(2026, 12, 1, tzinfo=timezone.utc)


def on_first_frame(message) -> None:
    """A run_test message hook: Textual sends Ready once the first frame is on screen; the
    parent times from spawning this process to reading the line printed here."""
    from textual import events

    if isinstance(message, events.Ready):
        print("painted", flush=True)


async def startup_bare() -> dict:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    class Bare(App):
        def compose(self) -> ComposeResult:
            yield DataTable()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns("account", "id", "status")
            table.add_row("acct", "batch_1", "completed")

    async with Bare().run_test(headless=True, size=SIZE, message_hook=on_first_frame) as pilot:
        await pilot.pause()
    return {}


async def startup_real() -> dict:
    from batchtui.core.engine import Engine
    from batchtui.ui.app import make_app
    from batchtui.ui.widgets.batch_table import BatchTable

    engine = Engine.open()
    app = make_app(engine, poll=False)
    async with app.run_test(headless=True, size=SIZE, message_hook=on_first_frame) as pilot:
        await pilot.pause()
        first_rows = app.screen.query_one(BatchTable).row_count
        await _until(lambda: not app.loading)  # the rest of the ledger, read after the first frame
        await pilot.pause()
        print("loaded", flush=True)
        rows = app.screen.query_one(BatchTable).row_count
    await engine.aclose()
    engine.close_ledger()
    return {"rows": rows, "first_rows": first_rows, "rss_mb": rss_mb()}


async def updates(rounds: int) -> dict:
    """Poll cycles posted as the poller posts them (one BatchesUpdated per account, each with a
    new last-good-poll time), applied by the app's own handler; the UI thread's CPU from posting
    until the app is idle again. `idle_cpu_ms` is that wait alone, with nothing posted: the
    part of each figure that is the harness (Pilot visiting every widget's queue)."""
    from batchtui.core.engine import Engine
    from batchtui.core.polling import AccountStatus, Health, PollUpdate
    from batchtui.ui.app import make_app
    from batchtui.ui.messages import BatchesUpdated
    from batchtui.ui.widgets.batch_table import BatchTable

    engine = Engine.open()
    app = make_app(engine, poll=False)
    async with app.run_test(headless=True, size=SIZE) as pilot:
        await _until(lambda: not app.loading)
        await pilot.pause()
        table = app.screen.query_one(BatchTable)
        batches = list(app.batches.values())
        loaded_rss = rss_mb()
        results = {}
        for label, share in (("1%", 0.01), ("all", 1.0)):
            cpu: list[float] = []
            wall: list[float] = []
            for cycle in range(rounds):
                step = max(1, round(1 / share))
                changed = [_progressed(b, cycle) for b in batches[cycle % step::step]]
                by_account: dict[str, list] = {}
                for batch in changed:
                    by_account.setdefault(batch.account, []).append(batch)
                polled_at = POLLED_AT + timedelta(seconds=15 * cycle)
                start_cpu, start_wall = time.thread_time(), time.perf_counter()
                for account, moved in by_account.items():
                    # As the poller sends it: the time of this good poll is new every cycle.
                    status = AccountStatus(account, Health.OK, None, polled_at, 15.0, 5, len(batches))
                    app.post_message(BatchesUpdated((PollUpdate(account, tuple(moved), status, 2 + cycle),)))
                await pilot.pause()  # until every message is handled and the screen refreshed
                cpu.append(time.thread_time() - start_cpu)
                wall.append(time.perf_counter() - start_wall)
                for batch in changed:
                    assert table.shown[batch.key] is batch  # the table shows the new state
            results[label] = {"changed": len(changed), "cpu_ms": [c * 1000 for c in cpu],
                              "wall_ms": [w * 1000 for w in wall]}
        idle: list[float] = []
        for _ in range(rounds):  # the measurement's own cost: waiting for an app with nothing to do
            start_cpu = time.thread_time()
            await pilot.pause()
            idle.append(time.thread_time() - start_cpu)
        results["idle_cpu_ms"] = [c * 1000 for c in idle]
        results["rows"] = table.row_count
        results["rss_mb"] = rss_mb()
        results["rss_loaded_mb"] = loaded_rss
    await engine.aclose()
    engine.close_ledger()
    return results


def _progressed(batch, cycle: int):
    """The same batch a poll later: one more request done (a change every column may show)."""
    counts = batch.counts
    done = (counts.succeeded or 0) + 1 + cycle
    return batch.model_copy(update={"counts": counts.model_copy(update={"succeeded": done})})


async def responsive(urls: dict[str, str], presses: int) -> dict:
    """Cursor moves and filter typing while all accounts poll the simulator on loopback: the
    time from a key event's arrival (as the terminal driver posts it) to the state it changes
    (the cursor row, the table's filter), one key every 50 ms."""
    from textual import events
    from textual.widgets import Input

    from batchtui.core.engine import Engine
    from batchtui.ui.app import make_app
    from batchtui.ui.widgets.batch_table import BatchTable

    engine = Engine.open()
    # Poll as often as the simulator can answer: every account is mid-poll most of the time.
    fast = [a.model_copy(update={"poll_active_seconds": 0.5, "poll_idle_seconds": 0.5})
            for a in engine.settings.accounts]
    engine.settings = engine.settings.model_copy(update={"accounts": fast})
    app = make_app(engine, poll=True)
    cursor: list[float] = []
    typing: list[float] = []
    async with app.run_test(headless=True, size=SIZE) as pilot:
        await _until(lambda: not app.loading)
        await pilot.pause()
        screen = app.screen
        table = screen.query_one(BatchTable)
        await asyncio.sleep(1.0)  # every account's poll loop is under way
        polls_before = _polls(urls)
        for _ in range(presses):
            row = table.cursor_row
            start = time.perf_counter()
            app.post_message(events.Key("down", None))
            await _until(lambda: table.cursor_row != row)
            cursor.append(time.perf_counter() - start)
            await asyncio.sleep(0.05)
        app.post_message(events.Key("slash", "/"))
        field = screen.query_one("#filter-input", Input)
        await _until(lambda: field.has_focus)
        typed = ""
        for char in "gemini":
            typed += char
            start = time.perf_counter()
            app.post_message(events.Key(char, char))
            await _until(lambda: screen.filter.text == typed)  # the table is filtered by then
            typing.append(time.perf_counter() - start)
            await asyncio.sleep(0.05)
        polls = _polls(urls) - polls_before
        shown = table.row_count
        app.post_message(events.Key("escape", None))
        await _until(lambda: not screen.filter.active)
        rows = table.row_count
    await engine.aclose()
    engine.close_ledger()
    return {"cursor_ms": [c * 1000 for c in cursor], "typing_ms": [t * 1000 for t in typing],
            "list_requests_meanwhile": polls, "rows": rows, "filtered_rows": shown}


async def _until(condition, timeout: float = 60.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the app did not get there")
        await asyncio.sleep(0.001)


def _polls(urls: dict[str, str]) -> int:
    """List requests so far, over every provider's simulator (each serves its own)."""
    import httpx

    total = 0
    for provider, url in urls.items():
        host = url.split(f"/{provider}", 1)[0]
        state = httpx.get(f"{host}/_sim/state", timeout=60).json()
        total += sum(n for ws in state["workspaces"] if ws["provider"] == provider
                     for route, n in ws["requests"].items() if "list" in route or route.endswith("/batches"))
    return total


def rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    mode = sys.argv[1]
    if mode == "startup-bare":
        result = asyncio.run(startup_bare())
    elif mode == "startup-real":
        result = asyncio.run(startup_real())
    elif mode == "updates":
        result = asyncio.run(updates(int(sys.argv[2])))
    elif mode == "responsive":
        result = asyncio.run(responsive(json.loads(sys.argv[2]), int(sys.argv[3])))
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
