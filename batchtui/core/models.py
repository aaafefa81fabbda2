"""The unified vocabulary of batchtui: one shape for a batch, its counts, its results.

Every provider module turns its wire objects into these; the ledger stores them; the CLI
and the dashboard only ever read them. Nothing here knows about HTTP or the screen.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Provider(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    OPENAI_COMPATIBLE = "openai-compatible"


class Status(StrEnum):
    """The unified batch status of CLI-CONTRACT.md (the provider's raw one is kept beside it)."""

    VALIDATING = "validating"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({Status.COMPLETED, Status.FAILED, Status.EXPIRED, Status.CANCELLED})


class Outcome(StrEnum):
    """What happened to one request of a batch (PROVIDERS.md §F.3)."""

    SUCCEEDED = "succeeded"
    REQUEST_ERROR = "request_error"  # 4xx-like: resending it unchanged fails again
    SERVER_ERROR = "server_error"  # 5xx-like: worth resending as is
    NOT_RUN_EXPIRED = "not_run_expired"
    NOT_RUN_CANCELLED = "not_run_cancelled"
    BLOCKED = "blocked"  # safety block or refusal: the request itself must change
    UNKNOWN = "unknown"

    @property
    def retry_by_default(self) -> bool:
        """Outcomes a plain `retry` resends; request errors and blocks need --include-request-errors."""
        return self in _RETRY_BY_DEFAULT


_RETRY_BY_DEFAULT = frozenset(
    {Outcome.SERVER_ERROR, Outcome.NOT_RUN_EXPIRED, Outcome.NOT_RUN_CANCELLED, Outcome.UNKNOWN}
)


class _Frozen(BaseModel):
    # Unknown fields are ignored so a provider adding a field never breaks us.
    model_config = ConfigDict(frozen=True, extra="ignore")


class RequestCounts(_Frozen):
    """Request counts; None where the provider does not say (never a guessed 0)."""

    total: int | None = None
    succeeded: int | None = None
    failed: int | None = None
    expired: int | None = None
    cancelled: int | None = None
    processing: int | None = None
    # False for Anthropic, whose counts stay frozen until the batch ends.
    live: bool = True

    @property
    def done(self) -> int | None:
        """Requests that have finished one way or another (for a progress bar)."""
        parts = [self.succeeded, self.failed, self.expired, self.cancelled]
        if all(p is None for p in parts):
            return None
        return sum(p or 0 for p in parts)


class Usage(_Frozen):
    """Token usage in the unified columns of PROVIDERS.md §F.3.

    `input` is the whole prompt including cached and cache-written tokens; `output` includes
    reasoning. Cost code splits them back out.
    """

    input: int = 0
    cached_input: int = 0
    cache_write: int = 0
    cache_write_1h: int = 0  # the part of cache_write at Anthropic's 1-hour TTL (priced 2x, not 1.25x)
    output: int = 0
    reasoning: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input=self.input + other.input,
            cached_input=self.cached_input + other.cached_input,
            cache_write=self.cache_write + other.cache_write,
            cache_write_1h=self.cache_write_1h + other.cache_write_1h,
            output=self.output + other.output,
            reasoning=self.reasoning + other.reasoning,
        )

    @property
    def is_zero(self) -> bool:
        return not (self.input or self.cached_input or self.cache_write or self.output or self.reasoning)


class BatchError(_Frozen):
    """A batch-level error (OpenAI validation errors, a Gemini Operation error)."""

    code: str | None = None
    message: str = ""
    line: int | None = None


class ResultFile(_Frozen):
    """One downloadable result stream of a batch."""

    kind: str  # "results" or "errors"
    ref: str  # provider file id, results URL or "inline"


class Cost(_Frozen):
    """Cost in USD. `usd` is None when a model's price is unknown, with the reason."""

    usd: float | None = None
    standard_usd: float | None = None
    estimated: bool = False
    reason: str | None = None


class Batch(_Frozen):
    """One batch as batchtui knows it, whichever provider made it."""

    account: str
    provider: Provider
    id: str
    status: Status
    provider_status: str
    created_at: datetime
    ended_at: datetime | None = None
    expires_at: datetime | None = None
    model: str | None = None
    counts: RequestCounts = Field(default_factory=RequestCounts)
    endpoint: str | None = None
    name: str | None = None  # Gemini displayName
    metadata: dict[str, str] = Field(default_factory=dict)
    # Timeline, where the provider says.
    in_progress_at: datetime | None = None
    finalizing_at: datetime | None = None
    cancel_requested_at: datetime | None = None
    results_expire_at: datetime | None = None  # Anthropic archived_at / created + 29 d
    # Where the requests and results live.
    input_ref: str | None = None  # OpenAI input_file_id, Gemini inputConfig.fileName
    result_files: tuple[ResultFile, ...] = ()
    errors: tuple[BatchError, ...] = ()
    usage: Usage | None = None  # batch-wide usage, where the provider reports it (OpenAI)
    cost: Cost | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        """Stable identity across accounts: the dashboard's row key, the ledger's primary key."""
        return (self.account, self.id)

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    def with_cost(self, cost: Cost | None) -> Batch:
        return self.model_copy(update={"cost": cost})


class ResultItem(_Frozen):
    """One line of a batch's results, classified."""

    custom_id: str | None
    outcome: Outcome
    line_no: int
    http_status: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    model: str | None = None
    usage: Usage | None = None


class ErrorGroup(_Frozen):
    """All items of one outcome sharing one provider error type/code."""

    outcome: Outcome
    error_type: str | None
    count: int
    sample_message: str | None = None


class ErrorBreakdown(_Frozen):
    """Counts per outcome and per (outcome, error type/code), one sample message each."""

    outcomes: dict[Outcome, int] = Field(default_factory=dict)
    groups: tuple[ErrorGroup, ...] = ()
    unparseable: int = 0
    unparseable_lines: tuple[int, ...] = ()  # the first few line numbers, for the message

    @property
    def failed(self) -> int:
        return sum(n for o, n in self.outcomes.items() if o is not Outcome.SUCCEEDED) + self.unparseable
