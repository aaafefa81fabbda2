"""Issue 6, item 4: the ledger survives a writer killed mid-write, and two writers at once.

A writer process says "inside i" half way through a row's transaction and "commit i" after
it; the test sends SIGKILL the moment it reads "inside" for a chosen row. Every other time
the writer waits there, so the kill lands inside the transaction for certain (with pages of
it already in the WAL); the other times it races on through the inserts and the commit.
After every kill the ledger must open, pass `PRAGMA integrity_check`, hold every row that was
reported committed, and hold the interrupted row either whole or not at all.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from batchtui.core.ledger import Ledger
from reliability.figures import record
from reliability.ledger_writer import LINES

REPO = Path(__file__).resolve().parents[2]
KILLS = 20
# The issue asks for 30 s of two writers; it is the longest single test of the folder.
SOAK_SECONDS = 30.0


def writer(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    return subprocess.Popen([sys.executable, "-m", "reliability.ledger_writer", *args], cwd=REPO, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def lines_per_batch(path: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return dict(conn.execute("SELECT batch_id, count(*) FROM submission_lines GROUP BY batch_id").fetchall())


def integrity(path: Path) -> list[tuple]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute("PRAGMA integrity_check").fetchall()


def test_a_writer_killed_mid_write_twenty_times_loses_no_committed_row(tmp_path):
    path = tmp_path / "data" / "ledger.db"
    rng = random.Random(6)
    committed: set[int] = set()
    interrupted = 0
    next_row = 0
    for kill in range(KILLS):
        hold = kill % 2 == 0
        process = writer("kill", str(path), str(next_row), "hold" if hold else "race")
        target = next_row + rng.randint(0, 3)
        assert process.stdout is not None and process.stdin is not None
        for line in process.stdout:  # blocks until the writer speaks: no sleeping
            word, number = line.split()
            if word == "commit":
                committed.add(int(number))
            elif int(number) == target:
                process.send_signal(signal.SIGKILL)  # it is now inside that row's transaction
                break
            elif hold:
                process.stdin.write("go on\n")  # not this row: let the writer carry on
                process.stdin.flush()
        rest, errors = process.communicate(timeout=60)
        committed |= {int(line.split()[1]) for line in rest.splitlines() if line.startswith("commit")}
        assert process.returncode == -signal.SIGKILL, errors

        # Opening runs SQLite's recovery (the WAL's uncommitted frames are dropped).
        with Ledger.open(path) as ledger:
            assert ledger.get_batch("main", f"k{target}") is not None  # stored before "begin"
        assert integrity(path) == [("ok",)]
        stored = lines_per_batch(path)
        missing = [i for i in committed if stored.get(f"k{i}") != LINES]
        assert not missing, f"committed rows lost or partial after a kill: {missing}"
        assert set(stored.values()) <= {LINES}, "a transaction survived in part"
        interrupted += f"k{target}" not in stored
        next_row = target + 1
    record("ledger_sigkill", kills=KILLS, kills_inside_a_transaction=interrupted, committed_rows=len(committed),
           request_lines_checked=len(committed) * LINES, rows_lost=0, integrity_failures=0)
    assert interrupted >= KILLS // 2, "the kills should mostly land inside a write"


def test_two_processes_writing_for_thirty_seconds_lose_no_rows(tmp_path):
    path = tmp_path / "data" / "ledger.db"
    processes = [writer("soak", str(path), str(w), str(SOAK_SECONDS)) for w in (0, 1)]
    outputs = [p.communicate(timeout=SOAK_SECONDS + 120) for p in processes]
    for process, (out, errors) in zip(processes, outputs):
        assert process.returncode == 0 and errors == "", errors
    rows = [json.loads(out)["rows"] for out, _ in outputs]
    assert integrity(path) == [("ok",)]
    with Ledger.open(path) as ledger:
        for w, n in enumerate(rows):
            account = f"w{w}"
            assert sorted(b.id for b in ledger.batches(account=account)) == sorted(f"b{i}" for i in range(n))
            for i in range(n):
                assert ledger.parent(account, f"retry-{i}").parent_id == f"b{i}"  # type: ignore[union-attr]
        assert len(ledger.batches(account="shared")) == min(50, max(rows))
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        per_account = dict(conn.execute(
            "SELECT account, count(*) FROM submission_lines GROUP BY account").fetchall())
    assert per_account == {f"w{w}": 3 * n for w, n in enumerate(rows)}
    record("ledger_two_writers", seconds=SOAK_SECONDS, rows_written=sum(rows), per_writer=rows, rows_lost=0,
           errors=0)
    assert min(rows) > 100  # both really wrote, side by side
