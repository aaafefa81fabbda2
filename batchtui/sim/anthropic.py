"""Anthropic's Message Batches API in the simulator (PROVIDERS.md §B), mounted at `/anthropic`.

Routes: create, list, retrieve, cancel, delete and results under `/v1/messages/batches`.
The batch lifecycle comes from the world (`SimBatch.snapshot`); this module only renders it
the way Anthropic does: `in_progress` / `canceling` / `ended`, counts frozen at
`processing = N` until the end, `results_url` only once ended, results gone after 29 days.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from batchtui.core.timeparse import to_rfc3339
from batchtui.sim.anthropic_results import final_tally, results_bytes
from batchtui.sim.app import endpoint
from batchtui.sim.bulk import SPOOLED_RESULTS, spooled_response
from batchtui.sim.envelopes import anthropic_error, request_id
from batchtui.sim.world import Phase, Plan, SimBatch, World, Workspace

BATCHES = "/v1/messages/batches"
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_REQUESTS = 100_000
MAX_BODY_BYTES = 256 * 1024 * 1024  # read at call time, so a test can lower it
RESULTS_KEPT = 29 * 86_400  # after creation, not after the end (§B.4)
# Messages parameters a batch refuses (§B.2); `stream` only when true.
NOT_IN_A_BATCH = ("speed", "store", "previous_thread_event_id", "cache_hint", "context_hint")


def routes(world: World) -> list[Route]:
    api = _Api(world)

    def ep(name: str, handler, **kw):
        return endpoint(world, "anthropic", name, api.versioned(handler), **kw)

    return [
        Route(BATCHES, ep("batches.create", api.create, create=True), methods=["POST"]),
        Route(BATCHES, ep("batches.list", api.list_batches), methods=["GET"]),
        Route(BATCHES + "/{batch_id}", ep("batches.retrieve", api.retrieve), methods=["GET"]),
        Route(BATCHES + "/{batch_id}", ep("batches.delete", api.delete), methods=["DELETE"]),
        Route(BATCHES + "/{batch_id}/cancel", ep("batches.cancel", api.cancel), methods=["POST"]),
        Route(BATCHES + "/{batch_id}/results", ep("batches.results", api.results), methods=["GET"]),
    ]


def seed_batch(world: World, ws: Workspace, *, n_requests: int, model: str, created_at: float,
               plan: Plan | None = None, custom_id_prefix: str = "req") -> SimBatch:
    """A batch as if someone had created it at `created_at` (the demo scenario's batches)."""
    lines = []
    for index in range(n_requests):
        custom_id = f"{custom_id_prefix}-{index:05d}"
        lines.append((custom_id, {"custom_id": custom_id, "params": _demo_params(model, index)}))
    return world.create_batch(ws, batch_id=world.new_id("anthropic_batch"), model=model, lines=lines,
                              plan=plan, created_at=created_at)


_TICKETS = (
    "My invoice shows the wrong VAT number.",
    "The app crashes when I upload a PNG larger than 5 MB.",
    "How do I export my data to CSV?",
    "I was charged twice for the March subscription.",
    "Le mot de passe ne se réinitialise pas, le lien a expiré.",
    "Can I change the delivery address after the order shipped?",
)


def _demo_params(model: str, index: int) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": 1024,
        "system": "Classify the support ticket. Reply with one label and a one-line summary.",
        "messages": [{"role": "user", "content": _TICKETS[index % len(_TICKETS)]}],
    }
    if index % 7 == 3 and ("sonnet" in model or "opus" in model):
        # Some requests think first, so results carry thinking tokens.
        params["max_tokens"] = 4096
        params["thinking"] = {"type": "enabled", "budget_tokens": 2048}
    return params


