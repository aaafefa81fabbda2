"""A faithful local simulator of the OpenAI, Anthropic and Gemini batch APIs.

`Simulator` bundles a clock, a seeded world and the ASGI app; use `transport()` to talk to
it in-process through httpx, or `batchtui sim` to serve it on loopback.
"""

from __future__ import annotations

import httpx

from batchtui.core.accounts import Account
from batchtui.core.models import Provider
from batchtui.sim.clock import SimClock
from batchtui.sim.world import World

IN_PROCESS_HOST = "http://batchtui-sim"

PREFIXES = {
    Provider.OPENAI: "/openai/v1",
    Provider.ANTHROPIC: "/anthropic",
    Provider.GEMINI: "/gemini",
}


class Simulator:
    def __init__(
        self,
        *,
        seed: int = 0,
        speed: float = 1.0,
        manual_clock: bool = False,
        start: float | None = None,
        scenario: str | None = None,
    ) -> None:
        from batchtui.sim.app import build_app

        self.clock = SimClock(start, speed=speed, manual=manual_clock)
        self.world = World(self.clock, seed=seed)
        if scenario is not None:
            from batchtui.sim.scenario import load_scenario

            load_scenario(self.world, scenario)
        self.app = build_app(self.world)

    def transport(self) -> httpx.AsyncBaseTransport:
        from batchtui.sim.transport import SimTransport

        return SimTransport(app=self.app)

    def base_url(self, provider: Provider | str, host: str = IN_PROCESS_HOST) -> str:
        return host + PREFIXES[Provider(provider)]

    def account(self, name: str, provider: Provider | str, host: str = IN_PROCESS_HOST, **kw) -> Account:
        return Account(name=name, provider=Provider(provider), base_url=self.base_url(provider, host), **kw)
