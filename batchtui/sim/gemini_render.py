"""The simulated Gemini batches in Google's wire shape (PROVIDERS.md §C.4, §C.6, §F.5 item 3).

Everything here is a pure function of a `SimBatch`, the clock and the seed, so each read of
the same batch at the same moment gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from batchtui.sim.world import (
    BLOCKED,
    CANCELLED,
    EXPIRED,
    OK,
    REQUEST_ERROR,
    SERVER_ERROR,
    Phase,
    SimBatch,
    SimFile,
    reply_text,
    token_usage,
)

BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
OUTPUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"

# Gemini has no finalizing or cancelling state of its own (PROVIDERS.md §F.1).
STATES = {
    Phase.VALIDATING: "BATCH_STATE_PENDING",
    Phase.RUNNING: "BATCH_STATE_RUNNING",
    Phase.FINALIZING: "BATCH_STATE_RUNNING",
    Phase.CANCELLING: "BATCH_STATE_RUNNING",
    Phase.COMPLETED: "BATCH_STATE_SUCCEEDED",
    Phase.FAILED: "BATCH_STATE_FAILED",
    Phase.EXPIRED: "BATCH_STATE_EXPIRED",
    Phase.CANCELLED: "BATCH_STATE_CANCELLED",
}

_ANSWERS = ("billing", "bug report", "feature request", "account access", "shipping", "other")
_REQUEST_ERRORS = (
    "Request contains an invalid argument.",
    "* GenerateContentRequest.contents: contents is not specified",
    "Unable to submit request because it has an empty text parameter.",
)


def timestamp(moment: float, salt: str = "") -> str:
    """RFC 3339 with nine fractional digits, as Google sends them.

    A float only holds microseconds, so the last three digits come from a hash: fixed for a
    given moment and salt, never all zeros like a padded value would be.
    """
    micros = round(moment * 1_000_000)
    seconds, micro = divmod(micros, 1_000_000)
    nanos = int(hashlib.sha256(f"{moment!r}:{salt}".encode()).hexdigest()[:6], 16) % 1000
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{micro:06d}{nanos:03d}Z"


def int64_fields(values: dict[str, int]) -> dict[str, str]:
    """int64 as strings, zero values left out (proto3 JSON)."""
    return {name: str(value) for name, value in values.items() if value}


def has_output(batch: SimBatch, phase: Phase) -> bool:
    # Only a SUCCEEDED batch has results: an EXPIRED one "will not have any" (§F.4), and the
    # simulator gives none for CANCELLED or FAILED either (unverified; the safe assumption).
    return phase is Phase.COMPLETED


def responses_file_id(batch: SimBatch) -> str:
    return "files/batch-" + batch.id.removeprefix("batches/")


def batch_stats(batch: SimBatch, now: float) -> dict[str, str]:
    snap = batch.snapshot(now)
    counts = snap.counts
    # A blocked answer is a successful response on the wire (it carries finishReason SAFETY).
    succeeded = counts[OK] + counts[BLOCKED]
    failed = counts[REQUEST_ERROR] + counts[SERVER_ERROR]
    # Stats freeze when a batch stops: what never ran stays "pending" (unverified).
    pending = snap.pending + counts[EXPIRED] + counts[CANCELLED]
    return int64_fields({"requestCount": len(batch.requests), "successfulRequestCount": succeeded,
                         "failedRequestCount": failed, "pendingRequestCount": pending})


def operation(batch: SimBatch, now: float, *, listed: bool = False) -> dict[str, Any]:
    """The batch as a google.longrunning Operation (`listed`: as the list call shows it)."""
    snap = batch.snapshot(now)
    phase = snap.phase
    updated = snap.ended_at or snap.started_at or batch.created_at
    meta: dict[str, Any] = {
        "@type": BATCH_TYPE,
        "model": "models/" + batch.model,
        "displayName": batch.display_name or "",
    }
    if batch.input_file_id:
        meta["inputConfig"] = {"fileName": batch.input_file_id}  # inline requests are not echoed
    output = None
    if has_output(batch, phase):
        if batch.inline:
            if not listed:  # the list call leaves inline responses out (cookbook)
                output = {"inlinedResponses": {"inlinedResponses": inline_responses(batch)}}
        else:
            output = {"responsesFile": responses_file_id(batch)}
    if output is not None:
        meta["output"] = output
    meta["createTime"] = timestamp(batch.created_at, batch.id)
    if snap.ended_at is not None:
        meta["endTime"] = timestamp(snap.ended_at, batch.id)
    meta["updateTime"] = timestamp(updated, batch.id)
    meta["batchStats"] = batch_stats(batch, now)
    meta["state"] = STATES[phase]
    meta["name"] = batch.id
    op: dict[str, Any] = {"name": batch.id, "metadata": meta}
    if phase.terminal:
        op["done"] = True  # left out (false) until then
        if phase is Phase.FAILED:
            failure = batch.plan.batch_failure or {}
            op["error"] = {"code": int(failure.get("code", 13)),
                           "message": str(failure.get("message", "Internal error encountered."))}
        elif output is not None:
            op["response"] = {"@type": OUTPUT_TYPE, **output}
    return op


# -- one request's result ------------------------------------------------------------------


def _usage(batch: SimBatch, index: int, *, answered: bool) -> dict[str, Any]:
    usage = token_usage(batch, batch.requests[index])
    prompt = usage["input"]
    out = {"promptTokenCount": prompt}
    if answered:
        # candidatesTokenCount leaves thinking out; it has its own field.
        candidates = usage["output"] - usage["reasoning"]
        out["candidatesTokenCount"] = candidates
        out["totalTokenCount"] = prompt + candidates + usage["reasoning"]
        if usage["cached"]:
            out["cachedContentTokenCount"] = usage["cached"]
        out["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
        if usage["cached"]:
            out["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": usage["cached"]}]
        if usage["reasoning"]:
            out["thoughtsTokenCount"] = usage["reasoning"]
    else:
        out["totalTokenCount"] = prompt
        out["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    return out


def _safety(blocked: str) -> list[dict[str, Any]]:
    ratings = []
    for category in ("HARM_CATEGORY_HATE_SPEECH", "HARM_CATEGORY_DANGEROUS_CONTENT",
                     "HARM_CATEGORY_HARASSMENT", "HARM_CATEGORY_SEXUALLY_EXPLICIT"):
        hit = category == blocked
        rating = {"category": category, "probability": "HIGH" if hit else "NEGLIGIBLE"}
        if hit:
            rating["blocked"] = True
        ratings.append(rating)
    return ratings


def result_body(batch: SimBatch, index: int, outcome: str) -> tuple[str, dict[str, Any]]:
    """("response" | "error", body) for one request's final outcome."""
    rng = batch.rng("result", index)
    response_id = "".join(rng.choices(string.ascii_letters + string.digits, k=22))
    if outcome == REQUEST_ERROR:
        return "error", {"code": 400, "message": rng.choice(_REQUEST_ERRORS), "status": "INVALID_ARGUMENT"}
    if outcome == SERVER_ERROR:
        if rng.random() < 0.5:
            return "error", {"code": 500, "message": "An internal error has occurred. Please retry or report "
                                                     "in https://developers.generativeai.google/guide/troubleshooting",
                             "status": "INTERNAL"}
        return "error", {"code": 503, "message": "The model is overloaded. Please try again later.",
                         "status": "UNAVAILABLE"}
    if outcome == BLOCKED:
        category = "HARM_CATEGORY_DANGEROUS_CONTENT"
        if rng.random() < 0.5:  # blocked on the way out: a candidate stopped for safety
            body = {"candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": _safety(category)}]}
        else:  # blocked on the way in: no candidate at all
            body = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": _safety(category)}}
        body.update(usageMetadata=_usage(batch, index, answered=False), modelVersion=batch.model,
                    responseId=response_id)
        return "response", body
    text = reply_text(batch, rng, _ANSWERS)
    return "response", {
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP",
                        "index": 0}],
        "usageMetadata": _usage(batch, index, answered=True),
        "modelVersion": batch.model,
        "responseId": response_id,
    }


