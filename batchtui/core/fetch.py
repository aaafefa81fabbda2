"""Fetching a batch's results to disk: complete and byte-exact, or absent.

Each result file streams into a temporary file beside its final name (mode 0600), hashed on
the way; only a complete download is renamed into place. A dropped connection restarts that
file from the beginning into a fresh temporary file, so a truncated file never carries the
final name. The ledger remembers each download, so fetching twice is a no-op.

Two stages, so the download runs at the speed of the connection. `download_results` reads
each file straight off the socket in a worker thread that also writes, hashes and counts its
lines (core/direct_download.py); where httpx must carry the request (an error answer, a
compressed body, a proxy, the in-process simulator), the event loop only receives and a worker
thread writes, hashes and counts (hashlib and os.writev release the GIL, so that overlaps with
the next bytes arriving). The analysis then reads the files back (from the page cache) in a
thread, once they are complete, recorded and in place; `fetch_results` does both.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from batchtui.core.accounts import Account
from batchtui.core.direct_download import Cut, Declined, DirectRead
from batchtui.core.errors import BatchtuiError, UnreachableError
from batchtui.core.models import Batch
from batchtui.core.paths import ensure_private_dir
from batchtui.core.results import READ_CHUNK, ResultsAnalyzer, ResultsSummary, analyze_files, feed_file

Progress = Callable[[str, int], None]  # (file kind, bytes so far)

ATTEMPTS = 4  # whole-file attempts after a dropped connection (the transport retries requests)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Bytes handed to the writer thread at a time: big enough that the hand-off costs nothing per
# byte, small enough that memory stays flat (a download holds at most two such batches).
WRITE_BATCH = 1 << 20
# Shared by every download; each download keeps at most one write in flight, so its bytes land
# in order whichever thread takes them.
_writers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="batchtui-fetch")
# Direct reads (core/direct_download.py), each holding its thread for a whole file: apart from
# the writers, so that four of them cannot hold up the httpx downloads' writes.
_direct_readers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="batchtui-direct")


class NothingToFetch(BatchtuiError):
    """The batch has no results (yet, or at all)."""


@dataclass(frozen=True)
class FetchedFile:
    kind: str
    path: Path
    sha256: str
    lines: int
    size: int
    already_there: bool = False  # the ledger had it: nothing was downloaded

    def as_json(self) -> dict:
        return {"kind": self.kind, "path": str(self.path), "sha256": self.sha256, "lines": self.lines}


@dataclass(frozen=True)
class FetchResult:
    batch: Batch
    files: list[FetchedFile]
    summary: ResultsSummary | None  # None when every file was already fetched

    @property
    def no_op(self) -> bool:
        return all(f.already_there for f in self.files)


def safe_name(text: str) -> str:
    """A path component from provider text (`batches/abc` -> `batches_abc`); never `..`."""
    cleaned = _UNSAFE.sub("_", text).strip("._") or "_"
    return cleaned[:120]


def batch_dir(out_dir: Path, account: Account, batch: Batch) -> Path:
    return Path(out_dir) / safe_name(account.name) / safe_name(batch.id)


async def fetch_results(engine, account: Account, batch: Batch, out_dir: Path, *,
                        progress: Progress | None = None) -> FetchResult:
    """Download every result file of `batch` (results and, where there is one, errors), then
    analyse them: the breakdown and cost go to the ledger and into the result's summary."""
    client = engine.client(account)
    downloads = await _download_all(engine, account, batch, out_dir, progress)
    files = [fetched for fetched, _ in downloads]
    handed_over = False  # the readers, to the analysis thread, which closes them
    try:
        summary = None
        if any(not f.already_there for f in files):
            if any(f.already_there for f in files):
                # Part of the set came from an earlier fetch: analyse the whole set from disk.
                paths = [f.path for f in files]
                summary = await asyncio.to_thread(analyze_files, paths, client.parse_result_line)
            else:
                readers = [reader for _, reader in downloads]
                handed_over = True
                summary = await asyncio.to_thread(_analyse_downloads, readers, client.parse_result_line)
            cost = engine.prices.cost(batch.provider, summary.usage_by_model)
            await asyncio.to_thread(engine.ledger.record_analysis, account.name, batch.id, summary.breakdown,
                                    summary.usage_by_model, cost)
            for f in files:
                await asyncio.to_thread(engine.ledger.mark_processed, account.name, batch.id, f.kind)
    finally:
        if not handed_over:
            _close_readers(downloads)
    return FetchResult(engine.costed(batch), files, summary)


