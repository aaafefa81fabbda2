"""What every provider client offers. The rest of batchtui speaks only this interface.

A client is bound to one account and one key. It converts the provider's wire objects into
`Batch` / `ResultItem` and sends everything through the shared `Transport`, so retry,
backoff, error classification and key redaction are the same everywhere.
"""

from __future__ import annotations

import abc
import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from batchtui.core.accounts import Account
from batchtui.core.direct_download import DirectRead
from batchtui.core.errors import BatchtuiError, ProtocolError
from batchtui.core.models import Batch, Provider, ResultFile, ResultItem
from batchtui.core.transport import RetryPolicy, Transport

# Metadata key carrying our own create token (dedupe after a lost create answer) and the
# parent of a retry batch, where the provider keeps metadata.
TOKEN_KEY = "batchtui_token"
PARENT_KEY = "batchtui_parent"


class NotSupported(BatchtuiError):
    """The provider cannot do this (e.g. hand back Anthropic's original requests)."""


@dataclass(frozen=True)
class BatchInput:
    """A batch to create, in the provider's own JSONL line format.

    `lines` are the parsed objects (already validated); `raw_lines` the exact bytes of each
    line, so what we send (and store for a later retry) is byte-for-byte what the user wrote.
    """

    lines: Sequence[dict[str, Any]]
    raw_lines: Sequence[bytes]
    filename: str = "batch.jsonl"
    metadata: dict[str, str] = field(default_factory=dict)
    model: str | None = None  # Gemini: the model is in the URL
    display_name: str | None = None

    @property
    def jsonl(self) -> bytes:
        return b"".join(line.rstrip(b"\r\n") + b"\n" for line in self.raw_lines)

    @classmethod
    def from_objects(cls, objects: Sequence[dict[str, Any]], **kw: Any) -> BatchInput:
        raw = [json.dumps(o, ensure_ascii=False, separators=(",", ":")).encode() for o in objects]
        return cls(lines=list(objects), raw_lines=raw, **kw)


@dataclass(frozen=True)
class FileRequest:
    """The GET that serves one result file: a path under the account's base URL, or an
    absolute URL on the same host (Anthropic's `results_url`)."""

    url: str
    headers: dict[str, str] | None = None
    params: dict[str, str] | None = None


@dataclass(frozen=True)
class Limits:
    max_requests: int
    max_bytes: int
    custom_id_pattern: str | None = None


class ProviderClient(abc.ABC):
    provider: ClassVar[Provider]
    limits: ClassVar[Limits]

    def __init__(
        self,
        account: Account,
        key: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Any] | None = None,
        on_error: Callable[[int | None, str], None] | None = None,
    ) -> None:
        self.account = account
        base_url = account.base_url or self.default_base_url(account)
        extra: dict[str, Any] = {}
        if sleep is not None:
            extra["sleep"] = sleep
        self.http = Transport(
            account=account.name,
            base_url=base_url,
            auth_headers=self.auth_headers(key),
            secret=key,
            transport=transport,
            policy=policy or RetryPolicy(),
            extra_headers=self.extra_headers(),
            on_error=on_error,
            **extra,
        )

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(account={self.account.name!r})"

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> ProviderClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- wiring each provider fills in ---------------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def default_base_url(cls, account: Account) -> str: ...

    @abc.abstractmethod
    def auth_headers(self, key: str) -> dict[str, str]: ...

    def extra_headers(self) -> dict[str, str]:
        return {}

    # -- operations ------------------------------------------------------------------------

    @abc.abstractmethod
    def list_batches(self, *, stop_at: Callable[[str], bool] | None = None,
                     first_page: int | None = None) -> AsyncIterator[Batch]:
        """Every batch, newest first, all pages.

        `stop_at(batch_id)` true ends the listing before that batch (used by the poller to
        stop at the first already-known terminal id). `first_page` asks for that many batches
        in the first request, for a caller that expects to stop within it (the poller); every
        other page is as large as the provider allows, so a full listing (`ls`) takes the
        fewest requests.
        """

    @abc.abstractmethod
    async def get_batch(self, batch_id: str) -> Batch: ...

    @abc.abstractmethod
    async def cancel_batch(self, batch_id: str) -> Batch: ...

    @abc.abstractmethod
    async def create_batch(self, batch_input: BatchInput) -> Batch:
        """Create a batch. Never blindly re-sent: a lost answer raises CreateOutcomeUnknown,
        and the caller looks for the batch with `find_created`."""

    @abc.abstractmethod
    async def find_created(self, batch_input: BatchInput, *, since: float) -> Batch | None:
        """After a lost create answer: the batch this input made, if the provider has it.
        Raises AmbiguousCreate when several batches could be it and nothing tells them apart."""

    @abc.abstractmethod
    def result_request(self, batch: Batch, result_file: ResultFile) -> FileRequest | None:
        """The request that serves a result file; None where its bytes are not a download
        of their own (Gemini's inline results)."""

    async def download(self, batch: Batch, result_file: ResultFile) -> AsyncIterator[bytes]:
        """Stream one result file's bytes exactly as served."""
        request = self.result_request(batch, result_file)
        assert request is not None, "a provider with other result files overrides download()"
        async for chunk in self.stream_file(request):
            yield chunk

    async def stream_file(self, request: FileRequest) -> AsyncIterator[bytes]:
        """A file's bytes through httpx, exactly as served (retried until the headers arrive)."""
        async with self.http.stream("GET", request.url, headers=request.headers, params=request.params) as response:
            async for chunk in self.http.iter_bytes(response):
                yield chunk

    def direct_download(self, batch: Batch, result_file: ResultFile) -> DirectRead | None:
        """The result file's request to read straight off the socket (core/direct_download.py),
        or None where it must go through httpx (see Transport.direct)."""
        request = self.result_request(batch, result_file)
        if request is None:
            return None
        return self.http.direct(request.url, headers=request.headers, params=request.params)

    async def read_requests(self, batch: Batch) -> AsyncIterator[bytes]:
        """The original request lines, where the provider gives them back (OpenAI input file)."""
        raise NotSupported(f"{self.provider.value} does not return a batch's original requests")
        yield b""  # pragma: no cover  (makes this an async generator)

    @staticmethod
    @abc.abstractmethod
    def parse_result_line(obj: Any, line_no: int) -> ResultItem:
        """Classify one decoded result line (PROVIDERS.md §F.3)."""

    @staticmethod
    @abc.abstractmethod
    def request_custom_id(line: dict[str, Any]) -> str | None:
        """The custom id of one input line (OpenAI/Anthropic `custom_id`, Gemini `key`)."""

    @abc.abstractmethod
    def validate_line(self, obj: Any) -> str | None:
        """What is wrong with one input line for this provider, or None."""

    def console_url(self, batch: Batch) -> str | None:
        """The provider's web console page for a batch, where there is one."""
        return None


