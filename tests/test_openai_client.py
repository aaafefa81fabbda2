"""The OpenAI client (batchtui/core/providers/openai.py) and the OpenAI simulator: every
operation end to end, normalisation of hand-written wire objects of every dialect, result
line classification, every fault mode, hostile data, and that the key never leaks."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from batchtui.core.accounts import Account
from batchtui.core.errors import (
    AuthError,
    ConfigError,
    CreateOutcomeUnknown,
    InputError,
    NotFoundError,
    ProtocolError,
    ProviderError,
    RateLimitedError,
    UnreachableError,
)
from batchtui.core.models import Outcome, Provider, Status
from batchtui.core.providers import client_class
from batchtui.core.providers.base import TOKEN_KEY, BatchInput, NotSupported
from batchtui.core.providers.openai import OpenAIClient, creation_token
from batchtui.core.providers.openai_dialects import to_batch
from batchtui.core.results import MAX_SAMPLE, ResultsAnalyzer
from batchtui.core.transport import RetryPolicy
from batchtui.sim import IN_PROCESS_HOST, Simulator
from batchtui.sim.faults import FaultConfig
from batchtui.sim.openai import seed_batch
from batchtui.sim.openai_input import token_limit_error
from batchtui.sim.openai_results import EXPIRED_MESSAGE, STATUS_ZERO
from batchtui.sim.world import BLOCKED, CANCELLED, EXPIRED, OK, REQUEST_ERROR, SERVER_ERROR, Plan
from tests.support.loopback import serve_on_loopback

KEY = "sk-test-openai-0001"
START = 1_787_000_000.0
DAY = 86_400
ACCOUNT = Account(name="oa", provider=Provider.OPENAI)

# What each planned outcome of the world must come back as, through the wire and our parser.
EXPECTED_OUTCOME = {
    OK: Outcome.SUCCEEDED,
    BLOCKED: Outcome.BLOCKED,
    REQUEST_ERROR: Outcome.REQUEST_ERROR,
    SERVER_ERROR: Outcome.SERVER_ERROR,
    EXPIRED: Outcome.NOT_RUN_EXPIRED,
    CANCELLED: Outcome.NOT_RUN_CANCELLED,
}


class Sleeps:
    """The client's `sleep`: records each delay instead of waiting; `on_first` runs once
    (e.g. to lift a fault, so the retry is seen to succeed)."""

    def __init__(self, on_first=None):
        self.delays: list[float] = []
        self.on_first = on_first

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.on_first is not None:
            self.on_first, callback = None, self.on_first
            callback()


@pytest.fixture
def sim() -> Simulator:
    return Simulator(manual_clock=True, seed=7, start=START)


@pytest.fixture
def ws(sim):
    return sim.world.add_workspace("openai", "main", KEY)


def client_for(sim, key=KEY, *, sleep=None, **account) -> OpenAIClient:
    return OpenAIClient(sim.account("oa-main", "openai", **account), key, transport=sim.transport(),
                        sleep=sleep or Sleeps())


def request_line(i, *, url="/v1/chat/completions", model="gpt-5-mini", custom_id=None) -> dict:
    body = ({"model": model, "input": f"Summarize note {i}."} if url == "/v1/responses"
            else {"model": model, "messages": [{"role": "user", "content": f"Question {i}?"}]})
    return {"custom_id": custom_id or f"q-{i:04d}", "method": "POST", "url": url, "body": body}


def batch_input(n=20, **kw) -> BatchInput:
    return BatchInput.from_objects([request_line(i) for i in range(n)], **kw)


async def collect(aiter) -> list:
    return [x async for x in aiter]


async def download_all(client, batch) -> dict[str, bytes]:
    return {f.kind: b"".join(await collect(client.download(batch, f))) for f in batch.result_files}


async def analyze(client, batch) -> ResultsAnalyzer:
    analyzer = ResultsAnalyzer(client.parse_result_line, keep_succeeded_ids=True)
    for f in batch.result_files:
        last = b"\n"
        async for chunk in client.download(batch, f):
            analyzer.feed_chunk(chunk)
            last = chunk or last
        if not last.endswith(b"\n"):
            # A file whose last line has no newline must not run into the next file's first line.
            analyzer.feed_chunk(b"\n")
    return analyzer


def wire(**fields) -> dict:
    """A Batch object with every field of PROVIDERS.md §A.4, as the API sends it."""
    base = {"id": "batch_6a1f0c2e9b7d4e81", "object": "batch", "endpoint": "/v1/chat/completions", "model": None,
            "errors": None, "input_file_id": "file-in", "completion_window": "24h", "status": "validating",
            "output_file_id": None, "error_file_id": None, "created_at": 1787180460, "in_progress_at": None,
            "expires_at": 1787266860, "finalizing_at": None, "completed_at": None, "failed_at": None,
            "expired_at": None, "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0}, "usage": None, "metadata": None}
    base.update(fields)
    return base


def ts(value: int) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


# -- normalisation of hand-written wire objects ------------------------------------------------

def test_validating_keeps_total_zero_and_leaves_unknown_counts_none():
    batch = to_batch(wire(metadata={"job": "eval-0042"}), account=ACCOUNT)
    assert batch.status is Status.VALIDATING and batch.provider_status == "validating"
    assert (batch.counts.total, batch.counts.succeeded, batch.counts.failed) == (0, 0, 0)
    assert (batch.counts.expired, batch.counts.cancelled, batch.counts.processing) == (None, None, None)
    assert batch.counts.live and batch.ended_at is None and batch.usage is None
    assert batch.created_at == ts(1787180460) and batch.expires_at == ts(1787266860)
    assert batch.metadata == {"job": "eval-0042"} and batch.input_ref == "file-in" and batch.result_files == ()


def test_completed_with_every_request_failed_has_only_an_error_file():
    batch = to_batch(wire(status="completed", completed_at=1787186171, finalizing_at=1787186133,
                          in_progress_at=1787180466, error_file_id="file-err",
                          request_counts={"total": 9, "completed": 0, "failed": 9}), account=ACCOUNT)
    assert batch.status is Status.COMPLETED and batch.ended_at == ts(1787186171)
    assert [(f.kind, f.ref) for f in batch.result_files] == [("errors", "file-err")]
    assert (batch.counts.total, batch.counts.succeeded, batch.counts.failed) == (9, 0, 9)
    assert batch.in_progress_at == ts(1787180466) and batch.finalizing_at == ts(1787186133)


@pytest.mark.parametrize("status, stamp, unified", [
    ("expired", "expired_at", Status.EXPIRED),
    ("cancelled", "cancelled_at", Status.CANCELLED),
    ("failed", "failed_at", Status.FAILED),
])
def test_terminal_statuses_take_their_own_end_stamp(status, stamp, unified):
    batch = to_batch(wire(status=status, **{stamp: 1787190000}, cancelling_at=1787189000,
                          output_file_id="file-out", error_file_id="file-err"), account=ACCOUNT)
    assert batch.status is unified and batch.ended_at == ts(1787190000)
    assert batch.cancel_requested_at == ts(1787189000)
    assert {f.kind: f.ref for f in batch.result_files} == {"results": "file-out", "errors": "file-err"}


def test_cancelling_and_usage_and_model():
    usage = {"input_tokens": 1843320, "input_tokens_details": {"cached_tokens": 1105920}, "output_tokens": 402117,
             "output_tokens_details": {"reasoning_tokens": 251904}, "total_tokens": 2245437}
    batch = to_batch(wire(status="cancelling", cancelling_at=1787181000, model="gpt-5-mini-2025-08-07",
                          usage=usage, request_counts={"total": 100, "completed": 23, "failed": 1}), account=ACCOUNT)
    assert batch.status is Status.CANCELLING and not batch.is_terminal and batch.ended_at is None
    assert batch.model == "gpt-5-mini-2025-08-07"
    assert (batch.usage.input, batch.usage.cached_input, batch.usage.output, batch.usage.reasoning) == (
        1843320, 1105920, 402117, 251904)


def test_failed_validation_errors_are_kept_with_code_and_line():
    errors = {"object": "list", "data": [
        {"code": "invalid_json_line", "message": "This line is not parseable as valid JSON.", "param": None,
         "line": 17},
        {"code": "token_limit_exceeded", "message": "Enqueued token limit reached", "param": None, "line": None}]}
    batch = to_batch(wire(status="failed", failed_at=1787191012, errors=errors), account=ACCOUNT)
    assert batch.status is Status.FAILED and batch.ended_at == ts(1787191012)
    assert [(e.code, e.line, e.message) for e in batch.errors] == [
        ("invalid_json_line", 17, "This line is not parseable as valid JSON."),
        ("token_limit_exceeded", None, "Enqueued token limit reached")]


def test_unknown_fields_ignored_and_optional_fields_may_be_missing():
    minimal = {"id": "batch_min", "object": "batch", "endpoint": "/v1/embeddings", "input_file_id": "file-x",
               "completion_window": "24h", "status": "in_progress", "created_at": 1787180460,
               "shiny_new_field": {"nested": [1, 2]}, "request_counts": None}
    batch = to_batch(minimal, account=ACCOUNT)
    assert batch.status is Status.IN_PROGRESS and batch.endpoint == "/v1/embeddings"
    assert batch.counts.total is None and batch.counts.succeeded is None and batch.expires_at is None
    assert batch.raw["shiny_new_field"] == {"nested": [1, 2]}  # kept raw, never interpreted


@pytest.mark.parametrize("raw, unified", [
    ("COMPLETED", Status.COMPLETED), ("In_Progress", Status.IN_PROGRESS), ("canceled", Status.CANCELLED),
    ("CANCELLATION_REQUESTED", Status.CANCELLING), ("queued", Status.VALIDATING),
    ("paused_for_maintenance", Status.IN_PROGRESS), (None, Status.IN_PROGRESS), (7, Status.IN_PROGRESS),
])
def test_status_spellings_and_unknown_statuses_read_as_still_running(raw, unified):
    batch = to_batch(wire(status=raw), account=ACCOUNT)
    assert batch.status is unified
    assert batch.provider_status == (raw if isinstance(raw, str) else "")


def test_iso_timestamps_of_compatible_servers():
    batch = to_batch(wire(status="COMPLETED", created_at="2026-08-20T10:00:00.123456789Z",
                          completed_at="2026-08-20T11:30:00+00:00", expires_at="2026-08-21T10:00:00Z"),
                     account=ACCOUNT)
    assert batch.created_at == datetime(2026, 8, 20, 10, 0, 0, 123456, tzinfo=UTC)
    assert batch.ended_at == datetime(2026, 8, 20, 11, 30, tzinfo=UTC)
    assert batch.expires_at == datetime(2026, 8, 21, 10, tzinfo=UTC)


def test_together_shape():
    obj = {"id": "batch-6a1f", "status": "IN_PROGRESS", "progress": 40.0, "created_at": "2026-08-20T10:00:00Z",
           "job_deadline": "2026-08-21T10:00:00Z", "model_id": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
           "endpoint": "/v1/chat/completions", "input_file_id": "file-t", "file_size_bytes": 1234,
           "error": None, "output_file_id": None, "error_file_id": None, "user_id": "u-1"}
    batch = to_batch(obj, account=ACCOUNT)
    assert batch.status is Status.IN_PROGRESS and batch.provider_status == "IN_PROGRESS"
    assert batch.counts.total is None and batch.counts.succeeded is None and batch.counts.failed is None
    assert batch.model == "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    assert batch.expires_at == datetime(2026, 8, 21, 10, tzinfo=UTC)
    failed = to_batch({**obj, "status": "FAILED", "completed_at": "2026-08-20T10:05:00Z",
                       "error": "input file has an invalid line"}, account=ACCOUNT)
    assert failed.status is Status.FAILED and failed.ended_at == datetime(2026, 8, 20, 10, 5, tzinfo=UTC)
    assert [e.message for e in failed.errors] == ["input file has an invalid line"]


def test_objects_without_id_or_creation_time_are_protocol_errors():
    with pytest.raises(ProtocolError):
        to_batch(wire(id=None), account=ACCOUNT)
    with pytest.raises(ProtocolError):
        to_batch(wire(created_at="yesterday"), account=ACCOUNT)
    with pytest.raises(ProtocolError):
        to_batch(["not", "an", "object"], account=ACCOUNT)


_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(wire())), _JSON, max_size=12))
@example({"cancelling_at": "²", "request_counts": {"total": "²", "completed": "12", "failed": None}})
def test_any_batch_shaped_object_gives_a_batch_or_a_protocol_error(fields):
    try:
        batch = to_batch({**wire(), **fields}, account=ACCOUNT)
    except ProtocolError:
        return
    assert batch.status in Status and batch.id


_LINE = st.fixed_dictionaries({}, optional={
    "custom_id": _JSON, "error": st.none() | _JSON | st.fixed_dictionaries({"code": _JSON, "message": _JSON}),
    "response": _JSON | st.fixed_dictionaries({"status_code": st.integers(-1, 700) | _JSON, "body": _JSON})})


@settings(max_examples=300, deadline=None)
@given(_LINE)
def test_any_result_line_object_is_classified_without_raising(line):
    item = OpenAIClient.parse_result_line(line, 1)
    assert item.outcome in Outcome and item.line_no == 1


# -- result lines (PROVIDERS.md §A.8) ------------------------------------------------------------

def result(custom_id: str, status: int | None = None, body: dict | None = None, error: dict | None = None) -> dict:
    """One output/error-file line of §A.8."""
    response = None if status is None else {"status_code": status, "request_id": f"req_{custom_id}", "body": body}
    return {"id": f"batch_req_{custom_id}", "custom_id": custom_id, "response": response, "error": error}


def api_error(message: str, kind: str, code: str | None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


CHAT_OK = result("q-000017", 200, {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1787183112, "model": "gpt-5-mini-2025-08-07",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Lima", "refusal": None, "annotations": []},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1210, "completion_tokens": 75, "total_tokens": 1285,
              "prompt_tokens_details": {"cached_tokens": 1152, "audio_tokens": 0, "cache_write_tokens": 40},
              "completion_tokens_details": {"reasoning_tokens": 64, "audio_tokens": 0}}})
RESPONSES_OK = result("doc-88", 200, {
    "id": "resp_1", "object": "response", "status": "completed", "model": "gpt-5-mini-2025-08-07",
    "output": [{"type": "message", "content": [{"type": "output_text", "text": "The memo proposes"}]}],
    "usage": {"input_tokens": 2210, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 188,
              "output_tokens_details": {"reasoning_tokens": 64}, "total_tokens": 2398}})
LINE_400 = result("q-000233", 400, api_error("Unsupported value: 'temperature' does not support 0.2 with this model.",
                                             "invalid_request_error", "unsupported_value", "temperature"))
LINE_500 = result("q-9", 500, api_error("The server had an error", "server_error", None))
EXPIRED_LINE = result("q-001104", error={"code": "batch_expired", "message": EXPIRED_MESSAGE})
CANCELLED_LINE = result("q-001105", error={"code": "batch_cancelled", "message": "This request was cancelled."})
STATUS_ZERO_LINE = {"id": "batch_req_690a", "custom_id": "chat-186",
                    "response": {"status_code": 0, "request_id": "", "body": {}}, "error": None}


def test_success_lines_map_usage_and_model():
    chat = OpenAIClient.parse_result_line(CHAT_OK, 1)
    assert (chat.outcome, chat.custom_id, chat.http_status, chat.model) == (
        Outcome.SUCCEEDED, "q-000017", 200, "gpt-5-mini-2025-08-07")
    assert (chat.usage.input, chat.usage.cached_input, chat.usage.cache_write, chat.usage.output,
            chat.usage.reasoning) == (1210, 1152, 40, 75, 64)
    responses = OpenAIClient.parse_result_line(RESPONSES_OK, 2)
    assert responses.outcome is Outcome.SUCCEEDED and responses.line_no == 2
    assert (responses.usage.input, responses.usage.cached_input, responses.usage.output,
            responses.usage.reasoning) == (2210, 0, 188, 64)
    embedding = {"custom_id": "e1", "error": None, "response": {"status_code": 200, "body": {
        "object": "list", "model": "text-embedding-3-small", "usage": {"prompt_tokens": 8, "total_tokens": 8}}}}
    item = OpenAIClient.parse_result_line(embedding, 3)
    assert item.outcome is Outcome.SUCCEEDED and (item.usage.input, item.usage.output) == (8, 0)


def test_refusals_and_content_filter_are_blocked():
    refusal = json.loads(json.dumps(CHAT_OK))
    refusal["response"]["body"]["choices"][0]["message"].update(content=None, refusal="I can't help with that.")
    item = OpenAIClient.parse_result_line(refusal, 1)
    assert (item.outcome, item.error_type) == (Outcome.BLOCKED, "refusal")
    assert item.error_message == "I can't help with that."
    filtered = json.loads(json.dumps(CHAT_OK))
    filtered["response"]["body"]["choices"][0]["finish_reason"] = "content_filter"
    assert OpenAIClient.parse_result_line(filtered, 1).outcome is Outcome.BLOCKED
    refused = json.loads(json.dumps(RESPONSES_OK))
    refused["response"]["body"]["output"][0]["content"] = [{"type": "refusal", "refusal": "No."}]
    assert OpenAIClient.parse_result_line(refused, 1).outcome is Outcome.BLOCKED
    assert OpenAIClient.parse_result_line(refused, 1).usage.input == 2210  # refusals are billed


def test_error_lines():
    bad = OpenAIClient.parse_result_line(LINE_400, 4)
    assert (bad.outcome, bad.http_status, bad.error_type) == (Outcome.REQUEST_ERROR, 400, "unsupported_value")
    assert bad.error_message == LINE_400["response"]["body"]["error"]["message"]
    no_code = json.loads(json.dumps(LINE_400))
    no_code["response"]["body"]["error"]["code"] = None
    assert OpenAIClient.parse_result_line(no_code, 1).error_type == "invalid_request_error"
    server = OpenAIClient.parse_result_line(LINE_500, 5)
    assert (server.outcome, server.http_status, server.error_type) == (Outcome.SERVER_ERROR, 500, "server_error")
    expired = OpenAIClient.parse_result_line(EXPIRED_LINE, 6)
    assert (expired.outcome, expired.error_type, expired.error_message) == (
        Outcome.NOT_RUN_EXPIRED, "batch_expired", EXPIRED_MESSAGE)
    assert OpenAIClient.parse_result_line(CANCELLED_LINE, 7).outcome is Outcome.NOT_RUN_CANCELLED
    other = OpenAIClient.parse_result_line({"custom_id": "x", "response": None,
                                            "error": {"code": "batch_failed", "message": "?"}}, 8)
    assert (other.outcome, other.error_type) == (Outcome.UNKNOWN, "batch_failed")
    zero = OpenAIClient.parse_result_line(STATUS_ZERO_LINE, 9)
    assert (zero.outcome, zero.custom_id, zero.http_status) == (Outcome.UNKNOWN, "chat-186", 0)


def test_a_top_level_error_wins_over_a_success_body():
    both = {**CHAT_OK, "error": {"code": "batch_expired", "message": EXPIRED_MESSAGE}}
    assert OpenAIClient.parse_result_line(both, 1).outcome is Outcome.NOT_RUN_EXPIRED
    body_only = {"custom_id": "x", "response": {"status_code": 404, "body": CHAT_OK["response"]["body"]},
                 "error": None}
    assert OpenAIClient.parse_result_line(body_only, 1).outcome is Outcome.REQUEST_ERROR


def test_validate_line_and_custom_id():
    client = OpenAIClient(ACCOUNT, KEY)
    good = request_line(1)
    assert client.validate_line(good) is None and client.request_custom_id(good) == "q-0001"
    broken = [
        "a string", {**good, "custom_id": 5}, {**good, "custom_id": ""}, {**good, "method": "GET"},
        {**good, "url": "/v1/nope"}, {**good, "body": []}, {**good, "body": {"messages": []}},
        {**good, "body": {**good["body"], "stream": True}},
    ]
    assert all(client.validate_line(obj) for obj in broken)
    groq = OpenAIClient(Account(name="g", provider=Provider.OPENAI_COMPATIBLE, preset="groq"), KEY)
    assert groq.validate_line(request_line(1, url="/v1/responses")) is not None
    assert client.validate_line(request_line(1, url="/v1/responses")) is None


def test_accounts_dialects_limits_and_console_urls():
    openai_client = client_class(Provider.OPENAI)(ACCOUNT, KEY)
    assert openai_client.http.base_url == "https://api.openai.com/v1"
    assert openai_client.limits.max_requests == 50_000 and openai_client.limits.max_bytes == 200_000_000
    batch = to_batch(wire(id="batch_abc"), account=ACCOUNT)
    assert openai_client.console_url(batch) == "https://platform.openai.com/batches/batch_abc"
    proxied = OpenAIClient(Account(name="p", provider=Provider.OPENAI, base_url="https://proxy.example/v1"), KEY)
    assert proxied.console_url(batch) is None
    groq = client_class(Provider.OPENAI_COMPATIBLE)(
        Account(name="g", provider=Provider.OPENAI_COMPATIBLE, preset="groq"), KEY)
    assert groq.http.base_url == "https://api.groq.com/openai/v1" and groq.limits.max_bytes == 100_000_000
    assert OpenAIClient.limits.max_bytes == 200_000_000  # the class default is untouched
    together = OpenAIClient(Account(name="t", provider=Provider.OPENAI_COMPATIBLE, preset="together"), KEY)
    assert together.http.base_url == "https://api.together.xyz/v1" and together.console_url(batch) is None
    with pytest.raises(ConfigError):  # Mistral's shape is unverified: no preset on purpose
        OpenAIClient(Account(name="m", provider=Provider.OPENAI_COMPATIBLE, preset="mistral"), KEY)
    custom = OpenAIClient(Account(name="c", provider=Provider.OPENAI_COMPATIBLE, preset="mistral",
                                  base_url="https://llm.example/v1"), KEY)
    assert custom.http.base_url == "https://llm.example/v1"


# -- every operation against the simulator -----------------------------------------------------

async def test_create_then_validating_in_progress_finalizing_completed(sim, ws):
    async with client_for(sim) as client:
        created = await client.create_batch(batch_input(60, metadata={"job": "nightly"}))
        assert created.status is Status.VALIDATING and created.counts.total == 0
        assert created.metadata["job"] == "nightly" and created.metadata[TOKEN_KEY]
        assert created.expires_at.timestamp() == created.created_at.timestamp() + DAY
        seen = []
        batch = created
        while not batch.is_terminal:
            sim.clock.advance(20)
            batch = await client.get_batch(created.id)
            seen.append((batch.status, batch.counts.done))
    phases = [s for i, (s, _) in enumerate(seen) if i == 0 or seen[i - 1][0] is not s]
    assert phases == [Status.VALIDATING, Status.IN_PROGRESS, Status.FINALIZING, Status.COMPLETED]
    running = [done for status, done in seen if status is Status.IN_PROGRESS]
    assert running == sorted(running) and len(set(running)) > 2  # rising live
    assert batch.counts.total == 60 and batch.counts.succeeded + batch.counts.failed == 60
    assert batch.ended_at is not None and batch.finalizing_at <= batch.ended_at
    assert batch.model.startswith("gpt-5-mini-") and batch.endpoint == "/v1/chat/completions"
    assert {f.kind for f in batch.result_files} >= {"results"}


async def test_organization_project_and_bearer_headers_are_sent():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=wire())

    account = Account(name="org", provider=Provider.OPENAI, organization="org-abc", project="proj_xyz")
    async with OpenAIClient(account, KEY, transport=httpx.MockTransport(handler)) as client:
        await client.get_batch("batch_6a1f0c2e9b7d4e81")
    headers = seen[0].headers
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["openai-organization"] == "org-abc" and headers["openai-project"] == "proj_xyz"


async def test_upload_is_multipart_jsonl_with_exact_bytes(sim, ws):
    raw = [b'{"custom_id":"a","method":"POST","url":"/v1/responses",'
           b'"body":{"model":"gpt-5-mini","input":"\xc3\xa9t\xc3\xa9"}}',
           b'{ "custom_id" : "b", "method":"POST","url":"/v1/responses","body":{"model":"gpt-5-mini","input":"x"} }']
    data = BatchInput(lines=[json.loads(r) for r in raw], raw_lines=raw, filename="../inputs/my input.txt")
    async with client_for(sim) as client:
        batch = await client.create_batch(data)
        assert batch.endpoint == "/v1/responses"
        uploaded = ws.files[batch.input_ref]
        assert uploaded.filename == "my input.jsonl" and uploaded.purpose == "batch"
        assert uploaded.data() == data.jsonl
        assert await collect(client.read_requests(batch)) == raw  # the exact lines, not re-serialised


async def test_inputs_that_cannot_be_one_batch_are_refused_before_sending(sim, ws):
    mixed = BatchInput.from_objects([request_line(1), request_line(2, url="/v1/responses")])
    crowded = batch_input(2, metadata={f"k{i}": "v" for i in range(16)})
    async with client_for(sim) as client:
        for bad in (mixed, crowded, BatchInput.from_objects([])):
            with pytest.raises(InputError):
                await client.create_batch(bad)
    assert sum(ws.requests.values()) == 0


async def test_download_is_byte_exact_and_stable(sim, ws):
    seeded = seed_batch(sim.world, ws, n_requests=120, model="gpt-5-mini", created_at=START - 7200,
                        plan=Plan(error_rate=0.2, duration=600))
    async with client_for(sim) as client:
        batch = await client.get_batch(seeded.id)
        first = await download_all(client, batch)
        again = await download_all(client, batch)
    assert set(first) == {"results", "errors"} and first == again
    for f in batch.result_files:
        assert hashlib.sha256(first[f.kind]).hexdigest() == hashlib.sha256(ws.files[f.ref].data()).hexdigest()


async def test_output_is_shuffled_and_the_same_for_the_same_seed(ws):
    def files(seed):
        sim = Simulator(manual_clock=True, seed=seed, start=START)
        space = sim.world.add_workspace("openai", "main", KEY)
        batch = seed_batch(sim.world, space, n_requests=80, model="gpt-5-mini", created_at=START - 7200,
                           plan=Plan(duration=600, error_rate=0))
        return sim, space, batch

    sim_a, ws_a, a = files(3)
    sim_b, ws_b, b = files(3)
    async with client_for(sim_a) as ca, client_for(sim_b) as cb:
        out_a = await download_all(ca, await ca.get_batch(a.id))
        out_b = await download_all(cb, await cb.get_batch(b.id))
    assert out_a == out_b
    ids = [json.loads(line)["custom_id"] for line in out_a["results"].splitlines()]
    assert sorted(ids) == sorted(r.custom_id for r in a.requests) and ids != sorted(ids)


async def test_results_analysis_matches_request_counts_and_planned_outcomes(sim, ws):
    seeded = seed_batch(sim.world, ws, n_requests=400, model="gpt-5-mini", created_at=START - 7200,
                        plan=Plan(error_rate=0.2, blocked_rate=0.05, duration=900), endpoint="/v1/responses")
    async with client_for(sim) as client:
        batch = await client.get_batch(seeded.id)
        analyzer = await analyze(client, batch)
    summary = analyzer.summary()
    outcomes = summary.breakdown.outcomes
    assert outcomes[Outcome.SUCCEEDED] + outcomes[Outcome.BLOCKED] == batch.counts.succeeded
    assert outcomes[Outcome.REQUEST_ERROR] + outcomes[Outcome.SERVER_ERROR] == batch.counts.failed
    assert summary.breakdown.unparseable == 0
    planned = Counter(EXPECTED_OUTCOME[r.outcome] for r in seeded.requests)
    assert outcomes == planned
    blocked_ids = set(summary.ids_by_outcome[Outcome.BLOCKED])
    assert blocked_ids == {r.custom_id for r in seeded.requests if r.outcome == BLOCKED}
    usage = summary.usage
    assert (usage.input, usage.cached_input, usage.output, usage.reasoning) == (
        batch.usage.input, batch.usage.cached_input, batch.usage.output, batch.usage.reasoning)
    models = set(summary.usage_by_model)
    assert models == {"gpt-5-mini-2025-08-07"}


async def test_expired_batch_has_partial_output_and_batch_expired_lines(sim, ws):
    seeded = seed_batch(sim.world, ws, n_requests=200, model="gpt-5-mini", created_at=START,
                        plan=Plan(duration=3 * DAY, error_rate=0.1))
    sim.clock.advance(DAY + 1)
    async with client_for(sim) as client:
        batch = await client.get_batch(seeded.id)
        assert batch.status is Status.EXPIRED and batch.ended_at.timestamp() == START + DAY
        summary = (await analyze(client, batch)).summary()
    outcomes = summary.breakdown.outcomes
    assert outcomes[Outcome.SUCCEEDED] > 0 and outcomes[Outcome.NOT_RUN_EXPIRED] > 0
    assert sum(outcomes.values()) == batch.counts.total == 200
    # Every request that had not finished by the deadline comes back as batch_expired.
    finish = {r.custom_id: START + 30 + r.finish_after for r in seeded.requests}
    assert all(finish[cid] > START + DAY for cid in summary.ids_by_outcome[Outcome.NOT_RUN_EXPIRED])
    expired = [g for g in summary.breakdown.groups if g.outcome is Outcome.NOT_RUN_EXPIRED]
    assert expired[0].sample_message == EXPIRED_MESSAGE


async def test_cancel_goes_cancelling_then_cancelled_with_partial_results(sim, ws):
    async with client_for(sim) as client:
        created = await client.create_batch(batch_input(300))
        sim.clock.advance(250)
        running = await client.get_batch(created.id)
        assert running.status is Status.IN_PROGRESS
        cancelling = await client.cancel_batch(created.id)
        assert cancelling.status is Status.CANCELLING and cancelling.cancel_requested_at is not None
        assert (await client.cancel_batch(created.id)).status is Status.CANCELLING  # idempotent
        sim.clock.advance(121)
        cancelled = await client.get_batch(created.id)
        assert cancelled.status is Status.CANCELLED and cancelled.ended_at is not None
        summary = (await analyze(client, cancelled)).summary()
        with pytest.raises(ProviderError) as terminal:
            await client.cancel_batch(created.id)
    assert terminal.value.status_code == 400
    outcomes = summary.breakdown.outcomes
    assert outcomes[Outcome.SUCCEEDED] >= running.counts.succeeded and outcomes[Outcome.NOT_RUN_CANCELLED] > 0
    assert cancelled.counts.succeeded + cancelled.counts.failed == 300


async def test_validation_failures_in_the_file(sim, ws):
    lines = [request_line(1), request_line(2), request_line(3, custom_id="q-0001"), request_line(4, model="gpt-5")]
    raw = [json.dumps(lines[0]).encode(), b'{"custom_id": "broken", ', *(json.dumps(x).encode() for x in lines[1:])]
    data = BatchInput(lines=lines, raw_lines=raw)
    async with client_for(sim) as client:
        created = await client.create_batch(data)
        sim.clock.advance(31)
        batch = await client.get_batch(created.id)
    assert batch.status is Status.FAILED and batch.ended_at is not None and batch.result_files == ()
    assert [(e.code, e.line) for e in batch.errors] == [
        ("invalid_json_line", 2), ("duplicate_custom_id", 4), ("model_mismatch", 5)]
    assert batch.counts.total == 0 and batch.model is None


async def test_sim_create_time_checks_and_empty_or_mismatched_files(sim, ws):
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(transport=sim.transport(), base_url=sim.base_url("openai"), headers=headers) as http:
        async def upload(name, data):
            return await http.post("/files", data={"purpose": "batch"}, files={"file": (name, data)})

        csv = await upload("rows.csv", b"a,b\n")
        assert csv.status_code == 400
        assert csv.json()["error"]["message"] == "Invalid file format for Batch API. Must be .jsonl"
        empty = (await upload("empty.jsonl", b"\n")).json()["id"]
        other = (await upload("x.jsonl", json.dumps(request_line(1, url="/v1/responses")).encode())).json()["id"]

        async def create(file_id, **body):
            return await http.post("/batches", json={"input_file_id": file_id, "endpoint": "/v1/chat/completions",
                                                     "completion_window": "24h", **body})

        assert (await create("file-nope")).status_code == 404
        assert (await create(empty, completion_window="1h")).json()["error"]["param"] == "completion_window"
        assert (await create(empty, endpoint="/v1/chat")).json()["error"]["code"] == "invalid_value"
        assert (await create(empty, metadata={"n": 1})).status_code == 400
        ids = [(await create(empty)).json()["id"], (await create(other)).json()["id"]]
        assert (await http.get("/batches", params={"limit": 101})).status_code == 400
    sim.clock.advance(31)
    async with client_for(sim) as client:
        codes = [[e.code for e in (await client.get_batch(i)).errors] for i in ids]
    assert codes == [["empty_file"], ["url_mismatch"]]


async def test_token_limit_exceeded_and_all_failed_completed(sim, ws):
    over = seed_batch(sim.world, ws, n_requests=5, model="gpt-5", created_at=START - 600,
                      plan=Plan(validation_errors=(token_limit_error("gpt-5"),)))
    all_bad = seed_batch(sim.world, ws, n_requests=12, model="gpt-5", created_at=START - 7200,
                         plan=Plan(error_rate=1.0, server_error_share=0.5, duration=600))
    async with client_for(sim) as client:
        failed = await client.get_batch(over.id)
        done = await client.get_batch(all_bad.id)
    assert failed.status is Status.FAILED and [e.code for e in failed.errors] == ["token_limit_exceeded"]
    assert "gpt-5" in failed.errors[0].message
    assert done.status is Status.COMPLETED and done.raw["output_file_id"] is None
    assert [f.kind for f in done.result_files] == ["errors"] and done.counts.failed == 12


async def test_status_code_zero_quirk_lines_are_not_counted_as_failed(sim, ws):
    seeded = seed_batch(sim.world, ws, n_requests=50, model="gpt-5-mini", created_at=START - 7200,
                        plan=Plan(error_rate=0, blocked_rate=0, duration=600), extra={STATUS_ZERO: 3})
    async with client_for(sim) as client:
        batch = await client.get_batch(seeded.id)
        summary = (await analyze(client, batch)).summary()
    assert (batch.counts.succeeded, batch.counts.failed) == (50, 0)  # what the counts claim...
    assert summary.breakdown.outcomes[Outcome.UNKNOWN] == 3  # ...and what the error file holds
    assert summary.breakdown.outcomes[Outcome.SUCCEEDED] == 47
    assert len(summary.ids_by_outcome[Outcome.UNKNOWN]) == 3


async def test_pagination_across_pages_and_stop_at(sim, ws):
    seeded = [seed_batch(sim.world, ws, n_requests=2, model="gpt-5-nano", created_at=START - 10 * i,
                         plan=Plan(duration=60)) for i in range(1, 251)]
    newest_first = [b.id for b in seeded]
    async with client_for(sim) as client:
        listed = [b.id for b in await collect(client.list_batches())]
        assert listed == newest_first and ws.requests[("GET", "/batches")] == 3
        stop = newest_first[150]
        partial = [b.id for b in await collect(client.list_batches(stop_at=lambda i: i == stop))]
    assert partial == newest_first[:150] and ws.requests[("GET", "/batches")] == 5


async def test_listing_tolerates_missing_has_more_and_servers_ignoring_the_cursor():
    pages = {None: [wire(id="b3", created_at=3), wire(id="b2", created_at=2)], "b2": [wire(id="b1", created_at=1)],
             "b1": []}
    calls: list[dict] = []

    def no_has_more(request: httpx.Request) -> httpx.Response:
        calls.append(dict(request.url.params))
        return httpx.Response(200, json={"object": "list", "data": pages[request.url.params.get("after")]})

    account = Account(name="c", provider=Provider.OPENAI_COMPATIBLE, base_url="https://llm.example/v1")
    async with OpenAIClient(account, KEY, transport=httpx.MockTransport(no_has_more)) as client:
        assert [b.id for b in await collect(client.list_batches())] == ["b3", "b2", "b1"]
    assert [c.get("after") for c in calls] == [None, "b2", "b1"] and calls[0]["limit"] == "100"

    def same_page(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"object": "list", "data": pages[None], "has_more": True})

    async with OpenAIClient(account, KEY, transport=httpx.MockTransport(same_page)) as client:
        assert [b.id for b in await collect(client.list_batches())] == ["b3", "b2", "b3", "b2"]


async def test_groq_dialect_against_the_simulator(sim):
    key = "gsk-test-groq-0001"
    account = Account(name="groq", provider=Provider.OPENAI_COMPATIBLE, preset="groq",
                      base_url=IN_PROCESS_HOST + "/groq/openai/v1")
    space = sim.world.add_workspace("groq", "groq", key)
    async with OpenAIClient(account, key, transport=sim.transport()) as client:
        made = []
        for i in range(3):
            made.append(await client.create_batch(batch_input(5, metadata={"n": str(i)})))
            sim.clock.advance(5)
        sim.clock.advance(3600)
        listed = await collect(client.list_batches())
        assert space.requests[("GET", "/batches")] == 1
        assert [b.id for b in listed] == [b.id for b in reversed(made)]
        done = await client.get_batch(made[0].id)
        assert done.status is Status.COMPLETED and done.model is None and done.usage is None
        assert "model" not in done.raw and (await download_all(client, done))["results"]
        with pytest.raises(InputError):
            await client.create_batch(BatchInput.from_objects([request_line(1, url="/v1/responses")]))


async def test_together_dialect_requests_and_answers():
    sent: list[httpx.Request] = []
    job = {"id": "batch-t1", "status": "VALIDATING", "created_at": "2026-08-20T10:00:00Z",
           "endpoint": "/v1/chat/completions", "input_file_id": "file-t1", "model_id": "gpt-5-mini", "progress": 0}

    def together(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.url.path.endswith("/files"):
            return httpx.Response(200, json={"id": "file-t1", "object": "file", "purpose": "batch-api"})
        if request.method == "POST":
            return httpx.Response(200, json={"job": job, "warning": "batch jobs may take up to 24 hours"})
        return httpx.Response(200, json=[job])  # the list is a bare array

    account = Account(name="t", provider=Provider.OPENAI_COMPATIBLE, preset="together")
    async with OpenAIClient(account, KEY, transport=httpx.MockTransport(together)) as client:
        created = await client.create_batch(batch_input(3))
        assert created.id == "batch-t1" and created.status is Status.VALIDATING
        found = await client.find_created(batch_input(3), since=created.created_at.timestamp())
    assert found is not None and found.id == "batch-t1"  # by its input file: Together keeps no metadata
    assert b'name="purpose"\r\n\r\nbatch-api' in sent[0].content
    body = json.loads(sent[1].content)
    assert body["model_id"] == "gpt-5-mini" and "metadata" not in body
    assert str(sent[2].url) == "https://api.together.xyz/v1/batches"


async def test_lost_create_answer_then_find_created_finds_exactly_one(sim, ws):
    ws.faults = FaultConfig(lose_create_answers=1)
    data = batch_input(10, metadata={"job": "lost"})
    since = sim.clock.now()
    async with client_for(sim) as client:
        with pytest.raises(CreateOutcomeUnknown):
            await client.create_batch(data)
        assert ws.requests[("POST", "/batches")] == 1  # never re-sent
        assert len(ws.batches) == 1
        found = await client.find_created(data, since=since)
        assert await client.find_created(batch_input(11), since=since) is None
    async with client_for(sim) as fresh:  # another process: finds it by the token alone
        again = await fresh.find_created(data, since=since)
    assert found.id == again.id == next(iter(ws.batches))
    assert found.metadata[TOKEN_KEY] == creation_token(data)


class ScriptedCreates(httpx.AsyncBaseTransport):
    """The simulator, except that `POST /batches` first answers with each of `statuses` in
    turn (an error arriving after the batch may or may not have been made)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *statuses: int) -> None:
        self.inner, self.statuses, self.creates = inner, list(statuses), 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/batches"):
            self.creates += 1
            if self.statuses:
                status = self.statuses.pop(0)
                return httpx.Response(status, headers={"retry-after": "3"},
                                      json={"error": {"message": "upstream error", "type": "server_error"}})
        return await self.inner.handle_async_request(request)


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_create_is_never_resent_after_an_ambiguous_server_error(sim, ws, status):
    transport = ScriptedCreates(sim.transport(), status)
    sleeps = Sleeps()
    async with OpenAIClient(sim.account("oa", "openai"), KEY, transport=transport, sleep=sleeps) as client:
        with pytest.raises(CreateOutcomeUnknown) as exc:
            await client.create_batch(batch_input(2))
    assert transport.creates == 1 and sleeps.delays == [] and exc.value.status_code == status


