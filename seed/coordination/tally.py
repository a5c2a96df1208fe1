"""A finished run, told: its figures as a typed ``Summary``, the checks and baseline gate, the verdict.

Reads a ``Run`` (``run.py``) and nothing else; the driver calls it once, when the run has ended.
"""

from __future__ import annotations

import platform
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from locust import __version__ as locust_version

from seed import __version__
from seed.coordination import checks
from seed.coordination.coordinator import NOT_SENT
from seed.coordination.options import Settings
from seed.coordination.run import Run
from seed.core import gate
from seed.core.expected import face_rule
from seed.core.figures import percentile, rate
from seed.core.summary import Faces, Latency, Summary
from seed.core.words import counted
from seed.core.work import Result, State
from seed.kanta import contract as kanta

MIN_HISTORY_RUNS = 3  # a --history baseline judges once it holds this many runs of the kind
STEADY_MIN_S = 1.0  # a steady window shorter than this is noise: no steady rate
STEADY_MIN_UPLOADS = 20


@dataclass
class RunParams:
    """What Locust was asked for: for the summary, and for comparing with a baseline."""

    users: int = 0
    spawn_rate: float = 0.0
    run_time: float | None = None
    headless: bool = True  # where the advice after a stop points: a rerun, or the web UI's NEW


def tally(run: Run, params: RunParams, reason: str, stopped: bool = False, timed: bool = False) -> Summary:
    """The summary of an ended run, its checks and baseline applied, its exit code decided."""
    summary = summarize(run, params, reason, stopped, timed)
    summary.regressions, verdicts, note = judge(run, summary)
    summary.baseline_verdicts = [v.to_dict() for v in verdicts]
    summary.baseline = baseline_text(run.settings, summary, verdicts, note)
    summary.decide()
    return summary


def again_text(run: Run, params: RunParams) -> str:
    """What to do after a run that did not finish: only what is true of this run."""
    if run.settings.mode == "bench":
        return "a rerun measures again, in new events"
    if run.plan.ledger_path is not None:
        return "rerun the same command to resume" if params.headless else "NEW resumes where it stopped"
    if params.headless:
        return "no ledger was kept (a --standin server ends with its process), so a rerun starts over"
    return "NEW resumes where it stopped (this process remembers what it stored)"


def summarize(run: Run, params: RunParams, reason: str, stopped: bool, timed: bool) -> Summary:
    s, q, plan = run.settings, run.queue, run.plan
    entries = q.entries
    accepted = [i for i, e in enumerate(entries) if e.state == State.ACCEPTED]
    failed = [e for e in entries if e.state == State.FAILED]
    lat = sorted(run.latencies)
    firsts = sorted(run.first_accepts)
    start = run.first_sent_at
    upload_end = firsts[-1] if firsts else None
    steady = steady_window(firsts, run.spawned_at, run.drained_at)
    usage = run.usage
    cpu_s = sum(cpu for cpu, _ in usage.values())
    uploads_done = len(run.latencies)
    measured = bool(run.first_accepts)  # this run's own uploads: the figures are of those
    rule = face_rule(img.member for img in plan.dataset.images)
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
        event=f"failed: {run.event_outcome}" if run.event_failed else run.event_outcome,
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
        not_attempted=sum(1 for e in entries if e.state in (State.PENDING, State.DELAYED) and not e.attempts),
        in_doubt=sum(1 for e in entries if e.state in (State.DOUBT, State.CLAIMED)),
        attempts=sum(e.attempts for e in entries),
        retries=q.retries,
        fail_ratio=round(q.failed_attempts / max(1, sum(e.attempts for e in entries)), 4),
        rate_per_s=round(rate(len(firsts), start, upload_end), 2) if measured else None,
        upload_window_s=round(upload_end - start, 3)
        if start is not None and upload_end is not None
        else None,
        steady_rate_per_s=round(steady[0], 2) if steady else None,
        steady_window_s=round(steady[1], 3) if steady else None,
        latency_ms=latency_of(lat),
        wall_s=round(max(0.0, (run.ended_at or run.clock()) - run.started_at), 3),
        uploads_per_worker=dict(sorted(Counter(run.accepted_by.values()).items())),
        stopped_early=stopped,
        stop_reason=reason if stopped else "",
        timed=timed,
        mode=s.mode,
        measured=measured,
        again=again_text(run, params),
        work_ran_out=run.drained_at is not None,
        cleared=run.cleared,
        resumed=sum(1 for e in entries if e.resumed),
        present=sum(1 for e in entries if e.present),
        verify=s.verify,
        verified=sum(1 for i in accepted if run.readback.stored(i)),
        processed=len(looked),
        repaired=sum(e.repairs for e in entries) - run.reprocessed,
        reprocessed=run.reprocessed,
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
            expected=rule.expected * s.loops,
            least=rule.least * s.loops,
            rule=rule.basis if s.wait_stage == "faces" and "min_faces_share" not in s.checks else "",
        ),
        clusters=run.clusters,
        ground_truth=run.ground_truth,
        foreign_images=len(verdict["foreign"]),
        held_before=sum(plan.foreign.values())
        if not plan.resuming
        else max(0, sum(map(len, plan.pre_existing.values())) - sum(1 for e in entries if e.present)),
        readback_polls=run.readback.polls,
        unreadable_polls=run.readback.unreadable,
        client_cpu_s=round(cpu_s, 3),
        cpu_s_per_1000_uploads=round(cpu_s / uploads_done * 1000, 3) if uploads_done and cpu_s else None,
        peak_rss_mb=round(max((rss for _, rss in usage.values()), default=0.0), 1),
        cpu_s_by_process={owner: round(cpu, 3) for owner, (cpu, _) in sorted(usage.items())},
        ledger=str(plan.ledger_path or ""),
        versions={"kanta-seed": __version__, "locust": locust_version, "python": platform.python_version()},
    )
    summary.error = run.error
    clock = run.client.clock
    run.stages.retime(clock.offset)  # the offset as measured over the whole run, not at each poll
    summary.pipeline = run.stages.figures(start, run.held_back_s)
    c = run.client
    summary.readback = {
        "lists": c.lists,
        "full_looks": run.readback.full_looks,
        "rows_listed": c.rows_listed,
        "rows_per_image": round(c.rows_listed / max(1, q.total), 2),
        "list_s": round(c.list_seconds, 3),
        "clock_offset_s": round(clock.offset, 3) if clock.known else None,
        "clock_uncertainty_s": round(clock.uncertainty, 3) if clock.known else None,
    }
    summary.samples = {"latency_ms": [round(x, 2) for x in run.latencies], **run.stages.per_image(start)}
    summary.stage_times = {
        st.uuid: [
            None if t is None else round(t, 4)
            for t in (st.accepted_at, st.stored_at, None if st.faceless else st.processed_at)
        ]
        for st in run.stages.stages.values()
        if st.counted and st.uuid
    }
    summary.checks_asked = [checks.CHECK_BY_NAME[name].label for name in s.checks]
    summary.drain_s = summary.pipeline.stored_s
    summary.proof = proof_text(run, summary)
    # An end that is not the plain one (a stall, a silent Kanta) is said; a stop is in the verdict.
    summary.notes = [n for n in (run.client.blob_note, "" if stopped or reason == run.error else reason) if n]
    return summary


