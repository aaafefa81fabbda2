"""Which transitions deserve a toast, and which batches are at risk."""

from datetime import UTC, datetime, timedelta

from batchtui.core.models import Batch, Provider, RequestCounts, ResultFile, Status
from batchtui.core.notices import notices_for, risks

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def batch(status=Status.IN_PROGRESS, failed=0, created=NOW - timedelta(hours=1), **kw):
    fields = dict(account="a", provider=Provider.OPENAI, id="batch_1", status=status, provider_status=status.value,
                  created_at=created, expires_at=created + timedelta(hours=24),
                  counts=RequestCounts(total=100, succeeded=10, failed=failed))
    fields.update(kw)
    return Batch(**fields)


def test_first_sight_is_silent_and_ending_is_announced():
    assert notices_for(None, batch(Status.COMPLETED)) == []
    [notice] = notices_for(batch(), batch(Status.COMPLETED, failed=3))
    assert notice.kind == "ended" and "3 failed" in notice.message and notice.severity == "warning"
    [clean] = notices_for(batch(), batch(Status.COMPLETED))
    assert clean.severity == "information"
    assert notices_for(batch(Status.COMPLETED), batch(Status.COMPLETED)) == []


def test_rising_failures_are_told_at_first_and_at_each_doubling_only():
    told = []
    previous = batch(failed=0)
    for failed in range(0, 70):
        current = batch(failed=failed)
        told += [failed for n in notices_for(previous, current) if n.kind == "failures"]
        previous = current
    assert told == [1, 2, 4, 8, 16, 32, 64]


def test_risks():
    near_expiry = batch(created=NOW - timedelta(hours=23))
    assert "expires soon" in risks(near_expiry, NOW)
    assert risks(batch(), NOW) == []
    peers = [batch(id=f"b{i}", status=Status.COMPLETED, in_progress_at=NOW - timedelta(hours=5, minutes=59),
                   created=NOW - timedelta(hours=6)) for i in range(3)]
    stuck = batch(id="slow", status=Status.VALIDATING, created=NOW - timedelta(hours=2))
    assert "stuck in queue" in risks(stuck, NOW, peers)
    fresh = batch(id="fresh", status=Status.VALIDATING, created=NOW - timedelta(minutes=5))
    assert "stuck in queue" not in risks(fresh, NOW, peers)
    ended = batch(status=Status.COMPLETED, ended_at=NOW - timedelta(days=28), result_files=(ResultFile(kind="results", ref="f"),))
    assert "results expire soon" in risks(ended, NOW)
