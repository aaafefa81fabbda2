"""Provider text is data. Before it reaches a terminal, control characters (ANSI/OSC escape
sequences start with one), bidi overrides and other invisible formatting characters become
visible escapes, so an id or error message can neither recolour the screen nor reorder it."""

from __future__ import annotations

import re
import unicodedata

# C0 and C1 controls (tab, newline and ESC included) and DEL.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Bidi embeddings, overrides and isolates; zero-width and other format characters.
# Lone surrogates (JSON can carry them, a terminal cannot print them) are escaped too.
_FORMAT = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff\u061c\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, limit: int | None = None) -> str:
    """`text` as one safe line: every control or format character shown as an escape."""
    value = "" if text is None else str(text)
    if limit is not None and len(value) > limit:
        value = value[:limit] + "…"
    value = _CONTROLS.sub(_escape, value)
    value = _FORMAT.sub(_escape, value)
    if any(unicodedata.category(c) == "Cf" for c in value):
        value = "".join(_escape_cf(c) for c in value)
    return value


def _escape_cf(char: str) -> str:
    return f"\\u{ord(char):04x}" if unicodedata.category(char) == "Cf" else char
