"""The simulator in-process: an httpx transport that calls the ASGI app directly.

A connection the app drops mid-response reaches the client as the same httpx error a real
dropped socket gives, so client code cannot tell the two apart.
"""

from __future__ import annotations

import httpx

from batchtui.sim.faults import SimulatedDisconnect


class SimTransport(httpx.ASGITransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except SimulatedDisconnect:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body",
                                            request=request) from None
