"""The ledger: schema versions, file modes, each table's round trip, and sharing between
threads and processes."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import os
import sqlite3
import stat
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchtui.core import ledger_schema
from batchtui.core.ledger import (
    Analysis,
    IntentStatus,
    Ledger,
    LedgerError,
    LedgerVersionError,
    RetryClaimed,
)
from batchtui.core.models import (
    Batch,
    BatchError,
    Cost,
    ErrorBreakdown,
    ErrorGroup,
    Outcome,
    Provider,
    RequestCounts,
    ResultFile,
    Status,
    Usage,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CURRENT = len(ledger_schema.MIGRATIONS)


class Clock:
    """A clock the test moves by hand, so timestamps are exact."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1) -> None:
        self.now += timedelta(seconds=seconds)


def make_batch(batch_id: str = "batch_1", account: str = "main", **changes: object) -> Batch:
    fields: dict[str, object] = {
        "account": account,
        "provider": Provider.OPENAI,
        "id": batch_id,
        "status": Status.IN_PROGRESS,
        "provider_status": "in_progress",
        "created_at": T0,
        "model": "gpt-4o-mini",
        "counts": RequestCounts(total=10, succeeded=3, failed=1),
        "metadata": {"project": "eval"},
        "result_files": (ResultFile(kind="results", ref="file-abc"),),
        "raw": {"id": batch_id, "object": "batch", "nested": {"list": [1, 2.5, None, "x"]}},
    }
    fields.update(changes)
    return Batch(**fields)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock):
    with Ledger.open(tmp_path / "ledger.db", clock=clock) as opened:
        yield opened


def raw_connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def query(path: Path, sql: str) -> list[tuple]:
    """Read the file behind the ledger's back, as another process would."""
    conn = raw_connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def user_version(path: Path) -> int:
    return query(path, "PRAGMA user_version")[0][0]


# Opening, modes, versions


