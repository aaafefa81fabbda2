"""The shared transport policy: retries, server hints, error classes, key redaction."""

from __future__ import annotations

import json
import random

import httpx
import pytest

from batchtui.core.errors import (
    AuthError,
    CreateOutcomeUnknown,
    NotFoundError,
    ProtocolError,
    ProviderError,
    RateLimitedError,
    UnreachableError,
)
from batchtui.core.transport import RetryPolicy, Transport, parse_retry_after

KEY = "sk-test-transport-secret-0001"


class Script:
    """A mock server answering from a list of steps; each step is a response or an exception."""

    def __init__(self, *steps):
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        return step


def make(script: Script, **policy) -> tuple[Transport, list[float]]:
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    transport = Transport(
        account="acct",
        base_url="https://api.example.test/v1",
        auth_headers={"Authorization": f"Bearer {KEY}"},
        secret=KEY,
        transport=httpx.MockTransport(script),
        policy=RetryPolicy(**policy),
        sleep=fake_sleep,
        rng=random.Random(1),
    )
    return transport, delays


def ok(body=None) -> httpx.Response:
    return httpx.Response(200, json=body if body is not None else {"ok": True})


async def test_retries_5xx_then_succeeds_with_exponential_backoff():
    script = Script(httpx.Response(500, json={}), httpx.Response(503, json={}), httpx.Response(502), ok())
    t, delays = make(script, base_delay=0.5, max_delay=8)
    response = await t.request("GET", "/batches")
    assert response.status_code == 200
    assert len(script.requests) == 4
    # 0.5, 1, 2 (x jitter 0.75-1.0): strictly growing, each within its band
    assert [round(d / b, 2) >= 0.75 and d <= b for d, b in zip(delays, [0.5, 1.0, 2.0])] == [True] * 3


async def test_retry_after_ms_wins_over_retry_after():
    script = Script(httpx.Response(429, headers={"retry-after-ms": "250", "retry-after": "9"}, json={}), ok())
    t, delays = make(script)
    await t.request("GET", "/x")
    assert delays == [0.25]


