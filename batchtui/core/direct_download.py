"""A result file read straight off the socket: the fast path of a download to disk.

Through httpx, every read of a body passes through anyio, h11 and httpcore, and h11 copies each
byte into its buffer and out again, several times: for a 200 MB result file that was ~0.5 s of
the event loop's CPU, more than curl needs for the whole download. A result file is one plain
GET of one large body, so here a worker thread sends it with the standard library's
http.client, which reads the body into a buffer of ours (the kernel's copy only), and the same
thread hands each filled buffer to the file's writer (hash, line count, write).

This is only for the plain case. The request is the one httpx would send (built by the
account's transport: URL, key, headers), and anything else is left to httpx, which owns the
retry policy, the error classification and the redirect rule: an answer that is not a plain 200
(an error, a redirect, a compressed body), and any failure before the body starts. Then the
connection is closed with the body unread and the caller sends the request through httpx.
A connection cut mid-body is the caller's too: it restarts the file, as with httpx.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Callable

import httpx

# Bytes read per system call: the write, hash and line count of one buffer overlap nothing,
# so fewer, larger reads are the cheap part; 1 MB also keeps memory flat.
BUFFER_SIZE = 1 << 20
# How a response must look for this path: anything else goes through httpx.
PLAIN_ENCODINGS = frozenset({"", "identity"})

Consume = Callable[[bytearray, int], None]  # (buffer, bytes filled), in the reading thread
Report = Callable[[int], None]  # bytes so far, once per buffer


class Declined(Exception):
    """Nothing of the body was read: send the request through httpx instead."""


class Cut(Exception):
    """The connection failed after the body began; what was consumed is incomplete."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(type(cause).__name__)
        self.kind = type(cause).__name__


class DirectRead:
    """One GET, run once in a worker thread (`run`); `abort` from any thread ends it soon."""

    def __init__(self, request: httpx.Request, *, ssl_context: ssl.SSLContext | None,
                 connect_timeout: float, read_timeout: float) -> None:
        self.url = request.url
        # httpx's headers as it would send them, except that the connection ends with this body.
        self.headers = [(name, value) for name, value in request.headers.raw if name.lower() != b"connection"]
        self.headers.append((b"Connection", b"close"))
        self._ssl_context = ssl_context
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._lock = threading.Lock()
        self._connection: http.client.HTTPConnection | None = None
        self._aborted = False

    def run(self, consume: Consume, report: Report | None = None) -> int:
        """Send the request and feed the body to `consume`; returns its size in bytes.

        Raises Declined before the body (nothing consumed), Cut after it began; an error
        raised by `consume` itself (a full disk) passes through as it is."""
        connection, response = self._connect()
        try:
            return self._read_body(response, consume, report)
        finally:
            connection.close()

    def abort(self) -> None:
        """Cut the connection (the caller was cancelled): a blocked read returns at once."""
        with self._lock:
            self._aborted = True
            connection = self._connection
        sock = connection.sock if connection is not None else None
        if sock is not None:
            try:
                sock.shutdown(2)  # SHUT_RDWR: wakes the reader; closing is left to its thread
            except OSError:
                pass

    def _connect(self) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Connected, request sent, and a plain 200 head read; else Declined."""
        host, port = self.url.host, self.url.port
        if self.url.scheme == "https":
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=self._connect_timeout, context=self._ssl_context)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self._connect_timeout)
        with self._lock:
            if self._aborted:
                raise Declined("aborted")
            self._connection = connection
        try:
            connection.connect()
            assert connection.sock is not None
            connection.sock.settimeout(self._read_timeout)
            if self._aborted:  # abort() may have run between the lock and the connect
                raise Declined("aborted")
            connection.putrequest("GET", self.url.raw_path.decode("ascii"), skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers:
                connection.putheader(name, value)
            connection.endheaders()
            response = connection.getresponse()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            connection.close()
            raise Declined(type(exc).__name__) from None
        encoding = (response.getheader("content-encoding") or "").strip().lower()
        # http.client undoes `chunked` only when it is the one transfer coding: with another
        # ("gzip, chunked") it would hand over the coded bytes (h11 refuses such an answer).
        transfer = (response.getheader("transfer-encoding") or "").strip().lower()
        if response.status != 200 or encoding not in PLAIN_ENCODINGS or transfer not in ("", "chunked"):
            connection.close()
            raise Declined(" ".join(filter(None, (f"HTTP {response.status}", encoding, transfer))))
        return connection, response

    @staticmethod
    def _read_body(response: http.client.HTTPResponse, consume: Consume, report: Report | None) -> int:
        buffer = bytearray(BUFFER_SIZE)
        view = memoryview(buffer)
        size = 0
        while True:
            try:
                filled = response.readinto(view)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                # ValueError: the socket was shut down under a TLS read by abort().
                raise Cut(exc) from None
            if not filled:
                # readinto() ends quietly when the connection closes early; `length` is what
                # the Content-Length still promised (None for a chunked body, whose reader
                # raises IncompleteRead itself).
                if response.length:
                    raise Cut(http.client.IncompleteRead(b"", response.length))
                return size
            consume(buffer, filled)
            size += filled
            if report is not None:
                report(size)
