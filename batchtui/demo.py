"""`batchtui demo`: the real engine against the built-in simulator, with no keys.

The demo keeps its own BATCHTUI_HOME-style directory (never the user's real config, ledger or
keyring) and talks to the simulator in-process. Scenario keys are simulator keys: they open
simulated workspaces and nothing else.
"""

from __future__ import annotations

from pathlib import Path

from batchtui.core.accounts import Account
from batchtui.core.config import Settings
from batchtui.core.engine import Engine
from batchtui.core.ledger import Ledger
from batchtui.core.paths import Paths, ensure_private_dir
from batchtui.core.pricing import PriceTable
from batchtui.sim import Simulator
from batchtui.sim.scenario import load_scenario


def demo_engine(home: Path, *, speed: float = 30.0, seed: int = 0, start: float | None = None,
                manual_clock: bool = False, settings: Settings | None = None) -> tuple[Engine, Simulator]:
    sim = Simulator(seed=seed, speed=speed, start=start, manual_clock=manual_clock)
    scenario = load_scenario(sim.world, "demo")
    # Simulated minutes pass `speed` times faster than real ones: poll in real seconds.
    active = max(1.0, 60.0 / speed)
    accounts = [Account(name=a.name, provider=a.provider, base_url=sim.base_url(a.provider),
                        poll_active_seconds=active, poll_idle_seconds=active * 5) for a in scenario]
    keys = {a.name: a.key for a in scenario}
    base = settings or Settings()
    settings = base.model_copy(update={"accounts": accounts})
    paths = Paths(config_dir=ensure_private_dir(Path(home)), data_dir=ensure_private_dir(Path(home)))
    engine = Engine(settings=settings, paths=paths, ledger=Ledger.open(paths.ledger_file),
                    prices=PriceTable.load(settings.prices, openai_cached_batch_discount=settings.pricing.openai_cached_batch_discount), transport=sim.transport(),
                    key_lookup=lambda account: keys.get(account.name))
    return engine, sim
