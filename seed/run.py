"""One run on the coordinating process (the local process, or the master): it owns the plan, the queue,
the ledger, the read-back, the stage times and the timeline, and it says what happened.

The ``Coordinator`` (``cluster.py``) calls it as things happen (claimed, released, result); the
driver (``driver.py``) polls it (``poll``), asks whether it is done or stalled, and finishes it
(``finish`` -> ``Summary``). It never calls back up into either, and holds no Locust object: its
only I/O is the ledger file and the ``KantaClient`` it is given.
"""

from __future__ import annotations

import logging
import platform
import re
import time
import uuid as uuidlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from locust import __version__ as locust_version

from . import __version__, checks, kanta
from .client import GARBLED, KantaClient
from .clusters import adjusted_rand_index, purity, subject_of
from .content import Copy, reconcile
from .figures import percentile, rate
from .ledger import Ledger
from .preflight import Plan
from .readback import Observation, Readback
from .retry import RetryPolicy
from .stages import StageBook
from .summary import Clusters, Faces, Latency, Summary
from .work import Result, WorkQueue

STEADY_MIN_S = 1.0  # a steady window shorter than this is noise: no steady rate
STEADY_MIN_UPLOADS = 20
DOWN_AFTER_MIN_S = 10.0  # the read-back gives up on a silent Kanta after max(this, --retry-for)
GARBLED_AFTER_S = 15.0  # ... and on one that answers with what is not its list after this long
CLUSTER_POLL_S = 5.0
BACKLOG_FLOOR = 10  # the adaptive backlog bound never goes below this

log = logging.getLogger("kanta_seed")