@pytest.mark.parametrize("status", [429, 503])
async def test_a_create_refused_as_not_done_is_resent(sim, ws, status):
    transport = ScriptedCreates(sim.transport(), status)
    sleeps = Sleeps()
    async with OpenAIClient(sim.account("oa", "openai"), KEY, transport=transport, sleep=sleeps) as client:
        batch = await client.create_batch(batch_input(2))
    assert batch.status is Status.VALIDATING and transport.creates == 2 and sleeps.delays == [3]
    assert list(ws.batches) == [batch.id]


async def test_a_failing_upload_is_retried_and_no_create_follows(sim, ws):
    ws.faults = FaultConfig(rate=1.0, kinds=("500",))
    async with client_for(sim) as client:
        with pytest.raises(ProviderError):
            await client.create_batch(batch_input(3))
    # The upload is retried (a stray file costs only storage); no batch create was tried.
    assert ws.requests[("POST", "/files")] == RetryPolicy().max_retries + 1
    assert ws.requests[("POST", "/batches")] == 0 and not ws.batches


# -- faults through the transport ------------------------------------------------------------

@pytest.fixture
def one_batch(sim, ws):
    return seed_batch(sim.world, ws, n_requests=30, model="gpt-5-mini", created_at=START - 7200,
                      plan=Plan(error_rate=0.3, duration=600))


