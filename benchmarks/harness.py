"""What bench.py, pipeline.py and fault_mixes.py share: child processes, kanta-seed's command line,
runs on a fresh stand-in, what the stand-in holds, ratios as data, tables and output files.

The stand-in is started only through seed.standin_process (StandinProcess; free_port for nginx).
Every child runs with this checkout on PYTHONPATH and XDG_CACHE_HOME in a temp dir of its own
(kanta-seed keeps ledgers per user under the XDG cache), and sends load to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bodies import png_members

PROJECT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
if str(PROJECT) not in sys.path:  # this checkout's seed/, whatever is installed
    sys.path.insert(0, str(PROJECT))

from seed.standin.launcher import StandinProcess, free_port  # noqa: E402

__all__ = ["HERE", "PROJECT", "StandinProcess", "free_port"]

LOCUSTFILE = PROJECT / "locustfile.py"
PROBE = HERE / "probe.py"


# --- children -----------------------------------------------------------------------------------------
def child_env(cache: Path, **extra: str) -> dict[str, str]:
    """This checkout on the path and a cache folder of the run's own (kanta-seed's ledgers)."""
    cache.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "PYTHONPATH": str(PROJECT),
        "PYTHONUNBUFFERED": "1",
        "XDG_CACHE_HOME": str(cache),
        **extra,
    }


@dataclass
class Child:
    rc: int
    elapsed_s: float
    cpu_s: float  # the child's CPU and that of every process it reaped (getrusage RUSAGE_CHILDREN)
    timed_out: bool
    log: Path

    def tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def problem(self) -> str:
        """'' when it ended by itself with exit code 0, else what happened."""
        if self.timed_out:
            return f"killed after {self.elapsed_s:.0f} s"
        return "" if self.rc == 0 else f"exit code {self.rc}: {self.tail()}"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_child(cmd: list[str], log: Path, timeout: float, env: dict[str, str], cwd: Path) -> Child:
    """Run one child to its end, in a session of its own (killed by its PID's group after timeout).

    RUSAGE_CHILDREN grows only when a child is reaped; servers started by the caller are reaped
    after all runs, so the delta around one wait() is this child's CPU (with what it reaped).
    """
    before, start = _children_cpu(), time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        timed_out = False
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)  # the run and any --processes workers it forked
            rc = proc.wait()
    return Child(rc, time.perf_counter() - start, _children_cpu() - before, timed_out, log)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def kanta_cmd(
    host: str, images: Path, users: int, spawn_rate: int, *extra: str, probe: bool = False
) -> list[str]:
    """kanta-seed as users run it: headless Locust with this checkout's locustfile (and the probe)."""
    files = f"{LOCUSTFILE},{PROBE}" if probe else str(LOCUSTFILE)
    return [
        sys.executable, "-m", "locust", "-f", files, "--headless", "--only-summary",
        "-u", str(users), "-r", str(spawn_rate), "-H", host, "--images", str(images), *extra,
    ]  # fmt: skip


# --- the data set and what the stand-in holds ----------------------------------------------------------
def default_images() -> Path:
    env = os.environ.get("KANTA_SEED_YALE")
    if env:
        return Path(env)
    local = PROJECT / "data" / "yale_png.zip"
    return local if local.is_file() else PROJECT.parent / "shared" / "yale_png.zip"


def zip_contents(images: Path) -> Counter:
    """sha256 -> how many PNGs of the zip have it (the Yale set has 9 byte-identical pairs)."""
    return Counter(hashlib.sha256(data).hexdigest() for _name, data in png_members(images))


def stored_contents(standin: StandinProcess, code: str) -> Counter:
    """sha256 -> copies, of the blob files of every image the stand-in's SQLite lists for the event."""
    with sqlite3.connect(standin.db) as con:
        paths = [p for (p,) in con.execute("SELECT blob_path FROM images WHERE event_code = ?", (code,))]
    return Counter(hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths if Path(p).is_file())


def standin_stats(url: str, code: str) -> dict[str, Any]:
    """The stand-in's own account of every 202 (GET /_standin/stats): accepted, stored, processed, dropped."""
    with urllib.request.urlopen(f"{url}/_standin/stats?event_code={code}", timeout=10) as resp:
        return json.loads(resp.read())


def settled_stats(url: str, code: str, timeout_s: float = 15.0) -> dict[str, Any]:
    """The stats once nothing of the event is still in the stand-in's pipeline (or after timeout_s)."""
    deadline = time.monotonic() + timeout_s
    stats = standin_stats(url, code)
    while stats.get("in_pipeline") and time.monotonic() < deadline:
        time.sleep(0.25)
        stats = standin_stats(url, code)
    return stats


@dataclass
class SeedRun:
    """One kanta-seed run on a fresh stand-in: its exit, its summary JSON, the stand-in's records."""

    child: Child
    summary: dict[str, Any]
    stats: dict[str, Any]
    stored: Counter  # sha256 -> copies in the event, from the stand-in's files

    def copies_exact(self, expected: Counter, times: int) -> bool:
        return self.stored == Counter({h: n * times for h, n in expected.items()})

    def copy_errors(self, expected: Counter, times: int) -> tuple[int, int]:
        """(copies missing, copies extra) against the zip's contents times `times`."""
        want = Counter({h: n * times for h, n in expected.items()})
        return sum((want - self.stored).values()), sum((self.stored - want).values())


def seed_standin(
    workdir: Path,
    standin_flags: list[str],
    images: Path,
    users: int,
    kanta_args: list[str],
    code: str,
    timeout: float,
) -> SeedRun:
    """A fresh stand-in (its files in workdir), one headless kanta-seed run into `code`, then its records."""
    workdir.mkdir(parents=True)
    summary_path = workdir / "summary.json"
    with StandinProcess(standin_flags, workdir=workdir / "standin") as standin:
        cmd = kanta_cmd(
            standin.url, images, users, users, "--event-code", code, "--summary-json", str(summary_path),
            *kanta_args,
        )  # fmt: skip
        child = run_child(cmd, workdir / "kanta-seed.log", timeout, child_env(workdir / "cache"), workdir)
        stats = settled_stats(standin.url, code)
        stored = stored_contents(standin, code)
    return SeedRun(child, read_json(summary_path) or {}, stats, stored)


def seed_rows(
    rows: list[Any],
    images: Path,
    code: str,
    timeout: float,
    users: Callable[[Any], int],
    label: Callable[[Any], str],
    figures_of: Callable[[Any, SeedRun, Counter], dict[str, Any]],
    prefix: str,
) -> list[dict[str, Any]]:
    """Each row (key, name, standin flags, kanta args) as one run on a fresh stand-in, told as figures."""
    expected = zip_contents(images)
    figures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        for row in rows:
            print(f"  running {label(row)} ...", flush=True)
            run = seed_standin(
                Path(tmp) / row.key, list(row.standin), images, users(row), list(row.kanta), code, timeout
            )
            figures.append(figures_of(row, run, expected))
            for e in figures[-1]["errors"]:
                print(f"    error: {e}", flush=True)
    return figures


# --- ratios as data -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ratio:
    """numerator row's figure / denominator row's figure, rows named by key; a target when there is one."""

    numerator: str
    denominator: str
    figure: str
    at_most: float | None = None
    at_least: float | None = None
    note: str = ""

    def evaluate(
        self, figures: dict[str, dict[str, Any]], labels: dict[str, str], figure_labels: dict[str, str]
    ) -> dict[str, Any]:
        num = (figures.get(self.numerator) or {}).get(self.figure)
        den = (figures.get(self.denominator) or {}).get(self.figure)
        value = num / den if num is not None and den else None
        target = (f"<= {self.at_most}x" if self.at_most is not None else "") + (
            f">= {self.at_least}x" if self.at_least is not None else ""
        )
        met = None
        if value is not None and target:
            met = (self.at_most is None or value <= self.at_most) and (
                self.at_least is None or value >= self.at_least
            )
        num_label, den_label = labels.get(self.numerator, self.numerator), labels.get(self.denominator, "")
        label = f"{num_label} / {den_label or self.denominator}"
        return {
            "numerator": self.numerator,
            "denominator": self.denominator,
            "figure": self.figure,
            "label": f"{label}, {figure_labels.get(self.figure, self.figure)}",
            "value": None if value is None else round(value, 3),
            "target": target,
            "met": met,
            "note": self.note,
        }


def ratio_line(r: dict[str, Any]) -> str:
    value = "-" if r["value"] is None else f"{r['value']:.2f}x"
    text = f"{r['label']}: {value}"
    if r["target"]:
        verdict = "" if r["met"] is None else (" -> met" if r["met"] else " -> NOT met")
        text += f" (target {r['target']}{verdict})"
    return text + (f" ({r['note']})" if r["note"] else "")


# --- tables and output files ----------------------------------------------------------------------------
def cell(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def text_table(columns: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [columns, *rows]) for i in range(len(columns))]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*r) for r in [columns, *rows])


def markdown_table(columns: list[str], rows: list[list[str]]) -> str:
    head = "|" + "|".join(" --- " if i == 0 else " ---: " for i in range(len(columns))) + "|"
    return "\n".join(["| " + " | ".join(columns) + " |", head, *("| " + " | ".join(r) + " |" for r in rows)])


def add_output_args(p: argparse.ArgumentParser, run_timeout: float) -> None:
    p.add_argument("--images", type=Path, default=default_images(), help="the Yale zip")
    p.add_argument("--run-timeout", type=float, default=run_timeout, help="seconds per child process")
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    p.add_argument("--markdown", type=Path, default=None, help="also write the table as Markdown here")


def check_images(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.images.is_file():
        p.error(f"no data set at {args.images} (pass --images PATH or set KANTA_SEED_YALE)")
    args.images = args.images.resolve()


def write_outputs(args: argparse.Namespace, payload: dict[str, Any], markdown: str) -> None:
    for path, text in ((args.json, json.dumps(payload, indent=2) + "\n"), (args.markdown, markdown)):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
