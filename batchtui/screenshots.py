"""`python -m batchtui.screenshots OUT_DIR` (`make screenshots`): an SVG of each main screen.

Every picture comes from the demo scenario at one fixed simulated moment: a manual simulator
clock at FIXED_EPOCH, seed 0, one poll of each account, the app's clock pinned to the same
instant in UTC, polling off, a fixed terminal size and no blinking cursor. The snapshot tests
(tests/ui/test_snapshots.py) build their apps with the same `prepared_demo_app` and the same
steps, so what the README shows is what the tests check.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input

from batchtui.core.config import Settings, UiSettings
from batchtui.core.errors import AuthError, BatchtuiError, RateLimitedError, UnreachableError
from batchtui.core.models import Batch
from batchtui.core.polling import AccountStatus, Health, Poller

FIXED_EPOCH = 1_767_268_800.0  # 2026-01-01 12:00:00 UTC
SIZE = (160, 45)
SECOND_THEME = "batchtui-light"

# A submission with one good line and one of each common mistake, for the submit screen.
BAD_JSONL_NAME = "requests.jsonl"
BAD_JSONL = "\n".join([
    '{"custom_id": "q-1", "method": "POST", "url": "/v1/chat/completions", '
    '"body": {"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": "Summarise ticket 1"}]}}',
    '{"custom_id": "q-2", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "gpt-5.4-mini", ',
    '{"custom_id": "q-3", "method": "GET", "url": "/v1/chat/completions", "body": {"model": "gpt-5.4-mini"}}',
    '{"custom_id": "q-1", "method": "POST", "url": "/v1/chat/completions", '
    '"body": {"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": "Summarise ticket 4"}]}}',
    '{"custom_id": "q-5", "method": "POST", "url": "/v1/embeddings", "body": {"model": "gpt-5.4-mini"}}',
    '{"custom_id": "q-6", "method": "POST", "url": "/v1/chat/completions", '
    '"body": {"model": "gpt-5.4", "messages": [{"role": "user", "content": "Summarise ticket 6"}]}}',
]) + "\n"


def fixed_clock() -> datetime:
    # UTC-aware: the app shows times in its clock's zone, so the host's TZ never leaks in.
    return datetime.fromtimestamp(FIXED_EPOCH, tz=UTC)


# --- the prepared app --------------------------------------------------------------------------


async def prepared_demo_app(home: Path, theme: str | None = None):
    """The dashboard on the demo scenario at FIXED_EPOCH, its ledger filled by one poll of each
    account and the error breakdown of `error_batch` analysed, ready to run with no network."""
    from batchtui.demo import demo_engine
    from batchtui.ui.app import make_app

    settings = Settings(ui=UiSettings(theme=theme)) if theme else None
    engine, _sim = demo_engine(home, manual_clock=True, start=FIXED_EPOCH, seed=0, settings=settings)
    statuses = await _poll_each_account(engine)
    batch = error_batch(engine.ledger.batches())
    if batch is not None:
        from batchtui.core.fetch import analyse_results

        await analyse_results(engine, engine.settings.account(batch.account), batch)
        engine.ledger.upsert_batches([engine.costed(batch)])
    # The clients belong to this event loop; the app may run in another (snap_compare does).
    await engine.aclose()
    app = make_app(engine, clock=fixed_clock, poll=False, demo=True)
    app.account_statuses.update(statuses)
    return app


async def _poll_each_account(engine) -> dict[str, AccountStatus]:
    """One poll cycle per account, with the health a poll loop would report."""
    poller = Poller(engine, lambda _update: None, auto_analyse=False)
    statuses: dict[str, AccountStatus] = {}
    for account in engine.accounts():
        try:
            status = (await poller.poll_once(account)).status
        except BatchtuiError as exc:
            health = (Health.AUTH_ERROR if isinstance(exc, AuthError) else
                      Health.RATE_LIMITED if isinstance(exc, RateLimitedError) else
                      Health.UNREACHABLE if isinstance(exc, UnreachableError) else Health.ERROR)
            status = AccountStatus(account.name, health, str(exc))
        # The poller stamps the real time of day; pin it, it would differ on every run.
        statuses[account.name] = dataclasses.replace(status, last_ok_at=fixed_clock() if status.last_ok_at else None)
    return statuses


def error_batch(batches) -> Batch | None:
    """The finished batch with the most failed requests whose results can be read: the one
    the detail screenshot shows, for its error breakdown."""
    candidates = [b for b in batches if b.is_terminal and b.result_files and (b.counts.failed or 0) > 0]
    return max(candidates, key=lambda b: (b.counts.failed or 0, b.account, b.id), default=None)


# --- the steps to each screen (shared with the snapshot tests) ----------------------------------


async def settle(pilot: Pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def _still_cursors(pilot: Pilot) -> None:
    # A blinking cursor is on or off depending on when the picture is taken.
    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False


async def show_batches(pilot: Pilot) -> None:
    await settle(pilot)


async def show_detail(pilot: Pilot) -> None:
    from batchtui.ui.screens.detail import DetailScreen

    await settle(pilot)
    batch = error_batch(pilot.app.batches.values())
    assert batch is not None, "the demo scenario has a finished batch with failures"
    await pilot.app.push_screen(DetailScreen(batch.key))
    await settle(pilot)


async def show_accounts(pilot: Pilot) -> None:
    await settle(pilot)
    await pilot.press("a")
    await settle(pilot)


async def show_submit_errors(pilot: Pilot) -> None:
    await settle(pilot)
    await pilot.press("s")
    await settle(pilot)
    home = pilot.app.engine.paths.config_dir
    (home / BAD_JSONL_NAME).write_text(BAD_JSONL, encoding="utf-8")
    _still_cursors(pilot)
    # A relative path, read from the demo home: the picture shows no temporary directory.
    with contextlib.chdir(home):
        pilot.app.screen.query_one("#submit-path", Input).value = BAD_JSONL_NAME
        await pilot.press("f5")
        await settle(pilot)


Step = Callable[[Pilot], Awaitable[None]]
# file name -> (theme, steps): the pictures the README shows.
SHOTS: dict[str, tuple[str | None, Step]] = {
    "batches": (None, show_batches),
    "detail": (None, show_detail),
    "accounts": (None, show_accounts),
    "submit": (None, show_submit_errors),
    f"batches-{SECOND_THEME.removeprefix('batchtui-')}": (SECOND_THEME, show_batches),
}


async def take(name: str, out_dir: Path) -> Path:
    theme, step = SHOTS[name]
    with tempfile.TemporaryDirectory(prefix="batchtui-shot-") as tmp:
        app = await prepared_demo_app(Path(tmp), theme=theme)
        try:
            async with app.run_test(size=SIZE) as pilot:
                await step(pilot)
                await pilot.wait_for_scheduled_animations()
                svg = app.export_screenshot(title="batchtui")
        finally:
            await app.engine.aclose()
            app.engine.close_ledger()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}.svg"
    target.write_text(svg, encoding="utf-8")
    return target


async def take_all(out_dir: Path) -> list[Path]:
    return [await take(name, out_dir) for name in SHOTS]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m batchtui.screenshots OUT_DIR\n")
        return 2
    for path in asyncio.run(take_all(Path(args[0]))):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
