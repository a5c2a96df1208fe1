"""Per-process state of kanta-seed, hung on Locust's Environment so users and hooks share it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gevent

from seed.coordination.coordinator import Coordinator, SeedLink
from seed.coordination.options import Settings
from seed.coordination.preflight import Plan
from seed.coordination.run import Run
from seed.core.ledger import ProcessLedger
from seed.standin.launcher import StandinProcess


@dataclass
class Session:
    environment: Any
    link: SeedLink | None = None  # where users run: the local process or a worker
    coordinator: Coordinator | None = None  # where the queue lives: the local process or the master
    settings: Settings | None = None
    plan: Plan | None = None  # prepared ahead (headless, or a web UI form check), used by the next run
    run: Run | None = None  # the current (or last) run, on the coordinating process
    runs: int = 0  # runs started by this process
    # What this process's runs did, where no ledger file is kept: the web UI's NEW resumes from it.
    memory: ProcessLedger = field(default_factory=ProcessLedger)
    standin: StandinProcess | None = None
    end_reason: str = ""  # why the current run is ending, when it ends by itself
    stop_signals: int = 0  # SIGINT/SIGTERM received: 1 stops gracefully, 2 at once
    stop_why: str = ""  # what the summary says stopped the run
    stopper: Any = None  # the greenlet stopping the run gracefully
    stop_kind: str = ""  # sigint (our handler's stopper) | sigterm (Locust's shutdown)


def session_of(environment: Any) -> Session:
    return environment.kanta_seed


def wait_for_session(environment: Any, timeout_s: float = 30.0) -> Session:
    """The session, once this process has one: a late worker's users may start before it is wired."""
    with gevent.Timeout(timeout_s, RuntimeError("kanta-seed was never set up in this process")):
        while getattr(environment, "kanta_seed", None) is None:
            gevent.sleep(0.01)
    return environment.kanta_seed
