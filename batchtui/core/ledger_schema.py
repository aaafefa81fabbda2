"""The ledger's tables, the records read from them, and the migrations that build them.

`PRAGMA user_version` is the number of migrations a ledger has run. To change the schema, append
a function to MIGRATIONS; never edit one that has shipped, since ledgers in the wild have run it.
A migration runs inside the caller's transaction, so it must not commit: `conn.execute` each
statement, never `executescript` (which commits first).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from batchtui.core.errors import BatchtuiError
from batchtui.core.models import Cost, ErrorBreakdown, Provider, Usage

Migration = Callable[[sqlite3.Connection], None]


class LedgerError(BatchtuiError):
    """The ledger file cannot be opened, or a record it was asked to change does not exist."""


class LedgerVersionError(LedgerError):
    """The ledger was written by a newer batchtui whose schema this one does not know."""


# The records the ledger hands back (frozen, like everything in models.py).

DownloadKind = Literal["results", "errors"]


class IntentStatus(StrEnum):
    SENT = "sent"
    CONFIRMED = "confirmed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Submission:
    account: str
    batch_id: str
    input_path: str
    input_sha256: str
    submitted_at: datetime
    n_lines: int


@dataclass(frozen=True, slots=True)
class Download:
    account: str
    batch_id: str
    kind: DownloadKind
    path: Path
    sha256: str
    size: int  # bytes
    lines: int
    downloaded_at: datetime
    processed: bool

    def is_on_disk(self) -> bool:
        """The file is still where we wrote it, at the size we wrote: a cheap check before
        skipping a fetch (users do delete downloads). Compare `sha256` for a careful one."""
        try:
            return self.path.stat().st_size == self.size
        except OSError:
            return False


@dataclass(frozen=True, slots=True)
class RetryLink:
    account: str
    parent_id: str
    child_id: str
    custom_ids: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RetryClaim:
    """A retry of `parent_id` being sent: held from before the create until its link is recorded."""

    account: str
    parent_id: str
    token: str  # the create intent token of the retry that holds it
    pid: int  # the process that took it, for the person reading the refusal
    claimed_at: datetime


class RetryClaimed(LedgerError):
    """Another retry of the same batch holds the claim: sending a second would double-spend."""

    def __init__(self, message: str, claim: RetryClaim) -> None:
        super().__init__(message)
        self.claim = claim


@dataclass(frozen=True, slots=True)
class CreateIntent:
    token: str
    account: str
    provider: Provider
    created_at: datetime
    n_requests: int
    status: IntentStatus
    batch_id: str | None = None
    input_path: str | None = None
    input_sha256: str | None = None


class Analysis(BaseModel):
    """A batch's results, analysed once so `show` and the detail pane need not re-parse files.
    A pydantic model, unlike the row records above, because it is stored as one JSON body."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    breakdown: ErrorBreakdown
    usage_by_model: dict[str, Usage] = Field(default_factory=dict)
    cost: Cost
    analyzed_at: datetime


