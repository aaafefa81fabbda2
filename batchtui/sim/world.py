"""The simulator's state: workspaces (one per provider key), their batches and files.

A batch's status, counts and results are a pure function of the clock and the seed: each
request gets a planned finish time and outcome when the batch is made, and the lifecycle
below reads them at `now`. Provider modules only render this state in their wire format.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import string
import tempfile
import weakref
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from batchtui.sim.clock import SimClock
from batchtui.sim.faults import FaultConfig


class Phase(StrEnum):
    VALIDATING = "validating"  # OpenAI validating, Gemini PENDING
    RUNNING = "running"
    FINALIZING = "finalizing"
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    FAILED = "failed"  # the whole batch failed (OpenAI validation, Gemini Operation error)
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (Phase.COMPLETED, Phase.FAILED, Phase.EXPIRED, Phase.CANCELLED)


# What a request ends as. "blocked" renders as a refusal / safety stop (a success on the wire).
OK, REQUEST_ERROR, SERVER_ERROR, BLOCKED, EXPIRED, CANCELLED = (
    "ok", "request_error", "server_error", "blocked", "expired", "cancelled")


@dataclass(frozen=True)
class Timing:
    """Per-provider lifecycle durations in simulated seconds."""

    validate_for: float
    finalize_for: float
    expires_after: float
    cancel_drain: float


TIMINGS = {
    "openai": Timing(validate_for=30, finalize_for=60, expires_after=86_400, cancel_drain=120),
    "anthropic": Timing(validate_for=0, finalize_for=0, expires_after=86_400, cancel_drain=30),
    # Gemini: a 24 h target, EXPIRED after 48 h pending or running.
    "gemini": Timing(validate_for=20, finalize_for=0, expires_after=172_800, cancel_drain=0),
}


@dataclass(frozen=True)
class Plan:
    """How a batch will behave; the demo scenario and tests pick these."""

    error_rate: float = 0.03  # share of requests that fail
    server_error_share: float = 0.4  # of those failures, how many are 5xx-like
    blocked_rate: float = 0.005
    duration: float | None = None  # processing time for all requests (default: by size)
    validation_errors: tuple[dict[str, Any], ...] = ()  # OpenAI: fail in validation
    batch_failure: dict[str, Any] | None = None  # Gemini: Operation error
    cancel_after: float | None = None  # a scheduled cancel, seconds after creation


@dataclass(frozen=True)
class PlannedRequest:
    index: int
    custom_id: str
    line: dict[str, Any]  # the original input line, as the provider received it
    finish_after: float
    outcome: str


@dataclass(frozen=True)
class Snapshot:
    phase: Phase
    started_at: float | None
    finalizing_at: float | None
    ended_at: float | None
    cancel_at: float | None
    counts: Counter  # final outcome -> n, for requests that have finished by now
    pending: int


@dataclass
class SimBatch:
    id: str
    provider: str
    workspace: str
    created_at: float
    model: str
    requests: list[PlannedRequest]
    timing: Timing
    plan: Plan = field(default_factory=Plan)
    cancel_requested_at: float | None = None
    metadata: dict[str, str] | None = None
    endpoint: str | None = None
    input_file_id: str | None = None
    display_name: str | None = None
    inline: bool = False  # Gemini: inline requests -> inline responses
    deleted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # Wire objects of the ended batch, by rendering: see `settled`.
    _settled: dict[Hashable, tuple[float, Any]] = field(default_factory=dict, init=False, repr=False,
                                                        compare=False)

    def __post_init__(self) -> None:
        if self.plan.cancel_after is not None and self.cancel_requested_at is None:
            self.cancel_requested_at = self.created_at + self.plan.cancel_after

    @property
    def started_at(self) -> float:
        return self.created_at + self.timing.validate_for

    @property
    def deadline(self) -> float:
        return self.created_at + self.timing.expires_after

    def _end(self) -> tuple[Phase, float, float | None]:
        """(terminal phase, when it is reached, when finalizing began)."""
        start = self.started_at
        if self.plan.validation_errors:
            return Phase.FAILED, start, None
        all_done = start + max((r.finish_after for r in self.requests), default=0.0)
        tc = self.cancel_requested_at
        if tc is not None and tc < all_done and tc < self.deadline:
            return Phase.CANCELLED, min(tc + self.timing.cancel_drain, self.deadline), None
        if all_done >= self.deadline:
            return Phase.EXPIRED, self.deadline, None
        if self.plan.batch_failure is not None:
            return Phase.FAILED, all_done, None
        return Phase.COMPLETED, all_done + self.timing.finalize_for, all_done

    def settled(self, rendering: Hashable, now: float, build: Callable[[], Any]) -> Any:
        """`build()`, kept and reused once the batch has ended at `now`: an ended batch never
        changes (a cancel is refused, a delete hides it), so a list page of a thousand old
        batches is not rebuilt on every call. `rendering` names the wire form and whatever else
        it depends on (dialect, host); the caller must not change what it gets."""
        kept = self._settled.get(rendering)
        if kept is not None and now >= kept[0]:  # (a clock wound back finds the batch running again)
            return kept[1]
        value = build()
        end_at = self._end()[1]
        if now >= end_at:
            self._settled[rendering] = (end_at, value)
        return value

    def snapshot(self, now: float) -> Snapshot:
        end_phase, end_at, finalizing_at = self._end()
        start = self.started_at
        tc = self.cancel_requested_at
        if now >= end_at:
            phase = end_phase
        elif tc is not None and now >= tc and end_phase is Phase.CANCELLED:
            phase = Phase.CANCELLING
        elif now < start:
            phase = Phase.VALIDATING
        elif finalizing_at is not None and now >= finalizing_at:
            phase = Phase.FINALIZING
        else:
            phase = Phase.RUNNING
        counts: Counter = Counter()
        pending = 0
        horizon = min(now, end_at)
        for request in self.requests:
            outcome = self.request_outcome(request, end_phase, end_at, horizon, now)
            if outcome is None:
                pending += 1
            else:
                counts[outcome] += 1
        return Snapshot(
            phase=phase,
            started_at=start if now >= start and not self.plan.validation_errors else None,
            finalizing_at=finalizing_at if finalizing_at is not None and now >= finalizing_at else None,
            ended_at=end_at if now >= end_at else None,
            cancel_at=tc if tc is not None and now >= tc else None,
            counts=counts,
            pending=pending,
        )

    def request_outcome(self, request: PlannedRequest, end_phase: Phase, end_at: float,
                        horizon: float, now: float) -> str | None:
        if end_phase is Phase.FAILED and self.plan.validation_errors:
            return None
        finish = self.started_at + request.finish_after
        if finish <= horizon and finish <= end_at:
            return request.outcome
        if now >= end_at:
            if end_phase is Phase.CANCELLED:
                return CANCELLED
            if end_phase is Phase.EXPIRED:
                return EXPIRED
        return None

    def final_outcomes(self, now: float) -> list[tuple[PlannedRequest, str]] | None:
        """Each request's outcome once the batch is terminal; None before."""
        end_phase, end_at, _ = self._end()
        if now < end_at:
            return None
        return [(r, self.request_outcome(r, end_phase, end_at, end_at, now) or EXPIRED) for r in self.requests]

    def rng(self, *salt: object) -> random.Random:
        """A generator fixed by batch id and salt: results are byte-identical on every read."""
        return random.Random(":".join([self.id, *map(str, salt)]))


