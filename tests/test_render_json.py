"""`render.dump` writes exactly what `json.dumps(..., ensure_ascii=False, indent=2)` wrote
before it was made fast: scripts and snapshots may compare the text, not only the JSON."""

from __future__ import annotations

import io
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from batchtui.cli import render

# Text with surrogates too (lone and in pairs): provider strings can carry them.
PIECES = st.text(st.characters(codec=None, exclude_categories=()), max_size=4) | st.sampled_from(
    ["\ud800\udfff", "\udbff\udc00", "\ud800", "\udfff", "\u2028", "\x1b[31m", "\u202e"])
TEXT = st.lists(PIECES, max_size=4).map("".join)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.floats() | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_dump_writes_what_json_dumps_with_an_indent_wrote(value):
    out = io.StringIO()
    render.dump(value, out)
    assert out.getvalue() == render.inert_json(json.dumps(value, ensure_ascii=False, indent=2)) + "\n"


def test_the_fallbacks_keep_the_same_text():
    for value in ({"cost": float("nan"), "x": [float("inf")]}, {"id": "a\ud800b"}, {"pair": "\ud800\udfff"},
                  {"n": 1e-05, "m": 1e20}):
        assert render.indented_json(value) == json.dumps(value, ensure_ascii=False, indent=2)


def _batches():
    from datetime import UTC, datetime

    from batchtui.core.models import Batch, Cost, Provider, RequestCounts, Status

    made = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        Batch(account="a", provider=Provider.OPENAI, id="batch_1", status=Status.COMPLETED, provider_status="completed",
              created_at=made, counts=RequestCounts(total=3, succeeded=2, failed=1),
              cost=Cost(usd=1e-05, standard_usd=2e-05), metadata={"k": "\u202ev\x1b[31m"}),
        Batch(account="b", provider=Provider.GEMINI, id="batches/x\ud800", status=Status.IN_PROGRESS,
              provider_status="BATCH_STATE_RUNNING", created_at=made, name="n\u2028"),
        Batch(account="c", provider=Provider.ANTHROPIC, id="msgbatch_1", status=Status.EXPIRED,
              provider_status="ended", created_at=made, cost=Cost(usd=float("nan"))),
    ]


def test_an_ls_listing_encoded_as_it_arrives_is_the_same_text_as_dumped_at_the_end():
    batches = _batches()
    accounts = [{"name": "a", "provider": "openai", "ok": True, "error": None}]
    for chosen in (batches[:1], batches[:2], batches, [batches[0], batches[2]], []):
        listing = render.Listing()
        listing.add("a", batches[:2])  # the third is never seen early: it is encoded at the end
        out, expected = io.StringIO(), io.StringIO()
        listing.dump(chosen, accounts, out)
        render.dump({"batches": [render.batch_json(b) for b in chosen], "accounts": accounts}, expected)
        assert out.getvalue() == expected.getvalue()