class _Api:
    def __init__(self, world: World) -> None:
        self.world = world

    def versioned(self, handler):
        """Every Anthropic call needs a date-shaped `anthropic-version` (any date: the 2.x SDK
        sends newer ones than 2023-06-01, PROVIDERS.md 0.2)."""

        async def checked(request: Request, ws: Workspace) -> Response:
            version = request.headers.get("anthropic-version")
            if not version:
                return anthropic_error(400, "anthropic-version: header is required")
            if not VERSION.match(version.strip()):
                return anthropic_error(400, f"anthropic-version: invalid version '{version}'")
            return await handler(request, ws)

        return checked

    # -- the batch object ----------------------------------------------------------------

    def batch_json(self, request: Request, batch: SimBatch) -> dict[str, Any]:
        now = self.world.now()
        snap = batch.snapshot(now)
        n = len(batch.requests)
        tally = final_tally(batch, now)
        if tally is None:
            # Frozen until the end: Anthropic reports no progress (§B.5).
            counts = {"processing": n, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
            status = "canceling" if snap.phase is Phase.CANCELLING else "in_progress"
        else:
            counts = {"processing": 0, **{k: tally.get(k, 0) for k in ("succeeded", "errored", "canceled", "expired")}}
            status = "ended"
        # A cancel only shows once it took effect (a scheduled one after the end never does).
        cancelled = snap.phase in (Phase.CANCELLING, Phase.CANCELLED)
        archived = batch.created_at + RESULTS_KEPT
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": counts,
            "ended_at": _ts(snap.ended_at),
            "created_at": _ts(batch.created_at),
            "expires_at": _ts(batch.deadline),
            "archived_at": _ts(archived) if now >= archived else None,
            "cancel_initiated_at": _ts(snap.cancel_at) if cancelled else None,
            "results_url": self.results_url(request, batch) if status == "ended" else None,
        }

    @staticmethod
    def results_url(request: Request, batch: SimBatch) -> str:
        # On whatever host and mount the caller used: the SDK fetches it as a full URL.
        path = f"{request.scope.get('root_path', '')}{BATCHES}/{batch.id}/results"
        return str(request.url.replace(path=path, query=""))

    def ok(self, body: dict[str, Any]) -> JSONResponse:
        return JSONResponse(body, headers={"request-id": request_id("req_011")})

    def lookup(self, request: Request, ws: Workspace) -> SimBatch | Response:
        batch_id = request.path_params["batch_id"]
        batch = self.world.find(ws, batch_id)
        if batch is None:
            return anthropic_error(404, f"message_batch_id: no batch '{batch_id}' in this workspace",
                                   error_type="not_found_error")
        return batch

    # -- routes ------------------------------------------------------------------------

    async def create(self, request: Request, ws: Workspace) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _too_large()
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _too_large()
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return anthropic_error(400, "The request body is not valid JSON.")
        if not isinstance(payload, dict) or not isinstance(payload.get("requests"), list):
            return anthropic_error(400, "requests: Field required")
        items = payload["requests"]
        problem = _check_requests(items)
        if problem:
            return anthropic_error(400, problem)
        lines = [(item["custom_id"], item) for item in items]
        batch = self.world.create_batch(ws, batch_id=self.world.new_id("anthropic_batch"),
                                        model=items[0]["params"]["model"], lines=lines)
        return self.ok(self.batch_json(request, batch))

    async def list_batches(self, request: Request, ws: Workspace) -> Response:
        query = request.query_params
        raw_limit = query.get("limit", "20")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
            return anthropic_error(400, "limit: Input should be between 1 and 1000")
        limit = int(raw_limit)
        visible = self.world.visible(ws)  # newest first
        after, before = query.get("after_id"), query.get("before_id")
        if after and before:
            return anthropic_error(400, "after_id and before_id cannot both be given")
        cursor = after or before
        if cursor:
            # A deleted batch still marks its place, so paging survives a delete in between.
            anchor = ws.batches.get(cursor)
            if anchor is None:
                return anthropic_error(400, f"{'after_id' if after else 'before_id'}: unknown batch '{cursor}'")
            key = (anchor.created_at, anchor.id)
            if after:
                rest = [b for b in visible if (b.created_at, b.id) < key]
                page, has_more = rest[:limit], len(rest) > limit
            else:
                rest = [b for b in visible if (b.created_at, b.id) > key]
                page, has_more = rest[-limit:], len(rest) > limit
        else:
            page, has_more = visible[:limit], len(visible) > limit
        now, host = self.world.now(), str(request.base_url)
        # An ended batch's object depends on the host (results_url) and on the archive date.
        data = [b.settled(("anthropic", host, now >= b.created_at + RESULTS_KEPT), now,
                          lambda b=b: self.batch_json(request, b)) for b in page]
        return self.ok({
            "data": data,
            "has_more": has_more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        })

    async def retrieve(self, request: Request, ws: Workspace) -> Response:
        batch = self.lookup(request, ws)
        if isinstance(batch, Response):
            return batch
        return self.ok(self.batch_json(request, batch))

    async def cancel(self, request: Request, ws: Workspace) -> Response:
        batch = self.lookup(request, ws)
        if isinstance(batch, Response):
            return batch
        now = self.world.now()
        phase = batch.snapshot(now).phase
        if phase.terminal:
            return anthropic_error(400, f"Batch '{batch.id}' has already ended and cannot be canceled.")
        if phase is not Phase.CANCELLING:
            batch.cancel_requested_at = now  # a second cancel while canceling changes nothing
        return self.ok(self.batch_json(request, batch))

    async def delete(self, request: Request, ws: Workspace) -> Response:
        batch = self.lookup(request, ws)
        if isinstance(batch, Response):
            return batch
        if not batch.snapshot(self.world.now()).phase.terminal:
            return anthropic_error(400, f"Batch '{batch.id}' is still processing; cancel it and wait for it "
                                        "to end before deleting it.")
        batch.deleted = True
        return self.ok({"id": batch.id, "type": "message_batch_deleted"})

    async def results(self, request: Request, ws: Workspace) -> Response:
        batch = self.lookup(request, ws)
        if isinstance(batch, Response):
            return batch
        now = self.world.now()
        if now >= batch.created_at + RESULTS_KEPT:
            return anthropic_error(404, f"The results of batch '{batch.id}' have been archived and are no "
                                        "longer available.", error_type="not_found_error")
        headers = {"request-id": request_id("req_011")}
        spooled = batch.extra.get(SPOOLED_RESULTS)
        if spooled is not None:
            return spooled_response(spooled, "application/binary", headers)
        data = results_bytes(batch, now)
        if data is None:
            return anthropic_error(400, f"Batch '{batch.id}' is still processing; results are available once "
                                        "its processing_status is 'ended'.")
        return Response(data, media_type="application/binary", headers=headers)


