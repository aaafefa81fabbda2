"""What deserves the user's attention: batches that just ended or started failing, and
batches at risk (about to expire, stuck in the queue, results about to be deleted).

Plain data with plain-text messages; provider text inside them is shown literally by the
fronts (never as markup).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from batchtui.core.models import Batch, Provider, Status

EXPIRY_WARNING = timedelta(hours=2)
RESULTS_WARNING = timedelta(days=3)
STUCK_FACTOR = 3.0
STUCK_FLOOR = timedelta(minutes=30)
# OpenAI deletes output files 30 days after the batch completes (unless told otherwise).
OPENAI_OUTPUT_RETENTION = timedelta(days=30)
QUEUED = (Status.VALIDATING,)


@dataclass(frozen=True)
class Notice:
    account: str
    batch_id: str
    kind: str  # "ended" or "failures"
    severity: str  # "information", "warning" or "error" (Textual's notify severities)
    message: str


def notices_for(old: Batch | None, new: Batch) -> list[Notice]:
    """Transitions worth a toast. A batch seen for the first time announces nothing: the
    dashboard's first poll must not flood the screen."""
    if old is None:
        return []
    out: list[Notice] = []
    if not old.is_terminal and new.is_terminal:
        failed = new.counts.failed or 0
        severity = "information" if new.status is Status.COMPLETED and not failed else "warning"
        if new.status is Status.FAILED:
            severity = "error"
        detail = f", {failed:,} failed" if failed else ""
        out.append(Notice(new.account, new.id, "ended", severity,
                          f"{new.account}: batch {new.id} {new.status.value}{detail}"))
    elif not new.is_terminal and _failures_worth_saying(old.counts.failed or 0, new.counts.failed or 0):
        out.append(Notice(new.account, new.id, "failures", "warning",
                          f"{new.account}: batch {new.id} now has {new.counts.failed:,} failed requests"))
    return out


def _failures_worth_saying(before: int, after: int) -> bool:
    """The first failures, then each doubling: a batch failing steadily says so a handful of
    times over its life, not on every poll."""
    if after <= before:
        return False
    if before == 0:
        return True
    return after.bit_length() > before.bit_length()


def results_expire_at(batch: Batch) -> datetime | None:
    if batch.results_expire_at is not None:
        return batch.results_expire_at
    if batch.provider in (Provider.OPENAI, Provider.OPENAI_COMPATIBLE) and batch.ended_at and batch.result_files:
        return batch.ended_at + OPENAI_OUTPUT_RETENTION
    return None


_UNKNOWN = object()


def typical_queue_wait(peers: Iterable[Batch], account: str, excluding: str | None = None) -> timedelta | None:
    """How long this account's batches usually wait before they start: the median of their
    queue times (None when none has started yet)."""
    waits = [b.in_progress_at - b.created_at for b in peers
             if b.account == account and b.in_progress_at is not None and b.id != excluding]
    import statistics  # the dashboard's table passes its own median: loaded only without one

    return statistics.median(waits) if waits else None


def risks(batch: Batch, now: datetime, peers: Iterable[Batch] = (), *,
          typical_wait: timedelta | None | object = _UNKNOWN) -> list[str]:
    """Short plain-text flags for a batch at risk. "Stuck in queue" compares the batch's wait
    with its account's `typical_wait`, worked out from `peers` when the caller has not."""
    flags: list[str] = []
    if not batch.is_terminal and batch.expires_at is not None:
        left = batch.expires_at - now
        if left < EXPIRY_WARNING:
            flags.append("expires soon" if left > timedelta(0) else "past its expiry")
    if batch.status in QUEUED:
        waited = now - batch.created_at
        typical = typical_queue_wait(peers, batch.account, batch.id) if typical_wait is _UNKNOWN else typical_wait
        limit = max(STUCK_FLOOR, typical * STUCK_FACTOR) if typical is not None else None
        if limit is not None and waited > limit:
            flags.append("stuck in queue")
    if batch.is_terminal:
        expiry = results_expire_at(batch)
        if expiry is not None and now < expiry and expiry - now < RESULTS_WARNING:
            flags.append("results expire soon")
    return flags
