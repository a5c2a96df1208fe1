"""Small pure figures shared by the live progress and the summary, so both say the same thing."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def rate(count: int, start: float | None, end: float | None) -> float:
    """count per second over [start, end]; 0 when the window is empty or not there."""
    if start is None or end is None or end <= start or count <= 0:
        return 0.0
    return count / (end - start)


def spread(values: Iterable[float]) -> dict[str, float] | None:
    """p50, p95, p99 and max of some durations, rounded to ms; None when there are none."""
    ordered = sorted(values)
    if not ordered:
        return None
    return {
        "p50": round(percentile(ordered, 50), 3),
        "p95": round(percentile(ordered, 95), 3),
        "p99": round(percentile(ordered, 99), 3),
        "max": round(ordered[-1], 3),
    }
