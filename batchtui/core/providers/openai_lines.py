"""OpenAI batch lines: classifying a result line (PROVIDERS.md §A.8, §F.3), its token usage
(§A.9), and checking an input line before anything is sent (§A.7)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from batchtui.core.models import Outcome, ResultItem, Usage

# Error-file codes of requests that never ran.
_NOT_RUN = {
    "batch_expired": Outcome.NOT_RUN_EXPIRED,
    "batch_cancelled": Outcome.NOT_RUN_CANCELLED,
    "batch_canceled": Outcome.NOT_RUN_CANCELLED,  # spelling used by some clones
}


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def usage_of(raw: object) -> Usage | None:
    """chat/completions (`prompt_tokens`...), responses (`input_tokens`...) and embeddings
    (`prompt_tokens` only) usage, in the unified columns of §F.3."""
    if not isinstance(raw, dict):
        return None
    if "input_tokens" in raw or "output_tokens" in raw:
        inp, out = _dict(raw.get("input_tokens_details")), _dict(raw.get("output_tokens_details"))
        return Usage(
            input=_int(raw.get("input_tokens")),
            cached_input=_int(inp.get("cached_tokens")),
            cache_write=_int(inp.get("cache_write_tokens")),
            output=_int(raw.get("output_tokens")),
            reasoning=_int(out.get("reasoning_tokens")),
        )
    if "prompt_tokens" in raw or "completion_tokens" in raw:
        inp, out = _dict(raw.get("prompt_tokens_details")), _dict(raw.get("completion_tokens_details"))
        return Usage(
            input=_int(raw.get("prompt_tokens")),
            cached_input=_int(inp.get("cached_tokens")),
            cache_write=_int(inp.get("cache_write_tokens")),
            output=_int(raw.get("completion_tokens")),
            reasoning=_int(out.get("reasoning_tokens")),
        )
    return None


def _refusal(body: dict[str, Any]) -> tuple[str, str | None] | None:
    """(kind, message) when a 2xx answer is a refusal or a content-filter stop."""
    for choice in body.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        refusal = _text(_dict(choice.get("message")).get("refusal"))
        if refusal:
            return "refusal", refusal
        if choice.get("finish_reason") == "content_filter":
            return "content_filter", "the answer was stopped by the content filter"
    for item in body.get("output") or ():  # responses: a refusal content part
        for part in _dict(item).get("content") or ():
            if _dict(part).get("type") == "refusal":
                return "refusal", _text(part.get("refusal")) or "refused"
    if _dict(body.get("incomplete_details")).get("reason") == "content_filter":
        return "content_filter", "the answer was stopped by the content filter"
    return None


def parse_result_line(obj: Any, line_no: int) -> ResultItem:
    """Classify one output- or error-file line, in the order of §A.8: a top-level `error`
    means the request never ran; else the HTTP status decides. Having a body is never
    taken as success."""
    if not isinstance(obj, dict):
        raise TypeError("a result line must be a JSON object")
    custom_id = _text(obj.get("custom_id"))
    error = obj.get("error")
    if error is not None:
        err = _dict(error)
        code = _text(err.get("code"))
        message = _text(err.get("message")) or (error if isinstance(error, str) else None)
        return ResultItem(custom_id=custom_id, outcome=_NOT_RUN.get(code or "", Outcome.UNKNOWN),
                          line_no=line_no, error_type=code, error_message=message)
    response = obj.get("response")
    if not isinstance(response, dict):
        return ResultItem(custom_id=custom_id, outcome=Outcome.UNKNOWN, line_no=line_no,
                          error_message="the line has neither a response nor an error")
    status = response.get("status_code")
    status = status if isinstance(status, int) and not isinstance(status, bool) else None
    body = _dict(response.get("body"))
    model = _text(body.get("model"))
    usage = usage_of(body.get("usage"))
    common = dict(custom_id=custom_id, line_no=line_no, http_status=status, model=model, usage=usage)
    if status is not None and 200 <= status < 300:
        refused = _refusal(body)
        if refused is not None:
            return ResultItem(outcome=Outcome.BLOCKED, error_type=refused[0], error_message=refused[1], **common)
        return ResultItem(outcome=Outcome.SUCCEEDED, **common)
    if status is not None and 400 <= status < 600:
        err = _dict(body.get("error"))
        code = err.get("code")
        error_type = code if isinstance(code, str) and code else _text(err.get("type"))
        outcome = Outcome.REQUEST_ERROR if status < 500 else Outcome.SERVER_ERROR
        return ResultItem(outcome=outcome, error_type=error_type, error_message=_text(err.get("message")), **common)
    # status_code 0 with an empty body (observed, ellmer#830) or anything else odd: we do
    # not know what happened, and a retry is the safe default for it.
    return ResultItem(outcome=Outcome.UNKNOWN, error_type=f"status_code_{status}" if status is not None else None,
                      error_message=f"the provider gave status_code {status!r} and no error", **common)


def validate_line(obj: Any, endpoints: Iterable[str]) -> str | None:
    """What is wrong with one input line, or None (§A.7). Cross-line rules (duplicate ids,
    one url and one model per file) are checked over the whole file by the caller."""
    if not isinstance(obj, dict):
        return "a line must be a JSON object"
    custom_id = obj.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return "custom_id must be a non-empty string"
    if obj.get("method") != "POST":
        return 'method must be "POST"'
    url = obj.get("url")
    allowed = tuple(endpoints)
    if url not in allowed:
        return f"url must be one of {', '.join(allowed)} (got {url!r})"
    body = obj.get("body")
    if not isinstance(body, dict):
        return "body must be a JSON object"
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return "body.model must be a non-empty string"
    if body.get("stream") is True:
        return "body.stream: true is not allowed in a batch"
    return None
