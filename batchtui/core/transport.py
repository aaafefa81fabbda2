"""One transport policy for every provider: timeouts, retries with backoff and jitter,
server retry hints, error classification and key redaction.

Provider modules build their URLs and bodies and call `Transport.request` / `Transport.stream`;
they never see an `httpx` exception. The API key lives in the client's default headers only
and is scrubbed from any text we raise.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import logging
import random
import re
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from batchtui.core.direct_download import DirectRead
from batchtui.core.errors import (
    AuthError,
    CreateOutcomeUnknown,
    NotFoundError,
    ProtocolError,
    ProviderError,
    RateLimitedError,
    UnreachableError,
)

log = logging.getLogger("batchtui.http")

# Statuses the official SDKs retry (PROVIDERS.md A.10); 529 is Anthropic's "overloaded".
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
# For a create, only answers that say "not done" are safe to retry; 500/502/504 may hide a
# batch that was made.
CREATE_SAFE_RETRY_STATUSES = frozenset({408, 429, 503, 529})
MAX_ERROR_TEXT = 2_000  # a provider may send a 10 MB error message; we keep its start
# Provider objects nest about a dozen levels. Far deeper is a broken or hostile server: pydantic
# cannot serialise past 255 levels (the ledger would fail on that batch at every poll), and the
# json module gives up (RecursionError) at about 1,000.
MAX_JSON_DEPTH = 200
# A \uD800-\uDFFF escape in a JSON body: a surrogate, paired (an emoji) or lone.
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# httpcore reads a response 64 kB at a time, and each read is a pass through h11, anyio and the
# event loop. A 200 MB result file took 3,200 of them, ~0.25 s of the event loop's CPU; the
# socket hands over up to 256 kB a read (asyncio's limit), so ask for that much. The attribute
# is httpcore's own knob for this (tests/test_transport.py checks it is still there).
READ_SIZE = 256 * 1024
httpcore.AsyncHTTP11Connection.READ_NUM_BYTES = READ_SIZE


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    # Longer server hints are not waited out inline: the caller sees RateLimitedError and
    # the poller reschedules (PROVIDERS.md: the SDKs cap at 60-120 s).
    max_retry_after: float = 120.0
    connect_timeout: float = 10.0
    read_timeout: float = 120.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        delay = min(self.base_delay * (2**attempt), self.max_delay)
        return delay * rng.uniform(0.75, 1.0)

    @property
    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.read_timeout, connect=self.connect_timeout)


@dataclass(frozen=True)
class ParsedError:
    message: str
    error_type: str | None = None
    retry_after: float | None = None
    request_id: str | None = None
    auth: bool = False


def parse_retry_after(headers: httpx.Headers, now: float | None = None) -> float | None:
    """`retry-after-ms` first, then `retry-after` in seconds or as an HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (now if now is not None else time.time()), 0.0)


def _google_duration(text: str) -> float | None:
    # "37s", "1.5s" (protobuf Duration JSON form)
    if isinstance(text, str) and text.endswith("s"):
        try:
            return float(text[:-1])
        except ValueError:
            return None
    return None


def parse_error_body(response: httpx.Response) -> ParsedError:
    """Read any of the three providers' error envelopes (PROVIDERS.md §F.4)."""
    retry_after = parse_retry_after(response.headers)
    request_id = response.headers.get("x-request-id") or response.headers.get("request-id")
    try:
        # Error bodies can be huge (a 10 MB message); parsing is still cheap at that size.
        body = json.loads(response.content or b"null") if len(response.content) <= 50_000_000 else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        body = None
    if not isinstance(body, dict):
        # An HTML 502 page from a proxy, or plain text.
        ctype = response.headers.get("content-type", "")
        snippet = response.content[:200].decode("utf-8", "replace").strip()
        kind = "an HTML page" if "html" in ctype or snippet.lower().startswith("<") else "a non-JSON body"
        return ParsedError(f"unexpected answer: {kind}", None, retry_after, request_id)
    err = body.get("error")
    request_id = body.get("request_id") or request_id
    if isinstance(err, dict):
        message = str(err.get("message") or "")
        # OpenAI: type + code; Anthropic: type; Google: status (+ numeric code).
        error_type = err.get("code") if isinstance(err.get("code"), str) else None
        error_type = error_type or err.get("type") or err.get("status")
        auth = False
        for detail in err.get("details") or []:
            if not isinstance(detail, dict):
                continue
            if detail.get("@type", "").endswith("RetryInfo"):
                retry_after = retry_after or _google_duration(detail.get("retryDelay", ""))
            if detail.get("reason") == "API_KEY_INVALID":
                auth = True
        if "API key not valid" in message:
            auth = True
        return ParsedError(message or "error", str(error_type) if error_type else None, retry_after, request_id, auth)
    if isinstance(err, str):
        return ParsedError(err, None, retry_after, request_id)
    return ParsedError(str(body.get("message") or "error"), None, retry_after, request_id)


