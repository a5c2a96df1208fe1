"""The shared claim queue: each image is claimed by one owner at a time and ends with one result.

Pure state, no I/O and no gevent, so it is the same object whether the owners are users in this
process or workers of a Locust cluster (``cluster.py`` carries the messages) and it can be unit
tested on its own. An owner is whatever asks: "local" in one process, a worker's id in a cluster.

Lifecycle of an image: pending -> claimed(owner) -> done | failed, or back to pending when its owner
retries it, releases it or is lost. A release of an image that may already have reached the server
marks it as a possible duplicate: Kanta has no idempotency key, so a second POST stores a second copy.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Result:
    """The outcome of one upload attempt, as reported by the user that made it."""

    index: int
    ok: bool
    status: int = 0  # HTTP status, 0 when no answer came (reset, refused, timeout)
    uuid: str = ""
    error: str = ""
    latency_ms: float = 0.0
    sent_at: float = 0.0  # wall clock (time.time) when the request started
    retry_after_s: float | None = None  # the server's Retry-After, when it gave one


@dataclass
class Entry:
    member: str
    state: str = "pending"  # pending | claimed | delayed | done | failed
    owner: str = ""
    attempts: int = 0
    result: Result | None = None
    maybe_duplicate: bool = False
    outcome_unknown: bool = False  # some attempt got no answer: it may have been stored anyway
    attempted_by: list[str] = field(default_factory=list)
    uuids: list[str] = field(default_factory=list)  # every uuid the server handed out for it
    repairs: int = 0  # re-uploads after its uuid never showed up on the server
    verified: bool = False  # read back from the server
    resumed: bool = False  # uploaded by an earlier run (from the ledger), not by this one


class WorkQueue:
    """Claims, acks, retries and releases for a fixed list of images (identified by index)."""

    def __init__(
        self,
        members: Sequence[str],
        max_attempts: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.entries = [Entry(m) for m in members]
        self.max_attempts = max_attempts
        self._clock = clock
        self._pending: deque[int] = deque(range(len(members)))
        self._delayed: list[tuple[float, int]] = []  # (ready at, index): retries waiting out a backoff
        self.retries = 0
        self._open = len(self.entries)  # images without a final result: keeps `complete` O(1) per result
        self.failed_attempts = 0  # attempts answered with anything but a 202 (retried or not)

    # --- claiming ---------------------------------------------------------------------------------
    def claim(self, owner: str, n: int) -> list[int]:
        """Up to n images for this owner; an empty list when none is ready right now."""
        self._promote_delayed()
        got: list[int] = []
        while self._pending and len(got) < n:
            i = self._pending.popleft()
            e = self.entries[i]
            e.state, e.owner = "claimed", owner
            got.append(i)
        return got

    def next_ready_in(self) -> float | None:
        """Seconds until a delayed retry becomes claimable, or None when none waits."""
        if not self._delayed:
            return None
        return max(0.0, self._delayed[0][0] - self._clock())

    def _promote_delayed(self) -> None:
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            _, i = heapq.heappop(self._delayed)
            if self.entries[i].state == "delayed":  # a late report may have settled it meanwhile
                self.entries[i].state = "pending"
                self._pending.append(i)

    # --- results ----------------------------------------------------------------------------------
    def report(self, owner: str, result: Result, retryable: bool = False, backoff_s: float = 0.0) -> str:
        """Record one attempt; returns the image's new state (done, failed, pending or delayed).

        A report for an image this owner no longer holds (it was released meanwhile, e.g. after a
        worker was declared lost) still counts when the image has no final result yet: the upload
        happened, and dropping that fact would hide a duplicate.
        """
        e = self.entries[result.index]
        if e.state in ("done", "failed"):
            if result.ok:
                e.maybe_duplicate = True  # a second copy reached the server
            return e.state
        if e.state == "pending":
            # Released, not re-sent yet: the late report settles it, and nothing was sent twice.
            self._pending.remove(result.index)
            e.maybe_duplicate = False
        elif e.state == "claimed" and e.owner != owner:
            e.maybe_duplicate = True  # someone else is sending it again right now
        e.attempts += 1
        self.failed_attempts += not result.ok
        e.attempted_by.append(owner)
        e.result = result
        e.owner = ""
        if result.ok:
            e.state = "done"
            self._open -= 1
            e.uuids.append(result.uuid)
            e.maybe_duplicate = e.maybe_duplicate or e.outcome_unknown
        elif retryable and e.attempts < self.max_attempts:
            self.retries += 1
            if backoff_s > 0:
                e.state = "delayed"
                heapq.heappush(self._delayed, (self._clock() + backoff_s, result.index))
            else:
                e.state = "pending"
                self._pending.append(result.index)
        else:
            e.state = "failed"
            self._open -= 1
        return e.state

    def release(self, owner: str, indices: Sequence[int] | None = None, maybe_sent: bool = True) -> list[int]:
        """Put an owner's claimed images back at the front of the queue.

        indices=None releases all of them (a lost worker). maybe_sent says whether the request may
        have reached the server, in which case a re-send is named as a possible duplicate.
        """
        back = [
            i
            for i, e in enumerate(self.entries)
            if e.state == "claimed" and e.owner == owner and (indices is None or i in indices)
        ]
        for i in reversed(back):
            e = self.entries[i]
            e.state, e.owner = "pending", ""
            e.maybe_duplicate = e.maybe_duplicate or maybe_sent
            self._pending.appendleft(i)
        return back

    def reopen(self, index: int) -> None:
        """Send a done image again: its uuid never appeared on the server (lost after its 202)."""
        e = self.entries[index]
        if e.state != "done":
            return
        e.state, e.verified, e.repairs = "pending", False, e.repairs + 1
        self._open += 1
        self._pending.appendleft(index)

    def preset(self, index: int, uuid: str) -> None:
        """Mark an image uploaded by an earlier run (from the ledger): not sent again, only verified."""
        e = self.entries[index]
        if e.state == "pending":
            self._pending.remove(index)
        e.state, e.resumed = "done", True
        self._open -= 1
        e.uuids.append(uuid)
        e.result = Result(index=index, ok=True, status=202, uuid=uuid)

    # --- views ------------------------------------------------------------------------------------
    def owners_in_flight(self) -> set[str]:
        return {e.owner for e in self.entries if e.state == "claimed"}

    @property
    def waiting(self) -> int:
        """Images not handed out right now: pending, or waiting out a retry's backoff."""
        return len(self._pending) + len(self._delayed)

    def count(self, state: str) -> int:
        return sum(1 for e in self.entries if e.state == state)

    @property
    def total(self) -> int:
        return len(self.entries)

    @property
    def complete(self) -> bool:
        return self._open == 0
