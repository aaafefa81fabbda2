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
