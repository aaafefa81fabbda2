"""Anthropic result lines (PROVIDERS.md §B.6) classified into `ResultItem`s (§F.3).

Kept apart from the client so the streaming analyzer's hot path is one small module.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from batchtui.core.models import Outcome, Usage
from batchtui.core.results import Classified, ResultLineParser, UsageCounts, usage_from_counts

# §B.6: an errored line's `error.error.type`. Request errors fail again if resent unchanged;
# server errors are worth resending as they are.
REQUEST_ERROR_TYPES = frozenset({
    "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
    "billing_error", "request_too_large",
})
SERVER_ERROR_TYPES = frozenset({"api_error", "overloaded_error", "timeout_error", "rate_limit_error"})
# Enum members as module constants: Outcome.X is an attribute lookup per line otherwise.
_SUCCEEDED, _BLOCKED, _UNKNOWN = Outcome.SUCCEEDED, Outcome.BLOCKED, Outcome.UNKNOWN
_REQUEST_ERROR, _SERVER_ERROR = Outcome.REQUEST_ERROR, Outcome.SERVER_ERROR
_CANCELLED, _EXPIRED = Outcome.NOT_RUN_CANCELLED, Outcome.NOT_RUN_EXPIRED
# The HTTP status each error type stands for (§B.7), for the unified `http_status`.
ERROR_HTTP_STATUS = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
    "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
    "rate_limit_error": 429, "api_error": 500, "timeout_error": 504, "overloaded_error": 529,
}


def classify_result(obj: Any) -> Classified:
    """One results line (§B.6) classified. A line that is not a result at all raises
    ValueError, which the analyzer counts as unparseable. Every field read here is named in
    `_Line` below. (Written for speed: it runs once per line of a 200 MB file.)"""
    result = obj.get("result") if isinstance(obj, dict) else None
    if not isinstance(result, dict):
        raise ValueError("not a message batch result line")
    custom_id = obj.get("custom_id")
    if not isinstance(custom_id, str):
        custom_id = None
    kind = result.get("type")
    if kind == "succeeded":
        return _succeeded(custom_id, result.get("message"))
    if kind == "errored":
        return _errored(custom_id, result.get("error"))
    if kind == "canceled":
        return (custom_id, _CANCELLED, None, None, None, None, None)
    if kind == "expired":
        return (custom_id, _EXPIRED, None, None, None, None, None)
    return (custom_id, _UNKNOWN, None, kind if isinstance(kind, str) else None, None, None, None)


def _succeeded(custom_id: str | None, message: Any) -> Classified:
    if not isinstance(message, dict):
        message = {}
    model = message.get("model")
    if not isinstance(model, str):
        model = None
    usage = usage_counts_from_wire(message.get("usage"))
    if message.get("stop_reason") != "refusal":
        return (custom_id, _SUCCEEDED, None, None, None, model, usage)
    # A refusal is a success on the wire (and billed), but the request must change.
    details = message.get("stop_details")
    if not isinstance(details, dict):
        details = {}
    explanation = details.get("explanation") or details.get("category")
    return (custom_id, _BLOCKED, None, "refusal", str(explanation) if explanation else None, model, usage)


def _errored(custom_id: str | None, envelope: Any) -> Classified:
    error = envelope.get("error") if isinstance(envelope, dict) else None
    if not isinstance(error, dict):
        error = {}
    error_type = error.get("type")
    if not isinstance(error_type, str):
        error_type = None
    message = error.get("message")
    if error_type in REQUEST_ERROR_TYPES:
        outcome = _REQUEST_ERROR
    elif error_type in SERVER_ERROR_TYPES:
        outcome = _SERVER_ERROR
    else:
        outcome = _UNKNOWN  # a new error type: resending is the safer default
    return (custom_id, outcome, ERROR_HTTP_STATUS.get(error_type or ""), error_type,
            message if isinstance(message, str) else None, None, None)


def usage_from_wire(wire: Any) -> Usage | None:
    """Anthropic's `usage` in the unified columns (§F.3): `input` is the whole prompt,
    uncached + cache writes + cache reads."""
    counts = usage_counts_from_wire(wire)
    return None if counts is None else usage_from_counts(counts)


def usage_counts_from_wire(wire: Any) -> UsageCounts | None:
    """`usage_from_wire` as a plain tuple (the analyzer's hot path: `_count` is inlined
    as `n if type(n) is int and n >= 0` for the usual plain int)."""
    if not isinstance(wire, dict):
        return None
    get = wire.get
    n = get("input_tokens")
    uncached = n if type(n) is int and n >= 0 else _count(n)
    n = get("cache_read_input_tokens")
    read = n if type(n) is int and n >= 0 else _count(n)
    split = get("cache_creation")
    if isinstance(split, dict):
        n = split.get("ephemeral_1h_input_tokens")
        write_1h = n if type(n) is int and n >= 0 else _count(n)
        n = split.get("ephemeral_5m_input_tokens")
        write_5m = n if type(n) is int and n >= 0 else _count(n)
    else:
        write_1h = write_5m = 0
    written = wire_count(get("cache_creation_input_tokens"))
    written = write_5m + write_1h if written is None else written
    n = get("output_tokens")
    output = n if type(n) is int and n >= 0 else _count(n)
    details = get("output_tokens_details")
    thinking = _count(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    return (uncached + written + read, read, written, write_1h, output, thinking)


def _count(value: Any) -> int:
    return wire_count(value) or 0


# The common line, a plain success, for the analyzer's fast path: only the fields its outcome
# and usage need (not the content, most of each line), typed with `wire_count`'s rules so
# msgspec checks them. Anything else (null counts, a refusal, an error) takes `classify_result`.
Count = Annotated[int, msgspec.Meta(ge=0)]


class _CacheWrites(msgspec.Struct):
    ephemeral_1h_input_tokens: Count = 0
    ephemeral_5m_input_tokens: Count = 0


class _OutputDetails(msgspec.Struct):
    thinking_tokens: Count = 0


class _Usage(msgspec.Struct):
    input_tokens: Count = 0
    cache_read_input_tokens: Count = 0
    cache_creation_input_tokens: Count | None = None
    cache_creation: _CacheWrites | None = None
    output_tokens: Count = 0
    output_tokens_details: _OutputDetails | None = None


class _Message(msgspec.Struct):
    model: str | None = None
    usage: _Usage | None = None
    stop_reason: str | None = None


class _Result(msgspec.Struct):
    type: str
    message: _Message | None = None


class _CommonLine(msgspec.Struct):
    result: _Result
    custom_id: str | None = None


def _classify_common(line: _CommonLine) -> Classified | None:
    result, message = line.result, line.result.message
    if result.type != "succeeded" or message is None or message.stop_reason == "refusal":
        return None
    u = message.usage
    if u is None:
        return (line.custom_id, _SUCCEEDED, None, None, None, message.model, None)
    split = u.cache_creation
    write_1h = split.ephemeral_1h_input_tokens if split is not None else 0
    written = u.cache_creation_input_tokens
    if written is None:
        written = write_1h + (split.ephemeral_5m_input_tokens if split is not None else 0)
    thinking = u.output_tokens_details.thinking_tokens if u.output_tokens_details is not None else 0
    read = u.cache_read_input_tokens
    usage = (u.input_tokens + written + read, read, written, write_1h, u.output_tokens, thinking)
    return (line.custom_id, _SUCCEEDED, None, None, None, message.model, usage)


parse_result = ResultLineParser(classify_result, _CommonLine, _classify_common)
"""`parse_result(obj, line_no) -> ResultItem`, with the analyzer's fast path attached."""


def wire_count(value: Any) -> int | None:
    """A token or request count as sent: a non-negative int, else unknown (None)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
