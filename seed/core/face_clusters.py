"""How well Kanta's face clusters agree with the data set's subjects: purity and adjusted Rand index.

Pure functions over two labellings of the same faces (cluster id, subject), in a few lines instead of
a dependency. Cluster ids are not stable between clustering runs, so only the partition counts.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from math import comb


def purity(clusters: Sequence[object], subjects: Sequence[object]) -> float:
    """Share of faces whose cluster's most common subject is their own (1.0: no cluster mixes subjects)."""
    if not clusters:
        return 0.0
    table = Counter(zip(clusters, subjects, strict=True))
    best: dict[object, int] = {}
    for (cluster, _), n in table.items():
        best[cluster] = max(best.get(cluster, 0), n)
    return sum(best.values()) / len(clusters)


def adjusted_rand_index(clusters: Sequence[object], subjects: Sequence[object]) -> float:
    """Agreement of two partitions, corrected for chance: 1.0 identical, about 0 random."""
    n = len(clusters)
    if n < 2:
        return 1.0
    pairs = sum(comb(k, 2) for k in Counter(zip(clusters, subjects, strict=True)).values())
    a = sum(comb(k, 2) for k in Counter(clusters).values())
    b = sum(comb(k, 2) for k in Counter(subjects).values())
    expected = a * b / comb(n, 2)
    best = (a + b) / 2
    if best == expected:
        return 1.0  # both partitions trivial (all singletons or one block): they agree
    return (pairs - expected) / (best - expected)


def subject_of(member: str, pattern: re.Pattern[str]) -> str | None:
    """The subject an image shows, from its member path (``subject07`` -> ``07``), or None."""
    found = pattern.search(member)
    return found.group(1) if found else None