async def download_results(engine, account: Account, batch: Batch, out_dir: Path, *,
                           progress: Progress | None = None) -> list[FetchedFile]:
    """The first stage of `fetch_results` alone: every result file on disk under its final
    name, complete, hashed, fsynced and recorded in the ledger; no analysis."""
    downloads = await _download_all(engine, account, batch, out_dir, progress)
    _close_readers(downloads)
    return [fetched for fetched, _ in downloads]


async def _download_all(engine, account: Account, batch: Batch, out_dir: Path,
                        progress: Progress | None) -> list[tuple[FetchedFile, BinaryIO | None]]:
    """Each file with the downloaded file open for reading (None when the ledger already had
    it): the analysis reads exactly the bytes that were hashed, even if the file is moved or
    deleted meanwhile."""
    if not batch.result_files:
        state = "has not ended yet" if not batch.is_terminal else "has no result files"
        raise NothingToFetch(f"batch {batch.id} {state} (status {batch.status.value})")
    client = engine.client(account)
    target = ensure_private_dir(batch_dir(out_dir, account, batch))
    downloads: list[tuple[FetchedFile, BinaryIO | None]] = []
    try:
        for result_file in batch.result_files:
            final = target / f"{result_file.kind}.jsonl"
            known = engine.ledger.download(account.name, batch.id, result_file.kind)
            if known is not None and Path(known.path) == final and known.is_on_disk():
                downloads.append((FetchedFile(result_file.kind, final, known.sha256, known.lines, known.size, True),
                                  None))
                continue
            fetched, reader = await _download_one(client, batch, result_file, final, progress)
            downloads.append((fetched, reader))
            await asyncio.to_thread(engine.ledger.record_download, account.name, batch.id, fetched.kind,
                                    fetched.path, fetched.sha256, fetched.size, fetched.lines)
    except BaseException:
        _close_readers(downloads)
        raise
    return downloads


def _close_readers(downloads: list[tuple[FetchedFile, BinaryIO | None]]) -> None:
    for _, reader in downloads:
        if reader is not None:
            reader.close()


def _analyse_downloads(readers: list[BinaryIO | None], parse_line) -> ResultsSummary:
    """Each downloaded file analysed on its own, merged in order (line numbers count from each
    file's start, as when the analysis ran during the download). Closes the readers: it runs
    in a thread, which a cancelled fetch does not wait for."""
    try:
        analyzer = ResultsAnalyzer(parse_line)
        for reader in readers:
            assert reader is not None
            one = ResultsAnalyzer(parse_line)
            while chunk := reader.read(READ_CHUNK):
                one.feed_chunk(chunk)
            analyzer.merge(one)
        return analyzer.summary()
    finally:
        for reader in readers:
            if reader is not None:
                reader.close()


async def _download_one(client, batch: Batch, result_file, final: Path,
                        progress: Progress | None) -> tuple[FetchedFile, BinaryIO]:
    last_error: Exception | None = None
    for _ in range(ATTEMPTS):
        tmp = final.with_name(f".{final.name}.{os.getpid()}.part")
        sink = _TempFile(tmp)
        try:
            try:
                if not await _receive_direct(client, batch, result_file, sink, progress):
                    async with aclosing(client.download(batch, result_file)) as chunks:
                        await _receive(chunks, sink, result_file.kind, progress)
                await sink.complete()
                reader = open(tmp, "rb")  # noqa: SIM115 - closed by the caller
            finally:
                sink.close()
            try:
                os.replace(tmp, final)
            except BaseException:
                reader.close()
                raise
        except UnreachableError as exc:
            last_error = exc
            _discard(tmp)
            continue
        except BaseException:
            _discard(tmp)
            raise
        return FetchedFile(result_file.kind, final, sink.digest.hexdigest(), sink.lines, sink.size), reader
    assert last_error is not None
    raise last_error


