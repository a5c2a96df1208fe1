"""Drives one run on the coordinating process: the read-back loop, the progress line, the end.

``lifecycle.py`` (Locust's hooks) starts a run here and finishes it here; in between the read-back
loop polls the ``Run``, lets the ``Coordinator`` hand out what the backlog bound now allows, and
ends the run when every image is where it should be, or when nothing more can happen.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from typing import Any

import gevent
from locust import stats as locust_stats
from locust.contrib.fasthttp import FastHttpSession
from locust.runners import MasterRunner

from seed.coordination.coordinator import MESSAGE
from seed.coordination.options import Settings
from seed.coordination.preflight import BadInput, Plan, prepare
from seed.coordination.run import Run
from seed.coordination.tally import RunParams, tally
from seed.core.ledger import Ledger
from seed.core.summary import Summary, counted, markdown, render, write_json, write_text
from seed.glue import guard, progress
from seed.glue.session import Session
from seed.kanta.client import KantaClient, locust_transport

log = logging.getLogger("kanta_seed")
POLL_S = 1.0  # at most one list a second: each costs Kanta's event loop ~50 ms at 165 images
FIRST_LOOK_S = 0.25  # the first 202s' background jobs usually finish within this
TICK_S = 0.1
PROGRESS_EVERY_S = 3.0
ZERO_USERS = "-u 0: no user would upload anything; pass -u N (1 or more), e.g. -u 5"
STAGE_WORDS = {"accepted": "accepted", "stored": "stored", "faces": "processed (faces detected)"}


def http_session(session: Session, host: str, timeout_s: float) -> Any:
    """A Locust HTTP client on the coordinating process: its requests land in Locust's stats too."""
    env = session.environment
    return FastHttpSession(
        base_url=host,
        request_event=env.events.request,
        user=None,
        network_timeout=timeout_s,
        connection_timeout=timeout_s,
    )


def prepare_plan(session: Session, settings: Settings, reach: bool = True) -> Any:
    """The checks before a run, with Locust's own output paths and what this process already made."""
    options = session.environment.parsed_options
    headless = bool(getattr(options, "headless", False))
    if headless and getattr(options, "num_users", None) == 0:
        raise BadInput(ZERO_USERS)
    outputs: dict[str, tuple[str, tuple[str, ...]]] = {}
    if getattr(options, "csv_prefix", None):
        outputs["--csv"] = (options.csv_prefix, ("_stats.csv", "_failures.csv"))
    if getattr(options, "html_file", None):
        outputs["--html"] = (options.html_file, ("",))
    if getattr(options, "json_file", None):
        outputs["--json-file"] = (options.json_file, (".json",))
    return prepare(
        settings,
        reach=reach,
        locust_outputs=outputs,
        remembered=session.memory.memory,
        users=options.num_users if headless else None,
    )


def log_plan(plan: Plan) -> None:
    """What is about to be seeded, in one line before the first upload."""
    ds = plan.dataset
    skipped = ""
    if ds.skipped:
        n = len(ds.skipped)
        shown = "; ".join(f"{k.member}: {k.reason}" for k in ds.skipped[:3]) + (" ..." if n > 3 else "")
        skipped = f", {counted(n, 'member')} skipped ({shown})"
    log.info(
        "kanta-seed: %d images (%.1f MB) from %s%s -> %s %s at %s, until every image is %s",
        len(ds.images), ds.total_bytes / 1e6, ds.source, skipped,
        "events" if len(plan.event_codes) > 1 else "event", ", ".join(plan.event_codes),
        plan.settings.host, STAGE_WORDS[plan.settings.wait_stage],
    )  # fmt: skip


def begin(session: Session, plan: Plan) -> Run:
    """A new run from the plan: its ledger, its client, its greenlets."""
    s = plan.settings
    client = KantaClient(
        s.host, locust_transport(http_session(session, s.host, s.request_timeout)), s.blob_host
    )
    # Where no ledger file is kept, this process remembers (the web UI's next run resumes from it); a
    # benchmark never resumes, so it keeps neither.
    ledger = Ledger(plan.ledger_path) if plan.ledger_path else session.memory if s.mode == "seed" else None
    run = Run(plan, client, ledger=ledger)
    for note in plan.notes:
        log.warning("kanta-seed: %s", note)
    if plan.resuming:
        tell_resume(run)
    run.clear_before()  # --fresh, or copies beyond one: removed before the first upload
    session.run, session.end_reason = run, ""
    session.runs += 1
    assert session.coordinator is not None
    session.coordinator.begin(run)
    on_error = crash_handler(session, run)
    guard.spawn("read-back", drive, session, run, on_error=on_error)
    if session.environment.parsed_options.headless:
        guard.spawn("progress line", report_progress, run, on_error=on_error, delay=PROGRESS_EVERY_S)
    return run


def tell_resume(run: Run) -> None:
    q, plan = run.queue, run.plan
    done, doubt = sum(1 for e in q.entries if e.resumed), q.count("doubt")
    where = f"{run.settings.event_code} at {run.settings.host} (ledger {plan.ledger_path})"
    if done == q.total:
        log.warning(
            "kanta-seed: all %d images were already uploaded to %s by an earlier run; nothing to upload,"
            " verifying they are there (--fresh resets and uploads again; --bench measures a new event)",
            q.total, where,
        )  # fmt: skip
    elif done or doubt:
        log.info(
            "kanta-seed: resuming %s: %d already uploaded, %d were in flight when it stopped (decided by"
            " what the event holds, not sent blindly)",
            where, done, doubt,
        )  # fmt: skip


