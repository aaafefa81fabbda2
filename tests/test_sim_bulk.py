"""Benchmark-scale simulator state (sim/bulk.py): a huge ended batch whose results are written
to disk once and streamed from there, the same bytes for the same seed; many batches in one
account; both through the /_sim control routes."""

from __future__ import annotations

import hashlib
import json

import httpx

from batchtui.sim import Simulator
from batchtui.sim.bulk import seed_huge, seed_many

PROVIDERS = ("openai", "anthropic", "gemini")


def _spooled(sim: Simulator) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sim.world.spool_dir().iterdir()}


def test_huge_results_are_written_once_with_the_same_bytes_for_the_same_seed_and_clock():
    runs = []
    for _ in range(2):
        sim = Simulator(seed=7, scenario=None, start=1_790_000_000, manual_clock=True)
        for provider in PROVIDERS:
            seed_huge(sim.world, sim.world.add_workspace(provider, provider, f"k-{provider}"), requests=300,
                      reply_bytes=(1_000, 2_000))
        runs.append(_spooled(sim))
    assert runs[0] == runs[1] and len(runs[0]) == 4  # OpenAI writes an output and an error file


def test_huge_results_have_realistic_lines():
    sim = Simulator(scenario=None)
    ws = sim.world.add_workspace("anthropic", "a", "k")
    batch = seed_huge(sim.world, ws, requests=500, reply_bytes=(1_000, 2_000))
    [path] = sim.world.spool_dir().iterdir()
    lines = path.read_bytes().splitlines()
    assert len(lines) == len(batch.requests) == 500
    sizes = sorted(len(line) for line in lines)
    assert 1_000 < sizes[len(sizes) // 2] < 3_000  # a median line of 1-3 kB
    kinds = {json.loads(line)["result"]["type"] for line in lines}
    assert kinds == {"succeeded", "errored"}


async def test_spooled_files_are_served_as_written():
    sim = Simulator(scenario=None)
    keys = {}
    for provider in PROVIDERS:
        keys[provider] = f"k-{provider}"
        seed_huge(sim.world, sim.world.add_workspace(provider, provider, keys[provider]), requests=200)
    on_disk = {p.name: p.read_bytes() for p in sim.world.spool_dir().iterdir()}
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as http:
        ws = sim.world.workspace("anthropic", "anthropic")
        [batch] = ws.batches.values()
        served = await http.get(f"/anthropic/v1/messages/batches/{batch.id}/results",
                                headers={"x-api-key": keys["anthropic"], "anthropic-version": "2023-06-01"})
        assert served.content == on_disk[f"{batch.id}.jsonl"]
        ws = sim.world.workspace("openai", "openai")
        listed = (await http.get("/openai/v1/batches", headers={"Authorization": f"Bearer {keys['openai']}"})).json()
        output = listed["data"][0]["output_file_id"]
        served = await http.get(f"/openai/v1/files/{output}/content",
                                headers={"Authorization": f"Bearer {keys['openai']}"})
        assert served.content == on_disk[f"{output}.jsonl"]
        meta = await http.get(f"/openai/v1/files/{output}", headers={"Authorization": f"Bearer {keys['openai']}"})
        assert meta.json()["bytes"] == len(served.content)


async def test_control_routes_make_big_state():
    sim = Simulator(scenario=None)
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as http:
        made = await http.post("/_sim/populate", json={"provider": "gemini", "key": "g", "batches": 40, "active": 2})
        assert made.json()["batches"] == 40
        huge = await http.post("/_sim/bulk", json={"provider": "openai", "key": "o", "requests": 50})
        assert huge.status_code == 200 and huge.json()["requests"] == 50
        bad = await http.post("/_sim/bulk", json={"provider": "nobody", "key": "o", "requests": 5})
        assert bad.status_code == 400
    ws = sim.world.workspace("gemini", sim.world.resolve("gemini", "g").name)
    phases = [b.snapshot(sim.world.now()).phase.terminal for b in sim.world.visible(ws)]
    assert phases[:2] == [False, False] and all(phases[2:])  # the newest two still running


def test_many_batches_stay_cheap_to_make():
    sim = Simulator(scenario=None)
    ws = sim.world.add_workspace("openai", "o", "k")
    made = seed_many(sim.world, ws, batches=300, active=5)
    assert len(made) == len(ws.batches) == 300
    assert sum(not b.snapshot(sim.world.now()).phase.terminal for b in made) == 5
