"""OpenAI and the OpenAI-shaped batch APIs: which dialect an account speaks, and how any of
their batch objects becomes a unified `Batch` (PROVIDERS.md §A.4, §E, §F.1-F.2).

The dialect table holds only what changes the *requests* we send (base URL, upload purpose,
list paging, create body and answer). Reading a batch object is one tolerant function for
every dialect: upper- or lower-case statuses, Unix or ISO timestamps, `errors.data[]` or a
plain `error` string, counts present or not. A server we have never seen gets the same
tolerance, so a new OpenAI clone mostly just works with a base URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from batchtui.core.accounts import Account
from batchtui.core.errors import ConfigError, ProtocolError
from batchtui.core.models import Batch, BatchError, Provider, RequestCounts, ResultFile, Status, Usage
from batchtui.core.providers.base import Limits
from batchtui.core.timeparse import parse_time

MB = 1_000_000

# The OpenAI batch endpoints (2026 list, PROVIDERS.md §A.3).
OPENAI_ENDPOINTS = (
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
)


class ListStyle(StrEnum):
    CURSOR = "cursor"  # OpenAI: ?limit=&after=, answers {data, has_more, last_id}
    SINGLE = "single"  # Groq: no paging params, one {"object": "list", "data": [...]} answer
    ARRAY = "array"  # Together: one bare JSON array


@dataclass(frozen=True)
class Dialect:
    name: str
    base_url: str | None
    endpoints: tuple[str, ...] = OPENAI_ENDPOINTS
    limits: Limits = Limits(max_requests=50_000, max_bytes=200 * MB)
    upload_purpose: str = "batch"
    list_style: ListStyle = ListStyle.CURSOR
    # Together answers a create with {"job": {...}, "warning": ...}; everyone else with the batch.
    create_envelope: str | None = None
    # Together takes no metadata (so a lost create is found by its input file instead) but
    # wants the model named in the create body.
    sends_metadata: bool = True
    model_param: str | None = None
    # Where the provider's web console shows a batch; only for the real service's host.
    console_host: str | None = None
    console_url: str | None = None


OPENAI = Dialect(
    name="openai",
    base_url="https://api.openai.com/v1",
    console_host="api.openai.com",
    console_url="https://platform.openai.com/batches/{id}",
)

# A server we know only as "OpenAI-compatible": OpenAI's requests, and the tolerant reading
# every dialect gets (uppercase statuses, ISO times, a missing has_more).
GENERIC = Dialect(name="openai-compatible", base_url=None)

# Keyed by Account.preset. Mistral is left out on purpose: its batch API has its own paths
# (/v1/batch/jobs), a list of input files and its own object, all unverified (PROVIDERS.md §E).
PRESETS: dict[str, Dialect] = {
    "openai": OPENAI,
    "groq": Dialect(
        name="groq",
        base_url="https://api.groq.com/openai/v1",
        endpoints=("/v1/chat/completions",),
        limits=Limits(max_requests=50_000, max_bytes=100 * MB),
        list_style=ListStyle.SINGLE,
    ),
    "together": Dialect(
        name="together",
        base_url="https://api.together.xyz/v1",
        endpoints=("/v1/chat/completions", "/v1/audio/transcriptions", "/v1/audio/translations"),
        upload_purpose="batch-api",
        list_style=ListStyle.ARRAY,
        create_envelope="job",
        sends_metadata=False,
        model_param="model_id",
    ),
    # "Follows the shape of OpenAI's Batch API" (PROVIDERS.md §E); nothing else is known.
    "perplexity": Dialect(name="perplexity", base_url="https://api.perplexity.ai/v1"),
}


def dialect_for(account: Account) -> Dialect:
    if account.preset:
        dialect = PRESETS.get(account.preset.lower())
        if dialect is None:
            if account.base_url is None:
                known = ", ".join(sorted(PRESETS))
                raise ConfigError(f"account {account.name}: unknown preset {account.preset!r} (known: {known})")
            return GENERIC  # an unknown preset with a base URL: treat it as a plain clone
        return dialect
    return OPENAI if account.provider is Provider.OPENAI else GENERIC


# -- statuses ---------------------------------------------------------------------------

# Every spelling seen across the OpenAI-shaped APIs (PROVIDERS.md §E, §F.1), lower-cased.
_STATUSES: dict[str, Status] = {
    "validating": Status.VALIDATING,
    "queued": Status.VALIDATING,
    "pending": Status.VALIDATING,
    "in_progress": Status.IN_PROGRESS,
    "running": Status.IN_PROGRESS,
    "progress": Status.IN_PROGRESS,  # Novita
    "processing": Status.IN_PROGRESS,
    "finalizing": Status.FINALIZING,
    "cancelling": Status.CANCELLING,
    "canceling": Status.CANCELLING,
    "cancellation_requested": Status.CANCELLING,
    "completed": Status.COMPLETED,
    "succeeded": Status.COMPLETED,
    "success": Status.COMPLETED,
    "failed": Status.FAILED,
    "expired": Status.EXPIRED,
    "timeout_exceeded": Status.EXPIRED,
    "cancelled": Status.CANCELLED,
    "canceled": Status.CANCELLED,
}

# An unknown status is read as still running: the poller keeps asking and nothing treats
# the batch as finished (no download, no final cost) until the provider says a word we know.
# Guessing a terminal status could stop polling a live batch for good.
UNKNOWN_STATUS = Status.IN_PROGRESS


def unified_status(raw: object) -> Status:
    if isinstance(raw, str):
        return _STATUSES.get(raw.strip().lower(), UNKNOWN_STATUS)
    return UNKNOWN_STATUS


# -- one batch object -> Batch -------------------------------------------------------------

_ENDED_FIELD = {
    Status.COMPLETED: "completed_at",
    Status.FAILED: "failed_at",
    Status.EXPIRED: "expired_at",
    Status.CANCELLED: "cancelled_at",
}
_ENDED_FIELDS = tuple(_ENDED_FIELD.values())


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:  # not str.isdigit(): it is true for "²", which int() refuses
            return int(value.strip())
        except ValueError:
            return None
    return None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first_time(obj: dict[str, Any], *names: str) -> datetime | None:
    for name in names:
        moment = parse_time(obj.get(name))
        if moment is not None:
            return moment
    return None


def counts_of(obj: dict[str, Any]) -> RequestCounts:
    """OpenAI's live {total, completed, failed}; None everywhere when absent (Together's
    `progress` % is not a count, and a guessed 0 would read as "nothing done")."""
    raw = obj.get("request_counts")
    if not isinstance(raw, dict):
        return RequestCounts(live=True)
    # total is 0 while validating; we keep the provider's 0 rather than invent a number.
    return RequestCounts(
        total=_int(raw.get("total")),
        succeeded=_int(raw.get("completed")),
        failed=_int(raw.get("failed")),
        live=True,
    )


def batch_usage(raw: object) -> Usage | None:
    """Batch-wide `usage` (batches created after 2025-09-07); None when not reported."""
    if not isinstance(raw, dict):
        return None
    inp, out = _dict(raw.get("input_tokens_details")), _dict(raw.get("output_tokens_details"))
    return Usage(
        input=_int(raw.get("input_tokens")) or 0,
        cached_input=_int(inp.get("cached_tokens")) or 0,
        cache_write=_int(inp.get("cache_write_tokens")) or 0,
        output=_int(raw.get("output_tokens")) or 0,
        reasoning=_int(out.get("reasoning_tokens")) or 0,
    )


def errors_of(obj: dict[str, Any]) -> tuple[BatchError, ...]:
    out: list[BatchError] = []
    errors = obj.get("errors")
    data = errors.get("data") if isinstance(errors, dict) else errors if isinstance(errors, list) else None
    for item in data or ():
        if isinstance(item, dict):
            message = item.get("message")
            out.append(BatchError(code=_str(item.get("code")), line=_int(item.get("line")),
                                  message=message if isinstance(message, str) else ""))
    single = obj.get("error")  # Together: one string
    if isinstance(single, str) and single:
        out.append(BatchError(code=None, message=single))
    elif isinstance(single, dict):
        out.append(BatchError(code=_str(single.get("code")), message=str(single.get("message") or "")))
    return tuple(out)


def metadata_of(raw: object) -> dict[str, str]:
    # Metadata is map<string,string> on the wire; a clone sending numbers should not break us.
    if not isinstance(raw, dict):
        return {}
    return {str(k): v if isinstance(v, str) else str(v) for k, v in raw.items() if v is not None}


def to_batch(obj: Any, *, account: Account) -> Batch:
    """One wire batch object of any OpenAI dialect as a unified Batch."""
    if not isinstance(obj, dict):
        raise ProtocolError("expected a batch object", account=account.name)
    batch_id = _str(obj.get("id"))
    if batch_id is None:
        raise ProtocolError("a batch object without an id", account=account.name)
    created = parse_time(obj.get("created_at"))
    if created is None:
        raise ProtocolError(f"batch {batch_id} has no readable created_at", account=account.name)
    raw_status = obj.get("status")
    status = unified_status(raw_status)
    ended = parse_time(obj.get(_ENDED_FIELD[status])) if status in _ENDED_FIELD else None
    if ended is None and status.is_terminal:
        ended = _first_time(obj, *_ENDED_FIELDS)  # a clone stamping only completed_at
    files = tuple(
        ResultFile(kind=kind, ref=ref)
        for kind, ref in (("results", _str(obj.get("output_file_id"))), ("errors", _str(obj.get("error_file_id"))))
        if ref is not None
    )
    return Batch(
        account=account.name,
        provider=account.provider,
        id=batch_id,
        status=status,
        provider_status=raw_status if isinstance(raw_status, str) else "",
        created_at=created,
        ended_at=ended,
        expires_at=_first_time(obj, "expires_at", "job_deadline"),
        model=_str(obj.get("model")) or _str(obj.get("model_id")),
        counts=counts_of(obj),
        endpoint=_str(obj.get("endpoint")),
        metadata=metadata_of(obj.get("metadata")),
        in_progress_at=parse_time(obj.get("in_progress_at")),
        finalizing_at=parse_time(obj.get("finalizing_at")),
        cancel_requested_at=parse_time(obj.get("cancelling_at")),
        input_ref=_str(obj.get("input_file_id")),
        result_files=files,
        errors=errors_of(obj),
        usage=batch_usage(obj.get("usage")),
        raw=obj,
    )
