"""Kanta's own clock, mapped to ours: stage times come from Kanta's records, not from when we polled.

Kanta lists ``created_at`` (the blob's creation time, to the second) and ``last_modified`` (rewritten
with microseconds when faces are written). Its clock may be off from ours by minutes. Every answer's
HTTP ``Date`` header (to the second) is at most the server's time when it answered, so each answer
bounds the offset (server minus client) from below: ``date - received``. The largest of many such
bounds, from answers at different phases of the second, is the offset to about a round trip.

Only from below: a server may stamp a Date it computed earlier (uvicorn refreshes it once per loop
tick, later when its loop is busy: seen 0.4 s stale on a loaded real Kanta), so ``date + 1 - sent`` is
no bound. It serves as a sanity check with a wide margin (``STALE_DATE_S``): an answer beyond it means
the server's clock stepped, and the estimate starts over.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$")


def parse_time(text: object) -> float | None:
    """An ISO-8601 time as Kanta writes it (``2026-12-06T05:27:47Z``, ``...47.15355Z``; no zone: UTC) ->
    epoch seconds; None when it is not one. (Python 3.10's fromisoformat takes no 'Z'.)"""
    if not isinstance(text, str):
        return None
    m = ISO.match(text.strip())
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction = float("0." + m.group(7)) if m.group(7) else 0.0
    zone = m.group(8)
    try:
        stamp = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        stamp -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return stamp + fraction


def has_fraction(text: object) -> bool:
    """Kanta's second-resolution stamps have no fraction; a face write's has microseconds."""
    return isinstance(text, str) and bool(ISO.match(text.strip())) and "." in text


def parse_http_date(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


STALE_DATE_S = 2.0


class ServerClock:
    def __init__(self) -> None:
        self.low = -math.inf
        self.high = math.inf
        self.samples = 0

    def observe(self, sent: float, received: float, date: float | None) -> None:
        """One answer: sent and received on our clock, its Date header on the server's."""
        if date is None or received < sent:
            return
        low, high = date - received, date + 1.0 + STALE_DATE_S - sent
        if low > self.high or high < self.low:  # a clock step: start over from this answer
            self.low, self.high = low, high
        else:
            self.low, self.high = max(self.low, low), min(self.high, high)
        self.samples += 1

    @property
    def known(self) -> bool:
        return self.samples > 0

    @property
    def offset(self) -> float:
        """Server minus client, seconds (0 until an answer was seen): the largest lower bound."""
        return self.low if self.known else 0.0

    @property
    def uncertainty(self) -> float:
        """How far the offset may still be from the truth, from the answers' own phases: the width
        between the best lower bound and the best fresh-date upper bound (without the staleness margin)."""
        return max(0.0, self.high - STALE_DATE_S - self.low) if self.known else math.inf

    def to_client(self, server_time: float) -> float:
        return server_time - self.offset

    def to_server(self, client_time: float) -> float:
        return client_time + self.offset
