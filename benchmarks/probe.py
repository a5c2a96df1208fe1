"""The benchmark's probe, loaded beside the locustfile it measures:

    locust -f locustfile.py,benchmarks/probe.py ...   (BENCH_PROBE_DIR=/a/folder in the environment)

It writes the CPU and wall time of its process between test_start and test_stop (the run without
interpreter start, imports and data loading) to BENCH_PROBE_DIR/probe-<pid>.json: one file per
process, so a --processes run leaves one per worker and one for the master, which bench.py adds up.
No user class: it only listens. Without BENCH_PROBE_DIR it does nothing.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from locust import events

_totals = {"cpu_s": 0.0, "wall_s": 0.0, "runs": 0}
_start: dict[str, float] = {}


@events.test_start.add_listener
def _probe_start(**_: Any) -> None:
    _start["cpu"], _start["wall"] = time.process_time(), time.perf_counter()


@events.test_stop.add_listener
def _probe_stop(**_: Any) -> None:
    folder = os.environ.get("BENCH_PROBE_DIR")
    if not _start or not folder:
        return
    _totals["cpu_s"] += time.process_time() - _start.pop("cpu")
    _totals["wall_s"] += time.perf_counter() - _start.pop("wall")
    _totals["runs"] += 1
    (Path(folder) / f"probe-{os.getpid()}.json").write_text(json.dumps(_totals))
