"""The output and error files of a simulated OpenAI batch (PROVIDERS.md §A.8, §A.9).

Everything is drawn from generators fixed by the batch id (`SimBatch.rng`), so a file has
the same bytes on every read and in every run with the same seed.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable, Iterator
from typing import Any

from batchtui.sim.world import (
    BLOCKED,
    CANCELLED,
    EXPIRED,
    OK,
    REQUEST_ERROR,
    PlannedRequest,
    SimBatch,
    reply_text,
    token_usage,
)

# The status_code-0 quirk (ellmer#830): SimBatch.extra[STATUS_ZERO] = n turns n successful
# requests into `{"status_code": 0, "body": {}}` error-file lines still counted as completed.
STATUS_ZERO = "status_code_zero"
QUIRK = "status_zero"

EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."
CANCELLED_MESSAGE = "This request was cancelled before it could be executed."

# Dated snapshots the simulator answers with (a response's `model` is the snapshot, §A.9).
SNAPSHOTS = {
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "gpt-5-nano": "gpt-5-nano-2025-08-07",
    "gpt-5.4": "gpt-5.4-2026-03-05",
    "gpt-5.4-mini": "gpt-5.4-mini-2026-03-05",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
}
_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")

_ANSWERS = (
    "The customer received a damaged device and wants a replacement before Friday.",
    "negative",
    '{"invoice": "INV-2026-0193", "total": "1240.00", "currency": "EUR", "due": "2026-04-02"}',
    "Launch moved to May; Priya owns the rollout checklist.",
    "B",
    "People: Priya. Organizations: none. Places: none.",
    "Something went wrong while saving your changes. Please try again in a minute.",
)
_REFUSAL = "I'm sorry, but I can't help with that request."

# 400 bodies the way the real endpoints word them (§A.8, kaapi-backend#723).
_REQUEST_ERRORS = (
    (400, "Unsupported value: 'temperature' does not support 0.2 with this model. "
          "Only the default (1) value is supported.", "invalid_request_error", "temperature", "unsupported_value"),
    (400, "This model's maximum context length is 128000 tokens. However, your messages resulted in 131406 "
          "tokens. Please reduce the length of the messages.", "invalid_request_error", "messages",
     "context_length_exceeded"),
    (400, "Invalid 'max_completion_tokens': integer below minimum value. Expected a value >= 1, but got 0 "
          "instead.", "invalid_request_error", "max_completion_tokens", "integer_below_min_value"),
    (400, "Invalid schema for response_format 'answer': 'required' is required to be supplied and to be an "
          "array including every key in properties.", "invalid_request_error", "response_format", None),
)
_SERVER_ERROR = (500, "The server had an error while processing your request. Sorry about that!",
                 "server_error", None, None)


def snapshot_name(model: str) -> str:
    if _DATED.search(model) or model.startswith(("text-embedding", "omni-moderation")):
        return model  # already a snapshot, or a model family without dated snapshots
    return SNAPSHOTS.get(model, f"{model}-2026-01-15")


def _alnum(rng, n: int) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits, k=n))


def _usage(batch: SimBatch, request: PlannedRequest, endpoint: str) -> dict[str, Any]:
    u = token_usage(batch, request)
    if endpoint == "/v1/embeddings":
        return {"prompt_tokens": u["input"], "total_tokens": u["input"]}
    if endpoint == "/v1/responses":
        inp: dict[str, int] = {"cached_tokens": u["cached"]}
        if u["cache_write"]:
            inp["cache_write_tokens"] = u["cache_write"]
        return {"input_tokens": u["input"], "input_tokens_details": inp, "output_tokens": u["output"],
                "output_tokens_details": {"reasoning_tokens": u["reasoning"]},
                "total_tokens": u["input"] + u["output"]}
    prompt: dict[str, int] = {"cached_tokens": u["cached"], "audio_tokens": 0}
    if u["cache_write"]:
        prompt["cache_write_tokens"] = u["cache_write"]
    return {"prompt_tokens": u["input"], "completion_tokens": u["output"], "total_tokens": u["input"] + u["output"],
            "prompt_tokens_details": prompt,
            "completion_tokens_details": {"reasoning_tokens": u["reasoning"], "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def batch_usage(batch: SimBatch, finished: Iterable[tuple[PlannedRequest, str]], endpoint: str) -> dict[str, Any]:
    """`Batch.usage`: the sum over requests that produced an answer (billed ones)."""
    total = {"input": 0, "cached": 0, "output": 0, "reasoning": 0}
    quirks = quirk_indexes(batch)
    for request, outcome in finished:
        if outcome in (OK, BLOCKED) and request.index not in quirks:
            u = token_usage(batch, request)
            total["input"] += u["input"]
            total["cached"] += u["cached"]
            if endpoint != "/v1/embeddings":
                total["output"] += u["output"]
                total["reasoning"] += u["reasoning"]
    return {"input_tokens": total["input"], "input_tokens_details": {"cached_tokens": total["cached"]},
            "output_tokens": total["output"], "output_tokens_details": {"reasoning_tokens": total["reasoning"]},
            "total_tokens": total["input"] + total["output"]}


def _success_body(batch: SimBatch, request: PlannedRequest, endpoint: str, blocked: bool) -> dict[str, Any]:
    rng = batch.rng("body", request.index)
    created = int(batch.started_at + request.finish_after)
    model = snapshot_name(batch.model)
    usage = _usage(batch, request, endpoint)
    if endpoint == "/v1/embeddings":
        vector = [round(rng.uniform(-0.08, 0.08), 8) for _ in range(16)]
        return {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": vector}],
                "model": model, "usage": usage}
    answer = reply_text(batch, rng, _ANSWERS)
    if endpoint == "/v1/responses":
        part = ({"type": "refusal", "refusal": _REFUSAL} if blocked
                else {"type": "output_text", "text": answer, "annotations": []})
        return {"id": "resp_" + "%048x" % rng.getrandbits(192), "object": "response", "created_at": created,
                "status": "completed", "model": model, "incomplete_details": None,
                "output": [{"type": "message", "id": "msg_" + "%048x" % rng.getrandbits(192),
                            "status": "completed", "role": "assistant", "content": [part]}],
                "usage": usage}
    message = {"role": "assistant", "content": None if blocked else answer,
               "refusal": _REFUSAL if blocked else None, "annotations": []}
    return {"id": "chatcmpl-" + _alnum(rng, 29), "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
            "usage": usage, "service_tier": "default", "system_fingerprint": None}


def _line(batch: SimBatch, request: PlannedRequest, response: dict | None, error: dict | None) -> bytes:
    rng = batch.rng("line", request.index)
    obj = {"id": "batch_req_" + "%032x" % rng.getrandbits(128), "custom_id": request.custom_id,
           "response": response, "error": error}
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": ")).encode() + b"\n"


def result_line(batch: SimBatch, request: PlannedRequest, outcome: str, endpoint: str) -> bytes:
    request_id = "req_" + "%032x" % batch.rng("request_id", request.index).getrandbits(128)
    if outcome == EXPIRED:
        return _line(batch, request, None, {"code": "batch_expired", "message": EXPIRED_MESSAGE})
    if outcome == CANCELLED:
        return _line(batch, request, None, {"code": "batch_cancelled", "message": CANCELLED_MESSAGE})
    if outcome == QUIRK:
        return _line(batch, request, {"status_code": 0, "request_id": "", "body": {}}, None)
    if outcome in (OK, BLOCKED):
        body = _success_body(batch, request, endpoint, blocked=outcome == BLOCKED)
        return _line(batch, request, {"status_code": 200, "request_id": request_id, "body": body}, None)
    if outcome == REQUEST_ERROR:
        status, message, kind, param, code = batch.rng("error", request.index).choice(_REQUEST_ERRORS)
    else:
        status, message, kind, param, code = _SERVER_ERROR
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return _line(batch, request, {"status_code": status, "request_id": request_id, "body": body}, None)


def quirk_indexes(batch: SimBatch) -> frozenset[int]:
    n = int(batch.extra.get(STATUS_ZERO, 0) or 0)
    if n <= 0:
        return frozenset()
    planned_ok = [r.index for r in batch.requests if r.outcome == OK]
    return frozenset(batch.rng("quirk").sample(planned_ok, min(n, len(planned_ok))))


def split_outcomes(batch: SimBatch, outcomes: list[tuple[PlannedRequest, str]]) -> tuple[list, list]:
    """(output-file entries, error-file entries), each (request, outcome), in input order."""
    quirks = quirk_indexes(batch)
    output, errors = [], []
    for request, outcome in outcomes:
        if outcome == OK and request.index in quirks:
            errors.append((request, QUIRK))
        elif outcome in (OK, BLOCKED):
            output.append((request, outcome))
        else:
            errors.append((request, outcome))
    return output, errors


def render_file(batch: SimBatch, entries: list[tuple[PlannedRequest, str]], endpoint: str, kind: str) -> bytes:
    """A result file; line order is shuffled (OpenAI does not keep input order, §A.8)."""
    return b"".join(file_lines(batch, entries, endpoint, kind))


def file_lines(batch: SimBatch, entries: list[tuple[PlannedRequest, str]], endpoint: str,
               kind: str) -> Iterator[bytes]:
    """The lines of `render_file` one at a time (a huge file is written to disk this way)."""
    order = list(entries)
    batch.rng("order", kind).shuffle(order)
    for request, outcome in order:
        yield result_line(batch, request, outcome, endpoint)


def counted(outcome: str) -> str:
    """Which request_counts bucket an outcome lands in. Not-run requests count as failed so
    that completed + failed = total at the end (§A.6); the quirk stays in completed."""
    return "completed" if outcome in (OK, BLOCKED) else "failed"

