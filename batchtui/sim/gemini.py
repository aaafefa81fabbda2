"""The Gemini API batch mode, simulated (PROVIDERS.md §C, §F.5 item 3).

Served under both `/v1beta` (the documented version) and `/v1` (what google-genai 3.x calls).
Wire rendering lives in `gemini_render`; here are the routes, request checks and uploads.

Choices where the reference is silent or unverified, made explicit:
- downloading an uploaded (not generated) file answers 400 INVALID_ARGUMENT;
- cancelling or deleting: cancel of an ended batch is 400 FAILED_PRECONDITION, delete works in
  any state; a CANCELLED batch gets no results (like EXPIRED);
- a file-mode input line that is not `{"key", "request"}` JSON fails the create with 400;
- per-request error lines use HTTP numbering (`{"code": 400, "status": "INVALID_ARGUMENT"}`);
- `displayName` is required at create (400 without it), as the reference says;
- the upload session URL needs no key (google-genai sends none with the bytes), so the
  workspace's faults apply to the upload start but not to the bytes;
- list: default page size 50, at most 1000; the page token is an opaque cursor, so batches
  created between two pages never shift or repeat an entry;
- `GET /{ver}/operations/...` is not served (batch names already work at `/{ver}/batches/...`).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from batchtui.sim import gemini_render as render
from batchtui.sim.app import endpoint
from batchtui.sim.bulk import spooled_response
from batchtui.sim.envelopes import google_error
from batchtui.sim.world import Plan, SimBatch, SimFile, World, Workspace

VERSIONS = ("v1beta", "v1")
INLINE_MAX_BYTES = 20 * 1024 * 1024
FILE_MAX_BYTES = 2 * 1024**3
FILE_TTL = 48 * 3600  # uploaded files are kept 48 h
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 1000


def _precondition(message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": 400, "message": message, "status": "FAILED_PRECONDITION"}},
                        status_code=400)


def _session_error(status: int, message: str) -> JSONResponse:
    # An upload answer without x-goog-upload-status makes google-genai retry it (sleeping):
    # a refused chunk ends the session, so say so.
    response = google_error(status, message)
    response.headers["x-goog-upload-status"] = "final"
    return response


def _not_found() -> JSONResponse:
    return google_error(404, "Requested entity was not found.")


def _size(text: str | None) -> int | None:
    # ASCII digits only ("²".isdigit() is true, and int() refuses it).
    return int(text) if text is not None and re.fullmatch(r"[0-9]{1,19}", text) else None


def _field(obj: dict[str, Any], camel: str, snake: str) -> Any:
    # Proto JSON parsing takes both spellings; the REST docs send snake_case.
    return obj[camel] if camel in obj else obj.get(snake)


def host_of(request: Request) -> str:
    """Scheme, host and mount prefix the client used (`http://127.0.0.1:PORT/gemini`)."""
    return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"


@dataclass
class _Upload:
    workspace: str
    display_name: str
    declared: int | None
    data: bytearray = field(default_factory=bytearray)
    file_id: str | None = None


def _parse_input_file(data: bytes) -> list[tuple[str, dict[str, Any]]] | str:
    """(key, line) per request of an uploaded JSONL file, or what is wrong with it."""
    lines = []
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return f"Invalid JSON in the input file at line {number}."
        if not isinstance(obj, dict) or not isinstance(obj.get("key"), str) or not isinstance(obj.get("request"), dict):
            return f"Line {number} of the input file must be an object with a string \"key\" and a \"request\"."
        lines.append((obj["key"], obj))
    return lines if lines else "The input file holds no requests."


def _inline_lines(requests: Any) -> list[tuple[str, dict[str, Any]]] | str:
    if not isinstance(requests, list) or not requests:
        return "batch.input_config.requests.requests must hold at least one request."
    lines = []
    for index, item in enumerate(requests):
        if not isinstance(item, dict) or not isinstance(item.get("request"), dict):
            return f"batch.input_config.requests.requests[{index}].request is required."
        metadata = item.get("metadata")
        key = metadata.get("key") if isinstance(metadata, dict) else None
        lines.append((key if isinstance(key, str) else str(index), item))
    return lines


def check_version(handler):
    async def versioned(request: Request, ws: Workspace) -> Response:
        if request.path_params["ver"] not in VERSIONS:
            return _not_found()
        return await handler(request, ws)
    return versioned


def routes(world: World, **kw: Any) -> list[Route]:
    uploads: dict[str, _Upload] = {}
    upload_ids = itertools.count(1)

    def live_file(ws: Workspace, file_id: str) -> SimFile | None:
        f = ws.files.get(file_id)
        if f is not None and (f.deleted or (f.expires_at is not None and world.now() >= f.expires_at)):
            return None
        if f is None and file_id.startswith("files/batch-"):
            f = _generated_file(world, ws, file_id)
        return f

    async def create_batch(request: Request, ws: Workspace) -> Response:
        model, _, action = request.path_params["model_action"].rpartition(":")
        if action != "batchGenerateContent" or not model:
            return _not_found()
        if (_size(request.headers.get("content-length")) or 0) > INLINE_MAX_BYTES:
            return google_error(400, f"Request payload size exceeds the limit: {INLINE_MAX_BYTES} bytes.")
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return google_error(400, "Invalid JSON payload received.")
        batch = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(batch, dict):
            return google_error(400, "batch is required.")
        display_name = _field(batch, "displayName", "display_name")
        if not isinstance(display_name, str) or not display_name:
            return google_error(400, "batch.display_name is required.")
        config = _field(batch, "inputConfig", "input_config")
        config = config if isinstance(config, dict) else {}
        file_name = _field(config, "fileName", "file_name")
        inline = config.get("requests")
        if (file_name is None) == (inline is None):
            return google_error(400, "batch.input_config needs exactly one of file_name and requests.")
        if file_name is not None:
            f = live_file(ws, file_name) if isinstance(file_name, str) else None
            if f is None or f.downloadable:  # generated files are outputs, not inputs
                return google_error(404, f"File {file_name} not found.")
            lines = _parse_input_file(f.data())
        else:
            lines = _inline_lines(inline.get("requests") if isinstance(inline, dict) else None)
        if isinstance(lines, str):
            return google_error(400, lines)
        made = world.create_batch(ws, batch_id=world.new_id("gemini_batch"), model=model.removeprefix("models/"),
                                  lines=lines, display_name=display_name, inline=file_name is None,
                                  input_file_id=file_name)
        return JSONResponse(render.operation(made, world.now()))

    async def list_batches(request: Request, ws: Workspace) -> Response:
        try:
            size = int(request.query_params.get("pageSize") or DEFAULT_PAGE_SIZE)
        except ValueError:
            return google_error(400, "Invalid value for pageSize.")
        size = min(max(size, 1), MAX_PAGE_SIZE)
        batches = world.visible(ws)  # newest first
        token = request.query_params.get("pageToken")
        if token:
            cursor = _decode_token(token)
            if cursor is None:
                return google_error(400, "Invalid page token.")
            batches = [b for b in batches if (b.created_at, b.id) < cursor]
        page, rest = batches[:size], batches[size:]
        now = world.now()
        body: dict[str, Any] = {"operations": [b.settled("gemini listed", now, lambda b=b: render.operation(
            b, now, listed=True)) for b in page]}
        if rest:  # left out on the last page: a missing token is the end
            body["nextPageToken"] = _encode_token(page[-1])
        return JSONResponse(body)

    async def get_batch(request: Request, ws: Workspace) -> Response:
        batch = world.find(ws, "batches/" + request.path_params["name"])
        if batch is None:
            return _not_found()
        return JSONResponse(render.operation(batch, world.now()))

    async def cancel_batch(request: Request, ws: Workspace) -> Response:
        name, _, verb = request.path_params["name"].rpartition(":")
        batch = world.find(ws, "batches/" + name) if verb == "cancel" else None
        if batch is None:
            return _not_found()
        now = world.now()
        if batch.snapshot(now).phase.terminal:
            return _precondition("The batch has already finished and can no longer be cancelled.")
        if batch.cancel_requested_at is None or batch.cancel_requested_at > now:
            batch.cancel_requested_at = now
        return JSONResponse({})

    async def delete_batch(request: Request, ws: Workspace) -> Response:
        batch = world.find(ws, "batches/" + request.path_params["name"])
        if batch is None:
            return _not_found()
        batch.deleted = True
        return JSONResponse({})

    async def upload_start(request: Request, ws: Workspace) -> Response:
        if request.headers.get("x-goog-upload-protocol") != "resumable" or \
                request.headers.get("x-goog-upload-command") != "start":
            return google_error(400, "Only resumable uploads are simulated (X-Goog-Upload-Protocol: resumable).")
        declared_size = _size(request.headers.get("x-goog-upload-header-content-length"))
        if declared_size is not None and declared_size > FILE_MAX_BYTES:
            return google_error(400, "The file is larger than the 2 GB limit.")
        try:
            meta = json.loads(await request.body() or b"{}")
        except (ValueError, UnicodeDecodeError):
            return google_error(400, "Invalid JSON payload received.")
        file_meta = meta.get("file") if isinstance(meta, dict) and isinstance(meta.get("file"), dict) else {}
        name = _field(file_meta, "displayName", "display_name")
        session_id = f"sim-upload-{next(upload_ids)}"
        uploads[session_id] = _Upload(ws.name, name if isinstance(name, str) else "", declared_size)
        ver = request.path_params["ver"]
        url = f"{host_of(request)}/upload/{ver}/files?upload_id={session_id}&upload_protocol=resumable"
        return Response(status_code=200, headers={"x-goog-upload-url": url, "x-goog-upload-status": "active",
                                                  "x-goog-upload-chunk-granularity": str(8 * 1024 * 1024)})

    start = endpoint(world, "gemini", "files.upload", check_version(upload_start))

    async def upload(request: Request) -> Response:
        session_id = request.query_params.get("upload_id")
        if session_id is None:
            return await start(request)
        # The session URL is its own credential: google-genai sends no key with the bytes.
        session = uploads.get(session_id)
        if session is None:
            return _session_error(404, "The upload session was not found.")
        ws = world.by_name[("gemini", session.workspace)]
        ws.requests[("POST", "files.upload_bytes")] += 1
        return await upload_bytes(request, ws, session)

    async def upload_bytes(request: Request, ws: Workspace, session: _Upload) -> Response:
        commands = {c.strip() for c in request.headers.get("x-goog-upload-command", "").split(",")}
        if session.file_id is None:
            offset = request.headers.get("x-goog-upload-offset", "0")
            if "upload" in commands:
                if _size(offset) != len(session.data):
                    return _session_error(400, f"Upload offset {offset} does not match {len(session.data)} "
                                                "bytes received.")
                session.data += await request.body()
                if len(session.data) > FILE_MAX_BYTES:
                    return _session_error(400, "The file is larger than the 2 GB limit.")
            if "finalize" not in commands:
                return Response(headers={"x-goog-upload-status": "active",
                                         "x-goog-upload-size-received": str(len(session.data))})
            now = world.now()
            f = SimFile(id=world.new_id("gemini_file"), workspace=ws.name, filename=session.display_name,
                        purpose="batch", created_at=now, content=bytes(session.data), downloadable=False,
                        expires_at=now + FILE_TTL)
            ws.files[f.id] = f
            session.file_id = f.id
        # A finalize resent after a lost answer gets the same file again, not a second one.
        f = ws.files[session.file_id]
        return JSONResponse({"file": render.file_resource(f, host_of(request), source="UPLOADED")},
                            headers={"x-goog-upload-status": "final"})

    async def get_file(request: Request, ws: Workspace) -> Response:
        name = request.path_params["name"]
        if name.endswith(":download"):  # google-genai downloads here, without the /download prefix
            return await download(request, ws)
        f = live_file(ws, "files/" + name)
        if f is None:
            return _not_found()
        source = "GENERATED" if f.downloadable else "UPLOADED"
        return JSONResponse(render.file_resource(f, host_of(request), source=source))

    async def download(request: Request, ws: Workspace) -> Response:
        name, _, verb = request.path_params["name"].rpartition(":")
        if verb != "download":
            return _not_found()
        if request.query_params.get("alt") != "media":
            return google_error(400, "Downloads need alt=media.")
        f = live_file(ws, "files/" + name)
        if f is None:
            return _not_found()
        if not f.downloadable:
            return google_error(400, "Only generated files can be downloaded; uploaded files can't be.")
        if f.path is not None:
            return spooled_response(f.path, "application/octet-stream")
        return Response(f.data(), media_type="application/octet-stream")

    def route(path: str, name: str, handler, method: str, *, create: bool = False) -> Route:
        return Route(path, endpoint(world, "gemini", name, check_version(handler), create=create), methods=[method])

    return [
        route("/{ver}/models/{model_action:path}", "batches.create", create_batch, "POST", create=True),
        route("/{ver}/batches", "batches.list", list_batches, "GET"),
        route("/{ver}/batches/{name:path}", "batches.get", get_batch, "GET"),
        route("/{ver}/batches/{name:path}", "batches.cancel", cancel_batch, "POST"),
        route("/{ver}/batches/{name:path}", "batches.delete", delete_batch, "DELETE"),
        Route("/upload/{ver}/files", upload, methods=["POST"]),
        route("/download/{ver}/files/{name:path}", "files.download", download, "GET"),
        route("/{ver}/files/{name:path}", "files.get", get_file, "GET"),
    ]


def _encode_token(batch: SimBatch) -> str:
    raw = json.dumps([batch.created_at, batch.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[float, str] | None:
    try:
        created, batch_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return float(created), str(batch_id)
    except (ValueError, TypeError, binascii.Error):
        return None


def _generated_file(world: World, ws: Workspace, file_id: str) -> SimFile | None:
    """The responses file of a finished file-mode batch, registered on first use."""
    batch = world.find(ws, "batches/" + file_id.removeprefix("files/batch-"))
    if batch is None or batch.inline:
        return None
    snap = batch.snapshot(world.now())
    if not render.has_output(batch, snap.phase):
        return None
    f = SimFile(id=file_id, workspace=ws.name, filename=file_id, purpose="batch_output",
                created_at=snap.ended_at or world.now(), render=lambda: render.results_file(batch))
    ws.files[file_id] = f
    return f


def seed_batch(world: World, ws: Workspace, *, n_requests: int, model: str, created_at: float,
               plan: Plan | None = None, inline: bool = True, custom_id_prefix: str = "req",
               display_name: str | None = None) -> SimBatch:
    """A batch as if created at `created_at` (the demo scenario and tests)."""
    lines = []
    for i in range(n_requests):
        key = f"{custom_id_prefix}-{i:05d}"
        request = {"contents": [{"role": "user", "parts": [{"text": f"Classify support ticket {i}: "
                                                                     + "the app crashes. " * (i % 7 + 1)}]}]}
        # As the API received it: inline items carry metadata, file lines a key.
        line = {"request": request, "metadata": {"key": key}} if inline else {"key": key, "request": request}
        lines.append((key, line))
    batch_id = world.new_id("gemini_batch")
    input_file_id = None
    if not inline:
        content = b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n" for _, line in lines)
        f = SimFile(id=world.new_id("gemini_file"), workspace=ws.name, filename=f"{custom_id_prefix}.jsonl",
                    purpose="batch", created_at=created_at, content=content, downloadable=False,
                    expires_at=created_at + FILE_TTL)
        ws.files[f.id] = f
        input_file_id = f.id
    return world.create_batch(ws, batch_id=batch_id, model=model.removeprefix("models/"), lines=lines, plan=plan,
                              created_at=created_at, display_name=display_name or f"{custom_id_prefix}-batch",
                              inline=inline, input_file_id=input_file_id)
