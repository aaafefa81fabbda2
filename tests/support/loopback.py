"""Serve a Simulator on a real loopback socket from a background thread (for the official
SDKs' sync clients and for subprocess tests)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from batchtui.sim import Simulator


@contextmanager
def serve_on_loopback(sim: Simulator) -> Iterator[str]:
    """Yield the host URL (`http://127.0.0.1:PORT`); the server stops when the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(sim.app, log_level="critical", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    started = threading.Event()

    def run() -> None:
        async def main() -> None:
            config.load()
            server.lifespan = config.lifespan_class(config)
            await server.startup(sockets=[sock])
            started.set()
            await server.main_loop()
            await server.shutdown(sockets=[sock])

        asyncio.run(main())

    thread = threading.Thread(target=run, name="sim-loopback", daemon=True)
    thread.start()
    if not started.wait(timeout=30):
        raise RuntimeError("the simulator did not start on loopback")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