async def test_429_retry_after_is_honoured_then_succeeds_or_gives_up(sim, ws, one_batch):
    ws.faults = FaultConfig(rate=1.0, kinds=("429",), retry_after=2.5)
    sleeps = Sleeps()
    async with client_for(sim, sleep=sleeps) as client:
        with pytest.raises(RateLimitedError) as exc:
            await client.get_batch(one_batch.id)
    assert sleeps.delays == [2.5] * RetryPolicy().max_retries and exc.value.retry_after == 2.5
    assert ws.requests[("GET", "/batches/{id}")] == RetryPolicy().max_retries + 1
    sleeps = Sleeps(on_first=lambda: setattr(ws.faults, "rate", 0.0))
    async with client_for(sim, sleep=sleeps) as client:
        assert (await client.get_batch(one_batch.id)).id == one_batch.id
    assert sleeps.delays == [2.5]


@pytest.mark.parametrize("kind", ["500", "503"])
async def test_server_errors_are_retried_with_backoff(sim, ws, one_batch, kind):
    ws.faults = FaultConfig(rate=1.0, kinds=(kind,), retry_after=1.5)
    sleeps = Sleeps()
    async with client_for(sim, sleep=sleeps) as client:
        with pytest.raises(ProviderError) as exc:
            await client.get_batch(one_batch.id)
    assert exc.value.status_code == int(kind) and len(sleeps.delays) == RetryPolicy().max_retries
    if kind == "503":
        assert sleeps.delays == [1.5] * 4  # its retry-after is honoured
    else:
        policy = RetryPolicy()
        assert all(0.75 * min(policy.base_delay * 2**n, policy.max_delay) <= d <= min(policy.base_delay * 2**n,
                                                                                       policy.max_delay)
                   for n, d in enumerate(sleeps.delays))
    sleeps = Sleeps(on_first=lambda: setattr(ws.faults, "rate", 0.0))
    async with client_for(sim, sleep=sleeps) as client:
        assert (await client.get_batch(one_batch.id)).status is Status.COMPLETED


