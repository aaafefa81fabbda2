"""Fetching a batch's results to disk: complete and byte-exact, or absent.

Each result file streams into a temporary file beside its final name (mode 0600), hashed and
analysed on the way; only a complete download is renamed into place. A dropped connection
restarts that file from the beginning into a fresh temporary file, so a truncated file never
carries the final name. The ledger remembers each download, so fetching twice is a no-op.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from batchtui.core.accounts import Account
from batchtui.core.errors import BatchtuiError, UnreachableError
from batchtui.core.models import Batch
from batchtui.core.paths import ensure_private_dir
from batchtui.core.results import ResultsAnalyzer, ResultsSummary, analyze_files, feed_file

Progress = Callable[[str, int], None]  # (file kind, bytes so far)

ATTEMPTS = 4  # whole-file attempts after a dropped connection (the transport retries requests)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


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
    """Download every result file of `batch` (results and, where there is one, errors)."""
    if not batch.result_files:
        state = "has not ended yet" if not batch.is_terminal else "has no result files"
        raise NothingToFetch(f"batch {batch.id} {state} (status {batch.status.value})")
    client = engine.client(account)
    target = ensure_private_dir(batch_dir(out_dir, account, batch))
    analyzer = ResultsAnalyzer(client.parse_result_line)
    files: list[FetchedFile] = []
    downloaded_any = False
    for result_file in batch.result_files:
        final = target / f"{result_file.kind}.jsonl"
        known = engine.ledger.download(account.name, batch.id, result_file.kind)
        if known is not None and Path(known.path) == final and known.is_on_disk():
            files.append(FetchedFile(result_file.kind, final, known.sha256, known.lines, known.size, True))
            continue
        fetched = await _download_one(client, batch, result_file, final, analyzer, progress)
        downloaded_any = True
        files.append(fetched)
        await asyncio.to_thread(engine.ledger.record_download, account.name, batch.id, fetched.kind,
                                fetched.path, fetched.sha256, fetched.size, fetched.lines)
    summary = None
    if downloaded_any:
        if any(f.already_there for f in files):
            # Part of the set came from an earlier fetch: analyse the whole set from disk.
            summary = analyze_files([f.path for f in files], client.parse_result_line)
        else:
            summary = analyzer.summary()
        cost = engine.prices.cost(batch.provider, summary.usage_by_model)
        await asyncio.to_thread(engine.ledger.record_analysis, account.name, batch.id, summary.breakdown,
                                summary.usage_by_model, cost)
        for f in files:
            await asyncio.to_thread(engine.ledger.mark_processed, account.name, batch.id, f.kind)
    return FetchResult(engine.costed(batch), files, summary)


async def _download_one(client, batch: Batch, result_file, final: Path, analyzer: ResultsAnalyzer,
                        progress: Progress | None) -> FetchedFile:
    last_error: Exception | None = None
    for _ in range(ATTEMPTS):
        # A fresh analyzer per attempt: a dropped attempt must not count its lines twice.
        attempt_analyzer = ResultsAnalyzer(client.parse_result_line)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.part")
        digest = hashlib.sha256()
        size = 0
        lines = 0
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
            with os.fdopen(fd, "wb") as sink:
                async for chunk in client.download(batch, result_file):
                    sink.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    lines += chunk.count(b"\n")
                    attempt_analyzer.feed_chunk(chunk)
                    if progress is not None:
                        progress(result_file.kind, size)
                sink.flush()
                os.fsync(sink.fileno())
            if size and not _ends_with_newline(tmp):
                lines += 1  # a last line without its newline is still a line
            os.replace(tmp, final)
        except UnreachableError as exc:
            last_error = exc
            _discard(tmp)
            continue
        except BaseException:
            _discard(tmp)
            raise
        analyzer.merge(attempt_analyzer)
        return FetchedFile(result_file.kind, final, digest.hexdigest(), lines, size)
    assert last_error is not None
    raise last_error


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


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
        async for chunk in client.download(batch, result_file):
            file_analyzer.feed_chunk(chunk)
        analyzer.merge(file_analyzer)
    summary = analyzer.summary()
    if record and batch.result_files:
        cost = engine.prices.cost(batch.provider, summary.usage_by_model)
        await asyncio.to_thread(engine.ledger.record_analysis, account.name, batch.id, summary.breakdown,
                                summary.usage_by_model, cost)
    return summary
