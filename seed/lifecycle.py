"""Locust event hooks that run kanta-seed: options, checks before the first request, the run's start,
its end by itself when the queue is drained, and the summary and exit code.

Which process does what:
- local (one process): coordinator and users; the link talks to the coordinator by direct calls;
- master: coordinator only (it loads the data set and sends image bytes with each claim);
- worker: users only; it needs no data file.
"""

from __future__ import annotations

import logging
import shlex
import sys
import time
from typing import Any

import gevent
from locust import events
from locust import stats as locust_stats
from locust.runners import MasterRunner, WorkerRunner

from . import progress, report, run, webui
from .cluster import MESSAGE, RESULT_WINDOW_S, Coordinator, SeedLink, from_wire, to_wire
from .options import Settings, add_arguments
from .preflight import BadInput, prepare
from .session import RunState, Session, session_of
from .standin_process import StandinError, StandinProcess

log = logging.getLogger("kanta_seed")
PROGRESS_EVERY_S = 3.0
LOST_WORKER_POLL_S = 1.0
RUN_ID_OPTION = "kanta_seed_run"  # these two travel to workers inside Locust's spawn message
EVENT_OPTION = "kanta_seed_event"  # the run's first event, which every user makes sure of
# Without --stop-timeout Locust kills users mid-request, and an upload killed in flight may or may
# not have been stored. A short grace lets it finish and report; waiting users leave at once.
DEFAULT_STOP_TIMEOUT_S = 10.0
SESSIONS: list[Session] = []  # for the events Locust fires without the environment (one per process)


def fail_bad_input(message: str) -> None:
    """One line on stderr, exit code 2, before anything was sent."""
    print(f"kanta-seed: {message}", file=sys.stderr, flush=True)
    sys.exit(report.EXIT_BAD_INPUT)


@events.init_command_line_parser.add_listener
def on_parser(parser: Any, **_: Any) -> None:
    add_arguments(parser)


def ensure_session(environment: Any) -> Session:
    """This process's session, wired to its runner once.

    Not only from ``init``: a worker that joins a running test connects to the master before Locust
    fires ``init``, and the master may send it a spawn (``test_start``) in between.
    """
    session = getattr(environment, "kanta_seed", None)
    if session is None:
        session = Session(environment)
        environment.kanta_seed = session
        SESSIONS.append(session)
        if isinstance(environment.runner, WorkerRunner):
            wire_worker(session, environment.runner)
        else:
            wire_coordinator(session, environment.runner)
    return session


@events.init.add_listener
def on_init(environment: Any, runner: Any, web_ui: Any = None, **_: Any) -> None:
    session = ensure_session(environment)
    if isinstance(runner, WorkerRunner):
        return
    if not environment.stop_timeout:
        environment.stop_timeout = DEFAULT_STOP_TIMEOUT_S
    if web_ui is not None:
        webui.attach(session, web_ui)
    options = environment.parsed_options
    if options is not None and getattr(options, "standin", False):
        start_standin(session)
    if options is not None and options.headless:
        # Headless: every check now, before any user starts. (The web UI checks its form on start.)
        settings = Settings.from_options(options, environment.host or "")
        try:
            session.plan = prepare(settings)
        except BadInput as e:
            stop_standin(session)
            fail_bad_input(str(e))
        log_plan(session)


def wire_worker(session: Session, runner: WorkerRunner) -> None:
    link = SeedLink(
        send=lambda m: runner.send_message(MESSAGE, m),
        batch=lambda: runner.user_count,
        result_window_s=RESULT_WINDOW_S,
    )
    session.link = link

    def on_message(environment: Any, msg: Any, **_: Any) -> None:
        data = from_wire(msg.data)
        if data.get("op") == "exit":  # the master's verdict: every process exits with the run's code
            environment.process_exit_code = int(data["code"])
        else:
            link.handle(data)

    runner.register_message(MESSAGE, on_message)


def wire_coordinator(session: Session, runner: Any) -> None:
    if isinstance(runner, MasterRunner):
        coordinator = Coordinator(
            send=lambda owner, m: runner.send_message(MESSAGE, to_wire(m), client_id=owner)
        )
        runner.register_message(
            MESSAGE, lambda environment, msg, **_: coordinator.handle(msg.node_id, msg.data)
        )
        gevent.spawn(release_lost_workers, session, runner)
    else:
        coordinator = Coordinator(send=lambda owner, m: link.handle(m))
        link = SeedLink(send=lambda m: coordinator.handle("local", m), batch=lambda: runner.user_count)
        session.link = link
    coordinator.on_complete = lambda: gevent.spawn(run.uploads_complete, session, session.run)
    coordinator.on_event_failed = lambda detail: on_event_failed(session, detail)
    coordinator.on_result = lambda owner, result, state: run.on_result(session, owner, result, state)
    coordinator.on_claimed = lambda owner, indices: run.on_claimed(session, owner, indices)
    coordinator.on_released = lambda owner, indices, sent: run.on_released(session, owner, indices, sent)
    session.coordinator = coordinator


