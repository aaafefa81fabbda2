"""The Anthropic client (batchtui/core/providers/anthropic.py) against the simulator and
against hand-written wire objects: normalisation, every operation, every fault, hostile data."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchtui.core.accounts import Account
from batchtui.core.errors import (
    AuthError,
    AmbiguousCreate,
    CreateOutcomeUnknown,
    InputError,
    NotFoundError,
    ProtocolError,
    ProviderError,
    RateLimitedError,
    UnreachableError,
)
from batchtui.core.models import Outcome, Provider, ResultFile, Status
from batchtui.core.providers import client_class
from batchtui.core.providers.anthropic import AnthropicClient, batch_from_wire
from batchtui.core.providers.base import BatchInput, Limits, NotSupported
from batchtui.core.results import MAX_SAMPLE, ResultsAnalyzer
from batchtui.sim import Simulator
from batchtui.sim import anthropic as sim_anthropic
from batchtui.sim.anthropic import seed_batch
from batchtui.sim.anthropic_results import results_bytes
from batchtui.sim.faults import FaultConfig
from batchtui.sim.world import BLOCKED, CANCELLED, EXPIRED, OK, REQUEST_ERROR, SERVER_ERROR, Plan
from tests.support.loopback import serve_on_loopback

KEY = "sk-ant-test-0001"
START = 1_787_000_000.0  # 2026-08-17T20:53:20Z
DAY = 86_400

# What each planned outcome in the world must come back as, through the wire and our parser.
EXPECTED_OUTCOME = {
    OK: Outcome.SUCCEEDED,
    BLOCKED: Outcome.BLOCKED,
    REQUEST_ERROR: Outcome.REQUEST_ERROR,
    SERVER_ERROR: Outcome.SERVER_ERROR,
    CANCELLED: Outcome.NOT_RUN_CANCELLED,
    EXPIRED: Outcome.NOT_RUN_EXPIRED,
}


class Sleeps:
    """A fake `sleep` for the client: records each delay; `then` runs on the first one (to
    switch a fault off, so the retry is seen to succeed)."""

    def __init__(self, then=None):
        self.delays: list[float] = []
        self.then = then

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.then is not None:
            self.then()
            self.then = None


@pytest.fixture
def sim() -> Simulator:
    return Simulator(manual_clock=True, seed=11, start=START)


@pytest.fixture
def ws(sim):
    return sim.world.add_workspace("anthropic", "acme", KEY)


def make_client(sim: Simulator, *, sleep=None, host: str | None = None) -> AnthropicClient:
    account = sim.account("acme", "anthropic", **({"host": host} if host else {}))
    transport = None if host else sim.transport()
    return AnthropicClient(account, KEY, transport=transport, sleep=sleep or Sleeps())


def request_lines(n: int, prefix: str = "req", model: str = "claude-haiku-4-5") -> list[dict]:
    return [{"custom_id": f"{prefix}-{i}", "params": {"model": model, "max_tokens": 256,
             "messages": [{"role": "user", "content": f"Summarise ticket {i}."}]}} for i in range(n)]


def batch_input(n: int, prefix: str = "req") -> BatchInput:
    return BatchInput.from_objects(request_lines(n, prefix))


async def download_all(client: AnthropicClient, batch) -> bytes:
    return b"".join([chunk async for chunk in client.download(batch, batch.result_files[0])])


def wire_batch(**over) -> dict:
    """A MessageBatch as the API sends it (PROVIDERS.md B.3), in progress unless overridden."""
    base = {
        "id": "msgbatch_01JXk4Zr9Qw7Hn3Vb8TcLp2M",
        "type": "message_batch",
        "processing_status": "in_progress",
        "request_counts": {"processing": 2000, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
        "ended_at": None,
        "created_at": "2026-08-20T09:14:03.512874Z",
        "expires_at": "2026-08-21T09:14:03.512874Z",
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": None,
    }
    base.update(over)
    return base


def ended(counts: dict, **over) -> dict:
    full = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0, **counts}
    fields = {"processing_status": "ended", "request_counts": full, "ended_at": "2026-08-20T10:02:47.118302Z",
              "results_url": "https://api.anthropic.com/v1/messages/batches/msgbatch_01JXk4Zr9Qw7Hn3Vb8TcLp2M/results"}
    return wire_batch(**{**fields, **over})


# -- normalisation of hand-written wire objects ----------------------------------------------


def test_in_progress_counts_are_frozen_and_unknown_not_zero():
    batch = batch_from_wire(wire_batch(), "acme")
    assert batch.status is Status.IN_PROGRESS and batch.provider_status == "in_progress"
    counts = batch.counts
    assert (counts.total, counts.processing, counts.live) == (2000, 2000, False)
    # The wire says 0, but nothing is known yet: never a guessed 0.
    assert counts.succeeded is counts.failed is counts.expired is counts.cancelled is None
    assert batch.result_files == () and batch.ended_at is None
    assert batch.results_expire_at == batch.created_at + timedelta(days=29)


def test_ended_batch_maps_every_count_and_exposes_the_results_url():
    wire = ended({"succeeded": 1992, "errored": 5, "expired": 3})
    batch = batch_from_wire(wire, "acme")
    assert batch.status is Status.COMPLETED
    c = batch.counts
    assert (c.total, c.succeeded, c.failed, c.expired, c.cancelled, c.processing) == (2000, 1992, 5, 3, 0, 0)
    assert batch.result_files == (ResultFile(kind="results", ref=wire["results_url"]),)
    assert batch.ended_at == datetime(2026, 8, 20, 10, 2, 47, 118302, tzinfo=UTC)
    assert batch.raw == wire


def test_ended_with_every_request_errored_is_completed_not_failed():
    batch = batch_from_wire(ended({"errored": 40}), "acme")
    assert batch.status is Status.COMPLETED
    assert batch.counts.failed == batch.counts.total == 40


def test_ended_after_a_cancel_is_cancelled():
    wire = ended({"succeeded": 3, "canceled": 7, "expired": 1}, cancel_initiated_at="2026-08-20T09:20:00Z")
    batch = batch_from_wire(wire, "acme")
    assert batch.status is Status.CANCELLED
    assert batch.cancel_requested_at == datetime(2026, 8, 20, 9, 20, tzinfo=UTC)


def test_expired_needs_expired_requests_and_an_end_at_the_deadline():
    at_deadline = ended({"succeeded": 5, "expired": 5}, ended_at="2026-08-21T09:14:03.512874Z")
    assert batch_from_wire(at_deadline, "acme").status is Status.EXPIRED
    # Expired requests but an end before the deadline: not an expired batch.
    early = ended({"succeeded": 5, "expired": 5})
    assert batch_from_wire(early, "acme").status is Status.COMPLETED
    # The deadline passed but nothing expired.
    late_clean = ended({"succeeded": 10}, ended_at="2026-08-21T09:14:04Z")
    assert batch_from_wire(late_clean, "acme").status is Status.COMPLETED


def test_canceling_is_cancelling():
    wire = wire_batch(processing_status="canceling", cancel_initiated_at="2026-08-20T09:20:00Z")
    assert batch_from_wire(wire, "acme").status is Status.CANCELLING


def test_nine_digit_fractions_and_archived_at():
    wire = ended({"succeeded": 1}, created_at="2026-08-20T09:14:03.512874123Z",
                 archived_at="2026-09-18T09:14:03.999999999Z")
    batch = batch_from_wire(wire, "acme")
    assert batch.created_at == datetime(2026, 8, 20, 9, 14, 3, 512874, tzinfo=UTC)
    assert batch.results_expire_at == datetime(2026, 9, 18, 9, 14, 3, 999999, tzinfo=UTC)


def test_unknown_fields_ignored_and_missing_optional_fields_tolerated():
    wire = {"id": "msgbatch_x", "created_at": "2026-08-20T09:14:03Z", "processing_status": "ended",
            "request_counts": {"succeeded": 2, "brand_new_bucket": 9}, "shiny_new_field": {"a": 1}}
    batch = batch_from_wire(wire, "acme")
    assert batch.status is Status.COMPLETED
    assert batch.expires_at is None and batch.ended_at is None and batch.result_files == ()
    # Missing counts stay unknown rather than 0.
    assert (batch.counts.succeeded, batch.counts.failed, batch.counts.total) == (2, None, 2)
    # A status we have never seen is kept raw and treated as still running.
    odd = batch_from_wire({**wire, "processing_status": "paused"}, "acme")
    assert odd.status is Status.IN_PROGRESS and odd.provider_status == "paused"


@pytest.mark.parametrize("wire", [{"created_at": "2026-08-20T09:14:03Z"}, {"id": "msgbatch_x"},
                                  {"id": "msgbatch_x", "created_at": "yesterday"}, ["not", "an", "object"]])
def test_a_batch_without_id_or_creation_time_is_a_protocol_error(wire):
    with pytest.raises(ProtocolError):
        batch_from_wire(wire, "acme")


def test_hostile_ids_are_kept_verbatim():
    hostile = "msgbatch_[bold red]x[/]\x1b[31m"
    assert batch_from_wire(wire_batch(id=hostile), "acme").id == hostile


# -- the operations against the simulator -------------------------------------------------------


async def test_create_then_in_progress_then_ended(sim, ws):
    lines = request_lines(40)
    async with make_client(sim) as client:
        created = await client.create_batch(BatchInput.from_objects(lines))
        assert created.status is Status.IN_PROGRESS and created.id.startswith("msgbatch_")
        assert created.counts.total == created.counts.processing == 40 and created.counts.succeeded is None
        # The simulator received exactly our requests.
        assert [r.line for r in ws.batches[created.id].requests] == lines

        sim.clock.advance(60)
        polled = await client.get_batch(created.id)
        assert polled.status is Status.IN_PROGRESS and polled.counts.processing == 40

        sim.clock.advance(DAY - 120)
        done = await client.get_batch(created.id)
    assert done.status is Status.COMPLETED and done.provider_status == "ended"
    c = done.counts
    assert c.processing == 0 and c.succeeded + c.failed + c.expired + c.cancelled == 40
    assert done.ended_at is not None and done.ended_at <= done.expires_at
    assert done.expires_at - done.created_at == timedelta(days=1)
    assert len(done.result_files) == 1


async def test_create_sends_the_users_own_bytes(sim, ws):
    # 1.50 and key order survive only if the raw line is sent, not a re-serialisation.
    raw = b'{"params":{"max_tokens":64,"model":"claude-haiku-4-5","temperature":1.50,' \
          b'"messages":[{"role":"user","content":"hi"}]},"custom_id":"only"}'
    seen: list[bytes] = []

    async def spy(request: httpx.Request):
        seen.append(request.content)
        return await sim.transport().handle_async_request(request)

    account = sim.account("acme", "anthropic")
    async with AnthropicClient(account, KEY, transport=httpx.MockTransport(spy)) as client:
        await client.create_batch(BatchInput(lines=[json.loads(raw)], raw_lines=[raw + b"\r\n"]))
    assert seen == [b'{"requests":[' + raw + b"]}"]


async def test_create_over_the_limits_is_refused_before_sending(sim, ws, monkeypatch):
    monkeypatch.setattr(AnthropicClient, "limits", Limits(max_requests=3, max_bytes=10**9))
    async with make_client(sim) as client:
        with pytest.raises(InputError):
            await client.create_batch(batch_input(4))
    assert sum(ws.requests.values()) == 0


@pytest.mark.parametrize("mutate, needle", [
    (lambda lines: lines[1].update(custom_id="has space"), "has space"),
    (lambda lines: lines[2].update(custom_id="req-0"), "req-0"),
    (lambda lines: lines[0]["params"].update(stream=True), "stream"),
    (lambda lines: lines[0]["params"].update(max_tokens=0), "max_tokens"),
    (lambda lines: lines[0]["params"].update(speed="fast"), "speed"),
])
async def test_the_simulator_rejects_a_bad_create_naming_the_problem(sim, ws, mutate, needle):
    lines = request_lines(3)
    mutate(lines)
    async with make_client(sim) as client:
        with pytest.raises(ProviderError) as info:
            await client.create_batch(BatchInput.from_objects(lines))
    assert info.value.status_code == 400 and info.value.error_type == "invalid_request_error"
    assert needle in info.value.message
    assert ws.batches == {}


async def test_a_body_over_the_size_limit_is_413(sim, ws, monkeypatch):
    monkeypatch.setattr(sim_anthropic, "MAX_BODY_BYTES", 1_000)
    async with make_client(sim) as client:
        with pytest.raises(ProviderError) as info:
            await client.create_batch(batch_input(20))
    assert (info.value.status_code, info.value.error_type) == (413, "request_too_large")
    assert ws.batches == {}


async def test_too_many_requests_is_refused_by_the_simulator(sim, ws, monkeypatch):
    monkeypatch.setattr(sim_anthropic, "MAX_REQUESTS", 5)
    async with make_client(sim) as client:
        with pytest.raises(ProviderError) as info:
            await client.create_batch(batch_input(6))
    assert info.value.status_code == 400 and "5" in info.value.message


async def test_anthropic_version_must_be_present_and_date_shaped(sim, ws):
    async with httpx.AsyncClient(transport=sim.transport(), base_url=sim.base_url("anthropic")) as raw:
        missing = await raw.get("/v1/messages/batches", headers={"x-api-key": KEY})
        garbage = await raw.get("/v1/messages/batches", headers={"x-api-key": KEY, "anthropic-version": "latest"})
        # A newer date and a Bearer key, as the 2.x SDK may send (PROVIDERS.md 0.2).
        newer = await raw.get("/v1/messages/batches",
                              headers={"authorization": f"Bearer {KEY}", "anthropic-version": "2026-01-01"})
    assert missing.status_code == garbage.status_code == 400
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert newer.status_code == 200 and newer.json()["data"] == []


async def test_the_client_sends_the_key_and_version_headers(sim):
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=wire_batch())

    account = Account(name="acme", provider=Provider.ANTHROPIC)
    async with AnthropicClient(account, KEY, transport=httpx.MockTransport(record)) as client:
        await client.get_batch("msgbatch_01")
    request = seen[0]
    assert str(request.url) == "https://api.anthropic.com/v1/messages/batches/msgbatch_01"
    assert request.headers["x-api-key"] == KEY and request.headers["anthropic-version"] == "2023-06-01"


async def test_a_hostile_batch_id_cannot_reshape_the_path(sim):
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, json={"type": "error", "error": {"type": "not_found_error", "message": "nope"}})

    account = Account(name="acme", provider=Provider.ANTHROPIC)
    async with AnthropicClient(account, KEY, transport=httpx.MockTransport(record)) as client:
        with pytest.raises(NotFoundError):
            await client.get_batch("../../v1/other?x=1#y")
    assert seen[0].url.raw_path == b"/v1/messages/batches/..%2F..%2Fv1%2Fother%3Fx%3D1%23y"


async def test_list_reads_every_page_newest_first(sim, ws):
    for i in range(230):
        seed_batch(sim.world, ws, n_requests=2, model="claude-haiku-4-5", created_at=START - 60 * i)
    expected = [b.id for b in sorted(ws.batches.values(), key=lambda b: b.created_at, reverse=True)]
    async with make_client(sim) as client:
        client.page_limit = 100  # the API allows 1,000 per page; smaller walks several pages here
        listed = [b async for b in client.list_batches()]
    assert [b.id for b in listed] == expected
    assert ws.requests[("GET", "batches.list")] == 3  # 100 + 100 + 30


async def test_list_stops_at_a_known_id_without_reading_further_pages(sim, ws):
    batches = [seed_batch(sim.world, ws, n_requests=1, model="claude-haiku-4-5", created_at=START - 60 * i)
               for i in range(150)]
    stop = batches[40].id
    async with make_client(sim) as client:
        listed = [b.id async for b in client.list_batches(stop_at=lambda bid: bid == stop)]
    assert listed == [b.id for b in batches[:40]]
    assert ws.requests[("GET", "batches.list")] == 1


async def test_the_simulators_list_pages_both_ways(sim, ws):
    ids = [seed_batch(sim.world, ws, n_requests=1, model="claude-haiku-4-5", created_at=START - i).id
           for i in range(7)]
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(transport=sim.transport(), base_url=sim.base_url("anthropic"),
                                 headers=headers) as raw:
        first = (await raw.get("/v1/messages/batches", params={"limit": 3})).json()
        second = (await raw.get("/v1/messages/batches", params={"limit": 3, "after_id": first["last_id"]})).json()
        back = (await raw.get("/v1/messages/batches", params={"limit": 3, "before_id": second["first_id"]})).json()
        default = (await raw.get("/v1/messages/batches")).json()
        too_big = await raw.get("/v1/messages/batches", params={"limit": 1001})
        zero = await raw.get("/v1/messages/batches", params={"limit": 0})
    assert [b["id"] for b in first["data"]] == ids[:3] and first["has_more"] is True
    assert (first["first_id"], first["last_id"]) == (ids[0], ids[2])
    assert [b["id"] for b in second["data"]] == ids[3:6] and second["has_more"] is True
    assert [b["id"] for b in back["data"]] == ids[:3] and back["has_more"] is False
    assert len(default["data"]) == 7 and default["has_more"] is False
    assert too_big.status_code == zero.status_code == 400


async def test_get_an_unknown_batch_is_not_found(sim, ws):
    async with make_client(sim) as client:
        with pytest.raises(NotFoundError) as info:
            await client.get_batch("msgbatch_01doesnotexist")
    assert info.value.error_type == "not_found_error"


async def test_read_requests_is_not_supported(sim, ws):
    async with make_client(sim) as client:
        batch = await client.create_batch(batch_input(2))
        with pytest.raises(NotSupported):
            async for _ in client.read_requests(batch):
                pass


def test_the_registry_finds_the_client():
    assert client_class(Provider.ANTHROPIC) is AnthropicClient


# -- cancel ---------------------------------------------------------------------------------------


async def test_cancel_goes_through_canceling_to_cancelled_with_canceled_lines(sim, ws):
    async with make_client(sim) as client:
        batch = await client.create_batch(batch_input(300))
        sim.clock.advance(120)  # some requests are done by now, most are not
        cancelling = await client.cancel_batch(batch.id)
        assert cancelling.status is Status.CANCELLING and cancelling.provider_status == "canceling"
        assert cancelling.cancel_requested_at is not None and cancelling.counts.processing == 300
        # A second cancel while cancelling is harmless.
        assert (await client.cancel_batch(batch.id)).status is Status.CANCELLING

        sim.clock.advance(3600)
        done = await client.get_batch(batch.id)
        assert done.status is Status.CANCELLED and done.provider_status == "ended"
        assert done.counts.cancelled > 0 and done.counts.succeeded > 0
        summary = ResultsAnalyzer(client.parse_result_line)
        summary.feed_chunk(await download_all(client, done))
        outcomes = summary.summary().breakdown.outcomes
        assert outcomes[Outcome.NOT_RUN_CANCELLED] == done.counts.cancelled

        with pytest.raises(ProviderError) as info:
            await client.cancel_batch(batch.id)
    assert info.value.status_code == 400


async def test_a_scheduled_cancel_shows_only_once_it_happens(sim, ws):
    # The demo scenario's batches cancel themselves through the plan.
    simbatch = seed_batch(sim.world, ws, n_requests=50, model="claude-haiku-4-5", created_at=START,
                          plan=Plan(cancel_after=200, duration=3600))
    async with make_client(sim) as client:
        before = await client.get_batch(simbatch.id)
        sim.clock.advance(200)
        during = await client.get_batch(simbatch.id)
        sim.clock.advance(3600)
        after = await client.get_batch(simbatch.id)
    assert before.status is Status.IN_PROGRESS and before.cancel_requested_at is None
    assert during.status is Status.CANCELLING
    assert during.cancel_requested_at == datetime.fromtimestamp(START + 200, tz=UTC)
    assert after.status is Status.CANCELLED and after.counts.cancelled > 0


async def test_delete_only_once_ended(sim, ws):
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    async with make_client(sim) as client:
        batch = await client.create_batch(batch_input(3))
    async with httpx.AsyncClient(transport=sim.transport(), base_url=sim.base_url("anthropic"),
                                 headers=headers) as raw:
        early = await raw.delete(f"/v1/messages/batches/{batch.id}")
        sim.clock.advance(DAY)
        late = await raw.delete(f"/v1/messages/batches/{batch.id}")
        gone = await raw.get(f"/v1/messages/batches/{batch.id}")
    assert early.status_code == 400 and early.json()["error"]["type"] == "invalid_request_error"
    assert late.json() == {"id": batch.id, "type": "message_batch_deleted"}
    assert gone.status_code == 404


# -- results ------------------------------------------------------------------------------------


async def test_download_is_byte_exact_and_stable(sim, ws):
    async with make_client(sim) as client:
        batch = await client.create_batch(batch_input(120))
        sim.clock.advance(DAY)
        batch = await client.get_batch(batch.id)
        first = await download_all(client, batch)
        second = await download_all(client, batch)
    served = results_bytes(ws.batches[batch.id], sim.clock.now())
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(served).hexdigest()
    assert first == second
    ids = [json.loads(line)["custom_id"] for line in first.splitlines()]
    assert sorted(ids) == sorted(f"req-{i}" for i in range(120))
    assert ids != [f"req-{i}" for i in range(120)]  # not in request order (B.6)


def test_the_same_seed_serves_the_same_bytes():
    def served(seed: int) -> bytes:
        other = Simulator(manual_clock=True, seed=seed, start=START)
        space = other.world.add_workspace("anthropic", "acme", KEY)
        batch = seed_batch(other.world, space, n_requests=50, model="claude-sonnet-4-5", created_at=START)
        return results_bytes(batch, START + DAY)

    assert served(4) == served(4)
    assert served(4) != served(5)


async def test_every_outcome_matches_the_plan_and_the_counts(sim, ws):
    # Long enough that some requests miss the 24 h deadline.
    plan = Plan(error_rate=0.25, server_error_share=0.5, blocked_rate=0.1, duration=1.3 * DAY)
    simbatch = seed_batch(sim.world, ws, n_requests=400, model="claude-sonnet-4-5", created_at=START, plan=plan)
    sim.clock.advance(DAY + 1)
    async with make_client(sim) as client:
        batch = await client.get_batch(simbatch.id)
        analyzer = ResultsAnalyzer(client.parse_result_line)
        parsed = {}
        async for chunk in client.download(batch, batch.result_files[0]):
            analyzer.feed_chunk(chunk)
    assert batch.status is Status.EXPIRED
    for line in results_bytes(simbatch, sim.clock.now()).splitlines():
        item = AnthropicClient.parse_result_line(json.loads(line), 1)
        parsed[item.custom_id] = item.outcome
    planned = {r.custom_id: EXPECTED_OUTCOME[o] for r, o in simbatch.final_outcomes(sim.clock.now())}
    assert parsed == planned
    # Every kind but `canceled` (this batch expires; the cancel test covers that one).
    assert set(parsed.values()) == set(EXPECTED_OUTCOME.values()) - {Outcome.NOT_RUN_CANCELLED}

    outcomes = analyzer.summary().breakdown.outcomes
    c = batch.counts
    assert outcomes[Outcome.SUCCEEDED] + outcomes[Outcome.BLOCKED] == c.succeeded
    assert outcomes[Outcome.REQUEST_ERROR] + outcomes[Outcome.SERVER_ERROR] == c.failed
    assert outcomes[Outcome.NOT_RUN_EXPIRED] == c.expired
    assert outcomes.get(Outcome.NOT_RUN_CANCELLED, 0) == c.cancelled == 0
    assert sum(outcomes.values()) == c.total == 400
    usage = analyzer.summary().usage_by_model
    assert set(usage) == {"claude-sonnet-4-5-20250929"}
    assert usage["claude-sonnet-4-5-20250929"].reasoning > 0  # the thinking requests


async def test_results_before_the_end_and_after_archiving(sim, ws):
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    async with make_client(sim) as client:
        batch = await client.create_batch(batch_input(5))
        async with httpx.AsyncClient(transport=sim.transport(), base_url=sim.base_url("anthropic"),
                                     headers=headers) as raw:
            early = await raw.get(f"/v1/messages/batches/{batch.id}/results")
        assert early.status_code == 400

        sim.clock.advance(DAY)
        ended_batch = await client.get_batch(batch.id)
        assert ended_batch.raw["archived_at"] is None
        sim.clock.advance(28 * DAY)
        archived = await client.get_batch(batch.id)
        assert archived.results_expire_at == archived.created_at + timedelta(days=29)
        assert archived.raw["archived_at"] is not None
        with pytest.raises(NotFoundError):
            await download_all(client, archived)


@pytest.mark.parametrize("ref", ["https://evil.example/steal?k=1", "//evil.example/steal", "http://[bad", ""])
async def test_a_results_url_on_another_host_never_gets_the_key(sim, ws, ref):
    hosts: list[str] = []

    async def spy(request: httpx.Request):
        hosts.append(request.url.host)
        return await sim.transport().handle_async_request(request)

    account = sim.account("acme", "anthropic")
    async with AnthropicClient(account, KEY, transport=httpx.MockTransport(spy)) as client:
        batch = await client.create_batch(batch_input(4))
        sim.clock.advance(DAY)
        batch = await client.get_batch(batch.id)
        pointed_away = batch.model_copy(update={"result_files": (ResultFile(kind="results", ref=ref),)})
        data = await download_all(client, pointed_away)
    # Fetched from our own host's documented path instead.
    assert data == results_bytes(ws.batches[batch.id], sim.clock.now())
    assert set(hosts) == {"batchtui-sim"}


# -- parse_result_line -------------------------------------------------------------------------


def line(result: dict, custom_id: str = "t-1") -> dict:
    return {"custom_id": custom_id, "result": result}


def message(**over) -> dict:
    base = {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
            "content": [{"type": "text", "text": "bug/crash"}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 31, "cache_creation_input_tokens": 500, "cache_read_input_tokens": 2048,
                      "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 300},
                      "output_tokens": 60, "output_tokens_details": {"thinking_tokens": 40},
                      "service_tier": "batch", "server_tool_use": None}}
    base.update(over)
    return base


def errored(error_type: str, text: str = "boom") -> dict:
    return {"type": "errored", "error": {"type": "error", "error": {"type": error_type, "message": text},
                                          "request_id": "req_011x"}}


def test_a_success_with_its_model_and_usage():
    item = AnthropicClient.parse_result_line(line({"type": "succeeded", "message": message()}), 7)
    assert (item.custom_id, item.outcome, item.line_no) == ("t-1", Outcome.SUCCEEDED, 7)
    assert item.model == "claude-haiku-4-5-20251001"
    u = item.usage
    assert (u.input, u.cached_input, u.cache_write, u.cache_write_1h, u.output, u.reasoning) == \
        (31 + 500 + 2048, 2048, 500, 300, 60, 40)


def test_usage_without_the_optional_parts():
    bare = message(usage={"input_tokens": 10, "output_tokens": 3, "cache_creation_input_tokens": None,
                          "cache_read_input_tokens": None, "cache_creation": None})
    u = AnthropicClient.parse_result_line(line({"type": "succeeded", "message": bare}), 1).usage
    assert (u.input, u.cached_input, u.cache_write, u.cache_write_1h, u.output, u.reasoning) == (10, 0, 0, 0, 3, 0)
    # Only the 5m/1h split given: the total write is their sum.
    split = message(usage={"input_tokens": 10, "output_tokens": 3,
                           "cache_creation": {"ephemeral_5m_input_tokens": 7, "ephemeral_1h_input_tokens": 5}})
    u = AnthropicClient.parse_result_line(line({"type": "succeeded", "message": split}), 1).usage
    assert (u.input, u.cache_write, u.cache_write_1h) == (22, 12, 5)


def test_a_refusal_is_blocked_and_still_billed():
    refusal = message(stop_reason="refusal", content=[],
                      stop_details={"type": "refusal", "category": "cyber", "explanation": "declined"})
    item = AnthropicClient.parse_result_line(line({"type": "succeeded", "message": refusal}), 1)
    assert (item.outcome, item.error_type, item.error_message) == (Outcome.BLOCKED, "refusal", "declined")
    assert item.usage.output == 60


@pytest.mark.parametrize("error_type, outcome, status", [
    ("invalid_request_error", Outcome.REQUEST_ERROR, 400),
    ("authentication_error", Outcome.REQUEST_ERROR, 401),
    ("billing_error", Outcome.REQUEST_ERROR, 402),
    ("permission_error", Outcome.REQUEST_ERROR, 403),
    ("not_found_error", Outcome.REQUEST_ERROR, 404),
    ("request_too_large", Outcome.REQUEST_ERROR, 413),
    ("rate_limit_error", Outcome.SERVER_ERROR, 429),
    ("api_error", Outcome.SERVER_ERROR, 500),
    ("timeout_error", Outcome.SERVER_ERROR, 504),
    ("overloaded_error", Outcome.SERVER_ERROR, 529),
    ("brand_new_error", Outcome.UNKNOWN, None),
])
def test_errored_lines_by_error_type(error_type, outcome, status):
    item = AnthropicClient.parse_result_line(line(errored(error_type, "max_tokens: 200000 > 128000")), 3)
    assert (item.outcome, item.error_type, item.http_status) == (outcome, error_type, status)
    assert item.error_message == "max_tokens: 200000 > 128000" and item.usage is None


@pytest.mark.parametrize("kind, outcome", [
    ("canceled", Outcome.NOT_RUN_CANCELLED), ("expired", Outcome.NOT_RUN_EXPIRED), ("vanished", Outcome.UNKNOWN),
])
def test_lines_that_never_ran(kind, outcome):
    assert AnthropicClient.parse_result_line(line({"type": kind}), 1).outcome is outcome


def test_hostile_result_lines_are_counted_not_fatal():
    big = "x" * 1_000_000
    markup = "[bold red]x[/] \x1b[31mred\x1b[0m"
    lines = [
        json.dumps(line({"type": "succeeded", "message": message()}, "ok-1")).encode(),
        b"this is not json",
        json.dumps(line(errored("api_error"), "cut"))[:40].encode(),  # truncated
        b'{"custom_id": "no-result"}',
        b"[1, 2, 3]",
        json.dumps(line(errored("invalid_request_error", big + markup), markup)).encode(),
        b"",
    ]
    analyzer = ResultsAnalyzer(AnthropicClient.parse_result_line)
    analyzer.feed_chunk(b"\n".join(lines))
    summary = analyzer.summary()
    assert summary.breakdown.unparseable == 4
    assert summary.breakdown.unparseable_lines == (2, 3, 4, 5)
    assert summary.breakdown.outcomes == {Outcome.SUCCEEDED: 1, Outcome.REQUEST_ERROR: 1}
    assert summary.ids_by_outcome[Outcome.REQUEST_ERROR] == [markup]
    [group] = summary.breakdown.groups
    assert group.sample_message == big[:MAX_SAMPLE]
    # The parser itself keeps the whole message, markup and escapes untouched.
    item = AnthropicClient.parse_result_line(json.loads(lines[5]), 6)
    assert item.error_message == big + markup and item.custom_id == markup


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
# Objects shaped roughly like result lines, so the fuzzing reaches past the first check.
result_like = st.fixed_dictionaries({"custom_id": json_values, "result": st.fixed_dictionaries(
    {"type": st.sampled_from(["succeeded", "errored", "canceled", "expired", "other"]) | json_values},
    optional={"message": st.dictionaries(st.sampled_from(["model", "usage", "stop_reason", "stop_details"]),
                                         json_values), "error": json_values})})


@settings(max_examples=300, deadline=None)
@given(st.one_of(result_like, json_values))
def test_any_json_either_parses_or_is_reported_unparseable(obj):
    try:
        item = AnthropicClient.parse_result_line(obj, 1)
    except ValueError:
        return  # the analyzer counts it as an unparseable line
    assert isinstance(item.outcome, Outcome)


batch_like = st.fixed_dictionaries(
    {"id": st.text(min_size=1), "created_at": st.sampled_from(["2026-08-20T09:14:03.5Z", "x"]) | json_values},
    optional={k: json_values for k in ("processing_status", "request_counts", "ended_at", "expires_at",
                                       "cancel_initiated_at", "archived_at", "results_url")},
)


@settings(max_examples=300, deadline=None)
@given(batch_like)
def test_any_batch_object_either_normalises_or_is_a_protocol_error(obj):
    try:
        batch = batch_from_wire(obj, "acme")
    except ProtocolError:
        return
    assert batch.id == obj["id"] and batch.status in set(Status)


# -- input lines, limits, console ---------------------------------------------------------------


@pytest.mark.parametrize("obj, problem", [
    (request_lines(1)[0], None),
    ("a string", "JSON object"),
    ({"params": request_lines(1)[0]["params"]}, "custom_id"),
    ({**request_lines(1)[0], "custom_id": "x" * 65}, "custom_id"),
    ({**request_lines(1)[0], "custom_id": "dots.are.bad"}, "custom_id"),
    ({"custom_id": "a"}, "params"),
    ({"custom_id": "a", "params": {"max_tokens": 5, "messages": [{}]}}, "model"),
    ({"custom_id": "a", "params": {"model": "m", "max_tokens": 0, "messages": [{}]}}, "max_tokens"),
    ({"custom_id": "a", "params": {"model": "m", "max_tokens": True, "messages": [{}]}}, "max_tokens"),
    ({"custom_id": "a", "params": {"model": "m", "max_tokens": 5, "messages": []}}, "messages"),
    ({"custom_id": "a", "params": {"model": "m", "max_tokens": 5, "messages": [{}], "stream": True}}, "stream"),
    ({"custom_id": "a", "params": {"model": "m", "max_tokens": 5, "messages": [{}], "speed": "fast"}}, "speed"),
    ({"custom_id": "a", "params": {"model": "m", "max_tokens": 5, "messages": [{}], "store": True}}, "store"),
])
def test_validate_line(obj, problem):
    client = AnthropicClient(Account(name="acme", provider=Provider.ANTHROPIC), KEY)
    found = client.validate_line(obj)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_stream_false_is_allowed():
    # `stream: false` is what the Messages API does anyway: only `true` is refused.
    client = AnthropicClient(Account(name="acme", provider=Provider.ANTHROPIC), KEY)
    ok = {"custom_id": "a", "params": {"model": "m", "max_tokens": 5, "messages": [{}], "stream": False}}
    assert client.validate_line(ok) is None


def test_custom_id_limits_and_console():
    assert AnthropicClient.request_custom_id({"custom_id": "abc"}) == "abc"
    assert AnthropicClient.request_custom_id({"custom_id": 5}) is None
    limits = AnthropicClient.limits
    assert (limits.max_requests, limits.max_bytes) == (100_000, 256 * 1024 * 1024)
    assert limits.custom_id_pattern == "^[a-zA-Z0-9_-]{1,64}$"
    real = AnthropicClient(Account(name="acme", provider=Provider.ANTHROPIC), KEY)
    batch = batch_from_wire(wire_batch(), "acme")
    assert real.console_url(batch).endswith("/batches/msgbatch_01JXk4Zr9Qw7Hn3Vb8TcLp2M")
    assert real.console_url(batch).startswith("https://console.anthropic.com/")
    proxy = AnthropicClient(Account(name="acme", provider=Provider.ANTHROPIC, base_url="http://127.0.0.1:9"), KEY)
    assert proxy.console_url(batch) is None


# -- a lost create answer ---------------------------------------------------------------------


async def test_a_lost_create_answer_is_found_again(sim, ws):
    async with make_client(sim) as client:
        decoy_before = await client.create_batch(batch_input(5, "early"))
        sim.clock.advance(30)
        since = sim.clock.now()
        other_size = await client.create_batch(batch_input(6, "other"))
        ws.faults.lose_create_answers = 1
        with pytest.raises(CreateOutcomeUnknown):
            await client.create_batch(batch_input(5, "mine"))
        assert ws.faults.injected["lost_create"] == 1
        found = await client.find_created(batch_input(5, "mine"), since=since)
    made = [b for b in ws.batches.values() if b.requests[0].custom_id.startswith("mine")]
    assert len(made) == 1 and found is not None and found.id == made[0].id
    assert found.id not in (decoy_before.id, other_size.id)


async def test_find_created_refuses_to_guess_between_two_candidates(sim, ws):
    async with make_client(sim) as client:
        since = sim.clock.now()
        a = await client.create_batch(batch_input(5, "a"))
        b = await client.create_batch(batch_input(5, "b"))
        with pytest.raises(AmbiguousCreate) as many:
            await client.find_created(batch_input(5), since=since)
        assert "2 batches of 5 requests" in str(many.value) and a.id in str(many.value) and b.id in str(many.value)
        assert await client.find_created(batch_input(9), since=since) is None


# -- faults through the transport ---------------------------------------------------------------


async def test_429_waits_exactly_the_retry_after(sim, ws):
    ws.faults = FaultConfig(rate=1.0, kinds=("429",), retry_after=7)
    sleeps = Sleeps(then=lambda: setattr(ws.faults, "rate", 0.0))
    async with make_client(sim, sleep=sleeps) as client:
        batch = await client.create_batch(batch_input(2))  # 429 is safe to retry even for a create
    assert sleeps.delays == [7.0]
    assert len(ws.batches) == 1 and batch.id in ws.batches


async def test_429_that_never_ends_is_rate_limited(sim, ws):
    ws.faults = FaultConfig(rate=1.0, kinds=("429",), retry_after=3)
    sleeps = Sleeps()
    async with make_client(sim, sleep=sleeps) as client:
        with pytest.raises(RateLimitedError) as info:
            await client.get_batch("msgbatch_01any")
    assert info.value.retry_after == 3.0 and info.value.error_type == "rate_limit_error"
    assert sleeps.delays == [3.0] * 4


@pytest.mark.parametrize("kind", ["500", "503", "529", "drop", "slow"])
async def test_transient_faults_are_retried_for_reads(sim, ws, kind):
    simbatch = seed_batch(sim.world, ws, n_requests=30, model="claude-haiku-4-5", created_at=START)
    sim.clock.advance(DAY)
    ws.faults = FaultConfig(rate=1.0, kinds=(kind,), retry_after=2, slow_seconds=0.0)
    sleeps = Sleeps(then=lambda: setattr(ws.faults, "rate", 0.0))
    async with make_client(sim, sleep=sleeps) as client:
        batch = await client.get_batch(simbatch.id)
        ws.faults.rate = 1.0
        sleeps.then = lambda: setattr(ws.faults, "rate", 0.0)
        data = await download_all(client, batch)
    assert data == results_bytes(simbatch, sim.clock.now())
    if kind == "slow":
        assert sleeps.delays == []
    else:
        assert len(sleeps.delays) == 2
        if kind in ("503", "529"):
            assert sleeps.delays == [2.0, 2.0]  # their retry-after is honoured


async def test_a_create_answered_500_is_unknown_not_resent(sim, ws):
    ws.faults = FaultConfig(rate=1.0, kinds=("500",))
    sleeps = Sleeps()
    async with make_client(sim, sleep=sleeps) as client:
        with pytest.raises(CreateOutcomeUnknown):
            await client.create_batch(batch_input(3))
        ws.faults.rate = 0.0
        assert await client.find_created(batch_input(3), since=START) is None
    assert sleeps.delays == [] and ws.requests[("POST", "batches.create")] == 1


async def test_a_create_answered_529_is_retried_once_and_made_once(sim, ws):
    ws.faults = FaultConfig(rate=1.0, kinds=("529",), retry_after=1)
    sleeps = Sleeps(then=lambda: setattr(ws.faults, "rate", 0.0))
    async with make_client(sim, sleep=sleeps) as client:
        await client.create_batch(batch_input(3))
    assert len(ws.batches) == 1 and ws.requests[("POST", "batches.create")] == 2


async def test_a_download_cut_mid_body_fails_loudly(sim, ws):
    simbatch = seed_batch(sim.world, ws, n_requests=200, model="claude-haiku-4-5", created_at=START)
    sim.clock.advance(DAY)
    with serve_on_loopback(sim) as host:
        async with make_client(sim, host=host) as client:
            batch = await client.get_batch(simbatch.id)
            ws.faults = FaultConfig(rate=1.0, kinds=("drop",))
            with pytest.raises(UnreachableError):
                await download_all(client, batch)
    assert ws.faults.injected["drop"] >= 1


# -- the key never leaks ---------------------------------------------------------------------


async def test_a_refused_key_is_an_auth_error_without_the_key(sim, ws):
    ws.faults = FaultConfig(reject_key=True)
    client = make_client(sim)
    async with client:
        with pytest.raises(AuthError) as info:
            await client.get_batch("msgbatch_01any")
    assert info.value.status_code == 401 and info.value.error_type == "authentication_error"
    for text in (str(info.value), repr(info.value), repr(info.value.args), repr(client), repr(client.http)):
        assert KEY not in text


async def test_a_key_echoed_by_the_server_is_redacted():
    def echo(request: httpx.Request) -> httpx.Response:
        body = {"type": "error", "error": {"type": "invalid_request_error",
                                           "message": f"bad key {request.headers['x-api-key']}"}}
        return httpx.Response(400, json=body)

    account = Account(name="acme", provider=Provider.ANTHROPIC)
    async with AnthropicClient(account, KEY, transport=httpx.MockTransport(echo)) as client:
        with pytest.raises(ProviderError) as info:
            await client.get_batch("msgbatch_01")
    assert KEY not in str(info.value) and KEY not in info.value.message and "***" in info.value.message


async def test_an_unreachable_host_names_no_key(sim):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url} with {request.headers['x-api-key']}")

    account = Account(name="acme", provider=Provider.ANTHROPIC)
    sleeps = Sleeps()
    async with AnthropicClient(account, KEY, transport=httpx.MockTransport(refuse), sleep=sleeps) as client:
        with pytest.raises(UnreachableError) as info:
            await client.get_batch("msgbatch_01")
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    assert len(sleeps.delays) == 4

