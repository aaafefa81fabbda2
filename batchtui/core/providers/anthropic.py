"""Anthropic Message Batches (PROVIDERS.md §B): the wire objects turned into `Batch` and
`ResultItem`, every call through the shared `Transport`.

Anthropic differs from the others in three ways this module absorbs:
- `ended` is the only terminal status; cancelled / expired are derived (§F.1);
- counts stay frozen (`processing` = N) until the batch ends, so nothing but the total is
  known before then (§B.5);
- batches carry no metadata, so a create whose answer was lost is found again by time and
  size, not by a token (`find_created`).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from batchtui.core.accounts import DEFAULT_BASE_URLS, Account
from batchtui.core.errors import AmbiguousCreate, InputError, ProtocolError
from batchtui.core.models import Batch, Provider, RequestCounts, ResultFile, Status
from batchtui.core.providers.anthropic_results import parse_result, wire_count
from batchtui.core.providers.base import BatchInput, FileRequest, Limits, ProviderClient, data_items, list_batches_paged
from batchtui.core.timeparse import parse_time

API_VERSION = "2023-06-01"
BATCHES = "/v1/messages/batches"
PAGE_LIMIT = 1000  # the largest page the list call gives (§B): a 1,000-batch account in one request
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
RESULTS_KEPT = timedelta(days=29)  # counted from creation, not from the end (§B.4)
CONSOLE_HOST = "api.anthropic.com"

_STATUSES = {"in_progress": Status.IN_PROGRESS, "canceling": Status.CANCELLING}

# Fields a Messages request may carry but a batch refuses (§B.2).
NOT_IN_A_BATCH = ("speed", "store", "previous_thread_event_id", "cache_hint", "context_hint")


class AnthropicClient(ProviderClient):
    provider = Provider.ANTHROPIC
    limits = Limits(max_requests=100_000, max_bytes=256 * 1024 * 1024, custom_id_pattern=CUSTOM_ID.pattern)
    page_limit: int = PAGE_LIMIT  # per list call; tests lower it to walk several pages

    @classmethod
    def default_base_url(cls, account: Account) -> str:
        return DEFAULT_BASE_URLS[Provider.ANTHROPIC]

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key}

    def extra_headers(self) -> dict[str, str]:
        return {"anthropic-version": API_VERSION}

    # -- reading batches ---------------------------------------------------------------

    async def list_batches(self, *, stop_at: Callable[[str], bool] | None = None,
                           first_page: int | None = None) -> AsyncIterator[Batch]:
        first_limit = self.page_limit if first_page is None else min(max(first_page, 1), self.page_limit)
        asked: list[str | None] = [None]  # the after_id of the page being read

        def fetch(after_id: str | None) -> Awaitable[dict[str, Any]]:
            if after_id is None:
                return self.http.get_json(BATCHES, params={"limit": first_limit})
            return self.http.get_json(BATCHES, params={"limit": self.page_limit, "after_id": after_id})

        def next_cursor(page: dict[str, Any]) -> str | None:
            last_id, after_id = page.get("last_id"), asked[-1]
            # A server that repeats a cursor would loop us forever: treat it as the end.
            if not page.get("has_more") or not isinstance(last_id, str) or last_id == after_id:
                return None
            asked.append(last_id)
            return last_id

        items = data_items(self.account.name)
        async with aclosing(list_batches_paged(fetch, next_cursor, items, self.to_batch, stop_at)) as batches:
            async for batch in batches:
                yield batch

    async def get_batch(self, batch_id: str) -> Batch:
        return self.to_batch(await self.http.get_json(_batch_path(batch_id)))

    async def cancel_batch(self, batch_id: str) -> Batch:
        # Safe to retry: cancelling a batch that is already cancelling changes nothing.
        response = await self.http.request("POST", _batch_path(batch_id) + "/cancel")
        return self.to_batch(self.http.json_of(response))

    def to_batch(self, obj: Any) -> Batch:
        return batch_from_wire(obj, self.account.name)

    # -- creating ------------------------------------------------------------------------

    async def create_batch(self, batch_input: BatchInput) -> Batch:
        if len(batch_input.lines) > self.limits.max_requests:
            raise InputError(f"{len(batch_input.lines):,} requests: Anthropic takes at most "
                             f"{self.limits.max_requests:,} per batch")
        body = _create_body(batch_input)
        if len(body) > self.limits.max_bytes:
            raise InputError(f"the batch is {len(body):,} bytes: Anthropic takes at most 256 MB per create")
        response = await self.http.request(
            "POST", BATCHES, content=body, headers={"content-type": "application/json"}, idempotent=False,
        )
        return self.to_batch(self.http.json_of(response))

    async def find_created(self, batch_input: BatchInput, *, since: float) -> Batch | None:
        """The batch created at or after `since` (Unix seconds) holding as many requests as
        `batch_input`, when exactly one does.

        Anthropic keeps no metadata, so time and size are all there is to match on. Two or
        more candidates means we cannot tell which is ours: AmbiguousCreate names them, and the
        caller must ask the user rather than guess (guessing wrong would adopt someone else's
        batch). The comparison is exact: a caller worried about clock skew passes an earlier
        `since`.
        """
        wanted = len(batch_input.lines)
        matches: list[Batch] = []
        async with aclosing(self.list_batches()) as batches:
            async for batch in batches:
                # Newest first: the first one older than `since` ends the search.
                if batch.created_at.timestamp() < since:
                    break
                if batch.counts.total == wanted:
                    matches.append(batch)
        if len(matches) > 1:
            shown = ", ".join(b.id for b in matches[:5]) + (", ..." if len(matches) > 5 else "")
            raise AmbiguousCreate(
                f"{len(matches)} batches of {wanted:,} requests were created since this submission began "
                f"({shown}); Anthropic keeps no metadata to tell which one it made, so none is taken for it",
                account=self.account.name)
        return matches[0] if matches else None

    # -- results ---------------------------------------------------------------------------

    def result_request(self, batch: Batch, result_file: ResultFile) -> FileRequest:
        # `identity`, as the official SDK asks: the results as they are, not a gzip of them.
        return FileRequest(self._results_url(batch, result_file),
                           headers={"accept": "application/binary", "accept-encoding": "identity"})

    def _results_url(self, batch: Batch, result_file: ResultFile) -> str:
        """`results_url` as served when it is on our own host; otherwise the documented path
        under our base URL, so the key is never sent to a host the account did not name."""
        canonical = _batch_path(batch.id) + "/results"
        try:
            served = httpx.URL(result_file.ref)
        except httpx.InvalidURL:
            return canonical
        ours = httpx.URL(self.http.base_url)
        same_origin = served.is_absolute_url and (served.scheme, served.host, served.port) == (
            ours.scheme, ours.host, ours.port)
        return result_file.ref if same_origin else canonical

    # The parser object itself (not a wrapper), so the analyzer finds its fast path.
    parse_result_line = staticmethod(parse_result)

    # -- input lines ---------------------------------------------------------------------

    @staticmethod
    def request_custom_id(line: dict[str, Any]) -> str | None:
        custom_id = line.get("custom_id") if isinstance(line, dict) else None
        return custom_id if isinstance(custom_id, str) else None

    def validate_line(self, obj: Any) -> str | None:
        return validate_request(obj)

    def console_url(self, batch: Batch) -> str | None:
        # Only for Anthropic's own API: a proxy or simulator has no console. The path is the
        # one the console uses for the default workspace (seen in third-party scripts; a key
        # of another workspace lands on its list page instead).
        if httpx.URL(self.http.base_url).host != CONSOLE_HOST:
            return None
        return f"https://console.anthropic.com/settings/workspaces/default/batches/{quote(batch.id, safe='')}"


# -- wire -> Batch -------------------------------------------------------------------------------


def batch_from_wire(obj: Any, account: str) -> Batch:
    """One MessageBatch object (§B.3) as a `Batch`. Unknown fields are ignored, missing
    optional ones tolerated; only `id` and `created_at` are required."""
    if not isinstance(obj, dict):
        raise ProtocolError("a batch that is not a JSON object", account=account)
    batch_id = obj.get("id")
    created_at = parse_time(obj.get("created_at"))
    if not isinstance(batch_id, str) or not batch_id or created_at is None:
        raise ProtocolError("a batch without an id or a creation time", account=account)
    raw_status = obj.get("processing_status")
    raw_status = raw_status if isinstance(raw_status, str) else ""
    ended = raw_status == "ended"
    ended_at = parse_time(obj.get("ended_at"))
    expires_at = parse_time(obj.get("expires_at"))
    cancel_at = parse_time(obj.get("cancel_initiated_at"))
    counts = _counts(obj.get("request_counts"), ended)
    results_url = obj.get("results_url")
    has_results = ended and isinstance(results_url, str) and bool(results_url)
    files = (ResultFile(kind="results", ref=results_url),) if has_results else ()
    return Batch(
        account=account,
        provider=Provider.ANTHROPIC,
        id=batch_id,
        status=_status(raw_status, counts, cancel_at, ended_at, expires_at),
        provider_status=raw_status,
        created_at=created_at,
        ended_at=ended_at,
        expires_at=expires_at,
        counts=counts,
        cancel_requested_at=cancel_at,
        results_expire_at=parse_time(obj.get("archived_at")) or created_at + RESULTS_KEPT,
        result_files=files,
        raw=obj,
    )


def _status(raw: str, counts: RequestCounts, cancel_at: datetime | None,
            ended_at: datetime | None, expires_at: datetime | None) -> Status:
    if raw != "ended":
        # An unknown status is taken as still running, so the poller keeps looking.
        return _STATUSES.get(raw, Status.IN_PROGRESS)
    if cancel_at is not None:
        return Status.CANCELLED
    if (counts.expired or 0) > 0 and ended_at is not None and expires_at is not None and ended_at >= expires_at:
        return Status.EXPIRED
    # Even with every request errored: per-request failures are not a failed batch.
    return Status.COMPLETED


def _counts(wire: Any, ended: bool) -> RequestCounts:
    wire = wire if isinstance(wire, dict) else {}
    values = {k: wire_count(wire.get(k)) for k in ("processing", "succeeded", "errored", "canceled", "expired")}
    known = [v for v in values.values() if v is not None]
    total = sum(known) if known else None  # the five always add up to the batch's size
    if not ended:
        # The other four read 0 until the end, but they are unknown, not zero.
        return RequestCounts(total=total, processing=values["processing"], live=False)
    return RequestCounts(
        total=total,
        succeeded=values["succeeded"],
        failed=values["errored"],
        expired=values["expired"],
        cancelled=values["canceled"],
        processing=values["processing"],
        live=False,
    )


# -- input lines ---------------------------------------------------------------------------------


def validate_request(obj: Any) -> str | None:
    """What is wrong with one `{custom_id, params}` line, or None (§B.2)."""
    if not isinstance(obj, dict):
        return "each line must be a JSON object with `custom_id` and `params`"
    custom_id = obj.get("custom_id")
    if not isinstance(custom_id, str):
        return "`custom_id` is missing or not a string"
    if not CUSTOM_ID.match(custom_id):
        return f"`custom_id` {custom_id!r} must be 1-64 letters, digits, '_' or '-'"
    params = obj.get("params")
    if not isinstance(params, dict):
        return "`params` is missing or not an object"
    model = params.get("model")
    if not isinstance(model, str) or not model:
        return "`params.model` is missing"
    max_tokens = params.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens <= 0:
        return "`params.max_tokens` must be a whole number above 0"
    messages = params.get("messages")
    if not isinstance(messages, list) or not messages:
        return "`params.messages` must be a non-empty list"
    if params.get("stream") not in (None, False):
        return "`params.stream` is not allowed in a batch (results are never streamed)"
    for name in NOT_IN_A_BATCH:
        if params.get(name) is not None:
            return f"`params.{name}` is not allowed in a batch"
    return None


def _create_body(batch_input: BatchInput) -> bytes:
    # The user's own bytes for each request, so what is sent is exactly what they wrote
    # (and what the ledger keeps for a retry).
    lines = [line.strip() for line in batch_input.raw_lines]
    if len(lines) != len(batch_input.lines) or not all(lines):
        lines = [json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() for line in batch_input.lines]
    return b'{"requests":[' + b",".join(lines) + b"]}"


def _batch_path(batch_id: str) -> str:
    # Quoted whole: an id is untrusted text and must not reshape the path or the query.
    return f"{BATCHES}/{quote(batch_id, safe='')}"
