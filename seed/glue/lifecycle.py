"""Locust event hooks only: which Locust event does what for kanta-seed.

Which process does what:
- local (one process): coordinator and users; the link talks to the coordinator by direct calls;
- master: coordinator only (it loads the data set and sends image bytes with each claim);
- worker: users only; it needs no data file.

Stopping: the first Ctrl-C (SIGINT) or SIGTERM stops handing out work and lets the uploads in flight
finish within --stop-timeout (default 10 s), so their uuids reach the ledger; the summary is printed
and the process exits. A second signal stops at once (what was in flight is recorded as maybe sent,
for the next run to decide by content); a third leaves without a word more.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import sys
import time
from ipaddress import ip_address
from typing import Any

import gevent
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from seed.coordination.coordinator import MESSAGE, RESULT_WINDOW_S, Coordinator, SeedLink, from_wire, to_wire
from seed.coordination.options import Settings, add_arguments
from seed.coordination.preflight import BadInput
from seed.core.summary import EXIT_BAD_INPUT
from seed.glue import driver, guard, webui
from seed.glue.session import Session, session_of
from seed.standin.launcher import StandinError, StandinProcess

log = logging.getLogger("kanta_seed")
LOST_WORKER_POLL_S = 1.0
RUN_ID_OPTION = "kanta_seed_run"  # travels to workers inside Locust's spawn message
# Without --stop-timeout Locust kills users mid-request, and an upload killed in flight may or may
# not have been stored. A grace lets it finish and report; waiting users leave at once.
DEFAULT_STOP_TIMEOUT_S = 10.0
SESSIONS: list[Session] = []  # for the events Locust fires without the environment (one per process)


def fail_bad_input(message: str) -> None:
    """One line on stderr, exit code 2, before anything was sent."""
    print(f"kanta-seed: {message}", file=sys.stderr, flush=True)
    sys.exit(EXIT_BAD_INPUT)


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
    # SIGINT is ours; SIGTERM is Locust's (its handler shuts down, and on_quitting stops gracefully).
    gevent.signal_handler(signal.SIGINT, on_signal, session, "Ctrl-C (SIGINT)")
    if isinstance(runner, WorkerRunner):
        return
    if not environment.stop_timeout:
        environment.stop_timeout = DEFAULT_STOP_TIMEOUT_S
    options = environment.parsed_options
    if web_ui is not None:
        webui.attach(session, web_ui)
        warn_if_open(options)
    if options is not None and getattr(options, "standin", False):
        if options.headless:  # bad input is said before a stand-in starts (one line, nothing started)
            try:
                driver.prepare_plan(session, Settings.from_options(options, environment.host), reach=False)
            except (BadInput, ValueError) as e:
                fail_bad_input(str(e))
        start_standin(session)
    if options is not None and options.headless:
        # Headless: every check now, before any user starts. (The web UI checks its form on start.)
        try:
            session.plan = driver.prepare_plan(session, Settings.from_options(options, environment.host))
        except (BadInput, ValueError) as e:
            stop_standin(session)
            fail_bad_input(str(e))
        driver.log_plan(session.plan)


def warn_if_open(options: Any) -> None:
    """A seeding console that can send load anywhere should not be reachable from elsewhere unasked."""
    host = (getattr(options, "web_host", "") or "").strip()
    try:
        loopback = host in ("localhost",) or ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not (getattr(options, "web_login", False) or getattr(options, "web_auth", None)):
        where = host if host not in ("", "*", "0.0.0.0", "::") else "every network interface"
        log.warning(
            "kanta-seed: the web UI listens on %s without a login: anyone who can reach it can start uploads"
            " to any host; add --web-login (or --web-auth user:pass), or --web-host 127.0.0.1",
            where,
        )


def wire_worker(session: Session, runner: WorkerRunner) -> None:
    contact = {"at": time.time()}

    def heard(**_: Any) -> None:
        contact["at"] = time.time()

    runner.environment.events.heartbeat_received.add_listener(heard)
    link = SeedLink(
        send=lambda m: runner.send_message(MESSAGE, m),
        batch=lambda: runner.user_count,
        result_window_s=RESULT_WINDOW_S,
        contact_age=lambda: time.time() - contact["at"],
    )
    session.link = link

    def on_message(environment: Any, msg: Any, **_: Any) -> None:
        heard()
        data = from_wire(msg.data)
        if data.get("op") == "exit":  # the master's verdict: every process exits with the run's code
            environment.process_exit_code = int(data["code"])
        else:
            link.handle(data)

    runner.register_message(MESSAGE, on_message)


def wire_coordinator(session: Session, runner: Any) -> None:
    if isinstance(runner, MasterRunner):
        coordinator = Coordinator(
            send=lambda owner, m: runner.send_message(MESSAGE, to_wire(m), client_id=owner),
            users=lambda: runner.user_count,
        )
        runner.register_message(
            MESSAGE, lambda environment, msg, **_: coordinator.handle(msg.node_id, msg.data)
        )
        guard.spawn("lost-worker watch", release_lost_workers, session, runner, on_error=watch_failed)
    else:
        coordinator = Coordinator(send=lambda owner, m: link.handle(m), users=lambda: runner.user_count)
        link = SeedLink(send=lambda m: coordinator.handle("local", m), batch=lambda: runner.user_count)
        session.link = link
    session.coordinator = coordinator


def watch_failed(name: str, error: BaseException) -> None:
    log.error("kanta-seed: internal error in the %s: %s: %s", name, type(error).__name__, error)


def start_standin(session: Session) -> None:
    env = session.environment
    if env.parsed_options.host:
        log.warning("kanta-seed: --standin replaces the host %s", env.parsed_options.host)
    try:
        faults = shlex.split(getattr(env.parsed_options, "standin_faults", "") or "")
        standin = StandinProcess(faults, die_with_parent=True)
        url = standin.start()
    except (StandinError, ValueError) as e:
        fail_bad_input(str(e))
    session.standin = standin
    env.host = url
    env.parsed_options.host = url
    for user_class in env.user_classes:
        user_class.host = url
    # A new server every time: a rerun with --standin starts on an empty one, and should say so.
    log.info(
        "kanta-seed: a new, empty stand-in backend at %s (data in %s; it ends with this process)",
        url, standin.workdir,
    )  # fmt: skip


def stop_standin(session: Session) -> None:
    standin, session.standin = session.standin, None
    if standin is not None:
        standin.stop()


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
    settings = Settings.from_options(options, environment.host)
    session.settings = settings
    apply_user_settings(environment, settings)
    if session.coordinator is None:  # a worker: join the master's run
        assert session.link is not None
        session.link.reset(str(getattr(options, RUN_ID_OPTION, "")))
        return
    plan = session.plan
    session.plan = None  # a plan serves one run: the next looks at the event afresh
    if plan is None or plan.settings != settings:
        try:
            plan = driver.prepare_plan(session, settings)
        except (BadInput, ValueError) as e:
            log.error("kanta-seed: %s", e)
            session.run = None
            gevent.spawn(driver.stop_runner, environment)
            return
        driver.log_plan(plan)
    run = driver.begin(session, plan)
    setattr(options, RUN_ID_OPTION, run.run_id)
    if session.link is not None:
        session.link.reset(run.run_id)


def apply_user_settings(environment: Any, settings: Settings) -> None:
    """What the user class takes from the settings before it spawns (a request's time limit)."""
    for user_class in environment.user_classes:
        if hasattr(user_class, "network_timeout"):
            user_class.network_timeout = settings.request_timeout
            user_class.connection_timeout = min(settings.request_timeout, 10.0)


@events.spawning_complete.add_listener
def on_spawning_complete(user_count: int, **_: Any) -> None:
    # Locust fires this on every process of one run; only the coordinating process keeps a run.
    for session in SESSIONS:
        run = session.run
        if run is not None and run.spawned_at is None and session.coordinator is not None:
            run.spawned_at = time.time()


@events.test_stopping.add_listener
def on_test_stopping(environment: Any, **_: Any) -> None:
    session = session_of(environment)
    if session.coordinator is not None:
        session.coordinator.end()  # no more work for anyone; uploads in flight still report
    if session.link is not None:
        session.link.close()


@events.test_stop.add_listener
def on_test_stop(environment: Any, **_: Any) -> None:
    session = session_of(environment)
    if session.coordinator is None:
        if session.link is not None:
            session.link.hand_back_unsent()
        return
    if session.link is not None:
        session.link.hand_back_unsent()
    driver.finish(session, stop_note=stop_note(session))


def stop_note(session: Session) -> str:
    if session.stop_signals:
        return session.stop_why
    return "stopped from the web UI" if not session.environment.parsed_options.headless else "stopped"


@events.quitting.add_listener
def on_quitting(environment: Any, **_: Any) -> None:
    """Locust is shutting down (the run ended, our Ctrl-C stopper quit the runner, or Locust's SIGTERM
    handler): a run still going is stopped gracefully here, before Locust reads the exit code."""
    session = getattr(environment, "kanta_seed", None)
    if session is None:
        return
    stopper = session.stopper
    if stopper is not None and not stopper.dead and stopper is not gevent.getcurrent():
        if session.stop_kind == "sigterm":  # a second SIGTERM while the first one's stop goes on
            session.stop_signals += 1
            log.warning(
                "kanta-seed: SIGTERM again: stopping now; what was in flight is recorded as maybe sent"
            )
            stop_now(session, quit_after=False)
            stopper.join()  # the first shutdown prints the summary and exits; this one never goes on
            return
        stopper.join()  # our own Ctrl-C stop is finishing: let it
    run = session.run
    if session.coordinator is not None and run is not None and not run.finished:
        session.stopper, session.stop_kind = gevent.getcurrent(), session.stop_kind or "sigterm"
        if not session.stop_signals:
            session.stop_signals, session.stop_why = 1, "stopped by SIGTERM"
            log.warning(
                "kanta-seed: SIGTERM: stopping; uploads in flight get %g s to finish (again to stop at once)",
                environment.stop_timeout,
            )
        environment.runner.stop()
        driver.finish(session, stop_note=stop_note(session))
    if not environment.parsed_options.headless:
        stop_standin(session)


@events.quit.add_listener
def on_quit(exit_code: int, **_: Any) -> None:
    """After Locust's own final tables: the verdict is the last thing on the screen."""
    # The process is about to exit with the run's code: a late Ctrl-C must not turn it into a signal death.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for session in SESSIONS:
        if session.coordinator is not None and session.environment.parsed_options.headless:
            driver.print_summary(session.run)
        stop_standin(session)


def on_signal(session: Session, name: str) -> None:
    """SIGINT: the first stops gracefully, the second at once, the third leaves."""
    session.stop_signals += 1
    env = session.environment
    if session.stop_signals == 1:
        session.stop_why = f"stopped by {name}"
        log.warning(
            "kanta-seed: %s: stopping; uploads in flight get %g s to finish (again to stop at once)",
            name, env.stop_timeout or 0,
        )  # fmt: skip
        session.stop_kind = "sigint"
        session.stopper = gevent.spawn(stop_gracefully, session)
    elif session.stop_signals == 2:
        run = session.run
        if run is not None and run.finished:
            return  # the stop is done: the summary is on its way
        log.warning("kanta-seed: %s again: stopping now; what was in flight is recorded as maybe sent", name)
        stop_now(session)
    else:
        stop_standin(session)
        os._exit(130)


def stop_gracefully(session: Session) -> None:
    env = session.environment
    if session.coordinator is not None:
        session.coordinator.end()
    env.runner.quit()  # users finish within --stop-timeout; test_stop finishes the run
    leave(env)


def stop_now(session: Session, quit_after: bool = True) -> None:
    """Kill the users mid-request: their claims stay in the ledger as in flight (maybe sent)."""
    env = session.environment
    env.runner.user_greenlets.kill(block=False)
    if session.stopper is not None and isinstance(env.runner, MasterRunner):
        session.stopper.kill(block=False)  # a master waits up to a minute for its workers' users
    run = session.run
    if run is not None and session.coordinator is not None and not run.finished:
        for owner in run.queue.owners_in_flight():
            run.released(owner, None, maybe_sent=True)
        driver.finish(session, stop_note=session.stop_why + ", then stopped at once")

    def quit_now() -> None:
        env.runner.quit()
        leave(env)

    if quit_after:
        gevent.spawn(quit_now)


def leave(env: Any) -> None:
    """The web UI's process ends with its runner when a signal stopped it."""
    if env.web_ui is not None:
        env.web_ui.stop()


def release_lost_workers(session: Session, runner: MasterRunner) -> None:
    """A worker that vanished (killed, frozen, cut off) has its claims put in doubt: the read-back
    decides by content whether they reached Kanta, and sends the others again."""
    while True:
        gevent.sleep(LOST_WORKER_POLL_S)
        coordinator = session.coordinator
        if coordinator is None or coordinator.run is None or coordinator.gate == "idle":
            continue
        for owner in coordinator.run.queue.owners_in_flight():
            client = runner.clients.get(owner)
            if client is None or client.state == "missing":
                back = coordinator.release(owner, None, maybe_sent=True)
                if back:
                    log.warning(
                        "kanta-seed: worker %s is gone; its %d claimed images are in doubt until the event"
                        " shows whether they reached Kanta",
                        owner,
                        len(back),
                    )
