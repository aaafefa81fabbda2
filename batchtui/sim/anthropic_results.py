"""The results file of a simulated Anthropic batch (PROVIDERS.md §B.6): one JSON line per
request, in a seeded shuffled order, the same bytes on every read.

Each line is rendered from the world's plan: OK -> a succeeded `Message`, BLOCKED -> a
succeeded `Message` stopped by a refusal, REQUEST_ERROR / SERVER_ERROR -> `errored`, and the
requests the batch never ran -> `canceled` / `expired`.
"""

from __future__ import annotations

import json
import random
import re
import string
from collections import Counter
from collections.abc import Iterator
from typing import Any

from batchtui.sim.world import (
    BLOCKED,
    CANCELLED,
    EXPIRED,
    OK,
    REQUEST_ERROR,
    SERVER_ERROR,
    PlannedRequest,
    SimBatch,
    reply_text,
    token_usage,
)

_CACHE_KEY = "anthropic_results"
_ALNUM = string.ascii_letters + string.digits

# Aliases and the dated ids the API answers with in `message.model` (the resolved model).
DATED_MODELS = {
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-opus-4-5": "claude-opus-4-5-20251101",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-sonnet-4": "claude-sonnet-4-20250514",
    "claude-opus-4-0": "claude-opus-4-20250514",
    "claude-opus-4": "claude-opus-4-20250514",
    "claude-3-7-sonnet-latest": "claude-3-7-sonnet-20250219",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
}
_DATED = re.compile(r"-\d{8}$")

# Per-model output ceilings, for the realistic "max_tokens too large" message.
_OUTPUT_CAP = {"haiku": 64_000, "sonnet": 64_000, "opus": 32_000}

_REPLIES = (
    "billing/invoice",
    "bug/crash",
    "The customer asks for a refund of the duplicate charge from 12 March.",
    "Positive. The reviewer praises the battery life but finds the case flimsy.",
    "1. Restart the router.\n2. Check the cable.\n3. Call support if the light stays red.",
    "Résumé : le client souhaite changer l'adresse de livraison.",
    "Not enough information to classify; the ticket is empty apart from a signature.",
)


def dated_model(model: str) -> str:
    """The resolved id of a requested model; unknown names come back unchanged (we do not
    invent release dates)."""
    if _DATED.search(model):
        return model
    return DATED_MODELS.get(model, model)


def final_tally(batch: SimBatch, now: float) -> Counter | None:
    """`request_counts` once the batch has ended (None before): the wire's five buckets."""
    finals = batch.final_outcomes(now)
    if finals is None:
        return None
    wire = {OK: "succeeded", BLOCKED: "succeeded", REQUEST_ERROR: "errored", SERVER_ERROR: "errored",
            CANCELLED: "canceled", EXPIRED: "expired"}
    return Counter(wire[outcome] for _, outcome in finals)


def results_bytes(batch: SimBatch, now: float) -> bytes | None:
    """The whole JSONL file of an ended batch (None before it ends)."""
    cached = batch.extra.get(_CACHE_KEY)
    if cached is not None:
        return cached
    finals = batch.final_outcomes(now)
    if finals is None:
        return None
    data = b"".join(result_lines(batch, finals))
    batch.extra[_CACHE_KEY] = data  # an ended batch never changes
    return data


