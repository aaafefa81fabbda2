"""Two batchtui processes retrying the same batch at once send one follow-up batch, not two.

Each "process" here is an Engine with its own Ledger connection on the same file (their in-
process guard, `retries_in_flight`, is not shared, just as between two CLI runs). Engine A's
create is held at the transport until the test lets it through, so B's attempt lands while A
holds the claim: no sleeps, no timing."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import httpx
import pytest

from batchtui.core.accounts import Account
from batchtui.core.config import Settings
from batchtui.core.engine import Engine
from batchtui.core.ledger import IntentStatus, Ledger
from batchtui.core.paths import Paths
from batchtui.core.pricing import PriceTable
from batchtui.core.retry import RetryRefused, plan_retry, run_retry
from batchtui.core.submit import submit_file
from batchtui.sim import Simulator
from batchtui.sim.world import SERVER_ERROR

KEY = "sk-test-retry-claim"
CREATE = ("POST", "/batches")  # the simulator's route name for an OpenAI create
SAFETY_NET = 30.0  # for a hung test only: nothing here waits on time


class HeldCreate(httpx.AsyncBaseTransport):
    """The simulator's transport, holding each batch create until `release` is set."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/batches"):
            self.arrived.set()
            await self.release.wait()
        return await self.inner.handle_async_request(request)


def make_engine(tmp_path, sim: Simulator, account: Account, transport) -> Engine:
    paths = Paths(config_dir=tmp_path, data_dir=tmp_path)  # one data dir: one ledger file
    settings = Settings().model_copy(update={"accounts": [account]})
    return Engine(settings=settings, paths=paths, ledger=Ledger.open(paths.ledger_file),
                  prices=PriceTable.load(settings.prices), transport=transport,
                  key_lookup=lambda _account: KEY)


@pytest.fixture
async def two(tmp_path):
    """A parent batch with server errors to retry, and two engines sharing one ledger file."""
    sim = Simulator(scenario=None, manual_clock=True)
    ws = sim.world.add_workspace("openai", "acct", KEY)
    account = sim.account("acct", "openai")
    held = HeldCreate(sim.transport())
    a = make_engine(tmp_path, sim, account, held)
    b = make_engine(tmp_path, sim, account, sim.transport())
    lines = [{"custom_id": f"t-{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": str(i)}]}}
             for i in range(30)]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    held.release.set()  # the parent's own create goes straight through
    submitted = await submit_file(b, account, path)
    sim_batch = ws.batches[submitted.batch.id]
    sim_batch.requests = [dataclasses.replace(r, outcome=SERVER_ERROR) if r.index % 3 == 0 else r
                          for r in sim_batch.requests]
    sim.clock.advance(3 * 3600)
    parent = await b.refresh(account, submitted.batch.id)
    plan = await plan_retry(b, account, parent)
    held.release.clear()
    held.arrived.clear()
    ws.requests.clear()
    yield sim, ws, held, a, b, plan
    for engine in (a, b):
        await engine.aclose()
        engine.close_ledger()


async def test_a_second_process_is_refused_while_the_first_sends(two):
    sim, ws, held, a, b, plan = two
    parent = plan.parent
    first = asyncio.create_task(run_retry(a, plan))
    await asyncio.wait_for(held.arrived.wait(), SAFETY_NET)  # A holds the claim, its create in flight
    claim = b.ledger.retry_claim(parent.account, parent.id)
    assert claim is not None

    with pytest.raises(RetryRefused) as refused:
        await run_retry(b, plan)
    message = str(refused.value)
    assert parent.id in message and claim.token in message and "--force" in message
    assert ws.requests[CREATE] == 0  # B sent nothing; A's create is still held

    held.release.set()
    child = await asyncio.wait_for(first, SAFETY_NET)
    assert ws.requests[CREATE] == 1
    assert [link.child_id for link in b.ledger.children(parent.account, parent.id)] == [child.batch.id]
    assert b.ledger.retry_claim(parent.account, parent.id) is None  # released once linked
    # Afterwards B sees A's child running (the claim is gone, the link guards).
    with pytest.raises(RetryRefused, match="already has a retry running"):
        await run_retry(b, plan)
    assert ws.requests[CREATE] == 1


async def test_a_retry_the_provider_refused_releases_its_claim(two):
    sim, ws, held, a, b, plan = two
    held.release.set()
    ws.faults.reject_key = True
    with pytest.raises(Exception) as refused:
        await run_retry(a, plan)
    assert not isinstance(refused.value, RetryRefused)  # the provider's answer, not ours
    assert b.ledger.retry_claim(plan.parent.account, plan.parent.id) is None
    ws.faults.reject_key = False
    retried = await run_retry(b, plan)  # tried again, with no --force needed
    assert retried.batch.id in ws.batches


async def test_a_retry_cut_off_mid_create_keeps_its_claim_until_forced(two):
    sim, ws, held, a, b, plan = two
    parent = plan.parent
    first = asyncio.create_task(run_retry(a, plan))
    await asyncio.wait_for(held.arrived.wait(), SAFETY_NET)
    first.cancel()  # the process dies mid-create: did the provider make the batch? Unknown.
    with pytest.raises(asyncio.CancelledError):
        await first
    claim = b.ledger.retry_claim(parent.account, parent.id)
    assert claim is not None and b.ledger.create_intent(claim.token).status is IntentStatus.SENT
    with pytest.raises(RetryRefused, match="answer was lost") as refused:
        await run_retry(b, plan)
    assert claim.token in str(refused.value) and f"--account {parent.account}" in str(refused.value)
    assert ws.requests[CREATE] == 0
    forced = await run_retry(b, plan, force=True)  # the deliberate way past
    assert ws.requests[CREATE] == 1 and forced.batch.id in ws.batches


async def test_confirming_despite_a_running_retry_still_takes_the_claim(two):
    """The dashboard's "an earlier retry is still running: retry anyway?" goes past that one
    guard, not past another process sending the same retry at the same moment."""
    sim, ws, held, a, b, plan = two
    held.release.set()
    first = await run_retry(a, plan)  # a first retry, still running at the provider
    with pytest.raises(RetryRefused, match="already has a retry running"):
        await run_retry(b, plan)
    held.release.clear()
    held.arrived.clear()
    second = asyncio.create_task(run_retry(a, plan, despite_running_child=True))
    await asyncio.wait_for(held.arrived.wait(), SAFETY_NET)  # A's confirmed second retry, in flight
    with pytest.raises(RetryRefused, match="already being retried by another batchtui"):
        await run_retry(b, plan, despite_running_child=True)
    held.release.set()
    sent = await asyncio.wait_for(second, SAFETY_NET)
    assert ws.requests[CREATE] == 2 and {first.batch.id, sent.batch.id} <= set(ws.batches)