def _check_requests(items: list[Any]) -> str | None:
    """The create-time checks (§B.2), with the offending request named as the API does."""
    if not items:
        return "requests: List should have at least 1 item after validation, not 0"
    if len(items) > MAX_REQUESTS:
        return f"requests: List should have at most {MAX_REQUESTS} items after validation, not {len(items)}"
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"requests.{i}"
        if not isinstance(item, dict):
            return f"{where}: Input should be an object"
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str):
            return f"{where}.custom_id: Field required"
        if not CUSTOM_ID.match(custom_id):
            return f"{where}.custom_id: '{custom_id}' should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
        if custom_id in seen:
            return f"{where}.custom_id: duplicate custom_id '{custom_id}'; each custom_id must be unique in a batch"
        seen.add(custom_id)
        params = item.get("params")
        if not isinstance(params, dict):
            return f"{where}.params: Field required"
        if not isinstance(params.get("model"), str) or not params["model"]:
            return f"{where}.params.model: Field required"
        max_tokens = params.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            return f"{where}.params.max_tokens: Input should be greater than or equal to 1"
        if params.get("stream"):
            return f"{where}.params.stream: streaming is not supported in a message batch"
        for name in NOT_IN_A_BATCH:
            if params.get(name) is not None:
                return f"{where}.params.{name}: not supported in a message batch"
    return None


def _too_large() -> Response:
    return anthropic_error(413, "Request exceeds the maximum allowed size of 256 MB for a message batch.",
                           error_type="request_too_large")


def _ts(moment: float | None) -> str | None:
    return None if moment is None else to_rfc3339(datetime.fromtimestamp(moment, tz=UTC))