async def _receive_direct(client, batch: Batch, result_file, sink: _TempFile, progress: Progress | None) -> bool:
    """The download read straight off the socket into `sink` by a worker thread (see
    core/direct_download.py); False, with nothing written, when it must go through httpx.
    Cancelled, the read ends and the file is closed once it stops (`_TempFile.close`)."""
    report = None
    if progress is not None:
        loop, kind = asyncio.get_running_loop(), result_file.kind
        report = functools.partial(loop.call_soon_threadsafe, progress, kind)
    return await _read_direct(client, batch, result_file, lambda read: sink.run(read.run, sink.write_into, report))


async def _read_direct(client, batch: Batch, result_file,
                       start: Callable[[DirectRead], Awaitable[object]]) -> bool:
    """Run the result file's direct read (`start(read)`, which puts `read.run` on a worker
    thread); False when there is none or it declined, with nothing consumed. A cut becomes the
    account's UnreachableError; a cancelled caller aborts the read, so the thread stops soon."""
    read = client.direct_download(batch, result_file)
    if read is None:
        return False
    try:
        await start(read)
    except Declined:
        return False
    except Cut as cut:
        raise client.http.unreachable(cut.kind) from None
    except BaseException:
        read.abort()
        raise
    return True


async def _receive(chunks: AsyncIterator[bytes], sink: _TempFile, kind: str, progress: Progress | None) -> None:
    """The event loop's share of a download through httpx: take the chunks as they arrive (up
    to the transport's READ_SIZE) and hand them to the writer thread a batch at a time."""
    batch: list[bytes] = []
    batched = 0
    size = 0
    async for chunk in chunks:
        batch.append(chunk)
        batched += len(chunk)
        size += len(chunk)
        if progress is not None:
            progress(kind, size)
        if batched >= WRITE_BATCH:
            await sink.append(batch)  # as received: joining them was a copy of every byte
            batch = []
            batched = 0
    if batch:
        await sink.append(batch)


