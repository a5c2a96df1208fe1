"""The shared claim queue: each image is claimed by one owner at a time until Kanta has accepted it.

Pure state, no I/O and no gevent, so it is the same object whether the owners are users in this
process or workers of a Locust cluster (``cluster.py`` carries the messages) and it can be unit
tested on its own. An owner is whatever asks: "local" in one process, a worker's id in a cluster.

An image's upload states:

    pending -> claimed(owner) -> accepted (202 with a uuid)
                              -> delayed -> pending (a retry after its backoff)
                              -> doubt (no answer: it may or may not be stored)
                              -> failed (final)
    doubt -> accepted (adopted: the event holds its bytes) | pending (not there: send again)
    accepted -> pending (a repair: Kanta lost it after its 202)

Kanta has no idempotency key, so an image in doubt is never sent again blindly: the read-back
decides (``run.py``), by the content of what the event holds.
"""

from __future__ import annotations

import enum
import heapq
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


class State(enum.StrEnum):
    """Where an image is in this run's queue (its string is what the ledger, the JSON and the tab say)."""

    PENDING = "pending"
    DELAYED = "delayed"  # waiting for its retry's backoff
    CLAIMED = "claimed"  # handed to a user
    DOUBT = "doubt"  # sent, outcome unknown: decided by what the event holds
    ACCEPTED = "accepted"  # its copy is known (a 202, or found by content)
    FAILED = "failed"  # given up


class Origin(enum.StrEnum):
    """Where an accepted image's copy came from."""

    UPLOADED = "uploaded"  # this run's 202 named it
    ADOPTED = "adopted"  # found in the event by content after an upload with no answer
    RESUMED = "resumed"  # an earlier run's, from the ledger (or this process's memory)
    PRESENT = "present"  # in the event before the run, found by content: never uploaded


STATES = tuple(State)
UNSETTLED = (State.PENDING, State.DELAYED, State.CLAIMED, State.DOUBT)  # not yet accepted nor failed


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

    @property
    def answered_at(self) -> float:
        return self.sent_at + self.latency_ms / 1000


@dataclass
class Entry:
    member: str
    state: State = State.PENDING
    owner: str = ""
    attempts: int = 0
    failing_since: float | None = None  # when its current run of failures began (the retry budget)
    result: Result | None = None  # the latest attempt's
    uuid: str = ""  # the upload that counts, once accepted
    accepted_at: float | None = None  # when that uuid was handed out (wall clock)
    uuids: list[str] = field(default_factory=list)  # every uuid Kanta handed out for it
    attempted_by: list[str] = field(default_factory=list)
    doubt_since: float | None = None  # in doubt since (wall clock)
    doubted: bool = False  # was ever in doubt: without readable blobs, a possible duplicate
    repairs: int = 0  # re-uploads after its uuid never showed up on the server
    origin: Origin | None = None  # where its accepted copy came from (None until it has one)

    @property
    def adopted(self) -> bool:
        return self.origin == Origin.ADOPTED

    @property
    def resumed(self) -> bool:
        return self.origin == Origin.RESUMED

    @property
    def present(self) -> bool:
        return self.origin == Origin.PRESENT


