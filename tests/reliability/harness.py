"""An engine over the demo scenario's accounts, talking to a simulator in-process or over a
real loopback socket (where a dropped connection cuts a body mid-way, as a real one does).

Retry back-off is recorded instead of slept: the tests never wait on a wall clock.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from batchtui.core.accounts import Account
from batchtui.core.config import Settings
from batchtui.core.engine import Engine
from batchtui.core.ledger import Ledger
from batchtui.core.paths import Paths, ensure_private_dir
from batchtui.core.pricing import PriceTable
from batchtui.sim import IN_PROCESS_HOST, Simulator
from batchtui.sim.scenario import DEMO_ACCOUNTS

WORKING = [a for a in DEMO_ACCOUNTS if not a.reject_key]  # the refused key has nothing to fetch


class RecordedSleep:
    """Stands in for asyncio.sleep in the transport's retry loop: remembers, returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def scenario_engine(home: Path, sim: Simulator, *, host: str | None = None, sleep=None) -> Engine:
    """The demo accounts against `sim`: in-process when `host` is None, else over loopback."""
    accounts = [Account(name=a.name, provider=a.provider, base_url=sim.base_url(a.provider, host or IN_PROCESS_HOST))
                for a in DEMO_ACCOUNTS]
    keys = {a.name: a.key for a in DEMO_ACCOUNTS}
    paths = Paths(config_dir=ensure_private_dir(home), data_dir=ensure_private_dir(home))
    settings = Settings(accounts=accounts)
    transport: httpx.AsyncBaseTransport | None = sim.transport() if host is None else None
    return Engine(settings=settings, paths=paths, ledger=Ledger.open(paths.ledger_file),
                  prices=PriceTable.load(settings.prices), transport=transport,
                  key_lookup=lambda account: keys.get(account.name), sleep=sleep or RecordedSleep())


def posts(sim: Simulator) -> int:
    """Every POST any workspace has received: zero means nothing was sent."""
    return sum(n for ws in sim.world.workspaces.values() for (method, _), n in ws.requests.items() if method == "POST")
