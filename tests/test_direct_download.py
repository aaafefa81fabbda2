"""Result files read straight off the socket (core/direct_download.py), and everything that is
left to httpx: error answers, redirects, compressed bodies, proxies, failures before the body.

The provider here is a scripted HTTP server on a real loopback socket, so each test decides
exactly what bytes the client gets (a cut, a stall, a chunked or gzipped body); the whole
simulator over loopback is used where the answer must be a real provider's.
"""

from __future__ import annotations

import asyncio
import errno
import gzip
import hashlib
import os
import ssl
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import trustme

from batchtui.core import fetch, transport as transport_module
from batchtui.core.accounts import Account
from batchtui.core.config import Settings
from batchtui.core.direct_download import Cut, Declined, DirectRead
from batchtui.core.engine import Engine
from batchtui.core.errors import NotFoundError, ProtocolError, UnreachableError
from batchtui.core.fetch import analyse_results, fetch_results
from batchtui.core.ledger import Ledger
from batchtui.core.models import Status
from batchtui.core.paths import Paths
from batchtui.core.pricing import PriceTable
from batchtui.core.providers.openai_dialects import to_batch
from batchtui.core.results import ResultsAnalyzer
from batchtui.core.transport import RetryPolicy, Transport
from batchtui.sim import Simulator
from reliability.harness import scenario_engine
from support.downloads import leftovers
from support.loopback import serve_on_loopback

KEY = "sk-direct-0123456789abcdef"
BODY = b"".join(b'{"custom_id": "r-%06d", "response": {"status_code": 200}}\n' % i for i in range(40_000))  # ~2.3 MB

Answer = Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Scripted:
    """An HTTP server on loopback that answers the n-th request with `answers[n]` (the last
    one again after that) and keeps every request head it read."""

    def __init__(self, *answers: Answer, tls: ssl.SSLContext | None = None) -> None:
        self.answers = answers
        self.tls = tls
        self.heads: list[bytes] = []
        self.release = asyncio.Event()  # what a stalling answer waits for

    async def __aenter__(self) -> Scripted:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self.release.set()
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/v1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            answer = self.answers[min(len(self.heads), len(self.answers)) - 1]
            await answer(head, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()


def plain(body: bytes, *, extra: bytes = b"") -> Answer:
    async def answer(head, reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: %d\r\n%s\r\n" % (len(body), extra) + body)
        await writer.drain()
    return answer


def chunked(body: bytes, *, cut_after: int | None = None) -> Answer:
    async def answer(head, reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        sent = 0
        for at in range(0, len(body), 100_000):
            piece = body[at:at + 100_000]
            writer.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
            sent += len(piece)
            if cut_after is not None and sent >= cut_after:
                await writer.drain()
                return  # closed without the last chunk
        writer.write(b"0\r\n\r\n")
        await writer.drain()
    return answer


def cut(body: bytes, after: int) -> Answer:
    """Promises all of `body`, sends `after` bytes of it, then closes."""
    async def answer(head, reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:after])
        await writer.drain()
    return answer


def status(code: int, body: bytes = b"", *, extra: bytes = b"") -> Answer:
    async def answer(head, reader, writer):
        writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
                     % (code, len(body), extra) + body)
        await writer.drain()
    return answer


def gzipped(body: bytes) -> Answer:
    packed = gzip.compress(body, compresslevel=1)

    async def answer(head, reader, writer):
        assert b"gzip" in head.lower()
        await plain(packed, extra=b"Content-Encoding: gzip\r\n")(head, reader, writer)
    return answer


def stalling(server: Scripted, body: bytes, first: int) -> Answer:
    """Sends `first` bytes of `body`, then waits for the test before sending the rest."""
    async def answer(head, reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:first])
        await writer.drain()
        await server.release.wait()
        writer.write(body[first:])
        await writer.drain()
    return answer


def transport(url: str, policy: RetryPolicy | None = None) -> Transport:
    return Transport(account="raw", base_url=url, auth_headers={"Authorization": f"Bearer {KEY}"},
                     policy=policy or RetryPolicy())


# A read that only an abort can end: its own timeout is an hour away.
PATIENT = RetryPolicy(read_timeout=3600)
# How long a test waits for what must happen at once before calling it broken (not a timing
# test: it only turns a hang into a failure).
HANG = 60


async def read_all(read: DirectRead) -> tuple[bytes, list[int]]:
    """What the read consumed, and the sizes it reported, run in a worker thread as fetch does."""
    got = bytearray()
    reports: list[int] = []
    await asyncio.to_thread(read.run, lambda buffer, filled: got.extend(buffer[:filled]), reports.append)
    return bytes(got), reports


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                 "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)


# -- the read itself -------------------------------------------------------------------------

