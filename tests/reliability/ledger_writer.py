"""A process that writes to a ledger, for the crash and two-writer tests.

    python -m reliability.ledger_writer kill PATH FIRST hold|race
        From row FIRST on: store batch k<i>, then record its submission of LINES request lines
        (one transaction), saying "inside <i>" half way through the lines and "commit <i>"
        once committed. With `hold`, the writer then waits inside the transaction (for stdin,
        which never comes) so the kill lands there for certain; with `race`, it carries on and
        the kill lands wherever it lands (the rest of the inserts, the commit, its fsync).
        Runs until killed.

    python -m reliability.ledger_writer soak PATH WRITER SECONDS
        For SECONDS, rows b0, b1... of account w<WRITER> (batch + submission + retry link),
        plus rows of a "shared" account the other writer also writes; reads its own back as it
        goes. Prints {"rows": n} at the end; any error is a traceback and exit status 1.

Every "commit" line is printed only after the transaction committed, so the parent knows
which rows must survive a kill.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime

from batchtui.core.ledger import Ledger
from batchtui.core.models import Batch, Provider, RequestCounts, Status

LINES = 2_000  # a submission this size keeps the writer inside a transaction most of the time
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def batch(batch_id: str, account: str, **changes) -> Batch:
    fields = dict(account=account, provider=Provider.OPENAI, id=batch_id, status=Status.IN_PROGRESS,
                  provider_status="in_progress", created_at=T0, model="gpt-5.4-mini",
                  counts=RequestCounts(total=LINES, succeeded=0, failed=0))
    return Batch(**{**fields, **changes})


def request_lines(i: int, n: int) -> list[tuple[str, bytes]]:
    return [(f"k{i}-{n_}", b'{"custom_id": "k%d-%d", "params": {"pad": "%s"}}' % (i, n_, b"x" * 64))
            for n_ in range(n)]


def kill_target(path: str, first: int, hold: bool) -> None:
    with Ledger.open(path) as ledger:
        # A tiny page cache makes SQLite write uncommitted pages to the WAL before the commit,
        # so a kill leaves a half transaction on disk for recovery to discard (a test-only knob).
        ledger._conn.execute("PRAGMA cache_size = 8")
        for i in range(first, first + 1_000_000):
            ledger.upsert_batches([batch(f"k{i}", "main")])
            ledger.record_submission("main", f"k{i}", "in.jsonl", "0" * 64, _announcing(i, hold))
            print(f"commit {i}", flush=True)


def _announcing(i: int, hold: bool):
    """The request lines, fed to record_submission one by one (it streams them into its
    transaction), saying "inside" half way."""
    for n, line in enumerate(request_lines(i, LINES)):
        if n == LINES // 2:
            print(f"inside {i}", flush=True)
            if hold:
                sys.stdin.readline()
        yield line


def soak(path: str, writer: int, seconds: float) -> None:
    account = f"w{writer}"
    deadline = time.monotonic() + seconds
    rows = 0
    with Ledger.open(path) as ledger:
        while time.monotonic() < deadline:
            i = rows
            status = Status.COMPLETED if i % 2 else Status.IN_PROGRESS
            ledger.upsert_batches([batch(f"b{i}", account, status=status),
                                   batch(f"b{i % 50}", "shared", metadata={"writer": str(writer), "i": str(i)})])
            ledger.record_submission(account, f"b{i}", "in.jsonl", "0" * 64, request_lines(i, 3))
            ledger.record_retry(account, f"b{i}", f"retry-{i}", [f"k{i}-0"])
            rows += 1
            if rows % 50 == 0:  # and read, as the dashboard does while a CLI command writes
                assert len(ledger.batches(account=account)) == rows
    print(json.dumps({"rows": rows}), flush=True)


if __name__ == "__main__":
    mode, ledger_path, *rest = sys.argv[1:]
    if mode == "kill":
        kill_target(ledger_path, int(rest[0]), hold=rest[1] == "hold")
    else:
        soak(ledger_path, int(rest[0]), float(rest[1]))
