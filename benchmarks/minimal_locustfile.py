"""The ceiling inside Locust: the least a Locust user can do to upload the Yale set N times.

No queue, no coordinator, no result records: the multipart bodies are encoded once at start, users
post the next body from a shared index until N uploads are answered, and the last answer quits the
run. benchmarks/bench.py runs it beside kanta-seed to tell Locust's own cost per upload from
kanta-seed's. Two user classes, picked by name on the command line:

    locust -f benchmarks/minimal_locustfile.py --headless -u 5 -r 100 -H http://127.0.0.1:8080 \\
        --images ../shared/yale_png.zip --uploads 1650 --result-json out.json MinimalFastUser

MinimalFastUser (FastHttpUser, geventhttpclient) or MinimalHttpUser (HttpUser, requests).
It imports nothing from seed/ on purpose: it is the yardstick, not the thing measured.
"""

from __future__ import annotations

import itertools
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, HttpUser, constant, events
from locust.exception import StopUser

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BOUNDARY = "bench-minimal-0123456789abcdef"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
ROW = "/pics/[event_code]"  # the same stats row kanta-seed uses


def encode_bodies(zip_path: str) -> list[bytes]:
    """One multipart body per PNG in the zip (told by its bytes), as kanta-seed encodes them."""
    bodies = []
    with zipfile.ZipFile(zip_path) as zf:
        for name in sorted(zf.namelist()):
            data = zf.read(name)
            if not data.startswith(PNG_MAGIC):
                continue
            head = (
                f"--{BOUNDARY}\r\n"
                f'Content-Disposition: form-data; name="image_file"; filename="{Path(name).name}"\r\n'
                "Content-Type: image/png\r\n\r\n"
            ).encode()
            bodies.append(head + data + f"\r\n--{BOUNDARY}--\r\n".encode())
    return bodies


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
    PLAN.bodies = encode_bodies(options.images)
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
    result = {
        "uploaded": PLAN.ok,
        "failed": PLAN.answered - PLAN.ok,
        "active_s": last - first,  # first request sent .. last answer, as kanta-seed's rate_per_s
        "wall_s": now - (PLAN.started or now),
    }
    Path(PLAN.result_json).write_text(json.dumps(result))


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
