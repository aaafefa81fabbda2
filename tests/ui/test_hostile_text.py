"""Server text is data: Rich markup, links and ANSI escapes in ids, names, models, metadata
and error messages show as the characters they are, on every screen of ours, and break nothing.

The batches are crafted directly (no simulator can be made to send all of this) and the app
runs with poll=False; updates are posted as the poller would post them.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest

from batchtui.core.accounts import Account
from batchtui.core.config import Settings
from batchtui.core.engine import Engine
from batchtui.core.ledger import Ledger
from batchtui.core.models import (
    Batch,
    BatchError,
    Cost,
    ErrorBreakdown,
    ErrorGroup,
    Outcome,
    Provider,
    RequestCounts,
    ResultFile,
    Status,
)
from batchtui.core.paths import Paths
from batchtui.core.polling import AccountStatus, Health, PollUpdate
from batchtui.core.pricing import PriceTable
from batchtui.ui.app import make_app
from batchtui.ui.messages import BatchesUpdated
from batchtui.ui.screens.confirm import ConfirmScreen
from batchtui.ui.screens.detail import DetailScreen
from batchtui.ui.widgets.batch_table import BatchTable

from .conftest import SIZE, Recorder, text_of

MARKUP = "[bold red]x[/]"
LINK = "[link=https://evil.example]y[/link]"
ANSI = "\x1b[31mred\x1b[0m"
BIDI = "\u202eevil"
NOW = datetime(2025, 10, 10, 9, 0, tzinfo=UTC)


def hostile(status: Status, suffix: str, **kw) -> Batch:
    kw.setdefault("counts", RequestCounts(total=10, succeeded=8, failed=2))
    return Batch(
        account="evil", provider=Provider.OPENAI, id=f"b_{MARKUP}{ANSI}{suffix}", status=status,
        provider_status=f"st{LINK}", created_at=NOW - timedelta(hours=2), expires_at=NOW + timedelta(hours=22),
        model=f"m{MARKUP}", name=f"{LINK}{ANSI}{BIDI}", endpoint=MARKUP,
        metadata={f"k{MARKUP}": f"{LINK}{ANSI}"},
        errors=(BatchError(code=MARKUP, message=f"{LINK} {ANSI}", line=3),),
        raw={"id": f"b_{MARKUP}", "note": f"{LINK}{ANSI}{BIDI}"},
        **kw,
    )


FINISHED = hostile(Status.COMPLETED, "done", ended_at=NOW - timedelta(hours=1),
                   result_files=(ResultFile(kind="results", ref=f"file-{LINK}"),),
                   cost=Cost(usd=0.01, standard_usd=0.02))
RUNNING = hostile(Status.IN_PROGRESS, "run", counts=RequestCounts(total=10, succeeded=3, failed=1))


@pytest.fixture
def engine(tmp_path):
    paths = Paths(config_dir=tmp_path / "home", data_dir=tmp_path / "home")
    settings = Settings(accounts=[Account(name="evil", provider=Provider.OPENAI)])
    engine = Engine(settings=settings, paths=paths, ledger=Ledger.open(paths.ledger_file),
                    prices=PriceTable.load({}), key_lookup=lambda account: None)
    engine.ledger.upsert_batches([FINISHED, RUNNING])
    breakdown = ErrorBreakdown(
        outcomes={Outcome.SUCCEEDED: 8, Outcome.SERVER_ERROR: 2},
        groups=(ErrorGroup(outcome=Outcome.SERVER_ERROR, error_type=MARKUP, count=2,
                           sample_message=f"{LINK} {ANSI}"),))
    engine.ledger.record_analysis("evil", FINISHED.id, breakdown, {}, Cost(usd=0.01, standard_usd=0.02))
    yield engine
    engine.close_ledger()


def screen_text(app) -> str:
    """Every character on screen, from the SVG export."""
    svg = app.export_screenshot()
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


def assert_literal(text: str, *fragments: str) -> None:
    for fragment in fragments:
        assert fragment in text, fragment
    assert "\x1b" not in text and "\u202e" not in text  # escapes shown, never obeyed


async def test_table_hint_health_and_toasts_show_provider_text_literally(engine, notes):
    rec = Recorder()
    app = make_app(engine, clock=lambda: NOW, poll=False)
    # notifications=True: run_test leaves toasts out unless asked, and the toasts are under test.
    async with app.run_test(size=SIZE, message_hook=rec, notifications=True) as pilot:
        await pilot.pause()
        table = app.screen.query_one(BatchTable)
        table.select(FINISHED.key)
        await pilot.pause()
        model = table.cell(FINISHED.key, "model")
        assert model.plain == f"m{MARKUP}" and not model.spans
        short = table.cell(FINISHED.key, "id")
        assert short.plain.startswith("b_[bold") and not short.spans
        assert_literal(text_of(app, "#row-hint"), f"b_{MARKUP}\\x1b[31mred")
        assert_literal(screen_text(app), f"m{MARKUP}", f"b_{MARKUP}")

        # The poller reports an error and a batch that ended, both full of provider text.
        ended = RUNNING.model_copy(update={"status": Status.FAILED, "ended_at": NOW})
        status = AccountStatus("evil", Health.AUTH_ERROR, f"evil: refused {LINK} {ANSI}")
        app.post_message(BatchesUpdated((PollUpdate("evil", (ended,), status, 2),)))
        await rec.until(lambda: rec.of(BatchesUpdated))
        await pilot.pause()
        assert_literal(text_of(app, "#health"), f"refused {LINK}")
        toasts = [n for n in notes if n[1] == "Batch ended"]
        assert toasts and all(markup is False for *_, markup in toasts)
        await rec.until(lambda: len(app.screen.query("Toast")) > 0, timeout=10)
        await pilot.pause()
        rendered = " ".join(str(t.render()) for t in app.screen.query("Toast"))
        assert_literal(rendered, f"b_{MARKUP}\\x1b[31mred")
        assert_literal(screen_text(app), f"refused {LINK}")


async def test_detail_breakdown_and_raw_json_show_provider_text_literally(engine):
    app = make_app(engine, clock=lambda: NOW, poll=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one(BatchTable).select(FINISHED.key)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        assert_literal(text_of(app, "#detail-fields"), f"b_{MARKUP}", f"m{MARKUP}", f"k{MARKUP}", f"st{LINK}",
                       f"{LINK}\\x1b[31mred", "\\u202eevil")
        assert_literal(text_of(app, "#breakdown"), MARKUP, f"{LINK} \\x1b[31mred", f"(line 3) {LINK}")
        assert_literal(text_of(app, "#detail-cost"), f"file-{LINK}")
        assert_literal(screen_text(app), f"b_{MARKUP}", LINK)
        await pilot.press("2")
        await pilot.pause()
        raw = app.screen.query_one("#raw-json").content.plain
        assert LINK in raw and "\\u001b[31m" in raw and "\\u202e" in raw and "\u202e" not in raw
        assert_literal(screen_text(app), LINK)


async def test_the_confirm_dialog_shows_provider_text_literally(engine):
    app = make_app(engine, clock=lambda: NOW, poll=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one(BatchTable).select(RUNNING.key)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert_literal(text_of(app, "#confirm-body"), f"b_{MARKUP}\\x1b[31mred")
        assert_literal(screen_text(app), f"b_{MARKUP}")
        await pilot.press("escape")
