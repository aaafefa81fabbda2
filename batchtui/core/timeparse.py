"""Timestamps from the providers: Unix seconds (OpenAI) and RFC 3339 strings with up to
nine fractional digits (Anthropic, Google). Everything comes out timezone-aware UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_FRACTION = re.compile(r"(\.[0-9]{1,9})")
_DIGITS = re.compile(r"[0-9]+")  # str.isdigit() also accepts "²" and other digits int() refuses


def parse_time(value: object) -> datetime | None:
    """Parse a provider timestamp; None for null, empty or unparseable values."""
    # The two shapes providers send come first: a listing of 12,000 batches carries ~50,000
    # timestamps, and the general path costs ~2.5 us a string where fromisoformat alone takes
    # 0.2. Only strings in the extended form (`YYYY-`) take it: fromisoformat would read
    # "20261120" as a date, where a string of digits means Unix seconds.
    if type(value) is int:
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if type(value) is str and value[4:5] == "-":
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return _parse_any(value)


def _parse_any(value: object) -> datetime | None:
    """`parse_time` for every other value: numbers as Unix seconds, digit strings too, and
    RFC 3339 in the forms fromisoformat refuses as they are."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _DIGITS.fullmatch(text):
        return _parse_any(int(text))
    # datetime only takes microseconds: keep six of Google's nine fractional digits.
    text = _FRACTION.sub(lambda m: m.group(1)[:7], text, count=1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def to_rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, microsecond precision (what Anthropic sends)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_unix(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())
