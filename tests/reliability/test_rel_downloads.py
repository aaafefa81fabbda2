"""Issue 6, item 2: fetches with the connection dropped mid-body end byte-exact or absent.

The simulator runs on a real loopback socket, so its `drop` fault sends the headers and a
random share of the body, then closes the socket: the client sees what a real cut looks
like. Every file on disk after every attempt is either byte-identical to what the simulator
serves (read beforehand with plain httpx, not with batchtui's download code) or absent; no
temporary file survives; a fetch repeated after a failure completes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from batchtui.core.errors import UnreachableError
from batchtui.core.fetch import fetch_results
from batchtui.core.models import Batch, Provider
from batchtui.sim import Simulator
from batchtui.sim.faults import FaultConfig
from reliability.figures import record
from reliability.harness import WORKING, RecordedSleep, scenario_engine
from support.loopback import serve_on_loopback

FETCHES = 50
DROP_RATE = 0.6  # of every answer: a file fails its 4 whole-file attempts ~13% of the time
MAX_REPEATS = 12  # a repeated fetch still meets faults; 0.13**12 is never
# Batches whose files add up to more are fetched once, not in every round: cuts land anywhere
# in a file either way, and the suite has a few minutes in all.
ROUND_BYTES = 1_000_000


def served_bytes(host: str, account, batch: Batch, ref: str) -> bytes:
    """The result file as the simulator serves it, read without batchtui's client code."""
    key = next(a.key for a in WORKING if a.name == account.name)
    if batch.provider is Provider.ANTHROPIC:
        response = httpx.get(ref, headers={"x-api-key": key, "anthropic-version": "2023-06-01"})
    elif batch.provider is Provider.GEMINI:
        name = ref.removeprefix("files/")
        response = httpx.get(f"{host}/gemini/download/v1beta/files/{name}:download", params={"alt": "media"},
                             headers={"x-goog-api-key": key})
    else:
        response = httpx.get(f"{host}/openai/v1/files/{ref}/content", headers={"authorization": f"Bearer {key}"})
    response.raise_for_status()
    return response.content


def check_tree(out: Path, expected: dict[str, str]) -> int:
    """Every file under `out` carries a final name and exactly the served bytes; returns how many."""
    checked = 0
    for path in out.rglob("*") if out.exists() else ():
        if path.is_dir():
            continue
        assert not path.name.startswith(".") and not path.name.endswith(".part"), f"temporary file left: {path}"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest == expected[str(path.relative_to(out))], f"{path} is not the served file (truncated?)"
        checked += 1
    return checked


async def test_fifty_fetches_under_dropped_connections_are_byte_exact_or_absent(tmp_path):
    sim = Simulator(seed=0, manual_clock=True, scenario="demo")
    sleep = RecordedSleep()
    with serve_on_loopback(sim) as host:
        engine = scenario_engine(tmp_path / "home", sim, host=host, sleep=sleep)
        try:
            targets = []
            for account in engine.accounts([a.name for a in WORKING]):
                targets += [(account, b) for b in await engine.list_account(account) if b.result_files]
            assert {b.provider for _, b in targets} == set(Provider) - {Provider.OPENAI_COMPATIBLE}
            # Relative path under a fetch's folder -> sha256 of what the simulator serves.
            expected: dict[str, str] = {}
            sizes: dict[str, int] = {}
            for account, batch in targets:
                for rf in batch.result_files:
                    if rf.ref == "inline":  # Gemini inline: no file exists; the JSONL is ours
                        client = engine.client(account)
                        data = b"".join([c async for c in client.download(batch, rf)])
                    else:
                        data = served_bytes(host, account, batch, rf.ref)
                    relative = Path(account.name) / _folder(batch) / f"{rf.kind}.jsonl"
                    expected[str(relative)] = hashlib.sha256(data).hexdigest()
                    sizes[batch.id] = sizes.get(batch.id, 0) + len(data)
            big = [t for t in targets if sizes[t[1].id] > ROUND_BYTES]
            rounds = [t for t in targets if sizes[t[1].id] <= ROUND_BYTES]
            order = big + rounds * FETCHES

            for a in WORKING:
                sim.world.workspace(a.provider.value, a.name).faults = FaultConfig(rate=DROP_RATE, kinds=("drop",))
            failed_then_completed = files_checked = attempts = 0
            for n in range(FETCHES):
                account, batch = order[n]
                out = tmp_path / "out" / f"fetch{n:02d}"
                for repeat in range(MAX_REPEATS):
                    attempts += 1
                    try:
                        # Checked while bytes arrive too: a final name is never a file in progress.
                        result = await fetch_results(engine, account, batch, out,
                                                     progress=lambda kind, done: _finals_complete(out, expected))
                    except UnreachableError:
                        files_checked += check_tree(out, expected)
                        continue
                    files_checked += check_tree(out, expected)
                    failed_then_completed += repeat > 0
                    break
                else:
                    raise AssertionError(f"fetch {n} of {batch.id} never completed in {MAX_REPEATS} tries")
                assert {f.kind for f in result.files} == {rf.kind for rf in batch.result_files}
                for f in result.files:
                    relative = str(f.path.relative_to(out))
                    assert f.sha256 == expected[relative]
                    known = engine.ledger.download(account.name, batch.id, f.kind)
                    assert known is not None and known.sha256 == expected[relative]
        finally:
            await engine.aclose()
            engine.close_ledger()

    drops = sum(sim.world.workspace(a.provider.value, a.name).faults.injected.get("drop", 0) for a in WORKING)
    record("downloads_under_faults", fetches=FETCHES, fetch_attempts=attempts, drops_injected=drops,
           failed_then_completed_on_repeat=failed_then_completed, files_checked=files_checked,
           distinct_files=len(expected), bytes_served_once=sum(sizes.values()), truncated_files_found=0)
    assert drops >= FETCHES  # the faults really happened
    assert failed_then_completed > 0  # and some fetches did fail whole, then completed on repeat


def _finals_complete(out: Path, expected: dict[str, str]) -> None:
    for path in out.rglob("*.jsonl"):
        if not path.name.startswith("."):
            assert hashlib.sha256(path.read_bytes()).hexdigest() == expected[str(path.relative_to(out))]


def _folder(batch: Batch) -> str:
    from batchtui.core.fetch import safe_name

    return safe_name(batch.id)
