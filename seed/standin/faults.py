"""Faults the stand-in can inject into uploads, drawn from a seeded RNG so a run is repeatable."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# What happens to one upload. "ok" is the normal path.
OK = "ok"
ERROR = "error"  # 503, nothing stored
THROTTLE = "throttle"  # 429 with Retry-After, nothing stored
RESET_BEFORE = "reset-before"  # connection reset, nothing stored
RESET_AFTER = "reset-after"  # stored, but the connection is reset instead of the 202
LOSS = "loss"  # 202 with a uuid, then silently dropped (Kanta's background-job trap)


@dataclass
class Faults:
    error_rate: float = 0.0
    throttle_rate: float = 0.0
    retry_after_s: float = 1.0
    reset_before_rate: float = 0.0
    reset_after_rate: float = 0.0
    loss_rate: float = 0.0
    latency_ms: float = 0.0
    visible_after_s: float = 0.0
    garbled_list: bool = False  # GET /pics lists "faces": "n/a": a server that is not quite Kanta
    seed: int = 0
    _rng: random.Random = field(default=None, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        rates = (
            self.error_rate,
            self.throttle_rate,
            self.reset_before_rate,
            self.reset_after_rate,
            self.loss_rate,
        )
        if any(r < 0 or r > 1 for r in rates) or sum(rates) > 1:
            raise ValueError("fault rates must each be in 0..1 and add up to at most 1")
        self._rng = random.Random(self.seed)

    def draw(self) -> str:
        """Pick the fate of one upload."""
        x = self._rng.random()
        for name, rate in (
            (ERROR, self.error_rate),
            (THROTTLE, self.throttle_rate),
            (RESET_BEFORE, self.reset_before_rate),
            (RESET_AFTER, self.reset_after_rate),
            (LOSS, self.loss_rate),
        ):
            if x < rate:
                return name
            x -= rate
        return OK