def drive(session: Session, run: Run) -> None:
    """Poll the event while it matters, and end the run when it is over."""
    last_poll, looked = 0.0, True
    while not run.finished and session.run is run and not session.end_reason:
        if run.event_outcome.startswith("failed"):
            end(session, run, f"the event could not be made sure of ({run.event_outcome[8:]})")
            return
        # Whether every image is done changes only with a result or a poll: ask (O(images)) then.
        if run.queue.complete and (looked or not run.settings.verify) and run.done():
            if run.settings.verify and run.queue.count("accepted"):
                run.reconcile()
                run.look_for_clusters(gevent.sleep)
            end(session, run, "")
            return
        why = run.stall()
        if why:
            end(session, run, why)
            return
        now = time.time()
        anything = run.first_sent_at is not None or run.queue.count("doubt") or run.queue.count("accepted")
        due = now - last_poll >= POLL_S and now - (run.first_sent_at or run.started_at) >= FIRST_LOOK_S
        looked = False
        if anything and due:
            run.poll()
            last_poll, looked = time.time(), True
            assert session.coordinator is not None
            session.coordinator.serve()  # a poll may have freed backlog room, reopened or resent images
        gevent.sleep(TICK_S)


def end(session: Session, run: Run, reason: str) -> None:
    """The run ends by itself: stop handing out work and stop the runner (which finishes the run)."""
    if session.end_reason:
        return
    session.end_reason = reason or "done"
    if reason:
        log.warning("kanta-seed: %s; ending the run", reason)
    assert session.coordinator is not None
    session.coordinator.end()
    if getattr(session.environment.parsed_options, "csv_prefix", None):
        # Locust's CSV writer only writes on its interval and not at exit: give it one more tick
        # so --csv holds the run's final figures.
        gevent.sleep(locust_stats.CSV_STATS_INTERVAL_SEC + 0.2)
    stop_runner(session.environment)


def stop_runner(environment: Any) -> None:
    """End the test the way its mode expects: headless exits, the web UI stays up showing STOPPED."""
    options = environment.parsed_options
    if options.headless or (getattr(options, "autostart", False) and getattr(options, "autoquit", -1) != -1):
        environment.runner.quit()
    else:
        environment.runner.stop()


def crash_handler(session: Session, run: Run) -> guard.OnError:
    def crashed(name: str, error: BaseException) -> None:
        line = f"internal error in the {name}: {type(error).__name__}: {error}"
        log.error("kanta-seed: %s; ending the run (exit 1)", line)
        run.error = line
        if not session.end_reason:
            gevent.spawn(end, session, run, line)

    return crashed


def report_progress(run: Run) -> None:
    """A progress line every few seconds, so a long run in a terminal is not silent."""
    while not run.finished:
        log.info(progress.line(progress.snapshot(run), run.settings.retry_for))
        gevent.sleep(PROGRESS_EVERY_S)


# --- the end ---------------------------------------------------------------------------------------
def finish(session: Session, stop_note: str = "") -> Summary | None:
    """Summarise the current run once: JSON, Markdown, exit code (sent to workers too)."""
    run = session.run
    if run is None or run.finished:
        return run.summary if run is not None else None
    env, s = session.environment, run.settings
    options = env.parsed_options
    if isinstance(env.runner, MasterRunner):  # the master's own share of the client's cost
        run.record_usage(
            "master", (time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        )
    run_time = getattr(options, "run_time", None)
    ended_itself = bool(session.end_reason)
    timed = not ended_itself and bool(run_time) and time.time() - run.started_at >= run_time - 1
    stopped = not ended_itself and not timed
    reason = (session.end_reason if session.end_reason != "done" else "") if ended_itself else stop_note
    if timed:
        reason = ""  # a run ended by -t ended as meant
    params = RunParams(
        users=int(getattr(options, "num_users", 0) or 0),
        spawn_rate=float(getattr(options, "spawn_rate", 0) or 0),
        run_time=run_time,
        headless=bool(options.headless),
    )
    if session.coordinator is not None:
        session.coordinator.end()
    run.end()
    summary = tally(run, params, reason or ("stopped from the web UI" if stopped else ""), stopped, timed)
    if s.bench_cleanup:
        summary.notes.append(clean_up(run))
    run.close(summary)
    if s.summary_json:
        write_json(summary, s.summary_json)
    if s.summary_md:
        write_text(s.summary_md, markdown(summary))
    env.process_exit_code = summary.exit_code
    if isinstance(env.runner, MasterRunner):
        env.runner.send_message(MESSAGE, {"op": "exit", "code": summary.exit_code})
    if not options.headless:
        print_summary(run)  # the web UI process goes on: say it now, not at its quit
    return summary


def clean_up(run: Run) -> str:
    """--bench-cleanup: the run's own events go (DELETE /events), so a benchmark does not fill a stack."""
    codes = run.plan.event_codes
    answers = {code: run.client.delete_event(code) for code in codes}
    failed = [
        f"{code} ({status or 'no answer'})"
        for code, status in answers.items()
        if status not in (200, 204, 404)
    ]
    if failed:
        return f"--bench-cleanup: could not delete {', '.join(failed)}"
    return f"--bench-cleanup: deleted {counted(len(codes), 'event')} ({', '.join(codes)})"


def print_summary(run: Run | None) -> None:
    """The verdict, printed once per run: last on the screen (after Locust's own tables when headless)."""
    if run is None or run.summary is None or run.printed:
        return
    run.printed = True
    print(render(run.summary), flush=True)
    sys.stdout.flush()
