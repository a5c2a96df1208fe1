"""Locust's event listeners, one line each: what happens when is the ``Seeder``'s (seeder.py)."""

from __future__ import annotations

import logging
import signal
from ipaddress import ip_address
from typing import Any

import gevent
from locust import events
from locust.runners import WorkerRunner

from seed.coordination.options import Settings, add_arguments
from seed.coordination.preflight import BadInput
from seed.core import greenlets
from seed.glue import plans, webui
from seed.glue.seeder import DEFAULT_STOP_TIMEOUT_S, SEEDERS, seeder_of

log = logging.getLogger("kanta_seed")


@events.init_command_line_parser.add_listener
def on_parser(parser: Any, **_: Any) -> None:
    add_arguments(parser)


@events.init.add_listener
def on_init(environment: Any, runner: Any, web_ui: Any = None, **_: Any) -> None:
    seeder = seeder_of(environment)
    # SIGINT is ours; SIGTERM is Locust's (its handler shuts down, and on_quitting stops gracefully).
    gevent.signal_handler(signal.SIGINT, seeder.signal, "Ctrl-C (SIGINT)")
    if isinstance(runner, WorkerRunner):
        return
    if not environment.stop_timeout:
        environment.stop_timeout = DEFAULT_STOP_TIMEOUT_S
    options = environment.parsed_options
    if web_ui is not None:
        webui.attach(seeder, web_ui)
        warn_if_open(options)
    if options is not None and getattr(options, "standin", False):
        if options.headless:  # bad input is said before a stand-in starts (one line, nothing started)
            try:
                seeder.prepare(Settings.from_options(options, environment.host), reach=False)
            except (BadInput, ValueError) as e:
                seeder.fail_bad_input(str(e))
        seeder.start_standin()
    if options is not None and options.headless:
        # Headless: every check now, before any user starts. (The web UI checks its form on start.)
        try:
            seeder.plan = seeder.prepare(Settings.from_options(options, environment.host))
        except (BadInput, ValueError) as e:
            seeder.fail_bad_input(str(e))
            return
        plans.log_plan(seeder.plan)


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


@events.test_start.add_listener
def on_test_start(environment: Any, **_: Any) -> None:
    # A worker that joins a running test can get its first spawn while Locust is still creating its
    # runner (before init): it starts once the runner is there.
    if environment.runner is None:
        greenlets.spawn("late start", start_when_runner_is_set, environment, on_error=greenlets.said)
    else:
        seeder_of(environment).start()


def start_when_runner_is_set(environment: Any) -> None:
    while environment.runner is None:
        gevent.sleep(0.01)
    seeder_of(environment).start()


@events.spawning_complete.add_listener
def on_spawning_complete(user_count: int, **_: Any) -> None:
    for seeder in SEEDERS:  # Locust fires this on every process; only the coordinating one keeps a run
        seeder.spawned()


@events.test_stopping.add_listener
def on_test_stopping(environment: Any, **_: Any) -> None:
    seeder_of(environment).stopping()


@events.test_stop.add_listener
def on_test_stop(environment: Any, **_: Any) -> None:
    seeder_of(environment).stopped()


@events.quitting.add_listener
def on_quitting(environment: Any, **_: Any) -> None:
    seeder = getattr(environment, "kanta_seed", None)
    if seeder is not None:
        seeder.quitting()


@events.quit.add_listener
def on_quit(exit_code: int, **_: Any) -> None:
    # The process is about to exit with the run's code: a late Ctrl-C must not turn it into a signal death.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for seeder in SEEDERS:
        seeder.quit()