def _final(batch: SimBatch) -> list[tuple[int, str]]:
    # Only called once the batch has output, i.e. it has ended; until then nothing is final.
    outcomes = batch.final_outcomes(float("inf")) or []
    return [(request.index, outcome) for request, outcome in outcomes]


def inline_responses(batch: SimBatch) -> list[dict[str, Any]]:
    """In request order, each with the request's metadata echoed back."""
    out = []
    for index, outcome in _final(batch):
        field, body = result_body(batch, index, outcome)
        item: dict[str, Any] = {field: body}
        metadata = batch.requests[index].line.get("metadata")
        if metadata is not None:
            item["metadata"] = metadata
        out.append(item)
    return out


def results_file(batch: SimBatch) -> bytes:
    """The generated responses file: one `{"key", "response"|"error"}` line per request, in order."""
    return b"".join(results_lines(batch))


def results_lines(batch: SimBatch) -> Iterator[bytes]:
    """The lines of `results_file` one at a time (a huge file is written to disk this way)."""
    for index, outcome in _final(batch):
        field, body = result_body(batch, index, outcome)
        line = {"key": batch.requests[index].custom_id, field: body}
        yield json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def file_resource(f: SimFile, host: str, *, source: str) -> dict[str, Any]:
    """A File resource (§C.2). `host` is where the simulator was reached, for the URIs."""
    name = f.id.removeprefix("files/")
    out: dict[str, Any] = {
        "name": f.id,
        "displayName": f.filename,
        "mimeType": "application/jsonl" if source == "UPLOADED" else "application/json",
        "sizeBytes": str(f.size()),
        "createTime": timestamp(f.created_at, f.id),
        "updateTime": timestamp(f.created_at, f.id),
        "uri": f"{host}/v1beta/files/{name}",
        "state": "ACTIVE",
        "source": source,
    }
    if f.expires_at is not None:
        out["expirationTime"] = timestamp(f.expires_at, f.id)
    if f.downloadable:
        out["downloadUri"] = f"{host}/download/v1beta/files/{name}:download?alt=media"
    return out
