"""The end-of-run summary: one typed ``Summary``, and everything that shows it.

``rows()`` is the one list of (label, value) lines that the terminal (``render``), the Markdown
(``markdown``) and the web UI tab all show, so nothing re-parses rendered text. ``to_dict()`` is the
JSON of ``--summary-json`` (schema ``SCHEMA``), which ``checks.py`` reads back as a baseline.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from seed.core.exit_codes import EXIT_NOT_ALL, EXIT_OK, EXIT_REGRESSION, RESULTS
from seed.core.words import counted, shorten

SCHEMA = 2  # bump when a field changes meaning; a baseline of another schema is refused


@dataclass
class Latency:
    p50: float
    p90: float
    p95: float
    p99: float
    max: float


@dataclass
class Pipeline:
    """Kanta's pipeline, from the first upload sent (seconds): how fast images became usable."""

    accepted_s: float | None = None  # the last image's 202
    stored_s: float | None = None  # the last image first listed by GET /pics
    processed_s: float | None = None  # the last image with its faces detected (or settled faceless)
    processed_per_s: float | None = None  # steady: images processed per s between the 10th and 90th %
    backlog_peak: int = 0  # the most images accepted but not yet processed at one look
    held_back_s: float = 0.0  # how long --max-backlog held the users back
    lag_s: dict[str, dict[str, float] | None] = field(default_factory=dict)  # stage -> p50/p95/p99/max
    # [[images in the event, images processed/s], ...] over slices of the run: Kanta slows as events grow
    rate_by_size: list[list[float]] = field(default_factory=list)


@dataclass
class Faces:
    images_with_faces: int = 0
    images_without: int = 0
    total: int = 0  # faces counted over the images
    faceless: list[str] = field(default_factory=list)
    expected: int = 0  # images that should get a face (expected.face_rule)
    least: int = 0  # of those, how many must, for the run to pass
    rule: str = ""  # the rule, as said ("" when the run did not wait for faces, or a check replaces it)

    def too_few(self) -> bool:
        """Far fewer faces than the data set should have: face detection is broken, the images unusable."""
        return bool(self.rule) and self.images_with_faces < self.least


@dataclass
class Clusters:
    waited_s: float = 0.0
    found: bool = False  # real clusters (cluster_id >= 0) exist for the event
    count: int = 0
    faces: int = 0  # faces in real clusters (noise and unclustered left out)
    noise: int = 0
    unclustered: int = 0
    purity: float | None = None
    ari: float | None = None
    note: str = ""


