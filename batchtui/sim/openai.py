"""The simulated OpenAI Batch + Files APIs (PROVIDERS.md §A), and a Groq-shaped dialect.

Handlers only render the world's state (world.py) in OpenAI's wire format: a batch's
status, counts and files are a function of the clock and the seed. What the real API does
and this one copies is cited by section; choices where the reference is silent say so.
"""

from __future__ import annotations

import json
import random
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from batchtui.sim.app import endpoint
from batchtui.sim.bulk import spooled_response
from batchtui.sim.envelopes import openai_error, request_id
from batchtui.sim.openai_input import check_input, parse_multipart, sample_file
from batchtui.sim.openai_wire import DIALECTS, FILE_TTL, STATUS_NAMES, batch_object, file_object
from batchtui.sim.world import TIMINGS, Phase, Plan, SimBatch, SimFile, Workspace, World


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={
        "x-request-id": request_id(), "openai-version": "2020-10-01", "openai-processing-ms": "37"})


# -- handlers -------------------------------------------------------------------------------

def _bad(message: str, *, param: str | None = None, code: str | None = None, status: int = 400) -> JSONResponse:
    return openai_error(status, message, param=param, code=code)


def _invalid_value(param: str, value: Any, allowed: tuple[str, ...]) -> JSONResponse:
    shown = ", ".join(f"'{a}'" for a in allowed[:10]) + (", ..." if len(allowed) > 10 else "")
    return _bad(f"Invalid value: {value!r}. Supported values are: {shown}.", param=param, code="invalid_value")


def _live_file(world: World, ws: Workspace, file_id: str) -> SimFile | None:
    f = ws.files.get(file_id)
    return f if f is not None and not f.deleted and f.created_at <= world.now() else None


def _no_file(file_id: str) -> JSONResponse:
    return _bad(f"No such File object: {file_id}", param="id", status=404)


def _no_batch(batch_id: str) -> JSONResponse:
    return _bad(f"No batch found with id '{batch_id}'.", status=404)


def _metadata_problem(metadata: Any) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        return "Invalid type for 'metadata': expected an object with string values."
    if len(metadata) > 16:
        return "Invalid 'metadata': too many properties. Expected an object with at most 16 properties."
    if any(len(k) > 64 for k in metadata) or any(len(v) > 512 for v in metadata.values()):
        return "Invalid 'metadata': keys are at most 64 characters and values at most 512."
    return None


def _page(items: list, params: Any, *, default: int, maximum: int) -> tuple[list, bool] | JSONResponse:
    """A cursor page of `items` (already in order) from `after` and `limit`."""
    try:
        limit = int(params.get("limit", default))
    except ValueError:
        return _bad("Invalid 'limit': expected an integer.", param="limit", code="invalid_type")
    if not 1 <= limit <= maximum:
        return _bad(f"Invalid 'limit': expected a value between 1 and {maximum}, but got {limit} instead.",
                    param="limit", code="integer_out_of_range")
    after = params.get("after")
    if after:
        ids = [item.id for item in items]
        # An unknown cursor gives an empty page rather than restarting from the top.
        items = items[ids.index(after) + 1:] if after in ids else []
    return items[:limit], len(items) > limit


def _listing(page: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None, "has_more": has_more}