# Timestamps are UTC ISO-8601 text of fixed width, so ORDER BY on the text is time order and the
# file stays readable from the sqlite3 shell. Bodies are pydantic JSON, so a model that gains a
# field needs no migration (old bodies take the default; extra="ignore" drops removed ones), but
# one whose old JSON would no longer validate (a field renamed or made required) needs a migration
# that rewrites the bodies. Only what we filter or sort on gets a column.
_V1 = (
    """
    CREATE TABLE batches (
        account    TEXT NOT NULL,
        batch_id   TEXT NOT NULL,
        provider   TEXT NOT NULL,
        status     TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,  -- when the stored state last changed, not when last polled
        body       TEXT NOT NULL,  -- Batch.model_dump_json()
        PRIMARY KEY (account, batch_id)
    )
    """,
    "CREATE INDEX batches_by_created ON batches (created_at)",
    "CREATE INDEX batches_by_account ON batches (account, created_at)",
    "CREATE INDEX batches_by_status ON batches (status, created_at)",
    "CREATE INDEX batches_by_provider ON batches (provider, created_at)",
    "CREATE INDEX batches_by_id ON batches (batch_id)",
    """
    CREATE TABLE submissions (
        account      TEXT NOT NULL,
        batch_id     TEXT NOT NULL,
        input_path   TEXT NOT NULL,
        input_sha256 TEXT NOT NULL,
        submitted_at TEXT NOT NULL,
        PRIMARY KEY (account, batch_id)
    )
    """,
    # The exact bytes of each request line, for `retry` on providers that cannot give them back.
    """
    CREATE TABLE submission_lines (
        account   TEXT NOT NULL,
        batch_id  TEXT NOT NULL,
        custom_id TEXT NOT NULL,
        seq       INTEGER NOT NULL,  -- 1-based order in the input, so a retry keeps it
        line      BLOB NOT NULL,
        PRIMARY KEY (account, batch_id, custom_id),
        FOREIGN KEY (account, batch_id) REFERENCES submissions (account, batch_id) ON DELETE CASCADE
    )
    """,
    """
    CREATE TABLE downloads (
        account       TEXT NOT NULL,
        batch_id      TEXT NOT NULL,
        kind          TEXT NOT NULL CHECK (kind IN ('results', 'errors')),
        path          TEXT NOT NULL,
        sha256        TEXT NOT NULL,
        size          INTEGER NOT NULL,  -- bytes
        lines         INTEGER NOT NULL,
        downloaded_at TEXT NOT NULL,
        processed     INTEGER NOT NULL DEFAULT 0 CHECK (processed IN (0, 1)),
        PRIMARY KEY (account, batch_id, kind)
    )
    """,
    # Keyed by the child: a retry batch has exactly one parent, a parent may have many children.
    """
    CREATE TABLE retries (
        account    TEXT NOT NULL,
        child_id   TEXT NOT NULL,
        parent_id  TEXT NOT NULL CHECK (parent_id <> child_id),
        custom_ids TEXT NOT NULL,  -- JSON array, in the order they were resent
        created_at TEXT NOT NULL,
        PRIMARY KEY (account, child_id)
    )
    """,
    "CREATE INDEX retries_by_parent ON retries (account, parent_id, created_at)",
    """
    CREATE TABLE analyses (
        account  TEXT NOT NULL,
        batch_id TEXT NOT NULL,
        body     TEXT NOT NULL,  -- ledger.Analysis.model_dump_json()
        PRIMARY KEY (account, batch_id)
    )
    """,
    # Written before a create is sent, so a create whose answer was lost can be found again by
    # the token the caller puts in the batch's metadata.
    """
    CREATE TABLE create_intents (
        token        TEXT PRIMARY KEY,
        account      TEXT NOT NULL,
        provider     TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        n_requests   INTEGER NOT NULL,
        input_path   TEXT,
        input_sha256 TEXT,
        status       TEXT NOT NULL DEFAULT 'sent' CHECK (status IN ('sent', 'confirmed', 'failed')),
        batch_id     TEXT,
        CHECK (status <> 'confirmed' OR batch_id IS NOT NULL)
    )
    """,
    "CREATE INDEX create_intents_by_account ON create_intents (account, status, created_at)",
)


def _v1_initial(conn: sqlite3.Connection) -> None:
    for statement in _V1:
        conn.execute(statement)


# One row per batch being retried right now, taken with an INSERT that the primary key makes
# atomic across processes: two `batchtui retry` runs of one batch cannot both send.
_V2 = (
    """
    CREATE TABLE retry_claims (
        account    TEXT NOT NULL,
        parent_id  TEXT NOT NULL,
        token      TEXT NOT NULL,
        pid        INTEGER NOT NULL,
        claimed_at TEXT NOT NULL,
        PRIMARY KEY (account, parent_id)
    )
    """,
)


def _v2_retry_claims(conn: sqlite3.Connection) -> None:
    for statement in _V2:
        conn.execute(statement)


MIGRATIONS: tuple[Migration, ...] = (_v1_initial, _v2_retry_claims)


@contextmanager
def immediate_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction on a connection opened with isolation_level=None.

    IMMEDIATE takes the write lock up front, where the busy timeout applies. A deferred
    transaction that reads first and writes later can instead fail at once with SQLITE_BUSY
    when another process committed in between, whatever the timeout.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        # Some errors (disk full, I/O) make SQLite roll back by itself.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def enable_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch the file to WAL (a lasting property of the file: a no-op once done).

    The switch needs an exclusive lock taken from a shared one. When another connection is
    after the same lock, SQLite answers SQLITE_BUSY at once instead of calling the busy handler
    (waiting could deadlock), so two processes opening a new ledger together would fail. Retry,
    with our locks released, for as long as the busy timeout would have waited.
    """
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            busy = getattr(e, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def refuse_newer(found: int, known: int, path: Path) -> None:
    if found > known:
        raise LedgerVersionError(
            f"{path} was written by a newer batchtui (ledger schema v{found}; this version knows up to "
            f"v{known}). Upgrade batchtui, or set BATCHTUI_HOME to use another data directory."
        )


def migrate(conn: sqlite3.Connection, path: Path, migrations: Sequence[Migration]) -> int:
    """Bring the ledger up to len(migrations), all in one transaction; return the version now."""
    target = len(migrations)
    refuse_newer(schema_version(conn), target, path)
    if schema_version(conn) == target:
        return target
    with immediate_transaction(conn):
        # Read again under the write lock: another process may have migrated while we waited.
        current = schema_version(conn)
        refuse_newer(current, target, path)
        for migration in migrations[current:]:
            migration(conn)
        # PRAGMA takes no bound parameters; target is our own int.
        conn.execute(f"PRAGMA user_version = {int(target)}")
    return target
