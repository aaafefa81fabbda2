"""The poller's own work per cycle: it follows what changed, never the number of known batches,
and it still prices every ended batch from its results, one per cycle, the newest to end first.

Anthropic reports usage only in a batch's results, so every ended Anthropic batch waits to be
priced; the simulator counts each request by route."""

from __future__ import annotations

from datetime import timedelta

import pytest

from batchtui.core import fetch
from batchtui.core.config import Settings
from batchtui.core.engine import Engine
from batchtui.core.errors import NotFoundError
from batchtui.core.ledger import Ledger
from batchtui.core.models import Batch, Cost, ErrorBreakdown
from batchtui.core.paths import Paths
from batchtui.core.polling import Poller
from batchtui.core.pricing import PriceTable
from batchtui.sim import Simulator
from batchtui.sim.bulk import HOUR, seed_many

KEY = "sk-ant-test-polling"


@pytest.fixture
def world(tmp_path):
    sim = Simulator(scenario=None, manual_clock=True)
    ws = sim.world.add_workspace("anthropic", "acct", KEY)
    account = sim.account("acct", "anthropic")
    paths = Paths(config_dir=tmp_path, data_dir=tmp_path)
    settings = Settings().model_copy(update={"accounts": [account]})
    engine = Engine(settings=settings, paths=paths, ledger=Ledger.open(paths.ledger_file),
                    prices=PriceTable.load(settings.prices), transport=sim.transport(),
                    key_lookup=lambda _account: KEY)
    yield sim, ws, account, engine
    engine.close_ledger()


def results_downloads(ws) -> int:
    return sum(n for (_method, route), n in ws.requests.items() if "results" in route)


def priced(engine, account) -> set[str]:
    ids = [b.id for b in engine.ledger.batches(account=account.name)]
    return engine.ledger.analysed_ids(account.name, ids)


class Reads:
    """Counts reads of Batch properties that any walk over the known batches needs."""

    def __init__(self, monkeypatch) -> None:
        self.count = 0
        for name in ("is_terminal", "key"):
            real = getattr(Batch, name)

            def counted(batch, real=real):
                self.count += 1
                return real.fget(batch)

            monkeypatch.setattr(Batch, name, property(counted))


async def test_a_steady_cycle_does_no_work_per_known_batch(world, monkeypatch):
    sim, ws, account, engine = world
    seed_many(sim.world, ws, batches=1_500, active=2)
    # A dashboard that ran before: the ledger knows every batch, and has priced all but three.
    await Poller(engine, lambda _update: None, auto_analyse=False).poll_once(account)
    known = engine.ledger.batches(account=account.name)
    ended = [b.id for b in known if b.is_terminal]
    unpriced = set(ended[100:103])
    for batch_id in set(ended) - unpriced:
        engine.ledger.record_analysis(account.name, batch_id, ErrorBreakdown(), {}, Cost())
    checked: list[int] = []
    real_check = engine.ledger.analysed_ids

    def counting_check(account_name, ids):
        ids = list(ids)
        checked.append(len(ids))
        return real_check(account_name, ids)

    monkeypatch.setattr(engine.ledger, "analysed_ids", counting_check)

    poller = Poller(engine, lambda _update: None, known=known)  # as the dashboard starts it
    ws.requests.clear()
    await poller.poll_once(account)  # the known batches are checked against the ledger once, in bulk
    assert results_downloads(ws) == 1 and checked[0] == len(ended)
    reads = Reads(monkeypatch)
    for cycle in range(4):
        sim.clock.advance(60)
        ws.requests.clear()
        checked.clear()
        reads.count = 0
        update = await poller.poll_once(account)
        # The two still unpriced are priced on the next two cycles; then nothing is left to price.
        assert results_downloads(ws) == (1 if cycle < 2 else 0)
        assert sum(checked) == (1 if cycle < 2 else 0)  # only the batch about to be priced
        # A walk over the 1,500 known batches would read one of these per batch.
        assert reads.count < 100, reads.count
        assert update.status.batches == 1_500 and update.status.active == 2
    assert priced(engine, account) == set(ended)


async def test_ended_batches_are_priced_one_per_cycle_the_newest_to_end_first(world):
    sim, ws, account, engine = world
    made = seed_many(sim.world, ws, batches=5, active=1)
    running = made[-1].id
    poller = Poller(engine, lambda _update: None)
    order: list[str] = []
    for _ in range(2):
        before = priced(engine, account)
        ws.requests.clear()
        await poller.poll_once(account)
        assert results_downloads(ws) == 1
        order.extend(priced(engine, account) - before)
    assert running not in order
    sim.clock.advance(13 * HOUR)  # the running batch ends while two old ones wait to be priced
    for _ in range(3):
        before = priced(engine, account)
        ws.requests.clear()
        update = await poller.poll_once(account)
        assert results_downloads(ws) == 1
        order.extend(priced(engine, account) - before)
    assert order[2] == running  # it jumped the backlog
    assert sorted(order) == sorted(b.id for b in made)
    ws.requests.clear()
    update = await poller.poll_once(account)
    assert results_downloads(ws) == 0 and update.status.active == 0
    assert all(b.cost.usd is not None for b in engine.ledger.batches(account=account.name))


