"""The read-back: what Kanta really holds, seen from its own lists, polled all through a run.

Each poll lists what changed in the run's events, not the whole of them: the images Kanta stored since
a little before the newest one seen, and since the oldest of ours still waiting for its faces
(``date_from`` on ``created_at``); the first look, and a look after an unreadable one, lists everything.
A list loads the whole event in Kanta (~0.1-0.2 s at 1,650 images), so polls are spaced to keep the
read-back's share of Kanta's time small (``poll_interval``). It decides, without touching the queue
itself (``run.py`` applies what it decides):

- stages: which accepted images are now stored (listed) and processed (faces > 0), for the figures;
- adoption: an unnamed copy in the event whose bytes are an image in doubt is that image's upload;
- lost: an accepted image is called lost only when the pipeline has moved past it (enough images
  answered after it are listed, or the listing has gone quiet after growing past it) and a final
  ``GET /pics/{uuid}`` says 404: offset paging over a list whose order moves can skip an item;
- resend: an image in doubt whose bytes the event does not hold, once the pipeline has moved past it;
- faceless: a stored image still at 0 faces has no face once the pipeline has moved past it (enough
  images stored after it have their faces: Kanta detects in the order it stores), or once nothing has
  changed for a while;
- reprocess: unless Kanta went away (refused connections, unreadable lists, a streak of 5xx) while the
  image waited for its faces: a Kanta that crashed lost its detection jobs, and such an image would stay
  at 0 faces forever. It is sent again (once), and its stranded copy removed.

Never a fixed multiple of the slowest visibility: under a backlog every image takes long, but the
listing keeps growing, and it is the growth that says the pipeline is alive.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from seed.core.content import Copy, reconcile
from seed.core.stages import StageBook
from seed.core.work import State, WorkQueue
from seed.kanta.client import Item, KantaClient

LATER_LISTED = 30  # this many images answered after one are listed while it is not: it was dropped
# ... or twice as many (plus a margin) as the most that overtook an image that did show up in the end:
# a real Kanta lists a few images out of their 202s' order, and that depth is learnt, not assumed.
OVERTAKE_MARGIN = 10
QUIET_LOST_S = 5.0  # at least this long without growth before an unlisted image is looked for
QUIET_FACES_S = 3.0  # nothing changed for this long: images still at 0 faces have none
SUSPECTS_PER_POLL = 20
BLOB_TRIES = 3  # per-uuid looks per poll, so a big loss does not flood Kanta
OVERLAP_S = 1.0  # re-list this far before the newest image seen: created_at has 1 s resolution, and a
# row is committed a little after the blob it is dated by (a row later still is found as lost is: looked up)
FACELESS_AFTER = 12  # images stored after one and already processed: detection ran (4 workers, in order)
POLL_MIN_S = 1.0
POLL_MAX_S = 10.0
READBACK_SHARE = 0.03  # of Kanta's time the lists may take (measured as our wait for them)


OUTAGE_GAP_S = 5.0  # failures closer than this are one outage
OUTAGE_5XX_STREAK = 5  # this many 5xx answers in a row (and no success between) are an outage too


@dataclass
class Observation:
    ok: bool
    adopt: list[tuple[int, str]] = field(default_factory=list)
    lost: list[tuple[int, str]] = field(default_factory=list)
    resend: list[int] = field(default_factory=list)
    reprocess: list[tuple[int, str]] = field(default_factory=list)  # stranded by a Kanta that went away
    changed: bool = False


class Readback:
    def __init__(
        self,
        client: KantaClient,
        queue: WorkQueue,
        event_of: Callable[[int], str],
        digest_of: Callable[[int], str],
        pre_existing: Mapping[str, set[str]],
        stages: StageBook,
        started_at: float,
        clock: Callable[[], float] = time.time,
        max_quiet_s: float = 20.0,
    ) -> None:
        self.client = client
        self.max_quiet_s = max_quiet_s
        self.queue = queue
        self.event_of = event_of
        self.digest_of = digest_of
        self.pre_existing = pre_existing
        self.stages = stages
        self.clock = clock
        self.started_at = started_at
        self.listed: dict[str, Item] = {}  # every uuid of ours ever listed -> its latest item
        self.last_listing: dict[str, dict[str, Item]] = {}  # event -> its last good listing
        self.first_poll: dict[str, int] = {}  # unnamed uuid -> the poll that first listed it
        self.digests: dict[str, str | None] = {}  # unnamed uuid -> sha256 of its blob
        self.unread: dict[str, Item] = {}  # unnamed copies this poll listed and did not read (yet)
        self.gone: set[str] = set()  # copies this run removed
        self.polls = 0
        self.unreadable = 0
        self.last_look: float | None = None
        self.last_good_at: float | None = None
        self.unreadable_since: float | None = None  # the current streak of unreadable lists began
        self.last_change_at = started_at
        self.last_growth_at: float | None = None
        self.unlisted_at_growth = 0
        self.max_gap = 0.0  # longest wait between two growths while images were in the pipeline
        self.max_overtaken = 0  # the most images answered after one that were listed before it
        self.suspects: dict[str, float] = {}  # uuid -> when GET /pics/{uuid} first said 404
        self.digest_tries: dict[str, int] = {}  # unnamed uuid -> blob reads tried (a read can fail)
        self._stored_times: list[float] = []  # 202 times of the stored images, sorted (this poll's)
        self.newest: dict[str, float] = {}  # event -> the newest created_at listed (server clock)
        self.full_looks = 0
        self.outages: list[list[float]] = []  # [start, end] (our clock) of the times Kanta was away
        self.streak_5xx = 0
        self.reprocessed: set[int] = set()  # images sent again after an outage (once each)

    # --- one poll -----------------------------------------------------------------------------------
    def list_from(self, code: str) -> float | None:
        """Where this event's next list starts (server clock), or None: the whole event."""
        if code not in self.newest or self.unreadable_since is not None:
            return None
        start = self.newest[code] - OVERLAP_S
        for i in self.waiting_for_faces():
            created = self.stages.stages[i].created
            if created is not None and self.event_of(i) == code:
                start = min(start, created)
        return start

    def waiting_for_faces(self) -> list[int]:
        """Accepted images that are stored (listed) and not processed yet."""
        out = []
        for i, e in enumerate(self.queue.entries):
            s = self.stages.stages.get(i)
            if (
                e.state == State.ACCEPTED
                and s is not None
                and s.stored_at is not None
                and s.processed_at is None
            ):
                out.append(i)
        return out

    def poll_interval(self) -> float:
        """Seconds between polls: at least POLL_MIN_S, more when a list is dear (a big event), so that
        the read-back takes no more than READBACK_SHARE of Kanta's time."""
        c = self.client
        per_poll = c.list_seconds / max(1, self.polls)
        return min(POLL_MAX_S, max(POLL_MIN_S, per_poll / READBACK_SHARE))

    def poll(self, codes: list[str]) -> Observation:
        listings: dict[str, dict[str, Item]] = {}
        for code in codes:
            since = self.list_from(code)
            self.full_looks += since is None
            listing = self.client.list_event(code, created_from=since)
            if listing is None and self.client.list_problem.startswith("no answer"):
                self.went_away(self.clock())
            if listing is None:
                self.polls += 1
                self.unreadable += 1
                if self.unreadable_since is None:
                    self.unreadable_since = self.clock()
                return Observation(ok=False)
            listings[code] = listing
        now = self.clock()
        self.polls += 1
        self.last_good_at, self.unreadable_since = now, None
        before = self.last_look if self.last_look is not None else self.started_at
        seen_now: dict[str, Item] = {}
        grew = False
        entries = self.queue.entries
        owner = {u: i for i, e in enumerate(entries) for u in e.uuids}
        for code, listing in listings.items():
            self.last_listing[code] = listing
            pre = self.pre_existing.get(code, set())
            for uid, item in listing.items():
                created = item.created
                if created is not None:
                    self.newest[code] = max(self.newest.get(code, created), created)
                if uid in pre and uid not in owner:
                    continue  # held before the run, and no image of ours counts it (--top-up does)
                seen_now[uid] = item
                grew |= uid not in self.listed
                self.listed[uid] = item
            if code not in self.newest and not listing and self.client.clock.known:
                # Nothing there yet: the next look lists what Kanta stored since the run began.
                self.newest[code] = self.client.clock.to_server(self.started_at)
        obs = Observation(ok=True)
        prior = self._stored_202s()
        offset = self.client.clock.offset
        for i, e in enumerate(entries):
            if e.state == State.ACCEPTED and e.uuid in seen_now:
                stage = self.stages.of(i, e.uuid)
                new = stage.stored_at is None
                item = seen_now[e.uuid]
                obs.changed |= self.stages.seen(
                    i, e.uuid, item.faces, before, now, item.created, item.faces_written, offset
                )
                if new and stage.accepted_at is not None:  # how many answered after it were there first
                    overtaken = len(prior) - bisect.bisect_right(prior, stage.accepted_at)
                    self.max_overtaken = max(self.max_overtaken, overtaken)
        self._stored_times = self._stored_202s()
        self._adopt(seen_now, owner, obs)
        unlisted = self._unlisted()
        if grew:
            # The pipeline's own pace, measured while uploads still go on: afterwards the unlisted may
            # be only lost ones, and a gap waiting on them would grow the wait for them.
            sending = self.queue.waiting or self.queue.count(State.CLAIMED)
            if self.last_growth_at is not None and self.unlisted_at_growth and sending:
                self.max_gap = max(self.max_gap, now - self.last_growth_at)
            self.last_growth_at, self.unlisted_at_growth = now, len(unlisted)
            obs.changed = True
        self._look_for_lost(unlisted, now, obs)
        self._resend_doubts(now, len(unlisted), obs)
        if obs.changed or obs.adopt or obs.lost:
            self.last_change_at = now
        self._settle_faceless(now, obs)
        self.stages.sample(now, range(len(entries)))
        self.last_look = now
        return obs

    def _adopt(self, seen_now: dict[str, Item], owner: dict[str, int], obs: Observation) -> None:
        """Unnamed copies of ours, read by content; those holding an image in doubt are its upload."""
        doubts = {i: self.digest_of(i) for i in self.queue.in_state(State.DOUBT)}
        unnamed = [u for u in seen_now if u not in owner and u not in self.gone]
        for u in unnamed:
            self.first_poll.setdefault(u, self.polls)
        if not doubts:
            return
        # A copy listed only just now may be an upload whose 202 is on its way: wait one poll for it,
        # unless nothing is in flight that could explain it.
        settled = self.queue.count(State.CLAIMED) == 0
        for u in unnamed:
            if self._needs_read(u) and (settled or self.first_poll[u] < self.polls):
                self._read(u, seen_now[u])
        self.unread = {u: seen_now[u] for u in unnamed if u not in self.digests}
        copies = [Copy(u, self.digests[u]) for u in unnamed if u in self.digests]
        verdict = reconcile({i: d for i, d in doubts.items() if d}, copies)
        for i, u in verdict.adopt.items():
            obs.adopt.append((i, u))
            owner[u] = i

    def _needs_read(self, uuid: str) -> bool:
        """Not read yet, or a read failed (tried again up to BLOB_TRIES times: Azurite may blink)."""
        return self.digests.get(uuid) is None and self.digest_tries.get(uuid, 0) < BLOB_TRIES

    def _read(self, uuid: str, item: Item) -> None:
        self.digest_tries[uuid] = self.digest_tries.get(uuid, 0) + 1
        self.digests[uuid] = self.client.blob_digest(item.blob_url)

    def _unlisted(self) -> list[int]:
        """Accepted images whose current uuid no poll has listed yet."""
        return [
            i
            for i, e in enumerate(self.queue.entries)
            if e.state == State.ACCEPTED and e.uuid and e.uuid not in self.listed and e.uuid not in self.gone
        ]

    def _stored_202s(self) -> list[float]:
        return sorted(
            s.accepted_at
            for s in self.stages.stages.values()
            if s.stored_at is not None and s.accepted_at is not None
        )

    @property
    def later_needed(self) -> int:
        return max(LATER_LISTED, 2 * self.max_overtaken + OVERTAKE_MARGIN)

    def passed(self, t: float, now: float, others_unlisted: int) -> bool:
        """Has the pipeline moved past what was accepted (or in doubt) at time t?"""
        times = self._stored_times
        if len(times) - bisect.bisect_right(times, t) >= self.later_needed:
            return True
        # Twice the longest gap seen, but never so long that the run gives up (--verify-timeout) first.
        quiet_needed = max(QUIET_LOST_S, min(2 * self.max_gap, self.max_quiet_s))
        since = max(t, self.last_growth_at or t)
        if now - since < quiet_needed:
            return False
        grew_after = self.last_growth_at is not None and self.last_growth_at > t
        return grew_after or others_unlisted == 0

    def _look_for_lost(self, unlisted: list[int], now: float, obs: Observation) -> None:
        looks = 0
        entries = self.queue.entries
        for i in unlisted:
            e = entries[i]
            t = e.accepted_at if e.accepted_at is not None else self.started_at
            if not self.passed(t, now, len(unlisted) - 1) or looks >= SUSPECTS_PER_POLL:
                continue
            if now - self.suspects.get(e.uuid, now - QUIET_LOST_S) < QUIET_LOST_S:
                continue  # looked up lately: its second look is not due yet
            looks += 1
            status, faces = self.client.image(e.uuid)
            if status == 200:  # there after all: the moving order hid it from the pages
                self.suspects.pop(e.uuid, None)
                self.listed[e.uuid] = Item(e.uuid, faces, "", "")
                self.stages.seen(i, e.uuid, faces, self.last_look or self.started_at, now)
                obs.changed = True
            elif status == 404:
                # Twice, QUIET_LOST_S apart: a slow image is given the benefit of the doubt once.
                first = self.suspects.setdefault(e.uuid, now)
                if now - first >= QUIET_LOST_S:
                    self.suspects.pop(e.uuid)
                    obs.lost.append((i, e.uuid))

    def _resend_doubts(self, now: float, unlisted: int, obs: Observation) -> None:
        adopted = {i for i, _ in obs.adopt}
        for i in self.queue.in_state(State.DOUBT):
            since = self.queue.entries[i].doubt_since or self.started_at
            if i not in adopted and self.passed(since, now, unlisted) and not self._copy_waits(i):
                obs.resend.append(i)

    def _copy_waits(self, index: int) -> bool:
        """A copy listed just now and not adopted yet (a claimed upload's 202 may name it) holds these
        bytes: not resent, the next poll decides."""
        for u, item in self.unread.items():
            if self._needs_read(u):
                self._read(u, item)
            if self.digests.get(u) == self.digest_of(index):
                return True
        return False

    def _settle_faceless(self, now: float, obs: Observation) -> None:
        q = self.queue
        self._settle_passed(obs)
        if now - self.last_change_at < QUIET_FACES_S or q.count(State.CLAIMED) or q.count(State.DOUBT):
            return
        if self._unlisted():
            return
        for i in self.waiting_for_faces():
            self._settle(i, self.last_change_at, obs)

    def went_away(self, at: float) -> None:
        """Kanta did not answer (or answered a streak of 5xx) at ``at``: an outage, or part of one."""
        if self.outages and at - self.outages[-1][1] <= OUTAGE_GAP_S:
            self.outages[-1][1] = max(self.outages[-1][1], at)
        else:
            self.outages.append([at, at])

    def answered(self, status: int, at: float, refused: bool) -> None:
        """An upload's answer, for the outage record: refused connections and 5xx streaks."""
        if refused:
            self.went_away(at)
        if status >= 500:
            self.streak_5xx += 1
            if self.streak_5xx >= OUTAGE_5XX_STREAK:
                self.went_away(at)
        elif status:
            self.streak_5xx = 0

    def stranded(self, index: int) -> bool:
        """Still at 0 faces, and Kanta went away while it waited for them (accepted before an outage ended,
        not processed before it began): its detection job may have died with Kanta."""
        s = self.stages.stages.get(index)
        if s is None or s.accepted_at is None or index in self.reprocessed:
            return False
        return any(s.accepted_at <= end for _, end in self.outages)

    def _settle(self, index: int, at: float, obs: Observation) -> None:
        """The pipeline moved past this image at 0 faces: no face, or stranded by an outage."""
        e = self.queue.entries[index]
        if self.stranded(index):
            self.reprocessed.add(index)
            obs.reprocess.append((index, e.uuid))
        else:
            self.stages.settle_faceless(index, at)

    def _settle_passed(self, obs: Observation) -> None:
        """Kanta detects faces in the order it stores images: one still at 0 faces when FACELESS_AFTER
        images stored after it have theirs has none (its detection ran)."""
        waiting: list[tuple[float, int]] = []
        processed: list[float] = []
        for i, e in enumerate(self.queue.entries):
            s = self.stages.stages.get(i)
            if e.state != State.ACCEPTED or s is None or s.uuid != e.uuid or s.created is None:
                continue
            if s.processed_at is None:
                waiting.append((s.created, i))
            elif not s.faceless:
                processed.append(s.created)
        if not waiting or len(processed) < FACELESS_AFTER:
            return
        processed.sort()
        for created, i in waiting:
            # strictly later seconds only: created_at is to the second
            if len(processed) - bisect.bisect_right(processed, created) >= FACELESS_AFTER:
                s = self.stages.stages[i]
                self._settle(i, s.listed_at or s.stored_at or self.clock(), obs)

    # --- views --------------------------------------------------------------------------------------
    def at_stage(self, index: int, stage: str) -> bool:
        """Has this image reached a stage of the pipeline (--wait-for's names)?"""
        if stage == "accepted":
            return self.queue.entries[index].state == State.ACCEPTED
        return self.stored(index) if stage == "stored" else self.processed(index)

    def stored(self, index: int) -> bool:
        e = self.queue.entries[index]
        s = self.stages.stages.get(index)
        return e.state == State.ACCEPTED and s is not None and s.uuid == e.uuid and s.stored_at is not None

    def processed(self, index: int) -> bool:
        e = self.queue.entries[index]
        s = self.stages.stages.get(index)
        return e.state == State.ACCEPTED and s is not None and s.uuid == e.uuid and s.processed_at is not None
