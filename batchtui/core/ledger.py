"""The ledger: batchtui's local memory, one SQLite file in the data dir.

It holds the last known state of every batch seen (so the dashboard paints before any poll
returns, and history outlives provider retention), what we submitted (so `retry` can rebuild
requests that Anthropic and Gemini cannot give back), what we downloaded and analysed, retry
links, and create intents (so a create whose answer was lost can be matched later).

Several processes may share the file (the dashboard and a CLI command): WAL lets readers run
beside one writer, the busy timeout makes writers queue rather than fail, and each write is one
IMMEDIATE transaction. Within a process, one connection is shared by all threads behind a lock.
No API key ever reaches this module.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

from batchtui.core import ledger_schema as schema
from batchtui.core.ledger_schema import (
    Analysis,
    CreateIntent,
    Download,
    DownloadKind,
    IntentStatus,
    LedgerError,
    LedgerVersionError,
    RetryClaim,
    RetryClaimed,
    RetryLink,
    Submission,
)
from batchtui.core.models import Batch, Cost, ErrorBreakdown, Provider, Status, Usage
from batchtui.core.paths import ensure_private_dir

__all__ = [
    "Analysis",
    "CreateIntent",
    "Download",
    "DownloadKind",
    "IntentStatus",
    "Ledger",
    "LedgerError",
    "LedgerVersionError",
    "RetryClaim",
    "RetryClaimed",
    "RetryLink",
    "Submission",
]

BUSY_TIMEOUT_SECONDS = 10.0
FILE_MODE = 0o600  # the ledger holds users' prompts
_IN_CHUNK = 500  # ids per `IN (...)`, well under SQLite's bound-parameter limit


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _ts(moment: datetime) -> str:
    """Fixed-width UTC text, so the ledger's ORDER BY on it is time order."""
    if moment.tzinfo is None:  # our own timestamps are aware; a naive one can only mean UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _scrub(value: Any) -> Any:
    """Replace lone surrogates, which JSON escapes can carry but UTF-8 cannot, with U+FFFD."""
    if isinstance(value, str):
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


_M = TypeVar("_M", bound=BaseModel)


def _storable(model: _M) -> tuple[_M, str]:
    """The model as the ledger will hold it, and its JSON.

    A provider can put "\\ud800" in a message; pydantic cannot encode that, and one hostile
    string must not stop a whole poll from being recorded. Such a model is stored (and handed
    back) with U+FFFD in its place, which also keeps it printable.
    """
    try:
        return model, model.model_dump_json()
    except PydanticSerializationError:
        clean = type(model).model_validate(_scrub(model.model_dump(mode="json")))
        return clean, clean.model_dump_json()


def _create_private_file(path: Path) -> None:
    # Created here, before SQLite does, so it is born 0600 whatever the umask; an existing
    # file is left as its owner set it. SQLite gives -wal and -shm the main file's mode.
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