class WorkQueue:
    """Claims, results, retries, doubts and repairs for a fixed list of images (identified by index)."""

    def __init__(self, members: Sequence[str], clock: Callable[[], float] = time.monotonic) -> None:
        self.entries = [Entry(m) for m in members]
        self._clock = clock
        self._pending: deque[int] = deque(range(len(members)))
        self._delayed: list[tuple[float, int]] = []  # (ready at, index): retries waiting out a backoff
        self._due: dict[int, float] = {}  # index -> when its current backoff ends (older heap rows are stale)
        self._counts: Counter[str] = Counter({State.PENDING: len(members)})
        self.retries = 0
        self.failed_attempts = 0  # attempts answered with anything but a 202 (retried or not)
        self.late_copies = 0  # uuids reported for an image that already had one: extra copies

    def _set(self, e: Entry, state: State) -> None:
        self._counts[e.state] -= 1
        self._counts[state] += 1
        e.state = state

    # --- claiming ---------------------------------------------------------------------------------
    def claim(self, owner: str, n: int) -> list[int]:
        """Up to n images for this owner; an empty list when none is ready right now."""
        self._promote_delayed()
        got: list[int] = []
        while self._pending and len(got) < n:
            i = self._pending.popleft()
            e = self.entries[i]
            self._set(e, State.CLAIMED)
            e.owner = owner
            got.append(i)
        return got

    def next_ready_in(self) -> float | None:
        """Seconds until a delayed retry becomes claimable, or None when none waits."""
        while self._delayed and not self._current(*self._delayed[0]):
            heapq.heappop(self._delayed)  # settled meanwhile by a late report
        if not self._delayed:
            return None
        return max(0.0, self._delayed[0][0] - self._clock())

    def _promote_delayed(self) -> None:
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            at, i = heapq.heappop(self._delayed)
            if self._current(at, i):
                self._set(self.entries[i], State.PENDING)
                self._pending.append(i)

    def _current(self, at: float, i: int) -> bool:
        """A heap row is the image's current backoff, not one left from before a late report settled it."""
        return self.entries[i].state == State.DELAYED and self._due.get(i) == at

    def _requeue(self, i: int, front: bool = False) -> None:
        self._set(self.entries[i], State.PENDING)
        if front:
            self._pending.appendleft(i)
        else:
            self._pending.append(i)

    # --- results ----------------------------------------------------------------------------------
    def report(self, owner: str, result: Result, retry_in: float | None, unknown: bool) -> str:
        """Record one attempt; returns the image's state after it.

        retry_in: seconds until the next try when the attempt failed and may be tried again (None:
        final). unknown: the attempt got no answer, so it may have been stored: the image goes into
        doubt instead of being sent again.

        A report for an image this owner no longer holds (released meanwhile: a worker declared lost,
        a stop) still counts: the upload happened, and a uuid is never dropped.
        """
        e = self.entries[result.index]
        mine = e.state == State.CLAIMED and e.owner == owner
        e.attempts += 1
        e.attempted_by.append(owner)
        e.result = result
        self.failed_attempts += not result.ok
        if result.ok:
            if result.uuid in e.uuids:
                return e.state
            e.uuids.append(result.uuid)
            if e.state == State.ACCEPTED:
                self.late_copies += 1  # a second copy reached the server: the read-back sorts it out
                return e.state
            if e.state == State.PENDING:
                self._pending.remove(result.index)
            self._accept(e, result.uuid, result.answered_at)
            return e.state
        if not mine and e.state in (
            State.ACCEPTED,
            State.CLAIMED,
            State.PENDING,
            State.DELAYED,
            State.FAILED,
        ):
            return e.state  # a late failure changes nothing: the image is settled or being retried
        if e.state == State.PENDING:
            self._pending.remove(result.index)
        e.owner = ""
        if e.failing_since is None:
            e.failing_since = result.sent_at or time.time()  # wall clock, as every time in a Result
        if unknown:
            self._doubt(e, result.answered_at)
        elif retry_in is not None:
            self.retries += 1
            if retry_in > 0:
                self._set(e, State.DELAYED)
                self._due[result.index] = ready = self._clock() + retry_in
                heapq.heappush(self._delayed, (ready, result.index))
            else:
                self._requeue(result.index)
        else:
            self._set(e, State.FAILED)
        return e.state

    def _accept(self, e: Entry, uuid: str, at: float | None) -> None:
        self._set(e, State.ACCEPTED)
        e.origin = e.origin or Origin.UPLOADED
        e.owner, e.uuid, e.accepted_at = "", uuid, at
        e.failing_since = e.doubt_since = None

    def _doubt(self, e: Entry, at: float) -> None:
        self._set(e, State.DOUBT)
        e.doubt_since, e.doubted = at, True

    def release(self, owner: str, indices: Sequence[int] | None, maybe_sent: bool, at: float) -> list[int]:
        """Put an owner's claimed images back (the owner stopped, or was lost).

        indices=None releases all of them (a lost worker). maybe_sent: the requests may have reached
        the server, so those images go into doubt rather than back to the queue.
        """
        wanted = None if indices is None else set(indices)
        back = [
            i
            for i, e in enumerate(self.entries)
            if e.state == State.CLAIMED and e.owner == owner and (wanted is None or i in wanted)
        ]
        for i in reversed(back):
            e = self.entries[i]
            e.owner = ""
            if maybe_sent:
                self._doubt(e, at)
            else:
                self._requeue(i, front=True)
        return back

    # --- what the read-back decides ---------------------------------------------------------------
    def adopt(self, index: int, uuid: str, at: float) -> None:
        """The event holds this image's bytes under a uuid no answer named: that is its upload."""
        e = self.entries[index]
        if uuid not in e.uuids:
            e.uuids.append(uuid)
        if e.state == State.PENDING:
            self._pending.remove(index)
        e.origin = Origin.ADOPTED
        self._accept(e, uuid, at)

    def unadopt(self, index: int, at: float) -> None:
        """An adoption was wrong (a twin's 202 named that copy): back into doubt."""
        e = self.entries[index]
        if e.state == State.ACCEPTED and e.adopted:
            if e.uuid in e.uuids:
                e.uuids.remove(e.uuid)
            e.uuid, e.accepted_at, e.origin = "", None, None
            self._doubt(e, at)

    def resend(self, index: int) -> None:
        """An image in doubt is not in the event: send it (again)."""
        e = self.entries[index]
        if e.state == State.DOUBT:
            e.doubt_since = None
            self._requeue(index, front=True)

    def give_up(self, index: int) -> None:
        e = self.entries[index]
        if e.state in (State.DOUBT, State.PENDING, State.DELAYED):
            if e.state == State.PENDING:
                self._pending.remove(index)
            self._set(e, State.FAILED)

    def reopen(self, index: int) -> None:
        """Send an accepted image again: its uuid never appeared on the server (lost after its 202)."""
        e = self.entries[index]
        if e.state != State.ACCEPTED:
            return
        e.repairs += 1
        e.uuid, e.accepted_at, e.origin = "", None, None
        self._requeue(index, front=True)

    def preset(self, index: int, uuid: str, resumed: bool = True, present: bool = False) -> None:
        """Accepted before this run: from the ledger (resumed) or already in the event (--top-up)."""
        e = self.entries[index]
        if e.state == State.PENDING:
            self._pending.remove(index)
        if uuid not in e.uuids:
            e.uuids.append(uuid)
        e.origin = Origin.PRESENT if present else Origin.RESUMED if resumed else Origin.UPLOADED
        self._accept(e, uuid, None)

    def preset_doubt(self, index: int, at: float) -> None:
        """In flight when an earlier run died: it may be stored; the read-back decides."""
        e = self.entries[index]
        if e.state == State.PENDING:
            self._pending.remove(index)
            self._doubt(e, at)

    # --- views ------------------------------------------------------------------------------------
    def owners_in_flight(self) -> set[str]:
        return {e.owner for e in self.entries if e.state == State.CLAIMED}

    def count(self, state: str) -> int:
        return self._counts[state]

    @property
    def waiting(self) -> int:
        """Images not handed out right now: pending, or waiting out a retry's backoff."""
        return self._counts[State.PENDING] + self._counts[State.DELAYED]

    @property
    def total(self) -> int:
        return len(self.entries)

    @property
    def unsettled(self) -> int:
        return sum(self._counts[s] for s in UNSETTLED)

    @property
    def complete(self) -> bool:
        """Every image accepted or failed: nothing left to send (a repair may reopen one)."""
        return self.unsettled == 0

    def in_state(self, state: str) -> list[int]:
        return [i for i, e in enumerate(self.entries) if e.state == state]
