"""The simulator as one ASGI app: every provider under its own prefix, plus `/_sim` controls.

    /openai/v1/...        OpenAI (and the OpenAI-compatible dialects under /groq/openai/v1 ...)
    /anthropic/v1/...     Anthropic
    /gemini/v1beta/...    Gemini API (also /v1, which google-genai calls by default)
    /_sim/...             clock, faults and state, for tests and `batchtui sim` users
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from batchtui.sim import envelopes
from batchtui.sim.faults import ERROR_KINDS, DroppedResponse, FaultConfig, slow_down
from batchtui.sim.world import World, Workspace

Handler = Callable[[Request, Workspace], Awaitable[Response]]

# (provider, prefix) of every API the simulator serves; `batchtui sim` prints these.
MOUNTS = (
    ("openai", "/openai/v1"),
    ("anthropic", "/anthropic"),
    ("gemini", "/gemini"),
)


def endpoint(world: World, provider: str, route: str, handler: Handler, *, create: bool = False):
    """Wrap a provider handler with auth, the workspace's faults and request counting."""

    async def serve(request: Request) -> Response:
        key = envelopes.key_of(provider, request)
        if not key:
            return envelopes.missing_key(provider)
        ws = world.resolve(provider, key)
        ws.requests[(request.method, route)] += 1
        if ws.faults.reject_key:
            return envelopes.bad_key(provider)
        fault = ws.faults.pick(ws.fault_rng, provider)
        if fault in ERROR_KINDS:
            status = int(fault)
            retry_after = ws.faults.retry_after if status in (429, 503, 529) else None
            message = "Rate limit reached; try again later." if status == 429 else "The server is overloaded."
            return envelopes.error_for(provider, status, message, retry_after=retry_after)
        if fault == "slow":
            await slow_down(ws.faults)
        response = await handler(request, ws)
        if create and ws.faults.lose_create_answers > 0 and response.status_code < 300:
            # The batch was made; only the answer is lost (the duplicate-batch trap).
            ws.faults.lose_create_answers -= 1
            ws.faults.injected["lost_create"] = ws.faults.injected.get("lost_create", 0) + 1
            return DroppedResponse(response, cut=0.0)
        if fault == "drop":
            return DroppedResponse(response, cut=ws.fault_rng.uniform(0.0, 0.95))
        return response

    serve.__name__ = f"{provider}_{route}".replace("/", "_")
    return serve


def control_routes(world: World) -> list[Route]:
    async def advance(request: Request) -> Response:
        body = await request.json()
        return JSONResponse({"now": world.clock.advance(float(body.get("seconds", 0)))})

    async def clock(request: Request) -> Response:
        return JSONResponse({"now": world.now(), "speed": world.clock.speed})

    async def faults(request: Request) -> Response:
        body = await request.json()
        provider = body.get("provider")
        targets = [ws for (p, _), ws in world.by_name.items()
                   if (provider is None or p == provider)
                   and (body.get("workspace") is None or ws.name == body["workspace"])]
        if body.get("key") is not None and provider is not None:
            targets = [world.resolve(provider, body["key"])]
        try:
            config = FaultConfig.from_dict(body.get("faults") or {})
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        for ws in targets:
            ws.faults = config
        return JSONResponse({"workspaces": [f"{ws.provider}/{ws.name}" for ws in targets]})

    async def state(request: Request) -> Response:
        now = world.now()
        out = []
        for (provider, name), ws in sorted(world.by_name.items()):
            out.append({
                "provider": provider,
                "workspace": name,
                "faults_injected": dict(ws.faults.injected),
                "requests": {f"{m} {r}": n for (m, r), n in sorted(ws.requests.items())},
                "batches": [{"id": b.id, "phase": b.snapshot(now).phase.value, "requests": len(b.requests)}
                            for b in world.visible(ws)],
            })
        return JSONResponse({"now": now, "workspaces": out})

    def workspace_of(body: dict) -> Workspace:
        provider = body.get("provider")
        if provider not in ("openai", "anthropic", "gemini"):
            raise ValueError("provider must be openai, anthropic or gemini")
        if body.get("key") is not None:
            return world.resolve(provider, str(body["key"]))
        return world.workspace(provider, str(body.get("workspace")))

    async def bulk(request: Request) -> Response:
        """One ended batch with a huge results file (benchmarks): rendered to disk in a thread."""
        from batchtui.sim.bulk import DEFAULT_REPLY_BYTES, seed_huge

        body = await request.json()
        try:
            ws = workspace_of(body)
            reply = tuple(int(n) for n in body.get("reply_bytes") or DEFAULT_REPLY_BYTES)
            batch = await anyio.to_thread.run_sync(lambda: seed_huge(
                world, ws, requests=int(body["requests"]), model=body.get("model"), reply_bytes=reply,
                error_rate=float(body.get("error_rate", 0.01))))
        except (KeyError, ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"batch_id": batch.id, "requests": len(batch.requests)})

    async def populate(request: Request) -> Response:
        """Many small batches in one workspace (benchmarks): the newest `active` still running."""
        from batchtui.sim.bulk import seed_many

        body = await request.json()
        try:
            ws = workspace_of(body)
            made = seed_many(world, ws, batches=int(body["batches"]), active=int(body.get("active", 0)),
                             requests=int(body.get("requests", 3)), model=body.get("model"))
        except (KeyError, ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"workspace": ws.name, "batches": len(made)})

    return [
        Route("/bulk", bulk, methods=["POST"]),
        Route("/populate", populate, methods=["POST"]),
        Route("/advance", advance, methods=["POST"]),
        Route("/clock", clock, methods=["GET"]),
        Route("/faults", faults, methods=["POST"]),
        Route("/state", state, methods=["GET"]),
    ]


def build_app(world: World) -> Starlette:
    # Imported here so each provider module can import `endpoint` from this one.
    from batchtui.sim import anthropic, gemini, openai

    routes = [
        Mount("/openai/v1", routes=openai.routes(world, provider="openai")),
        Mount("/anthropic", routes=anthropic.routes(world)),
        Mount("/gemini", routes=gemini.routes(world)),
        Mount("/_sim", routes=control_routes(world)),
    ]
    routes.extend(openai.dialect_mounts(world))
    app = Starlette(routes=routes)
    app.state.world = world
    return app
