"""`batchtui sim`: the simulator on a loopback socket, until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
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
    # Listening before the URLs are printed: whoever reads them may connect at once (uvicorn
    # would only start listening a moment later, and such a connection was refused).
    sock.listen(2048)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    for provider, prefix in PREFIXES.items():
        print(f"{provider.value} http://{shown_host}:{bound_port}{prefix}", file=out)
    out.flush()
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    config = uvicorn.Config(sim.app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)

    async def run() -> None:
        # Our own signal handling: uvicorn's re-raises SIGTERM after shutting down, which would
        # make a clean stop look like a crash (exit -15) to whoever started us.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        config.load()
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        await server.main_loop()
        await server.shutdown(sockets=[sock])

    asyncio.run(run())
    return 0