def test_open_creates_private_dirs_and_file_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "data" / "nested" / "ledger.db"
    old_umask = os.umask(0)  # the most permissive: modes must come from our code, not the umask
    try:
        with Ledger.open(path) as ledger:
            ledger.upsert_batches([make_batch()])
            wal = Path(f"{path}-wal")
            assert wal.exists()  # the write went to the WAL, which must be as private as the db
            assert stat.S_IMODE(wal.stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_open_sets_wal_busy_timeout_and_current_version(ledger: Ledger) -> None:
    assert query(ledger.path, "PRAGMA journal_mode") == [("wal",)]
    assert user_version(ledger.path) == CURRENT
    # Per-connection settings: only the ledger's own connection can tell.
    assert ledger._conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000
    assert ledger._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_an_empty_v0_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    raw_connect(path).close()  # an empty SQLite file, user_version 0
    assert user_version(path) == 0
    with Ledger.open(path) as ledger:
        ledger.upsert_batches([make_batch()])
        assert ledger.get_batch("main", "batch_1") == make_batch()
    assert user_version(path) == CURRENT


def test_a_current_database_reopens_without_running_migrations_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ledger.db"
    with Ledger.open(path) as ledger:
        ledger.upsert_batches([make_batch()])

    def must_not_run(conn: sqlite3.Connection) -> None:
        raise AssertionError("a migration ran twice")

    monkeypatch.setattr(ledger_schema, "MIGRATIONS", (must_not_run,) * CURRENT)
    with Ledger.open(path) as ledger:
        assert ledger.get_batch("main", "batch_1") == make_batch()
    assert user_version(path) == CURRENT


def test_a_newer_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    conn = raw_connect(path)
    conn.execute(f"PRAGMA user_version = {CURRENT + 1}")
    conn.close()
    with pytest.raises(LedgerVersionError, match=rf"newer batchtui.*v{CURRENT + 1}.*up to v{CURRENT}"):
        Ledger.open(path)
    assert user_version(path) == CURRENT + 1
    assert query(path, "PRAGMA journal_mode") == [("delete",)]  # not even switched to WAL
    assert query(path, "SELECT count(*) FROM sqlite_master") == [(0,)]


def test_appending_a_migration_upgrades_an_existing_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ledger.db"
    with Ledger.open(path) as ledger:
        ledger.upsert_batches([make_batch()])

    def add_labels(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE labels (account TEXT, batch_id TEXT, label TEXT)")

    monkeypatch.setattr(ledger_schema, "MIGRATIONS", (*ledger_schema.MIGRATIONS, add_labels))
    with Ledger.open(path) as ledger:
        assert ledger.get_batch("main", "batch_1") == make_batch()
    assert user_version(path) == CURRENT + 1
    assert query(path, "SELECT count(*) FROM labels") == [(0,)]


def test_a_failing_migration_leaves_the_ledger_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ledger.db"
    Ledger.open(path).close()

    def half_done(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half (x)")
        raise RuntimeError("migration bug")

    with monkeypatch.context() as patch:
        patch.setattr(ledger_schema, "MIGRATIONS", (*ledger_schema.MIGRATIONS, half_done))
        with pytest.raises(RuntimeError, match="migration bug"):
            Ledger.open(path)
    assert user_version(path) == CURRENT
    assert query(path, "SELECT count(*) FROM sqlite_master WHERE name = 'half'") == [(0,)]
    Ledger.open(path).close()


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(LedgerError, match=r"cannot open the ledger .*ledger\.db"):
        Ledger.open(path)


# Batches


def test_batches_round_trip_and_list_newest_first(ledger: Ledger) -> None:
    old = make_batch("b_old", created_at=T0 - timedelta(days=2), status=Status.COMPLETED)
    new = make_batch("b_new", created_at=T0 + timedelta(hours=1))
    other = make_batch("b_mid", account="work", provider=Provider.ANTHROPIC, created_at=T0)
    ledger.upsert_batches([old, new, other])

    assert ledger.get_batch("main", "b_old") == old
    assert ledger.get_batch("main", "b_mid") is None
    assert [b.id for b in ledger.batches()] == ["b_new", "b_mid", "b_old"]
    assert [b.id for b in ledger.batches(account="main")] == ["b_new", "b_old"]
    assert ledger.batches(status=Status.COMPLETED) == [old]
    assert ledger.batches(account="work", status=Status.COMPLETED) == []
    assert [b.id for b in ledger.batches(limit=1)] == ["b_new"]


def test_created_at_in_other_time_zones_still_sorts_by_instant(ledger: Ledger) -> None:
    plus_five = timezone(timedelta(hours=5))
    # 16:00+05:00 is 11:00 UTC: older than 11:30 UTC although its text would sort later.
    ledger.upsert_batches(
        [
            make_batch("a", created_at=datetime(2025, 3, 1, 16, 0, tzinfo=plus_five)),
            make_batch("b", created_at=datetime(2025, 3, 1, 11, 30, tzinfo=UTC)),
        ]
    )
    assert [b.id for b in ledger.batches()] == ["b", "a"]


def test_find_batch_looks_across_accounts(ledger: Ledger) -> None:
    ledger.upsert_batches([make_batch("same", account="a"), make_batch("same", account="b"), make_batch("x")])
    assert [b.account for b in ledger.find_batch("same")] == ["a", "b"]
    assert ledger.find_batch("missing") == []


def test_upsert_returns_only_new_or_changed_batches(ledger: Ledger, clock: Clock) -> None:
    first = [make_batch("b1"), make_batch("b2"), make_batch("b3")]
    assert ledger.upsert_batches(first) == first
    clock.tick()
    assert ledger.upsert_batches(first) == []

    progressed = make_batch("b2", counts=RequestCounts(total=10, succeeded=9, failed=1))
    clock.tick()
    assert ledger.upsert_batches([first[0], progressed, first[2], make_batch("b4")]) == [
        progressed,
        make_batch("b4"),
    ]
    assert ledger.get_batch("main", "b2") == progressed
    updated = dict(query(ledger.path, "SELECT batch_id, updated_at FROM batches"))
    # Unchanged rows were not rewritten: updated_at is when the state last changed.
    assert updated["b1"] == T0.isoformat(timespec="microseconds")
    assert updated["b2"] == (T0 + timedelta(seconds=2)).isoformat(timespec="microseconds")


def test_a_poll_with_nothing_new_does_not_wait_for_the_write_lock(ledger: Ledger) -> None:
    batches = [make_batch("b1"), make_batch("b2")]
    ledger.upsert_batches(batches)
    other_process = raw_connect(ledger.path)
    other_process.execute("BEGIN IMMEDIATE")  # another writer holds the lock for a long time
    try:
        assert ledger.upsert_batches(batches) == []  # would wait 10 s, then fail, if it locked
        assert ledger.batches() != []  # and reads go on beside the writer (WAL)
    finally:
        other_process.execute("ROLLBACK")
        other_process.close()


def test_upsert_indexes_the_new_status(ledger: Ledger) -> None:
    ledger.upsert_batches([make_batch()])
    ledger.upsert_batches([make_batch(status=Status.COMPLETED, provider_status="completed")])
    assert ledger.batches(status=Status.IN_PROGRESS) == []
    assert [b.id for b in ledger.batches(status=Status.COMPLETED)] == ["batch_1"]


HOSTILE = [
    "[bold red]pwned[/bold red] [link=https://evil.example]click[/link]",
    "\x1b[2J\x1b[31mred\x1b[0m\x1b]0;title\x07",
    "nul\x00byte",
    "\r\n\t\u202e\u200b right-to-left override",
    "emoji 🧪 and CJK 漢字",
    "'; DROP TABLE batches; --",
    "x" * 100_000,
]


def test_hostile_strings_round_trip_byte_exact(ledger: Ledger) -> None:
    batch = make_batch(
        "[red]id\x1b[0m",
        account="acct",
        name=HOSTILE[0],
        metadata={f"k{i}": text for i, text in enumerate(HOSTILE)},
        errors=tuple(BatchError(code=text[:50], message=text, line=i) for i, text in enumerate(HOSTILE)),
        raw={"message": HOSTILE[-1] * 2, HOSTILE[1]: HOSTILE[2]},
    )
    ledger.upsert_batches([batch])
    stored = ledger.get_batch("acct", "[red]id\x1b[0m")
    assert stored is not None
    assert stored.model_dump_json() == batch.model_dump_json()
    assert stored.metadata == batch.metadata and stored.errors == batch.errors
    assert ledger.upsert_batches([batch]) == []


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(min_size=0, max_size=200))
def test_any_text_round_trips(ledger: Ledger, text: str) -> None:
    batch = make_batch("prop", metadata={text: text}, errors=(BatchError(message=text),))
    ledger.upsert_batches([batch])
    assert ledger.get_batch("main", "prop") == batch


def test_a_lone_surrogate_is_stored_as_replacement_and_does_not_fail_the_poll(ledger: Ledger) -> None:
    # json.loads('"\\ud800"') yields this string: any provider JSON can carry one.
    hostile = make_batch("bad", metadata={"note": "a\ud800b"})
    fine = make_batch("fine")
    changed = ledger.upsert_batches([hostile, fine])
    assert [b.metadata for b in changed] == [{"note": "a\ufffdb"}, fine.metadata]
    assert ledger.get_batch("main", "bad").metadata == {"note": "a\ufffdb"}  # type: ignore[union-attr]
    assert ledger.upsert_batches([hostile, fine]) == []


# Submissions


def test_submission_lines_round_trip_exact_bytes_in_order(ledger: Ledger, clock: Clock) -> None:
    lines = [
        ("req-2", b'{"custom_id": "req-2", "params": {}}\n'),
        ("req-1", b'{"custom_id":"req-1"}\r\n'),
        ("odd", b"\xff\xfe not utf-8 \x00 and no newline"),
    ]
    assert not ledger.has_submission("main", "b1")
    submission = ledger.record_submission("main", "b1", Path("/in/requests.jsonl"), "ab" * 32, iter(lines))
    assert submission.n_lines == 3 and submission.submitted_at == T0
    assert submission.input_path == "/in/requests.jsonl" and submission.input_sha256 == "ab" * 32
    assert ledger.has_submission("main", "b1")
    assert not ledger.has_submission("other", "b1")

    everything = ledger.submission_lines("main", "b1")
    assert list(everything.items()) == lines  # same bytes, same order
    assert ledger.submission_lines("main", "b1", ["odd", "req-2", "never-sent"]) == {
        "req-2": lines[0][1],
        "odd": lines[2][1],
    }
    assert list(ledger.submission_lines("main", "b1", ["odd", "req-2"])) == ["req-2", "odd"]


def test_submission_lines_lookup_beyond_one_query_chunk(ledger: Ledger) -> None:
    lines = [(f"id-{i}", f"line {i}\n".encode()) for i in range(1_300)]
    ledger.record_submission("main", "big", "in.jsonl", "0" * 64, lines)
    wanted = [f"id-{i}" for i in range(0, 1_300, 2)]
    got = ledger.submission_lines("main", "big", reversed(wanted))
    assert list(got) == wanted
    assert got["id-1298"] == b"line 1298\n"


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payloads=st.lists(st.binary(max_size=300), max_size=20))
def test_any_bytes_round_trip(ledger: Ledger, payloads: list[bytes]) -> None:
    lines = [(f"c{i}", payload) for i, payload in enumerate(payloads)]
    ledger.record_submission("main", "prop", "in.jsonl", "0" * 64, lines)
    assert list(ledger.submission_lines("main", "prop").items()) == lines


def test_recording_a_submission_again_replaces_it(ledger: Ledger) -> None:
    ledger.record_submission("main", "b1", "a.jsonl", "1" * 64, [("x", b"1"), ("y", b"2")])
    ledger.record_submission("main", "b1", "b.jsonl", "2" * 64, [("z", b"3")])
    assert ledger.submission_lines("main", "b1") == {"z": b"3"}
    assert ledger.submission("main", "b1").input_path == "b.jsonl"  # type: ignore[union-attr]


def test_a_duplicate_custom_id_is_refused_and_nothing_is_kept(ledger: Ledger) -> None:
    ledger.record_submission("main", "b1", "a.jsonl", "1" * 64, [("x", b"1")])
    with pytest.raises(LedgerError, match="custom_id twice"):
        ledger.record_submission("main", "b1", "b.jsonl", "2" * 64, [("y", b"1"), ("y", b"2")])
    # The transaction rolled back: the earlier record is intact.
    assert ledger.submission_lines("main", "b1") == {"x": b"1"}
    assert ledger.submission("main", "b1").input_path == "a.jsonl"  # type: ignore[union-attr]


# Downloads


def test_a_second_fetch_finds_the_first_download(ledger: Ledger, tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    results.write_bytes(b"line\n" * 4)
    assert ledger.download("main", "b1", "results") is None

    recorded = ledger.record_download("main", "b1", "results", results, "c" * 64, size=20, lines=4)
    found = ledger.download("main", "b1", "results")
    assert found == recorded
    assert (found.path, found.sha256, found.size, found.lines) == (results, "c" * 64, 20, 4)
    assert found.downloaded_at == T0 and not found.processed
    assert found.is_on_disk()
    assert ledger.download("main", "b1", "errors") is None

    results.unlink()  # a user cleaning up: the record is there but the fetch must happen again
    assert not found.is_on_disk()


def test_processed_survives_the_same_bytes_and_resets_on_new_ones(ledger: Ledger, clock: Clock) -> None:
    ledger.record_download("main", "b1", "errors", "e.jsonl", "a" * 64, size=5, lines=1)
    ledger.mark_processed("main", "b1", "errors")
    assert ledger.download("main", "b1", "errors").processed  # type: ignore[union-attr]

    clock.tick()
    again = ledger.record_download("main", "b1", "errors", "e2.jsonl", "a" * 64, size=5, lines=1)
    assert again.processed and again.path == Path("e2.jsonl") and again.downloaded_at == clock.now

    changed = ledger.record_download("main", "b1", "errors", "e2.jsonl", "b" * 64, size=6, lines=2)
    assert not changed.processed


def test_mark_processed_without_a_download_is_an_error(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="no results download"):
        ledger.mark_processed("main", "nope", "results")


def test_an_unknown_download_kind_is_refused_by_the_schema(ledger: Ledger) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        ledger.record_download("main", "b1", "output", "o", "0" * 64, size=0, lines=0)  # type: ignore[arg-type]


# Retries


def test_retry_links_go_both_ways(ledger: Ledger, clock: Clock) -> None:
    first = ledger.record_retry("main", "parent", "child1", ["a", "b"])
    clock.tick()
    second = ledger.record_retry("main", "parent", "child2", iter(["c"]))
    ledger.record_retry("main", "child1", "grandchild", ["a"])

    assert ledger.children("main", "parent") == [first, second]
    assert second.custom_ids == ("c",) and second.created_at == clock.now
    assert ledger.parent("main", "child2") == second
    assert ledger.parent("main", "grandchild").parent_id == "child1"  # type: ignore[union-attr]
    assert ledger.parent("main", "parent") is None
    assert ledger.children("other", "parent") == []


def test_a_batch_cannot_retry_itself(ledger: Ledger) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        ledger.record_retry("main", "b1", "b1", ["a"])


# Retry claims


def test_a_second_retry_claim_fails_cleanly_naming_the_batch_and_the_holder(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "ledger.db"
    with Ledger.open(path, clock=clock) as first, Ledger.open(path, clock=clock) as second:
        claim = first.claim_retry("main", "batch_1", "tok-first")
        assert (claim.token, claim.pid, claim.claimed_at) == ("tok-first", os.getpid(), T0)
        with pytest.raises(RetryClaimed) as refused:
            second.claim_retry("main", "batch_1", "tok-second")
        assert "batch_1" in str(refused.value) and "tok-first" in str(refused.value)
        assert refused.value.claim == claim
        # Other batches, and the same id in another account, are claimed on their own.
        second.claim_retry("main", "batch_2", "tok-second")
        second.claim_retry("other", "batch_1", "tok-second")
        # Only the holder lets go; then the batch can be retried again.
        assert second.release_retry_claim("main", "batch_1", "tok-second") is False
        assert second.retry_claim("main", "batch_1") == claim
        assert first.release_retry_claim("main", "batch_1", "tok-first") is True
        assert second.retry_claim("main", "batch_1") is None
        assert second.claim_retry("main", "batch_1", "tok-second").token == "tok-second"


def test_a_v1_ledger_gains_the_retry_claims_and_keeps_its_batches(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "ledger.db"
    with monkeypatch.context() as patch:
        patch.setattr(ledger_schema, "MIGRATIONS", ledger_schema.MIGRATIONS[:1])
        with Ledger.open(path) as ledger:
            ledger.upsert_batches([make_batch()])
    assert user_version(path) == 1
    with Ledger.open(path) as ledger:
        assert ledger.get_batch("main", "batch_1") == make_batch()
        assert ledger.claim_retry("main", "batch_1", "tok").token == "tok"
    assert user_version(path) == CURRENT

def test_forget_account_drops_its_retry_claims(ledger: Ledger) -> None:
    ledger.claim_retry("main", "batch_1", "tok")
    ledger.claim_retry("other", "batch_1", "tok")
    ledger.forget_account("main")
    assert ledger.retry_claim("main", "batch_1") is None
    assert ledger.retry_claim("other", "batch_1") is not None


def _claim(path: str, worker: int, start: multiprocessing.synchronize.Barrier, won: multiprocessing.Queue) -> None:
    """One process racing the others for the same retry claim; reports what it got."""
    with Ledger.open(path) as ledger:
        start.wait()
        try:
            ledger.claim_retry("main", "batch_1", f"tok-{worker}")
        except RetryClaimed as e:
            won.put((worker, "refused", e.claim.token))
        else:
            won.put((worker, "claimed", f"tok-{worker}"))


def test_processes_racing_for_one_retry_claim_leave_exactly_one_holder(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    Ledger.open(path).close()  # migrated before the race: the race is for the claim
    spawn = multiprocessing.get_context("spawn")
    n = 4
    start, won = spawn.Barrier(n), spawn.Queue()
    racers = [spawn.Process(target=_claim, args=(str(path), w, start, won)) for w in range(n)]
    for process in racers:
        process.start()
    outcomes = [won.get(timeout=120) for _ in racers]
    for process in racers:
        process.join(timeout=120)
    assert [p.exitcode for p in racers] == [0] * n
    winners = [token for _, what, token in outcomes if what == "claimed"]
    assert len(winners) == 1
    # Every loser was told who holds it.
    assert {token for _, what, token in outcomes if what == "refused"} == set(winners)
    assert query(path, "SELECT token FROM retry_claims") == [(winners[0],)]


# Analysis


def test_analysis_round_trips(ledger: Ledger) -> None:
    assert ledger.analysis("main", "b1") is None
    breakdown = ErrorBreakdown(
        outcomes={Outcome.SUCCEEDED: 8, Outcome.SERVER_ERROR: 2},
        groups=(ErrorGroup(outcome=Outcome.SERVER_ERROR, error_type="500", count=2, sample_message="[b]boom"),),
        unparseable=1,
        unparseable_lines=(7,),
    )
    usage = {"gpt-4o-mini": Usage(input=100, cached_input=20, output=50), "gpt-4o": Usage(input=1)}
    cost = Cost(usd=0.0123, standard_usd=0.0246)
    recorded = ledger.record_analysis("main", "b1", breakdown, usage, cost)

    stored = ledger.analysis("main", "b1")
    assert stored == recorded == Analysis(breakdown=breakdown, usage_by_model=usage, cost=cost, analyzed_at=T0)
    assert stored.breakdown.failed == 3  # type: ignore[union-attr]
    assert list(stored.breakdown.outcomes) == [Outcome.SUCCEEDED, Outcome.SERVER_ERROR]  # type: ignore[union-attr]

    unknown = Cost(usd=None, reason="no price for gpt-9")
    ledger.record_analysis("main", "b1", breakdown, {}, unknown)
    assert ledger.analysis("main", "b1").cost == unknown  # type: ignore[union-attr]


def test_analysed_ids_names_the_analysed_batches_of_one_account(ledger: Ledger) -> None:
    ids = [f"b{i}" for i in range(1_300)]  # more than one IN (...) chunk
    for batch_id in ids[::100]:
        ledger.record_analysis("main", batch_id, ErrorBreakdown(), {}, Cost())
    ledger.record_analysis("other", "b1", ErrorBreakdown(), {}, Cost())
    assert ledger.analysed_ids("main", ids) == set(ids[::100])
    assert ledger.analysed_ids("main", ["b1", "b0", "b0"]) == {"b0"}
    assert ledger.analysed_ids("main", []) == set()


# Create intents


def test_create_intents_from_sent_to_confirmed_or_failed(ledger: Ledger, clock: Clock) -> None:
    a = ledger.record_create_intent("tok-a", "main", Provider.ANTHROPIC, 12, input_path="in.jsonl", input_sha256="f" * 64)
    clock.tick()
    b = ledger.record_create_intent("tok-b", "main", Provider.ANTHROPIC, 3)
    ledger.record_create_intent("tok-c", "work", Provider.OPENAI, 1)

    assert ledger.open_create_intents("main") == [a, b]
    assert a.status is IntentStatus.SENT and a.batch_id is None and a.n_requests == 12
    assert {i.token for i in ledger.open_create_intents()} == {"tok-a", "tok-b", "tok-c"}

    confirmed = ledger.confirm_create_intent("tok-a", "msgbatch_1")
    assert confirmed.status is IntentStatus.CONFIRMED and confirmed.batch_id == "msgbatch_1"
    assert confirmed.input_path == "in.jsonl"
    assert ledger.confirm_create_intent("tok-a", "msgbatch_1") == confirmed  # idempotent
    assert ledger.fail_create_intent("tok-b").status is IntentStatus.FAILED
    assert ledger.open_create_intents("main") == []
    assert ledger.create_intent("tok-a") == confirmed
    assert ledger.create_intent("nope") is None


def test_create_intent_mistakes_are_refused(ledger: Ledger) -> None:
    ledger.record_create_intent("tok", "main", Provider.GEMINI, 1)
    with pytest.raises(LedgerError, match="already recorded"):
        ledger.record_create_intent("tok", "main", Provider.GEMINI, 1)
    with pytest.raises(LedgerError, match="no create intent"):
        ledger.confirm_create_intent("missing", "b")
    ledger.confirm_create_intent("tok", "batches/1")
    with pytest.raises(LedgerError, match="already confirmed as batch batches/1"):
        ledger.confirm_create_intent("tok", "batches/2")
    with pytest.raises(LedgerError, match="confirmed"):
        ledger.fail_create_intent("tok")


def test_a_failed_intent_can_still_be_confirmed_when_its_batch_turns_up(ledger: Ledger) -> None:
    ledger.record_create_intent("tok", "main", Provider.OPENAI, 1)
    ledger.fail_create_intent("tok")
    assert ledger.confirm_create_intent("tok", "batch_9").status is IntentStatus.CONFIRMED


# Forgetting an account


def test_forget_account_drops_everything_of_that_account_only(ledger: Ledger) -> None:
    for account in ("gone", "kept"):
        ledger.upsert_batches([make_batch("b1", account=account), make_batch("b2", account=account)])
        ledger.record_submission(account, "b1", "in.jsonl", "0" * 64, [("x", b"1")])
        ledger.record_download(account, "b1", "results", "r.jsonl", "0" * 64, size=1, lines=1)
        ledger.record_retry(account, "b1", "b2", ["x"])
        ledger.record_analysis(account, "b1", ErrorBreakdown(), {}, Cost())
        ledger.record_create_intent(f"tok-{account}", account, Provider.OPENAI, 1)

    assert ledger.forget_account("gone") == 2

    assert ledger.batches(account="gone") == []
    assert not ledger.has_submission("gone", "b1")
    assert query(ledger.path, "SELECT count(*) FROM submission_lines WHERE account = 'gone'") == [(0,)]
    assert ledger.download("gone", "b1", "results") is None
    assert ledger.children("gone", "b1") == []
    assert ledger.analysis("gone", "b1") is None
    assert ledger.open_create_intents("gone") == []

    assert len(ledger.batches(account="kept")) == 2
    assert ledger.submission_lines("kept", "b1") == {"x": b"1"}
    assert ledger.download("kept", "b1", "results") is not None
    assert [link.child_id for link in ledger.children("kept", "b1")] == ["b2"]
    assert ledger.analysis("kept", "b1") is not None
    assert len(ledger.open_create_intents("kept")) == 1


def test_the_schema_has_no_place_for_a_key(ledger: Ledger) -> None:
    tables = [name for (name,) in query(ledger.path, "SELECT name FROM sqlite_master WHERE type = 'table'")]
    columns = {row[1] for table in tables for row in query(ledger.path, f"PRAGMA table_info({table})")}
    assert len(tables) == 8 and "body" in columns
    assert not [c for c in columns if "key" in c or "secret" in c or "auth" in c]


# Sharing


def test_threads_share_one_ledger(ledger: Ledger) -> None:
    n_threads, per_thread = 8, 60
    start = threading.Barrier(n_threads)
    failures: list[BaseException] = []

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                ledger.upsert_batches([make_batch(f"t{t}-{i}")])
                ledger.record_submission("main", f"t{t}-{i}", "in", "0" * 64, [("x", b"%d" % i)])
                assert ledger.get_batch("main", f"t{t}-{i}") is not None
        except BaseException as e:  # reported below: an exception in a thread is otherwise lost
            failures.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(ledger.batches()) == n_threads * per_thread
    assert ledger.submission_lines("main", "t7-59") == {"x": b"59"}


N_PER_PROCESS = 300


def _hammer(path: str, worker: int, start: multiprocessing.synchronize.Barrier) -> None:
    """One process's share of the two-process test: its own rows, plus rows both processes write."""
    start.wait()  # both open the fresh file at once, racing the first migration too
    with Ledger.open(path) as ledger:
        for i in range(N_PER_PROCESS):
            status = Status.COMPLETED if i % 2 else Status.IN_PROGRESS
            ledger.upsert_batches(
                [
                    make_batch(f"b{i}", account=f"w{worker}", status=status),
                    make_batch(f"b{i}", account="shared", metadata={"writer": str(worker)}),
                ]
            )
            lines = [(f"{worker}-{i}-{n}", f'{{"n": {n}}}\n'.encode()) for n in range(3)]
            ledger.record_submission(f"w{worker}", f"b{i}", "in.jsonl", "0" * 64, lines)
            ledger.record_retry(f"w{worker}", f"b{i}", f"retry-{i}", [lines[0][0]])


def test_two_processes_write_one_ledger_without_corrupting_it(tmp_path: Path) -> None:
    path = tmp_path / "data" / "ledger.db"
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(2)
    workers = [spawn.Process(target=_hammer, args=(str(path), w, start)) for w in (0, 1)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
    for process in workers:
        if process.is_alive():
            process.kill()
    assert [p.exitcode for p in workers] == [0, 0]

    assert query(path, "PRAGMA integrity_check") == [("ok",)]
    assert query(path, "PRAGMA foreign_key_check") == []
    with Ledger.open(path) as ledger:
        for worker in (0, 1):
            account = f"w{worker}"
            batches = ledger.batches(account=account)
            assert sorted(b.id for b in batches) == sorted(f"b{i}" for i in range(N_PER_PROCESS))
            assert len(ledger.batches(account=account, status=Status.COMPLETED)) == N_PER_PROCESS // 2
            for i in range(N_PER_PROCESS):
                assert list(ledger.submission_lines(account, f"b{i}")) == [f"{worker}-{i}-{n}" for n in range(3)]
                assert ledger.parent(account, f"retry-{i}").parent_id == f"b{i}"  # type: ignore[union-attr]
        shared = ledger.batches(account="shared")
        assert len(shared) == N_PER_PROCESS
        assert {b.metadata["writer"] for b in shared} <= {"0", "1"}
    assert user_version(path) == CURRENT
