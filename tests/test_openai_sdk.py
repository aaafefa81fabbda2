"""The simulator speaks OpenAI's wire format: proven with the official `openai` SDK over a
real loopback socket. When the SDK cannot read what the simulator sends, the simulator is
wrong. Beyond the SDK's own (lenient) parsing, every object is validated strictly against
the SDK's pydantic types, so a missing required field or a wrong type fails here."""

from __future__ import annotations

import json

import openai
import pytest
from openai.types import Batch as SDKBatch
from openai.types import FileObject

from batchtui.sim import Simulator
from batchtui.sim.openai import seed_batch
from batchtui.sim.world import Plan
from tests.support.loopback import serve_on_loopback

KEY = "sk-test-openai-0002"
START = 1_787_000_000.0


def _lines(n: int, prefix: str = "q") -> bytes:
    rows = [{"custom_id": f"{prefix}-{i:04d}", "method": "POST", "url": "/v1/chat/completions",
             "body": {"model": "gpt-5-mini", "messages": [{"role": "user", "content": f"Question {i}?"}]}}
            for i in range(n)]
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def _strict_batch(client: openai.OpenAI, batch_id: str) -> SDKBatch:
    raw = client.batches.with_raw_response.retrieve(batch_id)
    body = raw.http_response.json()
    assert set(body) <= set(SDKBatch.model_fields), set(body) - set(SDKBatch.model_fields)
    return SDKBatch.model_validate(body, strict=False)


@pytest.fixture
def served():
    sim = Simulator(manual_clock=True, seed=11, start=START)
    ws = sim.world.add_workspace("openai", "sdk", KEY)
    with serve_on_loopback(sim) as host:
        client = openai.OpenAI(api_key=KEY, base_url=host + "/openai/v1", max_retries=0, timeout=30)
        yield sim, ws, client
        client.close()


def test_upload_create_list_poll_download_cancel(served):
    sim, ws, client = served
    for i in range(25):  # more than one default page (20) of older batches
        seed_batch(sim.world, ws, n_requests=3, model="gpt-5-mini", created_at=START - 3600 - 60 * i,
                   plan=Plan(duration=100))

    data = _lines(200)
    uploaded = client.files.create(file=("eval-run.jsonl", data), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.bytes == len(data) and uploaded.filename == "eval-run.jsonl"
    FileObject.model_validate(client.files.with_raw_response.retrieve(uploaded.id).http_response.json())
    assert client.files.content(uploaded.id).content == data
    assert uploaded.id in [f.id for f in client.files.list(purpose="batch")]

    created = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                    completion_window="24h", metadata={"job": "sdk-proof"})
    assert created.status == "validating" and created.request_counts.total == 0
    assert created.expires_at == created.created_at + 86_400

    # Auto-pagination: 26 batches at the SDK's default page size of 20 is two requests.
    before = ws.requests[("GET", "/batches")]
    listed = list(client.batches.list())
    assert [b.id for b in listed][0] == created.id and len(listed) == 26
    assert ws.requests[("GET", "/batches")] - before == 2
    assert [b.created_at for b in listed] == sorted((b.created_at for b in listed), reverse=True)
    assert [b.id for b in client.batches.list(limit=7)] == [b.id for b in listed]

    seen = []
    batch = _strict_batch(client, created.id)
    while batch.status not in ("completed", "failed", "expired", "cancelled"):
        sim.clock.advance(30)
        batch = _strict_batch(client, created.id)
        seen.append((batch.status, batch.request_counts.completed + batch.request_counts.failed))
    statuses = [s for s, _ in seen]
    assert statuses[0] == "in_progress" and "finalizing" in statuses and statuses[-1] == "completed"
    done = [n for _, n in seen]
    assert done == sorted(done) and done[-1] == 200  # counts rise live, never fall
    assert batch.usage is not None and batch.usage.input_tokens > 0
    assert batch.model.startswith("gpt-5-mini-")  # a dated snapshot

    output = client.files.content(batch.output_file_id).content
    assert output == ws.files[batch.output_file_id].data()
    assert len(output.splitlines()) == batch.request_counts.completed
    assert batch.error_file_id is not None  # a 3% error rate over 200 requests, fixed by the seed
    errors = client.files.content(batch.error_file_id).content
    assert len(errors.splitlines()) == batch.request_counts.failed
    assert client.files.retrieve(batch.output_file_id).purpose == "batch_output"

    # Cancel a second batch while it runs: cancelling, then cancelled with partial results.
    second = client.batches.create(input_file_id=client.files.create(file=("b.jsonl", _lines(200, "c")),
                                                                     purpose="batch").id,
                                   endpoint="/v1/chat/completions", completion_window="24h")
    sim.clock.advance(200)
    cancelling = client.batches.cancel(second.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    sim.clock.advance(600)
    cancelled = _strict_batch(client, second.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    lines = [json.loads(x) for x in client.files.content(cancelled.error_file_id).content.splitlines()]
    assert any(line["error"] and line["error"]["code"] == "batch_cancelled" for line in lines)
    assert client.files.content(cancelled.output_file_id).content  # partial output
    with pytest.raises(openai.BadRequestError):
        client.batches.cancel(second.id)


def test_sdk_errors_are_openai_shaped(served):
    sim, ws, client = served
    with pytest.raises(openai.BadRequestError) as bad:
        client.files.create(file=("data.csv", b"a,b\n"), purpose="batch")
    assert bad.value.message.endswith("Invalid file format for Batch API. Must be .jsonl")
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_does_not_exist")
    with pytest.raises(openai.NotFoundError):
        client.files.content("file-missing")
    with pytest.raises(openai.BadRequestError) as window:
        f = client.files.create(file=("x.jsonl", _lines(2)), purpose="batch")
        client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="48h")
    assert window.value.body["param"] == "completion_window"
    ws.faults.reject_key = True
    with pytest.raises(openai.AuthenticationError):
        client.batches.list()


def test_sdk_file_delete_and_validation_failure(served):
    sim, ws, client = served
    f = client.files.create(file=("bad.jsonl", b'{"custom_id": "a"}\nnot json\n'), purpose="batch")
    batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    sim.clock.advance(60)
    failed = _strict_batch(client, batch.id)
    assert failed.status == "failed" and failed.failed_at is not None
    assert [(e.code, e.line) for e in failed.errors.data] == [("missing_required_parameter", 1),
                                                              ("invalid_json_line", 2)]
    assert failed.output_file_id is None and failed.error_file_id is None
    deleted = client.files.delete(f.id)
    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(f.id)
