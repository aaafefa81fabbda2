"""Provider text as the detail screen shows it: printable, and cut past a limit with a marker
that says how long the whole was.

A provider can send a 100 kB name or error message. Shown whole, Textual wraps and measures
every line of it on each layout pass: opening the detail screen of a batch with a 100 kB name
and model took 1.6-2.3 s, its raw JSON tab another 1.3-1.6 s. Nobody reads past the first few
thousand characters in a pane. The whole value stays in the ledger, and `batchtui show --json`
prints the name, metadata and error samples whole.

The cut is made on the provider's own characters, before they are made printable, so the
shown part is exactly the value's beginning and the marker gives the value's real length.
"""

from __future__ import annotations

import json

from rich.text import Text

from batchtui.core.text import printable

# Characters of one value shown in a human-readable pane: far past any name, id or error
# message a person writes, and cheap to wrap (~60 lines in a half-width column).
FIELD_LIMIT = 4_000
# Characters of the raw JSON tab (each of its lines cut at FIELD_LIMIT too): laying out
# 20,000 characters in a Static takes ~65 ms, 100,000 ~350 ms.
RAW_LIMIT = 20_000
MARKER_STYLE = "dim italic"


def clipped(value: object, limit: int = FIELD_LIMIT, *, style: str = "") -> Text:
    """`value` as printable text; past `limit` characters, cut, followed by a marker."""
    whole = "" if value is None else str(value)
    if len(whole) <= limit:
        return Text(printable(whole), style=style)
    text = Text(printable(whole[:limit]), style=style)
    text.append(f"… (cut: {len(whole):,} characters)", style=MARKER_STYLE)
    return text


def clipped_json(obj: object) -> Text:
    """`obj` as indented JSON with sorted keys, each line printable and cut at FIELD_LIMIT,
    and the whole cut after RAW_LIMIT characters.

    The encoder is read chunk by chunk and left once the limit is reached: with an indent,
    json encodes in Python, and a Gemini operation holding its inline responses can run to
    megabytes (~50 ms a megabyte on the UI thread) of which only the beginning is shown.
    JSON escapes control characters but leaves bidi and other format characters raw, so each
    line still goes through `printable`. Lines are split at "\\n" only: JSON leaves U+0085
    and U+2028 raw inside strings, and `str.splitlines` would break the line there.
    """
    encoder = json.JSONEncoder(indent=2, ensure_ascii=False, sort_keys=True, default=str)
    lines: list[Text] = []
    shown = 0
    pending = ""
    for chunk in encoder.iterencode(obj):
        pending += chunk
        if "\n" not in chunk:
            continue
        *complete, pending = pending.split("\n")
        for line in complete:
            if shown >= RAW_LIMIT:
                lines.append(Text(f"… (cut: the first {shown:,} characters of the object are shown)",
                                  style=MARKER_STYLE))
                return Text("\n").join(lines)
            lines.append(clipped(line))
            shown += min(len(line), FIELD_LIMIT) + 1
    lines.append(clipped(pending))
    return Text("\n").join(lines)