class _TempFile:
    """A download's temporary file (mode 0600), written, hashed and line-counted in a worker
    thread, one batch after the other."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
        self.digest = hashlib.sha256()
        self.size = 0
        self.lines = 0
        self._ends_with_newline = True
        self._pending: Future | None = None

    async def run(self, fn: Callable[..., object], *args: object) -> None:
        """`fn(*args)` in a thread of its own, as the file's one write in flight: a direct
        read writes as it reads, holding its thread for the whole download. If the caller is
        cancelled while it runs, the file stays open until it stops (see `close`)."""
        await self._settle()
        pending = self._pending = _direct_readers.submit(fn, *args)
        try:
            await asyncio.wrap_future(pending)
        finally:
            if pending.done():  # its outcome is the caller's now, not the next write's
                self._pending = None

    def write_into(self, buffer: bytearray, filled: int) -> None:
        """The first `filled` bytes of `buffer`, written, hashed and counted, in the calling thread."""
        view = memoryview(buffer)[:filled]
        self.digest.update(view)
        self.lines += count_newlines(buffer, filled)
        self.size += filled
        if filled:
            self._ends_with_newline = buffer[filled - 1] == 0x0A
        _write_all(self.fd, [view])

    async def append(self, chunks: list[bytes]) -> None:
        """Queue `chunks` after everything before them; waits only for the batch before to land."""
        await self._settle()
        self._pending = _writers.submit(self._write, chunks)

    def _write(self, chunks: list[bytes]) -> None:
        for data in chunks:
            self.digest.update(data)
            self.lines += count_newlines(data)
            self.size += len(data)
            if data:
                self._ends_with_newline = data.endswith(b"\n")
        _write_all(self.fd, chunks)

    async def complete(self) -> None:
        """Everything written and on disk (fsync), the line count final."""
        await self._settle()
        self._pending = _writers.submit(os.fsync, self.fd)
        await self._settle()
        if self.size and not self._ends_with_newline:
            self.lines += 1  # a last line without its newline is still a line

    async def _settle(self) -> None:
        if self._pending is not None:
            await asyncio.wrap_future(self._pending)  # a write's OSError (disk full) surfaces here

    def close(self) -> None:
        """Close the file now, or, while a write is still running (the download failed or was
        cancelled meanwhile), as soon as it ends: never under a write in flight."""
        pending, fd = self._pending, self.fd
        if pending is None:
            os.close(fd)
        else:
            pending.add_done_callback(lambda _: os.close(fd))


_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 16  # buffers per writev


def _write_all(fd: int, chunks: list[bytes]) -> None:
    """Every byte of `chunks`, in order, with as few system calls as the kernel allows."""
    views = [memoryview(chunk) for chunk in chunks if chunk]
    while views:
        written = os.writev(fd, views[:_IOV_MAX])
        while written:  # drop what went out; a partial write leaves the rest of one chunk
            if written >= len(views[0]):
                written -= len(views.pop(0))
            else:
                views[0] = views[0][written:]
                written = 0


def count_newlines(data: bytes | bytearray, end: int | None = None) -> int:
    """`data.count(b"\n")`, faster on result lines: count() tests byte by byte (~1.8 GB/s here),
    find() jumps from newline to newline with memchr (~7 GB/s on ~2 kB lines). With short lines
    the calls to find() would cost more, so past one newline per 256 bytes the rest is left to
    count(): never much slower than count() alone."""
    end = len(data) if end is None else end
    budget = end >> 8
    found = 0
    at = data.find(b"\n", 0, end)
    while at >= 0:
        found += 1
        if found > budget:
            return found + data.count(b"\n", at + 1, end)
        at = data.find(b"\n", at + 1, end)
    return found


def _discard(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


async def analyse_results(engine, account: Account, batch: Batch, *, keep_succeeded_ids: bool = False,
                          record: bool = True) -> ResultsSummary:
    """The results analysis of a finished batch, without writing its files anywhere.

    Reads fetched files from disk when the ledger has them intact, else streams the results
    from the provider. With `record`, the breakdown and cost go to the ledger for `show` and
    the dashboard.
    """
    client = engine.client(account)
    analyzer = ResultsAnalyzer(client.parse_result_line, keep_succeeded_ids=keep_succeeded_ids)
    for result_file in batch.result_files:
        known = engine.ledger.download(account.name, batch.id, result_file.kind)
        if known is not None and known.is_on_disk():
            feed_file(analyzer, Path(known.path))
            continue
        file_analyzer = ResultsAnalyzer(client.parse_result_line, keep_succeeded_ids=keep_succeeded_ids)
        if not await _analyse_direct(client, batch, result_file, file_analyzer):
            async for chunk in client.download(batch, result_file):
                file_analyzer.feed_chunk(chunk)
        analyzer.merge(file_analyzer)
    summary = analyzer.summary()
    if record and batch.result_files:
        cost = engine.prices.cost(batch.provider, summary.usage_by_model)
        await asyncio.to_thread(engine.ledger.record_analysis, account.name, batch.id, summary.breakdown,
                                summary.usage_by_model, cost)
    return summary


async def _analyse_direct(client, batch: Batch, result_file, analyzer: ResultsAnalyzer) -> bool:
    """The results read straight off the socket and analysed in the reading thread (see
    core/direct_download.py): neither the receiving nor the parsing runs on the event loop,
    which in the dashboard is the UI's (the poller prices finished batches this way). False,
    with nothing fed, when the request must go through httpx."""

    def feed(buffer: bytearray, filled: int) -> None:
        analyzer.feed_chunk(bytes(memoryview(buffer)[:filled]))  # a copy: the buffer is read into again

    # Cancelled, the read ends; the analyzer it fed is dropped.
    return await _read_direct(client, batch, result_file,
                              lambda read: asyncio.wrap_future(_direct_readers.submit(read.run, feed)))
