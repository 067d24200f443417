"""A clock whose time passes only when slept, for the tests of waits (no real sleeping, no timed assertions)."""
from __future__ import annotations

from typing import List


class FakeClock:
    """Call it for the time (as time.monotonic); pass its ``sleep`` as the sleeper; ``slept`` lists each pause."""

    def __init__(self, now: float = 0.0):
        self.now = now
        self.slept: List[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