async def test_a_plain_answer_is_consumed_byte_exact_with_httpx_headers_and_the_key():
    async with Scripted(plain(BODY)) as server:
        http = transport(server.url)
        read = http.direct("/files/file-out/content", headers={"Accept": "application/binary"})
        got, reports = await read_all(read)
        await http.aclose()
    assert got == BODY
    assert reports and reports[-1] == len(BODY) and reports == sorted(reports)
    head = server.heads[0].decode().lower().split("\r\n")
    assert head[0] == "get /v1/files/file-out/content http/1.1"
    assert f"authorization: bearer {KEY}".lower() in head
    assert "accept: application/binary" in head
    assert [line for line in head if line.startswith("host:")] == [f"host: 127.0.0.1:{server.port}"]
    assert [line for line in head if line.startswith("connection:")] == ["connection: close"]
    assert any(line.startswith("user-agent: python-httpx") for line in head)  # httpx's own headers


async def test_a_chunked_answer_is_consumed_decoded():
    async with Scripted(chunked(BODY)) as server:
        got, _ = await read_all(transport(server.url).direct("/f"))
    assert got == BODY


@pytest.mark.parametrize("answer", [cut(BODY, 1_500_000), cut(BODY, 10), chunked(BODY, cut_after=1_000_000)],
                         ids=["content-length, cut mid-way", "content-length, cut at once", "chunked, cut"])
async def test_a_body_cut_short_is_a_cut_not_a_short_file(answer):
    async with Scripted(answer) as server:
        with pytest.raises(Cut) as raised:
            await read_all(transport(server.url).direct("/f"))
    assert raised.value.kind == "IncompleteRead"
    assert KEY not in str(raised.value)


@pytest.mark.parametrize("answer", [
    status(404, b'{"error": {"message": "No such file"}}'),
    status(302, extra=b"Location: http://elsewhere.example/x\r\n"),
    status(429, b"{}", extra=b"Retry-After: 0\r\n"),
    status(206, b"partial"),
    gzipped(BODY),
    plain(BODY, extra=b"Transfer-Encoding: gzip, chunked\r\n"),
], ids=["404", "redirect", "429", "206", "gzip", "gzip transfer coding"])
async def test_anything_but_a_plain_200_is_declined_with_its_body_unread(answer):
    consumed = []
    async with Scripted(answer) as server:
        read = transport(server.url).direct("/f")
        with pytest.raises(Declined):
            await asyncio.to_thread(read.run, lambda buffer, filled: consumed.append(filled))
    assert consumed == []


async def test_a_refused_connection_is_declined():
    async with Scripted(plain(b"")) as server:
        url = server.url
    with pytest.raises(Declined):
        await asyncio.to_thread(transport(url).direct("/f").run, lambda buffer, filled: None)


@pytest.mark.parametrize("secure", [False, True], ids=["http", "https"])
async def test_abort_ends_a_stalled_read_at_once(secure, request):
    started = threading.Event()
    async with Scripted(tls=request.getfixturevalue("tls") if secure else None) as server:
        server.answers = (stalling(server, BODY, 1_500_000),)
        read = transport(server.url, PATIENT).direct("/f")
        running = asyncio.ensure_future(asyncio.to_thread(read.run, lambda buffer, filled: started.set()))
        assert await asyncio.to_thread(started.wait, HANG)  # the first buffer is in; the rest never comes
        read.abort()
        with pytest.raises(Cut):
            await asyncio.wait_for(running, HANG)
        assert not server.release.is_set()  # it ended on the abort, not on the server's bytes


def test_the_direct_path_is_for_real_sockets_without_a_proxy(monkeypatch):
    url = "https://api.example.com/v1"
    assert transport(url).direct("/f") is not None
    in_process = Transport(account="raw", base_url=url, auth_headers={}, transport=httpx.MockTransport(lambda r: None))
    assert in_process.direct("/f") is None
    monkeypatch.setenv("NO_PROXY", "internal.example")
    assert transport(url).direct("/f") is not None  # a list of exceptions alone is no proxy
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    assert transport(url).direct("/f") is not None  # a proxy for the other scheme
    assert transport("http://api.example.com/v1").direct("/f") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert transport(url).direct("/f") is None  # only httpx speaks to the proxy


@pytest.fixture
def tls(monkeypatch) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 from a throwaway CA, which the
    client's shared TLS context (used by httpx and the direct read alike) trusts."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = httpx.create_ssl_context()
    ca.configure_trust(client)
    monkeypatch.setattr(transport_module, "shared_ssl_context", lambda: client)
    return server


async def test_over_tls_the_body_is_read_byte_exact(tls):
    async with Scripted(plain(BODY), tls=tls) as server:
        got, _ = await read_all(transport(server.url).direct("/f"))
    assert server.url.startswith("https://") and got == BODY


