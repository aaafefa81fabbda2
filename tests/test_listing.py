"""Listing batches at scale (tests/bench measures it): a full listing asks for the next page
while it reads this one, a listing that may stop early does not, the poller's first page is
small once it knows the account, and the ledger reads and writes thousands of batches in a
few queries with the same answers as one at a time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from batchtui.core import transport as transport_module
from batchtui.core.accounts import Account
from batchtui.core.config import Settings
from batchtui.core.engine import LIST_CHUNK, Engine
from batchtui.core.ledger import Ledger
from batchtui.core.models import Batch, Cost, ErrorBreakdown, Outcome, Provider, Status, Usage
from batchtui.core.paths import Paths
from batchtui.core.polling import NEW_BATCH_ROOM, Poller
from batchtui.core.pricing import PriceTable
from batchtui.core.providers.openai import OpenAIClient
from batchtui.core.transport import Transport
from batchtui.sim import Simulator
from batchtui.sim.bulk import seed_many

KEY = "sk-test-listing"
ACCOUNT = Account(name="acct", provider=Provider.OPENAI)


def paged_server(pages: int, per_page: int, events: list[str]) -> httpx.MockTransport:
    """An OpenAI batch list of `pages` full pages, logging each request in `events`."""
    ids = [f"batch_{i:05d}" for i in range(pages * per_page)]

    def handler(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("after")
        start = ids.index(after) + 1 if after else 0
        limit = int(request.url.params["limit"])
        chunk = ids[start:start + limit]
        events.append(f"request after={after}")
        data = [{"id": i, "object": "batch", "status": "completed", "created_at": 2_000_000_000 - n,
                 "endpoint": "/v1/chat/completions"} for n, i in enumerate(chunk, start)]
        return httpx.Response(200, json={"object": "list", "data": data, "has_more": start + limit < len(ids),
                                         "last_id": chunk[-1]})

    return httpx.MockTransport(handler)


async def test_a_full_listing_asks_for_the_next_page_while_reading_this_one():
    events: list[str] = []
    async with OpenAIClient(ACCOUNT, KEY, transport=paged_server(3, 100, events)) as client:
        async for batch in client.list_batches():
            events.append(batch.id)
    second = events.index("request after=batch_00099")
    assert second < events.index("batch_00099")  # asked for while page one was still being read
    assert [e for e in events if e.startswith("request")] == [
        "request after=None", "request after=batch_00099", "request after=batch_00199"]
    assert [e for e in events if not e.startswith("request")] == [f"batch_{i:05d}" for i in range(300)]


async def test_a_listing_that_may_stop_early_reads_one_page_at_a_time():
    events: list[str] = []
    async with OpenAIClient(ACCOUNT, KEY, transport=paged_server(3, 100, events)) as client:
        async for batch in client.list_batches(stop_at=lambda bid: bid == "batch_00150"):
            events.append(batch.id)
    assert [e for e in events if not e.startswith("request")] == [f"batch_{i:05d}" for i in range(150)]
    assert events.index("request after=batch_00099") > events.index("batch_00099")
    assert sum(e.startswith("request") for e in events) == 2  # never the third page


async def test_leaving_a_full_listing_early_cancels_the_prefetched_page_quietly():
    loop_errors: list[dict] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: loop_errors.append(context))
    events: list[str] = []
    async with OpenAIClient(ACCOUNT, KEY, transport=paged_server(3, 100, events)) as client:
        listing = client.list_batches()
        async for _ in listing:
            for _ in range(3):
                await asyncio.sleep(0)  # the prefetch gets going
            break
        await listing.aclose()
    await asyncio.sleep(0)
    assert loop_errors == []


async def test_the_poller_asks_for_a_small_first_page_once_it_knows_the_account(tmp_path):
    sim = Simulator(scenario=None, manual_clock=True)
    ws = sim.world.add_workspace("openai", "acct", KEY)
    seed_many(sim.world, ws, batches=250, active=3)
    limits: list[str] = []
    inner = sim.transport()

    class Recording(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/batches"):
                limits.append(request.url.params["limit"])
            return await inner.handle_async_request(request)

    account = sim.account("acct", "openai")
    engine = _engine(tmp_path, [account], transport=Recording())
    poller = Poller(engine, lambda _update: None, auto_analyse=False)
    await poller.poll_once(account)
    assert limits == ["100", "100", "100"]  # the first poll reads everything, in the largest pages
    limits.clear()
    update = await poller.poll_once(account)
    assert limits == [str(3 + NEW_BATCH_ROOM)] and update.status.active == 3
    await engine.aclose()


def test_costed_many_gives_what_costed_gives_one_by_one(tmp_path):
    engine = _engine(tmp_path, [ACCOUNT])
    batches = [_batch(f"b{i}", Status.COMPLETED if i % 2 else Status.IN_PROGRESS) for i in range(1_200)]
    usage = {"gpt-4o-mini": Usage(input=1_000, output=200)}
    for batch in batches[::7]:
        engine.ledger.record_analysis(batch.account, batch.id, ErrorBreakdown(outcomes={Outcome.SUCCEEDED: 1}),
                                      usage, engine.prices.cost(Provider.OPENAI, usage))
    assert engine.costed_many(batches) == [engine.costed(b) for b in batches]
    assert set(engine.ledger.analyses(ACCOUNT.name, [b.id for b in batches])) == {b.id for b in batches[::7]}


def test_upserting_thousands_reports_exactly_the_changed_ones(tmp_path):
    ledger = Ledger.open(tmp_path / "ledger.db")
    batches = [_batch(f"b{i}", Status.COMPLETED) for i in range(1_300)]  # more than one IN (...) chunk
    assert len(ledger.upsert_batches(batches)) == 1_300
    assert ledger.upsert_batches(batches) == []
    moved = [b.model_copy(update={"status": Status.FAILED}) for b in batches[640:643]]
    assert [b.id for b in ledger.upsert_batches(batches[:640] + moved)] == ["b640", "b641", "b642"]


def test_every_client_shares_one_tls_context(monkeypatch):
    built: list[object] = []
    real = httpx.create_ssl_context

    def counting(*args, **kwargs):
        built.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(httpx, "create_ssl_context", counting)
    transport_module.shared_ssl_context.cache_clear()
    try:
        for n in range(3):
            Transport(account=f"a{n}", base_url="https://api.example", auth_headers={})
        assert len(built) == 1
    finally:
        transport_module.shared_ssl_context.cache_clear()


def _engine(tmp_path, accounts, **kw) -> Engine:
    paths = Paths(config_dir=tmp_path, data_dir=tmp_path)
    settings = Settings().model_copy(update={"accounts": accounts})
    return Engine(settings=settings, paths=paths, ledger=Ledger.open(paths.ledger_file),
                  prices=PriceTable.load(settings.prices), key_lookup=lambda _account: KEY, **kw)


def _batch(batch_id: str, status: Status) -> Batch:
    created = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=int(batch_id[1:]))
    return Batch(account=ACCOUNT.name, provider=Provider.OPENAI, id=batch_id, status=status,
                 provider_status=status.value, created_at=created, model="gpt-4o-mini",
                 cost=Cost(reason="not yet"))


@pytest.fixture(autouse=True)
def _no_real_keys(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


async def test_a_listing_hands_over_each_chunk_costed_and_recorded_as_it_arrives(tmp_path):
    events: list[str] = []
    engine = _engine(tmp_path, [ACCOUNT], transport=paged_server(3, 100, events))
    seen: list[Batch] = []

    def listed(account: Account, chunk: list[Batch]) -> None:
        assert account == ACCOUNT and 0 < len(chunk) <= LIST_CHUNK
        assert all(b.cost is not None for b in chunk)  # costed before it is handed over
        assert {b.id for b in engine.ledger.batches(ACCOUNT.name)} >= {b.id for b in chunk}  # and recorded
        events.append(f"listed {chunk[-1].id}")
        seen.extend(chunk)

    batches, results = await engine.list_accounts([ACCOUNT], listed=listed)
    assert results[0].ok and [id(b) for b in seen] == [id(b) for b in batches]  # the same objects, once each
    assert len(batches) == 300
    # The first chunk was handed over before the last page was asked for.
    assert events.index("listed batch_00099") < events.index("request after=batch_00199")
    await engine.aclose()


@pytest.mark.parametrize("provider", [Provider.OPENAI, Provider.ANTHROPIC])
async def test_a_list_page_without_a_data_array_is_a_protocol_error_not_the_end(provider):
    from batchtui.core.errors import ProtocolError
    from batchtui.core.providers import make_client

    page = httpx.MockTransport(lambda request: httpx.Response(200, json={"has_more": False, "data": {"0": {}}}))
    async with make_client(Account(name="acct", provider=provider), KEY, transport=page) as client:
        with pytest.raises(ProtocolError, match="without a data array"):
            [b async for b in client.list_batches()]
