"""One run on the coordinating process: start it from the plan (and the ledger), follow its results,
verify by read-back when the uploads are done, and summarise it once.

``lifecycle.py`` calls these from Locust's events; this module holds no Locust event hooks itself.
"""

from __future__ import annotations

import logging
import platform
import resource
import time
import uuid
from pathlib import Path
from typing import Any

import gevent
from locust import __version__ as locust_version
from locust.contrib.fasthttp import FastHttpSession
from locust.runners import MasterRunner

from . import __version__, checks, report
from . import ledger as ledgers
from .cluster import MESSAGE
from .options import Settings
from .preflight import RUN_TAG_LEN, Plan
from .retry import RetryPolicy
from .session import RunState, Session
from .verify import Verifier, list_event, page_reader
from .work import Result, WorkQueue

log = logging.getLogger("kanta_seed")


def http_session(session: Session, host: str) -> FastHttpSession:
    """A Locust HTTP client on the coordinating process: its requests land in Locust's stats too."""
    env = session.environment
    return FastHttpSession(base_url=host, request_event=env.events.request, user=None)


def begin(session: Session, plan: Plan) -> RunState:
    """A fresh run from a full queue, minus what the ledger says an earlier run already stored."""
    s = plan.settings
    run_id = uuid.uuid4().hex[:12]
    plan = plan.for_run(run_id[:RUN_TAG_LEN])
    run = RunState(run_id, plan, started_at=time.time())
    session.runs += 1
    n = len(plan.dataset.images)
    members = [u.member if s.loops == 1 else f"{u.member}@pass{u.index // n + 1}" for u in plan.uploads]
    queue = WorkQueue(members, max_attempts=s.max_attempts)
    # A --standin server dies with the run: nothing to resume there, unless a ledger is asked for.
    if s.ledger or not s.standin:
        path = Path(s.ledger) if s.ledger else ledgers.default_path(s.host, s.event_code)
        # Resume only a plain run, and only the first of a process: later runs in one web UI
        # session, and --loops benchmarks, are deliberate repeats.
        if not s.fresh and session.runs == 1 and s.loops == 1:
            resume(session, run, queue, ledgers.read(path), path)
        run.ledger = ledgers.Ledger(path)
    coordinator = session.coordinator
    assert coordinator is not None
    coordinator.policy = RetryPolicy(max_attempts=s.max_attempts)
    coordinator.begin(run.run_id, queue, plan.uploads)
    session.run = run
    if queue.complete:  # nothing left to upload: go straight to the read-back
        gevent.spawn(uploads_complete, session, run)
    return run


def resume(session: Session, run: RunState, queue: WorkQueue, memory: ledgers.Memory, path: Path) -> None:
    s = run.plan.settings
    index = {e.member: i for i, e in enumerate(queue.entries)}
    for member, uid in memory.uuids.items():
        if member in index:
            queue.preset(index[member], uid)
    doubtful = [index[m] for m in memory.in_flight if m in index and m not in memory.uuids]
    if doubtful and foreign_images(session, s.host, s.event_code, memory.known_uuids):
        # Something the ledger does not know reached the event: an in-flight upload may be there.
        for i in doubtful:
            queue.entries[i].maybe_duplicate = True
    done = queue.count("done")
    if done == queue.total:
        log.warning(
            "kanta-seed: all %d images were already uploaded to %s at %s by an earlier run (ledger %s); "
            "nothing to upload, verifying they are there. To upload them again pass --fresh "
            "(or another --event-code).",
            queue.total, s.event_code, s.host, path,
        )  # fmt: skip
    elif done or doubtful:
        log.info(
            "kanta-seed: resuming from the ledger %s: %d already uploaded, %d were in flight when it stopped",
            path, done, len(doubtful),
        )  # fmt: skip


def foreign_images(session: Session, host: str, code: str, known: set[str]) -> bool:
    """Does the event hold an image whose uuid the ledger never recorded?"""
    listed = list_event(page_reader(http_session(session, host), host, code))
    return listed is None or bool(set(listed) - known)  # unreadable: assume the worst


# --- following the run ---------------------------------------------------------------------------
def on_claimed(session: Session, owner: str, indices: list[int]) -> None:
    run = session.run
    if run is not None:  # how many users were really running (a fast run may end mid-ramp-up)
        run.peak_users = max(run.peak_users, session.environment.runner.user_count)
    if run is not None and run.ledger is not None:  # one line per grant: claims come in batches
        run.ledger.write("claim", "", members=[run.plan.uploads[i].member for i in indices], owner=owner)


def on_released(session: Session, owner: str, indices: list[int], maybe_sent: bool) -> None:
    run = session.run
    if run is not None and run.ledger is not None and not maybe_sent:
        for i in indices:
            run.ledger.write("release", run.plan.uploads[i].member)


def on_result(session: Session, owner: str, result: Result, state: str) -> None:
    run = session.run
    if run is None:
        return
    if run.ledger is not None:
        run.ledger.write(
            "result",
            run.plan.uploads[result.index].member,
            ok=result.ok,
            uuid=result.uuid,
            status=result.status,
        )
    if result.ok and run.verifier is not None:
        run.verifier.note_answer(result.index)