async def test_over_tls_an_untrusted_certificate_is_declined_to_httpx():
    async with Scripted(plain(BODY), tls=tls_context_of_an_unknown_ca()) as server:
        with pytest.raises(Declined, match="SSLCertVerificationError"):
            await asyncio.to_thread(transport(server.url).direct("/f").run, lambda buffer, filled: None)


def tls_context_of_an_unknown_ca() -> ssl.SSLContext:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(server)
    return server


# -- through fetch ---------------------------------------------------------------------------

def raw_engine(home: Path, url: str, read_timeout: float = 120.0) -> tuple[Engine, Account]:
    account = Account(name="raw", provider="openai", base_url=url)
    paths = Paths(config_dir=home, data_dir=home)
    settings = Settings(accounts=[account])

    async def no_wait(_: float) -> None:
        return None

    engine = Engine(settings=settings, paths=paths, ledger=Ledger.open(paths.ledger_file),
                    prices=PriceTable.load(settings.prices), key_lookup=lambda _: KEY,
                    policy=RetryPolicy(max_retries=1, read_timeout=read_timeout), sleep=no_wait)
    return engine, account


def ended(account: Account):
    return to_batch({"id": "batch_direct", "object": "batch", "endpoint": "/v1/chat/completions",
                     "input_file_id": "file-in", "completion_window": "24h", "status": "completed",
                     "output_file_id": "file-out", "error_file_id": None, "created_at": 1787180460,
                     "completed_at": 1787184060, "request_counts": {"total": 40_000, "completed": 40_000, "failed": 0},
                     "metadata": None}, account=account)


def open_part_files() -> list[str]:
    links = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return [link for link in links if link.endswith(".part")]


async def fetch_from(server: Scripted, tmp_path: Path, read_timeout: float = 120.0, **kw):
    engine, account = raw_engine(tmp_path / "home", server.url, read_timeout)
    try:
        return await fetch_results(engine, account, ended(account), tmp_path / "out", **kw)
    finally:
        await engine.aclose()
        engine.close_ledger()


async def test_fetch_writes_a_direct_read_byte_exact_and_reports_progress(tmp_path):
    progress: list[tuple[str, int]] = []
    async with Scripted(plain(BODY)) as server:
        result = await fetch_from(server, tmp_path, progress=lambda kind, size: progress.append((kind, size)))
    [written] = result.files
    assert written.path.read_bytes() == BODY
    assert written.sha256 == hashlib.sha256(BODY).hexdigest() and written.lines == BODY.count(b"\n")
    assert len(server.heads) == 1  # one request: the direct read (httpx would keep the connection)
    assert b"connection: close" in server.heads[0].lower()
    assert progress[-1] == ("results", len(BODY))
    assert result.summary.lines == BODY.count(b"\n")


async def test_a_compressed_answer_is_fetched_again_through_httpx_which_decodes_it(tmp_path):
    async with Scripted(gzipped(BODY)) as server:
        result = await fetch_from(server, tmp_path)
    assert result.files[0].path.read_bytes() == BODY
    assert len(server.heads) == 2  # declined (body unread), then httpx


async def test_an_error_answer_gets_httpx_classification_and_leaves_nothing(tmp_path):
    async with Scripted(status(404, b'{"error": {"message": "No such file: file-out", "type": "invalid_request_error"}}')) as server:
        with pytest.raises(NotFoundError, match="No such file"):
            await fetch_from(server, tmp_path)
    assert len(server.heads) == 2
    assert leftovers(tmp_path / "out") == [] and not list((tmp_path / "out").rglob("*.jsonl"))


async def test_a_redirect_is_not_followed_by_either_path(tmp_path):
    async with Scripted(status(302, extra=b"Location: http://127.0.0.1:9/elsewhere\r\n")) as server:
        with pytest.raises(ProtocolError, match="not followed"):
            await fetch_from(server, tmp_path)
    assert len(server.heads) == 2


async def test_a_cut_restarts_the_file_and_only_a_complete_one_takes_the_name(tmp_path):
    async with Scripted(cut(BODY, 1_200_000), chunked(BODY, cut_after=300_000), plain(BODY)) as server:
        result = await fetch_from(server, tmp_path)
    assert result.files[0].path.read_bytes() == BODY
    assert len(server.heads) == 3 and leftovers(tmp_path / "out") == []


async def test_a_full_disk_stops_the_fetch_with_its_error_and_leaves_nothing(tmp_path, monkeypatch):
    def full(fd, chunks):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fetch, "_write_all", full)
    async with Scripted(plain(BODY)) as server:
        with pytest.raises(OSError) as raised:
            await fetch_from(server, tmp_path)
    assert raised.value.errno == errno.ENOSPC
    assert len(server.heads) == 1  # not retried, not sent again through httpx
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()] and open_part_files() == []


