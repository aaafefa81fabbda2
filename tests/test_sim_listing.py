"""The simulator's list pages keep each ended batch's wire object instead of rebuilding it on
every call (`SimBatch.settled`). What a client receives must not change: every page equals,
byte for byte, the page of a twin simulator (same seed, same clock) that builds everything
afresh, while batches end, after the Anthropic archive date, and on another host."""

from __future__ import annotations

import httpx
import pytest

from batchtui.sim import Simulator
from batchtui.sim import gemini_render as render
from batchtui.sim.bulk import seed_many

START = 1_790_000_000
HOUR = 3_600
KEY = "k-listing"
HEADERS = {
    "openai": {"Authorization": f"Bearer {KEY}"},
    "anthropic": {"x-api-key": KEY, "anthropic-version": "2023-06-01"},
    "gemini": {"x-goog-api-key": KEY},
}


def _twin(provider: str) -> Simulator:
    sim = Simulator(seed=3, scenario=None, start=START, manual_clock=True)
    # 40 batches: the newest 6 still running (for 12 hours), the rest ended days ago.
    seed_many(sim.world, sim.world.add_workspace(provider, "w", KEY), batches=40, active=6)
    return sim


async def _pages(sim: Simulator, provider: str, host: str = "http://sim") -> list[bytes]:
    """Every list page of the workspace, following the cursors, as the bytes sent."""
    path, limit, cursor_param = {"openai": ("/openai/v1/batches", "limit", "after"),
                                 "anthropic": ("/anthropic/v1/messages/batches", "limit", "after_id"),
                                 "gemini": ("/gemini/v1beta/batches", "pageSize", "pageToken")}[provider]
    pages, params = [], {limit: "15"}
    async with httpx.AsyncClient(transport=sim.transport(), base_url=host) as http:
        while True:
            response = await http.get(path, params=params, headers=HEADERS[provider])
            assert response.status_code == 200, response.text
            pages.append(response.content)
            body = response.json()
            if provider == "gemini":
                if "nextPageToken" not in body:
                    return pages
                params[cursor_param] = body["nextPageToken"]
            else:
                if not body["has_more"]:
                    return pages
                params[cursor_param] = body["last_id"]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_kept_pages_equal_fresh_ones_as_batches_end_and_age(provider):
    kept = _twin(provider)
    first = await _pages(kept, provider)
    assert len(first) == 3
    assert await _pages(kept, provider) == first  # the second listing comes from what was kept
    for later in (13 * HOUR, 30 * 24 * HOUR):  # the running batches end; then Anthropic archives
        kept.clock.advance(later)
        fresh = _twin(provider)
        fresh.clock.advance(later)
        now_kept = await _pages(kept, provider)
        assert now_kept == await _pages(fresh, provider)
        assert now_kept != first
    # A kept object names no host of its own: another host's listing shows its own URLs.
    other = await _pages(kept, provider, host="http://elsewhere:8123")
    assert other == await _pages(fresh, provider, host="http://elsewhere:8123")
    if provider == "anthropic":
        assert b"elsewhere:8123" in other[0] and b"http://sim" not in other[0]
        assert b'"archived_at":null' not in b"".join(other)


async def test_an_ended_batch_is_built_once_while_a_running_one_is_built_every_time(monkeypatch):
    sim = _twin("gemini")
    built: list[str] = []
    real = render.operation

    def counting(batch, now, **kw):
        built.append(batch.id)
        return real(batch, now, **kw)

    monkeypatch.setattr(render, "operation", counting)
    await _pages(sim, "gemini")
    await _pages(sim, "gemini")
    assert len(built) == 40 + 6  # every batch once, then only the six still running