@dataclass
class Transport:
    """An account's HTTP channel: base URL, auth headers and the retry policy."""

    account: str
    base_url: str
    auth_headers: dict[str, str]
    secret: str | None = None
    transport: httpx.AsyncBaseTransport | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)
    extra_headers: dict[str, str] = field(default_factory=dict)
    # Called with (status_code, parsed) on every retried or failed answer: account health.
    on_error: Callable[[int | None, str], None] | None = None

    def __post_init__(self) -> None:
        self._client = httpx.AsyncClient(
            base_url=self.base_url.rstrip("/"),
            headers={**self.extra_headers, **self.auth_headers},
            transport=self.transport,
            verify=shared_ssl_context(),
            timeout=self.policy.timeout,
            # A redirect to another host must not carry the key: we never follow one.
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"Transport(account={self.account!r}, base_url={self.base_url!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    def redact(self, text: str) -> str:
        if self.secret and self.secret in text:
            text = text.replace(self.secret, "***")
        return text

    # -- requests ---------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send with retries; return a 2xx response or raise a ProviderError."""
        attempt = 0
        while True:
            try:
                response = await self._client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                if not idempotent and _maybe_sent(exc):
                    raise CreateOutcomeUnknown(
                        f"the create request was sent but its answer was lost ({type(exc).__name__})",
                        account=self.account,
                    ) from None
                if attempt >= self.policy.max_retries:
                    raise self.unreachable(type(exc).__name__) from None
                self._report(None, type(exc).__name__)
                await self.sleep(self.policy.backoff(attempt, self.rng))
                attempt += 1
                continue
            log.debug("%s %s -> %s", method, self.redact(str(response.request.url)), response.status_code)
            if response.is_success:
                return response
            delay = self._retry_delay(response, attempt, idempotent)
            if delay is None:
                if not idempotent and response.status_code in RETRY_STATUSES - CREATE_SAFE_RETRY_STATUSES:
                    raise CreateOutcomeUnknown(
                        f"the create request got HTTP {response.status_code}; the batch may still have been made",
                        account=self.account,
                        status_code=response.status_code,
                    )
                raise self._error(response)
            self._report(response.status_code, "retrying")
            await self.sleep(delay)
            attempt += 1

    async def get_json(self, url: str, **kwargs: Any) -> dict[str, Any]:
        return self.json_of(await self.request("GET", url, **kwargs))

    def json_of(self, response: httpx.Response) -> dict[str, Any]:
        """Decode a 2xx JSON body; a non-JSON 200 is a ProtocolError, not a crash."""
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise ProtocolError(
                f"expected JSON from {response.request.url.path}, got {response.headers.get('content-type', 'no content type')}",
                account=self.account,
                status_code=response.status_code,
            ) from None
        if not isinstance(body, dict):
            raise ProtocolError("expected a JSON object", account=self.account, status_code=response.status_code)
        return self.checked(body, response)

    def checked(self, body: Any, response: httpx.Response) -> Any:
        """Decoded JSON made safe to keep: nested no deeper than MAX_JSON_DEPTH (else a
        ProtocolError), and with any lone surrogate replaced."""
        self.check_depth(body, response)
        if SURROGATE_ESCAPE.search(response.content):
            body = without_lone_surrogates(body)
        return body

    def check_depth(self, body: Any, response: httpx.Response) -> None:
        if nested_deeper_than(body, MAX_JSON_DEPTH):
            raise ProtocolError(
                f"the answer from {response.request.url.path} is nested more than {MAX_JSON_DEPTH} levels deep; "
                "not read", account=self.account, status_code=response.status_code)

    @asynccontextmanager
    async def stream(self, method: str, url: str, **kwargs: Any) -> AsyncIterator[httpx.Response]:
        """Open a streamed 2xx response (retrying until the headers arrive).

        A connection dropped mid-body raises UnreachableError from the body iterator; the
        caller restarts the download (downloads are all-or-nothing).
        """
        attempt = 0
        while True:
            try:
                request = self._client.build_request(method, url, **kwargs)
                response = await self._client.send(request, stream=True)
            except httpx.TransportError as exc:
                if attempt >= self.policy.max_retries:
                    raise self.unreachable(type(exc).__name__) from None
                await self.sleep(self.policy.backoff(attempt, self.rng))
                attempt += 1
                continue
            if response.is_success:
                break
            await response.aread()
            await response.aclose()
            delay = self._retry_delay(response, attempt, True)
            if delay is None:
                raise self._error(response)
            await self.sleep(delay)
            attempt += 1
        try:
            yield response
        finally:
            await response.aclose()

    def direct(self, url: str, **kwargs: Any) -> DirectRead | None:
        """A GET of `url` to read straight off the socket (core/direct_download.py), as httpx
        would send it; None where httpx must carry it: an in-process transport (the tests' and
        the demo's simulator) or a proxy set in the environment, which only httpx speaks."""
        if self.transport is not None:
            return None
        request = self._client.build_request("GET", url, **kwargs)
        scheme = request.url.scheme
        proxies = urllib.request.getproxies()  # what httpx reads too (a NO_PROXY alone is no proxy)
        if scheme not in ("http", "https") or proxies.get(scheme) or proxies.get("all"):
            return None
        log.debug("GET %s (direct)", self.redact(str(request.url)))
        return DirectRead(request, ssl_context=shared_ssl_context() if scheme == "https" else None,
                          connect_timeout=self.policy.connect_timeout, read_timeout=self.policy.read_timeout)

    async def iter_bytes(self, response: httpx.Response, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        # Decoded bytes (a gzip transfer is undone): the file as the provider serves it. By
        # default each chunk as it arrives (up to READ_SIZE): asking httpx for a fixed size
        # re-chunks through a buffer, copying every byte again for nothing.
        try:
            async for chunk in response.aiter_bytes(chunk_size):
                yield chunk
        except httpx.TransportError as exc:
            raise self.unreachable(type(exc).__name__) from None

    # -- classification ---------------------------------------------------------------------

    def _retry_delay(self, response: httpx.Response, attempt: int, idempotent: bool) -> float | None:
        status = response.status_code
        allowed = RETRY_STATUSES if idempotent else CREATE_SAFE_RETRY_STATUSES
        if status not in allowed and not (idempotent and status >= 500):
            return None
        should = response.headers.get("x-should-retry")
        if should == "false":
            return None
        if attempt >= self.policy.max_retries:
            return None
        hint = parse_error_body(response).retry_after if status in (429, 503, 529) else parse_retry_after(response.headers)
        if hint is not None:
            if hint > self.policy.max_retry_after:
                return None
            return hint
        return self.policy.backoff(attempt, self.rng)

    def _error(self, response: httpx.Response) -> ProviderError:
        parsed = parse_error_body(response)
        status = response.status_code
        message = self.redact(parsed.message)
        if len(message) > MAX_ERROR_TEXT:
            message = message[:MAX_ERROR_TEXT] + f"... ({len(parsed.message):,} characters)"
        kw: dict[str, Any] = dict(
            account=self.account, status_code=status, error_type=parsed.error_type, request_id=parsed.request_id
        )
        self._report(status, message)
        if 300 <= status < 400:
            where = response.headers.get("location", "?")
            return ProtocolError(f"redirected to {self.redact(where)}; not followed (it would carry the key)", **kw)
        if status in (401, 403) or parsed.auth:
            return AuthError(message or "the API key was refused", **kw)
        if status == 404:
            return NotFoundError(message or "not found", **kw)
        if status in (429, 529):
            return RateLimitedError(message or "rate limited", retry_after=parsed.retry_after, **kw)
        if status >= 500 and parsed.error_type is None and message.startswith("unexpected answer"):
            return ProtocolError(message, **kw)
        return ProviderError(message or f"HTTP {status}", **kw)

    def unreachable(self, kind: str) -> UnreachableError:
        """The error for a failed connection (`kind`: the exception's name), reported to the
        account's health. httpx's own messages can quote the URL; ours name only the kind and host."""
        host = httpx.URL(self.base_url).host
        self._report(None, kind)
        return UnreachableError(f"{host or 'provider'} unreachable ({kind})", account=self.account)

    def _report(self, status: int | None, text: str) -> None:
        if self.on_error is not None:
            self.on_error(status, text)


def without_lone_surrogates(value: Any) -> Any:
    """Decoded JSON with each lone surrogate (a `\\ud800` escape, which UTF-8 cannot encode)
    replaced by U+FFFD: one in a batch id or name would otherwise fail the ledger's SQLite and
    its JSON on every poll of the account. Depth is already bounded by MAX_JSON_DEPTH."""
    if isinstance(value, str):
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if isinstance(value, dict):
        return {without_lone_surrogates(k): without_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_lone_surrogates(v) for v in value]
    return value


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether decoded JSON nests lists or objects more than `limit` levels (without recursing).

    Level by level: every answer is checked, a 1,000-batch page has ~30,000 values, and most
    are strings and numbers, dropped by one exact type test each (decoded JSON holds plain
    dicts and lists only)."""
    level = [value] if type(value) is dict or type(value) is list else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for node in level:
            below += [child for child in (node.values() if type(node) is dict else node)
                      if type(child) is dict or type(child) is list]
        level = below
    return False


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The TLS settings every client uses: httpx's defaults (verify=True, its CA bundle or
    SSL_CERT_FILE / SSL_CERT_DIR), built once. Each client building its own loads the CA
    bundle again: ~40 ms a client, half a second of `ls` start-up with twelve accounts."""
    return httpx.create_ssl_context()


def _maybe_sent(exc: httpx.TransportError) -> bool:
    """True when the request may have reached the server (so a create may have happened)."""
    return not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
