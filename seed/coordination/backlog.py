"""--max-backlog: how many more images may be handed out now, so that kanta-seed never causes the loss
it would then have to repair.

A stock Kanta drops an accepted upload when its background job waits too long for a DB connection
(pool 15, 30 s), and a job holds its connection until face detection is done: what must stay bounded
is the images Kanta has accepted and not yet processed. Polls see that number every second or few;
between polls it is estimated. While the last poll saw the pipeline keep up (a backlog under a tenth of
the bound), an image accepted since is counted only while it is younger than the pipeline's current lag
(an older one has been through it, as the lag says): a server that keeps up is never held to
"--max-backlog per poll interval". Otherwise every image accepted since the poll counts, and nothing is
taken for drained until a poll sees it: a pipeline falling behind is never overrun between polls.

A backlog is also a wait: Kanta's jobs give up after 30 s in its DB pool's queue, so once the polls have
measured how fast the pipeline drains, the bound is at most what drains within DRAIN_WITHIN_S (half that
timeout) beyond the pool: 100 Yale images drain in seconds, 100 photo-sized ones take minutes. Until the
drain is measured, it starts at START.

The bound adapts: halved (not below ``FLOOR``) when Kanta dropped an image while the backlog ran high
(a pipeline that could not drain drops what waits too long), grown back by a tenth at each poll without
a loss. An image lost at a low backlog is a fault of another kind: repaired only.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger("kanta_seed")

FLOOR = 10  # the adaptive bound never goes below this
MEMORY_S = 120.0  # how far back the backlog at a loss is looked up (Kanta's pool waits 30 s)
POLL_GRACE_S = 2.0
START = 20  # the bound before a drain rate was measured
DRAIN_POLLS = 2  # polls that measure it
DRAIN_WITHIN_S = 15.0  # a backlog should drain within this (Kanta's pool timeout is 30 s)
POOL = 15  # Kanta's DB pool (5 + 10 overflow): jobs this many deep hold a connection, not wait for one
KEEPING_UP_SHARE = 0.1  # a backlog under this share of the bound at a poll: the pipeline keeps up
RATE_WEIGHT = 0.5  # of the newest poll-to-poll drain rate in the running estimate


class BacklogBound:
    def __init__(self, max_backlog: int, clock: Callable[[], float] = time.time) -> None:
        self.max = max_backlog  # 0: unbounded
        self.limit = max_backlog
        self.clock = clock
        self.held_back_s = 0.0  # how long the bound held the users back
        self.held_since: float | None = None
        self.at_poll = 0  # accepted, not yet processed, at the last poll
        self.since_poll: deque[float] = deque()  # when each image accepted since then was accepted
        self.lag_s: float | None = None  # 202 to processed, lately (None: not known yet, all count)
        self.poll_at: float | None = None
        self.drain_per_s = 0.0  # images leaving the backlog per second, as the polls measured it
        self._drained: tuple[float, int] | None = None  # (poll time, images drained so far) at the last poll
        self._history: deque[tuple[float, int]] = deque()  # (poll time, backlog)
        self._polls = 0

    @property
    def bounded(self) -> bool:
        return self.max > 0

    @property
    def effective_limit(self) -> int:
        """The bound now: --max-backlog (as adapted to losses), and no more than drains in DRAIN_WITHIN_S."""
        if self.drain_per_s <= 0 or self._polls < DRAIN_POLLS:
            # Nothing measured yet: start small, as a photo-sized image may take seconds each.
            return min(self.limit, START)
        return max(FLOOR, min(self.limit, POOL + int(self.drain_per_s * DRAIN_WITHIN_S)))

    def accepted(self, at: float | None = None) -> None:
        """One more image accepted by Kanta (a 202, at ``at``) since the last poll."""
        self.since_poll.append(self.clock() if at is None else at)

    def estimate(self) -> float:
        """The backlog now: what the last poll saw less what drained since, plus the images accepted since
        that the pipeline cannot have been through yet."""
        now = self.clock()
        keeping_up = self.lag_s is not None and self.at_poll < self.effective_limit * KEEPING_UP_SHARE
        if not keeping_up:  # falling behind: nothing is taken for drained until a poll sees it
            return float(self.at_poll + len(self.since_poll))
        drained = self.drain_per_s * (now - self.poll_at) if self.poll_at is not None else 0.0
        cutoff = now - self.lag_s if self.lag_s is not None else -math.inf
        young = sum(1 for t in self.since_poll if t > cutoff)  # a batch of results may come out of order
        return max(0.0, self.at_poll - drained) + young

    def room(self, in_flight: int, waiting: int) -> int | None:
        """How many more images may be handed out now (None: no bound). In flight counts: it may become
        backlog at any moment."""
        if not self.bounded:
            return None
        room = self.effective_limit - math.ceil(self.estimate() - 1e-6) - in_flight  # float noise aside
        self.hold(room <= 0 and waiting > 0)
        return max(0, room)

    def hold(self, holding: bool) -> None:
        now = self.clock()
        if holding and self.held_since is None:
            self.held_since = now
        elif not holding and self.held_since is not None:
            self.held_back_s += now - self.held_since
            self.held_since = None

    def observed(
        self,
        backlog: int,
        drained: int,
        lost: int = 0,
        lost_since: float | None = None,
        lag_s: float | None = None,
    ) -> None:
        """After a poll: the backlog it saw, the images drained so far (cumulative), what Kanta lost, and the
        pipeline's current lag (202 to processed, of the images seen processed lately)."""
        now = self.clock()
        if lag_s is not None:
            self.lag_s = lag_s
        if self._drained is not None and now > self._drained[0]:
            rate = max(0.0, (drained - self._drained[1]) / (now - self._drained[0]))
            self.drain_per_s = rate if not self.drain_per_s else (
                RATE_WEIGHT * rate + (1 - RATE_WEIGHT) * self.drain_per_s
            )  # fmt: skip
        self._drained = (now, drained)
        self._polls += 1
        self.at_poll, self.poll_at = backlog, now
        self.since_poll.clear()
        self._history.append((now, backlog))
        while self._history and self._history[0][0] < now - MEMORY_S:
            self._history.popleft()
        self.hold(self.held_since is not None)  # keeps the held-back clock honest between grants
        if not self.bounded:
            return
        since = lost_since if lost_since is not None else now
        high = max((n for t, n in self._history if t >= since - POLL_GRACE_S), default=0)
        if lost and high >= self.limit / 2:
            limit = max(FLOOR, self.limit // 2)
            if limit < self.limit:
                log.warning(
                    "kanta-seed: Kanta lost %d accepted upload(s) while %d waited in its pipeline: holding"
                    " the backlog to %d images (was %d); a pipeline that cannot drain drops what waits",
                    lost, high, limit, self.limit,
                )  # fmt: skip
            self.limit = limit
        elif self.limit < self.max:
            self.limit = min(self.max, self.limit + max(1, self.limit // 10))

    def stop(self) -> None:
        self.hold(False)
