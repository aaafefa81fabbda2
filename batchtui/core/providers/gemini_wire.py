"""Gemini API wire objects into batchtui's vocabulary (PROVIDERS.md §C, §F).

Pure functions, no HTTP: an `Operation` (from get, list or create) becomes a `Batch`, and one
result line (file mode) becomes a `ResultItem`. Kept apart from the client so the rules can
be read, and tested, on hand-written wire objects.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from batchtui.core.errors import ProtocolError
from batchtui.core.models import (
    Batch,
    BatchError,
    Outcome,
    Provider,
    RequestCounts,
    ResultFile,
    Status,
    Usage,
)
from batchtui.core.providers.base import TOKEN_KEY
from batchtui.core.results import Classified, ResultLineParser, UsageCounts, usage_from_counts
from batchtui.core.timeparse import parse_time

# Gemini says a batch expires after 48 h pending or running; the resource carries no expiry
# time, so ours is derived from createTime.
EXPIRES_AFTER = timedelta(hours=48)

INLINE_REF = "inline"  # ResultFile.ref of results that live in the Operation, not a file

# Our create token rides in the displayName, the only free text Gemini keeps on a batch.
TOKEN_TAG = re.compile(r"\[bt:([A-Za-z0-9_-]{1,64})\]")

# BATCH_STATE_* (Gemini API) and JOB_STATE_* (the SDK's names, Vertex) share these suffixes.
_STATES = {
    "UNSPECIFIED": Status.VALIDATING,
    "PENDING": Status.VALIDATING,
    "QUEUED": Status.VALIDATING,
    "RUNNING": Status.IN_PROGRESS,
    "UPDATING": Status.IN_PROGRESS,
    "PAUSED": Status.IN_PROGRESS,
    "SUCCEEDED": Status.COMPLETED,
    "PARTIALLY_SUCCEEDED": Status.COMPLETED,
    "FAILED": Status.FAILED,
    "CANCELLING": Status.CANCELLING,
    "CANCELLED": Status.CANCELLED,
    "EXPIRED": Status.EXPIRED,
}

# Per-request error codes. The results file may number them as HTTP statuses or as gRPC
# codes (PROVIDERS.md §G: unverified which), and the two ranges never overlap.
_GRPC_BY_STATUS = {
    "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
    "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
    "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}
_GRPC_OUTCOME = {
    1: Outcome.NOT_RUN_CANCELLED,
    2: Outcome.UNKNOWN,
    3: Outcome.REQUEST_ERROR, 5: Outcome.REQUEST_ERROR, 6: Outcome.REQUEST_ERROR, 7: Outcome.REQUEST_ERROR,
    9: Outcome.REQUEST_ERROR, 11: Outcome.REQUEST_ERROR, 12: Outcome.REQUEST_ERROR, 16: Outcome.REQUEST_ERROR,
    # Transient on Google's side: resending the same request may well work.
    4: Outcome.SERVER_ERROR, 8: Outcome.SERVER_ERROR, 10: Outcome.SERVER_ERROR, 13: Outcome.SERVER_ERROR,
    14: Outcome.SERVER_ERROR, 15: Outcome.SERVER_ERROR,
}

# A response stopped for one of these produced no usable answer: the prompt must change.
_INT64 = re.compile(r"-?[0-9]{1,19}")

# Enum members as module constants: Outcome.X is an attribute lookup per line otherwise.
_SUCCEEDED, _BLOCKED, _UNKNOWN = Outcome.SUCCEEDED, Outcome.BLOCKED, Outcome.UNKNOWN

BLOCK_REASONS = frozenset({"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_SAFETY", "OTHER"})


# -- batches ---------------------------------------------------------------------------------


def batch_id_of(name: str) -> str:
    """`batches/x` for both `batches/x` and `x` (what users paste from the SDK or our table)."""
    return name if name.startswith("batches/") else f"batches/{name}"


def token_of(display_name: str | None) -> str | None:
    match = TOKEN_TAG.search(display_name or "")
    return match.group(1) if match else None


def status_of(state: str | None, *, done: bool, has_error: bool) -> Status:
    suffix = (state or "").removeprefix("BATCH_STATE_").removeprefix("JOB_STATE_")
    if suffix in _STATES:
        return _STATES[suffix]
    # A state we do not know yet: the Operation's own `done` still says whether it ended.
    if done:
        return Status.FAILED if has_error else Status.COMPLETED
    return Status.IN_PROGRESS


def int64(value: Any) -> int | None:
    """Google's int64-as-string ("1200"); plain numbers too. None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    # ASCII digits only: str.isdigit() also accepts "²", which int() then refuses.
    if isinstance(value, str) and _INT64.fullmatch(value):
        return int(value)
    return None


