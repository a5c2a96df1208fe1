"""One run on the coordinating process (the local process, or the master): it owns the plan, the queue,
the ledger, the read-back, the stage times and the timeline, and it says what happened.

The ``Coordinator`` (``cluster.py``) calls it as things happen (claimed, released, result); the
driver (``driver.py``) polls it (``poll``), asks whether it is done or stalled, and ends it (``end``;
``tally.py`` then tells it as a ``Summary``, which ``close`` keeps). It never calls back up into
either, and holds no Locust object: its only I/O is the ledger file and the ``KantaClient`` it is given.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
import uuid as uuidlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from seed.coordination.backlog import BacklogBound
from seed.coordination.preflight import Plan
from seed.coordination.readback import Observation, Readback
from seed.core import ground_truth
from seed.core.content import Copy, reconcile
from seed.core.face_clusters import adjusted_rand_index, purity, subject_of
from seed.core.ledger import Ledger
from seed.core.retry import RetryPolicy
from seed.core.stages import StageBook
from seed.core.summary import Clusters, Summary
from seed.core.work import Result, State, WorkQueue
from seed.kanta.client import GARBLED, KantaClient

CLOCK_GOAL_S = 0.01  # the offset to Kanta's clock is probed until known to within this
CLOCK_PROBE_S = 0.1  # ... at about this pace (a health check costs Kanta no DB connection)
CLOCK_PROBES = 80  # ... and at most this many times a run
GROUND_TRUTH = "ground-truth.json"  # beside a generated event's photos (kanta-seed make-event)
DOWN_AFTER_MIN_S = 10.0  # the read-back gives up on a silent Kanta after max(this, --retry-for)
GARBLED_AFTER_S = 15.0  # ... and on one that answers with what is not its list after this long
CLUSTER_POLL_S = 5.0

log = logging.getLogger("kanta_seed")


class Run:
    def __init__(
        self,
        plan: Plan,
        client: KantaClient,
        ledger: Ledger | None = None,
        run_id: str = "",
        clock: Callable[[], float] = time.time,
        policy: RetryPolicy | None = None,
    ) -> None:
        s = plan.settings
        self.plan, self.settings, self.client, self.ledger, self.clock = plan, s, client, ledger, clock
        self.run_id = run_id or uuidlib.uuid4().hex[:12]
        self.started_at = clock()
        self.spawned_at: float | None = None  # every user running (the ramp-up's end)
        self.drained_at: float | None = None  # the queue first ran dry (the tail's start)
        self.first_sent_at: float | None = None
        self.ended_at: float | None = None
        self.event_outcome = "not made sure of"  # created | already existed | why it failed
        self.event_failed = False
        self.usage: dict[str, tuple[float, float]] = {}  # process -> (CPU s, peak RSS MB)
        self.peak_users = 0
        self.queue = WorkQueue([plan.member(u.index) for u in plan.uploads])
        self.policy = policy or RetryPolicy(max_attempts=s.max_attempts, retry_for_s=s.retry_for)
        held = sum(map(len, plan.pre_existing.values())) // max(1, len(plan.event_codes))
        self.stages = StageBook(held_before=held)  # the event's size starts there
        self.readback = Readback(
            client,
            self.queue,
            event_of=lambda i: plan.uploads[i].event_code,
            digest_of=plan.digest,
            pre_existing={code: set(uids) for code, uids in plan.pre_existing.items()},
            stages=self.stages,
            started_at=self.started_at,
            clock=clock,
            max_quiet_s=s.verify_timeout / 3,  # a lost image is called (two looks) before the run gives up
        )
        self.owner_of: dict[str, int] = {}  # uuid -> the image whose upload it is (202 or adoption)
        self.latencies: list[float] = []  # ms of every 202 this run got
        self.first_accepts: list[float] = []  # when each image had its first 202 of this run
        self.accepted_by: dict[int, str] = {}
        self.last_result_at = self.started_at
        # --max-backlog on what Kanta accepted and has not processed (backlog.py); off without a read-back
        self.backlog = BacklogBound(s.max_backlog if s.verify else 0, clock)
        self.resent = 0  # images in doubt sent again because the event did not hold them
        self.lost_ever: list[int] = []
        self.removed = 0  # extra copies this run made, deleted at the end
        self.reprocessed = 0  # images sent again: a Kanta that went away left them at 0 faces
        self.cleared = 0  # copies of the data set the event held before, deleted before the first upload
        self.copy_verdict: dict[str, list[str]] = {"extra": [], "missing": [], "unproven": [], "foreign": []}
        self.clusters: Clusters | None = None
        self.ground_truth: dict[str, Any] | None = None  # a generated event's faces against Kanta's
        self._next_probe = 0.0
        self._probes = 0
        self._timed: set[int] = set()  # images whose lag the backlog bound has learnt from
        self.error = ""  # an internal error ended the run (a greenlet died): exit 1, said in one line
        self.finished = False
        self.printed = False
        self.summary: Summary | None = None
        self._begin()

    # --- the start --------------------------------------------------------------------------------
    def _begin(self) -> None:
        plan, q = self.plan, self.queue
        if self.ledger is not None:
            fresh = not plan.resuming
            pre = {code: sorted(uids) for code, uids in plan.pre_existing.items()} if fresh else {}
            self.ledger.write(
                "begin", run=self.run_id, tag=plan.run_tag, data_set=plan.data_set_key,
                events=plan.event_codes, loops=self.settings.loops, fresh=fresh, pre_existing=pre,
            )  # fmt: skip
        index = {plan.member(u.index): u.index for u in plan.uploads}
        for member, uid in plan.memory.uuids.items():
            if member in index:
                q.preset(index[member], uid)
                self.stages.accepted(index[member], uid, None, counted=False)
        for member, uid in plan.memory.present.items():  # a resumed --top-up keeps what was there
            if member in index:
                q.preset(index[member], uid, resumed=False, present=True)
                self.stages.accepted(index[member], uid, None, counted=False)
        for member in plan.memory.in_flight:
            if member in index and member not in plan.memory.uuids and member not in plan.memory.present:
                q.preset_doubt(index[member], self.started_at)
        for i, uid in plan.present.items():
            q.preset(i, uid, resumed=False, present=True)
            self.stages.accepted(i, uid, None, counted=False)
            self._write("present", i, uuid=uid)

    def clear_before(self) -> None:
        """Before the first upload: delete the copies the plan says go (--fresh: every copy of the data set
        the event held; otherwise copies beyond the one wanted). Never an image that is not the data set's."""
        for code, uuids in self.plan.remove.items():
            for uid in uuids:
                status = self.client.delete_image(code, uid)
                if status in (200, 204, 404):
                    self.cleared += status != 404
                    self.readback.gone.add(uid)
                    if self.ledger is not None:
                        self.ledger.write("removed", "", uuid=uid, before=True)
                else:
                    self.copy_verdict["extra"].append(
                        f"{uid} (held before; DELETE answered {status or 'nothing'})"
                    )

    def _write(self, kind: str, index: int, **fields: object) -> None:
        if self.ledger is not None:
            self.ledger.write(kind, self.queue.entries[index].member, **fields)

    # --- what the coordinator tells it ------------------------------------------------------------
    def claimed(self, owner: str, indices: list[int], users: int) -> None:
        self.peak_users = max(self.peak_users, users)
        if self.ledger is not None:  # one line per grant: claims come in batches
            self.ledger.write_members("claim", [self.queue.entries[i].member for i in indices], owner=owner)
        if self.drained_at is None and self.queue.waiting == 0:
            self.drained_at = self.clock()

    def released(self, owner: str, indices: list[int] | None, maybe_sent: bool) -> list[int]:
        back = self.queue.release(owner, indices, maybe_sent, at=self.clock())
        if back and self.ledger is not None:
            members = [self.queue.entries[i].member for i in back]
            self.ledger.write_members("release", members, owner=owner, maybe_sent=maybe_sent)
        return back

    def result(self, owner: str, r: Result) -> str:
        now = self.clock()
        self.last_result_at = now
        if r.sent_at and (self.first_sent_at is None or r.sent_at < self.first_sent_at):
            self.first_sent_at = r.sent_at
        q = self.queue
        e = q.entries[r.index]
        if r.ok:
            self.latencies.append(r.latency_ms)
            twin = self.owner_of.get(r.uuid)
            if twin is not None and twin != r.index and q.entries[twin].adopted:
                # That copy was adopted for a byte-identical twin; this 202 says whose it is.
                q.unadopt(twin, now)
                self.stages.drop(twin)
                self._write("lost", twin, uuid=r.uuid, why="adopted for its twin by mistake")
        self.readback.answered(r.status, r.answered_at, refused="refused" in r.error.lower())
        unknown = self.policy.outcome_unknown(r)
        retry_in = None
        if not r.ok and not unknown:
            retry_in = self.policy.next_try_in(r, e.attempts + 1, e.failing_since, now)
        had_uuid = e.uuid
        state = q.report(owner, r, retry_in, unknown)
        if r.ok:
            self.owner_of[r.uuid] = r.index
        self._write(
            "result",
            r.index,
            ok=r.ok,
            uuid=r.uuid,
            status=r.status,
            unknown=unknown,
            final=state == State.FAILED,
        )
        if r.ok and state == State.ACCEPTED and e.uuid == r.uuid and not had_uuid:
            self.stages.accepted(r.index, r.uuid, r.answered_at)
            if not e.repairs:
                self.first_accepts.append(r.answered_at)
            self.accepted_by[r.index] = owner
            self.backlog.accepted(r.answered_at if r.sent_at else now)
        return state

    def record_usage(self, owner: str, usage: tuple[float, float]) -> None:
        self.usage[owner] = (float(usage[0]), float(usage[1]))

    def grant_limit(self) -> int | None:
        """How many more images may be handed out now (None: no bound)."""
        return self.backlog.room(self.queue.count(State.CLAIMED), self.queue.waiting)

    @property
    def held_back_s(self) -> float:
        return self.backlog.held_back_s

    # --- the read-back ----------------------------------------------------------------------------
    def codes_to_read(self) -> list[str]:
        """The events with an image not yet at its end stage (nothing to read once all are)."""
        codes: list[str] = []
        for i, e in enumerate(self.queue.entries):
            if e.state in (State.DOUBT,) or (e.state == State.ACCEPTED and not self.at_end_stage(i)):
                code = self.plan.uploads[i].event_code
                if code not in codes:
                    codes.append(code)
        return codes

    def poll(self) -> Observation:
        """One look at the event(s); applies what it decided to the queue and the ledger."""
        codes = self.codes_to_read()
        if not codes or not self.settings.verify:
            return Observation(ok=True)
        obs = self.readback.poll(codes)
        now = self.clock()
        q = self.queue
        for i, uid in obs.adopt:
            at = q.entries[i].doubt_since or now
            q.adopt(i, uid, at)
            self.owner_of[uid] = i
            self.stages.accepted(i, uid, at)
            item = self.readback.listed[uid]
            self.stages.seen(
                i, uid, item.faces, self.readback.last_look or now, now, item.created, item.faces_written,
                self.client.clock.offset,
            )  # fmt: skip
            self._write("adopt", i, uuid=uid)
        lost_since = min((q.entries[i].accepted_at or now for i, _ in obs.lost), default=now)
        for i, uid in obs.lost:
            self._write("lost", i, uuid=uid)
            self.lost_ever.append(i)
            self.stages.drop(i)
            q.reopen(i)
        for i, uid in obs.reprocess:
            # Stranded at 0 faces by a Kanta that went away: its copy goes, and it is uploaded again.
            status = self.client.delete_image(self.plan.uploads[i].event_code, uid)
            if status in (200, 204, 404):
                self.readback.gone.add(uid)
                self._write("removed", i, uuid=uid, why="stranded at 0 faces by an outage")
            self._write("lost", i, uuid=uid, why="stranded at 0 faces by an outage")
            self.stages.drop(i)
            q.reopen(i)
            self.reprocessed += 1
        for i in obs.resend:
            e = q.entries[i]
            if e.failing_since is not None and now - e.failing_since > self.settings.retry_for:
                q.give_up(i)
                self._write("result", i, ok=False, status=0, unknown=True, final=True)
            else:
                q.resend(i)
                self.resent += 1
        self.after_poll(len(obs.lost), lost_since)
        return obs

    def after_poll(self, lost: int, lost_since: float | None = None) -> None:
        """After a poll: the backlog bound learns what the pipeline holds, how fast it drains, and how long
        an image takes through it now (the lags of the images this poll saw processed)."""
        accepted = [i for i, e in enumerate(self.queue.entries) if e.state == State.ACCEPTED]
        done = [i for i in accepted if self.readback.processed(i)]
        lags = []
        for i in done:
            s = self.stages.stages.get(i)
            if s is None or not s.counted or s.faceless or i in self._timed:
                continue
            if s.accepted_at is not None and s.processed_at is not None:
                lags.append(max(0.0, s.processed_at - s.accepted_at))
                self._timed.add(i)
        lag = sorted(lags)[len(lags) // 2] if lags else None
        self.backlog.observed(len(accepted) - len(done), len(done), lost, lost_since, lag)

    def probe_clock(self) -> None:
        """Narrow Kanta's clock offset: a cheap GET /system/health at a random phase of the second, while
        the offset is known less well than CLOCK_GOAL_S (each answer's Date header bounds it)."""
        now = self.clock()
        if (
            self.client.clock.uncertainty <= CLOCK_GOAL_S
            or now < self._next_probe
            or self._probes >= CLOCK_PROBES
        ):
            return
        self._next_probe = now + CLOCK_PROBE_S * (0.5 + random.random())  # a random phase of the second
        self._probes += 1
        self.client.health()

    def at_end_stage(self, index: int) -> bool:
        return self.readback.at_stage(index, self.settings.wait_stage)

    def done(self) -> bool:
        """Every image failed or at the run's end stage."""
        q = self.queue
        return q.complete and all(
            e.state == State.FAILED or self.at_end_stage(i) for i, e in enumerate(q.entries)
        )

    def stall(self) -> str | None:
        """Why the run cannot get further, or None while it can."""
        if not self.settings.verify:
            return None
        now, rb = self.clock(), self.readback
        down_after = max(DOWN_AFTER_MIN_S, self.settings.retry_for)
        why = None
        garbled = self.client.list_problem == GARBLED
        if garbled and rb.unreadable_since is not None and now - rb.unreadable_since > GARBLED_AFTER_S:
            why = f"Kanta at {self.settings.host} answers GET /pics with {GARBLED}, for {GARBLED_AFTER_S:g} s"
        elif rb.unreadable and now - (rb.last_good_at or self.started_at) > down_after:
            why = f"Kanta at {self.settings.host} stopped answering (no readable list for {down_after:g} s)"
        elif now - max(rb.last_change_at, self.last_result_at) > self.settings.verify_timeout:
            why = f"nothing changed on the server for {self.settings.verify_timeout:g} s"
        if why is None:
            return None
        left = sum(
            1
            for i, e in enumerate(self.queue.entries)
            if e.state != State.FAILED and not self.at_end_stage(i)
        )
        again = (
            "rerun the same command to resume"
            if self.ledger is not None
            else "a rerun starts over (no ledger)"
        )
        return f"{why}; {left} images unverified; {again}"

    # --- the end ------------------------------------------------------------------------------------
    def reconcile(self) -> None:
        """Exactly once, proved by content: each image keeps one copy, extra copies this run made are
        removed, and what is missing or unproven is named. Images the event held before are never
        touched."""
        q, rb = self.queue, self.readback
        owner = {u: i for i, e in enumerate(q.entries) for u in e.uuids}
        for code in self.plan.event_codes:
            listing: dict = {}
            for _ in range(2):  # two reads: one page walk can skip an item whose place moved
                got = self.client.list_event(code)
                if got is None:
                    self.copy_verdict["unproven"].append(f"event {code}: its list could not be read")
                    break
                listing.update(got)
            pre = rb.pre_existing.get(code, set())
            members = {
                i: self.plan.digest(i)
                for i, e in enumerate(q.entries)
                if self.plan.uploads[i].event_code == code and not e.present
            }
            copies = []
            for uid, item in listing.items():
                if uid in pre:
                    continue
                named = owner.get(uid)
                digest = None
                if named is None:
                    while rb._needs_read(uid):
                        rb._read(uid, item)
                    digest = rb.digests.get(uid)
                copies.append(Copy(uid, digest, named))
            chosen = {i: e.uuid for i, e in enumerate(q.entries) if e.uuid}
            verdict = reconcile(members, copies, chosen)
            now = self.clock()
            for i, uid in verdict.keep.items():
                e = q.entries[i]
                if i in verdict.adopt or e.uuid != uid:
                    q.adopt(i, uid, e.doubt_since or now)
                    self.stages.accepted(i, uid, e.doubt_since or now, counted=not e.resumed)
                    self._write("adopt", i, uuid=uid)
                rb.listed.setdefault(uid, listing[uid])
                item = listing[uid]
                self.stages.seen(
                    i, uid, item.faces, rb.last_look or now, now, item.created, item.faces_written,
                    self.client.clock.offset,
                )  # fmt: skip
            for uid in verdict.surplus:
                named = owner.get(uid)
                name = (
                    q.entries[named].member
                    if named is not None
                    else self._member_of_digest(rb.digests.get(uid))
                )
                if self.settings.keep_extra_copies:
                    self.copy_verdict["extra"].append(f"{name} ({uid})")
                    continue
                status = self.client.delete_image(code, uid)
                if status in (200, 204, 404):
                    self.removed += status != 404
                    rb.gone.add(uid)
                    if self.ledger is not None:
                        self.ledger.write("removed", name, uuid=uid)
                else:
                    self.copy_verdict["extra"].append(
                        f"{name} ({uid}, DELETE answered {status or 'nothing'})"
                    )
            accepted_missing = [i for i in verdict.missing if q.entries[i].state == State.ACCEPTED]
            self.copy_verdict["missing"] += [q.entries[i].member for i in accepted_missing]
            self.copy_verdict["unproven"] += verdict.unproven
            self.copy_verdict["foreign"] += verdict.foreign

    def _member_of_digest(self, digest: str | None) -> str:
        for i, _ in enumerate(self.plan.dataset.images):
            if self.plan.digest(i) == digest:
                return self.plan.dataset.images[i].member
        return "?"

    def check_ground_truth(self) -> None:
        """A generated event (``kanta-seed make-event``) knows where its faces are: Kanta's detected faces
        (GET /pics/{uuid}: bbox, cluster_id) matched to them by box overlap give its detection recall, and
        the clusters' purity and adjusted Rand index over the faces of all the photos."""
        truth_file = Path(self.plan.dataset.source) / GROUND_TRUTH
        if not truth_file.is_file():
            return
        try:
            truth = json.loads(truth_file.read_text())
        except (OSError, ValueError) as problem:
            log.warning("kanta-seed: %s is not readable (%s): no detection recall", truth_file, problem)
            return
        detections: dict[str, list[dict[str, Any]]] = {}
        for e in self.queue.entries:
            name = PurePosixPath(e.member.split("@pass")[0]).name
            if e.state == State.ACCEPTED and name in truth and name not in detections:
                faces = self.client.image_faces(e.uuid)
                if faces is not None:
                    detections[name] = faces
        self.ground_truth = ground_truth.score(truth, detections)
        self.ground_truth["file"] = str(truth_file)

    def look_for_clusters(self, sleep: Callable[[float], None]) -> None:
        """Wait up to --wait-clusters for Kanta's clustering job, then compare clusters with subjects."""
        s = self.settings
        if s.wait_clusters <= 0:
            return
        clusters = self.clusters = Clusters()
        deadline = self.clock() + s.wait_clusters
        codes = self.plan.event_codes
        while True:
            listed = [self.client.clusters(code) for code in codes]
            real = [c for group in listed if group for c in group if int(c.get("cluster_id", -1)) >= 0]
            if real:
                break
            if self.clock() >= deadline:
                clusters.waited_s = round(s.wait_clusters, 1)
                clusters.note = (
                    f"none after waiting {s.wait_clusters:g} s (Kanta clusters in a separate scheduled job;"
                    " its docker-compose does not start it)"
                )
                return
            sleep(min(CLUSTER_POLL_S, max(0.0, deadline - self.clock())))
        clusters.waited_s = round(s.wait_clusters - max(0.0, deadline - self.clock()), 1)
        pattern = re.compile(s.subject_pattern)
        labels: list[int] = []
        subjects: list[str] = []
        for i, e in enumerate(self.queue.entries):
            stage = self.stages.stages.get(i)
            if e.state != State.ACCEPTED or stage is None or stage.faces <= 0:
                continue
            ids = self.client.image_clusters(e.uuid)
            subject = subject_of(e.member, pattern)
            for cid in ids or []:
                if cid >= 0 and subject is not None:
                    labels.append(cid)
                    subjects.append(subject)
                clusters.noise += cid == -1
                clusters.unclustered += cid <= -2
        clusters.found = bool(labels)
        clusters.count = len(set(labels))
        clusters.faces = len(labels)
        if labels:
            clusters.purity = round(purity(labels, subjects), 4)
            clusters.ari = round(adjusted_rand_index(labels, subjects), 4)
        else:
            clusters.note = (
                "clusters exist, but no face of this run names its subject in its path"
                " (a generated event: see the truth row)"
            )

    def end(self) -> None:
        """The run is over: no more holding back, the clock stops (the summary is built from here)."""
        self.backlog.stop()
        self.finished = True
        self.ended_at = self.ended_at or self.clock()

    def close(self, summary: Summary) -> None:
        """Keep the run's summary and close the ledger with its verdict."""
        self.summary = summary
        if self.ledger is not None:
            self.ledger.write(
                "end", run=self.run_id, complete=summary.exit_code in (0, 3), result=summary.result
            )
            self.ledger.close()
