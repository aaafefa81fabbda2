"""What a fetch may leave behind under its output folder."""

from __future__ import annotations

from pathlib import Path


def leftovers(out: Path) -> list[Path]:
    """Temporary files (a download's `.NAME.PID.part`) anywhere under `out`; none when `out`
    does not exist."""
    if not out.exists():
        return []
    return [p for p in out.rglob("*") if p.is_file() and (p.name.startswith(".") or p.name.endswith(".part"))]
