"""Faults the simulator injects, switchable per workspace (account): rate limits with
retry-after, 5xx and 529 answers, connections dropped mid-response, slow answers, a refused
key, and a create whose answer is lost after the batch was made."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

ERROR_KINDS = ("429", "500", "503", "529")
ALL_KINDS = (*ERROR_KINDS, "drop", "slow")


class SimulatedDisconnect(ConnectionResetError):
    """Raised inside the ASGI app to cut a response short, as a dropped connection would."""


@dataclass
class FaultConfig:
    rate: float = 0.0  # share of answers that get a fault
    kinds: tuple[str, ...] = ALL_KINDS
    retry_after: float = 1.0  # seconds, in 429/503 answers
    slow_seconds: float = 0.05  # real seconds a "slow" answer waits
    reject_key: bool = False  # every key refused: 401 (Gemini: 400 API_KEY_INVALID)
    lose_create_answers: int = 0  # the next N creates succeed, but their answers are dropped
    injected: dict[str, int] = field(default_factory=dict)  # kind -> how many were injected

    def pick(self, rng: random.Random, provider: str) -> str | None:
        if self.rate <= 0 or rng.random() >= self.rate:
            return None
        kind = rng.choice(self.kinds)
        if kind == "529" and provider != "anthropic":
            kind = "503"  # only Anthropic has 529 "overloaded"
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return kind

    @classmethod
    def from_dict(cls, data: dict) -> FaultConfig:
        kinds = tuple(data.get("kinds") or ALL_KINDS)
        unknown = set(kinds) - set(ALL_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        return cls(
            rate=float(data.get("rate", 0.0)),
            kinds=kinds,
            retry_after=float(data.get("retry_after", 1.0)),
            slow_seconds=float(data.get("slow_seconds", 0.05)),
            reject_key=bool(data.get("reject_key", False)),
            lose_create_answers=int(data.get("lose_create_answers", 0)),
        )


class DroppedResponse(Response):
    """Sends the headers and a part of the body of `inner`, then drops the connection."""

    def __init__(self, inner: Response, cut: float) -> None:
        self.inner = inner
        self.cut = cut
        self.status_code = inner.status_code
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = getattr(self.inner, "body", None)
        if body is None:  # a streamed body: gather it (simulated files are modest)
            parts = [chunk if isinstance(chunk, bytes) else chunk.encode()
                     async for chunk in self.inner.body_iterator]  # type: ignore[attr-defined]
            body = b"".join(parts)
        headers = [(k, v) for k, v in self.inner.raw_headers if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": self.inner.status_code, "headers": headers})
        keep = int(len(body) * self.cut)
        if keep:
            await send({"type": "http.response.body", "body": body[:keep], "more_body": True})
        raise SimulatedDisconnect("simulated connection drop")


async def slow_down(config: FaultConfig) -> None:
    # A real delay on purpose: the client must cope with a slow answer, not a fake one.
    await asyncio.sleep(config.slow_seconds)
