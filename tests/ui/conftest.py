"""Fixtures for the dashboard's Pilot tests.

Time is the simulator's hand-driven clock (no test waits on a real timer), and the poll
intervals are a simulated day long, so the only polls are the first one and the ones a test
asks for (`app.poll_now()` / the `r` key). Tests wait for posted messages, never for time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest

from batchtui.core.polling import Poller
from batchtui.demo import demo_engine
from batchtui.ui.app import make_app
from batchtui.ui.messages import BatchesUpdated

START = datetime(2025, 10, 10, 9, 0, tzinfo=UTC)
SIZE = (140, 40)
# demo_engine polls every 60/speed real seconds: this makes it once a simulated day or so.
NO_TIMER_SPEED = 0.001
WAIT = 60.0  # a safety net for a hung test, not a way of waiting for work


class Recorder:
    """A `message_hook`: keeps every dispatched message and wakes waiters whose condition
    became true. The hook runs just before a handler, and a synchronous handler finishes
    before a waiting test resumes, so `until()` returns after the message was handled."""

    def __init__(self) -> None:
        self.messages: list = []
        self._waiting: list[tuple[Callable[[], bool], asyncio.Event]] = []

    def __call__(self, message) -> None:
        self.messages.append(message)
        for condition, event in list(self._waiting):
            if condition():
                event.set()

    def of(self, kind: type) -> list:
        return [m for m in self.messages if isinstance(m, kind)]

    async def until(self, condition: Callable[[], bool], timeout: float = WAIT) -> None:
        if condition():
            return
        event = asyncio.Event()
        self._waiting.append((condition, event))
        try:
            await asyncio.wait_for(event.wait(), timeout)
        finally:
            self._waiting.remove((condition, event))

    def cycles(self) -> list[tuple[str, int]]:
        """(account, cycle) of every poll update handled, in order."""
        return [(u.account, u.cycle) for m in self.of(BatchesUpdated) for u in m.updates]

    async def polled(self, accounts, cycle: int) -> None:
        """Until every account's poll cycle number `cycle` has been handled."""
        await self.until(lambda: {(a, cycle) for a in accounts} <= set(self.cycles()))


@pytest.fixture
async def demo(tmp_path):
    """The real engine on the demo scenario, its clock stopped at START."""
    engine, sim = demo_engine(tmp_path / "home", speed=NO_TIMER_SPEED, seed=0, start=START.timestamp(),
                              manual_clock=True)
    yield engine, sim
    await engine.aclose()
    engine.close_ledger()


@pytest.fixture
async def known(demo):
    """The demo with its ledger filled by one earlier session's poll."""
    engine, sim = demo
    poller = Poller(engine, lambda update: None, auto_analyse=False)
    for account in engine.accounts():
        try:
            await poller.poll_once(account)
        except Exception:  # the refused key: nothing to remember for it
            pass
    return engine, sim


@pytest.fixture
def notes(monkeypatch):
    """Every toast the app shows: (message, title, severity, markup)."""
    from batchtui.ui.app import BatchtuiApp

    shown: list[tuple[str, str, str, bool]] = []
    original = BatchtuiApp.notify

    def notify(self, message, *, title="", severity="information", timeout=None, markup=True):
        shown.append((message, title, severity, markup))
        return original(self, message, title=title, severity=severity, timeout=timeout, markup=markup)

    monkeypatch.setattr(BatchtuiApp, "notify", notify)
    return shown


def names(engine) -> list[str]:
    return [account.name for account in engine.accounts()]


def plain(renderable, width: int = 240) -> str:
    """What a Rich renderable (a widget's `content`) reads as, without colours."""
    import io

    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, color_system=None, legacy_windows=False)
    console.print(renderable)
    return console.file.getvalue()


def text_of(app, selector: str) -> str:
    return plain(app.screen.query_one(selector).content)


@asynccontextmanager
async def dashboard(engine, sim, *, poll: bool = False, size: tuple[int, int] = SIZE) -> AsyncIterator[tuple]:
    """The app on the simulator's clock, started and painted: (app, pilot, recorder)."""
    rec = Recorder()
    app = make_app(engine, clock=sim.clock.datetime, poll=poll)
    async with app.run_test(size=size, message_hook=rec) as pilot:
        await pilot.pause()
        yield app, pilot, rec


def pick(app, condition: Callable) -> tuple[str, str]:
    """The first batch (by key) that meets `condition`."""
    return next(key for key, batch in sorted(app.batches.items()) if condition(batch))


async def select(app, pilot, key: tuple[str, str]) -> None:
    """Put the table's cursor on `key`."""
    from batchtui.ui.widgets.batch_table import BatchTable

    app.screen.query_one(BatchTable).select(key)
    await pilot.pause()