def routes(world: World, provider: str = "openai") -> list[Route]:
    dialect = DIALECTS[provider]
    # A dialect runs on OpenAI's clock (validation, finalizing, the 24 h window).
    TIMINGS.setdefault(dialect.provider, TIMINGS["openai"])

    async def upload_file(request: Request, ws: Workspace) -> Response:
        try:
            form = parse_multipart(await request.body(), request.headers.get("content-type", ""))
        except ValueError:
            return _bad("Expected a multipart/form-data body with 'file' and 'purpose'.")
        part, purpose = form.get("file"), form.get("purpose")
        if part is None:
            return _bad("Missing required parameter: 'file'.", param="file", code="missing_required_parameter")
        if purpose is None:
            return _bad("Missing required parameter: 'purpose'.", param="purpose", code="missing_required_parameter")
        purpose_text = purpose.data.decode("utf-8", "replace")
        if purpose_text not in dialect.purposes:
            return _invalid_value("purpose", purpose_text, dialect.purposes)
        filename = part.filename or "upload"
        if purpose_text == "batch" and not filename.lower().endswith(".jsonl"):
            return _bad("Invalid file format for Batch API. Must be .jsonl")  # observed (§A.2)
        now = world.now()
        f = SimFile(id=world.new_id("openai_file"), workspace=ws.name, filename=filename, purpose=purpose_text,
                    created_at=now, content=part.data, expires_at=now + FILE_TTL if purpose_text == "batch" else None)
        ws.files[f.id] = f
        return _json(file_object(f))

    async def list_files(request: Request, ws: Workspace) -> Response:
        params = request.query_params
        files = [f for f in ws.files.values() if _live_file(world, ws, f.id) is not None
                 and params.get("purpose") in (None, f.purpose)]
        files.sort(key=lambda f: (f.created_at, f.id), reverse=params.get("order", "desc") != "asc")
        paged = _page(files, params, default=10_000, maximum=10_000)
        if isinstance(paged, Response):
            return paged
        return _json(_listing([file_object(f) for f in paged[0]], paged[1]))

    async def get_file(request: Request, ws: Workspace) -> Response:
        f = _live_file(world, ws, request.path_params["file_id"])
        return _json(file_object(f)) if f else _no_file(request.path_params["file_id"])

    async def delete_file(request: Request, ws: Workspace) -> Response:
        f = _live_file(world, ws, request.path_params["file_id"])
        if f is None:
            return _no_file(request.path_params["file_id"])
        f.deleted = True
        return _json({"id": f.id, "object": "file", "deleted": True})

    async def file_content(request: Request, ws: Workspace) -> Response:
        f = _live_file(world, ws, request.path_params["file_id"])
        if f is None:
            return _no_file(request.path_params["file_id"])
        if not f.downloadable:
            return _bad(f"Not allowed to download files of purpose: {f.purpose}")
        headers = {"x-request-id": request_id(), "openai-version": "2020-10-01"}
        if f.path is not None:
            return spooled_response(f.path, "application/octet-stream", headers)
        return Response(f.data(), media_type="application/octet-stream", headers=headers)

    async def create_batch(request: Request, ws: Workspace) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _bad("We could not parse the JSON body of your request.")
        if not isinstance(body, dict):
            return _bad("The request body must be a JSON object.")
        for param in ("input_file_id", "endpoint", "completion_window"):
            if not isinstance(body.get(param), str):
                return _bad(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
        if body["endpoint"] not in dialect.endpoints:
            return _invalid_value("endpoint", body["endpoint"], dialect.endpoints)
        if body["completion_window"] not in dialect.windows:
            return _invalid_value("completion_window", body["completion_window"], dialect.windows)
        problem = _metadata_problem(body.get("metadata"))
        if problem:
            return _bad(problem, param="metadata")
        f = _live_file(world, ws, body["input_file_id"])
        if f is None:
            return _bad(f"No such File object: {body['input_file_id']}", param="input_file_id", status=404)
        if f.purpose != "batch":
            return _bad(f"File {f.id} has purpose '{f.purpose}'; a batch input file needs purpose 'batch'.",
                        param="input_file_id")
        # Problems inside the file do not fail the create: the batch fails validation (§A.3).
        checked = check_input(f.data(), body["endpoint"])
        plan = Plan(validation_errors=tuple(checked.errors)) if checked.errors else None
        batch = world.create_batch(ws, batch_id=world.new_id("openai_batch"), model=checked.model or "",
                                   lines=[] if checked.errors else checked.lines, plan=plan,
                                   endpoint=body["endpoint"], input_file_id=f.id, metadata=body.get("metadata"))
        return _json(batch_object(world, ws, batch, dialect))

    def listed(ws: Workspace, batches: list[SimBatch]) -> list[dict[str, Any]]:
        now = world.now()
        return [b.settled(dialect.provider, now, lambda b=b: batch_object(world, ws, b, dialect)) for b in batches]

    async def list_batches(request: Request, ws: Workspace) -> Response:
        batches = world.visible(ws)  # newest first
        if not dialect.paginated:
            return _json({"object": "list", "data": listed(ws, batches)})
        paged = _page(batches, request.query_params, default=20, maximum=100)
        if isinstance(paged, Response):
            return paged
        return _json(_listing(listed(ws, paged[0]), paged[1]))

    async def get_batch(request: Request, ws: Workspace) -> Response:
        batch = world.find(ws, request.path_params["batch_id"])
        if batch is None:
            return _no_batch(request.path_params["batch_id"])
        return _json(batch_object(world, ws, batch, dialect))

    async def cancel_batch(request: Request, ws: Workspace) -> Response:
        batch = world.find(ws, request.path_params["batch_id"])
        if batch is None:
            return _no_batch(request.path_params["batch_id"])
        phase = batch.snapshot(world.now()).phase
        # Unverified (§A.11): the error for a terminal batch; finalizing is treated the same,
        # since every request has already finished.
        if phase.terminal or phase is Phase.FINALIZING:
            return _bad(f"Cannot cancel a batch with status '{STATUS_NAMES[phase]}'.")
        if phase is not Phase.CANCELLING:
            batch.cancel_requested_at = world.now()
        return _json(batch_object(world, ws, batch, dialect))

    def route(path: str, name: str, handler, method: str, **kw: Any) -> Route:
        return Route(path, endpoint(world, provider, name, handler, **kw), methods=[method])

    return [
        route("/files", "/files", upload_file, "POST"),
        route("/files", "/files", list_files, "GET"),
        route("/files/{file_id}", "/files/{id}", get_file, "GET"),
        route("/files/{file_id}", "/files/{id}", delete_file, "DELETE"),
        route("/files/{file_id}/content", "/files/{id}/content", file_content, "GET"),
        route("/batches", "/batches", create_batch, "POST", create=True),
        route("/batches", "/batches", list_batches, "GET"),
        route("/batches/{batch_id}", "/batches/{id}", get_batch, "GET"),
        route("/batches/{batch_id}/cancel", "/batches/{id}/cancel", cancel_batch, "POST"),
    ]


def dialect_mounts(world: World) -> list[Mount]:
    """Groq's OpenAI-shaped API, at the same path under its own prefix as on api.groq.com."""
    return [Mount("/groq/openai/v1", routes=routes(world, provider="groq"))]


def seed_batch(world: World, ws: Workspace, *, n_requests: int, model: str, created_at: float,
               plan: Plan | None = None, endpoint: str = "/v1/chat/completions",
               metadata: dict[str, str] | None = None, custom_id_prefix: str = "req",
               extra: dict[str, Any] | None = None) -> SimBatch:
    """A batch as if uploaded and created at `created_at` (the demo scenario and tests).

    `extra` goes to SimBatch.extra, e.g. {openai_results.STATUS_ZERO: 2} for the quirk lines;
    a token_limit_exceeded failure is `plan=Plan(validation_errors=(token_limit_error(model),))`.
    """
    rng = random.Random(f"openai-input:{world.seed}:{ws.name}:{created_at}:{custom_id_prefix}")
    data = sample_file(n_requests, model, endpoint, custom_id_prefix, rng)
    uploaded = created_at - rng.uniform(2, 20)
    f = SimFile(id=world.new_id("openai_file"), workspace=ws.name, purpose="batch", created_at=uploaded,
                filename=f"{custom_id_prefix}-{int(created_at)}.jsonl", content=data, expires_at=uploaded + FILE_TTL)
    ws.files[f.id] = f
    checked = check_input(data, endpoint)
    batch = world.create_batch(ws, batch_id=world.new_id("openai_batch"), model=model, lines=checked.lines,
                               plan=plan, created_at=created_at, endpoint=endpoint, input_file_id=f.id,
                               metadata=metadata)
    batch.extra.update(extra or {})
    return batch
