"""Scenarios: the accounts and batches a fresh simulator starts with.

`demo` is what `batchtui demo` and `batchtui sim` show: five accounts across the three
providers (one with a key that is refused, so account health has something to say), and
about thirty batches in every state, some created in the past and some that appear, run and
end as the clock advances.
"""

from __future__ import annotations

from dataclasses import dataclass

from batchtui.core.models import Provider
from batchtui.sim.faults import FaultConfig
from batchtui.sim.world import Plan, World


@dataclass(frozen=True)
class ScenarioAccount:
    name: str
    provider: Provider
    key: str  # a simulator key: it opens this workspace and nothing real
    reject_key: bool = False


DEMO_ACCOUNTS = (
    ScenarioAccount("acme-prod", Provider.OPENAI, "sim-key-openai-acme-prod"),
    ScenarioAccount("acme-research", Provider.OPENAI, "sim-key-openai-acme-research"),
    ScenarioAccount("claude-team", Provider.ANTHROPIC, "sim-key-anthropic-team"),
    ScenarioAccount("gemini-lab", Provider.GEMINI, "sim-key-gemini-lab"),
    ScenarioAccount("old-intern-key", Provider.ANTHROPIC, "sim-key-anthropic-revoked", reject_key=True),
)

MIN = 60.0
HOUR = 3600.0


@dataclass(frozen=True)
class Seed:
    """One scenario batch: when it was made (seconds from the clock's start) and how it goes."""

    account: str
    offset: float
    n: int
    model: str
    plan: Plan = Plan()
    options: tuple[tuple[str, object], ...] = ()