async def test_google_retry_info_in_body_is_honoured():
    body = {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED",
                      "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}}
    script = Script(httpx.Response(429, json=body), ok())
    t, delays = make(script)
    await t.request("GET", "/x")
    assert delays == [37.0]


async def test_retry_after_beyond_cap_is_not_waited_inline():
    script = Script(httpx.Response(429, headers={"retry-after": "600"}, json={"error": {"message": "slow down"}}))
    t, delays = make(script, max_retry_after=120)
    with pytest.raises(RateLimitedError) as info:
        await t.request("GET", "/x")
    assert delays == []
    assert info.value.retry_after == 600


async def test_gives_up_after_max_retries_with_rate_limited_error():
    script = Script(httpx.Response(529, headers={"retry-after": "1"}, json={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))
    t, delays = make(script, max_retries=3)
    with pytest.raises(RateLimitedError) as info:
        await t.request("GET", "/x")
    assert len(script.requests) == 4 and delays == [1.0, 1.0, 1.0]
    assert info.value.error_type == "overloaded_error"


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_statuses_raise_auth_error_naming_the_account(status):
    script = Script(httpx.Response(status, json={"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}}))
    t, _ = make(script)
    with pytest.raises(AuthError) as info:
        await t.request("GET", "/x")
    assert "acct" in str(info.value) and len(script.requests) == 1


async def test_gemini_bad_key_400_is_an_auth_error():
    body = {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
                      "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}}
    t, _ = make(Script(httpx.Response(400, json=body)))
    with pytest.raises(AuthError):
        await t.request("GET", "/x")


async def test_404_is_not_found_and_not_retried():
    script = Script(httpx.Response(404, json={"type": "error", "error": {"type": "not_found_error", "message": "nope"}}))
    t, delays = make(script)
    with pytest.raises(NotFoundError):
        await t.request("GET", "/x")
    assert delays == [] and len(script.requests) == 1


async def test_connection_errors_retry_then_unreachable_without_url_or_key():
    script = Script(httpx.ConnectError("boom " + KEY))
    t, delays = make(script, max_retries=2)
    with pytest.raises(UnreachableError) as info:
        await t.request("GET", f"/x?q={KEY}")
    assert len(delays) == 2
    assert KEY not in str(info.value) and KEY not in repr(info.value)


async def test_create_is_never_resent_after_a_lost_answer():
    script = Script(httpx.ReadTimeout("read timed out"), ok())
    t, _ = make(script)
    with pytest.raises(CreateOutcomeUnknown):
        await t.request("POST", "/batches", json={}, idempotent=False)
    assert len(script.requests) == 1


async def test_create_retries_when_the_connection_never_opened():
    script = Script(httpx.ConnectError("refused"), ok())
    t, _ = make(script)
    response = await t.request("POST", "/batches", json={}, idempotent=False)
    assert response.status_code == 200 and len(script.requests) == 2


async def test_create_500_is_an_unknown_outcome_but_429_is_retried():
    t, _ = make(Script(httpx.Response(500, json={})))
    with pytest.raises(CreateOutcomeUnknown):
        await t.request("POST", "/batches", idempotent=False)
    script = Script(httpx.Response(429, headers={"retry-after": "0.1"}, json={}), ok())
    t, delays = make(script)
    await t.request("POST", "/batches", idempotent=False)
    assert delays == [0.1]


async def test_redirect_is_not_followed_so_the_key_stays_home():
    script = Script(httpx.Response(302, headers={"location": "https://evil.example/steal"}))
    t, _ = make(script)
    with pytest.raises(ProtocolError) as info:
        await t.request("GET", "/batches")
    assert len(script.requests) == 1
    assert all(r.url.host == "api.example.test" for r in script.requests)
    assert "not followed" in str(info.value)


async def test_html_502_page_is_a_clear_error_not_a_crash():
    page = httpx.Response(502, headers={"content-type": "text/html"}, content=b"<html><body>Bad gateway</body></html>")
    t, _ = make(Script(page), max_retries=0)
    with pytest.raises(ProviderError) as info:
        await t.request("GET", "/x")
    assert "HTML page" in str(info.value)


async def test_non_json_200_is_a_protocol_error():
    t, _ = make(Script(httpx.Response(200, content=b"not json at all")))
    response = await t.request("GET", "/x")
    with pytest.raises(ProtocolError):
        t.json_of(response)


async def test_huge_error_message_is_cut_and_the_key_redacted():
    message = ("x" * 5_000_000) + KEY
    body = json.dumps({"error": {"message": KEY + " " + message, "type": "invalid_request_error"}})
    t, _ = make(Script(httpx.Response(400, content=body.encode(), headers={"content-type": "application/json"})))
    with pytest.raises(ProviderError) as info:
        await t.request("GET", "/x")
    text = str(info.value)
    assert len(text) < 3_000
    assert KEY not in text and "***" in text


async def test_stream_retries_until_headers_then_yields_body():
    script = Script(httpx.Response(503, json={}), httpx.Response(200, content=b"line1\nline2\n"))
    t, delays = make(script)
    async with t.stream("GET", "/files/f/content") as response:
        body = b"".join([c async for c in t.iter_bytes(response)])
    assert body == b"line1\nline2\n" and len(delays) == 1


def test_repr_never_holds_the_key():
    t, _ = make(Script(ok()))
    assert KEY not in repr(t)


def test_parse_retry_after_http_date():
    headers = httpx.Headers({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"})
    import email.utils

    now = email.utils.parsedate_to_datetime("Wed, 21 Oct 2026 07:27:30 GMT").timestamp()
    assert parse_retry_after(headers, now=now) == 30.0


def _nest(depth: int, *, objects: bool) -> object:
    value: object = "leaf"
    for level in range(depth):
        value = {"k": value, "n": level} if objects and level % 2 else [1, value, "x"]
    return value


@pytest.mark.parametrize("objects", [False, True])
def test_nesting_depth_is_counted_exactly(objects):
    from batchtui.core.transport import nested_deeper_than

    assert not nested_deeper_than(_nest(200, objects=objects), 200)
    assert nested_deeper_than(_nest(201, objects=objects), 200)
    # The deep branch is found beside a wide shallow one, wherever it sits.
    wide = {"data": [{"id": str(i), "meta": {"a": [i]}} for i in range(1000)] + [_nest(199, objects=objects)]}
    assert not nested_deeper_than(wide, 201)
    assert nested_deeper_than(wide, 200)
    assert not nested_deeper_than("text", 0) and not nested_deeper_than(7, 0)


def test_responses_are_read_in_large_pieces():
    """httpcore's read size is its class attribute; a renamed knob must fail here, not make
    every download silently slower."""
    import httpcore

    from batchtui.core import transport

    assert httpcore.AsyncHTTP11Connection.READ_NUM_BYTES == transport.READ_SIZE == 256 * 1024