def latency_of(lat: list[float]) -> Latency | None:
    """Percentiles of every 202's response time (sorted), None when none succeeded."""
    if not lat:
        return None
    p50, p90, p95, p99 = (round(percentile(lat, p), 1) for p in (50, 90, 95, 99))
    return Latency(p50=p50, p90=p90, p95=p95, p99=p99, max=round(lat[-1], 1))


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
    if not summary.attempts:  # this run sent nothing: its copies were named before it
        named = [
            *(["the ledger names the copy an earlier run stored"] if summary.resumed else []),
            *(["--top-up matched the copies already there by sha256"] if summary.present else []),
        ]
        named_text = "; ".join(named) or "no image"
        return f"nothing sent by this run: {named_text}; no other copy of ours is in the event"
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
    if r.status == NOT_SENT:
        return "not sent (its bytes could not be read)"
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
    if r.status == NOT_SENT:
        return r.error
    if r.status == 0:
        detail = r.error.removeprefix("no answer: ").strip()
        return f"no answer ({detail})" if detail else "no answer"
    return f"{r.status} {r.error}".strip()


def baseline_text(s: Settings, summary: Summary, verdicts: list[gate.Verdict], note: str) -> str:
    """That a baseline was compared, and how it came out: a gate that passed is seen to have run."""
    if not s.baselines:
        return ""
    against = ", ".join(s.baselines)
    if not summary.measured:
        return f"not compared with {against}: nothing measured (this run uploaded nothing)"
    if note:
        return note
    if not verdicts:
        return ""
    forced = " (--force-compare: compared though the runs differ)" if s.force_compare else ""
    runs = len({v.get("baseline_file") for v in summary.baseline_runs}) if summary.baseline_runs else 0
    outcome = gate.headline(verdicts, s.max_regression)
    return f"compared with {against} ({counted(runs, 'run')}){forced}: {outcome}"


def judge(run: Run, summary: Summary) -> tuple[list[str], list[gate.Verdict], str]:
    """Breached checks, and the run against its baseline runs: the problems (each exits 3), the baseline
    verdicts, and what to say instead of a comparison that could not be made.

    A run that uploaded nothing measured nothing: every check it asked for fails as not measured, and it
    is compared with no baseline (a rerun that found everything in place is no regression).
    """
    s = run.settings
    figures = summary.to_dict()
    problems = checks.evaluate_checks(figures, s.checks)
    if not s.baselines or not summary.measured:
        return problems, [], ""
    history = Path(s.history).expanduser() if s.history else None
    folders = [p for p in s.baselines if Path(p).expanduser().is_dir() or Path(p).expanduser() == history]
    try:
        bases = gate.load_baselines(
            [p for p in s.baselines if Path(p).expanduser().exists()] or s.baselines, like=figures
        )
    except gate.BaselineError as e:
        if len(folders) == len(s.baselines) and ("no run of schema" in str(e) or "does not exist" in str(e)):
            where = ", ".join(s.baselines)
            return problems, [], f"no earlier run in {where} to compare with yet (not a failure)"
        return [*problems, f"baseline: {e}"], [], ""
    if folders and len(folders) == len(s.baselines) and len(bases) < MIN_HISTORY_RUNS:
        # Between runs the machine itself varies (measured: processed time 23 s, then 27 s, same code): a
        # history judges once it has seen that spread; named files are compared as asked.
        return (
            problems,
            [],
            (
                f"{', '.join(s.baselines)} holds {counted(len(bases), 'earlier run')} of this kind: the gate"
                f" judges from {MIN_HISTORY_RUNS} on (the noise between runs is measured, not assumed)"
            ),
        )
    summary.baseline_runs = [{"baseline_file": b.get("baseline_file", "")} for b in bases]
    differences = checks.comparable(figures, bases[-1])
    if differences and not s.force_compare:
        refused = "baseline not comparable (pass --force-compare to compare anyway): "
        refused += "; ".join(differences)
        return [*problems, refused], [], ""
    verdicts = gate.judge(figures, bases, s.max_regression)
    return problems + gate.regressions(verdicts), verdicts, ""