@dataclass
class SimFile:
    id: str
    workspace: str
    filename: str
    purpose: str
    created_at: float
    content: bytes | None = None
    # Generated files (batch output) are rendered on demand from the batch's state.
    render: Callable[[], bytes] | None = None
    downloadable: bool = True
    expires_at: float | None = None
    deleted: bool = False
    # A file too big to hold in memory (a benchmark's 200 MB results) lives on disk and is
    # streamed from there; see sim/bulk.py.
    path: Path | None = None

    def data(self) -> bytes:
        if self.path is not None:
            return self.path.read_bytes()
        if self.content is None and self.render is not None:
            self.content = self.render()  # terminal batches never change, so cache it
        return self.content or b""

    def size(self) -> int:
        return self.path.stat().st_size if self.path is not None else len(self.data())


@dataclass
class Workspace:
    name: str
    provider: str
    key: str | None = None
    faults: FaultConfig = field(default_factory=FaultConfig)
    batches: dict[str, SimBatch] = field(default_factory=dict)
    files: dict[str, SimFile] = field(default_factory=dict)
    requests: Counter = field(default_factory=Counter)  # (method, route) -> n, for efficiency checks
    fault_rng: random.Random = field(default_factory=random.Random)


class World:
    """Every workspace of every provider, one clock, one seed."""

    def __init__(self, clock: SimClock | None = None, seed: int = 0) -> None:
        self.clock = clock or SimClock()
        self.seed = seed
        self._ids = random.Random(f"ids:{seed}")
        self.workspaces: dict[tuple[str, str], Workspace] = {}  # (provider, key) -> workspace
        self.by_name: dict[tuple[str, str], Workspace] = {}  # (provider, name) -> workspace
        self._spool: Path | None = None

    def spool_dir(self) -> Path:
        """A private temporary directory for files too big for memory, removed with the world."""
        if self._spool is None:
            self._spool = Path(tempfile.mkdtemp(prefix="batchtui-sim-"))
            weakref.finalize(self, shutil.rmtree, self._spool, True)
        return self._spool

    def now(self) -> float:
        return self.clock.now()

    # -- workspaces --------------------------------------------------------------------

    def add_workspace(self, provider: str, name: str, key: str, *, faults: FaultConfig | None = None) -> Workspace:
        ws = Workspace(name=name, provider=provider, key=key, faults=faults or FaultConfig(),
                       fault_rng=random.Random(f"faults:{self.seed}:{provider}:{name}"))
        self.workspaces[(provider, key)] = ws
        self.by_name[(provider, name)] = ws
        return ws

    def resolve(self, provider: str, key: str) -> Workspace:
        """The workspace a key opens. Any key works: an unknown key gets its own, empty one."""
        ws = self.workspaces.get((provider, key))
        if ws is None:
            digest = hashlib.sha256(key.encode()).hexdigest()[:10]
            ws = self.add_workspace(provider, f"key-{digest}", key)
        return ws

    def workspace(self, provider: str, name: str) -> Workspace:
        return self.by_name[(provider, name)]

    # -- ids ---------------------------------------------------------------------------

    def new_id(self, kind: str) -> str:
        r = self._ids
        if kind == "openai_batch":
            return "batch_" + "%032x" % r.getrandbits(128)
        if kind == "openai_file":
            return "file-" + "".join(r.choices(string.ascii_letters + string.digits, k=22))
        if kind == "anthropic_batch":
            return "msgbatch_01" + "".join(r.choices(string.ascii_letters + string.digits, k=22))
        if kind == "gemini_batch":
            return "batches/" + "".join(r.choices(string.ascii_lowercase + string.digits, k=36))
        if kind == "gemini_file":
            return "files/" + "".join(r.choices(string.ascii_lowercase + string.digits, k=12))
        if kind == "request":
            return "%032x" % r.getrandbits(128)
        raise ValueError(kind)

    # -- batches -------------------------------------------------------------------------

    def create_batch(
        self,
        ws: Workspace,
        *,
        batch_id: str,
        model: str,
        lines: list[tuple[str, dict[str, Any]]],
        plan: Plan | None = None,
        created_at: float | None = None,
        **fields: Any,
    ) -> SimBatch:
        plan = plan or Plan()
        created = self.now() if created_at is None else created_at
        rng = random.Random(f"plan:{self.seed}:{batch_id}")
        duration = plan.duration if plan.duration is not None else min(600 + 2.0 * len(lines), 6 * 3600)
        requests = []
        for index, (custom_id, line) in enumerate(lines):
            roll = rng.random()
            if roll < plan.error_rate:
                outcome = SERVER_ERROR if rng.random() < plan.server_error_share else REQUEST_ERROR
            elif roll < plan.error_rate + plan.blocked_rate:
                outcome = BLOCKED
            else:
                outcome = OK
            requests.append(PlannedRequest(index, custom_id, line, rng.uniform(0.02, 1.0) * duration, outcome))
        batch = SimBatch(id=batch_id, provider=ws.provider, workspace=ws.name, created_at=created,
                         model=model, requests=requests, timing=TIMINGS[ws.provider], plan=plan, **fields)
        ws.batches[batch_id] = batch
        return batch

    def visible(self, ws: Workspace) -> list[SimBatch]:
        """Batches that exist by now, newest first (scenario batches appear as time passes)."""
        now = self.now()
        live = [b for b in ws.batches.values() if b.created_at <= now and not b.deleted]
        return sorted(live, key=lambda b: (b.created_at, b.id), reverse=True)

    def find(self, ws: Workspace, batch_id: str) -> SimBatch | None:
        batch = ws.batches.get(batch_id)
        if batch is None or batch.deleted or batch.created_at > self.now():
            return None
        return batch


