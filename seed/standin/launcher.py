"""The one launcher of the stand-in backend as a child process: for ``--standin``, the tests and the
benchmarks.

A child process, not a greenlet here: the stand-in must not share the seeder's event loop or CPU
accounting, or the run would measure itself. It imports nothing from the seeder; this module only
starts ``python -m seed.standin`` and reads its ready line (``listening on http://...``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

PROJECT_DIR = Path(__file__).resolve().parent.parent
READY_LINE = re.compile(r"listening on (http://\S+)")


class StandinError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class StandinProcess:
    """``with StandinProcess(["--instant"]) as standin: ... standin.url ...``

    workdir holds its database, blobs and log (a temporary folder, removed on stop, unless given).
    """

    def __init__(
        self,
        extra_args: list[str] | None = None,
        workdir: Path | None = None,
        port: int = 0,
        die_with_parent: bool = False,
    ) -> None:
        self.extra_args = list(extra_args or [])
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="kanta-seed-standin-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db = self.workdir / "kanta.sqlite"
        self.blobs = self.workdir / "blobs"
        self.log_path = self.workdir / "standin.log"
        self.port = port
        self.die_with_parent = die_with_parent  # --standin: a kill -9 of kanta-seed takes its server too
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> StandinProcess:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, timeout_s: float = 20.0) -> str:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_DIR), os.environ.get("PYTHONPATH")])),
            "PYTHONUNBUFFERED": "1",
        }
        cmd = [sys.executable, "-m", "seed.standin", "--port", str(self.port), "--db", str(self.db)]
        cmd += ["--blobs", str(self.blobs), *self.extra_args]
        # stderr to a file: a pipe nobody reads would block the stand-in once it fills up.
        with self.log_path.open("a") as log:
            # A session of its own: a Ctrl-C in the terminal reaches kanta-seed, which stops it after
            # the uploads in flight; not the stand-in first.
            self.proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env, start_new_session=True,
                preexec_fn=die_with_parent if self.die_with_parent else None,
            )  # fmt: skip
        line = self._ready_line(timeout_s)
        match = READY_LINE.search(line)
        if match:
            self.url = match.group(1)
            self.port = int(self.url.rsplit(":", 1)[1])  # a restart comes back on the same port
            return self.url
        err = self.log_path.read_text() if self.log_path.exists() else ""
        self.stop(remove=False)
        raise StandinError(f"the stand-in did not start: {err.strip()[-500:] or 'no ready line in time'}")

    def _ready_line(self, timeout_s: float) -> str:
        """The first stdout line, within the timeout (works in a gevent process and a plain one)."""
        assert self.proc is not None and self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        deadline, buffer = time.monotonic() + timeout_s, ""
        while time.monotonic() < deadline and "\n" not in buffer:
            chunk = self.proc.stdout.readline()
            if chunk:
                buffer += chunk
            elif self.proc.poll() is not None:
                break
            else:
                _sleep(0.02)
        return buffer

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        """SIGSTOP (hung), SIGCONT, SIGKILL (crashed), ... to the stand-in, by its PID."""
        if self.running:
            assert self.proc is not None
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """Die at once, as a crashed backend does; its files stay for a restart()."""
        if self.running:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> str:
        """Start again on the same port with the same database and blobs (after kill())."""
        self.kill()
        return self.start()

    def stop(self, remove: bool = True) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a stopped process cannot handle its SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        if remove and self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies (Linux prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError):  # not Linux: it outlives a killed kanta-seed, as any child would
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _sleep(seconds: float) -> None:
    # gevent's sleep where the process is monkey-patched (locust), time.sleep elsewhere (tests).
    if "gevent" in sys.modules:
        import gevent

        gevent.sleep(seconds)
    else:
        time.sleep(seconds)
