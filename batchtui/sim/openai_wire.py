"""OpenAI-shaped wire objects of the simulator: the Batch and File objects (PROVIDERS.md
§A.2, §A.4), and what a dialect such as Groq changes in them (§E)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchtui.sim.openai_results import (
    batch_usage,
    counted,
    file_lines,
    render_file,
    snapshot_name,
    split_outcomes,
)
from batchtui.sim.world import Phase, SimBatch, SimFile, Workspace, World, write_lines

ENDPOINTS = ("/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/moderations",
             "/v1/images/generations", "/v1/images/edits", "/v1/videos")
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
FILE_TTL = 30 * 86_400  # batch input and output files expire after 30 days (§A.2)
_FILES_KEY = "openai_files"  # SimBatch.extra: the (output, error) file ids, fixed once terminal
_USAGE_KEY = "openai_usage"


@dataclass(frozen=True)
class SimDialect:
    """How one OpenAI-shaped API differs on the wire (PROVIDERS.md §E)."""

    provider: str  # the workspace namespace, and the key of its timing
    paginated: bool = True  # Groq: a bare {"object": "list", "data": [...]}, no cursor
    model_and_usage: bool = True  # Groq's batch object has neither
    endpoints: tuple[str, ...] = ENDPOINTS
    purposes: tuple[str, ...] = UPLOAD_PURPOSES
    windows: tuple[str, ...] = ("24h",)


DIALECTS = {
    "openai": SimDialect("openai"),
    # Groq takes windows from 24h to 7d; the simulated deadline stays OpenAI's 24 h.
    "groq": SimDialect("groq", paginated=False, model_and_usage=False, endpoints=("/v1/chat/completions",),
                       purposes=("batch",), windows=tuple(f"{h}h" for h in range(24, 169)) +
                       tuple(f"{d}d" for d in range(1, 8))),
}

STATUS_NAMES = {
    Phase.VALIDATING: "validating", Phase.RUNNING: "in_progress", Phase.FINALIZING: "finalizing",
    Phase.CANCELLING: "cancelling", Phase.COMPLETED: "completed", Phase.FAILED: "failed",
    Phase.EXPIRED: "expired", Phase.CANCELLED: "cancelled",
}


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def file_object(f: SimFile) -> dict[str, Any]:
    return {"id": f.id, "object": "file", "bytes": f.size(), "created_at": int(f.created_at),
            "expires_at": _int(f.expires_at), "filename": f.filename, "purpose": f.purpose,
            "status": "processed", "status_details": None}


def _file_id(batch: SimBatch, kind: str) -> str:
    # Fixed by the batch id, so the same seed serves the same file ids in every run.
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz123456789"
    return "file-" + "".join(batch.rng("file", kind).choices(alphabet, k=22))


def _result_files(ws: Workspace, batch: SimBatch, now: float, ended_at: float, *,
                  spool_dir: Path | None = None) -> tuple[str | None, str | None]:
    """The output and error files of a terminal batch, made on first sight and fixed from
    then on. A file with no line is not made: its id is null (§A.4, kaapi-backend#723).
    With `spool_dir` the files are written there now and served from disk (huge batches)."""
    if _FILES_KEY in batch.extra:
        return batch.extra[_FILES_KEY]
    ids: list[str | None] = [None, None]
    if not batch.plan.validation_errors and batch.plan.batch_failure is None:
        entries = split_outcomes(batch, batch.final_outcomes(now) or [])
        for slot, (kind, lines) in enumerate(zip(("output", "error"), entries)):
            if not lines:
                continue
            file_id = _file_id(batch, kind)
            f = SimFile(id=file_id, workspace=ws.name, filename=f"{batch.id}_{kind}.jsonl",
                        purpose="batch_output", created_at=ended_at, expires_at=ended_at + FILE_TTL)
            if spool_dir is None:
                f.render = functools.partial(render_file, batch, lines, batch.endpoint or "", kind)
            else:
                f.path = write_lines(spool_dir / f"{file_id}.jsonl", file_lines(batch, lines, batch.endpoint or "", kind))
            ws.files[file_id] = f
            ids[slot] = file_id
    batch.extra[_FILES_KEY] = tuple(ids)
    return batch.extra[_FILES_KEY]


def spool_result_files(world: World, ws: Workspace, batch: SimBatch) -> tuple[str | None, str | None]:
    """Write an ended batch's output and error files to the world's spool directory now."""
    now = world.now()
    ended_at = batch.snapshot(now).ended_at
    if ended_at is None:
        raise ValueError(f"batch {batch.id} has not ended")
    return _result_files(ws, batch, now, ended_at, spool_dir=world.spool_dir())


def _usage(batch: SimBatch, now: float, terminal: bool) -> dict[str, Any]:
    if terminal and _USAGE_KEY in batch.extra:
        return batch.extra[_USAGE_KEY]
    if terminal:
        finished = batch.final_outcomes(now) or []
    else:
        finished = [(r, r.outcome) for r in batch.requests if batch.started_at + r.finish_after <= now]
    usage = batch_usage(batch, finished, batch.endpoint or "")
    if terminal:
        batch.extra[_USAGE_KEY] = usage
    return usage


def batch_object(world: World, ws: Workspace, batch: SimBatch, dialect: SimDialect) -> dict[str, Any]:
    """Every field of §A.4, timestamps as Unix ints, `null` where unset."""
    now = world.now()
    snap = batch.snapshot(now)
    phase = snap.phase
    failed_validation = bool(batch.plan.validation_errors)
    validated = phase is not Phase.VALIDATING and not failed_validation
    counts = {"completed": 0, "failed": 0}
    for outcome, n in snap.counts.items():
        counts[counted(outcome)] += n
    created = int(batch.created_at)
    started = snap.started_at
    if started is not None and batch.cancel_requested_at is not None and batch.cancel_requested_at < started:
        started = None  # cancelled while validating: it never went in progress
    output_id, error_id = _result_files(ws, batch, now, snap.ended_at) if phase.terminal else (None, None)
    errors = None
    if phase is Phase.FAILED:
        data = list(batch.plan.validation_errors) or [batch.plan.batch_failure or {}]
        errors = {"object": "list", "data": [{"code": e.get("code"), "message": e.get("message", ""),
                                              "param": e.get("param"), "line": e.get("line")} for e in data]}
    cancelling_at = snap.cancel_at if phase in (Phase.CANCELLING, Phase.CANCELLED) else None
    ended = _int(snap.ended_at)
    obj: dict[str, Any] = {
        "id": batch.id, "object": "batch", "endpoint": batch.endpoint,
        "model": snapshot_name(batch.model) if validated else None,
        "errors": errors, "input_file_id": batch.input_file_id, "completion_window": "24h",
        "status": STATUS_NAMES[phase], "output_file_id": output_id, "error_file_id": error_id,
        "created_at": created, "in_progress_at": _int(started),
        "expires_at": created + int(batch.timing.expires_after),
        "finalizing_at": _int(snap.finalizing_at),
        "completed_at": ended if phase is Phase.COMPLETED else None,
        "failed_at": ended if phase is Phase.FAILED else None,
        "expired_at": ended if phase is Phase.EXPIRED else None,
        "cancelling_at": _int(cancelling_at),
        "cancelled_at": ended if phase is Phase.CANCELLED else None,
        "request_counts": {"total": len(batch.requests) if validated else 0, **counts},
        "usage": _usage(batch, now, phase.terminal) if validated else None,
        "metadata": batch.metadata,
    }
    if not dialect.model_and_usage:
        obj.pop("model")
        obj.pop("usage")
    return obj
