"""A provider that answers whatever a test tells it to, and remembers who sent what.

The simulator answers as the real APIs do; this one answers as a broken or hostile server
might (an HTML 502 page, a 200 that is not JSON, a redirect to another host, a 10 MB error,
ids full of escape sequences). It is an ASGI app, so it runs in-process through
`httpx.ASGITransport` or on a loopback socket for the CLI, and it records, for every request,
the host it was addressed to and which credentials came with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

AUTH_HEADERS = ("authorization", "x-api-key", "x-goog-api-key")

Answer = Callable[[Request], Response]


@dataclass(frozen=True)
class Seen:
    host: str
    method: str
    path: str
    credentials: tuple[str, ...]  # every auth header value and `key` query parameter sent


class FakeProvider:
    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], Answer] = {}
        self.fallback: Answer = lambda request: JSONResponse({"error": {"message": "not here"}}, status_code=404)
        self.seen: list[Seen] = []

    @property
    def app(self) -> FakeProvider:  # what support.loopback.serve_on_loopback serves
        return self

    def on(self, method: str, path: str, answer: Answer) -> None:
        self.answers[(method, path)] = answer

    def hosts_given_credentials(self) -> set[str]:
        return {seen.host for seen in self.seen if seen.credentials}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        await request.body()
        credentials = tuple(request.headers[h] for h in AUTH_HEADERS if h in request.headers)
        if "key" in request.query_params:
            credentials += (request.query_params["key"],)
        host = request.headers.get("host", "").split(":")[0]
        self.seen.append(Seen(host, request.method, request.url.path, credentials))
        answer = self.answers.get((request.method, request.url.path), self.fallback)
        await answer(request)(scope, receive, send)


def openai_batch(batch_id: str, **fields) -> dict:
    """A minimal OpenAI batch object; `fields` override or add to it."""
    return {"id": batch_id, "object": "batch", "endpoint": "/v1/chat/completions", "status": "completed",
            "created_at": 1_767_225_600, "completed_at": 1_767_229_200, "input_file_id": "file-in",
            "output_file_id": "file-out", "error_file_id": None, "completion_window": "24h",
            "request_counts": {"total": 3, "completed": 3, "failed": 0}, "metadata": {}, **fields}