# SimBatch.extra[REPLY_BYTES] = (low, high): answers of that many bytes instead of one short
# sentence, so a results file can have the line sizes of real long-form output (benchmarks).
REPLY_BYTES = "reply_bytes"
_FILLER = ("The customer reports that the export fails after the last update; the log shows a timeout "
           "on the storage call. Suggested fix: retry with a smaller page size, then escalate. "
           "Résumé : délai dépassé lors de l'export, nouvelle tentative recommandée. ")


def reply_text(batch: SimBatch, rng: random.Random, choices: tuple[str, ...]) -> str:
    """One answer: a short choice, or with REPLY_BYTES set a long one of a seeded length.

    Without REPLY_BYTES it draws exactly what `rng.choice(choices)` draws, so seeded files
    keep their bytes."""
    answer = rng.choice(choices)
    sizes = batch.extra.get(REPLY_BYTES)
    if not sizes:
        return answer
    want = rng.randint(int(sizes[0]), int(sizes[1]))
    text = answer + " " + _FILLER * (want // len(_FILLER) + 1)
    return text[:want]


def write_lines(path: Path, lines: Iterable[bytes]) -> Path:
    """Stream rendered lines to a file (private: results hold users' answers)."""
    fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "wb", buffering=1 << 20) as out:
        out.writelines(lines)
    return path


def token_usage(batch: SimBatch, request: PlannedRequest) -> dict[str, int]:
    """Realistic per-request token counts for the batch's model, fixed by the seed."""
    rng = batch.rng("usage", request.index)
    prompt_chars = len(str(request.line))
    base_input = max(12, prompt_chars // 4) + rng.randint(40, 2400)
    cached = 0
    cache_write = 0
    if rng.random() < 0.35:
        cached = int(base_input * rng.uniform(0.5, 0.9)) // 128 * 128
    elif rng.random() < 0.1:
        cache_write = int(base_input * rng.uniform(0.3, 0.8))
    output = rng.randint(8, 900)
    model = batch.model.lower()
    reasoning = 0
    if any(tag in model for tag in ("gpt-5", "o3", "o4", "thinking", "2.5-pro", "gemini-3")):
        reasoning = int(output * rng.uniform(0.2, 0.7))
    return {"input": base_input, "cached": cached, "cache_write": cache_write, "output": output,
            "reasoning": reasoning}
