"""Real processes for the tests: the stand-in backend and headless Locust runs, on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from seed.standin.launcher import StandinProcess, free_port  # noqa: F401  (free_port: for the tests)

PROJECT = Path(__file__).resolve().parent.parent
LOCUSTFILE = PROJECT / "locustfile.py"
YALE_ZIP = Path(os.environ.get("KANTA_SEED_YALE", PROJECT.parent / "shared" / "yale_png.zip"))
RUN_TIMEOUT_S = 120


SUITE_CACHE = Path(tempfile.mkdtemp(prefix="kanta-seed-tests-cache-"))


def child_env(cwd: Path | None = None) -> dict[str, str]:
    """The environment of a child process: this checkout on the path, and (for kanta-seed's per-user
    ledgers) a cache folder of the test's own (or the suite's), never the developer's."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "PYTHONUNBUFFERED": "1"}
    env.pop("LOCUST_SKIP_MONKEY_PATCH", None)  # set for the test process only (conftest.py)
    env["XDG_CACHE_HOME"] = str(cwd / ".cache" if cwd is not None else SUITE_CACHE)
    return env


class Standin(StandinProcess):
    """A stand-in server started by a test; what it stored is read straight from its SQLite file."""

    def rows(self, sql: str, *args) -> list[tuple]:
        with sqlite3.connect(self.db) as con:
            return con.execute(sql, args).fetchall()

    def events(self) -> list[str]:
        return [r[0] for r in self.rows("SELECT code FROM events ORDER BY id")]

    def images(self, code: str) -> list[tuple[str, bytes]]:
        """(uuid, stored bytes) of every image stored for the event."""
        return [
            (u, Path(p).read_bytes())
            for u, p in self.rows("SELECT uuid, blob_path FROM images WHERE event_code = ?", code)
        ]


def start_standin(workdir: Path, *extra: str) -> Standin:
    server = Standin(list(extra), workdir=workdir)
    server.start()
    return server


@dataclass
class LocustRun:
    returncode: int
    output: str
    seconds: float

    def summary_line(self, prefix: str) -> str:
        return next((ln for ln in self.output.splitlines() if ln.strip().startswith(prefix)), "")


# A network namespace of the process's own, with only its loopback up: there, nothing listens on
# localhost:8000 whatever runs on this machine, so a default-host case cannot reach a real stack.
OWN_NETWORK = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]


def spawn_locust(locustfile: str, *args: str, cwd: Path, own_network: bool = False) -> subprocess.Popen:
    """A ``locust`` process in a session of its own, so a test can end it and its children by PID."""
    return subprocess.Popen(
        [*(OWN_NETWORK if own_network else []), sys.executable, "-m", "locust", "-f", locustfile, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=child_env(cwd),
        start_new_session=True,
    )


def run_locust(
    *args: str,
    cwd: Path,
    timeout: float = RUN_TIMEOUT_S,
    locustfile: Path = LOCUSTFILE,
    own_network: bool = False,
) -> LocustRun:
    """A real headless ``locust`` process; bounded in time, killed by its own PID if it hangs."""
    t0 = time.monotonic()
    proc = spawn_locust(
        str(locustfile), "--headless", "--only-summary", *args, cwd=cwd, own_network=own_network
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the run and any --processes children it forked
        out, _ = proc.communicate()
        raise AssertionError(f"locust did not stop by itself within {timeout}s:\n{out[-4000:]}") from None
    return LocustRun(proc.returncode, out, time.monotonic() - t0)


def yale_contents() -> Counter:
    """sha256 -> count of every image in the Yale zip (9 byte-identical pairs make counts of 2)."""
    with zipfile.ZipFile(YALE_ZIP) as zf:
        return Counter(
            hashlib.sha256(zf.read(n)).hexdigest()
            for n in zf.namelist()
            if n.endswith(".png") and not n.startswith("__MACOSX")
        )


def stored_contents(standin: Standin, code: str) -> Counter:
    return Counter(hashlib.sha256(data).hexdigest() for _, data in standin.images(code))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Processes:
    """Locust masters and workers started by a test, each ended by its own PID when the test ends."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, *args: str, cwd: Path, locustfile: str = str(LOCUSTFILE)) -> subprocess.Popen:
        proc = spawn_locust(locustfile, *args, cwd=cwd)
        self.procs.append(proc)
        return proc

    def master(self, *args: str, port: int, workers: int, cwd: Path) -> subprocess.Popen:
        return self.start(
            "--master", "--headless", "--only-summary", "--master-bind-host", "127.0.0.1",
            "--master-bind-port", str(port), "--expect-workers", str(workers), *args, cwd=cwd,
        )  # fmt: skip

    def worker(self, port: int, cwd: Path) -> subprocess.Popen:
        """A worker that gets its locustfile from the master (-f -) and needs no data file."""
        return self.start(
            "--worker", "--master-host", "127.0.0.1", "--master-port", str(port), cwd=cwd, locustfile="-"
        )

    @staticmethod
    def finish(proc: subprocess.Popen, timeout: float = RUN_TIMEOUT_S) -> tuple[int, str]:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            raise AssertionError(f"locust did not stop by itself within {timeout}s:\n{out[-4000:]}") from None
        return proc.returncode, out

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()  # not communicate(): a test may still be reading its output in a thread
