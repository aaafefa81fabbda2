"""The simulator's clock: real time scaled by `speed`, or driven by hand in tests.

Every state in the simulator is a pure function of this clock and the seed, so advancing
the clock is how a test waits for a batch to finish: no sleeping.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


class SimClock:
    def __init__(self, start: float | None = None, *, speed: float = 1.0, manual: bool = False) -> None:
        self.start = time.time() if start is None else float(start)
        self.speed = float(speed)
        self.manual = manual
        self._offset = 0.0
        self._t0 = time.monotonic()

    def now(self) -> float:
        if self.manual:
            return self.start + self._offset
        return self.start + (time.monotonic() - self._t0) * self.speed + self._offset

    def advance(self, seconds: float) -> float:
        """Jump forward (both modes): what a test does instead of waiting."""
        self._offset += float(seconds)
        return self.now()

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), tz=UTC)
