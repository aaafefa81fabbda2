"""The batches table's incremental bookkeeping against the plain answer.

The table keeps its row order, totals and column widths up to date key by key (a poll) or
by one sort (a filter, start-up). After a random run of polls, new batches, removals, filter
and sort changes, every one of them must equal what a from-scratch computation gives.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult

from batchtui.core.models import Batch, Cost, Provider, RequestCounts, Status
from batchtui.core.notices import risks
from batchtui.ui.widgets.batch_table import COLUMNS, PADDING, BatchTable, _QueueWaits, sort_value
from batchtui.ui.widgets.totals import Totals

NOW = datetime(2025, 10, 10, 9, 0, tzinfo=UTC)
ACCOUNTS = [("acme", Provider.OPENAI), ("claude-team", Provider.ANTHROPIC), ("lab", Provider.GEMINI)]
MODELS = [None, "gpt-5.4-mini", "claude-sonnet-4-6", "a-model-with-a-long-name-indeed"]


def random_batch(rng: random.Random, account: str, provider: Provider, number: int) -> Batch:
    status = rng.choice(list(Status))
    created = NOW - timedelta(minutes=rng.randrange(0, 60 * 24 * 40))
    total = rng.randrange(0, 500)
    cost = rng.choice([None, Cost(usd=round(rng.random() * 9, 2), standard_usd=round(rng.random() * 18, 2),
                                   estimated=rng.random() < 0.3), Cost(reason="unpriced")])
    started = created + timedelta(minutes=rng.randrange(1, 90)) if status is not Status.VALIDATING else None
    return Batch(account=account, provider=provider, id=f"batch_{number:05d}", status=status,
                 provider_status=status.value, created_at=created, in_progress_at=started,
                 expires_at=created + timedelta(hours=24), model=rng.choice(MODELS),
                 counts=RequestCounts(total=total, succeeded=rng.randrange(0, total + 1), failed=rng.randrange(0, 9)),
                 cost=cost)


def expected_order(table: BatchTable, batches: list[Batch], everything: list[Batch],
                   now: datetime) -> list[tuple[str, str]]:
    """By the column's value (None last), ties newest first, then by key; "stuck in queue"
    compares with every batch of the account, shown or not."""
    def flags(batch: Batch) -> list[str]:
        return risks(batch, now, [b for b in everything if b.account == batch.account])

    valued, missing = [], []
    for batch in batches:
        value = sort_value(table.sort_column, batch, flags(batch) if table.sort_column == "risk" else None)
        (missing if value is None else valued).append((value, batch))
    tiebreak = lambda item: (-item[1].created_at.timestamp(), item[1].key)  # noqa: E731
    valued.sort(key=tiebreak)
    valued.sort(key=lambda item: item[0], reverse=table.sort_reverse)
    missing.sort(key=tiebreak)
    return [b.key for _, b in valued] + [b.key for _, b in missing]


def expected_totals(batches: list[Batch], now: datetime) -> tuple[Counter, tuple]:
    plain = Totals(UTC)
    for batch in batches:
        plain.add(batch)
    return Counter(b.status for b in batches), plain.spend(now)


class OneTable(App):
    def compose(self) -> ComposeResult:
        yield BatchTable(clock=lambda: NOW, colors=lambda: {}, id="t")


async def test_the_running_order_totals_and_widths_equal_a_fresh_computation():
    rng = random.Random(7)
    known: dict[tuple[str, str], Batch] = {}
    number = 0
    for account, provider in ACCOUNTS:
        for _ in range(60):
            number += 1
            batch = random_batch(rng, account, provider, number)
            known[batch.key] = batch
    app = OneTable()
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(BatchTable)
        table.show(known)
        for step in range(120):
            roll = rng.random()
            if roll < 0.5:  # a poll: some batches move on, one may be new, one may go
                changed = set()
                for key in rng.sample(sorted(known), 5):
                    old = known[key]
                    known[key] = random_batch(rng, old.account, old.provider, int(old.id.split("_")[1]))
                    changed.add(key)
                if rng.random() < 0.3:
                    number += 1
                    account, provider = rng.choice(ACCOUNTS)
                    fresh = random_batch(rng, account, provider, number)
                    known[fresh.key] = fresh
                    changed.add(fresh.key)
                if rng.random() < 0.2:
                    gone = rng.choice(sorted(known))
                    del known[gone]
                    changed.add(gone)
                table.show(known, only=changed)
            elif roll < 0.7:
                status = rng.choice([None, *Status])
                account = rng.choice([None, *(a for a, _ in ACCOUNTS)])
                table.row_filter = lambda b, s=status, a=account: (s is None or b.status is s) and (
                    a is None or b.account == a)
                table.show(known)
            else:
                column = rng.choice([key for key, _, _ in COLUMNS])
                table.set_sort(column, rng.random() < 0.5)
            await pilot.pause()

            if table.sort_column == "risk":
                # Flags move with other batches (the account's usual queue time): the screen's
                # clock tick re-places every row, as here.
                table.show(known)
            visible = [b for b in known.values() if table.row_filter(b)]
            assert table.order() == expected_order(table, visible, list(known.values()), NOW), step
            assert set(table.shown) == {b.key for b in visible}
            statuses, (today, month) = expected_totals(visible, NOW)
            assert +table.totals.per_status == statuses
            for got, want in zip(table.totals.spend(NOW), (today, month)):
                assert (got.estimated, got.unpriced) == (want.estimated, want.unpriced)
                assert got.usd == pytest.approx(want.usd) and got.saved == pytest.approx(want.saved)
            # The fit-to-content columns are as wide as their widest shown cell (or label).
            account_width = table.column_offset("id") - 2 * PADDING
            model_width = table.column_offset("age") - table.column_offset("model") - 2 * PADDING
            assert account_width == max([len("Account"), *(table.cell(b.key, "account").cell_len for b in visible)])
            assert model_width == max([len("Model"), *(table.cell(b.key, "model").cell_len for b in visible)])


@given(st.lists(st.one_of(st.none(), st.integers(0, 40)), min_size=0, max_size=30), st.integers(0, 35))
def test_the_typical_queue_wait_is_the_median_of_the_other_started_batches(waits_in_minutes, asked):
    # Read off one sorted list per account; here against sorting the others for each batch.
    batches = [Batch(account="acme", provider=Provider.OPENAI, id=f"batch_{n}", status=Status.IN_PROGRESS,
                     provider_status="in_progress", created_at=NOW,
                     in_progress_at=None if wait is None else NOW + timedelta(minutes=wait))
               for n, wait in enumerate(waits_in_minutes)]
    waits = _QueueWaits()
    for batch in batches:
        waits.note(batch.key, batch)
    stranger = Batch(account="acme", provider=Provider.OPENAI, id="batch_new", status=Status.VALIDATING,
                     provider_status="validating", created_at=NOW)
    for batch in [*batches[asked:asked + 1], stranger]:
        others = sorted(b.in_progress_at - b.created_at for b in batches
                        if b.in_progress_at is not None and b.id != batch.id)
        if not others:
            want = None
        elif len(others) % 2:
            want = others[len(others) // 2]
        else:
            want = (others[len(others) // 2 - 1] + others[len(others) // 2]) / 2
        assert waits.typical(batch) == want


# -- painting: the row builder against Rich's own Text rendering -----------------------------

COLOURS = {"validating": "#a5d6ff", "in_progress": "ansi_blue", "finalizing": "yellow", "completed": "#3fb950",
           "failed": "red", "expired": "#d29922", "cancelling": "magenta", "cancelled": "bright_black"}
STYLES = [None, "", "dim", "bold red", "#00ff00 on #101010", "italic underline", "not-a-style"]
TEXTS = st.text(alphabet=st.sampled_from("ab -/0…█▏日本"), max_size=12)


class ColouredTable(App):
    def compose(self) -> ComposeResult:
        yield BatchTable(clock=lambda: NOW, colors=lambda: COLOURS, id="t")


@st.composite
def cells_and_widths(draw):
    """A row of random cells (styles, overlapping spans, either justification) and column
    widths that mostly fit them (sometimes not: the cut goes Rich's way)."""
    row, widths = {}, {}
    for key, _, _ in COLUMNS:
        plain = draw(TEXTS)
        cell = Text(plain, style=draw(st.sampled_from(STYLES)) or "", justify=draw(st.sampled_from(["left", "right"])))
        for _ in range(draw(st.integers(0, 3))):
            if len(plain) >= 1:
                start = draw(st.integers(0, len(plain) - 1))
                end = draw(st.integers(start + 1, len(plain)))
                cell.stylize(draw(st.sampled_from(STYLES[2:])), start, end)
        row[key] = cell
        widths[key] = max(1, cell.cell_len + draw(st.integers(-1, 3)))
    return row, widths


async def test_a_row_is_painted_exactly_as_rich_renders_its_cells_in_one_text():
    # Random cells (hypothesis) and the real cells of random batches, with and without the
    # cursor's style over them: the same segments, styles and width as the Text way.
    app = ColouredTable()
    async with app.run_test(size=(200, 30)) as pilot:
        table = app.query_one(BatchTable)
        rng = random.Random(3)
        known = {}
        for number, (account, provider) in enumerate(ACCOUNTS * 20):
            batch = random_batch(rng, account, provider, number)
            known[batch.key] = batch
        table.show(known)
        await pilot.pause()
        over = Style(bgcolor="#224466", bold=True)
        looks = [(table.rich_style, None), (table.rich_style, over), (Style.null(), None)]
        for key in known:
            row = table._row_cells(key)
            for under, cursor in looks:
                fast, slow = table._strip(row, under, cursor), table._strip_via_text(row, under, cursor)
                assert list(fast) == list(slow) and fast.cell_length == slow.cell_length

        @given(cells_and_widths())
        @hsettings(max_examples=300, deadline=None)
        def same_as_rich(drawn):
            row, widths = drawn
            table._widths = widths
            for under, cursor in looks:
                fast, slow = table._strip(row, under, cursor), table._strip_via_text(row, under, cursor)
                assert list(fast) == list(slow) and fast.cell_length == slow.cell_length

        same_as_rich()