async def test_dropped_connections_are_retried_or_become_unreachable(sim, ws, one_batch):
    ws.faults = FaultConfig(rate=1.0, kinds=("drop",))
    async with client_for(sim) as client:
        with pytest.raises(UnreachableError) as exc:
            await client.get_batch(one_batch.id)
        batch = to_batch(wire(id=one_batch.id, status="completed", output_file_id="file-x"), account=ACCOUNT)
        with pytest.raises(UnreachableError):
            await download_all(client, batch)
    assert "RemoteProtocolError" in str(exc.value) and KEY not in str(exc.value)
    ws.faults = FaultConfig(rate=0.5, kinds=("drop",))
    async with client_for(sim) as client:
        batch = await client.get_batch(one_batch.id)
        listed = await collect(client.list_batches())
        files = await download_all(client, batch)
    assert ws.faults.injected["drop"] > 0 and [b.id for b in listed] == [one_batch.id]
    assert all(files[f.kind] == ws.files[f.ref].data() for f in batch.result_files)


async def test_a_body_cut_mid_stream_on_a_real_socket(sim, ws, one_batch):
    with serve_on_loopback(sim) as host:
        account = Account(name="lo", provider=Provider.OPENAI, base_url=host + "/openai/v1")
        ws.faults = FaultConfig(rate=1.0, kinds=("drop",))
        async with OpenAIClient(account, KEY, sleep=Sleeps()) as client:
            with pytest.raises(UnreachableError):
                await client.get_batch(one_batch.id)
        ws.faults = FaultConfig()
        async with OpenAIClient(account, KEY, sleep=Sleeps()) as client:
            batch = await client.get_batch(one_batch.id)
            ws.faults = FaultConfig(rate=1.0, kinds=("drop",))
            with pytest.raises(UnreachableError):  # the caller restarts a download; no half file is "done"
                await download_all(client, batch)
            ws.faults = FaultConfig(rate=0.5, kinds=("drop",))
            failures = 0
            while True:  # what a caller does: restart the download from the start
                try:
                    files = await download_all(client, batch)
                    break
                except UnreachableError:
                    failures += 1
                    assert failures < 20
    assert all(files[f.kind] == ws.files[f.ref].data() for f in batch.result_files)


