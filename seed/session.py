"""Per-process state of kanta-seed, hung on Locust's Environment so users and hooks share it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import gevent

from .cluster import Coordinator, SeedLink
from .options import Settings
from .preflight import Plan
from .standin_process import StandinProcess


@dataclass
class RunState:
    """One run (a headless run, or one start..stop in the web UI), on the coordinating process."""

    run_id: str
    plan: Plan
    started_at: float
    event_outcome: str = "not made sure of"
    finished: bool = False
    ended_at: float | None = None
    verified: int | None = None  # images seen on the server by read-back; None until it runs
    summary: dict[str, Any] | None = None
    ledger: Any = None  # seed.ledger.Ledger of this run
    verifier: Any = None  # seed.verify.Verifier, once the uploads are done
    readback: Any = None  # seed.verify.Readback, once the read-back has run
    uploads_done: bool = False  # every image had a result once (the read-back may reopen some)
    peak_users: int = 0  # the most users running at a claim
    spawned_at: float | None = None  # when every user was running (the ramp-up's end)
    cpu_at_start: float = field(
        default_factory=time.process_time
    )  # images in flight when an earlier run died


@dataclass
class Session:
    environment: Any
    link: SeedLink | None = None  # where users run: the local process or a worker
    coordinator: Coordinator | None = None  # where the queue lives: the local process or the master
    settings: Settings | None = None
    plan: Plan | None = None  # prepared ahead (headless, or a web UI form check), reused when unchanged
    run: RunState | None = None
    runs: int = 0  # runs started by this process (the ledger resumes only the first)
    standin: StandinProcess | None = None


def session_of(environment: Any) -> Session:
    return environment.kanta_seed


def wait_for_session(environment: Any, timeout_s: float = 30.0) -> Session:
    """The session, once this process has one: a late worker's users may start before it is wired."""
    with gevent.Timeout(timeout_s, RuntimeError("kanta-seed was never set up in this process")):
        while getattr(environment, "kanta_seed", None) is None:
            gevent.sleep(0.01)
    return environment.kanta_seed
