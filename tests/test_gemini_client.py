"""GeminiClient against the in-process simulator, and the wire rules on hand-written objects.

The clock is driven by hand (`sim.clock.advance`) and every retry wait goes to a recording
`sleep`, so nothing here waits for real.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchtui.core.errors import (
    AuthError,
    ProtocolError,
    CreateOutcomeUnknown,
    InputError,
    NotFoundError,
    ProviderError,
    RateLimitedError,
    UnreachableError,
)
from batchtui.core.models import Outcome, ResultFile, Status
from batchtui.core.providers import client_class, gemini
from batchtui.core.providers.base import TOKEN_KEY, BatchInput, NotSupported
from batchtui.core.providers.gemini import GeminiClient
from batchtui.core.providers.gemini_wire import batch_from_operation, parse_result_line
from batchtui.core.results import ResultsAnalyzer
from batchtui.sim import Simulator
from batchtui.sim.faults import FaultConfig
from batchtui.sim.gemini import seed_batch
from batchtui.sim.gemini_render import results_file
from batchtui.sim.world import BLOCKED, OK, Plan, token_usage

KEY = "AIza-test-gemini-0001"
START = 1_786_000_000.0  # 2026-08-06, fixed so runs are identical
HOUR = 3600.0


class Recorder:
    """Stands in for asyncio.sleep: records each retry delay, optionally runs a hook."""

    def __init__(self, hook=None):
        self.delays: list[float] = []
        self.hook = hook

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.hook is not None:
            self.hook()


class Recording(httpx.AsyncBaseTransport):
    """Wraps a transport and keeps every request it carried."""

    def __init__(self, inner: httpx.AsyncBaseTransport):
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


@pytest.fixture
def sim() -> Simulator:
    return Simulator(manual_clock=True, seed=11, start=START)


@pytest.fixture
def ws(sim):
    return sim.world.add_workspace("gemini", "main", KEY)


def make_client(sim, *, key=KEY, sleep=None, transport=None, **account) -> GeminiClient:
    return GeminiClient(sim.account("gem", "gemini", **account), key,
                        transport=transport or sim.transport(), sleep=sleep or Recorder())


def lines(n: int, prefix: str = "t") -> list[dict]:
    return [{"key": f"{prefix}-{i}", "request": {"contents": [{"role": "user", "parts": [{"text": f"ticket {i}"}]}]}}
            for i in range(n)]


async def fetch(client, batch, ref=None) -> bytes:
    out = bytearray()
    result_file = ref or batch.result_files[0]
    async for chunk in client.download(batch, result_file):
        out += chunk
    return bytes(out)


# -- normalisation, on hand-written wire objects ------------------------------------------------

# The observed pending Operation of PROVIDERS.md §C.4.
PENDING = {
    "name": "batches/tq7m2k9xw4r1vz8nb3c6hd0pl5sy2af9ge1j",
    "metadata": {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
        "model": "models/gemini-2.5-flash",
        "displayName": "eval-run-0042",
        "inputConfig": {"fileName": "files/k3v9q2xw8m1p"},
        "createTime": "2026-08-20T09:14:03.407650525Z",
        "updateTime": "2026-08-20T09:14:03.407650525Z",
        "batchStats": {"requestCount": "1200", "pendingRequestCount": "1200"},
        "state": "BATCH_STATE_PENDING",
        "name": "batches/tq7m2k9xw4r1vz8nb3c6hd0pl5sy2af9ge1j",
    },
}


def op(state: str, *, stats=None, done=None, **meta) -> dict:
    out = {"name": "batches/abc", "metadata": {"createTime": "2026-08-20T09:14:03.407650525Z", "state": state,
                                               **({"batchStats": stats} if stats is not None else {}), **meta}}
    if done is not None:
        out["done"] = done
    return out


def test_observed_pending_operation():
    batch = batch_from_operation(PENDING, "acct")
    assert batch.id == "batches/tq7m2k9xw4r1vz8nb3c6hd0pl5sy2af9ge1j"
    assert (batch.status, batch.provider_status) == (Status.VALIDATING, "BATCH_STATE_PENDING")
    assert batch.model == "gemini-2.5-flash"
    assert batch.name == "eval-run-0042"
    assert batch.input_ref == "files/k3v9q2xw8m1p"
    # Nine fractional digits: the first six survive, nothing is mis-parsed.
    assert batch.created_at == datetime(2026, 8, 20, 9, 14, 3, 407650, tzinfo=UTC)
    assert batch.expires_at == batch.created_at + timedelta(hours=48)
    assert batch.ended_at is None
    assert (batch.counts.total, batch.counts.processing) == (1200, 1200)
    # Left out because zero, inside a stats object that exists: 0, not unknown.
    assert (batch.counts.succeeded, batch.counts.failed) == (0, 0)
    assert batch.result_files == () and batch.errors == ()
    assert batch.raw == PENDING


@pytest.mark.parametrize("suffix, status", [
    ("UNSPECIFIED", Status.VALIDATING), ("PENDING", Status.VALIDATING), ("QUEUED", Status.VALIDATING),
    ("RUNNING", Status.IN_PROGRESS), ("UPDATING", Status.IN_PROGRESS), ("PAUSED", Status.IN_PROGRESS),
    ("SUCCEEDED", Status.COMPLETED), ("PARTIALLY_SUCCEEDED", Status.COMPLETED), ("FAILED", Status.FAILED),
    ("CANCELLING", Status.CANCELLING), ("CANCELLED", Status.CANCELLED), ("EXPIRED", Status.EXPIRED),
])
@pytest.mark.parametrize("prefix", ["BATCH_STATE_", "JOB_STATE_"])
def test_states_under_both_names(prefix, suffix, status):
    batch = batch_from_operation(op(prefix + suffix), "acct")
    assert batch.status is status
    assert batch.provider_status == prefix + suffix


def test_unknown_state_falls_back_on_done():
    assert batch_from_operation(op("BATCH_STATE_NEW_THING"), "a").status is Status.IN_PROGRESS
    assert batch_from_operation(op("BATCH_STATE_NEW_THING", done=True), "a").status is Status.COMPLETED
    failed = {**op("BATCH_STATE_NEW_THING", done=True), "error": {"code": 13, "message": "boom"}}
    assert batch_from_operation(failed, "a").status is Status.FAILED


def test_final_counts_from_int64_strings():
    stats = {"requestCount": "1200", "successfulRequestCount": "1196", "failedRequestCount": "4"}
    counts = batch_from_operation(op("BATCH_STATE_SUCCEEDED", stats=stats, done=True), "a").counts
    assert (counts.total, counts.succeeded, counts.failed, counts.processing) == (1200, 1196, 4, 0)
    assert counts.live and counts.expired is None and counts.cancelled is None


def test_no_stats_means_unknown_counts_not_zero():
    counts = batch_from_operation(op("BATCH_STATE_PENDING"), "a").counts
    assert (counts.total, counts.succeeded, counts.failed, counts.processing) == (None, None, None, None)


@pytest.mark.parametrize("state, field", [("BATCH_STATE_EXPIRED", "expired"), ("BATCH_STATE_CANCELLED", "cancelled")])
@pytest.mark.parametrize("stats", [
    {"requestCount": "10", "successfulRequestCount": "3", "failedRequestCount": "1", "pendingRequestCount": "6"},
    {"requestCount": "10", "successfulRequestCount": "3", "failedRequestCount": "1"},
])
def test_stopped_batches_count_what_never_ran(state, field, stats):
    counts = batch_from_operation(op(state, stats=stats, done=True), "a").counts
    assert getattr(counts, field) == 6
    assert counts.processing == 0 and (counts.succeeded, counts.failed) == (3, 1)


def test_minimal_and_unknown_fields_tolerated():
    raw = {"name": "batches/min", "someday": {"new": True},
           "metadata": {"state": "BATCH_STATE_RUNNING", "createTime": "2026-08-20T09:14:03Z", "shiny": [1, 2]}}
    batch = batch_from_operation(raw, "a")
    assert batch.status is Status.IN_PROGRESS
    assert (batch.model, batch.name, batch.input_ref, batch.ended_at) == (None, None, None, None)
    assert batch.counts.total is None and batch.result_files == () and batch.metadata == {}


def test_outputs_errors_and_token():
    file_op = op("BATCH_STATE_SUCCEEDED", done=True, displayName="run [bt:abc123]", model="models/gemini-3-flash",
                 endTime="2026-08-20T09:51:40.118302771Z")
    file_op["response"] = {"@type": "x", "responsesFile": "files/batch-abc"}
    batch = batch_from_operation(file_op, "a")
    assert batch.result_files == (ResultFile(kind="results", ref="files/batch-abc"),)
    assert batch.metadata == {TOKEN_KEY: "abc123"} and batch.name == "run [bt:abc123]"
    assert batch.ended_at == datetime(2026, 8, 20, 9, 51, 40, 118302, tzinfo=UTC)
    assert batch.model == "gemini-3-flash"

    inline_op = op("BATCH_STATE_SUCCEEDED", done=True,
                   output={"inlinedResponses": {"inlinedResponses": [{"response": {}}]}})
    assert batch_from_operation(inline_op, "a").result_files[0].ref == "inline"
    # A listed inline batch carries no responses, but its results still exist.
    assert batch_from_operation(op("BATCH_STATE_SUCCEEDED", done=True), "a").result_files[0].ref == "inline"
    assert batch_from_operation(op("BATCH_STATE_EXPIRED", done=True), "a").result_files == ()

    failed = {**op("BATCH_STATE_FAILED", done=True), "error": {"code": 3, "message": "bad [red]x[/]"}}
    error = batch_from_operation(failed, "a").errors[0]
    assert (error.code, error.message) == ("3", "bad [red]x[/]")


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=8)
WIRE_TEXT = st.sampled_from(["", "9999-12-31T23:59:59Z", "2026-08-20T09:14:03.407650525Z", "\u00b2", "12",
                             "BATCH_STATE_RUNNING", "JOB_STATE_EXPIRED", "-3", "[bold]x[/]", "\x1b[31m"])
FIELD_VALUE = WIRE_TEXT | JSON


@settings(max_examples=300, deadline=None)
@given(meta=st.dictionaries(st.sampled_from(["state", "createTime", "updateTime", "endTime", "displayName", "model",
                                             "inputConfig", "output", "batchStats", "name"]), FIELD_VALUE),
       stats=st.dictionaries(st.sampled_from(["requestCount", "successfulRequestCount", "failedRequestCount",
                                              "pendingRequestCount"]), FIELD_VALUE),
       extra=st.dictionaries(st.sampled_from(["done", "error", "response"]), FIELD_VALUE))
def test_any_operation_gives_a_batch_or_a_protocol_error(meta, stats, extra):
    raw = {"name": "batches/h", "metadata": {**meta, "batchStats": stats}, **extra}
    try:
        batch = batch_from_operation(raw, "a")
    except ProtocolError:
        return
    assert batch.id and batch.created_at.tzinfo is not None


@settings(max_examples=300, deadline=None)
@given(line=st.dictionaries(st.sampled_from(["key", "response", "error", "metadata"]), FIELD_VALUE),
       response=st.dictionaries(st.sampled_from(["candidates", "promptFeedback", "usageMetadata", "modelVersion"]),
                                FIELD_VALUE | st.lists(st.dictionaries(st.sampled_from(["finishReason"]), JSON))))
def test_any_result_object_is_classified(line, response):
    if "response" in line:
        line["response"] = response
    item = parse_result_line(line, 1)
    assert item.outcome in Outcome


# -- result lines ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("code, status, outcome", [
    (400, "INVALID_ARGUMENT", Outcome.REQUEST_ERROR), (403, "PERMISSION_DENIED", Outcome.REQUEST_ERROR),
    (404, "NOT_FOUND", Outcome.REQUEST_ERROR), (3, None, Outcome.REQUEST_ERROR), (5, None, Outcome.REQUEST_ERROR),
    (7, None, Outcome.REQUEST_ERROR), (9, None, Outcome.REQUEST_ERROR), (11, None, Outcome.REQUEST_ERROR),
    (500, "INTERNAL", Outcome.SERVER_ERROR), (503, "UNAVAILABLE", Outcome.SERVER_ERROR),
    (504, "DEADLINE_EXCEEDED", Outcome.SERVER_ERROR), (13, None, Outcome.SERVER_ERROR),
    (14, None, Outcome.SERVER_ERROR), (4, None, Outcome.SERVER_ERROR), (8, None, Outcome.SERVER_ERROR),
    (429, "RESOURCE_EXHAUSTED", Outcome.SERVER_ERROR), (None, "UNAVAILABLE", Outcome.SERVER_ERROR),
    (None, "INVALID_ARGUMENT", Outcome.REQUEST_ERROR), (None, None, Outcome.UNKNOWN),
])
def test_error_lines_by_http_or_grpc_code(code, status, outcome):
    error = {"message": "why"}
    if code is not None:
        error["code"] = code
    if status is not None:
        error["status"] = status
    item = parse_result_line({"key": "k1", "error": error}, 7)
    assert (item.custom_id, item.outcome, item.line_no, item.error_message) == ("k1", outcome, 7, "why")
    assert item.error_type == (status or (str(code) if code is not None else None))
    assert item.http_status == (code if code is not None and code >= 100 else None)
    assert item.usage is None


def test_success_usage_mapping():
    usage = {"promptTokenCount": 1000, "toolUsePromptTokenCount": 50, "cachedContentTokenCount": 768,
             "candidatesTokenCount": 120, "thoughtsTokenCount": 300, "totalTokenCount": 1470}
    item = parse_result_line({"key": "a", "response": {
        "candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "STOP"}],
        "usageMetadata": usage, "modelVersion": "gemini-2.5-pro"}}, 1)
    assert item.outcome is Outcome.SUCCEEDED and item.model == "gemini-2.5-pro"
    u = item.usage
    assert (u.input, u.cached_input, u.output, u.reasoning, u.cache_write) == (1050, 768, 420, 300, 0)


@pytest.mark.parametrize("reason", ["SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION",
                                    "IMAGE_SAFETY", "OTHER"])
def test_blocked_candidates(reason):
    item = parse_result_line({"key": "b", "response": {"candidates": [{"finishReason": reason}],
                                                       "usageMetadata": {"promptTokenCount": 9}}}, 1)
    assert (item.outcome, item.error_type) == (Outcome.BLOCKED, reason)
    assert item.usage.input == 9


def test_blocked_prompt_and_answers_that_are_not_blocks():
    blocked = parse_result_line({"key": "p", "response": {"promptFeedback": {"blockReason": "SAFETY"}}}, 1)
    assert (blocked.outcome, blocked.error_type) == (Outcome.BLOCKED, "SAFETY")
    for finish in ("STOP", "MAX_TOKENS"):
        ok = parse_result_line({"key": "s", "response": {"candidates": [{"finishReason": finish}]}}, 1)
        assert ok.outcome is Outcome.SUCCEEDED
    mixed = {"candidates": [{"finishReason": "SAFETY"}, {"finishReason": "STOP"}]}
    assert parse_result_line({"key": "m", "response": mixed}, 1).outcome is Outcome.SUCCEEDED


def test_unreadable_result_lines():
    item = parse_result_line({"key": "z"}, 3)
    assert (item.custom_id, item.outcome) == ("z", Outcome.UNKNOWN)
    assert parse_result_line({"key": 5, "response": "text"}, 4).outcome is Outcome.UNKNOWN
    with pytest.raises(TypeError):
        parse_result_line(["not", "an", "object"], 5)


def test_line_helpers_and_static_facts(sim):
    client = make_client(sim)
    assert client_class("gemini") is GeminiClient
    assert client.validate_line(lines(1)[0]) is None
    for bad in ([1], {"request": {"contents": []}}, {"key": "", "request": {"contents": []}},
                {"key": "a"}, {"key": "a", "request": {"contents": "hi"}}):
        assert client.validate_line(bad)
    assert client.request_custom_id({"key": "x-1"}) == "x-1"
    assert client.request_custom_id({"custom_id": "x"}) is None
    assert client.limits.max_bytes == 2 * 1024**3
    assert client.auth_headers(KEY) == {"x-goog-api-key": KEY}


# -- operations against the simulator ---------------------------------------------------------------

async def test_inline_create_runs_to_inline_results(sim, ws):
    recording = Recording(sim.transport())
    client = make_client(sim, transport=recording)
    source = BatchInput.from_objects(lines(6), model="gemini-2.5-flash", display_name="tickets")
    batch = await client.create_batch(source)
    assert (batch.status, batch.provider_status) == (Status.VALIDATING, "BATCH_STATE_PENDING")
    assert (batch.counts.total, batch.counts.processing) == (6, 6)
    assert batch.name.startswith("tickets [bt:") and batch.metadata[TOKEN_KEY] == client.create_token(source)
    assert batch.model == "gemini-2.5-flash" and batch.input_ref is None
    # On the wire: done left out until terminal, int64 strings with zeros left out, 9-digit times.
    assert "done" not in batch.raw
    assert batch.raw["metadata"]["batchStats"] == {"requestCount": "6", "pendingRequestCount": "6"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", batch.raw["metadata"]["createTime"])
    # One inline create, the key in its header and never in a URL.
    create = recording.requests[0]
    assert create.url.path == "/gemini/v1beta/models/gemini-2.5-flash:batchGenerateContent"
    assert create.headers["x-goog-api-key"] == KEY and "key" not in create.url.params
    sent = json.loads(create.content)["batch"]["inputConfig"]["requests"]["requests"]
    assert [r["metadata"]["key"] for r in sent] == [line["key"] for line in source.lines]

    sim.clock.advance(30)
    assert (await client.get_batch(batch.id)).status is Status.IN_PROGRESS
    sim.clock.advance(HOUR)
    done = await client.get_batch(batch.id.removeprefix("batches/"))  # the bare id works too
    assert done.status is Status.COMPLETED and done.raw["done"] is True
    assert done.result_files == (ResultFile(kind="results", ref="inline"),)
    assert done.ended_at is not None and done.counts.processing == 0

    results = [json.loads(line) for line in (await fetch(client, done)).splitlines()]
    assert [r["key"] for r in results] == [line["key"] for line in source.lines]  # request order
    assert all(("response" in r) != ("error" in r) for r in results)
    assert all("key" not in r.url.params and r.headers["x-goog-api-key"] == KEY for r in recording.requests)


async def test_model_comes_from_input_account_or_lines(sim, ws):
    client = make_client(sim, default_model="gemini-2.5-pro")
    assert (await client.create_batch(BatchInput.from_objects(lines(1)))).model == "gemini-2.5-pro"
    bare = make_client(sim)
    agreed = [{**line, "request": {**line["request"], "model": "models/gemini-3-flash"}} for line in lines(2)]
    assert (await bare.create_batch(BatchInput.from_objects(agreed))).model == "gemini-3-flash"
    mixed = [agreed[0], {**agreed[1], "request": {**agreed[1]["request"], "model": "gemini-2.5-pro"}}]
    with pytest.raises(InputError, match="several models"):
        await bare.create_batch(BatchInput.from_objects(mixed))
    with pytest.raises(InputError, match="no model"):
        await bare.create_batch(BatchInput.from_objects(lines(1)))
    with pytest.raises(InputError):
        await bare.create_batch(BatchInput.from_objects(lines(1), model="../files/x"))
    assert len(sim.world.visible(ws)) == 2  # nothing was sent for the refused ones


@pytest.mark.parametrize("margin", [-1, None], ids=["jsonl-too-big", "envelope-tips-it-over"])
async def test_file_mode_upload_and_byte_exact_download(sim, ws, monkeypatch, margin):
    source = BatchInput.from_objects(lines(40, "f"), model="gemini-2.5-flash")
    # Either the JSONL itself is over the inline cap, or only the inline envelope is.
    monkeypatch.setattr(gemini, "INLINE_MAX_BYTES", len(source.jsonl) + (margin if margin else 1))
    client = make_client(sim)
    batch = await client.create_batch(source)
    assert batch.input_ref and batch.input_ref.startswith("files/")
    assert ws.files[batch.input_ref].content == source.jsonl  # uploaded byte for byte
    with pytest.raises(NotSupported):
        async for _ in client.read_requests(batch):
            pass
    with pytest.raises(ProviderError) as refused:  # uploaded files can't be downloaded
        await fetch(client, batch, ResultFile(kind="results", ref=batch.input_ref))
    assert refused.value.status_code == 400

    sim.clock.advance(2 * HOUR)
    done = await client.get_batch(batch.id)
    ref = done.result_files[0].ref
    assert ref == "files/batch-" + batch.id.removeprefix("batches/")
    expected = results_file(sim.world.find(ws, batch.id))  # the simulator's own bytes
    body = await fetch(client, done)
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(expected).hexdigest()
    assert await fetch(client, done) == body  # the same bytes on every read


async def test_list_pages_newest_first_and_stop_at(sim, ws):
    made = [seed_batch(sim.world, ws, n_requests=2, model="gemini-2.5-flash", created_at=START - 100 * i)
            for i in range(7)]
    client = make_client(sim)
    client.page_size = 3
    listed = [b.id async for b in client.list_batches()]
    assert listed == [b.id for b in made]  # made newest first
    assert ws.requests[("GET", "batches.list")] == 3

    stop = made[4].id
    before = ws.requests[("GET", "batches.list")]
    partial = [b.id async for b in client.list_batches(stop_at=lambda batch_id: batch_id == stop)]
    assert partial == [b.id for b in made[:4]]
    assert ws.requests[("GET", "batches.list")] - before == 2  # the third page was never asked for


async def test_listed_inline_batch_downloads_through_get(sim, ws):
    seed_batch(sim.world, ws, n_requests=5, model="gemini-2.5-flash", created_at=START - 2 * HOUR)
    client = make_client(sim)
    [listed] = [b async for b in client.list_batches()]
    assert listed.status is Status.COMPLETED
    assert "response" not in listed.raw and "output" not in listed.raw["metadata"]
    gets = ws.requests[("GET", "batches.get")]
    body = await fetch(client, listed)
    assert ws.requests[("GET", "batches.get")] == gets + 1
    assert [json.loads(line)["key"] for line in body.splitlines()] == [f"req-{i:05d}" for i in range(5)]


async def test_bad_ids_never_reach_the_wire(sim, ws):
    client = make_client(sim)
    for bad in ("batches/../files/x", "a/b", "x?alt=media"):
        with pytest.raises(NotFoundError):
            await client.get_batch(bad)
    with pytest.raises(NotFoundError):
        await client.get_batch("batches/doesnotexist")
    assert sum(ws.requests.values()) == 1


async def test_expired_batch_has_no_results(sim, ws):
    seeded = seed_batch(sim.world, ws, n_requests=20, model="gemini-2.5-flash", created_at=START,
                        plan=Plan(duration=60 * HOUR), inline=False)
    client = make_client(sim)
    sim.clock.advance(47 * HOUR)
    assert (await client.get_batch(seeded.id)).status is Status.IN_PROGRESS
    sim.clock.advance(2 * HOUR)
    batch = await client.get_batch(seeded.id)
    assert (batch.status, batch.provider_status) == (Status.EXPIRED, "BATCH_STATE_EXPIRED")
    assert batch.result_files == () and batch.counts.processing == 0
    assert batch.counts.expired == 20 - batch.counts.succeeded - batch.counts.failed > 0
    with pytest.raises(NotFoundError):
        await fetch(client, batch, ResultFile(kind="results", ref="files/batch-" + seeded.id.split("/")[1]))


async def test_whole_batch_failure(sim, ws):
    message = "Quota of enqueued tokens exceeded [bold red]x[/] \x1b[31m" + "y" * 1_000_000
    seeded = seed_batch(sim.world, ws, n_requests=4, model="gemini-2.5-flash", created_at=START,
                        plan=Plan(batch_failure={"code": 8, "message": message}))
    sim.clock.advance(HOUR)
    batch = await make_client(sim).get_batch(seeded.id)
    assert (batch.status, batch.provider_status) == (Status.FAILED, "BATCH_STATE_FAILED")
    assert batch.errors[0].code == "8" and batch.errors[0].message == message  # verbatim, all of it
    assert batch.result_files == ()


async def test_cancel(sim, ws):
    client = make_client(sim)
    batch = await client.create_batch(BatchInput.from_objects(lines(30), model="gemini-2.5-flash"))
    sim.clock.advance(200)
    cancelled = await client.cancel_batch(batch.id)
    assert (cancelled.status, cancelled.provider_status) == (Status.CANCELLED, "BATCH_STATE_CANCELLED")
    counts = cancelled.counts
    assert counts.cancelled == 30 - counts.succeeded - counts.failed > 0 and counts.processing == 0
    assert cancelled.result_files == ()
    with pytest.raises(ProviderError) as again:
        await client.cancel_batch(batch.id)
    assert again.value.error_type == "FAILED_PRECONDITION"


@pytest.mark.parametrize("inline", [False, True], ids=["file", "inline"])
async def test_results_analyzed_match_batch_stats(sim, ws, inline):
    plan = Plan(error_rate=0.2, server_error_share=0.5, blocked_rate=0.08)
    seeded = seed_batch(sim.world, ws, n_requests=300, model="gemini-2.5-pro", created_at=START, plan=plan,
                        inline=inline)
    sim.clock.advance(3 * HOUR)
    client = make_client(sim)
    batch = await client.get_batch(seeded.id)
    analyzer = ResultsAnalyzer(client.parse_result_line)
    async for chunk in client.download(batch, batch.result_files[0]):
        analyzer.feed_chunk(chunk)
    summary = analyzer.summary()
    outcomes = summary.breakdown.outcomes
    assert all(outcomes.get(o, 0) > 0 for o in (Outcome.SUCCEEDED, Outcome.BLOCKED, Outcome.REQUEST_ERROR,
                                                Outcome.SERVER_ERROR))
    assert outcomes[Outcome.SUCCEEDED] + outcomes[Outcome.BLOCKED] == batch.counts.succeeded
    assert outcomes[Outcome.REQUEST_ERROR] + outcomes[Outcome.SERVER_ERROR] == batch.counts.failed
    assert summary.breakdown.unparseable == 0
    # Usage, recomputed from the simulator's own plan: output includes thinking.
    final = seeded.final_outcomes(sim.world.now())
    answered = [token_usage(seeded, r) for r, o in final if o == OK]
    prompted = answered + [token_usage(seeded, r) for r, o in final if o == BLOCKED]
    usage = summary.usage_by_model["gemini-2.5-pro"]
    assert usage.input == sum(u["input"] for u in prompted)
    assert usage.cached_input == sum(u["cached"] for u in answered)
    assert usage.output == sum(u["output"] for u in answered)
    assert usage.reasoning == sum(u["reasoning"] for u in answered) > 0


# -- faults ---------------------------------------------------------------------------------------------

def _clear_faults(ws):
    def hook():
        ws.faults.rate = 0.0
    return hook


async def test_429_retry_info_is_honoured(sim, ws):
    seeded = seed_batch(sim.world, ws, n_requests=1, model="gemini-2.5-flash", created_at=START)
    ws.faults = FaultConfig(rate=1.0, kinds=("429",), retry_after=7.0)
    sleep = Recorder(_clear_faults(ws))
    batch = await make_client(sim, sleep=sleep).get_batch(seeded.id)
    assert batch.id == seeded.id and sleep.delays == [7.0]


async def test_429_that_outlasts_retries(sim, ws):
    ws.faults = FaultConfig(rate=1.0, kinds=("429",), retry_after=3.0)
    sleep = Recorder()
    with pytest.raises(RateLimitedError) as caught:
        await make_client(sim, sleep=sleep).get_batch("batches/x")
    assert caught.value.retry_after == 3.0 and sleep.delays == [3.0] * 4
    assert caught.value.error_type == "RESOURCE_EXHAUSTED"


@pytest.mark.parametrize("kind", ["500", "503", "drop", "slow"])
async def test_transient_faults_are_absorbed(sim, ws, kind):
    seeded = seed_batch(sim.world, ws, n_requests=1, model="gemini-2.5-flash", created_at=START)
    ws.faults = FaultConfig(rate=1.0, kinds=(kind,), retry_after=2.0, slow_seconds=0.001)
    sleep = Recorder(_clear_faults(ws))
    batch = await make_client(sim, sleep=sleep).get_batch(seeded.id)
    assert batch.id == seeded.id and ws.faults.injected[kind] == 1
    if kind == "503":
        assert sleep.delays == [2.0]  # the RetryInfo hint in the body
    elif kind == "slow":
        assert sleep.delays == []
    else:
        assert len(sleep.delays) == 1 and 0 < sleep.delays[0] <= 0.5  # our own backoff


async def test_dropped_download_is_retried(sim, ws):
    seeded = seed_batch(sim.world, ws, n_requests=30, model="gemini-2.5-flash", created_at=START, inline=False)
    sim.clock.advance(HOUR)
    client = make_client(sim)
    batch = await client.get_batch(seeded.id)
    clean = await fetch(client, batch)
    ws.faults = FaultConfig(rate=1.0, kinds=("drop",))
    client = make_client(sim, sleep=Recorder(_clear_faults(ws)))
    assert await fetch(client, batch) == clean


async def test_refused_key_is_an_auth_error(sim, ws):
    ws.faults = FaultConfig(reject_key=True)
    with pytest.raises(AuthError) as caught:
        await make_client(sim).get_batch("batches/x")
    assert caught.value.status_code == 400  # Gemini's way of saying 401
    assert sum(ws.requests.values()) == 1  # not retried


async def test_lost_create_answer_then_find_created(sim, ws):
    ws.faults = FaultConfig(lose_create_answers=1)
    client = make_client(sim)
    source = BatchInput.from_objects(lines(3), model="gemini-2.5-flash", metadata={TOKEN_KEY: "tok42"})
    with pytest.raises(CreateOutcomeUnknown):
        await client.create_batch(source)
    assert ws.requests[("POST", "batches.create")] == 1  # never re-sent
    other = await client.create_batch(BatchInput.from_objects(lines(2), model="gemini-2.5-flash"))
    found = await client.find_created(source, since=START)
    assert found is not None and found.id != other.id and found.metadata[TOKEN_KEY] == "tok42"
    matches = [b async for b in client.list_batches() if b.metadata.get(TOKEN_KEY) == "tok42"]
    assert [b.id for b in matches] == [found.id]
    assert await client.find_created(BatchInput.from_objects(lines(9), model="x"), since=START) is None


# -- hostile data ------------------------------------------------------------------------------------

async def test_markup_and_escapes_kept_verbatim(sim, ws):
    name = "[bold red]x[/] \x1b[31mred\x1b[0m"
    client = make_client(sim)
    batch = await client.create_batch(BatchInput.from_objects(lines(1), model="gemini-2.5-flash", display_name=name))
    assert batch.name.startswith(name + " [bt:")
    assert (await client.get_batch(batch.id)).name == batch.name
    huge = "[bold red]x[/] \x1b[31m" + "m" * 1_000_000
    item = parse_result_line({"key": "\x1b[2J", "error": {"code": 400, "message": huge}}, 1)
    assert item.error_message == huge and item.custom_id == "\x1b[2J"


async def test_broken_result_lines_are_counted_not_fatal(sim, ws):
    seeded = seed_batch(sim.world, ws, n_requests=10, model="gemini-2.5-flash", created_at=START, inline=False)
    sim.clock.advance(HOUR)
    client = make_client(sim)
    body = await fetch(client, await client.get_batch(seeded.id))
    first = body.splitlines()[0]
    analyzer = ResultsAnalyzer(client.parse_result_line)
    analyzer.feed_chunk(body + b"not json at all\n[1, 2]\n" + first[: len(first) // 2])
    summary = analyzer.summary()
    assert summary.breakdown.unparseable == 3
    assert sum(summary.breakdown.outcomes.values()) == 10


async def test_huge_http_error_is_cut_and_key_redacted(sim):
    async def handler(request):
        return httpx.Response(400, json={"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                                   "message": f"bad {KEY} " + "z" * 1_000_000}})
    client = make_client(sim, transport=httpx.MockTransport(handler))
    with pytest.raises(ProviderError) as caught:
        await client.get_batch("batches/x")
    assert len(str(caught.value)) < 3_000 and KEY not in str(caught.value)


async def test_the_key_never_shows(sim, ws):
    errors: list[BaseException] = []
    ws.faults = FaultConfig(reject_key=True)
    client = make_client(sim)
    for call in (client.get_batch("batches/x"), client.cancel_batch("batches/x")):
        with pytest.raises(ProviderError) as caught:
            await call
        errors.append(caught.value)
    ws.faults = FaultConfig()
    with pytest.raises(NotFoundError) as missing:
        await client.get_batch("batches/missing")
    errors.append(missing.value)

    async def unreachable(request):
        raise httpx.ConnectError(f"cannot reach {request.url} with {request.headers['x-goog-api-key']}")
    down = make_client(sim, transport=httpx.MockTransport(unreachable))
    with pytest.raises(UnreachableError) as gone:
        await down.get_batch("batches/x")
    errors.append(gone.value)
    ws.faults = FaultConfig(lose_create_answers=1)
    with pytest.raises(CreateOutcomeUnknown) as lost:
        await client.create_batch(BatchInput.from_objects(lines(1), model="gemini-2.5-flash"))
    errors.append(lost.value)
    for error in errors:
        assert KEY not in str(error) and KEY not in repr(error) and KEY not in repr(error.args)
        assert KEY not in repr(vars(error))
    assert KEY not in repr(client) and KEY not in repr(client.http)


async def test_download_into_a_sink(sim, ws, tmp_path):
    seeded = seed_batch(sim.world, ws, n_requests=3, model="gemini-2.5-flash", created_at=START, inline=False)
    sim.clock.advance(HOUR)
    client = make_client(sim)
    batch = await client.get_batch(seeded.id)
    written = 0
    with open(tmp_path / "out.jsonl", "wb") as sink:
        async for chunk in client.download(batch, batch.result_files[0]):
            written += sink.write(chunk)
    assert (tmp_path / "out.jsonl").read_bytes() == await fetch(client, batch) and written > 0


async def test_upload_session_on_another_host_is_refused(sim, monkeypatch):
    monkeypatch.setattr(gemini, "INLINE_MAX_BYTES", 0)  # force file mode
    seen: list[str] = []

    async def handler(request):
        seen.append(request.url.host)
        return httpx.Response(200, headers={"x-goog-upload-url": "https://collector.example/upload?upload_id=1"})
    client = make_client(sim, transport=httpx.MockTransport(handler))
    with pytest.raises(ProtocolError, match="another host"):
        await client.create_batch(BatchInput.from_objects(lines(1), model="gemini-2.5-flash", display_name="x"))
    assert "collector.example" not in seen


async def test_a_repeated_page_token_ends_the_listing(sim):

    async def handler(request):
        return httpx.Response(200, json={"operations": [], "nextPageToken": "same"})
    client = make_client(sim, transport=httpx.MockTransport(handler))
    with pytest.raises(ProtocolError, match="repeats"):
        _ = [b async for b in client.list_batches()]


async def test_simulator_wire_edges(sim, ws):
    """What no client path reaches: bad page tokens, unknown versions, snake_case bodies, file expiry."""
    async with httpx.AsyncClient(transport=sim.transport(), base_url=sim.base_url("gemini"),
                                 headers={"x-goog-api-key": KEY}) as http:
        assert (await http.get("/v1beta/batches", params={"pageToken": "%%%"})).json()["error"]["status"] \
            == "INVALID_ARGUMENT"
        assert (await http.get("/v2/batches")).status_code == 404
        snake = {"batch": {"display_name": "snake", "input_config": {"requests": {"requests": [
            {"request": {"contents": []}}]}}}}
        created = (await http.post("/v1/models/models/gemini-2.5-flash:batchGenerateContent", json=snake)).json()
        assert created["metadata"]["displayName"] == "snake"
        assert created["metadata"]["model"] == "models/gemini-2.5-flash"
        nameless = {"batch": {"inputConfig": {"requests": {"requests": [{"request": {"contents": []}}]}}}}
        assert (await http.post("/v1beta/models/gemini-2.5-flash:batchGenerateContent", json=nameless)).status_code \
            == 400
        start = await http.post("/upload/v1beta/files", json={"file": {"displayName": "in"}},
                                headers={"x-goog-upload-protocol": "resumable", "x-goog-upload-command": "start"})
        done = await http.post(start.headers["x-goog-upload-url"], content=b'{"key":"a","request":{"contents":[]}}\n',
                               headers={"x-goog-upload-command": "upload, finalize", "x-goog-upload-offset": "0"})
        file = done.json()["file"]
        assert file["sizeBytes"] == "38" and file["source"] == "UPLOADED" and "downloadUri" not in file
        assert (await http.get(f"/v1beta/{file['name']}")).json()["name"] == file["name"]
        sim.clock.advance(48 * HOUR)  # uploaded files are kept 48 h
        assert (await http.get(f"/v1beta/{file['name']}")).status_code == 404