async def test_slow_answers_still_arrive(sim, ws, one_batch):
    ws.faults = FaultConfig(rate=1.0, kinds=("slow",), slow_seconds=0.01)
    async with client_for(sim) as client:
        assert (await client.get_batch(one_batch.id)).id == one_batch.id
    assert ws.faults.injected["slow"] == 1


async def test_a_refused_key_is_an_auth_error(sim, ws, one_batch):
    ws.faults = FaultConfig(reject_key=True)
    async with client_for(sim) as client:
        with pytest.raises(AuthError) as exc:
            await collect(client.list_batches())
    assert exc.value.status_code == 401 and exc.value.error_type == "invalid_api_key"


async def test_unknown_batches_and_files_are_not_found(sim, ws):
    async with client_for(sim) as client:
        with pytest.raises(NotFoundError):
            await client.get_batch("batch_nope")
        with pytest.raises(NotFoundError):
            await client.cancel_batch("batch_nope/../files")
        missing = to_batch(wire(status="completed", output_file_id="file-gone", input_file_id="file-gone"),
                           account=ACCOUNT)
        with pytest.raises(NotFoundError):
            await download_all(client, missing)
        with pytest.raises(NotFoundError):
            await collect(client.read_requests(missing))
        with pytest.raises(NotSupported):
            await collect(client.read_requests(to_batch(wire(input_file_id=None), account=ACCOUNT)))


