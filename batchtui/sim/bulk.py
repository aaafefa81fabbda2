"""Accounts and batches at benchmark scale, made in seconds: thousands of small batches in one
account (`seed_many`), or one ended batch whose results file is hundreds of MB (`seed_huge`).

A huge results file is rendered once, line by line, into the world's spool directory and
streamed from disk, so the simulator never holds it in memory. Its lines come from the
providers' usual renderers (answers lengthened with REPLY_BYTES), fixed by the seed like
everything else. Both are reachable over HTTP as `POST /_sim/populate` and `POST /_sim/bulk`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.responses import FileResponse, Response

from batchtui.sim.world import REPLY_BYTES, Plan, SimBatch, World, Workspace, write_lines

SPOOLED_RESULTS = "spooled_results"  # SimBatch.extra: an Anthropic batch's results file on disk
HOUR = 3600.0
DEFAULT_MODELS = {"openai": "gpt-5.4-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash"}
# Answers of 0.6-2.4 kB make result lines of about 1-3 kB, 2 kB on average.
DEFAULT_REPLY_BYTES = (600, 2400)


class SpooledFile(FileResponse):
    # 1 MB reads (starlette's default is 64 kB): a benchmark must measure the client, not
    # the simulator's read loop.
    chunk_size = 1 << 20


def spooled_response(path: Path, media_type: str, headers: Mapping[str, str] | None = None) -> Response:
    return SpooledFile(path, media_type=media_type, headers=dict(headers or {}))


def _request_line(provider: str, model: str) -> dict[str, Any]:
    """One request body shared by every request of a huge batch: only its size matters (it
    sets the token counts), and one shared dict keeps 100,000 requests small in memory."""
    text = "Summarise the attached support conversation in three sentences. " * 4
    if provider == "anthropic":
        return {"params": {"model": model, "max_tokens": 4096, "messages": [{"role": "user", "content": text}]}}
    if provider == "gemini":
        return {"request": {"contents": [{"role": "user", "parts": [{"text": text}]}]}}
    return {"method": "POST", "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": text}]}}


def seed_huge(world: World, ws: Workspace, *, requests: int, model: str | None = None,
              reply_bytes: tuple[int, int] = DEFAULT_REPLY_BYTES, error_rate: float = 0.01) -> SimBatch:
    """One batch that ended hours ago with `requests` result lines, its results on disk.

    ~1% of lines are errors (server and request errors, 40/60) and 0.1% refusals or safety
    blocks, as in a healthy production batch. Gemini's batch is in file mode (a responses file).
    """
    provider = ws.provider
    model = model or DEFAULT_MODELS[provider]
    line = _request_line(provider, model)
    lines = [(f"req-{index:07d}", line) for index in range(requests)]
    plan = Plan(error_rate=error_rate, server_error_share=0.4, blocked_rate=0.001, duration=HOUR)
    fields: dict[str, Any] = {}
    kind = {"openai": "openai_batch", "anthropic": "anthropic_batch", "gemini": "gemini_batch"}[provider]
    if provider == "openai":
        fields["endpoint"] = "/v1/chat/completions"
    elif provider == "gemini":
        fields.update(inline=False, display_name="bulk-results")
    batch = world.create_batch(ws, batch_id=world.new_id(kind), model=model, lines=lines, plan=plan,
                               created_at=world.now() - 6 * HOUR, **fields)
    batch.extra[REPLY_BYTES] = tuple(reply_bytes)
    spool_results(world, ws, batch)
    return batch


def spool_results(world: World, ws: Workspace, batch: SimBatch) -> list[Path]:
    """Render an ended batch's result files into the spool directory; the paths."""
    now = world.now()
    if ws.provider == "openai":
        from batchtui.sim.openai_wire import spool_result_files

        ids = spool_result_files(world, ws, batch)
        return [ws.files[file_id].path for file_id in ids if file_id is not None]
    if ws.provider == "anthropic":
        from batchtui.sim.anthropic_results import result_lines

        finals = batch.final_outcomes(now)
        if finals is None:
            raise ValueError(f"batch {batch.id} has not ended")
        path = write_lines(world.spool_dir() / f"{batch.id}.jsonl", result_lines(batch, finals))
        batch.extra[SPOOLED_RESULTS] = path
        return [path]
    from batchtui.sim import gemini_render
    from batchtui.sim.world import SimFile

    snap = batch.snapshot(now)
    if not gemini_render.has_output(batch, snap.phase):
        raise ValueError(f"batch {batch.id} has no results file")
    file_id = gemini_render.responses_file_id(batch)
    path = write_lines(world.spool_dir() / f"{file_id.replace('/', '_')}.jsonl", gemini_render.results_lines(batch))
    ws.files[file_id] = SimFile(id=file_id, workspace=ws.name, filename=file_id, purpose="batch_output",
                                created_at=snap.ended_at or now, path=path)
    return [path]


def seed_many(world: World, ws: Workspace, *, batches: int, active: int = 0, requests: int = 3,
              model: str | None = None) -> list[SimBatch]:
    """`batches` small batches in one account, newest first as a heavy user's history looks:
    the newest `active` still running for hours, every older one ended days ago."""
    from batchtui.sim import anthropic, gemini, openai

    seeder = {"openai": openai.seed_batch, "anthropic": anthropic.seed_batch, "gemini": gemini.seed_batch}[ws.provider]
    model = model or DEFAULT_MODELS[ws.provider]
    now = world.now()
    made = []
    ended = batches - active
    for index in range(batches):
        if index < ended:
            # Ten seconds apart, from three days ago: every one has long ended.
            created, plan = now - 72 * HOUR + 10 * index, Plan(duration=600)
        else:
            created, plan = now - 10 * (batches - index), Plan(duration=12 * HOUR)
        made.append(seeder(world, ws, n_requests=requests, model=model, created_at=created, plan=plan,
                           custom_id_prefix=f"b{index}"))
    return made