@dataclass
class Summary:
    event_code: str
    events: list[str]
    host: str
    host_kind: str
    data_set: str
    images: int
    wait_for: str
    schema: int = SCHEMA
    result: str = "pass"
    exit_code: int = EXIT_OK
    event: str = ""  # created | already existed | failed: ...
    skipped_members: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)  # member, reason
    users: int = 0
    users_started: int = 0
    spawn_rate: float = 0.0
    processes: int = 1
    loops: int = 1
    mode: str = "seed"  # seed (converge to the data set exactly once) | bench (a new event per run)
    measured: bool = True  # this run uploaded something: its rate and latency are of those uploads
    again: str = ""  # what to do after a run that did not finish (only what is true of this run)
    work_ran_out: bool = False  # every image was handed out at some point (ramp-up advice needs it)
    cleared: int = 0  # copies of the data set the event held, deleted before the first upload
    # uploads
    uploaded: int = 0  # images with a 202 (or found by content) that counts
    failed: int = 0
    failed_images: list[dict[str, Any]] = field(default_factory=list)  # member, status, error
    failures_by_reason: dict[str, int] = field(default_factory=dict)
    not_attempted: int = 0
    in_doubt: int = 0  # sent, outcome undecided at the end (in flight at a stop): the next run decides
    attempts: int = 0
    retries: int = 0
    fail_ratio: float = 0.0
    rate_per_s: float | None = 0.0  # 202s per second over the upload window (None: nothing uploaded)
    upload_window_s: float | None = None
    steady_rate_per_s: float | None = None  # 202s per second between ramp-up's end and the queue's drain
    steady_window_s: float | None = None
    latency_ms: Latency | None = None  # None when no upload succeeded
    wall_s: float = 0.0
    uploads_per_worker: dict[str, int] = field(default_factory=dict)
    stopped_early: bool = False
    stop_reason: str = ""
    timed: bool = False
    resumed: int = 0
    present: int = 0  # --top-up: already in the event by content, not uploaded
    # what the read-back proved
    verify: bool = True
    verified: int = 0  # images seen stored (listed, or found by content)
    processed: int = 0
    repaired: int = 0
    reprocessed: int = 0  # left at 0 faces by a Kanta that went away: removed and uploaded again
    resent: int = 0  # images in doubt sent again: the event did not hold their bytes
    lost: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)  # found in the event by content after no answer
    removed: int = 0  # extra copies this run made and deleted
    extra_copies: list[str] = field(default_factory=list)  # left in the event (kept, or not removable)
    missing: list[str] = field(default_factory=list)  # no copy in the event at the end
    unproven: list[str] = field(default_factory=list)  # doubtful images whose blobs could not be read
    possible_duplicates: list[str] = field(default_factory=list)  # only when the proof was impossible
    proof: str = ""  # how exactly-once was established, or why it could not be
    drain_s: float | None = None  # = pipeline.stored_s (the name earlier summaries used)
    pipeline: Pipeline = field(default_factory=Pipeline)
    faces: Faces = field(default_factory=Faces)
    clusters: Clusters | None = None
    # a generated event (make-event): Kanta's faces against the known ones (core/ground_truth.score)
    ground_truth: dict[str, Any] | None = None
    foreign_images: int = 0
    held_before: int = 0  # images the event(s) held before the run that are no copy of the data set
    readback_polls: int = 0
    # what the read-back cost: list requests and rows, and Kanta's clock against ours
    readback: dict[str, float | int | None] = field(default_factory=dict)
    unreadable_polls: int = 0
    # the client
    client_cpu_s: float = 0.0
    cpu_s_per_1000_uploads: float | None = None
    peak_rss_mb: float = 0.0
    cpu_s_by_process: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    ledger: str = ""  # where the run recorded what it stored ("" : nowhere, e.g. a --standin run)
    error: str = ""  # kanta-seed itself failed (a bug): the run cannot vouch for anything
    regressions: list[str] = field(default_factory=list)
    baseline: str = ""  # --baseline: what it was compared with, and the outcome
    checks_asked: list[str] = field(default_factory=list)  # the --check-* this run was asked for (labels)
    baseline_verdicts: list[dict[str, Any]] = field(default_factory=list)  # per figure (core/gate.Verdict)
    baseline_runs: list[dict[str, Any]] = field(default_factory=list)  # the runs compared with
    # Per-upload and per-image figures (this run's): latency_ms, stored_lag_s, processed_lag_s,
    # processed_at_s. A regression gate judges noise from these, not from one percentile.
    samples: dict[str, list[float]] = field(default_factory=dict)
    # uuid -> [accepted, stored, processed] on our clock (epoch s; None where not reached): to check the
    # figures against what the server itself recorded
    stage_times: dict[str, list[float | None]] = field(default_factory=dict)

    # --- the verdict --------------------------------------------------------------------------------
    def complete(self) -> bool:
        """Every image at the run's end stage, exactly one copy of each in the event."""
        if self.error or self.extra_copies or self.missing:
            return False
        if not self.stopped_early and not self.timed and self.faces.too_few():
            return False
        if self.timed:
            return self.failed == 0 and not self.lost
        if self.stopped_early:
            return False
        return self.done() == self.images and self.failed == 0

    def done(self) -> int:
        """Images at the run's end stage (--wait-for)."""
        done = self.uploaded if self.wait_for == "accepted" else self.verified
        return min(done, self.processed) if self.wait_for == "faces" else done

    def decide(self) -> None:
        """Set exit_code and result from the figures (and the regressions found)."""
        if not self.complete():
            self.exit_code = EXIT_NOT_ALL
        else:
            self.exit_code = EXIT_REGRESSION if self.regressions else EXIT_OK
        self.result = "stopped" if self.stopped_early and not self.timed else RESULTS[self.exit_code]

    # --- what shows it ------------------------------------------------------------------------------
    def rows(self) -> list[tuple[str, str]]:
        """The summary as labelled lines, most important first."""
        out: list[tuple[str, str]] = [("result", self.verdict_text())]
        if self.events != [self.event_code]:  # --fresh-event: the pass events are the ones seeded
            named = (
                ", ".join(self.events) if len(self.events) <= 3 else f"{self.events[0]} .. {self.events[-1]}"
            )
            out.append(("event", f"{named} at {self.host} ({self.event or 'not made sure of'})"))
        else:
            out.append(("event", f"{self.event_code} at {self.host} ({self.event or 'not made sure of'})"))
        skipped = f", {counted(self.skipped_members, 'member')} skipped" if self.skipped_members else ""
        count = (
            f"{self.images // self.loops} images x {self.loops} passes"
            if self.loops > 1
            else f"{self.images} images"
        )
        out.append(("data set", f"{self.data_set} ({count}{skipped})"))
        out.append(("uploaded", self.uploaded_text()))
        if self.verify:
            out.append(("stored", self.stored_text()))
        if self.wait_for == "faces" or self.faces.images_with_faces:
            out.append(("faces", self.faces_text()))
        p = self.pipeline
        if self.verify and p.stored_s is not None:
            out.append(("pipeline", self.pipeline_text()))
        out.append(("rate", self.rate_text()))
        out.append(("latency", self.latency_text()))
        if self.cpu_s_per_1000_uploads is not None:
            out.append(
                (
                    "client",
                    f"{self.cpu_s_per_1000_uploads:.2f} CPU s per 1000 uploads, peak memory"
                    f" {self.peak_rss_mb:.0f} MB, {self.processes} process(es)",
                )
            )
        slowdown = self.slowdown_text()
        if slowdown:
            out.append(("slowdown", slowdown))
        if self.clusters is not None:
            out.append(("clusters", self.clusters_text()))
        if self.ground_truth:
            out.append(("truth", self.truth_text()))
        if len(self.uploads_per_worker) > 1:
            out.append(("per worker", ", ".join(f"{k}: {v}" for k, v in self.uploads_per_worker.items())))
        for label, names in (
            ("LOST", self.lost),
            ("MISSING", self.missing),
            ("EXTRA COPIES", self.extra_copies),
            ("UNPROVEN", self.unproven),
            ("possible duplicates", self.possible_duplicates),
        ):
            if names:
                out.append((label, f"{len(names)}: {shorten(names)}"))
        if self.failed:
            reasons = ", ".join(f"{n} {why}" for why, n in sorted(self.failures_by_reason.items()))
            out.append(
                ("FAILED", f"{self.failed} ({reasons}): {shorten([f['member'] for f in self.failed_images])}")
            )
        if self.proof:
            out.append(("proof", self.proof))
        if self.error:
            out.append(("ERROR", self.error))
        for note in self.notes:
            out.append(("note", note))
        if self.baseline:
            out.append(("baseline", self.baseline))
        for message in self.regressions:  # each one exits 3: a breached check, a regression, a baseline
            out.append((regression_label(message), message))
        return out

    def verdict_text(self) -> str:
        word = self.result.upper() if self.exit_code else self.result
        again = self.again or "rerun the same command to resume"
        not_all = (
            "the images are stored, but far fewer have faces than the data set should (see faces):"
            " is Kanta's face detection working?"
            if self.faces.too_few() and self.done() == self.images and not self.failed
            else f"not every image made it (see below); {again}"
        )
        why = {
            EXIT_OK: self.pass_text(),
            EXIT_NOT_ALL: not_all,
            EXIT_REGRESSION: "every image made it, but a check or the baseline failed",
        }[self.exit_code]
        if self.stopped_early and not self.timed:
            why = f"{self.stop_reason or 'stopped'}; {again}"
        elif self.held_before and self.exit_code != EXIT_NOT_ALL:
            why += f"; the event also holds {self.held_before} images from before the run, untouched"
        return f"{word} (exit {self.exit_code}): {why}"

    def pass_text(self) -> str:
        """What a pass means for this run: no more than it checked."""
        if self.timed:
            stage = {"accepted": "accepted", "stored": "stored"}.get(self.wait_for, "processed")
            return f"timed run (--run-time): {self.done()} of {self.images} {stage} in the time, none failed"
        if not self.verify:
            return (
                "every image was accepted (202) once; not read back (--wait-for accepted): not proven stored"
            )
        times = f" {self.loops} times" if self.loops > 1 and self.mode == "seed" else ""
        if not self.measured:
            return (
                f"every image is where it should be, exactly once{times}; nothing uploaded (nothing measured)"
            )
        return f"every image is where it should be, exactly once{times}"

    @property
    def already(self) -> int:
        """Images that were in the event before this run (by the ledger, or found by content)."""
        return self.resumed + self.present

    def uploaded_text(self) -> str:
        now = self.uploaded - self.already
        parts = [f"{now} ({self.already} already there)" if self.already else f"{now}/{self.images}"]
        if self.cleared:
            parts.append(
                f"{self.cleared} copies removed first ({'--fresh' if self.mode == 'seed' else 'reset'})"
            )
        if self.failed:
            parts.append(f"failed {self.failed}")
        if self.not_attempted:
            parts.append(f"not attempted {self.not_attempted}")
        if self.in_doubt:
            parts.append(f"{self.in_doubt} maybe sent (the next run decides by content)")
        if self.retries:
            parts.append(f"retries {self.retries}")
        if self.timed:
            parts.append("timed run: ended by --run-time")
        return ", ".join(parts)

    def stored_text(self) -> str:
        if not self.readback_polls:
            return "not read back (the run ended first)"
        parts = [f"{self.verified}/{self.images} verified on the server"]
        if self.repaired:
            parts.append(f"repaired {self.repaired}")
        if self.reprocessed:
            parts.append(f"{self.reprocessed} processed again after Kanta went away (left at 0 faces)")
        if self.resent:
            parts.append(f"{self.resent} sent again after no answer (not in the event)")
        if self.adopted:
            parts.append(f"{len(self.adopted)} found by content after no answer")
        if self.removed:
            parts.append(f"{self.removed} extra copies removed")
        if self.foreign_images:
            parts.append(f"{self.foreign_images} other images in the event, untouched")
        return ", ".join(parts)

    def faces_text(self) -> str:
        f = self.faces
        if self.wait_for != "faces":  # not waited for: what the last look saw, not a verdict
            return (
                f"{f.images_with_faces} of {self.images} images had faces at the last look ({f.total} faces);"
                " faces were not waited for (--wait-for faces does)"
            )
        seen = f.images_with_faces + f.images_without
        text = (
            f"{f.images_with_faces}/{seen} images with faces ({f.total} faces)"
            if seen == self.images
            else f"{f.images_with_faces} of the {seen} images processed had faces ({f.total} faces)"
        )
        if f.faceless:
            text += f"; none found in {len(f.faceless)}: {shorten(f.faceless)}"
        if f.rule:
            verdict = "TOO FEW" if f.too_few() else "enough"
            text += f"; {verdict}: {f.least} of the {f.expected} expected to have a face need one ({f.rule})"
        return text

    def pipeline_text(self) -> str:
        p = self.pipeline

        def s(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f} s"

        def stage(name: str, count: int, v: float | None) -> str:
            # A run that did not finish: the last of each stage is of fewer images, so say how many.
            return f"{name} {s(v)}" if count >= self.images else f"{name} {count} by {s(v)}"

        text = (
            f"{stage('accepted', self.uploaded, p.accepted_s)}, {stage('stored', self.verified, p.stored_s)},"
            f" {stage('processed', self.processed, p.processed_s)} after the first upload"
        )
        if p.processed_per_s:
            text += f"; {p.processed_per_s:.1f} images processed/s (steady)"
        text += f"; backlog peak {p.backlog_peak}"
        if p.held_back_s >= 0.05:
            text += f", held back {p.held_back_s:.1f} s by --max-backlog"
        return text

    def slowdown_text(self) -> str:
        """Kanta's processing rate as the event grew, when it fell by a third or more."""
        by_size = self.pipeline.rate_by_size
        if len(by_size) < 3:
            return ""
        first, last = by_size[0][1], by_size[-1][1]
        if last > first * 2 / 3:
            return ""
        past = int(by_size[-2][0])
        return (
            f"Kanta processed {first:.1f} images/s at first and {last:.1f}/s past {past:,} images in the"
            f" event ({first / last:.1f}x slower: every request loads the whole event)"
        )

    def rate_text(self) -> str:
        if self.rate_per_s is None:
            return (
                f"nothing measured: this run uploaded nothing ({self.already} already there),"
                f" wall {self.wall_s:.1f} s"
            )
        window = f" over {self.upload_window_s:.1f} s" if self.upload_window_s else ""
        text = f"{self.rate_per_s:.1f} uploads/s (202s){window} with {users_text(self)}"
        text += f", wall {self.wall_s:.1f} s"
        if self.steady_rate_per_s is not None and self.steady_window_s:
            text += f"; steady {self.steady_rate_per_s:.1f}/s over {self.steady_window_s:.1f} s"
        return text

    def latency_text(self) -> str:
        lat = self.latency_ms
        if lat is None:
            return "n/a (nothing was uploaded)" if not self.attempts else "n/a (no upload succeeded)"
        return (
            f"p50 {lat.p50:.0f} ms, p90 {lat.p90:.0f} ms, p95 {lat.p95:.0f} ms, p99 {lat.p99:.0f} ms,"
            f" max {lat.max:.0f} ms"
        )

    def truth_text(self) -> str:
        g = self.ground_truth or {}
        recall = g.get("recall")
        text = (
            f"detection recall {recall:.3f}: {g.get('matched')} of {g.get('placed')} faces placed were found"
            if recall is not None
            else "no faces placed"
        )
        if g.get("unmatched_detections"):
            text += f", {g['unmatched_detections']} detections matched none"
        if g.get("purity") is not None:
            text += (
                f"; clusters purity {g['purity']:.3f}, adjusted Rand index {g['ari']:.3f} over"
                f" {g.get('clustered')} faces in {g.get('clusters')} clusters"
            )
        else:
            text += "; not clustered yet (--wait-clusters S waits for Kanta's clustering job)"
        return text

    def clusters_text(self) -> str:
        c = self.clusters
        assert c is not None
        if not c.found:
            return c.note or f"none after waiting {c.waited_s:.0f} s"
        return (
            f"{c.count} clusters over {c.faces} faces, purity {c.purity:.3f}, adjusted Rand index"
            f" {c.ari:.3f}" + (f" ({c.note})" if c.note else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def users_text(s: Summary) -> str:
    started = s.users_started or s.users
    if started >= s.users:
        return f"{s.users} users"
    if s.work_ran_out and not s.stopped_early:
        return f"{s.users} users ({started} had started when the work ran out; raise -r to ramp up faster)"
    return f"{s.users} users ({started} had started)"


def regression_label(message: str) -> str:
    """The row label of a problem that exits 3, from the prefix the gate gives it."""
    if message.startswith("check-"):
        return "CHECK FAILED"
    return "BASELINE" if message.startswith("baseline") else "REGRESSION"


LABEL_WIDTH = 11


def render(summary: Summary) -> str:
    """The terminal summary: a title and one aligned line per row (a long label just takes a space)."""
    lines = ["kanta-seed summary"]
    lines += [f"  {label:<{LABEL_WIDTH - 1}} {value}" for label, value in summary.rows()]
    return "\n".join(lines)


def markdown(summary: Summary) -> str:
    """The summary for a CI job page ($GITHUB_STEP_SUMMARY): the verdict first, then the failed checks and
    the regressions against the baseline, each apart, then the table of every row."""
    lines = ["### kanta-seed", "", f"**{summary.verdict_text()}**", ""]
    failed_checks = [m for m in summary.regressions if m.startswith("check-")]
    regressed = [m for m in summary.regressions if not m.startswith("check-")]
    if summary.checks_asked:
        lines.append(
            f"Checks: {len(summary.checks_asked) - len(failed_checks)} of {len(summary.checks_asked)} passed"
            + ("" if not failed_checks else "; failed:")
        )
        lines += [f"- {m}" for m in failed_checks]
        lines.append("")
    if summary.baseline:
        lines.append(f"Baseline: {summary.baseline}" + (":" if regressed else ""))
        lines += [f"- {m}" for m in regressed]
        lines.append("")
    lines += ["| figure | value |", "| --- | --- |"]
    lines += [f"| {label} | {value.replace('|', '/')} |" for label, value in summary.rows()]
    return "\n".join(lines) + "\n"


def write_text(path: str, text: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def write_json(summary: Summary, path: str) -> None:
    write_text(path, json.dumps(summary.to_dict(), indent=2) + "\n")