# -- hostile data and secrets -------------------------------------------------------------------

HOSTILE = "[bold red]x[/] \x1b[31mred\x1b[0m [link=https://evil.example]y[/link]"


async def test_hostile_text_is_kept_verbatim_as_data(sim, ws):
    lines = [request_line(i, custom_id=f"{HOSTILE}-{i}") for i in range(20)]
    async with client_for(sim) as client:
        created = await client.create_batch(BatchInput.from_objects(lines, metadata={"note": HOSTILE}))
        assert created.metadata["note"] == HOSTILE
        sim.clock.advance(DAY)
        batch = await client.get_batch(created.id)
        summary = (await analyze(client, batch)).summary()
    ids = set(summary.succeeded_ids) | {i for ids in summary.ids_by_outcome.values() for i in ids}
    assert ids == {line["custom_id"] for line in lines}


async def test_garbage_and_truncated_result_lines_are_counted_not_fatal(sim, ws, one_batch):
    async with client_for(sim) as client:
        batch = await client.get_batch(one_batch.id)
        results = next(f for f in batch.result_files if f.kind == "results")
        good = ws.files[results.ref].data()
        ws.files[results.ref].content = good + b"<html>502 Bad Gateway</html>\n" + good.splitlines()[0][:40]
        summary = (await analyze(client, batch)).summary()
    assert summary.breakdown.unparseable == 2
    assert sum(summary.breakdown.outcomes.values()) == batch.counts.total


