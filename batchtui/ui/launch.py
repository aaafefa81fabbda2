"""Starting the dashboard: `batchtui` (the user's real accounts) and `batchtui demo` (the
built-in simulator, in a throwaway home directory).

The app runs inside our own event loop so the engine's HTTP clients, which belong to that loop,
are closed in it after the app exits.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import tempfile
from pathlib import Path

from batchtui.core.engine import Engine
from batchtui.core.errors import BatchtuiError


async def _run(engine: Engine, **kw) -> int:
    from batchtui.ui.app import make_app

    app = make_app(engine, **kw)
    loop = asyncio.get_running_loop()
    # A terminal closed or a `kill`: leave like `q` does, so the clients close and the demo's
    # temporary directory is removed.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            loop.add_signal_handler(sig, app.exit)
        except (NotImplementedError, RuntimeError, ValueError):  # not on this platform / thread
            pass
    try:
        await app.run_async()
    finally:
        await engine.aclose()
        engine.close_ledger()
    return app.return_code or 0


def run_dashboard() -> int:
    """The dashboard over the accounts in the user's config.toml."""
    try:
        engine = Engine.open()
    except BatchtuiError as exc:  # ConfigError (file:line: what is wrong), LedgerError
        sys.stderr.write(f"batchtui: {exc}\n")
        return 1
    return asyncio.run(_run(engine, paths=engine.paths))


def run_demo(speed: float = 30.0, seed: int = 0) -> int:
    """The dashboard on the simulator's demo scenario. Everything it writes (ledger, downloads)
    goes to a temporary directory removed at exit: the demo never touches the user's files."""
    from batchtui.demo import demo_engine

    with tempfile.TemporaryDirectory(prefix="batchtui-demo-") as home:
        engine, sim = demo_engine(Path(home), speed=speed, seed=seed)
        # The simulator's clock runs `speed` times faster than ours: ages and "today" follow it.
        return asyncio.run(_run(engine, paths=engine.paths, clock=sim.clock.datetime, demo=True))
