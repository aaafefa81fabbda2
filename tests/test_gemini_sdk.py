"""The simulator's Gemini API, proven with the official `google-genai` SDK on a real socket.

If the SDK cannot read what the simulator sends, the simulator is wrong. The SDK joins
`base_url` + api_version (`v1` by default in 3.x) + path, so the simulator serves both
`/v1` and `/v1beta`; both are exercised here.
"""

from __future__ import annotations

import io
import json

import pytest

from batchtui.sim import Simulator
from batchtui.sim.gemini import seed_batch
from batchtui.sim.gemini_render import results_file
from batchtui.sim.world import OK, token_usage
from tests.support.loopback import serve_on_loopback

genai = pytest.importorskip("google.genai")
from google.genai import errors, types  # noqa: E402

KEY = "AIza-test-gemini-0001"
START = 1_786_000_000.0
MODEL = "gemini-2.5-flash"
TERMINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}


@pytest.fixture
def sim() -> Simulator:
    return Simulator(manual_clock=True, seed=5, start=START)


@pytest.fixture
def host(sim):
    with serve_on_loopback(sim) as url:
        yield url


def sdk(host: str, version: str | None = None, key: str = KEY):
    options = types.HttpOptions(base_url=f"{host}/gemini", api_version=version)
    return genai.Client(api_key=key, http_options=options)


def inline_requests(n: int) -> list[dict]:
    return [{"contents": [{"role": "user", "parts": [{"text": f"Classify ticket {i}"}]}], "metadata": {"key": f"k{i}"}}
            for i in range(n)]


def wait_until_done(sim, client, name):
    for _ in range(100):  # simulated time only: each round moves the clock ten minutes
        job = client.batches.get(name=name)
        if job.state.value in TERMINAL:
            return job
        sim.clock.advance(600)
    raise AssertionError(f"{name} never finished")


@pytest.mark.parametrize("version", [None, "v1beta"], ids=["sdk-default-v1", "v1beta"])
def test_inline_batch_lifecycle(sim, host, version):
    client = sdk(host, version)
    job = client.batches.create(model=MODEL, src=inline_requests(5), config={"display_name": "sdk [bold]run[/]"})
    assert job.name.startswith("batches/")
    assert job.state.value == "JOB_STATE_PENDING"
    assert job.display_name == "sdk [bold]run[/]" and job.model == f"models/{MODEL}"
    assert job.create_time is not None and job.end_time is None

    sim.clock.advance(30)
    assert client.batches.get(name=job.name).state.value == "JOB_STATE_RUNNING"
    done = wait_until_done(sim, client, job.name)
    assert done.state.value == "JOB_STATE_SUCCEEDED" and done.end_time >= done.create_time

    responses = done.dest.inlined_responses
    assert [r.metadata for r in responses] == [{"key": f"k{i}"} for i in range(5)]  # request order, echoed
    served = sim.world.find(sim.world.resolve("gemini", KEY), job.name)
    for (planned, outcome), item in zip(served.final_outcomes(sim.world.now()), responses, strict=True):
        if outcome != OK:
            continue
        usage = token_usage(served, planned)
        meta = item.response.usage_metadata
        assert meta.prompt_token_count == usage["input"]
        assert meta.candidates_token_count + (meta.thoughts_token_count or 0) == usage["output"]
        assert (meta.cached_content_token_count or 0) == usage["cached"]
        assert item.response.text and item.response.model_version == MODEL


def test_list_walks_every_page(sim, host):
    ws = sim.world.add_workspace("gemini", "main", KEY)
    made = [seed_batch(sim.world, ws, n_requests=2, model=MODEL, created_at=START - 60 * i) for i in range(5)]
    client = sdk(host)  # held: the pager fetches later pages through it
    listed = [job.name for job in client.batches.list(config={"page_size": 2})]
    assert listed == [b.id for b in made]
    assert ws.requests[("GET", "batches.list")] == 3


def test_cancel(sim, host):
    client = sdk(host)
    job = client.batches.create(model=MODEL, src=inline_requests(40), config={"display_name": "to-cancel"})
    sim.clock.advance(120)
    client.batches.cancel(name=job.name)
    cancelled = client.batches.get(name=job.name)
    assert cancelled.state.value == "JOB_STATE_CANCELLED" and cancelled.end_time is not None
    assert cancelled.dest is None  # a cancelled batch gives no results here
    client.batches.delete(name=job.name)
    with pytest.raises(errors.ClientError) as gone:
        client.batches.get(name=job.name)
    assert gone.value.code == 404


def test_file_mode_upload_and_download(sim, host):
    client = sdk(host)
    body = b"".join(json.dumps({"key": f"f{i}", "request": {"contents": [{"parts": [{"text": f"q{i}"}]}]}}).encode()
                    + b"\n" for i in range(12))
    uploaded = client.files.upload(file=io.BytesIO(body), config={"mime_type": "jsonl", "display_name": "in"})
    assert uploaded.name.startswith("files/") and uploaded.size_bytes == len(body)
    assert uploaded.source.value == "UPLOADED" and uploaded.download_uri is None
    assert client.files.get(name=uploaded.name).size_bytes == len(body)

    job = client.batches.create(model=MODEL, src=uploaded.name, config={"display_name": "file-run"})
    done = wait_until_done(sim, client, job.name)
    assert done.dest.file_name == "files/batch-" + job.name.removeprefix("batches/")
    data = client.files.download(file=done.dest.file_name)
    served = sim.world.find(sim.world.resolve("gemini", KEY), job.name)
    assert data == results_file(served)
    assert [json.loads(line)["key"] for line in data.splitlines()] == [f"f{i}" for i in range(12)]
    with pytest.raises(errors.ClientError) as refused:  # uploaded files can't be downloaded
        client.files.download(file=uploaded.name)
    assert refused.value.code == 400


def test_errors_reach_the_sdk_in_google_shape(sim, host):
    client = sdk(host)
    with pytest.raises(errors.ClientError) as missing:
        client.batches.get(name="batches/nope")
    assert (missing.value.code, missing.value.status) == (404, "NOT_FOUND")
    sim.world.add_workspace("gemini", "locked", "AIza-test-gemini-0002").faults.reject_key = True
    locked = sdk(host, key="AIza-test-gemini-0002")
    with pytest.raises(errors.ClientError) as refused:
        locked.batches.get(name="batches/x")
    assert (refused.value.code, refused.value.status) == (400, "INVALID_ARGUMENT")
    assert "API key not valid" in refused.value.message
