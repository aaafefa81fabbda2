"""Anthropic result lines (PROVIDERS.md §B.6) classified into `ResultItem`s (§F.3).

Kept apart from the client so the streaming analyzer's hot path is one small module.
"""

from __future__ import annotations

from typing import Any

from batchtui.core.models import Outcome, ResultItem, Usage

# §B.6: an errored line's `error.error.type`. Request errors fail again if resent unchanged;
# server errors are worth resending as they are.
REQUEST_ERROR_TYPES = frozenset({
    "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
    "billing_error", "request_too_large",
})
SERVER_ERROR_TYPES = frozenset({"api_error", "overloaded_error", "timeout_error", "rate_limit_error"})
# The HTTP status each error type stands for (§B.7), for the unified `http_status`.
ERROR_HTTP_STATUS = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
    "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
    "rate_limit_error": 429, "api_error": 500, "timeout_error": 504, "overloaded_error": 529,
}


def parse_result(obj: Any, line_no: int) -> ResultItem:
    """One results line (§B.6) classified. A line that is not a result at all raises
    ValueError, which the analyzer counts as unparseable."""
    if not isinstance(obj, dict) or not isinstance(obj.get("result"), dict):
        raise ValueError("not a message batch result line")
    custom_id = obj.get("custom_id") if isinstance(obj.get("custom_id"), str) else None
    result = obj["result"]
    kind = result.get("type")
    if kind == "succeeded":
        return _succeeded(custom_id, result.get("message"), line_no)
    if kind == "errored":
        return _errored(custom_id, result.get("error"), line_no)
    if kind == "canceled":
        return ResultItem(custom_id=custom_id, outcome=Outcome.NOT_RUN_CANCELLED, line_no=line_no)
    if kind == "expired":
        return ResultItem(custom_id=custom_id, outcome=Outcome.NOT_RUN_EXPIRED, line_no=line_no)
    return ResultItem(custom_id=custom_id, outcome=Outcome.UNKNOWN, line_no=line_no,
                      error_type=kind if isinstance(kind, str) else None)


def _succeeded(custom_id: str | None, message: Any, line_no: int) -> ResultItem:
    message = message if isinstance(message, dict) else {}
    model = message.get("model") if isinstance(message.get("model"), str) else None
    usage = usage_from_wire(message.get("usage"))
    if message.get("stop_reason") != "refusal":
        return ResultItem(custom_id=custom_id, outcome=Outcome.SUCCEEDED, line_no=line_no, model=model, usage=usage)
    # A refusal is a success on the wire (and billed), but the request must change.
    details = message.get("stop_details") if isinstance(message.get("stop_details"), dict) else {}
    explanation = details.get("explanation") or details.get("category")
    return ResultItem(
        custom_id=custom_id, outcome=Outcome.BLOCKED, line_no=line_no, model=model, usage=usage,
        error_type="refusal", error_message=str(explanation) if explanation else None,
    )


def _errored(custom_id: str | None, envelope: Any, line_no: int) -> ResultItem:
    envelope = envelope if isinstance(envelope, dict) else {}
    error = envelope.get("error") if isinstance(envelope.get("error"), dict) else {}
    error_type = error.get("type") if isinstance(error.get("type"), str) else None
    message = error.get("message")
    if error_type in REQUEST_ERROR_TYPES:
        outcome = Outcome.REQUEST_ERROR
    elif error_type in SERVER_ERROR_TYPES:
        outcome = Outcome.SERVER_ERROR
    else:
        outcome = Outcome.UNKNOWN  # a new error type: resending is the safer default
    return ResultItem(
        custom_id=custom_id, outcome=outcome, line_no=line_no,
        http_status=ERROR_HTTP_STATUS.get(error_type or ""), error_type=error_type,
        error_message=message if isinstance(message, str) else None,
    )


def usage_from_wire(wire: Any) -> Usage | None:
    """Anthropic's `usage` in the unified columns (§F.3): `input` is the whole prompt,
    uncached + cache writes + cache reads."""
    if not isinstance(wire, dict):
        return None
    uncached = wire_count(wire.get("input_tokens")) or 0
    read = wire_count(wire.get("cache_read_input_tokens")) or 0
    split = wire.get("cache_creation") if isinstance(wire.get("cache_creation"), dict) else {}
    write_1h = wire_count(split.get("ephemeral_1h_input_tokens")) or 0
    write_5m = wire_count(split.get("ephemeral_5m_input_tokens")) or 0
    written = wire_count(wire.get("cache_creation_input_tokens"))
    written = write_5m + write_1h if written is None else written
    details = wire.get("output_tokens_details") if isinstance(wire.get("output_tokens_details"), dict) else {}
    return Usage(
        input=uncached + written + read,
        cached_input=read,
        cache_write=written,
        cache_write_1h=write_1h,
        output=wire_count(wire.get("output_tokens")) or 0,
        reasoning=wire_count(details.get("thinking_tokens")) or 0,
    )


def wire_count(value: Any) -> int | None:
    """A token or request count as sent: a non-negative int, else unknown (None)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
