"""Issue 6, item 3: no duplicate batches.

A create whose answer is lost after the provider made the batch must leave exactly one batch,
found again by listing (OpenAI and Gemini by the token in its metadata or display name,
Anthropic by creation time and request count), and never be re-sent. Where the match is
ambiguous, batchtui refuses to guess and says so. Pressing retry twice makes one child.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest

from batchtui.core.errors import CreateOutcomeUnknown
from batchtui.core.ledger import IntentStatus
from batchtui.core.retry import RetryRefused, plan_retry, run_retry
from batchtui.core.submit import submit_file
from batchtui.sim import Simulator
from batchtui.sim.faults import FaultConfig
from batchtui.sim.world import SERVER_ERROR
from reliability.figures import record
from reliability.harness import scenario_engine

ROUNDS = 5  # lost creates per provider
ACCOUNTS = {"openai": "acme-prod", "anthropic": "claude-team", "gemini": "gemini-lab"}
# The route name under which each simulator counts create requests.
CREATE_ROUTE = {"openai": ("POST", "/batches"), "anthropic": ("POST", "batches.create"),
                "gemini": ("POST", "batches.create")}
MODEL = {"gemini": "gemini-2.5-flash"}
FIGURES: dict[str, int] = {}


def request_line(provider: str, tag: str, i: int) -> dict:
    text = {"role": "user", "content": f"{tag} {i}"}
    if provider == "openai":
        return {"custom_id": f"{tag}-{i}", "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": "gpt-5.4-mini", "messages": [text]}}
    if provider == "anthropic":
        return {"custom_id": f"{tag}-{i}", "params": {"model": "claude-haiku-4-5", "max_tokens": 32,
                                                       "messages": [text]}}
    return {"key": f"{tag}-{i}", "request": {"contents": [{"role": "user", "parts": [{"text": f"{tag} {i}"}]}]}}


def write_input(path: Path, provider: str, tag: str, n: int) -> Path:
    path.write_text("".join(json.dumps(request_line(provider, tag, i)) + "\n" for i in range(n)))
    return path


@pytest.fixture
async def world(tmp_path):
    sim = Simulator(seed=3, manual_clock=True, scenario="demo")
    engine = scenario_engine(tmp_path / "home", sim)
    yield engine, sim
    await engine.aclose()
    engine.close_ledger()


@pytest.mark.parametrize("provider", list(ACCOUNTS))
async def test_lost_create_answers_leave_exactly_one_batch_each(world, tmp_path, provider):
    engine, sim = world
    account = engine.settings.account(ACCOUNTS[provider])
    ws = sim.world.workspace(provider, account.name)
    # Rate limits and overloads on top: a create refused as "not done" may be resent, and the
    # search after a lost answer must get through them too.
    ws.faults = FaultConfig(rate=0.3, kinds=("429", "503", "529"), retry_after=2)
    for n in range(ROUNDS):
        ws.faults.lose_create_answers = 1
        before = set(ws.batches)
        creates_before = ws.requests[CREATE_ROUTE[provider]]
        # A different size each round: Anthropic matches on size (see the ambiguous case below).
        path = write_input(tmp_path / f"{provider}-{n}.jsonl", provider, f"r{n}", 3 + n)
        submitted = await submit_file(engine, account, path, model=MODEL.get(provider))
        made = set(ws.batches) - before
        assert submitted.recovered, "the answer was lost: the batch must have been found, not re-sent"
        assert made == {submitted.batch.id}, f"round {n}: {len(made)} batches made"
        assert [r.custom_id for r in ws.batches[submitted.batch.id].requests] == [f"r{n}-{i}" for i in range(3 + n)]
        # Every create that reached the simulator was refused before it made anything, except one.
        assert ws.faults.injected["lost_create"] == n + 1
        assert ws.requests[CREATE_ROUTE[provider]] - creates_before >= 1
        assert engine.ledger.get_batch(account.name, submitted.batch.id) is not None
        assert engine.ledger.submission_lines(account.name, submitted.batch.id)
    assert not engine.ledger.open_create_intents(account.name)  # every intent was resolved
    listed = [b.id for b in await engine.list_account(account)]
    assert len(listed) == len(set(listed)) == len(sim.world.visible(ws))
    FIGURES[f"lost_creates_{provider}"] = ws.faults.injected["lost_create"]
    FIGURES[f"transient_faults_{provider}"] = sum(v for k, v in ws.faults.injected.items() if k != "lost_create")


async def test_anthropic_refuses_to_guess_between_two_batches_of_the_same_size(world, tmp_path):
    engine, sim = world
    account = engine.settings.account("claude-team")
    ws = sim.world.workspace("anthropic", account.name)
    first = await submit_file(engine, account, write_input(tmp_path / "a.jsonl", "anthropic", "a", 5))
    ws.faults.lose_create_answers = 1
    before = set(ws.batches)
    with pytest.raises(CreateOutcomeUnknown) as lost:
        await submit_file(engine, account, write_input(tmp_path / "b.jsonl", "anthropic", "b", 5))
    made = set(ws.batches) - before
    assert len(made) == 1, "the lost create made one batch and nothing was sent again"
    assert ws.requests[CREATE_ROUTE["anthropic"]] == 2
    message = str(lost.value)
    # It says why it will not pick one, names both candidates, and that nothing was re-sent.
    assert "2 batches of 5 requests" in message
    assert first.batch.id in message and made.pop() in message
    assert "nothing was re-sent" in message and "batchtui ls --account claude-team" in message
    # The intent stays open: the outcome is unknown, not failed.
    (intent,) = engine.ledger.open_create_intents(account.name)
    assert intent.status is IntentStatus.SENT and intent.n_requests == 5
    FIGURES["ambiguous_creates_refused"] = 1


@pytest.mark.parametrize("provider", list(ACCOUNTS))
async def test_retry_pressed_twice_makes_one_child(world, tmp_path, provider):
    engine, sim = world
    account = engine.settings.account(ACCOUNTS[provider])
    ws = sim.world.workspace(provider, account.name)
    submitted = await submit_file(engine, account, write_input(tmp_path / "in.jsonl", provider, "t", 60),
                                  model=MODEL.get(provider))
    # Every third request ends in a server error: worth retrying as it is.
    sim_batch = ws.batches[submitted.batch.id]
    sim_batch.requests = [dataclasses.replace(r, outcome=SERVER_ERROR) if r.index % 3 == 0 else r
                          for r in sim_batch.requests]
    sim.clock.advance(3 * 3600)
    parent = await engine.refresh(account, submitted.batch.id)
    plan = await plan_retry(engine, account, parent)
    assert {f"t-{i}" for i in range(0, 60, 3)} <= set(plan.custom_ids)
    before = set(ws.batches)

    # Two presses at once (two dashboard workers, say): one child, one refusal.
    first, second = await asyncio.gather(run_retry(engine, plan), run_retry(engine, plan), return_exceptions=True)
    outcomes = sorted([first, second], key=lambda o: isinstance(o, BaseException))
    assert not isinstance(outcomes[0], BaseException) and isinstance(outcomes[1], RetryRefused)
    assert "already has a retry" in str(outcomes[1]) or "being sent" in str(outcomes[1])
    assert set(ws.batches) - before == {outcomes[0].batch.id}
    # A third press while the child runs is refused too; --force is the deliberate way past.
    with pytest.raises(RetryRefused, match="--force"):
        await run_retry(engine, plan)
    forced = await run_retry(engine, plan, force=True)
    assert set(ws.batches) - before == {outcomes[0].batch.id, forced.batch.id}
    children = [link.child_id for link in engine.ledger.children(account.name, parent.id)]
    assert children == [outcomes[0].batch.id, forced.batch.id]
    FIGURES[f"retry_double_press_{provider}"] = 1


def test_zz_record_duplicate_figures():
    """Last in the module: the figures of the tests above (each adds its own)."""
    assert FIGURES, "run with the tests above"
    record("no_duplicate_batches", lost_creates=sum(v for k, v in FIGURES.items() if k.startswith("lost_")),
           transient_faults=sum(v for k, v in FIGURES.items() if k.startswith("transient_")),
           duplicates_found=0, ambiguous_creates_refused=FIGURES.get("ambiguous_creates_refused", 0),
           double_retries_one_child=sum(v for k, v in FIGURES.items() if k.startswith("retry_double")))