async def test_results_that_are_gone_are_skipped_and_the_next_batch_is_priced_that_cycle(world, monkeypatch):
    sim, ws, account, engine = world
    seed_many(sim.world, ws, batches=3)
    attempts: list[str] = []
    real = fetch.analyse_results

    async def first_gone(engine_, account_, batch, **kw):
        attempts.append(batch.id)
        if len(attempts) == 1:
            raise NotFoundError("the results have expired", account=account_.name)
        return await real(engine_, account_, batch, **kw)

    monkeypatch.setattr("batchtui.core.fetch.analyse_results", first_gone)
    poller = Poller(engine, lambda _update: None)
    first = await poller.poll_once(account)
    assert len(attempts) == 2 and priced(engine, account) == {attempts[1]}
    assert [b.id for b in first.changed].count(attempts[1]) >= 1
    for _ in range(3):
        await poller.poll_once(account)
    assert attempts.count(attempts[0]) == 1  # never tried again: its cost stays unknown
    assert len(attempts) == 3 and len(priced(engine, account)) == 2


async def test_forgetting_an_account_drops_its_queue(world):
    sim, ws, account, engine = world
    seed_many(sim.world, ws, batches=3)
    poller = Poller(engine, lambda _update: None)
    await poller.poll_once(account)
    poller.forget(account.name)
    assert poller.known(account.name) == {}
    ws.requests.clear()
    update = await poller.poll_once(account)  # as new: lists everything, prices the next one
    assert update.status.batches == 3 and results_downloads(ws) == 1


async def test_an_active_batch_the_provider_no_longer_has_stops_being_fetched(world, monkeypatch):
    sim, ws, account, engine = world
    seed_many(sim.world, ws, batches=20, active=2)
    await Poller(engine, lambda _update: None, auto_analyse=False).poll_once(account)
    known = engine.ledger.batches(account=account.name)
    running = next(b for b in known if not b.is_terminal)
    # A running batch the ledger knows and the provider has since deleted (older than every
    # listed one, so only a fetch by id could find it).
    gone = running.model_copy(update={"id": "msgbatch_deleted_meanwhile",
                                      "created_at": min(b.created_at for b in known) - timedelta(hours=1)})
    client = engine.client(account)
    asked: list[str] = []
    real_get = client.get_batch

    async def counting_get(batch_id):
        asked.append(batch_id)
        return await real_get(batch_id)

    monkeypatch.setattr(client, "get_batch", counting_get)
    poller = Poller(engine, lambda _update: None, known=[*known, gone], auto_analyse=False)
    actives = []
    for _ in range(6):
        sim.clock.advance(60)
        actives.append((await poller.poll_once(account)).status.active)
    from batchtui.core.polling import GONE_AFTER

    assert asked.count(gone.id) == GONE_AFTER  # then no more: not one request per cycle forever
    assert actives[0] == actives[GONE_AFTER - 2] == 3 and actives[-1] == 2


async def test_misses_count_only_in_a_row(world, monkeypatch):
    """An active batch the provider once failed to find, then listed again, starts its count
    of "not found" answers afresh the next time the listing misses it."""
    from batchtui.core.polling import GONE_AFTER

    sim, ws, account, engine = world
    seed_many(sim.world, ws, batches=5, active=1)
    poller = Poller(engine, lambda _update: None, auto_analyse=False)
    await poller.poll_once(account)
    running = next(b for b in poller.known(account.name).values() if not b.is_terminal)
    client = engine.client(account)
    real_list = client.list_batches
    hidden = {"on": True}

    async def not_found(batch_id):
        raise NotFoundError("no such batch", account=account.name)

    async def listing(**kw):  # the running batch left out while `hidden` says so
        async for batch in real_list(**kw):
            if not (hidden["on"] and batch.id == running.id):
                yield batch

    monkeypatch.setattr(client, "get_batch", not_found)
    monkeypatch.setattr(client, "list_batches", listing)
    for _ in range(GONE_AFTER - 1):
        await poller.poll_once(account)  # missed and not found: one short of giving up
    hidden["on"] = False
    await poller.poll_once(account)  # listed again
    hidden["on"] = True
    for _ in range(GONE_AFTER - 1):
        update = await poller.poll_once(account)
    assert update.status.active == 1  # still watched: these misses started from zero
    update = await poller.poll_once(account)
    assert update.status.active == 0