def test_a_one_megabyte_error_message_is_kept_whole_in_the_item_and_cut_in_the_summary():
    huge = "E" * 1_000_000 + HOSTILE
    line = json.loads(json.dumps(LINE_400))
    line["response"]["body"]["error"]["message"] = huge
    item = OpenAIClient.parse_result_line(line, 1)
    assert item.error_message == huge
    analyzer = ResultsAnalyzer(OpenAIClient.parse_result_line)
    analyzer.feed_line(json.dumps(line))
    assert len(analyzer.summary().breakdown.groups[0].sample_message) == MAX_SAMPLE


async def test_the_key_never_appears_in_errors_or_reprs(sim, ws, one_batch):
    failures: list[Exception] = []
    async with client_for(sim) as client:
        assert KEY not in repr(client) and KEY not in repr(client.http)
        for faults, call in [
            (FaultConfig(reject_key=True), lambda: client.get_batch(one_batch.id)),
            (FaultConfig(rate=1.0, kinds=("429",)), lambda: client.get_batch(one_batch.id)),
            (FaultConfig(rate=1.0, kinds=("drop",)), lambda: client.get_batch(one_batch.id)),
            (FaultConfig(rate=1.0, kinds=("500",)), lambda: client.get_batch(one_batch.id)),
            (FaultConfig(lose_create_answers=1), lambda: client.create_batch(batch_input(2))),
            (FaultConfig(), lambda: client.get_batch("batch_missing")),
            (FaultConfig(), lambda: client.cancel_batch(one_batch.id)),
        ]:
            ws.faults = faults
            with pytest.raises(ProviderError) as exc:
                await call()
            failures.append(exc.value)

    def echo(request: httpx.Request) -> httpx.Response:  # a server quoting the key back
        message = f"Incorrect API key provided: {KEY}. " + "x" * 1_000_000
        return httpx.Response(401, json={"error": {"message": message, "type": "invalid_request_error"}})

    async with OpenAIClient(ACCOUNT, KEY, transport=httpx.MockTransport(echo)) as client:
        with pytest.raises(AuthError) as exc:
            await client.get_batch("batch_x")
        failures.append(exc.value)
    assert len(str(failures[-1])) < 10_000
    for failure in failures:
        assert KEY not in str(failure) and KEY not in repr(failure) and KEY not in repr(failure.args)