def _time(value: Any) -> datetime | None:
    # Timestamps are untrusted text: one that will not parse is missing, never a crash.
    try:
        return parse_time(value)
    except (ValueError, OverflowError):
        return None


def counts_of(stats: Any, status: Status) -> RequestCounts:
    if not isinstance(stats, dict):
        return RequestCounts()  # nothing said: every count stays None, never a guessed 0
    # Zero-valued fields are left out on the wire, so inside a stats object missing means 0.
    total = int64(stats.get("requestCount")) or 0
    succeeded = int64(stats.get("successfulRequestCount")) or 0
    failed = int64(stats.get("failedRequestCount")) or 0
    pending = int64(stats.get("pendingRequestCount")) or 0
    expired = cancelled = None
    if status in (Status.EXPIRED, Status.CANCELLED):
        # Nothing is processing in a stopped batch: what never finished was not run. Counted
        # from the total so it holds whether Google keeps or drops pendingRequestCount then.
        not_run = max(total - succeeded - failed, pending, 0)
        pending = 0
        if status is Status.EXPIRED:
            expired = not_run
        else:
            cancelled = not_run
    return RequestCounts(total=total, succeeded=succeeded, failed=failed, expired=expired,
                         cancelled=cancelled, processing=pending, live=True)


def _output_of(op: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """The batch output, from `Operation.response` or (the same content) `metadata.output`."""
    for candidate in (op.get("response"), meta.get("output")):
        if isinstance(candidate, dict) and (candidate.get("responsesFile") or candidate.get("inlinedResponses")):
            return candidate
    return {}


def inlined_responses(op: dict[str, Any]) -> list[Any] | None:
    """The `inlinedResponses.inlinedResponses` list of an Operation, or None if it has none."""
    meta = op.get("metadata") if isinstance(op.get("metadata"), dict) else {}
    inlined = _output_of(op, meta).get("inlinedResponses")
    if isinstance(inlined, dict) and isinstance(inlined.get("inlinedResponses"), list):
        return inlined["inlinedResponses"]
    return None


def _result_files(op: dict[str, Any], meta: dict[str, Any], status: Status) -> tuple[ResultFile, ...]:
    output = _output_of(op, meta)
    if isinstance(output.get("responsesFile"), str):
        return (ResultFile(kind="results", ref=output["responsesFile"]),)
    if output.get("inlinedResponses") is not None:
        return (ResultFile(kind="results", ref=INLINE_REF),)
    # The list call leaves inline responses out. A succeeded batch without a responses file
    # answered inline, so its results are there: `download` fetches the full Operation.
    if status is Status.COMPLETED:
        return (ResultFile(kind="results", ref=INLINE_REF),)
    return ()


def _errors_of(op: dict[str, Any]) -> tuple[BatchError, ...]:
    error = op.get("error")
    if not isinstance(error, dict):
        return ()
    code = error.get("status") or error.get("code")
    return (BatchError(code=None if code is None else str(code), message=str(error.get("message") or "")),)


def _expiry(created: datetime) -> datetime | None:
    try:
        return created + EXPIRES_AFTER
    except OverflowError:  # a createTime at the very end of the calendar
        return None


def batch_from_operation(op: dict[str, Any], account: str) -> Batch:
    """One `Operation` (create, get or list entry) as a `Batch`. Unknown fields are ignored."""
    if not isinstance(op, dict):
        raise ProtocolError("a Gemini batch is not a JSON object", account=account)
    meta = op.get("metadata")
    if not isinstance(meta, dict):
        # Tolerate a bare GenerateContentBatch (no Operation around it).
        meta = op if "state" in op else {}
    name = op.get("name") or meta.get("name")
    if not isinstance(name, str) or not name:
        raise ProtocolError("a Gemini batch came without a name", account=account)
    state = meta.get("state") if isinstance(meta.get("state"), str) else ""
    status = status_of(state, done=op.get("done") is True, has_error=isinstance(op.get("error"), dict))
    # createTime is always sent; should it be missing, the other times (or the epoch) stand in
    # because every Batch needs a creation time to be sorted by.
    created = (_time(meta.get("createTime")) or _time(meta.get("updateTime"))
               or _time(meta.get("endTime")) or datetime.fromtimestamp(0, tz=UTC))
    display = meta.get("displayName") if isinstance(meta.get("displayName"), str) else None
    token = token_of(display)
    model = meta.get("model") if isinstance(meta.get("model"), str) else None
    input_config = meta.get("inputConfig") if isinstance(meta.get("inputConfig"), dict) else {}
    input_ref = input_config.get("fileName") or input_config.get("file_name")
    return Batch(
        account=account,
        provider=Provider.GEMINI,
        id=name,
        status=status,
        provider_status=state,
        created_at=created,
        ended_at=_time(meta.get("endTime")),
        expires_at=_expiry(created),
        model=model.removeprefix("models/") if model else None,
        counts=counts_of(meta.get("batchStats"), status),
        name=display,
        metadata={TOKEN_KEY: token} if token else {},
        input_ref=input_ref if isinstance(input_ref, str) else None,
        result_files=_result_files(op, meta, status),
        errors=_errors_of(op),
        raw=op,
    )


# -- result lines ----------------------------------------------------------------------------


def _count(value: Any) -> int:
    return int64(value) or 0


def usage_of(metadata: Any) -> Usage | None:
    counts = usage_counts_of(metadata)
    return None if counts is None else usage_from_counts(counts)


def usage_counts_of(metadata: Any) -> UsageCounts | None:
    """`usage_of` as a plain tuple (the analyzer's hot path: `_count` is inlined as
    `n if type(n) is int` for the usual plain int)."""
    if not isinstance(metadata, dict):
        return None
    get = metadata.get
    n = get("thoughtsTokenCount")
    thoughts = n if type(n) is int else _count(n)
    n = get("promptTokenCount")
    prompt = n if type(n) is int else _count(n)
    n = get("toolUsePromptTokenCount")
    prompt += n if type(n) is int else _count(n)
    n = get("cachedContentTokenCount")
    cached = n if type(n) is int else _count(n)
    n = get("candidatesTokenCount")
    # Thinking is billed as output, and candidatesTokenCount leaves it out.
    output = (n if type(n) is int else _count(n)) + thoughts
    return (prompt, cached, 0, 0, output, thoughts)


def error_outcome(code: Any, status: Any) -> Outcome:
    number = int64(code)
    if number is None and isinstance(status, str):
        number = _GRPC_BY_STATUS.get(status)
    if number is None:
        return Outcome.UNKNOWN
    if number < 100:
        return _GRPC_OUTCOME.get(number, Outcome.UNKNOWN)
    if number in (408, 429) or number >= 500:
        return Outcome.SERVER_ERROR
    if 400 <= number < 500:
        return Outcome.REQUEST_ERROR
    return Outcome.UNKNOWN


def _finish(candidate: dict[str, Any]) -> str | None:
    reason = candidate.get("finishReason")
    return reason if isinstance(reason, str) else None


def _block_reason(response: dict[str, Any]) -> tuple[str, str | None] | None:
    """(reason, message) when the response carries no answer because it was blocked."""
    feedback = response.get("promptFeedback")
    if isinstance(feedback, dict):
        reason = feedback.get("blockReason")
        if isinstance(reason, str) and reason and reason != "BLOCK_REASON_UNSPECIFIED":
            return reason, feedback.get("blockReasonMessage")
    listed = response.get("candidates")
    if not isinstance(listed, list):
        return None
    first = None
    for candidate in listed:
        if not isinstance(candidate, dict):
            continue
        # With several candidates, one blocked beside a good one is still an answer.
        if _finish(candidate) not in BLOCK_REASONS:
            return None
        if first is None:
            first = candidate
    if first is None:
        return None
    return first["finishReason"], first.get("finishMessage")


def classify_result_line(obj: Any) -> Classified:
    """One results-file line `{"key", "response"|"error"}` (PROVIDERS.md §C.6, §F.3). Every
    field read here is named in `_Line` below. (Written for speed: it runs once per line of a
    200 MB file.)"""
    if not isinstance(obj, dict):
        raise TypeError("a result line is a JSON object")
    key = obj.get("key")
    if not isinstance(key, str):
        metadata = obj.get("metadata")  # an inline response, should one be fed in as is
        key = metadata.get("key") if isinstance(metadata, dict) and isinstance(metadata.get("key"), str) else None
    error = obj.get("error")
    if isinstance(error, dict):
        code, status = error.get("code"), error.get("status")
        number = int64(code)
        message = error.get("message")
        return (
            key,
            error_outcome(code, status),
            number if number is not None and number >= 100 else None,
            str(status) if isinstance(status, str) and status else (str(code) if code is not None else None),
            message if isinstance(message, str) else None,
            None,
            None,
        )
    response = obj.get("response")
    if not isinstance(response, dict):
        # Neither an answer nor an error: keep the key so a retry can include it.
        return (key, _UNKNOWN, None, None, "a result line with neither response nor error", None, None)
    model = response.get("modelVersion")
    if not isinstance(model, str):
        model = None
    usage = usage_counts_of(response.get("usageMetadata"))
    blocked = _block_reason(response)
    if blocked is not None:
        reason, message = blocked
        return (key, _BLOCKED, None, reason, message if isinstance(message, str) else None, model, usage)
    return (key, _SUCCEEDED, None, None, None, model, usage)


# The common line, a plain answer, for the analyzer's fast path: only the fields its outcome
# and usage need (not the candidates' content), typed so msgspec checks them (counts as plain
# ints here; int64 strings take `classify_result_line`, as does every error or block).
class _Usage(msgspec.Struct):
    promptTokenCount: int = 0
    toolUsePromptTokenCount: int = 0
    cachedContentTokenCount: int = 0
    candidatesTokenCount: int = 0
    thoughtsTokenCount: int = 0


class _Feedback(msgspec.Struct):
    blockReason: str | None = None


class _Candidate(msgspec.Struct):
    finishReason: str | None = None


class _Response(msgspec.Struct):
    modelVersion: str | None = None
    usageMetadata: _Usage | None = None
    promptFeedback: _Feedback | None = None
    candidates: list[_Candidate] | None = None


class _CommonLine(msgspec.Struct):
    key: str
    response: _Response
    error: None = None


def _classify_common(line: _CommonLine) -> Classified | None:
    response = line.response
    feedback = response.promptFeedback
    if feedback is not None and feedback.blockReason and feedback.blockReason != "BLOCK_REASON_UNSPECIFIED":
        return None
    candidates = response.candidates
    if candidates:
        for candidate in candidates:  # a loop, not all(...): no generator per line
            if candidate.finishReason not in BLOCK_REASONS:
                break
        else:
            return None  # every candidate blocked
    u = response.usageMetadata
    usage = None if u is None else (
        u.promptTokenCount + u.toolUsePromptTokenCount, u.cachedContentTokenCount, 0, 0,
        u.candidatesTokenCount + u.thoughtsTokenCount, u.thoughtsTokenCount)
    return (line.key, _SUCCEEDED, None, None, None, response.modelVersion, usage)


parse_result_line = ResultLineParser(classify_result_line, _CommonLine, _classify_common)
"""`parse_result_line(obj, line_no) -> ResultItem`, with the analyzer's fast path attached."""
