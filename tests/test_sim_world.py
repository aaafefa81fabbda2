"""The simulator's provider-neutral lifecycle: a pure function of clock and seed."""

from __future__ import annotations

import random

from batchtui.sim.clock import SimClock
from batchtui.sim.faults import FaultConfig
from batchtui.sim.world import CANCELLED, EXPIRED, OK, Phase, Plan, World

T0 = 1_790_000_000.0


def make_world(seed=7):
    return World(SimClock(T0, manual=True), seed=seed)


def new_batch(world, provider="openai", n=50, plan=None):
    ws = world.resolve(provider, "k1")
    lines = [(f"req-{i}", {"custom_id": f"req-{i}"}) for i in range(n)]
    return world.create_batch(ws, batch_id=world.new_id("openai_batch"), model="gpt-5.4-mini", lines=lines,
                              plan=plan or Plan(duration=1000))


def test_openai_lifecycle_validating_running_finalizing_completed():
    world = make_world()
    batch = new_batch(world)
    assert batch.snapshot(world.now()).phase is Phase.VALIDATING
    world.clock.advance(31)
    snap = batch.snapshot(world.now())
    assert snap.phase is Phase.RUNNING and snap.started_at is not None
    world.clock.advance(500)
    mid = batch.snapshot(world.now())
    assert 0 < sum(mid.counts.values()) < 50 and mid.pending == 50 - sum(mid.counts.values())
    world.clock.advance(500)
    snap = batch.snapshot(world.now())
    assert snap.phase is Phase.FINALIZING and snap.pending == 0
    world.clock.advance(61)
    snap = batch.snapshot(world.now())
    assert snap.phase is Phase.COMPLETED and snap.ended_at is not None
    assert sum(snap.counts.values()) == 50


def test_counts_only_rise_while_running():
    world = make_world()
    batch = new_batch(world, n=200)
    seen = []
    for _ in range(40):
        world.clock.advance(30)
        seen.append(sum(batch.snapshot(world.now()).counts.values()))
    assert seen == sorted(seen) and seen[-1] == 200


def test_cancel_drains_then_cancels_the_rest():
    world = make_world()
    batch = new_batch(world)
    world.clock.advance(300)
    batch.cancel_requested_at = world.now()
    assert batch.snapshot(world.now()).phase is Phase.CANCELLING
    world.clock.advance(batch.timing.cancel_drain + 1)
    final = batch.final_outcomes(world.now())
    assert batch.snapshot(world.now()).phase is Phase.CANCELLED
    outcomes = {o for _, o in final}
    assert CANCELLED in outcomes and (outcomes - {CANCELLED})  # partial results and the rest cancelled


def test_expiry_leaves_partial_results_and_expired_requests():
    world = make_world()
    batch = new_batch(world, plan=Plan(duration=200_000))  # longer than the 24 h window
    world.clock.advance(86_401)
    snap = batch.snapshot(world.now())
    assert snap.phase is Phase.EXPIRED
    assert snap.counts[EXPIRED] > 0 and snap.counts[EXPIRED] < 50


def test_validation_failure_runs_nothing():
    world = make_world()
    batch = new_batch(world, plan=Plan(validation_errors=({"code": "empty_file", "message": "x", "line": None},)))
    world.clock.advance(31)
    snap = batch.snapshot(world.now())
    assert snap.phase is Phase.FAILED and sum(snap.counts.values()) == 0


def test_same_seed_same_plan_other_seed_other_plan():
    a, b, c = make_world(1), make_world(1), make_world(2)
    plans = [[(r.custom_id, r.outcome, r.finish_after) for r in new_batch(w, plan=Plan(error_rate=0.3)).requests]
             for w in (a, b, c)]
    assert plans[0] == plans[1] and plans[0] != plans[2]
    assert any(o != OK for _, o, _ in plans[0])


def test_future_batches_appear_as_the_clock_advances():
    world = make_world()
    ws = world.resolve("anthropic", "k")
    world.create_batch(ws, batch_id="msgbatch_later", model="claude-haiku-4-5", lines=[("a", {})],
                       created_at=T0 + 600)
    assert world.visible(ws) == [] and world.find(ws, "msgbatch_later") is None
    world.clock.advance(601)
    assert [b.id for b in world.visible(ws)] == ["msgbatch_later"]


def test_any_key_gets_its_own_workspace():
    world = make_world()
    assert world.resolve("openai", "a") is world.resolve("openai", "a")
    assert world.resolve("openai", "a") is not world.resolve("openai", "b")


def test_fault_rate_is_respected_and_counted():
    config = FaultConfig(rate=0.2, kinds=("429", "529"))
    rng = random.Random(3)
    picks = [config.pick(rng, "openai") for _ in range(2000)]
    share = sum(p is not None for p in picks) / len(picks)
    assert 0.16 < share < 0.24
    assert "529" not in picks  # only Anthropic answers 529
    assert sum(config.injected.values()) == sum(p is not None for p in picks)