def uploads_complete(session: Session, run: RunState) -> None:
    """Every image has a result: read back (once), or end the run now with --no-verify."""
    from .lifecycle import end_run  # the run's end is Locust's business

    if run.finished or run.uploads_done:
        return
    run.uploads_done = True
    s = run.plan.settings
    if not s.verify:
        end_run(session, "every image has a result")
        return
    coordinator = session.coordinator
    assert coordinator is not None and coordinator.queue is not None
    queue = coordinator.queue

    def reopen(i: int) -> None:
        if run.ledger is not None and queue.entries[i].uuids:
            run.ledger.write("lost", queue.entries[i].member, uuid=queue.entries[i].uuids[-1])
        coordinator.reopen(i)

    client = http_session(session, s.host)
    readers = {code: page_reader(client, s.host, code) for code in run.plan.event_codes}
    run.verifier = Verifier(readers, queue, reopen, s.verify_timeout)
    for i, e in enumerate(queue.entries):  # answers so far; earlier runs' images count from now
        if e.result is not None and e.result.ok and not e.resumed:
            run.verifier.answered_at[i] = e.result.sent_at + e.result.latency_ms / 1000
    log.info("kanta-seed: uploads done, reading the event back to verify every image is stored")
    run.readback = run.verifier.run()
    run.verified = sum(1 for e in queue.entries if e.verified)
    if run.readback.timed_out:
        end_run(session, f"the read-back timed out after {s.verify_timeout:g} s")
    else:
        end_run(session, "every image is verified on the server")


# --- the end -------------------------------------------------------------------------------------
def facts(session: Session, run: RunState) -> report.RunFacts:
    env, coordinator, s = session.environment, session.coordinator, run.plan.settings
    assert coordinator is not None and coordinator.queue is not None
    options = env.parsed_options
    run_time = getattr(options, "run_time", None)
    usage = dict(coordinator.usage)
    if isinstance(env.runner, MasterRunner):  # the master's own share of the client's cost
        usage["master"] = (
            time.process_time() - run.cpu_at_start,
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        )
    return report.RunFacts(
        event_code=s.event_code,
        host=s.host,
        data_set=run.plan.dataset.source,
        skipped=len(run.plan.dataset.skipped),
        started_at=run.started_at,
        finished_at=run.ended_at or time.time(),
        event=run.event_outcome,
        users=int(getattr(options, "num_users", 0) or 0),
        users_started=run.peak_users,
        spawn_rate=float(getattr(options, "spawn_rate", 0) or 0),
        processes=max(1, len([o for o in usage if o != "master"])),
        loops=s.loops,
        events=run.plan.event_codes,
        stopped_early=not coordinator.queue.complete,
        timed=bool(run_time)
        and not coordinator.queue.complete
        and (run.ended_at or 0) - run.started_at >= run_time - 1,
        verify=s.verify,
        readback=run.readback,
        spawned_at=run.spawned_at,
        drained_at=coordinator.drained_at,
        usage=usage,
        versions={"kanta-seed": __version__, "locust": locust_version, "python": platform.python_version()},
    )


def gate(s: Settings, summary: dict[str, Any]) -> list[str]:
    """Breached checks and regressions against the baseline: each one a message, exit code 3."""
    problems = checks.evaluate_checks(summary, dict(s.checks))
    if s.baseline:
        try:
            baseline = checks.load_baselines(s.baseline)
        except checks.BaselineError as e:
            return [*problems, f"baseline: {e}"]
        differences = checks.comparable(summary, baseline)
        if differences and not s.force_compare:
            return [
                *problems,
                "baseline not comparable (pass --force-compare to compare anyway): " + "; ".join(differences),
            ]
        problems += checks.compare(summary, baseline, s.max_regression)
    return problems


def finish(session: Session) -> dict[str, Any] | None:
    """Summarise the run once: terminal, JSON, exit code (sent to workers too)."""
    run, coordinator = session.run, session.coordinator
    if run is None or run.finished or coordinator is None or coordinator.queue is None:
        return None
    run.finished = True
    run.ended_at = time.time()
    if run.verifier is not None and run.readback is None:
        run.readback = run.verifier.seen  # stopped during the read-back
    queue = coordinator.queue
    if coordinator.event_state == "ready":
        run.event_outcome = coordinator.event_detail  # "created" or "already existed"
    env = session.environment
    s = run.plan.settings
    summary = report.summarize(queue, facts(session, run))
    coordinator.end()
    if run.ledger is not None:
        run.ledger.close()
    summary["regressions"] = gate(s, summary)
    run.summary = summary
    print(report.render(summary), flush=True)
    if s.summary_json:
        report.write_json(summary, s.summary_json)
    if s.summary_md:
        report.write_text(s.summary_md, report.markdown(summary))
    code = report.exit_code(summary)
    env.process_exit_code = code
    if isinstance(env.runner, MasterRunner):
        env.runner.send_message(MESSAGE, {"op": "exit", "code": code})
    return summary
