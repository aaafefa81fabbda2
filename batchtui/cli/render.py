"""How the CLI shows things: the JSON shapes of CLI-CONTRACT.md, and plain tables for people.

Every string from a provider goes through `printable` before a terminal sees it.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

import msgspec

from batchtui.core.costing import money
from batchtui.core.models import Batch, Cost, ErrorBreakdown, RequestCounts
from batchtui.core.text import printable


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is not UTC:  # the providers' times are UTC already: no conversion
        moment = moment.astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")


def counts_json(counts: RequestCounts) -> dict[str, int | None]:
    return {k: getattr(counts, k) for k in ("total", "succeeded", "failed", "expired", "cancelled", "processing")}


def cost_json(cost: Cost | None) -> dict[str, Any]:
    if cost is None:
        return {"usd": None, "standard_usd": None, "estimated": False, "reason": "not priced"}
    return {"usd": cost.usd, "standard_usd": cost.standard_usd, "estimated": cost.estimated, "reason": cost.reason}


def batch_json(batch: Batch) -> dict[str, Any]:
    """The BATCH object of CLI-CONTRACT.md (plus a few extra keys; none removed)."""
    return {
        "account": batch.account,
        "provider": batch.provider.value,
        "id": batch.id,
        "status": batch.status.value,
        "provider_status": batch.provider_status,
        "created_at": iso(batch.created_at),
        "ended_at": iso(batch.ended_at),
        "expires_at": iso(batch.expires_at),
        "model": batch.model,
        "counts": counts_json(batch.counts),
        "cost": cost_json(batch.cost),
        "name": batch.name,
        "endpoint": batch.endpoint,
        "metadata": batch.metadata,
    }


def breakdown_json(breakdown: ErrorBreakdown) -> dict[str, Any]:
    return {
        "outcomes": {o.value: n for o, n in breakdown.outcomes.items()},
        "groups": [{"outcome": g.outcome.value, "type": g.error_type, "count": g.count,
                    "sample_message": g.sample_message} for g in breakdown.groups],
        "unparseable": breakdown.unparseable,
        "unparseable_lines": list(breakdown.unparseable_lines),
    }


def dump(obj: Any, out: TextIO = sys.stdout) -> None:
    out.write(inert_json(indented_json(obj)))
    out.write("\n")


# `json.dumps(obj, ensure_ascii=False, separators=(",", ":"))` without building an encoder per call.
_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def indented_json(obj: Any, compact: str | None = None) -> str:
    """Exactly `json.dumps(obj, ensure_ascii=False, indent=2)`, made fast.

    With an indent the json module encodes in Python (a quarter of a second for `ls` of
    12,000 batches); without one, in C. So encode compactly in C and let msgspec re-indent
    the text, which it does without re-encoding a single value (numbers keep Python's
    spelling). NaN, which is not JSON, and surrogates, which are not UTF-8, take the slow way.
    `compact`, when the caller has it already, is `obj` encoded compactly.
    """
    try:
        return msgspec.json.format((compact or _compact(obj)).encode(), indent=2).decode()
    except (msgspec.DecodeError, UnicodeEncodeError):
        return json.dumps(obj, ensure_ascii=False, indent=2)


class Listing:
    """`ls --json`'s document, its batches encoded while the listing still waits on the network.

    `add` (Engine.list_accounts' `listed`) encodes each chunk of batches as it arrives, so
    once the last page is in only the joining and the indenting are left (encoding 12,000
    batches at the end was a tenth of `ls`'s time). The output is exactly `dump` of the
    same document.
    """

    def __init__(self) -> None:
        self._encoded: dict[int, tuple[Batch, str]] = {}  # id(batch) -> (batch, compact JSON)

    def add(self, account: object, batches: Sequence[Batch]) -> None:
        for batch in batches:
            # The batch is kept beside its text so its id cannot be reused by another object.
            self._encoded[id(batch)] = (batch, _compact(batch_json(batch)))

    def _text(self, batch: Batch) -> str:
        known = self._encoded.get(id(batch))
        return known[1] if known is not None and known[0] is batch else _compact(batch_json(batch))

    def dump(self, batches: Sequence[Batch], accounts: list[dict[str, Any]], out: TextIO = sys.stdout) -> None:
        compact = '{"batches":[' + ",".join(map(self._text, batches)) + '],"accounts":' + _compact(accounts) + "}"

        try:
            text = msgspec.json.format(compact.encode(), indent=2).decode()
        except (msgspec.DecodeError, UnicodeEncodeError):
            # NaN or a surrogate: the slow way, as `indented_json` takes it.
            text = json.dumps({"batches": [batch_json(b) for b in batches], "accounts": accounts},
                              ensure_ascii=False, indent=2)
        out.write(inert_json(text))
        out.write("\n")


# json.dumps escapes C0 controls but leaves DEL, C1 controls (U+009B is a CSI), bidi and other
# format characters, and lone surrogates raw. As \u escapes they read back as the same string,
# and cannot act on a terminal (nor crash the write, as a lone surrogate does).
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")


def inert_json(text: str) -> str:
    """JSON text with every character that could act on a terminal written as an escape.

    Such characters only ever occur inside JSON strings, and never inside an escape sequence,
    so replacing each with its escape keeps the document's meaning.
    """
    if text.isascii():
        return text.replace("\x7f", "\\u007f")
    text = _JSON_UNSAFE.sub(lambda m: _json_escape(m.group()), text)
    if any(unicodedata.category(c) == "Cf" for c in text):
        text = "".join(_json_escape(c) if unicodedata.category(c) == "Cf" else c for c in text)
    return text


def _json_escape(char: str) -> str:
    code = ord(char)
    if code > 0xFFFF:  # JSON escapes are UTF-16: a surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


# -- people -------------------------------------------------------------------------------


def progress(counts: RequestCounts) -> str:
    done, total = counts.done, counts.total
    if total is None and counts.processing is not None:
        return f"{counts.processing:,} processing"
    if total is None:
        return "-"
    return f"{done or 0:,}/{total:,}"


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "-"
    import humanize  # only tables for people need it: not loaded by `--json`

    return humanize.naturaltime((now or datetime.now(UTC)) - moment)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], out: TextIO = sys.stdout) -> None:
    cells = [[printable(c, limit=80) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()
    out.write(line + "\n")
    for row in cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() + "\n")


def batch_rows(batches: Sequence[Batch]) -> list[list[object]]:
    now = datetime.now(UTC)
    return [[b.account, b.provider.value, b.id, b.status.value, progress(b.counts),
             b.counts.failed if b.counts.failed is not None else "-", b.model or "-", ago(b.created_at, now),
             money(b.cost)] for b in batches]


BATCH_HEADERS = ("ACCOUNT", "PROVIDER", "ID", "STATUS", "PROGRESS", "FAILED", "MODEL", "CREATED", "COST")


def show_batch(batch: Batch, breakdown: ErrorBreakdown | None, out: TextIO = sys.stdout) -> None:
    pairs = [
        ("account", batch.account), ("provider", batch.provider.value), ("id", batch.id),
        ("name", batch.name or "-"), ("status", f"{batch.status.value} ({batch.provider_status})"),
        ("model", batch.model or "-"), ("endpoint", batch.endpoint or "-"), ("requests", progress(batch.counts)),
        ("succeeded", _n(batch.counts.succeeded)), ("failed", _n(batch.counts.failed)),
        ("expired", _n(batch.counts.expired)), ("cancelled", _n(batch.counts.cancelled)),
        ("created", iso(batch.created_at)), ("ended", iso(batch.ended_at) or "-"),
        ("expires", iso(batch.expires_at) or "-"), ("cost", money(batch.cost)),
    ]
    if batch.cost is not None and batch.cost.standard_usd is not None and batch.cost.usd is not None:
        pairs.append(("standard price", f"${batch.cost.standard_usd:,.2f} (saved ${batch.cost.standard_usd - batch.cost.usd:,.2f})"))
    elif batch.cost is not None and batch.cost.reason:
        pairs.append(("cost note", batch.cost.reason))
    for key, value in batch.metadata.items():
        pairs.append((f"metadata.{printable(key, limit=40)}", value))
    width = max(len(k) for k, _ in pairs)
    for key, value in pairs:
        out.write(f"{key.ljust(width)}  {printable(value, limit=200)}\n")
    if breakdown is not None and breakdown.groups:
        out.write("\nerrors\n")
        table(("OUTCOME", "TYPE", "COUNT", "SAMPLE"),
              [[g.outcome.value, g.error_type or "-", g.count, g.sample_message or "-"] for g in breakdown.groups], out)
    if breakdown is not None and breakdown.unparseable:
        out.write(f"\n{breakdown.unparseable:,} unparseable result line(s), e.g. line(s) "
                  f"{', '.join(map(str, breakdown.unparseable_lines[:5]))}\n")


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