def result_lines(batch: SimBatch, finals: list[tuple[PlannedRequest, str]]) -> Iterator[bytes]:
    """The lines of the results file one at a time (a huge file is written to disk this way)."""
    order = list(range(len(finals)))
    # Anthropic does not keep request order (§B.6): neither do we, but the same way each read.
    batch.rng("results-order").shuffle(order)
    for index in order:
        request, outcome = finals[index]
        line = {"custom_id": request.custom_id, "result": result_of(batch, request, outcome)}
        yield (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def result_of(batch: SimBatch, request: PlannedRequest, outcome: str) -> dict[str, Any]:
    rng = batch.rng("result", request.index)
    params = _params(request)
    model = dated_model(str(params.get("model") or batch.model))
    if outcome in (OK, BLOCKED):
        return {"type": "succeeded", "message": _message(batch, request, rng, params, model, outcome == BLOCKED)}
    if outcome == REQUEST_ERROR:
        return _errored("invalid_request_error", _invalid_request_message(rng, model), _request_id(rng))
    if outcome == SERVER_ERROR:
        if rng.random() < 0.5:
            return _errored("overloaded_error", "Overloaded", _request_id(rng))
        return _errored("api_error", "Internal server error", None)
    if outcome == CANCELLED:
        return {"type": "canceled"}
    return {"type": "expired"}


def _params(request: PlannedRequest) -> dict[str, Any]:
    params = request.line.get("params") if isinstance(request.line, dict) else None
    return params if isinstance(params, dict) else {}


def _message(batch: SimBatch, request: PlannedRequest, rng: random.Random, params: dict[str, Any],
             model: str, refusal: bool) -> dict[str, Any]:
    thinking = isinstance(params.get("thinking"), dict) and params["thinking"].get("type") in ("enabled", "adaptive")
    usage = _usage(batch, request, rng, params, thinking=thinking, refusal=refusal)
    content: list[dict[str, Any]] = []
    if thinking and not refusal:
        content.append({"type": "thinking", "thinking": "The user wants a short, direct answer.",
                        "signature": "".join(rng.choices(_ALNUM, k=48))})
    stop_details = None
    if refusal:
        stop_reason = "refusal"
        stop_details = {"type": "refusal", "category": rng.choice(["cyber", "bio", None]),
                        "explanation": "The request was declined by a usage-policy classifier."}
    else:
        content.append({"type": "text", "text": reply_text(batch, rng, _REPLIES)})
        hit_cap = usage["output_tokens"] >= int(params.get("max_tokens") or 1 << 30)
        stop_reason = "max_tokens" if hit_cap else "end_turn"
    return {
        "id": "msg_01" + "".join(rng.choices(_ALNUM, k=22)),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "stop_details": stop_details,
        "usage": usage,
    }


def _usage(batch: SimBatch, request: PlannedRequest, rng: random.Random, params: dict[str, Any], *,
           thinking: bool, refusal: bool) -> dict[str, Any]:
    """The world's token counts in Anthropic's fields: `input_tokens` is only the uncached
    part, cache reads and writes are separate, and writes are sometimes partly at 1 h TTL."""
    tokens = token_usage(batch, request)
    read, write = tokens["cached"], tokens["cache_write"]
    one_hour = int(write * rng.uniform(0.3, 1.0)) if write and rng.random() < 0.5 else 0
    max_tokens = params.get("max_tokens")
    output = tokens["output"]
    if isinstance(max_tokens, int) and max_tokens > 0:
        output = min(output, max_tokens)
    if refusal:
        output = min(output, rng.randint(2, 24))
    usage: dict[str, Any] = {
        "input_tokens": max(tokens["input"] - read - write, 1),
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
        "cache_creation": {"ephemeral_5m_input_tokens": write - one_hour, "ephemeral_1h_input_tokens": one_hour},
        "output_tokens": output,
        "service_tier": "batch",
        "server_tool_use": None,
    }
    if thinking:
        usage["output_tokens_details"] = {"thinking_tokens": int(output * rng.uniform(0.3, 0.7))}
    return usage


def _errored(error_type: str, message: str, request_id: str | None) -> dict[str, Any]:
    return {"type": "errored",
            "error": {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}}


def _invalid_request_message(rng: random.Random, model: str) -> str:
    family = next((f for f in _OUTPUT_CAP if f in model), "sonnet")
    cap = _OUTPUT_CAP[family]
    choices = (
        f"max_tokens: {cap * 2} > {cap}, which is the maximum allowed number of output tokens for {model}",
        f"prompt is too long: {rng.randint(200_001, 240_000)} tokens > 200000 maximum",
        'messages: roles must alternate between "user" and "assistant", but found multiple "user" roles in a row',
        "messages.0.content.1.image.source.base64: The image was specified using the image/png media type, "
        "but the image appears to be a image/jpeg image",
        "messages: text content blocks must be non-empty",
        "temperature: range: 0..1",
    )
    return rng.choice(choices)


def _request_id(rng: random.Random) -> str:
    return "req_011" + "".join(rng.choices(_ALNUM, k=21))
