"""Exponential backoff with jitter: attempt n (from 0) waits a random time in [d/2, d], d = min(cap, base * 2**n)."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, base: float = 1.0, cap: float = 300.0, rng: random.Random | None = None) -> None:
        self.base, self.cap = base, cap
        self.rng = rng or random.Random()
        self.attempt = 0

    def ceiling(self, attempt: int) -> float:
        return float(min(self.cap, self.base * 2**attempt))

    def next_delay(self) -> float:
        """The wait before the next try (each call counts one more failure)."""
        ceiling = self.ceiling(self.attempt)
        self.attempt += 1
        return self.rng.uniform(ceiling / 2, ceiling)  # "equal jitter": never less than half, so failures do slow down

    def reset(self) -> None:
        self.attempt = 0
