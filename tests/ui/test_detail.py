"""The detail screen: every field, the timeline, counts, the error breakdown (from the ledger,
or analysed on the spot), usage and cost, files, retry lineage, raw JSON; live updates."""

from __future__ import annotations

import json

import pytest

from batchtui.core.fetch import analyse_results
from batchtui.core.models import Status
from batchtui.core.notices import results_expire_at
from batchtui.ui.app import make_app
from batchtui.ui.messages import AnalysisReady, BatchesUpdated, FetchDone
from batchtui.ui.screens.batches import BatchesScreen
from batchtui.ui.screens.detail import DetailScreen
from batchtui.ui.widgets.batch_table import BatchTable
from batchtui.ui.widgets.breakdown import Breakdown

from .conftest import SIZE, Recorder, dashboard, names, pick, select, text_of


async def open_detail(app, pilot, key) -> DetailScreen:
    await select(app, pilot, key)
    await pilot.press("enter")
    await pilot.pause()
    assert isinstance(app.screen, DetailScreen) and app.screen.key == key
    return app.screen


@pytest.fixture
async def analysed(known):
    """The demo with one OpenAI batch's results analysed into the ledger (as a fetch would)."""
    engine, sim = known
    batch = next(b for b in engine.ledger.batches("acme-prod") if b.status is Status.COMPLETED and b.counts.failed)
    await analyse_results(engine, engine.settings.account("acme-prod"), batch)
    engine.ledger.upsert_batches([engine.costed(batch)])
    return engine, sim, batch.key


async def test_every_field_timeline_counts_cost_and_breakdown(analysed):
    engine, sim, key = analysed
    async with dashboard(engine, sim) as (app, pilot, _):
        await open_detail(app, pilot, key)
        batch = app.batches[key]
        fields = text_of(app, "#detail-fields")
        for expected in (batch.id, batch.account, batch.provider.value, batch.model, batch.endpoint,
                         batch.provider_status, f"{batch.counts.total:,}", f"{batch.counts.failed:,}"):
            assert expected in fields
        for label in ("created", "in progress", "finalizing", "ended", "expires", "results expire"):
            assert label in fields
        assert batch.created_at.strftime("%Y-%m-%d %H:%M:%S") in fields
        assert results_expire_at(batch).strftime("%Y-%m-%d %H:%M:%S") in fields

        analysis = engine.ledger.analysis(*key)
        breakdown = text_of(app, "#breakdown")
        assert analysis.breakdown.groups
        for group in analysis.breakdown.groups:
            assert group.outcome.value in breakdown and group.error_type in breakdown
            assert f"{group.count:,}" in breakdown
        assert analysis.breakdown.groups[0].sample_message[:30] in breakdown.replace("\n", " ")

        cost = text_of(app, "#detail-cost")
        assert f"${batch.cost.usd:,.4f}" in cost and f"${batch.cost.standard_usd:,.4f}" in cost
        assert f"${batch.cost.standard_usd - batch.cost.usd:,.4f}" in cost  # savings
        usage = batch.usage
        assert f"{usage.cached_input / usage.input:.1%}" in cost  # cache share
        for result_file in batch.result_files:
            assert result_file.ref in cost

        await pilot.press("escape")
        assert isinstance(app.screen, BatchesScreen)
        assert app.screen.query_one(BatchTable).selected_key() == key


async def test_a_missing_breakdown_is_analysed_with_a_loading_state(known):
    engine, sim = known
    async with dashboard(engine, sim) as (app, pilot, rec):
        key = pick(app, lambda b: b.account == "claude-team" and b.status is Status.COMPLETED and b.counts.failed)
        assert engine.ledger.analysis(*key) is None and app.batches[key].cost.usd is None
        screen = await open_detail(app, pilot, key)
        assert screen.query_one(Breakdown).loading or rec.of(AnalysisReady)
        await rec.until(lambda: rec.of(AnalysisReady))
        await pilot.pause()
        assert not screen.query_one(Breakdown).loading
        analysis = engine.ledger.analysis(*key)
        assert analysis is not None
        breakdown = text_of(app, "#breakdown")
        for group in analysis.breakdown.groups:
            assert group.error_type in breakdown and f"{group.count:,}" in breakdown
        # Anthropic prices a batch from its results: the cost is known now, here and in the table.
        assert app.batches[key].cost.usd is not None
        assert f"${app.batches[key].cost.usd:,.4f}" in text_of(app, "#detail-cost")


async def test_raw_json_tab_shows_the_provider_object(known):
    engine, sim = known
    async with dashboard(engine, sim) as (app, pilot, _):
        key = pick(app, lambda b: b.account == "gemini-lab" and b.status is Status.COMPLETED)
        screen = await open_detail(app, pilot, key)
        assert not screen.raw_filled  # built only when first shown
        await pilot.press("2")
        await pilot.pause()
        shown = screen.query_one("#raw-json").content.plain
        assert shown == json.dumps(app.batches[key].raw, indent=2, ensure_ascii=False, sort_keys=True)
        await pilot.press("1")


async def test_retry_lineage_both_ways(known):
    engine, sim = known
    parent = next(b for b in engine.ledger.batches("acme-prod") if b.status is Status.COMPLETED)
    child = next(b for b in engine.ledger.batches("acme-prod") if b.id != parent.id)
    engine.ledger.record_retry("acme-prod", parent.id, child.id, ["acme-00001", "acme-00002"])
    async with dashboard(engine, sim) as (app, pilot, _):
        await open_detail(app, pilot, parent.key)
        lineage = text_of(app, "#detail-cost")
        assert "retried as" in lineage and child.id in lineage and "2 requests" in lineage
        await pilot.press("escape")
        await open_detail(app, pilot, child.key)
        lineage = text_of(app, "#detail-cost")
        assert "retry of" in lineage and parent.id in lineage


async def test_the_detail_follows_its_batch_live_and_fetch_shows_the_files(demo):
    engine, sim = demo
    rec = Recorder()
    app = make_app(engine, clock=sim.clock.datetime)
    async with app.run_test(size=SIZE, message_hook=rec) as pilot:
        await rec.polled(names(engine), 1)
        key = pick(app, lambda b: b.account == "acme-prod" and b.status is Status.IN_PROGRESS
                    and b.expires_at is not None and b.counts.total == 600)
        await open_detail(app, pilot, key)
        assert "in progress" in text_of(app, "#detail-title")

        sim.clock.advance(30 * 60)
        app.poll_now()
        await rec.until(lambda: any(b.key == key and b.is_terminal for m in rec.of(BatchesUpdated)
                                    for u in m.updates for b in u.changed))
        await pilot.pause()
        assert app.batches[key].status.value in text_of(app, "#detail-title")
        assert "f" in app.screen.active_bindings  # results now exist: fetch applies

        await pilot.press("f")
        await rec.until(lambda: rec.of(FetchDone))
        await pilot.pause()
        files = text_of(app, "#detail-cost")
        for fetched in rec.of(FetchDone)[0].result.files:
            assert f"fetched {fetched.kind}" in files and str(fetched.path) in files.replace("\n", "")