def _demo_seeds() -> list[Seed]:
    fast = Plan(duration=20 * MIN)
    return [
        # -- acme-prod (OpenAI): every OpenAI state -----------------------------------------
        Seed("acme-prod", -20 * HOUR, 1200, "gpt-5.4-mini", Plan(duration=2 * HOUR)),  # completed
        Seed("acme-prod", -9 * HOUR, 800, "gpt-5.4", Plan(duration=3 * HOUR, error_rate=0.08)),  # completed, failures
        Seed("acme-prod", -30 * HOUR, 400, "gpt-5.4-nano", Plan(duration=60 * HOUR)),  # expired, partial
        Seed("acme-prod", -5 * HOUR, 300, "gpt-5.4-mini", Plan(duration=4 * HOUR, cancel_after=1 * HOUR)),  # cancelled
        Seed("acme-prod", -2 * HOUR, 50, "gpt-5.4-mini", Plan(validation_errors=(
            {"code": "duplicate_custom_id", "message": "The custom_id for this request is a duplicate of another "
             "request. The custom_id parameter must be unique for each request in a batch.", "line": 17},))),
        Seed("acme-prod", -40 * MIN, 2000, "gpt-5.4-mini", Plan(duration=2 * HOUR)),  # in progress
        Seed("acme-prod", -10 * MIN, 600, "gpt-5.4", Plan(duration=10 * MIN)),  # finalizing soon
        Seed("acme-prod", -10, 150, "gpt-5.4-nano", fast),  # validating
        Seed("acme-prod", -30 * MIN, 900, "gpt-5.4-mini", Plan(duration=3 * HOUR, cancel_after=30 * MIN - 20)),  # cancelling
        Seed("acme-prod", 3 * MIN, 250, "gpt-5.4-mini", fast),  # appears later
        Seed("acme-prod", 12 * MIN, 700, "gpt-5.4", Plan(duration=40 * MIN, error_rate=0.05)),
        # -- acme-research (OpenAI, responses endpoint) ---------------------------------------
        Seed("acme-research", -3 * 24 * HOUR, 5000, "gpt-5.4", Plan(duration=5 * HOUR, error_rate=0.02),
             (("endpoint", "/v1/responses"),)),
        Seed("acme-research", -50 * MIN, 3000, "gpt-5.4-mini", Plan(duration=90 * MIN),
             (("endpoint", "/v1/responses"),)),
        Seed("acme-research", 6 * MIN, 120, "gpt-5.4-nano", fast),
        # -- claude-team (Anthropic) -------------------------------------------------------------
        Seed("claude-team", -26 * 24 * HOUR, 10_000, "claude-sonnet-4-6", Plan(duration=50 * MIN)),  # results expire soon
        Seed("claude-team", -6 * HOUR, 2400, "claude-haiku-4-5", Plan(duration=45 * MIN, error_rate=0.04)),
        Seed("claude-team", -4 * HOUR, 1000, "claude-opus-4-6", Plan(duration=3 * HOUR, cancel_after=40 * MIN)),
        Seed("claude-team", -28 * HOUR, 600, "claude-haiku-4-5", Plan(duration=40 * HOUR)),  # expired
        Seed("claude-team", -35 * MIN, 1500, "claude-sonnet-4-6", Plan(duration=70 * MIN)),  # in progress
        Seed("claude-team", -20 * MIN, 400, "claude-haiku-4-5", Plan(duration=2 * HOUR, cancel_after=20 * MIN - 5)),
        Seed("claude-team", -2 * HOUR, 80, "claude-haiku-4-5", Plan(error_rate=1.0, server_error_share=0.0)),  # all errored
        Seed("claude-team", 2 * MIN, 300, "claude-haiku-4-5", fast),
        Seed("claude-team", 9 * MIN, 1200, "claude-sonnet-4-6", Plan(duration=30 * MIN, error_rate=0.06)),
        # -- gemini-lab (Gemini API) ---------------------------------------------------------------
        Seed("gemini-lab", -7 * HOUR, 500, "gemini-2.5-flash", Plan(duration=2 * HOUR, error_rate=0.03)),
        Seed("gemini-lab", -2 * 24 * HOUR, 2500, "gemini-2.5-flash-lite", Plan(duration=3 * HOUR), (("inline", False),)),
        Seed("gemini-lab", -50 * HOUR, 200, "gemini-2.5-pro", Plan(duration=80 * HOUR)),  # expired, no results
        Seed("gemini-lab", -3 * HOUR, 100, "gemini-2.5-flash", Plan(batch_failure={
            "code": 3, "message": "Batch failed: the input contained invalid requests."})),
        Seed("gemini-lab", -90 * MIN, 800, "gemini-2.5-flash", Plan(duration=3 * HOUR, cancel_after=30 * MIN)),
        Seed("gemini-lab", -25 * MIN, 1200, "gemini-2.5-flash", Plan(duration=50 * MIN)),  # running
        Seed("gemini-lab", -5, 60, "gemini-2.5-flash-lite", fast),  # pending
        Seed("gemini-lab", 5 * MIN, 400, "gemini-2.5-flash", Plan(duration=25 * MIN, error_rate=0.04)),
    ]


def load_scenario(world: World, name: str) -> list[ScenarioAccount]:
    """Populate `world`; returns the scenario's accounts (name, provider, key)."""
    if name == "empty":
        return []
    if name != "demo":
        raise ValueError(f"unknown scenario {name!r} (known: demo, empty)")
    from batchtui.sim import anthropic, gemini, openai

    seeders = {Provider.OPENAI: openai.seed_batch, Provider.ANTHROPIC: anthropic.seed_batch,
               Provider.GEMINI: gemini.seed_batch}
    accounts = {a.name: a for a in DEMO_ACCOUNTS}
    workspaces = {}
    for account in DEMO_ACCOUNTS:
        workspaces[account.name] = world.add_workspace(
            account.provider.value, account.name, account.key,
            faults=FaultConfig(reject_key=account.reject_key))
    start = world.clock.start
    for seed in _demo_seeds():
        account = accounts[seed.account]
        seeders[account.provider](world, workspaces[seed.account], n_requests=seed.n, model=seed.model,
                                  created_at=start + seed.offset, plan=seed.plan,
                                  custom_id_prefix=seed.account.split("-")[0], **dict(seed.options))
    return list(DEMO_ACCOUNTS)
