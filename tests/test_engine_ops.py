"""The operations both fronts share (list, fetch, submit, retry, poll) against the in-process
simulator's demo scenario. Time moves by advancing the simulator's clock, never by sleeping."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

from batchtui.core.errors import InputError
from batchtui.core.fetch import fetch_results
from batchtui.core.models import Outcome, Provider, Status
from batchtui.core.polling import Poller
from batchtui.core.retry import RetryRefused, plan_retry, run_retry
from batchtui.core.submit import submit_file
from batchtui.demo import demo_engine
from batchtui.sim.world import BLOCKED, CANCELLED, EXPIRED, REQUEST_ERROR, SERVER_ERROR

T0 = None  # the real clock: create lookups bound their search by our own time


@pytest.fixture
async def demo(tmp_path):
    engine, sim = demo_engine(tmp_path / "home", manual_clock=True, start=T0, seed=0)
    yield engine, sim
    await engine.aclose()
    engine.close_ledger()


def account(engine, name):
    return engine.settings.account(name)


async def test_list_accounts_reports_the_refused_key_and_lists_the_others(demo):
    engine, sim = demo
    batches, results = await engine.list_accounts(engine.accounts())
    by_name = {r.account.name: r for r in results}
    assert by_name["old-intern-key"].ok is False and by_name["old-intern-key"].error_kind == "AuthError"
    assert all(r.ok for n, r in by_name.items() if n != "old-intern-key")
    listed = {(b.account, b.provider) for b in batches}
    assert {("acme-prod", Provider.OPENAI), ("claude-team", Provider.ANTHROPIC), ("gemini-lab", Provider.GEMINI)} <= listed
    # every batch the simulator holds for a working account is listed, with its id
    ws = sim.world.workspace("anthropic", "claude-team")
    assert {b.id for b in sim.world.visible(ws)} == {b.id for b in batches if b.account == "claude-team"}
    assert len(engine.ledger.batches()) == len(batches)


async def completed_with_failures(engine, name):
    acct = account(engine, name)
    for batch in await engine.list_account(acct):
        if batch.status is Status.COMPLETED and (batch.counts.failed or 0) > 0:
            return acct, batch
    raise AssertionError(f"the demo scenario has no completed batch with failures under {name}")


@pytest.mark.parametrize("name", ["acme-prod", "claude-team", "gemini-lab"])
async def test_fetch_writes_exact_bytes_privately_and_twice_is_a_no_op(demo, tmp_path, name):
    engine, sim = demo
    acct, batch = await completed_with_failures(engine, name)
    out = tmp_path / "out"
    result = await fetch_results(engine, acct, batch, out)
    assert not result.no_op and result.files
    for f in result.files:
        served = b"".join([c async for c in engine.client(acct).download(batch, next(r for r in batch.result_files if r.kind == f.kind))])
        data = Path(f.path).read_bytes()
        assert data == served and hashlib.sha256(data).hexdigest() == f.sha256
        assert f.lines == data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        assert stat.S_IMODE(Path(f.path).stat().st_mode) == 0o600
        assert Path(f.path).parent == out / acct.name / f.path.parent.name
    assert stat.S_IMODE((out / acct.name).stat().st_mode) == 0o700
    # the analysis landed in the ledger and priced the batch
    analysis = engine.ledger.analysis(acct.name, batch.id)
    assert analysis is not None
    # Refusals and safety blocks are successes on the wire but their own outcome for us.
    failed = sum(n for o, n in analysis.breakdown.outcomes.items() if o not in (Outcome.SUCCEEDED, Outcome.BLOCKED))
    assert failed == (batch.counts.failed or 0) + (batch.counts.expired or 0) + (batch.counts.cancelled or 0)
    assert engine.costed(batch).cost.usd is not None
    again = await fetch_results(engine, acct, batch, out)
    assert again.no_op and [f.sha256 for f in again.files] == [f.sha256 for f in result.files]


async def test_fetch_under_dropped_connections_is_complete_or_absent(demo, tmp_path):
    from batchtui.sim.faults import FaultConfig

    engine, sim = demo
    acct, batch = await completed_with_failures(engine, "acme-prod")
    expected = {}
    for rf in batch.result_files:
        expected[rf.kind] = b"".join([c async for c in engine.client(acct).download(batch, rf)])
    sim.world.workspace("openai", "acme-prod").faults = FaultConfig(rate=0.5, kinds=("drop",))
    outcomes = []
    for attempt in range(6):
        out = tmp_path / f"out{attempt}"
        try:
            result = await fetch_results(engine, acct, batch, out)
        except Exception as exc:  # noqa: BLE001 - whatever failed, check what it left behind
            outcomes.append(type(exc).__name__)
        else:
            outcomes.append("ok")
            assert {f.kind for f in result.files} == set(expected)
        # Under a final name there is only ever a complete file; no temporary file survives.
        for path in out.rglob("*") if out.exists() else []:
            if path.is_file():
                assert not path.name.startswith("."), f"temporary file left: {path}"
                assert path.read_bytes() == expected[path.stem]
    assert "ok" in outcomes
    assert sim.world.workspace("openai", "acme-prod").faults.injected.get("drop", 0) > 0


def write_jsonl(path: Path, objects) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objects))
    return path


def anthropic_line(i):
    return {"custom_id": f"t-{i:04d}", "params": {"model": "claude-haiku-4-5", "max_tokens": 64,
                                                   "messages": [{"role": "user", "content": f"ticket {i}"}]}}


async def test_submit_malformed_file_names_lines_and_sends_nothing(demo, tmp_path):
    engine, sim = demo
    acct = account(engine, "claude-team")
    ws = sim.world.workspace("anthropic", "claude-team")
    before = len(ws.batches)
    path = tmp_path / "bad.jsonl"
    lines = [json.dumps(anthropic_line(1)), "{not json", json.dumps(anthropic_line(1)),
             json.dumps({"custom_id": "has space", "params": anthropic_line(3)["params"]})]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        await submit_file(engine, acct, path)
    numbers = [n for n, _ in info.value.problems]
    assert numbers == [2, 3, 4]
    assert "nothing was sent" in str(info.value)
    assert len(ws.batches) == before
    assert sum(n for (m, r), n in ws.requests.items() if m == "POST") == 0


async def test_submit_records_lines_and_retry_resends_exactly_the_failures(demo, tmp_path):
    from batchtui.sim.world import Plan

    engine, sim = demo
    acct = account(engine, "claude-team")
    path = write_jsonl(tmp_path / "in.jsonl", [anthropic_line(i) for i in range(120)])
    submitted = await submit_file(engine, acct, path)
    assert submitted.requests == 120
    ws = sim.world.workspace("anthropic", "claude-team")
    sim_batch = ws.batches[submitted.batch.id]
    assert [r.custom_id for r in sim_batch.requests] == [f"t-{i:04d}" for i in range(120)]
    stored_all = engine.ledger.submission_lines(acct.name, submitted.batch.id)
    assert stored_all["t-0007"] == json.dumps(anthropic_line(7)).encode()
    sim_batch.plan = Plan(error_rate=0.25, server_error_share=0.5, duration=600)
    sim.clock.advance(7200)
    parent = await engine.refresh(acct, submitted.batch.id)
    assert parent.is_terminal
    final = dict((r.custom_id, o) for r, o in sim_batch.final_outcomes(sim.world.now()))
    want = sorted(cid for cid, o in final.items() if o in (SERVER_ERROR, EXPIRED, CANCELLED))
    assert want, "the plan should have produced server errors"
    plan = await plan_retry(engine, acct, parent)
    assert sorted(plan.custom_ids) == want
    child = (await run_retry(engine, plan)).batch
    child_sim = ws.batches[child.id]
    assert sorted(r.custom_id for r in child_sim.requests) == want
    # The child carries exactly the original requests, not rebuilt ones.
    for request in child_sim.requests:
        assert request.line == json.loads(stored_all[request.custom_id])
    assert engine.ledger.children(acct.name, parent.id)[0].child_id == child.id
    with pytest.raises(RetryRefused):
        await run_retry(engine, plan)  # the first retry is still running
    with_requests = await plan_retry(engine, acct, parent, include_request_errors=True)
    assert set(with_requests.custom_ids) == set(want) | {c for c, o in final.items() if o == REQUEST_ERROR}


async def test_retry_of_openai_batch_reads_originals_from_the_input_file(demo):
    engine, sim = demo
    acct, batch = await completed_with_failures(engine, "acme-prod")
    plan = await plan_retry(engine, acct, batch, include_request_errors=True)
    assert "input file" in plan.source
    final = sim.world.workspace("openai", "acme-prod").batches[batch.id].final_outcomes(sim.world.now())
    assert sorted(plan.custom_ids) == sorted(r.custom_id for r, o in final if o in (SERVER_ERROR, REQUEST_ERROR, BLOCKED))
    for line in plan.lines:
        assert json.loads(line)["custom_id"] in plan.custom_ids


async def test_retry_refuses_without_originals_and_accepts_input_file(demo, tmp_path):
    engine, sim = demo
    acct, batch = await completed_with_failures(engine, "gemini-lab")
    with pytest.raises(RetryRefused) as info:
        await plan_retry(engine, acct, batch, include_request_errors=True)
    assert "--input" in str(info.value)
    ws = sim.world.workspace("gemini", "gemini-lab")
    originals = [{"key": r.custom_id, "request": r.line.get("request", r.line)} for r in ws.batches[batch.id].requests]
    path = write_jsonl(tmp_path / "orig.jsonl", originals)
    plan = await plan_retry(engine, acct, batch, include_request_errors=True, input_path=path)
    final = ws.batches[batch.id].final_outcomes(sim.world.now())
    assert sorted(plan.custom_ids) == sorted(r.custom_id for r, o in final if o in (SERVER_ERROR, REQUEST_ERROR, BLOCKED))


async def test_lost_create_answer_finds_the_batch_instead_of_resending(demo, tmp_path):
    engine, sim = demo
    acct = account(engine, "acme-prod")
    ws = sim.world.workspace("openai", "acme-prod")
    ws.faults.lose_create_answers = 1
    before = len(ws.batches)
    lines = [{"custom_id": f"q{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": str(i)}]}} for i in range(5)]
    submitted = await submit_file(engine, acct, write_jsonl(tmp_path / "q.jsonl", lines))
    assert submitted.recovered is True
    assert len(ws.batches) == before + 1
    assert submitted.batch.id in ws.batches


async def test_steady_state_poll_lists_once_and_fetches_only_active_batches(demo):
    engine, sim = demo
    updates = []
    poller = Poller(engine, updates.append, auto_analyse=False)
    for acct in engine.accounts():
        if acct.name == "old-intern-key":
            continue
        ws = sim.world.workspace(acct.provider.value, acct.name)
        first = await poller.poll_once(acct)
        assert first.cycle == 1 and len(first.changed) == len(sim.world.visible(ws))
        terminal = {b.id for b in poller.known(acct.name).values() if b.is_terminal}
        active = {b.id for b in poller.known(acct.name).values() if not b.is_terminal}
        assert terminal and active
        ws.requests.clear()
        second = await poller.poll_once(acct)
        total = sum(ws.requests.values())
        # one listing request (its first page stops at a known terminal id) plus at most one
        # request per active batch; terminal batches are never fetched again
        assert total <= 1 + len(active), ws.requests
        assert not ({b.id for b in second.changed} & terminal)
