"""The figures the reliability tests measure (faults injected, downloads interrupted, kills
survived...), printed for `pytest -s` and merged into reliability-results/figures.json
(git-ignored), from which the README's Reliability section is filled in by hand.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "reliability-results" / "figures.json"


def record(test: str, **figures: object) -> None:
    print(f"\n[reliability] {test}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    OUT.parent.mkdir(exist_ok=True)
    try:
        known = json.loads(OUT.read_text())
    except (OSError, ValueError):
        known = {}
    known[test] = figures
    # Written whole, then renamed: a run interrupted here never leaves half a file.
    temp = OUT.with_name(f".figures.{os.getpid()}.tmp")
    temp.write_text(json.dumps(known, indent=2, sort_keys=True) + "\n")
    os.replace(temp, OUT)
