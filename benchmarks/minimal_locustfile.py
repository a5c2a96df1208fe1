"""The ceiling inside Locust: the least a Locust user can do to upload the Yale set N times.

No queue, no coordinator, no result records: the multipart bodies are encoded once at start, users
post the next body from a shared index until N uploads are answered, and the last answer quits the
run. benchmarks/bench.py runs it beside kanta-seed to tell Locust's own cost per upload from
kanta-seed's. Two user classes, picked by name on the command line:

    locust -f benchmarks/minimal_locustfile.py,benchmarks/probe.py --headless -u 5 -r 100 \\
        -H http://127.0.0.1:8080 --images ../shared/yale_png.zip --uploads 1650 --result-json out.json \\
        MinimalFastUser

MinimalFastUser (FastHttpUser, geventhttpclient) or MinimalHttpUser (HttpUser, requests).
It imports nothing from seed/ on purpose: it is the yardstick, not the thing measured (only
benchmarks/bodies.py, the standard-library helpers it shares with the bare loop).
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import gevent
from bodies import encode_bodies, write_result
from locust import FastHttpUser, HttpUser, constant, events
from locust.exception import StopUser

BOUNDARY = "bench-minimal-0123456789abcdef"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
ROW = "/pics/[event_code]"  # the same stats row kanta-seed uses


class Plan:
    """Shared by every user of the process: greenlets switch only on I/O, so plain counters suffice."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.target = 0
        self.path = "/pics/bench-minimal"
        self.headers = {"Content-Type": CONTENT_TYPE}
        self.claims = itertools.count()
        self.answered = self.ok = 0
        self.first_sent: float | None = None
        self.last_answer: float | None = None
        self.started: float | None = None
        self.result_json = ""


PLAN = Plan()


@events.init_command_line_parser.add_listener
def add_options(parser: Any, **_: Any) -> None:
    parser.add_argument("--images", default="", help="The Yale zip")
    parser.add_argument("--uploads", type=int, default=0, help="Uploads in all (default: one pass)")
    parser.add_argument("--result-json", default="", help="Write uploads and timings as JSON here")


@events.init.add_listener
def on_init(environment: Any, **_: Any) -> None:
    options = environment.parsed_options
    if options is None or not options.images:
        return
    PLAN.bodies = encode_bodies(options.images, BOUNDARY)
    PLAN.target = options.uploads or len(PLAN.bodies)
    PLAN.result_json = options.result_json


@events.test_start.add_listener
def on_test_start(**_: Any) -> None:
    PLAN.started = time.perf_counter()


@events.test_stop.add_listener
def on_test_stop(**_: Any) -> None:
    if not PLAN.result_json:
        return
    now = time.perf_counter()
    first, last = PLAN.first_sent or now, PLAN.last_answer or now
    # loop CPU: benchmarks/probe.py, loaded beside this file, measures it as it does for kanta-seed.
    wall = now - (PLAN.started or now)
    write_result(PLAN.result_json, PLAN.ok, PLAN.answered - PLAN.ok, last - first, wall, None)


def upload(user: Any) -> None:
    """The one task: post the next body, count the answer, quit the run after the last one."""
    plan = PLAN
    i = next(plan.claims)
    if i >= plan.target:
        raise StopUser()  # nothing left to send; the last answer quits the run
    if plan.first_sent is None:
        plan.first_sent = time.perf_counter()
    resp = user.client.post(plan.path, data=plan.bodies[i % len(plan.bodies)], headers=plan.headers, name=ROW)
    plan.answered += 1
    plan.ok += resp.status_code == 202
    if plan.answered == plan.target:
        plan.last_answer = time.perf_counter()
        # From a greenlet of its own: quit() kills every user, this one among them.
        gevent.spawn(user.environment.runner.quit)


class MinimalFastUser(FastHttpUser):
    wait_time = constant(0)
    tasks = [upload]


class MinimalHttpUser(HttpUser):
    wait_time = constant(0)
    tasks = [upload]