class Ledger:
    """Open with `Ledger.open(path)`; every method is synchronous and safe from any thread."""

    def __init__(self, conn: sqlite3.Connection, path: Path, clock: Callable[[], datetime]):
        self._conn = conn
        self._lock = threading.Lock()
        self.path = path
        self._clock = clock

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, clock: Callable[[], datetime] = _utc_now) -> Self:
        """Open (creating, migrating) the ledger at `path`: its directory private (0700), the
        file 0600. `clock` stamps submitted_at, downloaded_at...; tests pass a fixed one."""
        path = Path(path)
        try:
            ensure_private_dir(path.parent)
            _create_private_file(path)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves (see immediate_transaction).
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as e:
            raise LedgerError(f"cannot open the ledger {path}: {e}") from e
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            # Refuse a newer ledger before changing anything in it, even its journal mode.
            schema.refuse_newer(schema.schema_version(conn), len(schema.MIGRATIONS), path)
            schema.enable_wal(conn, BUSY_TIMEOUT_SECONDS)
            schema.migrate(conn, path, schema.MIGRATIONS)
        except sqlite3.DatabaseError as e:  # "file is not a database", a corrupt page...
            conn.close()
            raise LedgerError(f"cannot open the ledger {path}: {e}") from e
        except BaseException:
            conn.close()
            raise
        return cls(conn, path, clock)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self._lock, schema.immediate_transaction(self._conn) as conn:
            yield conn

    def _now(self) -> str:
        return _ts(self._clock())

    # Batches

    def upsert_batches(self, batches: Iterable[Batch]) -> list[Batch]:
        """Store the latest state of each batch; return those that are new or changed, as stored.

        A poll that finds nothing new takes no write lock, so it never waits behind (or holds
        up) another process; `updated_at` means "last changed", not "last polled".
        """
        prepared = [_storable(batch) for batch in batches]  # serialise outside the lock
        now = self._now()
        with self._lock:
            stored = self._stored_bodies([b.key for b, _ in prepared])
            candidates = [(b, body) for b, body in prepared if stored.get(b.key) != body]
            if not candidates:
                return []
            changed: list[Batch] = []
            with schema.immediate_transaction(self._conn) as conn:
                for batch, body in candidates:
                    # The WHERE re-checks under the write lock: another process may have stored
                    # the same state since we looked.
                    cursor = conn.execute(
                        """
                        INSERT INTO batches (account, batch_id, provider, status, created_at, updated_at, body)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT (account, batch_id) DO UPDATE SET
                            provider = excluded.provider, status = excluded.status,
                            created_at = excluded.created_at, updated_at = excluded.updated_at,
                            body = excluded.body
                        WHERE body <> excluded.body
                        """,
                        (batch.account, batch.id, batch.provider.value, batch.status.value,
                         _ts(batch.created_at), now, body),
                    )
                    if cursor.rowcount:
                        changed.append(batch)
        return changed

    def _stored_bodies(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The stored body of each (account, batch id) that has one, a few queries for all of
        them (one query per batch was most of a 10,000-batch listing's ledger time)."""
        by_account: dict[str, list[str]] = {}
        for account, batch_id in keys:
            by_account.setdefault(account, []).append(batch_id)
        found: dict[tuple[str, str], str] = {}
        for account, ids in by_account.items():
            for chunk in _chunks(ids):
                rows = self._conn.execute(
                    f"SELECT batch_id, body FROM batches WHERE account = ? AND batch_id IN ({_marks(chunk)})",
                    (account, *chunk),
                ).fetchall()
                found.update(((account, batch_id), body) for batch_id, body in rows)
        return found

    def batches(
        self, account: str | None = None, status: Status | None = None, *, limit: int | None = None
    ) -> list[Batch]:
        """Known batches, newest first."""
        where, params = [], []
        if account is not None:
            where.append("account = ?")
            params.append(account)
        if status is not None:
            where.append("status = ?")
            params.append(Status(status).value)
        sql = "SELECT body FROM batches"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, account, batch_id LIMIT ?"
        params.append(-1 if limit is None else limit)
        with self._reading() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [Batch.model_validate_json(body) for (body,) in rows]

    def get_batch(self, account: str, batch_id: str) -> Batch | None:
        with self._reading() as conn:
            row = conn.execute(
                "SELECT body FROM batches WHERE account = ? AND batch_id = ?", (account, batch_id)
            ).fetchone()
        return None if row is None else Batch.model_validate_json(row[0])

    def find_batch(self, batch_id: str) -> list[Batch]:
        """Every account's batch of that id (a CLI user may give an id without its account)."""
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT body FROM batches WHERE batch_id = ? ORDER BY account", (batch_id,)
            ).fetchall()
        return [Batch.model_validate_json(body) for (body,) in rows]

    def forget_account(self, account: str) -> int:
        """Drop everything recorded for an account; return how many batches it had."""
        with self._writing() as conn:
            n_batches = conn.execute("DELETE FROM batches WHERE account = ?", (account,)).rowcount
            # submission_lines go with their submissions (ON DELETE CASCADE).
            for table in ("submissions", "downloads", "retries", "retry_claims", "analyses", "create_intents"):
                conn.execute(f"DELETE FROM {table} WHERE account = ?", (account,))
        return n_batches

    # Submissions

    def record_submission(
        self,
        account: str,
        batch_id: str,
        input_path: str | os.PathLike[str],
        sha256: str,
        lines: Iterable[tuple[str, bytes]],
    ) -> Submission:
        """Record a batch we submitted and its request lines (custom_id, exact line bytes), in
        file order. Recording the same batch again replaces the earlier record."""
        key = (account, batch_id)
        with self._writing() as conn:
            conn.execute("DELETE FROM submissions WHERE account = ? AND batch_id = ?", key)
            conn.execute(
                "INSERT INTO submissions (account, batch_id, input_path, input_sha256, submitted_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (*key, os.fspath(input_path), sha256, self._now()),
            )
            # Streamed from the caller's iterable: a 200 MB input is never a list in memory.
            rows = ((*key, cid, seq, bytes(line)) for seq, (cid, line) in enumerate(lines, start=1))
            try:
                conn.executemany(
                    "INSERT INTO submission_lines (account, batch_id, custom_id, seq, line)"
                    " VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
            except sqlite3.IntegrityError as e:
                raise LedgerError(f"{account}: batch {batch_id} has a custom_id twice: {e}") from e
            submission = self._submission(conn, account, batch_id)
        assert submission is not None  # written in the transaction above
        return submission

    def submission(self, account: str, batch_id: str) -> Submission | None:
        with self._reading() as conn:
            return self._submission(conn, account, batch_id)

    def has_submission(self, account: str, batch_id: str) -> bool:
        with self._reading() as conn:
            row = conn.execute(
                "SELECT 1 FROM submissions WHERE account = ? AND batch_id = ?", (account, batch_id)
            ).fetchone()
        return row is not None

    def submission_lines(
        self, account: str, batch_id: str, custom_ids: Iterable[str] | None = None
    ) -> dict[str, bytes]:
        """custom_id -> the exact original line, in submission order. Ids we never recorded are
        simply absent: the caller tells the user which."""
        select = "SELECT seq, custom_id, line FROM submission_lines WHERE account = ? AND batch_id = ?"
        with self._reading() as conn:
            if custom_ids is None:
                rows = conn.execute(select, (account, batch_id)).fetchall()
            else:
                wanted = list(dict.fromkeys(custom_ids))
                rows = []
                for start in range(0, len(wanted), _IN_CHUNK):
                    chunk = wanted[start : start + _IN_CHUNK]
                    marks = ",".join("?" * len(chunk))
                    rows += conn.execute(
                        f"{select} AND custom_id IN ({marks})", (account, batch_id, *chunk)
                    ).fetchall()
        rows.sort()
        return {cid: line for _, cid, line in rows}

    @staticmethod
    def _submission(conn: sqlite3.Connection, account: str, batch_id: str) -> Submission | None:
        row = conn.execute(
            """
            SELECT input_path, input_sha256, submitted_at,
                   (SELECT count(*) FROM submission_lines l
                     WHERE l.account = s.account AND l.batch_id = s.batch_id)
            FROM submissions s WHERE account = ? AND batch_id = ?
            """,
            (account, batch_id),
        ).fetchone()
        if row is None:
            return None
        path, sha, at, n_lines = row
        return Submission(account, batch_id, path, sha, datetime.fromisoformat(at), n_lines)

    # Downloads

    def record_download(
        self,
        account: str,
        batch_id: str,
        kind: DownloadKind,
        path: str | os.PathLike[str],
        sha256: str,
        size: int,
        lines: int,
    ) -> Download:
        """Record a results or errors file written to disk. A download with the same sha256 as
        the one recorded keeps its `processed` flag (same bytes, same analysis); new bytes reset it."""
        with self._writing() as conn:
            conn.execute(
                """
                INSERT INTO downloads (account, batch_id, kind, path, sha256, size, lines, downloaded_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (account, batch_id, kind) DO UPDATE SET
                    path = excluded.path, size = excluded.size, lines = excluded.lines,
                    downloaded_at = excluded.downloaded_at,
                    processed = downloads.processed AND downloads.sha256 = excluded.sha256,
                    sha256 = excluded.sha256
                """,
                (account, batch_id, kind, os.fspath(path), sha256, size, lines, self._now()),
            )
            download = self._download(conn, account, batch_id, kind)
        assert download is not None  # written in the transaction above
        return download

    def download(self, account: str, batch_id: str, kind: DownloadKind) -> Download | None:
        """What we already fetched: a fetch that finds an intact one here has nothing to do."""
        with self._reading() as conn:
            return self._download(conn, account, batch_id, kind)

    def mark_processed(self, account: str, batch_id: str, kind: DownloadKind) -> None:
        with self._writing() as conn:
            cursor = conn.execute(
                "UPDATE downloads SET processed = 1 WHERE account = ? AND batch_id = ? AND kind = ?",
                (account, batch_id, kind),
            )
            if not cursor.rowcount:
                raise LedgerError(f"{account}: no {kind} download recorded for batch {batch_id}")

    @staticmethod
    def _download(conn: sqlite3.Connection, account: str, batch_id: str, kind: DownloadKind) -> Download | None:
        row = conn.execute(
            "SELECT path, sha256, size, lines, downloaded_at, processed FROM downloads"
            " WHERE account = ? AND batch_id = ? AND kind = ?",
            (account, batch_id, kind),
        ).fetchone()
        if row is None:
            return None
        path, sha, size, lines, at, processed = row
        return Download(
            account, batch_id, kind, Path(path), sha, size, lines, datetime.fromisoformat(at), bool(processed)
        )

    # Retries

    def record_retry(
        self, account: str, parent_id: str, child_id: str, custom_ids: Iterable[str]
    ) -> RetryLink:
        """Link a retry batch to the batch whose requests it resent (recording it again replaces)."""
        ids = tuple(custom_ids)
        now = self._now()
        with self._writing() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO retries (account, child_id, parent_id, custom_ids, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (account, child_id, parent_id, json.dumps(ids), now),
            )
        return RetryLink(account, parent_id, child_id, ids, datetime.fromisoformat(now))

    def children(self, account: str, batch_id: str) -> list[RetryLink]:
        """The retries sent for this batch, oldest first."""
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT child_id, parent_id, custom_ids, created_at FROM retries"
                " WHERE account = ? AND parent_id = ? ORDER BY created_at, child_id",
                (account, batch_id),
            ).fetchall()
        return [_retry_link(account, row) for row in rows]

    def parent(self, account: str, batch_id: str) -> RetryLink | None:
        """The link to the batch this one retried, if it is a retry."""
        with self._reading() as conn:
            row = conn.execute(
                "SELECT child_id, parent_id, custom_ids, created_at FROM retries"
                " WHERE account = ? AND child_id = ?",
                (account, batch_id),
            ).fetchone()
        return None if row is None else _retry_link(account, row)

    # Retry claims

    def claim_retry(self, account: str, parent_id: str, token: str) -> RetryClaim:
        """Claim the right to send a retry of `parent_id`, before sending it. Atomic across
        processes: looked up and inserted under one write lock (the primary key a backstop).
        Raises RetryClaimed, naming the holder, when another retry holds it."""
        now = self._now()
        claim = RetryClaim(account, parent_id, token, os.getpid(), datetime.fromisoformat(now))
        with self._writing() as conn:
            held = self._retry_claim(conn, account, parent_id)
            if held is None:
                conn.execute(
                    "INSERT INTO retry_claims (account, parent_id, token, pid, claimed_at) VALUES (?, ?, ?, ?, ?)",
                    (account, parent_id, token, claim.pid, now),
                )
                return claim
        raise RetryClaimed(
            f"batch {parent_id} is already being retried by another batchtui (retry {held.token}, "
            f"process {held.pid}, since {held.claimed_at:%Y-%m-%d %H:%M:%S} UTC)", held)

    def release_retry_claim(self, account: str, parent_id: str, token: str) -> bool:
        """Let go of our claim (only ours: a claim taken since by another retry stays)."""
        with self._writing() as conn:
            return conn.execute(
                "DELETE FROM retry_claims WHERE account = ? AND parent_id = ? AND token = ?",
                (account, parent_id, token),
            ).rowcount > 0

    def retry_claim(self, account: str, parent_id: str) -> RetryClaim | None:
        with self._reading() as conn:
            return self._retry_claim(conn, account, parent_id)

    @staticmethod
    def _retry_claim(conn: sqlite3.Connection, account: str, parent_id: str) -> RetryClaim | None:
        row = conn.execute(
            "SELECT token, pid, claimed_at FROM retry_claims WHERE account = ? AND parent_id = ?",
            (account, parent_id),
        ).fetchone()
        if row is None:
            return None
        token, pid, at = row
        return RetryClaim(account, parent_id, token, pid, datetime.fromisoformat(at))

    # Analysis

    def record_analysis(
        self,
        account: str,
        batch_id: str,
        breakdown: ErrorBreakdown,
        usage_by_model: dict[str, Usage],
        cost: Cost,
    ) -> Analysis:
        """Store a batch's results analysis (replacing any earlier one); return it as stored."""
        analysis, body = _storable(
            Analysis(breakdown=breakdown, usage_by_model=usage_by_model, cost=cost, analyzed_at=self._clock())
        )
        with self._writing() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO analyses (account, batch_id, body) VALUES (?, ?, ?)",
                (account, batch_id, body),
            )
        return analysis

    def analysis(self, account: str, batch_id: str) -> Analysis | None:
        with self._reading() as conn:
            row = conn.execute(
                "SELECT body FROM analyses WHERE account = ? AND batch_id = ?", (account, batch_id)
            ).fetchone()
        return None if row is None else Analysis.model_validate_json(row[0])

    def analyses(self, account: str, batch_ids: Iterable[str]) -> dict[str, Analysis]:
        """`analysis` for many batches of one account at once: batch id -> analysis, for those
        that have one."""
        found: dict[str, Analysis] = {}
        with self._reading() as conn:
            for chunk in _chunks(list(dict.fromkeys(batch_ids))):
                rows = conn.execute(
                    f"SELECT batch_id, body FROM analyses WHERE account = ? AND batch_id IN ({_marks(chunk)})",
                    (account, *chunk),
                ).fetchall()
                found.update((batch_id, Analysis.model_validate_json(body)) for batch_id, body in rows)
        return found

    def analysed_ids(self, account: str, batch_ids: Iterable[str]) -> set[str]:
        """Which of these batches of one account have an analysis: `analyses` without reading
        the bodies, for the poller's check of thousands of ended batches at once."""
        found: set[str] = set()
        with self._reading() as conn:
            for chunk in _chunks(list(dict.fromkeys(batch_ids))):
                rows = conn.execute(
                    f"SELECT batch_id FROM analyses WHERE account = ? AND batch_id IN ({_marks(chunk)})",
                    (account, *chunk),
                ).fetchall()
                found.update(batch_id for (batch_id,) in rows)
        return found

    # Create intents

    def record_create_intent(
        self,
        token: str,
        account: str,
        provider: Provider,
        n_requests: int,
        *,
        input_path: str | os.PathLike[str] | None = None,
        input_sha256: str | None = None,
    ) -> CreateIntent:
        """Record, before sending it, a create tagged with `token` (which the caller also puts in
        the batch's metadata). The input's path and hash let a later match record the submission."""
        path = None if input_path is None else os.fspath(input_path)
        now = self._now()
        try:
            with self._writing() as conn:
                conn.execute(
                    "INSERT INTO create_intents (token, account, provider, created_at, n_requests,"
                    " input_path, input_sha256) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (token, account, Provider(provider).value, now, n_requests, path, input_sha256),
                )
        except sqlite3.IntegrityError as e:
            raise LedgerError(f"create intent token {token!r} is already recorded") from e
        return CreateIntent(
            token, account, Provider(provider), datetime.fromisoformat(now), n_requests,
            IntentStatus.SENT, None, path, input_sha256,
        )

    def confirm_create_intent(self, token: str, batch_id: str) -> CreateIntent:
        """The create made `batch_id`: from its answer, or found later by its token. A 'failed'
        intent may still be confirmed, since finding the batch proves the failure was not one."""
        with self._writing() as conn:
            intent = self._known_intent(conn, token)
            if intent.status is IntentStatus.CONFIRMED and intent.batch_id != batch_id:
                raise LedgerError(
                    f"create intent {token!r} is already confirmed as batch {intent.batch_id}, not {batch_id}"
                )
            conn.execute(
                "UPDATE create_intents SET status = 'confirmed', batch_id = ? WHERE token = ?",
                (batch_id, token),
            )
            return self._known_intent(conn, token)

    def fail_create_intent(self, token: str) -> CreateIntent:
        """The provider refused the create: nothing to look for later."""
        with self._writing() as conn:
            intent = self._known_intent(conn, token)
            if intent.status is IntentStatus.CONFIRMED:
                raise LedgerError(f"create intent {token!r} is confirmed as batch {intent.batch_id}")
            conn.execute("UPDATE create_intents SET status = 'failed' WHERE token = ?", (token,))
            return self._known_intent(conn, token)

    def create_intent(self, token: str) -> CreateIntent | None:
        with self._reading() as conn:
            return self._intent(conn, token)

    def open_create_intents(self, account: str | None = None) -> list[CreateIntent]:
        """Creates sent whose outcome we never learnt, oldest first: look for their tokens."""
        sql = f"SELECT {_INTENT_COLUMNS} FROM create_intents WHERE status = 'sent'"
        params: tuple[str, ...] = ()
        if account is not None:
            sql += " AND account = ?"
            params = (account,)
        with self._reading() as conn:
            rows = conn.execute(sql + " ORDER BY created_at, token", params).fetchall()
        return [_create_intent(row) for row in rows]

    @staticmethod
    def _intent(conn: sqlite3.Connection, token: str) -> CreateIntent | None:
        row = conn.execute(f"SELECT {_INTENT_COLUMNS} FROM create_intents WHERE token = ?", (token,)).fetchone()
        return None if row is None else _create_intent(row)

    @classmethod
    def _known_intent(cls, conn: sqlite3.Connection, token: str) -> CreateIntent:
        intent = cls._intent(conn, token)
        if intent is None:
            raise LedgerError(f"no create intent with token {token!r}")
        return intent


_INTENT_COLUMNS = "token, account, provider, created_at, n_requests, status, batch_id, input_path, input_sha256"


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), _IN_CHUNK):
        yield ids[start : start + _IN_CHUNK]


def _marks(chunk: list[str]) -> str:
    return ", ".join("?" * len(chunk))


def _create_intent(row: tuple[Any, ...]) -> CreateIntent:
    token, account, provider, at, n, status, batch_id, path, sha = row
    return CreateIntent(
        token, account, Provider(provider), datetime.fromisoformat(at), n, IntentStatus(status), batch_id, path, sha
    )


def _retry_link(account: str, row: tuple[Any, ...]) -> RetryLink:
    child_id, parent_id, custom_ids, at = row
    return RetryLink(account, parent_id, child_id, tuple(json.loads(custom_ids)), datetime.fromisoformat(at))
