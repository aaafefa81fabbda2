"""The home screen: ledger first then live, keyed diffs, one handled update per poll cycle,
sorting, filters, totals, account health, notices and the interface the other screens use."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from textual import events

from batchtui.core.config import Settings, UiSettings
from batchtui.core.models import Status
from batchtui.core.polling import AccountStatus, Health, PollUpdate
from batchtui.demo import demo_engine
from batchtui.ui.app import make_app
from batchtui.ui.filters import BatchFilter
from batchtui.ui.messages import BatchesUpdated
from batchtui.ui.screens.batches import BatchesScreen
from batchtui.ui.screens.help import HelpScreen
from batchtui.ui.widgets.batch_table import COLUMNS, TIME_COLUMNS, BatchTable

from .conftest import NO_TIMER_SPEED, SIZE, START, Recorder, dashboard, names, text_of


@pytest.fixture(autouse=True)
def no_repaint_timer(monkeypatch):
    # The ages repaint every few real seconds; here only the tests move time.
    monkeypatch.setattr("batchtui.ui.screens.batches.TICK_SECONDS", 1e6)


def table_of(app) -> BatchTable:
    return app.screen.query_one(BatchTable)


async def test_first_paint_shows_the_ledger_before_any_poll(known):
    engine, sim = known
    ledger_keys = {b.key for b in engine.ledger.batches()}
    assert ledger_keys
    rec = Recorder()
    shown_when_first_poll_arrived: list[set] = []
    app = make_app(engine, clock=sim.clock.datetime)

    def hook(message) -> None:
        if isinstance(message, BatchesUpdated) and not shown_when_first_poll_arrived:
            shown_when_first_poll_arrived.append(set(table_of(app).shown))
        rec(message)

    async with app.run_test(size=SIZE, message_hook=hook):
        await rec.polled(names(engine), 1)
    assert shown_when_first_poll_arrived == [ledger_keys]
    kinds = [type(m) for m in rec.messages]
    assert kinds.index(events.Ready) < kinds.index(BatchesUpdated)  # polling began after the first frame


async def test_a_big_ledger_paints_its_newest_rows_first_and_polls_once_all_is_read(known, monkeypatch):
    engine, sim = known
    monkeypatch.setattr("batchtui.ui.app.FIRST_SCREEN", 6)
    ledger = engine.ledger.batches()  # newest first
    assert len(ledger) > 6
    rec = Recorder()
    first_frame: list[list] = []
    app = make_app(engine, clock=sim.clock.datetime)

    def hook(message) -> None:
        if isinstance(message, events.Ready):
            first_frame.append(table_of(app).order())
        rec(message)

    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await rec.polled(names(engine), 1)
        await pilot.pause()
        # The first frame held the newest six, in order; the rest came before the first poll.
        assert first_frame == [[b.key for b in ledger[:6]]]
        assert not app.loading
        assert {b.key for b in ledger} <= set(table_of(app).shown)
        assert "reading the ledger" not in text_of(app, "#filter-state")
    kinds = [type(m) for m in rec.messages]
    assert kinds.index(events.Ready) < kinds.index(BatchesUpdated)


async def test_without_polling_the_table_is_the_ledger_and_no_worker_runs(known):
    engine, sim = known
    async with dashboard(engine, sim) as (app, pilot, _):
        assert set(table_of(app).shown) == {b.key for b in engine.ledger.batches()}
        assert not [w for w in app.workers if w.group.startswith("poll")]
        assert app.poller is None


async def test_a_poll_updates_only_changed_cells_and_the_cursor_stays_on_its_batch(demo, monkeypatch):
    engine, sim = demo
    rec = Recorder()
    app = make_app(engine, clock=sim.clock.datetime)
    async with app.run_test(size=SIZE, message_hook=rec) as pilot:
        await rec.polled(names(engine), 1)
        table = table_of(app)
        target = next(k for k in table.order()[8:] if app.batches[k].is_terminal)
        table.select(target)
        await pilot.pause()
        index_before = table.cursor_row
        on_screen_before = table.cursor_row - round(table.scroll_y)
        static = [column for column, _, _ in COLUMNS if column not in TIME_COLUMNS]
        cells_before = {key: {c: table.cell(key, c) for c in static} for key in table.shown}
        # A poll is applied key by key: never by sorting every row again.
        monkeypatch.setattr(table, "_resort", lambda: pytest.fail("a poll re-sorted every row"))

        sim.clock.advance(15 * 60)
        await pilot.press("r")
        await rec.polled(names(engine), 2)
        await pilot.pause()

        changed = {b.key for m in rec.of(BatchesUpdated) for u in m.updates if u.cycle == 2 for b in u.changed}
        new_rows = set(table.shown) - set(cells_before)
        assert new_rows, "the scenario creates batches between the two polls"
        moved = changed - new_rows
        assert moved, "and moves running ones along"
        repainted = set()
        for key, before in cells_before.items():
            after = {c: table.cell(key, c) for c in static}
            if [t.plain for t in after.values()] != [t.plain for t in before.values()]:
                repainted.add(key)
            if key not in changed:
                # An unchanged batch keeps the very cells it had: nothing was re-rendered.
                assert all(after[c] is before[c] for c in static)
        assert repainted and repainted <= changed  # the moved batches show their new state
        assert all(table.shown[key] is app.batches[key] for key in moved)
        # The new batches are the newest, so they went on top and the cursor moved with its batch.
        assert table.selected_key() == target
        assert table.cursor_row == index_before + len(new_rows)
        await pilot.pause()
        # Scrolled along with it, as far as the table can scroll, so it stays where it was seen.
        assert round(table.scroll_y) == min(table.cursor_row - on_screen_before, round(table.max_scroll_y))
        assert table.scroll_y > 0


async def test_exactly_one_update_is_handled_per_poll_cycle_per_account(demo):
    engine, sim = demo
    rec = Recorder()
    app = make_app(engine, clock=sim.clock.datetime)
    accounts = names(engine)
    async with app.run_test(size=SIZE, message_hook=rec):
        await rec.polled(accounts, 1)
        for cycle in (2, 3):
            sim.clock.advance(5 * 60)
            app.poll_now()
            await rec.polled(accounts, cycle)
    handled = Counter(rec.cycles())
    assert set(handled) == {(a, c) for a in accounts for c in (1, 2, 3)}
    assert set(handled.values()) == {1}
    # A burst may share one message, never split or repeat one.
    assert len(rec.of(BatchesUpdated)) <= len(handled)


def test_coalescing_folds_the_older_updates_into_the_newer_message():
    def update(account: str, cycle: int) -> PollUpdate:
        return PollUpdate(account, (), AccountStatus(account, Health.OK), cycle)

    older = BatchesUpdated((update("a", 1), update("b", 1)))
    newer = BatchesUpdated((update("a", 2),))
    assert older.can_replace(newer)
    assert [(u.account, u.cycle) for u in newer.updates] == [("a", 1), ("b", 1), ("a", 2)]
    assert not older.can_replace(events.Key("x", "x"))


async def test_sorting_by_key_by_header_and_reversed(known):
    engine, sim = known
    async with dashboard(engine, sim) as (app, pilot, _):
        table = table_of(app)
        created = [app.batches[k].created_at for k in table.order()]
        assert created == sorted(created, reverse=True)  # newest first

        while table.sort_column != "failed":
            await pilot.press("S")
        failed = [app.batches[k].counts.failed for k in table.order()]
        known_values = [f for f in failed if f is not None]
        assert known_values == sorted(known_values)
        assert failed[len(known_values):] == [None] * (len(failed) - len(known_values))  # unknown last

        await pilot.press("I")
        failed = [app.batches[k].counts.failed for k in table.order()]
        known_values = [f for f in failed if f is not None]
        assert known_values == sorted(known_values, reverse=True)

        # A click on the Cost header sorts by cost; a second click reverses.
        x = table.column_offset("cost") + 2
        await pilot.click(BatchTable, offset=(x, 0))
        assert table.sort_column == "cost" and not table.sort_reverse
        costs = [app.batches[k].cost.usd for k in table.order() if app.batches[k].cost and app.batches[k].cost.usd is not None]
        assert costs == sorted(costs)
        await pilot.click(BatchTable, offset=(x, 0))
        assert table.sort_reverse


async def test_text_filter_and_quick_filters(known):
    engine, sim = known
    async with dashboard(engine, sim) as (app, pilot, _):
        table = table_of(app)
        everything = set(app.batches)

        await pilot.press("slash", *"claude")
        expected = {k for k, b in app.batches.items()
                    if any("claude" in (s or "").lower() for s in (b.account, b.id, b.model, b.name, b.status.value))}
        assert expected and set(table.shown) == expected
        assert "(filtered)" in text_of(app, "#totals")
        await pilot.press("enter")  # keeps the filter, back to the table
        assert table.has_focus and set(table.shown) == expected

        await pilot.press("escape")
        assert set(table.shown) == everything

        await pilot.press("x")  # active only
        assert set(table.shown) == {k for k, b in app.batches.items() if not b.is_terminal}
        await pilot.press("x")  # then one status at a time, in lifecycle order
        assert set(table.shown) == {k for k, b in app.batches.items() if b.status is Status.VALIDATING}
        await pilot.press("escape")

        await pilot.press("p")  # first stop: a provider with several accounts
        providers = {app.batches[k].provider.value for k in table.shown}
        assert providers == {"openai"}
        assert {k[0] for k in table.shown} == {"acme-prod", "acme-research"}
        stops = 0
        while not (table.shown and {k[0] for k in table.shown} == {"gemini-lab"}):
            await pilot.press("p")
            stops += 1
            assert stops < 10
        assert set(table.shown) == {k for k in everything if k[0] == "gemini-lab"}


async def test_typing_a_filter_looks_again_only_at_the_rows_shown_and_lands_where_a_full_pass_does(known, monkeypatch):
    engine, sim = known
    looked: list[str] = []
    real_matches = BatchFilter.matches

    def counting(self, batch):
        looked.append(batch.id)
        return real_matches(self, batch)

    monkeypatch.setattr(BatchFilter, "matches", counting)

    def from_scratch(text: str) -> set:
        return {k for k, b in app.batches.items() if real_matches(BatchFilter(text), b)}

    async with dashboard(engine, sim) as (app, pilot, _):
        table = table_of(app)
        await pilot.press("slash", *"clau")
        after_clau = set(table.shown)
        assert after_clau == from_scratch("clau") and 0 < len(after_clau) < len(app.batches)
        looked.clear()
        await pilot.press("d")  # "claud" lets through no batch that "clau" hid
        assert len(looked) == len(after_clau)
        assert set(table.shown) == from_scratch("claud")
        order = table.order()
        table.show(app.batches)  # the full pass, for comparison
        assert table.order() == order

        looked.clear()
        await pilot.press("backspace")  # wider again: every batch is looked at
        assert len(looked) >= len(app.batches)
        assert set(table.shown) == after_clau


async def test_totals_count_statuses_and_sum_cost_today_and_this_month(known):
    engine, sim = known
    async with dashboard(engine, sim) as (app, pilot, _):
        text = text_of(app, "#totals")
    batches = list(app.batches.values())
    for status in Status:
        n = sum(b.status is status for b in batches)
        if n:
            assert f"{n:,} {status.value.replace('_', ' ')}" in text
    priced = [b for b in batches if b.cost and b.cost.usd is not None]
    today = sum(b.cost.usd for b in priced if b.created_at.date() == START.date())
    month = sum(b.cost.usd for b in priced if (b.created_at.year, b.created_at.month) == (START.year, START.month))
    assert month != today  # the scenario has batches from earlier this month, and last month
    assert f"${today:,.2f}" in text
    assert f"${month:,.2f}" in text


async def test_a_refused_key_shows_auth_error_while_the_other_accounts_update(demo):
    engine, sim = demo
    rec = Recorder()
    app = make_app(engine, clock=sim.clock.datetime)
    async with app.run_test(size=SIZE, message_hook=rec):
        await rec.polled(names(engine), 1)
        statuses = app.account_statuses
        assert statuses["old-intern-key"].health is Health.AUTH_ERROR
        assert all(s.health is Health.OK for name, s in statuses.items() if name != "old-intern-key")
        strip = text_of(app, "#health")
        assert "old-intern-key auth error" in strip
        assert statuses["old-intern-key"].last_error.removeprefix("old-intern-key: ") in strip

        sim.clock.advance(20 * 60)
        app.poll_now()
        await rec.polled(names(engine), 2)
        changed_accounts = {u.account for m in rec.of(BatchesUpdated) for u in m.updates if u.cycle == 2 and u.changed}
        assert {"acme-prod", "claude-team", "gemini-lab"} <= changed_accounts
        assert app.account_statuses["old-intern-key"].health is Health.AUTH_ERROR


async def test_notices_when_a_batch_ends_but_not_at_start_up(known, notes, monkeypatch):
    engine, sim = known
    bells: list[bool] = []
    sim.clock.advance(5 * 60)  # three batches end while the dashboard is closed: no toast for those
    rec = Recorder()
    app = make_app(engine, clock=sim.clock.datetime)
    monkeypatch.setattr(app, "bell", lambda: bells.append(True))
    async with app.run_test(size=SIZE, message_hook=rec):
        await rec.polled(names(engine), 1)
        startup_transitions = [u for m in rec.of(BatchesUpdated) for u in m.updates if u.changed]
        assert [b for u in startup_transitions for b in u.changed if b.is_terminal]
        assert not [n for n in notes if n[1] in ("Batch ended", "More failures") or "batches changed" in n[1]]
        assert not bells

        before = dict(app.batches)
        sim.clock.advance(25 * 60)
        app.poll_now()
        await rec.polled(names(engine), 2)
        ended = {k for k, b in app.batches.items() if k in before and not before[k].is_terminal and b.is_terminal}
        assert ended, "the scenario ends batches in these 25 minutes"
        toasts = [n for n in notes if n[1] in ("Batch ended", "More failures") or "batches changed" in n[1]]
        assert toasts and all(markup is False for _, _, _, markup in toasts)
        text = "\n".join(message for message, *_ in toasts)
        assert all(batch_id in text for _, batch_id in ended)
        assert bells

        shown = len(toasts)
        app.poll_now()  # nothing new happens: nothing is announced twice
        await rec.polled(names(engine), 3)
        assert len([n for n in notes if n[1] in ("Batch ended", "More failures") or "batches changed" in n[1]]) == shown


async def test_remove_and_add_account_stop_and_start_its_poll(demo):
    engine, sim = demo
    rec = Recorder()
    app = make_app(engine, clock=sim.clock.datetime)
    account = engine.settings.account("gemini-lab")
    async with app.run_test(size=SIZE, message_hook=rec) as pilot:
        await rec.polled(names(engine), 1)
        signals: list = []
        app.statuses_changed.subscribe(app, signals.append, immediate=True)
        app.remove_account("gemini-lab")
        await pilot.pause()
        table = table_of(app)
        assert not [k for k in table.shown if k[0] == "gemini-lab"]
        assert "gemini-lab" not in app.account_statuses and signals
        running = [w for w in app.workers if w.group == "poll:gemini-lab" and w.is_running]
        assert not running

        app.add_account(account)
        assert app.account_statuses["gemini-lab"].health is Health.PENDING
        await rec.until(lambda: rec.cycles().count(("gemini-lab", 1)) == 2)
        assert [k for k in table.shown if k[0] == "gemini-lab"]
        assert app.account_statuses["gemini-lab"].health is Health.OK


async def test_keys_are_remapped_from_the_config_keymap(tmp_path):
    # A bare name is ours ("fetch" is batchtui.fetch); a full id works too.
    settings = Settings(ui=UiSettings(keymap={"fetch": "F", "batchtui.copy_id": "ctrl+y"}))
    engine, sim = demo_engine(tmp_path / "home", speed=NO_TIMER_SPEED, start=START.timestamp(), manual_clock=True,
                              settings=settings)
    app = make_app(engine, clock=sim.clock.datetime)
    rec = Recorder()
    try:
        async with app.run_test(size=SIZE, message_hook=rec) as pilot:
            await rec.polled(names(engine), 1)
            table = table_of(app)
            table.select(next(k for k in table.order() if app.batches[k].result_files))
            await pilot.pause()
            actions = {key: active.binding.action for key, active in app.screen.active_bindings.items()}
            assert actions.get("F") == "fetch" and actions.get("f") != "fetch"
            assert actions.get("ctrl+y") == "copy_id" and "y" not in actions
            await pilot.press("ctrl+y")
            assert app.clipboard == table.selected_key()[1]
    finally:
        await engine.aclose()
        engine.close_ledger()


async def test_help_lists_the_keys_that_apply(known):
    engine, sim = known
    async with dashboard(engine, sim) as (app, pilot, _):
        table = table_of(app)
        fetchable = next(k for k in table.order() if app.batches[k].result_files)
        table.select(fetchable)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = text_of(app, "#help-keys")
        assert "Download the selected batch's results" in text
        assert "Poll every account now" in text
        await pilot.press("escape")
        assert isinstance(app.screen, BatchesScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)


async def test_ages_move_with_the_clock_tick_without_a_walk_over_every_batch(known, monkeypatch):
    engine, sim = known
    async with dashboard(engine, sim) as (app, pilot, _):
        table = table_of(app)
        key = table.order()[0]
        age = table.cell(key, "age").plain
        sim.clock.advance(3 * 3600)
        monkeypatch.setattr(table, "show", lambda *a, **k: pytest.fail("the tick walked every batch"))
        app.screen.tick()
        await pilot.pause()
        later = table.cell(key, "age").plain
        assert later != age
        assert sim.clock.datetime() - app.batches[key].created_at > timedelta(hours=3)
        # Sorted by risk, the tick re-places the rows whose flags the clock changed.
        monkeypatch.undo()
        table.set_sort("risk", False)
        sim.clock.advance(26 * 86400)  # finished batches' results near their deletion
        app.screen.tick()
        flagged = [k for k in table.order() if table.flags_of(k)]
        assert flagged and table.order()[:len(flagged)] == flagged


def test_the_dashboard_refuses_a_broken_config_with_a_clear_message(tmp_path, monkeypatch, capsys):
    from batchtui.ui.launch import run_dashboard

    monkeypatch.setenv("BATCHTUI_HOME", str(tmp_path))
    (tmp_path / "config.toml").write_text("[ui]\nbell = 'loud'\n")
    assert run_dashboard() == 1
    err = capsys.readouterr().err
    assert "config.toml" in err and "bell" in err and "Traceback" not in err


async def test_the_demo_says_so_in_the_title(demo):
    engine, sim = demo
    app = make_app(engine, clock=sim.clock.datetime, poll=False, demo=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "DEMO" in app.title


def test_cells_say_finalizing_processing_and_estimates_as_they_are():
    from batchtui.core.models import Batch, Cost, Provider, RequestCounts
    from batchtui.ui.widgets import cells

    colors = {s.value: f"color({i})" for i, s in enumerate(Status)}

    def batch(status: Status, counts: RequestCounts, cost: Cost | None = None) -> Batch:
        return Batch(account="a", provider=Provider.OPENAI, id="b", status=status, provider_status=status.value,
                     created_at=START, counts=counts, cost=cost)

    finalizing = batch(Status.FINALIZING, RequestCounts(total=10, succeeded=9, failed=1))
    assert cells.status_cell(finalizing, colors).plain == "finalizing"
    bar = cells.progress_cell(finalizing, colors)
    assert "10/10" in bar.plain
    assert {str(span.style) for span in bar.spans} == {colors["finalizing"]}  # never the completed colour

    frozen = batch(Status.IN_PROGRESS, RequestCounts(total=1500, processing=1500, live=False))
    assert cells.progress_cell(frozen, colors).plain == "1,500 processing"

    assert cells.cost_cell(batch(Status.IN_PROGRESS, RequestCounts(), Cost(usd=2.5, estimated=True))).plain == "~$2.50"
    assert cells.cost_cell(batch(Status.COMPLETED, RequestCounts(), Cost(reason="unpriced"))).plain == "-"


async def test_batches_at_risk_are_flagged(known):
    from batchtui.core.notices import risks

    engine, sim = known
    sim.clock.advance(3600)  # Anthropic keeps results 29 days; the oldest batch is 26 days and an hour old now
    async with dashboard(engine, sim) as (app, pilot, _):
        table = table_of(app)
        now = sim.clock.datetime()
        batches = list(app.batches.values())
        at_risk = {b.key: risks(b, now, [p for p in batches if p.account == b.account]) for b in batches}
        at_risk = {k: flags for k, flags in at_risk.items() if flags}
        assert at_risk, "the scenario has a batch whose results are about to expire"
        for key in app.batches:
            assert bool(table.cell(key, "risk").plain) == (key in at_risk)
        key, flags = next(iter(at_risk.items()))
        table.select(key)
        await pilot.pause()
        assert all(flag in text_of(app, "#row-hint") for flag in flags)


async def test_a_new_theme_recolours_the_status_cells(known):
    engine, sim = known
    async with dashboard(engine, sim) as (app, pilot, _):
        table = table_of(app)
        key = table.order()[0]
        before = table.cell(key, "status").style
        other = next(name for name in ("batchtui-light", "textual-light") if name in app.available_themes)
        app.theme = other
        await pilot.pause()
        after = table.cell(key, "status").style
        assert after != before and after == app.status_colors()[app.batches[key].status.value]


async def test_a_and_s_open_the_accounts_and_submit_screens(known):
    from batchtui.ui.screens.accounts import AccountsScreen
    from batchtui.ui.screens.submit import SubmitScreen

    engine, sim = known
    async with dashboard(engine, sim) as (app, pilot, _):
        await pilot.press("a")
        assert isinstance(app.screen, AccountsScreen)
        app.pop_screen()
        await pilot.pause()
        await pilot.press("s")
        assert isinstance(app.screen, SubmitScreen)
