"""A provider's 100 kB strings on the detail screen: each is shown cut, its beginning exact, with
a marker giving its real length; what is shown stays inert (markup, escapes and bidi controls as
the characters they are); the raw JSON tab is cut the same way and stops encoding at its limit;
and the screen of such a batch opens and shows both tabs."""

from __future__ import annotations

import json

from textual.widgets import TabbedContent

from batchtui.core.models import BatchError, Cost, ErrorBreakdown, ErrorGroup, Outcome, Status
from batchtui.ui.screens.detail import DetailScreen
from batchtui.ui.widgets.batch_fields import METADATA_LIMIT
from batchtui.ui.widgets.breakdown import SAMPLE_LIMIT
from batchtui.ui.widgets.clipped import FIELD_LIMIT, RAW_LIMIT, clipped, clipped_json

from .conftest import dashboard, pick, select

PIECE = "[bold red]x[/]\x1b[31m\u202e[link=https://evil.example]y[/link] é漢字 "
LONG = (PIECE * (100_000 // len(PIECE) + 1))[:100_000]
MARKER = "(cut: 100,000 characters)"


def head(text: str, limit: int) -> str:
    """How the first `limit` characters of LONG must read: written out from the rule (ESC as
    \\x1b, the bidi override as \\u202e, markup as itself), not from batchtui.core.text."""
    return text[:limit].replace("\x1b", "\\x1b").replace("\u202e", "\\u202e")


def assert_inert(text) -> None:
    assert "\x1b" not in text.plain and "\u202e" not in text.plain
    for span in text.spans:
        assert not (getattr(span.style, "link", None) or getattr(span.style, "meta", None)), span


# --- the pieces --------------------------------------------------------------------------------


def test_a_long_value_is_cut_with_its_real_length_and_its_beginning_exact():
    shown = clipped(LONG)
    assert shown.plain == head(LONG, FIELD_LIMIT) + "… " + MARKER
    assert "[bold red]x[/]" in shown.plain and "[link=https://evil.example]y[/link]" in shown.plain
    assert_inert(shown)
    # The marker is told apart from provider text by its style, not only by its words.
    marker_start = shown.plain.index("… " + MARKER)
    assert [(s.start, s.end) for s in shown.spans if str(s.style) == "dim italic"] == [(marker_start, len(shown))]


def test_the_cut_counts_the_providers_characters_not_their_escapes():
    escapes = "\x1b" * 5_000
    shown = clipped(escapes)
    assert shown.plain == "\\x1b" * FIELD_LIMIT + "… (cut: 5,000 characters)"


def test_a_value_at_the_limit_is_shown_whole_without_a_marker():
    exact = LONG[:FIELD_LIMIT]
    assert clipped(exact).plain == head(exact, FIELD_LIMIT)
    assert "cut:" not in clipped(exact).plain and not clipped(exact).spans


def test_raw_json_cuts_a_long_string_and_keeps_the_keys_after_it():
    obj = {"a_name": LONG, "b_id": "batch_1", "c_counts": {"total": 3}}
    lines = json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True).split("\n")
    shown = clipped_json(obj)
    name_line = lines[1]
    assert len(name_line) > 100_000  # the key, the quotes and JSON's \u001b escapes
    assert shown.plain.split("\n") == [
        lines[0], head(name_line, FIELD_LIMIT) + f"… (cut: {len(name_line):,} characters)", *lines[2:],
    ]
    assert_inert(shown)


def test_raw_json_stops_encoding_at_its_limit():
    """A Gemini operation can hold megabytes of inline responses: only the shown beginning is
    encoded. The object sorted last would be turned into a string by `default=str` if the
    encoder went that far."""
    encoded: list[str] = []

    class Last:
        def __str__(self) -> str:
            encoded.append("last")
            return "last"

    obj = {"responses": [{"key": f"req-{i}", "text": "hello world " * 20} for i in range(5_000)], "zz": Last()}
    shown = clipped_json(obj)
    assert encoded == []
    lines = shown.plain.split("\n")
    full = json.dumps({**obj, "zz": "last"}, indent=2, ensure_ascii=False, sort_keys=True).split("\n")
    assert lines[:-1] == full[:len(lines) - 1]  # the beginning, exact
    assert lines[-1] == f"… (cut: the first {sum(len(line) + 1 for line in lines[:-1]):,} characters " \
                        "of the object are shown)"
    assert RAW_LIMIT <= len(shown.plain) <= RAW_LIMIT + FIELD_LIMIT + 100


# --- the screen ----------------------------------------------------------------------------------


async def test_the_detail_of_a_batch_with_100_kB_strings_opens_cut_and_shows_both_tabs(known):
    engine, sim = known
    batch = next(b for b in engine.ledger.batches("acme-prod") if b.status is Status.COMPLETED)
    engine.ledger.upsert_batches([batch.model_copy(update={
        "name": LONG, "metadata": {"note": LONG}, "errors": (BatchError(code="bad", message=LONG, line=3),),
        "raw": {**batch.raw, "metadata": {"note": LONG}, "name": LONG},
    })])
    breakdown = ErrorBreakdown(outcomes={Outcome.SUCCEEDED: 1, Outcome.SERVER_ERROR: 1}, groups=(
        ErrorGroup(outcome=Outcome.SERVER_ERROR, error_type="server_error", count=1, sample_message=LONG),))
    engine.ledger.record_analysis("acme-prod", batch.id, breakdown, {}, Cost(usd=0.01, standard_usd=0.02))

    async with dashboard(engine, sim) as (app, pilot, _):
        key = pick(app, lambda b: b.key == batch.key)
        await select(app, pilot, key)
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DetailScreen)

        fields = screen.query_one("#detail-fields").content.renderables[0].renderables[1]  # the Batch grid
        values = {label.plain: value for label, value in zip(fields.columns[0].cells, fields.columns[1].cells)}
        assert values["name"].plain == head(LONG, FIELD_LIMIT) + "… " + MARKER
        assert values["metadata.note"].plain == head(LONG, METADATA_LIMIT) + "… " + MARKER
        for value in values.values():
            assert_inert(value)
        errors = screen.query_one("#breakdown").content.renderables[0]  # the batch errors
        assert errors.plain.endswith("(line 3) " + head(LONG, SAMPLE_LIMIT) + "… " + MARKER)
        assert_inert(errors)
        table = screen.query_one("#breakdown").content.renderables[2]  # the groups
        (sample,) = table.columns[3].cells
        assert sample.plain == head(LONG, SAMPLE_LIMIT) + "… " + MARKER
        shot = app.export_screenshot()
        assert "\x1b" not in shot and "\u202e" not in shot

        await pilot.press("2")
        await pilot.pause()
        assert screen.query_one(TabbedContent).active == "raw"
        raw = screen.query_one("#raw-json")
        assert raw.region.height > 0  # laid out and on screen
        lines = raw.content.plain.split("\n")
        dumped = json.dumps(app.batches[key].raw, indent=2, ensure_ascii=False, sort_keys=True).split("\n")
        name_line = next(line for line in dumped if line.startswith('  "name": '))
        assert head(name_line, FIELD_LIMIT) + f"… (cut: {len(name_line):,} characters)" in lines
        assert f'  "id": "{batch.id}",' in lines
        assert_inert(raw.content)

        await pilot.press("1")
        await pilot.pause()
        assert screen.query_one(TabbedContent).active == "overview" and app.screen is screen
