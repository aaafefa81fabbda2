"""`batchtui sim`: the simulator on a loopback socket, until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from typing import TextIO

from batchtui.sim import PREFIXES, Simulator
from batchtui.sim.faults import SimulatedDisconnect


class _QuietDrops(logging.Filter):
    """A simulated connection drop is the point of the fault, not an error to print."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, SimulatedDisconnect)


def serve(host: str = "127.0.0.1", port: int = 0, *, speed: float = 1.0, seed: int = 0,
          scenario: str | None = "demo", out: TextIO = sys.stdout) -> int:
    import uvicorn

    sim = Simulator(seed=seed, speed=speed, scenario=scenario)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    for provider, prefix in PREFIXES.items():
        print(f"{provider.value} http://{shown_host}:{bound_port}{prefix}", file=out)
    out.flush()
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    config = uvicorn.Config(sim.app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    asyncio.run(server.serve(sockets=[sock]))
    return 0