def start_standin(session: Session) -> None:
    env = session.environment
    if env.parsed_options.host:
        log.warning("kanta-seed: --standin replaces the host %s", env.parsed_options.host)
    try:
        standin = StandinProcess(shlex.split(getattr(env.parsed_options, "standin_faults", "") or ""))
        url = standin.start()
    except (StandinError, ValueError) as e:
        fail_bad_input(str(e))
    session.standin = standin
    env.host = url
    env.parsed_options.host = url
    for user_class in env.user_classes:
        user_class.host = url
    log.info("kanta-seed: stand-in backend at %s (data in %s)", url, standin.workdir)


def stop_standin(session: Session) -> None:
    if session.standin is not None:
        session.standin.stop()
        session.standin = None


def log_plan(session: Session) -> None:
    plan = session.plan
    assert plan is not None
    ds = plan.dataset
    log.info(
        "kanta-seed: %d images (%.1f MB) from %s%s -> event %s at %s",
        len(ds.images),
        ds.total_bytes / 1e6,
        ds.source,
        f", {len(ds.skipped)} non-image members skipped" if ds.skipped else "",
        plan.settings.event_code,
        plan.settings.host,
    )


@events.test_start.add_listener
def on_test_start(environment: Any, **_: Any) -> None:
    if environment.runner is None:
        # A worker that joins a running test can get its first spawn while Locust is still
        # creating its runner (before init): finish starting once the runner is there.
        gevent.spawn(start_when_runner_is_set, environment)
        return
    start_test(environment)


def start_when_runner_is_set(environment: Any) -> None:
    while environment.runner is None:
        gevent.sleep(0.01)
    start_test(environment)


def start_test(environment: Any) -> None:
    session = ensure_session(environment)
    options = environment.parsed_options
    settings = Settings.from_options(options, environment.host or "")
    session.settings = settings
    if session.coordinator is None:  # a worker: join the master's run
        assert session.link is not None
        session.link.reset(str(getattr(options, RUN_ID_OPTION, "")), str(getattr(options, EVENT_OPTION, "")))
        return
    if session.plan is None or session.plan.settings != settings:
        try:
            session.plan = prepare(settings)
        except BadInput as e:
            log.error("kanta-seed: %s", e)
            session.run = None
            gevent.spawn(stop_runner, environment)
            return
        log_plan(session)
    this_run = run.begin(session, session.plan)
    setattr(options, RUN_ID_OPTION, this_run.run_id)
    setattr(options, EVENT_OPTION, this_run.plan.uploads[0].event_code)
    if session.link is not None:
        session.link.reset(this_run.run_id, this_run.plan.uploads[0].event_code)
    gevent.spawn(report_progress, session, this_run)


def on_event_failed(session: Session, detail: str) -> None:
    log.error("kanta-seed: the event %s could not be made sure of: %s", session.settings.event_code, detail)
    if session.run is not None:
        session.run.event_outcome = f"failed: {detail}"
    gevent.spawn(end_run, session, "the event could not be made sure of")


def end_run(session: Session, reason: str) -> None:
    log.info("kanta-seed: %s, stopping the run", reason)
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


@events.spawning_complete.add_listener
def on_spawning_complete(user_count: int, **_: Any) -> None:
    # Locust fires this on every process of one run; only the coordinating process keeps a run.
    for session in SESSIONS:
        if session.run is not None and session.run.spawned_at is None and session.coordinator is not None:
            session.run.spawned_at = time.time()


@events.test_stopping.add_listener
def on_test_stopping(environment: Any, **_: Any) -> None:
    session = session_of(environment)
    if session.link is not None:
        session.link.close()


@events.test_stop.add_listener
def on_test_stop(environment: Any, **_: Any) -> None:
    session = session_of(environment)
    if session.coordinator is None:
        if session.link is not None:
            session.link.hand_back_unsent()
        return
    run.finish(session)


@events.quitting.add_listener
def on_quitting(environment: Any, **_: Any) -> None:
    session = getattr(environment, "kanta_seed", None)
    if session is None:
        return
    if session.coordinator is not None:
        run.finish(session)  # Ctrl-C: Locust reads the exit code before it stops the runner
    stop_standin(session)


def report_progress(session: Session, run: RunState) -> None:
    """A progress line every few seconds, so a long run in a terminal is not silent."""
    while not run.finished:
        gevent.sleep(PROGRESS_EVERY_S)
        if run.finished or session.run is not run:
            return
        log.info(progress.line(progress.snapshot(session)))


def release_lost_workers(session: Session, runner: MasterRunner) -> None:
    """A worker that vanished (killed, lost its network) has its claims put back for the others."""
    while True:
        gevent.sleep(LOST_WORKER_POLL_S)
        coordinator = session.coordinator
        if coordinator is None or coordinator.queue is None or coordinator.event_state == "idle":
            continue
        for owner in coordinator.queue.owners_in_flight():
            client = runner.clients.get(owner)
            if client is None or client.state == "missing":
                back = coordinator.release(owner, None, maybe_sent=True)
                if back:
                    log.warning(
                        "kanta-seed: worker %s is gone; %d claimed images go back to the queue",
                        owner,
                        len(back),
                    )
