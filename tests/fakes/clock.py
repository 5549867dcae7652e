"""A clock that only moves when told to (or when the code under test sleeps)."""

from __future__ import annotations

from scrapersky.ports import Clock

EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FakeClock(Clock):
    def __init__(self, start: float = EPOCH) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        """Records the sleep and moves time on by it (a negative sleep, like time.sleep's caller's, is none)."""
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t