@dataclass
class RunParams:
    """What Locust was asked for: for the summary, and for comparing with a baseline."""

    users: int = 0
    spawn_rate: float = 0.0
    run_time: float | None = None


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
        self.event_outcome = "not made sure of"
        self.usage: dict[str, tuple[float, float]] = {}  # process -> (CPU s, peak RSS MB)
        self.peak_users = 0
        self.queue = WorkQueue([plan.member(u.index) for u in plan.uploads])
        self.policy = policy or RetryPolicy(max_attempts=s.max_attempts, retry_for_s=s.retry_for)
        self.stages = StageBook()
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
        self.held_back_s = 0.0
        self._held_since: float | None = None
        # --max-backlog, halved each time Kanta drops an accepted upload anyway (its pipeline is slower
        # than the bound assumed), grown back by a tenth at each poll without a loss.
        self.backlog_limit = s.max_backlog
        self._unlisted_at_poll = 0  # accepted, not yet listed, at the last poll ...
        self._accepted_since_poll = 0  # ... plus what was accepted since: the backlog now, in O(1)
        self.resent = 0  # images in doubt sent again because the event did not hold them
        self.lost_ever: list[int] = []
        self.removed = 0
        self.copy_verdict: dict[str, list[str]] = {"extra": [], "missing": [], "unproven": [], "foreign": []}
        self.clusters: Clusters | None = None
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
                "begin", run=self.run_id, tag=plan.run_tag, events=plan.event_codes,
                loops=self.settings.loops, fresh=fresh, pre_existing=pre,
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
        unknown = self.policy.outcome_unknown(r)
        retry_in = None
        if not r.ok and not unknown:
            retry_in = self.policy.next_try_in(r, e.attempts + 1, e.failing_since, now)
        had_uuid = e.uuid
        state = q.report(owner, r, retry_in, unknown)
        if r.ok:
            self.owner_of[r.uuid] = r.index
        self._write(
            "result", r.index, ok=r.ok, uuid=r.uuid, status=r.status, unknown=unknown, final=state == "failed"
        )
        if r.ok and state == "accepted" and e.uuid == r.uuid and not had_uuid:
            self.stages.accepted(r.index, r.uuid, r.answered_at)
            if not e.repairs:
                self.first_accepts.append(r.answered_at)
            self.accepted_by[r.index] = owner
            self._accepted_since_poll += 1
        return state

    def record_usage(self, owner: str, usage: tuple[float, float]) -> None:
        self.usage[owner] = (float(usage[0]), float(usage[1]))

    def grant_limit(self) -> int | None:
        """How many more images may be handed out now (None: no bound). --max-backlog bounds the images
        accepted but not yet listed, plus those in flight that may become so."""
        s = self.settings
        if not s.verify or s.max_backlog <= 0:
            return None
        unlisted = self._unlisted_at_poll + self._accepted_since_poll
        limit = self.backlog_limit - unlisted - self.queue.count("claimed")
        self._hold(limit <= 0 and self.queue.waiting > 0)
        return max(0, limit)

    def _hold(self, holding: bool) -> None:
        now = self.clock()
        if holding and self._held_since is None:
            self._held_since = now
        elif not holding and self._held_since is not None:
            self.held_back_s += now - self._held_since
            self._held_since = None

    # --- the read-back ----------------------------------------------------------------------------
    def codes_to_read(self) -> list[str]:
        """The events with an image not yet at its end stage (nothing to read once all are)."""
        codes: list[str] = []
        for i, e in enumerate(self.queue.entries):
            if e.state in ("doubt",) or (e.state == "accepted" and not self.at_end_stage(i)):
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
            self.readback.stages.seen(
                i, uid, self.readback.listed[uid].faces, self.readback.last_look or now, now
            )
            self._write("adopt", i, uuid=uid)
        for i, uid in obs.lost:
            self._write("lost", i, uuid=uid)
            self.lost_ever.append(i)
            self.stages.drop(i)
            q.reopen(i)
        for i in obs.resend:
            e = q.entries[i]
            if e.failing_since is not None and now - e.failing_since > self.settings.retry_for:
                q.give_up(i)
                self._write("result", i, ok=False, status=0, unknown=True, final=True)
            else:
                q.resend(i)
                self.resent += 1
        self.after_poll(len(obs.lost))
        self._hold(self._held_since is not None)  # keeps the held-back clock honest between grants
        return obs

    def after_poll(self, lost: int) -> None:
        """After a poll: the backlog as it saw it, and the bound adapted to what Kanta dropped."""
        self._unlisted_at_poll, self._accepted_since_poll = len(self.readback._unlisted()), 0
        s = self.settings
        if s.max_backlog <= 0:
            return
        if lost:
            limit = max(BACKLOG_FLOOR, self.backlog_limit // 2)
            if limit < self.backlog_limit:
                log.warning(
                    "kanta-seed: Kanta dropped %d accepted uploads (its pipeline could not drain them):"
                    " holding the backlog to %d images, from %d",
                    lost, limit, self.backlog_limit,
                )  # fmt: skip
            self.backlog_limit = limit
        elif self.backlog_limit < s.max_backlog:
            self.backlog_limit = min(s.max_backlog, self.backlog_limit + max(1, self.backlog_limit // 10))

    def at_end_stage(self, index: int) -> bool:
        stage = self.settings.wait_stage
        if stage == "accepted":
            return self.queue.entries[index].state == "accepted"
        if stage == "stored":
            return self.readback.stored(index)
        return self.readback.processed(index)

    def done(self) -> bool:
        """Every image failed or at the run's end stage."""
        q = self.queue
        return q.complete and all(
            e.state == "failed" or self.at_end_stage(i) for i, e in enumerate(q.entries)
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
            1 for i, e in enumerate(self.queue.entries) if e.state != "failed" and not self.at_end_stage(i)
        )
        return f"{why}; {left} images unverified; rerun the same command to resume"

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
                self.stages.seen(i, uid, listing[uid].faces, rb.last_look or now, now)
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
            accepted_missing = [i for i in verdict.missing if q.entries[i].state == "accepted"]
            self.copy_verdict["missing"] += [q.entries[i].member for i in accepted_missing]
            self.copy_verdict["unproven"] += verdict.unproven
            self.copy_verdict["foreign"] += verdict.foreign

    def _member_of_digest(self, digest: str | None) -> str:
        for i, _ in enumerate(self.plan.dataset.images):
            if self.plan.digest(i) == digest:
                return self.plan.dataset.images[i].member
        return "?"

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
            if e.state != "accepted" or stage is None or stage.faces <= 0:
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
            clusters.note = "clusters exist, but none of this run's faces is in one"

    def finish(self, reason: str, params: RunParams, stopped: bool = False, timed: bool = False) -> Summary:
        """Summarise the run once (later calls return the same summary) and close the ledger."""
        if self.summary is not None:
            return self.summary
        self._hold(False)
        self.finished = True
        self.ended_at = self.clock()
        summary = summarize(self, params, reason, stopped, timed)
        summary.regressions = gate(self, summary)
        summary.decide()
        self.summary = summary
        if self.ledger is not None:
            self.ledger.write(
                "end", run=self.run_id, complete=summary.exit_code in (0, 3), result=summary.result
            )
            self.ledger.close()
        return summary


# --- the summary -----------------------------------------------------------------------------------
def summarize(run: Run, params: RunParams, reason: str, stopped: bool, timed: bool) -> Summary:
    s, q, plan = run.settings, run.queue, run.plan
    entries = q.entries
    accepted = [i for i, e in enumerate(entries) if e.state == "accepted"]
    failed = [e for e in entries if e.state == "failed"]
    lat = sorted(run.latencies)
    firsts = sorted(run.first_accepts)
    start = run.first_sent_at
    upload_end = firsts[-1] if firsts else None
    steady = steady_window(firsts, run.spawned_at, run.drained_at)
    usage = run.usage
    cpu_s = sum(cpu for cpu, _ in usage.values())
    uploads_done = len(run.latencies)
    faceless = [entries[i].member for i in accepted if (st := run.stages.stages.get(i)) and st.faceless]
    with_faces = [i for i in accepted if (st := run.stages.stages.get(i)) and st.faces > 0]
    looked = [i for i in accepted if run.readback.processed(i)]
    verdict = run.copy_verdict
    doubtful = [e.member for e in entries if e.doubted]
    proof_possible = not verdict["unproven"]
    summary = Summary(
        event_code=s.event_code,
        events=plan.event_codes,
        host=s.host,
        host_kind=kanta.host_kind(s.host),
        data_set=plan.dataset.source,
        images=q.total,
        wait_for=s.wait_stage,
        event=run.event_outcome,
        skipped_members=len(plan.dataset.skipped),
        skipped=[{"member": k.member, "reason": k.reason} for k in plan.dataset.skipped],
        users=params.users,
        users_started=run.peak_users,
        spawn_rate=params.spawn_rate,
        processes=max(1, len([o for o in usage if o != "master"])),
        loops=s.loops,
        uploaded=len(accepted),
        failed=len(failed),
        failed_images=[
            {
                "member": e.member,
                "status": e.result.status if e.result else 0,
                "error": failure_text(e.result),
            }
            for e in failed
        ],
        failures_by_reason=dict(Counter(failure_reason(e.result) for e in failed)),
        not_attempted=sum(1 for e in entries if e.state in ("pending", "delayed") and not e.attempts),
        in_doubt=sum(1 for e in entries if e.state in ("doubt", "claimed")),
        attempts=sum(e.attempts for e in entries),
        retries=q.retries,
        fail_ratio=round(q.failed_attempts / max(1, sum(e.attempts for e in entries)), 4),
        rate_per_s=round(rate(len(firsts), start, upload_end), 2),
        upload_window_s=round(upload_end - start, 3)
        if start is not None and upload_end is not None
        else None,
        steady_rate_per_s=round(steady[0], 2) if steady else None,
        steady_window_s=round(steady[1], 3) if steady else None,
        latency_ms=Latency(*(round(percentile(lat, p), 1) for p in (50, 90, 95, 99)), max=round(lat[-1], 1))
        if lat
        else None,
        wall_s=round(max(0.0, (run.ended_at or run.clock()) - run.started_at), 3),
        uploads_per_worker=dict(sorted(Counter(run.accepted_by.values()).items())),
        stopped_early=stopped,
        stop_reason=reason if stopped else "",
        timed=timed,
        resumed=sum(1 for e in entries if e.resumed),
        present=sum(1 for e in entries if e.present),
        verify=s.verify,
        verified=sum(1 for i in accepted if run.readback.stored(i)),
        processed=len(looked),
        repaired=sum(e.repairs for e in entries),
        resent=run.resent,
        # Lost means "looked for and not there": only a read-back that ran its course can say so.
        lost=[entries[i].member for i in accepted if s.verify and not run.readback.stored(i)]
        if run.readback.polls and not stopped and not timed and not run.error
        else [],
        adopted=[e.member for e in entries if e.adopted],
        removed=run.removed,
        extra_copies=verdict["extra"],
        missing=verdict["missing"],
        unproven=verdict["unproven"],
        possible_duplicates=doubtful if not proof_possible else [],
        drain_s=None,
        faces=Faces(
            images_with_faces=len(with_faces),
            images_without=len(faceless),
            total=sum(run.stages.stages[i].faces for i in with_faces),
            faceless=faceless,
        ),
        clusters=run.clusters,
        foreign_images=len(verdict["foreign"]),
        readback_polls=run.readback.polls,
        unreadable_polls=run.readback.unreadable,
        client_cpu_s=round(cpu_s, 3),
        cpu_s_per_1000_uploads=round(cpu_s / uploads_done * 1000, 3) if uploads_done and cpu_s else None,
        peak_rss_mb=round(max((rss for _, rss in usage.values()), default=0.0), 1),
        cpu_s_by_process={owner: round(cpu, 3) for owner, (cpu, _) in sorted(usage.items())},
        versions={"kanta-seed": __version__, "locust": locust_version, "python": platform.python_version()},
    )
    summary.error = run.error
    summary.pipeline = run.stages.figures(start, run.held_back_s)
    summary.drain_s = summary.pipeline.stored_s
    summary.proof = proof_text(run, summary)
    # An end that is not the plain one (a stall, a silent Kanta) is said; a stop is in the verdict.
    summary.notes = [n for n in (run.client.blob_note, "" if stopped or reason == run.error else reason) if n]
    return summary


def proof_text(run: Run, summary: Summary) -> str:
    if not run.settings.verify:
        return "none: --wait-for accepted trusts each 202 (Kanta may still drop an upload after it)"
    if summary.stopped_early or run.error:
        return ""
    if summary.unproven:
        return (
            f"not possible for {len(summary.unproven)} copies: their blobs could not be read"
            " (pass --blob-host HOST[:PORT]); possible duplicates are named instead"
        )
    if run.readback.digests:
        return f"by content: {len(run.readback.digests)} unnamed copies read and matched by sha256"
    return "by uuid: every image's 202 named its copy, and no other copy of ours is in the event"


def steady_window(
    firsts: list[float], spawned: float | None, drained: float | None
) -> tuple[float, float] | None:
    """202s per second between the end of the ramp-up and the first time the queue ran dry."""
    if spawned is None or drained is None or drained - spawned < STEADY_MIN_S:
        return None
    inside = sum(1 for t in firsts if spawned <= t <= drained)
    if inside < STEADY_MIN_UPLOADS:
        return None
    return inside / (drained - spawned), drained - spawned


def failure_reason(r: Result | None) -> str:
    if r is None:
        return "never answered"
    if r.status == 0:
        text = r.error.lower()
        if "refused" in text:
            return "connection refused"
        if "timed out" in text or "timeout" in text:
            return "timed out"
        return "no answer"
    return f"HTTP {r.status}"


def failure_text(r: Result | None) -> str:
    """One reason, said once: 'no answer: [Errno 111] Connection refused', '503 injected failure'."""
    if r is None:
        return "in doubt: its outcome could not be decided"
    if r.status == 0:
        detail = r.error.removeprefix("no answer: ").strip()
        return f"no answer ({detail})" if detail else "no answer"
    return f"{r.status} {r.error}".strip()


def gate(run: Run, summary: Summary) -> list[str]:
    """Breached checks and regressions against the baseline: each one a message, exit code 3."""
    s = run.settings
    figures = summary.to_dict()
    problems = checks.evaluate_checks(figures, s.checks)
    if s.baselines:
        try:
            baseline = checks.load_baselines(s.baselines)
        except checks.BaselineError as e:
            return [*problems, f"baseline: {e}"]
        differences = checks.comparable(figures, baseline)
        if differences and not s.force_compare:
            return [
                *problems,
                "baseline not comparable (pass --force-compare to compare anyway): " + "; ".join(differences),
            ]
        problems += checks.compare(figures, baseline, s.max_regression)
    return problems