# While turning a page into batches, let the event loop run this often: other accounts'
# requests (and the next page, when prefetched) go out meanwhile instead of after the page.
YIELD_EVERY = 25


def data_items(account: str) -> Callable[[dict[str, Any]], list[Any]]:
    """`items` for `list_batches_paged` over pages that hold their batches in a `data` array
    (OpenAI and its clones, Anthropic). A page without one is a ProtocolError, never an empty
    page: reading it as the end would silently drop every batch after it."""

    def items(page: dict[str, Any]) -> list[Any]:
        data = page.get("data")
        if not isinstance(data, list):
            raise ProtocolError("a batch list without a data array", account=account)
        return data

    return items


async def list_batches_paged(
    fetch: Callable[[Any], Awaitable[dict[str, Any]]],
    next_cursor: Callable[[dict[str, Any]], Any | None],
    items: Callable[[dict[str, Any]], list[Any]],
    parse: Callable[[Any], Batch],
    stop_at: Callable[[str], bool] | None,
) -> AsyncIterator[Batch]:
    """The batches of a paged list call, in order: `fetch(cursor)` gets a page (`None` for
    the first), `next_cursor(page)` names the next (None after the last), `items(page)` holds
    its batch objects and `parse` turns one into a `Batch`; `stop_at` as in `list_batches`.

    A caller that reads every page (`stop_at` None: `ls`, the first poll) has the next page
    asked for as soon as one arrives, so a long listing waits for the network about once
    rather than once per page. A caller that stops early (the poller) gets no prefetch: it
    would be a request too many.
    """
    prefetch = stop_at is None
    pending: asyncio.Future | None = None
    try:
        page = await fetch(None)
        while True:
            cursor = next_cursor(page) if prefetch else None
            if cursor is not None:
                pending = asyncio.ensure_future(fetch(cursor))
                # A page nobody waits for (the caller stopped) must not log an error.
                pending.add_done_callback(lambda done: done.cancelled() or done.exception())
            if prefetch:
                # A whole listing: the page is parsed in a worker thread, leaving the event loop
                # free to read other accounts' pages as they land. OpenAI's come one after
                # another (a cursor each), so every wait for a busy loop adds to all of them.
                for batch in await asyncio.to_thread(_parse_page, parse, items(page)):
                    yield batch
            else:
                for index, obj in enumerate(items(page), 1):
                    batch = parse(obj)
                    if stop_at is not None and stop_at(batch.id):
                        return
                    yield batch
                    if index % YIELD_EVERY == 0:
                        await asyncio.sleep(0)
            if not prefetch:
                cursor = next_cursor(page)
            if cursor is None:
                return
            if pending is not None:
                page, pending = await pending, None
            else:
                page = await fetch(cursor)
    finally:
        if pending is not None:
            pending.cancel()


def _parse_page(parse: Callable[[Any], Batch], objects: list[Any]) -> list[Batch]:
    return [parse(obj) for obj in objects]
