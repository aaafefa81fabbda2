"""Fidelity: the official `anthropic` SDK, on a real loopback socket, drives the simulator.

The SDK is built with strict response validation, so a field of the wrong type or a missing
required one in anything the simulator sends fails here. Result lines are validated against
the SDK's own `MessageBatchIndividualResponse` model as well (its JSONL decoder does not)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import anthropic
import pytest
from anthropic.types.messages import (
    DeletedMessageBatch,
    MessageBatch,
    MessageBatchCanceledResult,
    MessageBatchErroredResult,
    MessageBatchExpiredResult,
    MessageBatchIndividualResponse,
    MessageBatchSucceededResult,
)

from batchtui.sim import Simulator
from batchtui.sim import anthropic as sim_anthropic
from batchtui.sim.anthropic import seed_batch
from batchtui.sim.faults import FaultConfig
from batchtui.sim.world import Plan
from tests.support.loopback import serve_on_loopback

KEY = "sk-ant-test-0001"
START = 1_787_000_000.0
DAY = 86_400

# The SDK's result class per wire kind, and the request_counts bucket each one lands in.
RESULT_TYPES = {
    "succeeded": MessageBatchSucceededResult,
    "errored": MessageBatchErroredResult,
    "canceled": MessageBatchCanceledResult,
    "expired": MessageBatchExpiredResult,
}


@pytest.fixture
def sim() -> Simulator:
    return Simulator(manual_clock=True, seed=23, start=START)


@pytest.fixture
def ws(sim):
    return sim.world.add_workspace("anthropic", "sdk", KEY)


@pytest.fixture
def host(sim, ws) -> Iterator[str]:
    with serve_on_loopback(sim) as url:
        yield url


def sdk(host: str, **kw) -> anthropic.Anthropic:
    kw.setdefault("api_key", KEY)
    return anthropic.Anthropic(base_url=f"{host}/anthropic", max_retries=0, _strict_response_validation=True, **kw)


def requests(n: int, prefix: str = "item") -> list[dict]:
    return [{"custom_id": f"{prefix}-{i}", "params": {"model": "claude-haiku-4-5", "max_tokens": 128,
             "messages": [{"role": "user", "content": f"Label ticket {i}."}]}} for i in range(n)]


def wait_until_ended(client: anthropic.Anthropic, sim: Simulator, batch_id: str, step: float = 600) -> MessageBatch:
    """Poll like a user would, moving the simulated clock between polls instead of sleeping."""
    for _ in range(200):
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        assert batch.results_url is None and batch.ended_at is None
        sim.clock.advance(step)
    raise AssertionError("the batch never ended")


def typed_results(client: anthropic.Anthropic, batch_id: str) -> list[MessageBatchIndividualResponse]:
    out = []
    for line in client.messages.batches.results(batch_id):
        assert isinstance(line, MessageBatchIndividualResponse)
        # Strict check of every field, which the SDK's JSONL decoder skips.
        MessageBatchIndividualResponse.model_validate(line.model_dump(mode="json", exclude_unset=True))
        assert isinstance(line.result, RESULT_TYPES[line.result.type])
        out.append(line)
    return out


def test_create_poll_and_read_typed_results(sim, host):
    client = sdk(host)
    created = client.messages.batches.create(requests=requests(30))
    assert isinstance(created, MessageBatch) and created.processing_status == "in_progress"
    counts = created.request_counts
    assert (counts.processing, counts.succeeded, counts.errored, counts.canceled, counts.expired) == (30, 0, 0, 0, 0)
    assert created.expires_at - created.created_at == timedelta(days=1)

    batch = wait_until_ended(client, sim, created.id)
    assert batch.results_url and batch.results_url.startswith(host)
    assert batch.request_counts.processing == 0

    lines = typed_results(client, batch.id)
    assert sorted(line.custom_id for line in lines) == sorted(f"item-{i}" for i in range(30))
    tally = Counter(line.result.type for line in lines)
    rc = batch.request_counts
    assert tally == Counter({k: v for k, v in [("succeeded", rc.succeeded), ("errored", rc.errored),
                                               ("canceled", rc.canceled), ("expired", rc.expired)] if v})
    for line in lines:
        if isinstance(line.result, MessageBatchSucceededResult):
            message = line.result.message
            assert message.model == "claude-haiku-4-5-20251001"
            assert message.usage.service_tier == "batch" and message.usage.output_tokens > 0


def test_every_result_kind_parses(sim, ws, host):
    plan = Plan(error_rate=0.3, server_error_share=0.5, blocked_rate=0.1, duration=1.3 * DAY)
    expiring = seed_batch(sim.world, ws, n_requests=200, model="claude-sonnet-4-5", created_at=START, plan=plan)
    client = sdk(host)
    cancelled = client.messages.batches.create(requests=requests(200, "c"))
    sim.clock.advance(300)
    client.messages.batches.cancel(cancelled.id)
    sim.clock.advance(DAY + 60)

    seen: Counter = Counter()
    error_types: set[str] = set()
    stop_reasons: set[str] = set()
    for batch_id in (expiring.id, cancelled.id):
        for line in typed_results(client, batch_id):
            seen[line.result.type] += 1
            if isinstance(line.result, MessageBatchErroredResult):
                error_types.add(line.result.error.error.type)
            if isinstance(line.result, MessageBatchSucceededResult):
                stop_reasons.add(line.result.message.stop_reason)
    assert set(seen) == set(RESULT_TYPES)
    assert {"invalid_request_error"} < error_types <= {"invalid_request_error", "api_error", "overloaded_error"}
    assert "refusal" in stop_reasons and "end_turn" in stop_reasons


def test_list_auto_paginates_newest_first(sim, ws, host):
    for i in range(45):
        seed_batch(sim.world, ws, n_requests=1, model="claude-haiku-4-5", created_at=START - 60 * (i + 1))
    client = sdk(host)
    newest = client.messages.batches.create(requests=requests(2))
    listed = list(client.messages.batches.list())  # the SDK's default page is 20
    assert len(listed) == 46 and len({b.id for b in listed}) == 46
    assert listed[0].id == newest.id
    created = [b.created_at for b in listed]
    assert created == sorted(created, reverse=True)
    assert ws.requests[("GET", "batches.list")] == 3

    page = client.messages.batches.list(limit=5)
    assert len(page.data) == 5 and page.has_more and page.last_id == page.data[-1].id
    earlier = client.messages.batches.list(limit=5, before_id=listed[7].id)
    assert [b.id for b in earlier.data] == [b.id for b in listed[2:7]]


def test_cancel_then_delete(sim, host):
    client = sdk(host)
    batch = client.messages.batches.create(requests=requests(100))
    sim.clock.advance(60)
    cancelling = client.messages.batches.cancel(batch.id)
    assert cancelling.processing_status == "canceling" and cancelling.cancel_initiated_at is not None
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.delete(batch.id)  # not while processing

    ended = wait_until_ended(client, sim, batch.id, step=30)
    assert ended.cancel_initiated_at == cancelling.cancel_initiated_at
    assert ended.request_counts.canceled > 0
    assert sum(isinstance(line.result, MessageBatchCanceledResult)
               for line in typed_results(client, batch.id)) == ended.request_counts.canceled
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.cancel(batch.id)

    deleted = client.messages.batches.delete(batch.id)
    assert isinstance(deleted, DeletedMessageBatch)
    assert (deleted.id, deleted.type) == (batch.id, "message_batch_deleted")
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)


def test_archived_results_are_gone(sim, host):
    client = sdk(host)
    batch = client.messages.batches.create(requests=requests(3))
    sim.clock.advance(29 * DAY)
    archived = client.messages.batches.retrieve(batch.id)
    assert archived.archived_at is not None and archived.processing_status == "ended"
    with pytest.raises(anthropic.NotFoundError):
        list(client.messages.batches.results(batch.id))


def test_create_errors_the_sdk_understands(sim, host):
    client = sdk(host)
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.batches.create(requests=[*requests(2), requests(1)[0]])  # item-0 twice
    assert info.value.body["error"]["type"] == "invalid_request_error"
    assert "item-0" in info.value.body["error"]["message"]


def test_a_body_over_the_size_limit_is_413(sim, host, monkeypatch):
    monkeypatch.setattr(sim_anthropic, "MAX_BODY_BYTES", 2_000)
    with pytest.raises(anthropic.ContentTooLargeError) as info:
        sdk(host).messages.batches.create(requests=requests(40))
    assert info.value.body["error"]["type"] == "request_too_large"


def test_bearer_auth_and_refused_keys(sim, ws, host):
    # The 2.x SDK's bearer form reaches the same workspace as x-api-key.
    made = sdk(host).messages.batches.create(requests=requests(1))
    via_bearer = sdk(host, api_key=None, auth_token=KEY)
    assert via_bearer.messages.batches.retrieve(made.id).id == made.id

    ws.faults = FaultConfig(reject_key=True)
    with pytest.raises(anthropic.AuthenticationError):
        sdk(host).messages.batches.list()


@pytest.mark.parametrize("kind, error", [
    ("429", anthropic.RateLimitError),
    ("529", anthropic.OverloadedError),
    ("503", anthropic.ServiceUnavailableError),
    ("500", anthropic.InternalServerError),
])
def test_injected_faults_reach_the_sdk_as_its_own_errors(sim, ws, host, kind, error):
    ws.faults = FaultConfig(rate=1.0, kinds=(kind,), retry_after=4)
    with pytest.raises(error) as info:
        sdk(host).messages.batches.list()
    assert info.value.status_code == int(kind)
    if kind in ("429", "503", "529"):
        assert info.value.response.headers["retry-after"] == "4"
