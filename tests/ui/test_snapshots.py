"""SVG snapshots of every main screen, from the demo scenario at a fixed simulated moment.

The apps come from `batchtui.screenshots.prepared_demo_app` and reach each screen with the same
steps as `make screenshots`, so the README's pictures are what is checked here. Deterministic:
fixed terminal size, simulator clock, app clock (UTC) and seed; polling off; no blinking cursor.
Update after a reviewed change with `pytest tests/ui/test_snapshots.py --snapshot-update`.

snap_compare runs the app in its own event loop, so these tests are plain functions and the
app is prepared in a loop of its own first.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from textual.widgets import Input

from batchtui import screenshots
from batchtui.screenshots import SIZE, prepared_demo_app
from batchtui.sim.scenario import DEMO_ACCOUNTS
from batchtui.ui.screens.account_form import AccountForm

REPO = Path(__file__).resolve().parents[2]
SNAPSHOTS = Path(__file__).parent / "__snapshots__"
# A key typed into the add-account form: it must never be drawn.
FAKE_KEY = "sk-snapshot-FAKE-0123456789abcdef"


@pytest.fixture
def demo_app(tmp_path):
    """Builds prepared demo apps; closes their engines afterwards."""
    made = []

    def build(theme: str | None = None):
        app = asyncio.run(prepared_demo_app(tmp_path / f"home-{len(made)}", theme=theme))
        made.append(app)
        return app

    yield build
    for app in made:
        asyncio.run(app.engine.aclose())
        app.engine.close_ledger()


def test_batches_screen(snap_compare, demo_app):
    assert snap_compare(demo_app(), terminal_size=SIZE, run_before=screenshots.show_batches)


def test_detail_screen_with_error_breakdown(snap_compare, demo_app):
    assert snap_compare(demo_app(), terminal_size=SIZE, run_before=screenshots.show_detail)


def test_accounts_screen(snap_compare, demo_app):
    assert snap_compare(demo_app(), terminal_size=SIZE, run_before=screenshots.show_accounts)


def test_submit_screen_with_validation_errors(snap_compare, demo_app):
    assert snap_compare(demo_app(), terminal_size=SIZE, run_before=screenshots.show_submit_errors)


def test_help_screen(snap_compare, demo_app):
    async def show_help(pilot):
        await screenshots.settle(pilot)
        await pilot.press("question_mark")
        await screenshots.settle(pilot)

    assert snap_compare(demo_app(), terminal_size=SIZE, run_before=show_help)


def test_batches_screen_in_the_light_theme(snap_compare, demo_app):
    app = demo_app(theme=screenshots.SECOND_THEME)
    assert snap_compare(app, terminal_size=SIZE, run_before=screenshots.show_batches)


def test_batches_screen_in_the_high_contrast_theme(snap_compare, demo_app):
    app = demo_app(theme="batchtui-high-contrast")
    assert snap_compare(app, terminal_size=SIZE, run_before=screenshots.show_batches)


def test_add_account_form_never_draws_the_key(snap_compare, demo_app):
    async def fill_in(pilot):
        await screenshots.settle(pilot)
        # Opened directly: the demo's accounts screen disables adding.
        await pilot.app.push_screen(AccountForm())
        await screenshots.settle(pilot)
        for widget in pilot.app.screen.query(Input):
            widget.cursor_blink = False
        await pilot.click("#form-name")
        await pilot.press(*"work-openai")
        await pilot.click("#form-key")
        await pilot.press(*FAKE_KEY)
        await pilot.pause()
        assert pilot.app.screen.query_one("#form-key", Input).value == FAKE_KEY  # typed, but hidden:
        assert FAKE_KEY not in pilot.app.export_screenshot()

    assert snap_compare(demo_app(), terminal_size=SIZE, run_before=fill_in)


def test_no_stored_picture_holds_a_key():
    pictures = [*SNAPSHOTS.rglob("*.svg"), *(REPO / "screenshots").glob("*.svg")]
    assert pictures, "snapshots and screenshots are committed"
    secrets = [FAKE_KEY, *(account.key for account in DEMO_ACCOUNTS)]
    for picture in pictures:
        text = picture.read_text(encoding="utf-8")
        for secret in secrets:
            assert secret not in text, f"{picture.name} shows a key"


def test_pictures_do_not_depend_on_the_time_zone(tmp_path, monkeypatch):
    # The app shows times in its clock's zone (UTC here), never the host's.
    rendered = []
    try:
        for zone in ("UTC", "Pacific/Chatham"):
            monkeypatch.setenv("TZ", zone)
            time.tzset()
            path = asyncio.run(screenshots.take("detail", tmp_path / zone.replace("/", "-")))
            rendered.append(path.read_text(encoding="utf-8"))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert rendered[0] == rendered[1]


def test_the_screenshots_script_writes_every_picture(tmp_path):
    assert screenshots.main([str(tmp_path)]) == 0
    assert sorted(p.stem for p in tmp_path.glob("*.svg")) == sorted(screenshots.SHOTS)
