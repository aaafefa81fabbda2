"""`fetch_results` in two stages: the download (write, sha256, line count in a worker thread,
fsync, rename, ledger) and then the analysis of the files on disk. Whatever the stages, the
result is the one a streaming analysis of the served bytes gives, and a file is complete and
byte-exact or absent."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchtui.core import fetch
from batchtui.core.errors import UnreachableError
from batchtui.core.fetch import count_newlines, download_results, fetch_results
from batchtui.core.models import Status
from batchtui.core.results import ResultsAnalyzer
from batchtui.demo import demo_engine
from support.downloads import leftovers


@pytest.fixture
async def demo(tmp_path):
    engine, sim = demo_engine(tmp_path / "home", manual_clock=True, start=None, seed=0)
    yield engine, sim
    await engine.aclose()
    engine.close_ledger()


async def ended_batch(engine, name):
    account = engine.settings.account(name)
    for batch in await engine.list_account(account):
        if batch.status is Status.COMPLETED and (batch.counts.failed or 0) > 0:
            return account, batch
    raise AssertionError(f"no completed batch with failures under {name}")


async def served(engine, account, batch) -> dict[str, bytes]:
    client = engine.client(account)
    return {rf.kind: b"".join([c async for c in client.download(batch, rf)]) for rf in batch.result_files}


@pytest.mark.parametrize("name", ["acme-prod", "claude-team", "gemini-lab"])
async def test_the_summary_is_the_streaming_analysis_of_the_served_bytes(demo, tmp_path, name, monkeypatch):
    # Tiny write batches: every file crosses many hand-offs to the writer thread.
    monkeypatch.setattr(fetch, "WRITE_BATCH", 4096)
    engine, _ = demo
    account, batch = await ended_batch(engine, name)
    parser = engine.client(account).parse_result_line
    # What fetch_results gave when it analysed each file while downloading it: one analyzer
    # per file, merged in order.
    expected = ResultsAnalyzer(parser)
    bytes_by_kind = await served(engine, account, batch)
    for data in bytes_by_kind.values():
        one = ResultsAnalyzer(parser)
        one.feed_chunk(data)
        expected.merge(one)

    result = await fetch_results(engine, account, batch, tmp_path / "out")

    assert result.summary == expected.summary()
    for f in result.files:
        data = bytes_by_kind[f.kind]
        assert f.path.read_bytes() == data and f.size == len(data)
        assert f.sha256 == hashlib.sha256(data).hexdigest()
        assert f.lines == data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        assert stat.S_IMODE(f.path.stat().st_mode) == 0o600
        known = engine.ledger.download(account.name, batch.id, f.kind)
        assert (known.sha256, known.size, known.lines, known.processed) == (f.sha256, f.size, f.lines, True)
    assert engine.ledger.analysis(account.name, batch.id).breakdown == result.summary.breakdown


async def test_a_bad_line_is_numbered_within_its_own_file(demo, tmp_path, monkeypatch):
    # As when each file was analysed while it downloaded: line 2 of the errors file, not 5.
    engine, _ = demo
    account, batch = await ended_batch(engine, "acme-prod")
    assert [rf.kind for rf in batch.result_files] == ["results", "errors"]
    output = b'{"custom_id":"a","response":{"status_code":200,"body":{}}}\n' * 3
    errors = b'{"custom_id":"b","error":{"code":"x","message":"m"}}\nnot json\n'
    monkeypatch.setattr(engine.client(account), "download", chunked_download([[output], [errors]]))
    result = await fetch_results(engine, account, batch, tmp_path / "out")
    assert result.summary.lines == 5
    assert (result.summary.breakdown.unparseable, result.summary.breakdown.unparseable_lines) == (1, (2,))


async def test_download_results_records_the_files_and_leaves_the_analysis_alone(demo, tmp_path):
    engine, _ = demo
    account, batch = await ended_batch(engine, "acme-prod")
    files = await download_results(engine, account, batch, tmp_path / "out")
    bytes_by_kind = await served(engine, account, batch)
    assert {f.kind for f in files} == set(bytes_by_kind)
    for f in files:
        assert f.path.read_bytes() == bytes_by_kind[f.kind]
        known = engine.ledger.download(account.name, batch.id, f.kind)
        assert known.sha256 == f.sha256 and not known.processed
    assert engine.ledger.analysis(account.name, batch.id) is None


def chunked_download(chunks_per_attempt):
    """A client's `download` serving one list of chunks per attempt; an exception in a list
    is raised at that point (a dropped connection)."""
    attempts = iter(chunks_per_attempt)

    async def download(batch, result_file):
        for chunk in next(attempts):
            if isinstance(chunk, BaseException):
                raise chunk
            await asyncio.sleep(0)  # a network read: the writer thread runs meanwhile
            yield chunk

    return download


async def one_file_batch(engine, name="claude-team"):
    account, batch = await ended_batch(engine, name)
    assert len(batch.result_files) == 1
    return account, batch


async def test_a_last_line_without_newline_and_empty_chunks_count_right(demo, tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "WRITE_BATCH", 3)
    engine, _ = demo
    account, batch = await one_file_batch(engine)
    body = [b'{"a"', b"", b":1}\n\n", b"", b'{"b":2}']
    monkeypatch.setattr(engine.client(account), "download", chunked_download([body]))
    (f,) = await download_results(engine, account, batch, tmp_path / "out")
    assert f.path.read_bytes() == b"".join(body)
    assert (f.lines, f.size) == (3, len(b"".join(body)))


async def test_an_empty_file_has_no_lines(demo, tmp_path, monkeypatch):
    engine, _ = demo
    account, batch = await one_file_batch(engine)
    monkeypatch.setattr(engine.client(account), "download", chunked_download([[b""]]))
    (f,) = await download_results(engine, account, batch, tmp_path / "out")
    assert (f.lines, f.size, f.path.read_bytes()) == (0, 0, b"")
    assert f.sha256 == hashlib.sha256(b"").hexdigest()


async def test_a_dropped_connection_restarts_the_file_from_scratch(demo, tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "WRITE_BATCH", 8)
    engine, _ = demo
    account, batch = await one_file_batch(engine)
    good = [b'{"custom_id":"a"}\n' * 3, b'{"custom_id":"b"}\n' * 5]
    cut = UnreachableError("connection dropped")
    attempts = [[good[0], cut], [good[0], good[1][:7], cut], good]
    monkeypatch.setattr(engine.client(account), "download", chunked_download(attempts))
    (f,) = await download_results(engine, account, batch, tmp_path / "out")
    assert f.path.read_bytes() == b"".join(good)  # not the cut attempts' bytes before them
    assert f.lines == 8 and f.sha256 == hashlib.sha256(b"".join(good)).hexdigest()
    assert leftovers(tmp_path / "out") == []


async def test_a_connection_dropped_every_time_leaves_nothing(demo, tmp_path, monkeypatch):
    engine, _ = demo
    account, batch = await one_file_batch(engine)
    attempts = [[b"x" * 100, UnreachableError("connection dropped")]] * fetch.ATTEMPTS
    monkeypatch.setattr(engine.client(account), "download", chunked_download(attempts))
    with pytest.raises(UnreachableError):
        await fetch_results(engine, account, batch, tmp_path / "out")
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []
    assert engine.ledger.download(account.name, batch.id, batch.result_files[0].kind) is None


async def test_a_failed_write_in_the_writer_thread_surfaces_and_leaves_nothing(demo, tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "WRITE_BATCH", 8)
    engine, _ = demo
    account, batch = await one_file_batch(engine)
    monkeypatch.setattr(engine.client(account), "download", chunked_download([[b"line\n" * 4] * 10]))

    def disk_full(fd, buffers):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fetch.os, "writev", disk_full)
    with pytest.raises(OSError, match="No space left"):
        await fetch_results(engine, account, batch, tmp_path / "out")
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []


async def test_a_cancelled_fetch_leaves_no_file_behind(demo, tmp_path, monkeypatch):
    engine, _ = demo
    account, batch = await one_file_batch(engine)
    started = asyncio.Event()

    async def endless(batch, result_file):
        while True:
            yield b"line\n" * 1000
            started.set()
            await asyncio.sleep(0)

    monkeypatch.setattr(engine.client(account), "download", endless)
    task = asyncio.create_task(fetch_results(engine, account, batch, tmp_path / "out"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []


async def test_a_file_deleted_before_the_analysis_is_still_analysed(demo, tmp_path, monkeypatch):
    # The analysis reads the bytes that were downloaded and hashed, not whatever carries the
    # name by then.
    engine, _ = demo
    account, batch = await ended_batch(engine, "acme-prod")
    expected = await fetch_results(engine, account, batch, tmp_path / "first")
    real_replace = fetch.os.replace

    def replace_then_delete(src, dst):
        real_replace(src, dst)
        Path(dst).unlink()

    monkeypatch.setattr(fetch.os, "replace", replace_then_delete)
    result = await fetch_results(engine, account, batch, tmp_path / "second")
    assert result.summary == expected.summary


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"\n", b"a", b"\xff", b"0123456789" * 40, b"\n\n\n"]), max_size=400))
def test_count_newlines_is_bytes_count(parts):
    data = b"".join(parts)
    assert count_newlines(data) == data.count(b"\n")


def test_a_batch_of_chunks_lands_whole_and_in_order_through_partial_writes(tmp_path, monkeypatch):
    """The writer hands the kernel a download's chunks together (writev), which may take only
    part of them, even part of one: the file still gets every byte, in order, once."""
    from batchtui.core import fetch

    chunks = [bytes([65 + i]) * size for i, size in enumerate([5, 0, 1, 7, 300, 2])]
    real_writev = os.writev
    taken: list[int] = []

    def stingy_writev(fd, buffers):
        # Never more than 4 bytes, sometimes fewer, and never past the first three buffers.
        flat = b"".join(bytes(b) for b in list(buffers)[:3])
        n = real_writev(fd, [flat[: 1 + len(taken) % 4]])
        taken.append(n)
        return n

    monkeypatch.setattr(fetch.os, "writev", stingy_writev)
    path = tmp_path / "out"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        fetch._write_all(fd, chunks)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"".join(chunks)
    assert len(taken) > len(chunks)  # it did take many partial writes
