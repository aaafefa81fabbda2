"""OpenAI batch lines: classifying a result line (PROVIDERS.md §A.8, §F.3), its token usage
(§A.9), and checking an input line before anything is sent (§A.7)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from batchtui.core.models import Outcome, Usage
from batchtui.core.results import Classified, ResultLineParser, UsageCounts, usage_from_counts

# Error-file codes of requests that never ran.
_NOT_RUN = {
    "batch_expired": Outcome.NOT_RUN_EXPIRED,
    "batch_cancelled": Outcome.NOT_RUN_CANCELLED,
    "batch_canceled": Outcome.NOT_RUN_CANCELLED,  # spelling used by some clones
}
# Enum members as module constants: Outcome.X is an attribute lookup per line otherwise.
_SUCCEEDED, _BLOCKED, _UNKNOWN = Outcome.SUCCEEDED, Outcome.BLOCKED, Outcome.UNKNOWN
_REQUEST_ERROR, _SERVER_ERROR = Outcome.REQUEST_ERROR, Outcome.SERVER_ERROR


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def usage_of(raw: object) -> Usage | None:
    """chat/completions (`prompt_tokens`...), responses (`input_tokens`...) and embeddings
    (`prompt_tokens` only) usage, in the unified columns of §F.3."""
    counts = usage_counts_of(raw)
    return None if counts is None else usage_from_counts(counts)


def usage_counts_of(raw: object) -> UsageCounts | None:
    """`usage_of` as a plain tuple (the analyzer's hot path: `_int` is inlined as
    `n if type(n) is int` for the usual plain int)."""
    if not isinstance(raw, dict):
        return None
    get = raw.get
    if "input_tokens" in raw or "output_tokens" in raw:
        names = ("input_tokens", "input_tokens_details", "output_tokens", "output_tokens_details")
    elif "prompt_tokens" in raw or "completion_tokens" in raw:
        names = ("prompt_tokens", "prompt_tokens_details", "completion_tokens", "completion_tokens_details")
    else:
        return None
    n = get(names[0])
    prompt = n if type(n) is int else _int(n)
    n = get(names[2])
    output = n if type(n) is int else _int(n)
    inp = get(names[1])
    if isinstance(inp, dict):
        n = inp.get("cached_tokens")
        cached = n if type(n) is int else _int(n)
        n = inp.get("cache_write_tokens")
        written = n if type(n) is int else _int(n)
    else:
        cached = written = 0
    out = get(names[3])
    reasoning = _int(out.get("reasoning_tokens")) if isinstance(out, dict) else 0
    return (prompt, cached, written, 0, output, reasoning)


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


def classify_result_line(obj: Any) -> Classified:
    """Classify one output- or error-file line, in the order of §A.8: a top-level `error`
    means the request never ran; else the HTTP status decides. Having a body is never
    taken as success. Every field read here is named in `_Line` below. (Written for speed:
    it runs once per line of a 200 MB file.)"""
    if not isinstance(obj, dict):
        raise TypeError("a result line must be a JSON object")
    custom_id = obj.get("custom_id")
    if not isinstance(custom_id, str):
        custom_id = None
    error = obj.get("error")
    if error is not None:
        err = _dict(error)
        code = _text(err.get("code"))
        message = _text(err.get("message")) or (error if isinstance(error, str) else None)
        return (custom_id, _NOT_RUN.get(code or "", _UNKNOWN), None, code, message, None, None)
    response = obj.get("response")
    if not isinstance(response, dict):
        return (custom_id, _UNKNOWN, None, None, "the line has neither a response nor an error", None, None)
    status = response.get("status_code")
    if not isinstance(status, int) or isinstance(status, bool):
        status = None
    body = _dict(response.get("body"))
    model = body.get("model")
    if not isinstance(model, str):
        model = None
    usage = usage_counts_of(body.get("usage"))
    if status is not None and 200 <= status < 300:
        refused = _refusal(body)
        if refused is not None:
            return (custom_id, _BLOCKED, status, refused[0], refused[1], model, usage)
        return (custom_id, _SUCCEEDED, status, None, None, model, usage)
    if status is not None and 400 <= status < 600:
        err = _dict(body.get("error"))
        code = err.get("code")
        error_type = code if isinstance(code, str) and code else _text(err.get("type"))
        outcome = _REQUEST_ERROR if status < 500 else _SERVER_ERROR
        return (custom_id, outcome, status, error_type, _text(err.get("message")), model, usage)
    # status_code 0 with an empty body (observed, ellmer#830) or anything else odd: we do
    # not know what happened, and a retry is the safe default for it.
    return (custom_id, _UNKNOWN, status, f"status_code_{status}" if status is not None else None,
            f"the provider gave status_code {status!r} and no error", model, usage)


# The common line, a plain 2xx answer, for the analyzer's fast path: only the fields its
# outcome and usage need (not the answer itself), typed with `_int`'s rules so msgspec checks
# them. Anything else (an error, a refusal, a null count) takes `classify_result_line`.
class _TokenDetails(msgspec.Struct):
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


class _Usage(msgspec.Struct):
    # UNSET keeps "absent" apart from 0: which names are present picks the usage shape.
    input_tokens: int | msgspec.UnsetType = msgspec.UNSET
    output_tokens: int | msgspec.UnsetType = msgspec.UNSET
    input_tokens_details: _TokenDetails | None = None
    output_tokens_details: _TokenDetails | None = None
    prompt_tokens: int | msgspec.UnsetType = msgspec.UNSET
    completion_tokens: int | msgspec.UnsetType = msgspec.UNSET
    prompt_tokens_details: _TokenDetails | None = None
    completion_tokens_details: _TokenDetails | None = None


class _ChoiceMessage(msgspec.Struct):
    refusal: str | None = None


class _Choice(msgspec.Struct):
    message: _ChoiceMessage | None = None
    finish_reason: str | None = None


class _Part(msgspec.Struct):
    type: str | None = None


class _OutputItem(msgspec.Struct):
    content: list[_Part] | None = None


class _Incomplete(msgspec.Struct):
    reason: str | None = None


class _Body(msgspec.Struct):
    model: str | None = None
    usage: _Usage | None = None
    choices: list[_Choice] | None = None
    output: list[_OutputItem] | None = None
    incomplete_details: _Incomplete | None = None


class _Response(msgspec.Struct):
    status_code: int
    body: _Body | None = None


class _CommonLine(msgspec.Struct):
    response: _Response
    custom_id: str | None = None
    error: None = None


def _classify_common(line: _CommonLine) -> Classified | None:
    status, body = line.response.status_code, line.response.body
    if not 200 <= status < 300 or body is None:
        return None
    for choice in body.choices or ():
        if (choice.message is not None and choice.message.refusal) or choice.finish_reason == "content_filter":
            return None
    for item in body.output or ():
        for part in item.content or ():
            if part.type == "refusal":
                return None
    if body.incomplete_details is not None and body.incomplete_details.reason == "content_filter":
        return None
    return (line.custom_id, _SUCCEEDED, status, None, None, body.model, _common_usage(body.usage))


def _common_usage(u: _Usage | None) -> UsageCounts | None:
    unset = msgspec.UNSET
    if u is None:
        return None
    if u.input_tokens is not unset or u.output_tokens is not unset:
        total, out, inp, details = u.input_tokens, u.output_tokens, u.input_tokens_details, u.output_tokens_details
    elif u.prompt_tokens is not unset or u.completion_tokens is not unset:
        total, out, inp, details = (u.prompt_tokens, u.completion_tokens, u.prompt_tokens_details,
                                    u.completion_tokens_details)
    else:
        return None
    return (0 if total is unset else total, 0 if inp is None else inp.cached_tokens,
            0 if inp is None else inp.cache_write_tokens, 0, 0 if out is unset else out,
            0 if details is None else details.reasoning_tokens)


parse_result_line = ResultLineParser(classify_result_line, _CommonLine, _classify_common)
"""`parse_result_line(obj, line_no) -> ResultItem`, with the analyzer's fast path attached."""


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