async def test_cuts_on_every_attempt_end_unreachable_with_nothing_on_disk(tmp_path):
    async with Scripted(cut(BODY, 500_000)) as server:
        with pytest.raises(UnreachableError, match=r"127\.0\.0\.1 unreachable \(IncompleteRead\)") as raised:
            await fetch_from(server, tmp_path)
    assert len(server.heads) == fetch.ATTEMPTS
    assert KEY not in str(raised.value)
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


async def test_a_cancelled_fetch_stops_the_reading_thread_and_leaves_no_file(tmp_path, monkeypatch):
    ended_read = threading.Event()
    original = DirectRead.run

    def run(self, *args):
        try:
            return original(self, *args)
        finally:
            ended_read.set()

    monkeypatch.setattr(DirectRead, "run", run)
    first = asyncio.Event()
    async with Scripted() as server:
        server.answers = (stalling(server, BODY, 1_500_000),)
        task = asyncio.ensure_future(fetch_from(server, tmp_path, PATIENT.read_timeout,
                                                progress=lambda kind, size: size and first.set()))
        await first.wait()  # a first buffer is written; the server holds back the rest
        assert open_part_files()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(ended_read.wait, HANG)  # abort() woke the blocked read
        assert not server.release.is_set()  # it ended on the abort, not on the server's bytes
    await asyncio.to_thread(fetch._direct_readers.submit(lambda: None).result)
    assert leftovers(tmp_path / "out") == [] and not list((tmp_path / "out").rglob("*.jsonl"))
    assert open_part_files() == []  # the file was closed once the thread stopped


async def test_over_the_simulator_every_provider_file_comes_off_the_socket_byte_exact(tmp_path, monkeypatch):
    """A real provider's answers (the simulator on loopback): each file is read directly, no
    download goes through httpx, and the bytes are the ones httpx is served."""
    through_httpx: list[str] = []
    send = httpx.AsyncClient.send

    async def recording_send(self, request, **kw):
        through_httpx.append(request.url.path)
        return await send(self, request, **kw)

    sim = Simulator(seed=0, manual_clock=True, scenario="demo")
    with serve_on_loopback(sim) as host:
        engine = scenario_engine(tmp_path / "home", sim, host=host)
        try:
            for name in ("acme-prod", "claude-team", "gemini-lab"):
                account = engine.settings.account(name)
                batches = [b for b in await engine.list_account(account)
                           if b.status is Status.COMPLETED and b.result_files
                           and engine.client(account).result_request(b, b.result_files[0]) is not None]
                batch = batches[0]
                client = engine.client(account)
                served = {f.kind: b"".join([c async for c in client.download(batch, f)]) for f in batch.result_files}
                monkeypatch.setattr(httpx.AsyncClient, "send", recording_send)
                result = await fetch_results(engine, account, batch, tmp_path / "out")
                monkeypatch.setattr(httpx.AsyncClient, "send", send)
                assert {f.kind: f.path.read_bytes() for f in result.files} == served, name
                assert not [path for path in through_httpx if "content" in path or "download" in path
                            or path.endswith("/results")], name
                through_httpx.clear()
        finally:
            await engine.aclose()
            engine.close_ledger()


# -- analysis straight from the provider (the poller's pricing, `show`) ----------------------

async def analyse_from(server: Scripted, tmp_path: Path):
    engine, account = raw_engine(tmp_path / "home", server.url)
    try:
        return await analyse_results(engine, account, ended(account)), engine.client(account).parse_result_line
    finally:
        await engine.aclose()
        engine.close_ledger()


async def test_an_analysis_reads_and_parses_off_the_event_loop(tmp_path, monkeypatch):
    threads: set[int] = set()
    feed_chunk = ResultsAnalyzer.feed_chunk

    def recording(self, chunk):
        threads.add(threading.get_ident())
        return feed_chunk(self, chunk)

    monkeypatch.setattr(ResultsAnalyzer, "feed_chunk", recording)
    async with Scripted(plain(BODY)) as server:
        summary, parse = await analyse_from(server, tmp_path)
    expected = ResultsAnalyzer(parse)
    feed_chunk(expected, BODY)
    assert summary == expected.summary() and summary.lines == BODY.count(b"\n")
    assert len(server.heads) == 1 and b"connection: close" in server.heads[0].lower()
    assert threads and threading.get_ident() not in threads  # never on the loop's thread


async def test_an_analysis_cut_mid_body_is_unreachable_and_one_declined_goes_through_httpx(tmp_path):
    async with Scripted(cut(BODY, 1_500_000)) as server:
        with pytest.raises(UnreachableError, match="IncompleteRead"):
            await analyse_from(server, tmp_path / "cut")
    async with Scripted(gzipped(BODY)) as server:
        summary, _ = await analyse_from(server, tmp_path / "gzip")
    assert summary.lines == BODY.count(b"\n") and len(server.heads) == 2
