"""Start and stop the stand-in backend as a child process (``--standin``).

A child process, not a greenlet here: the stand-in must not share the seeder's event loop or CPU
accounting, or the run would measure itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import gevent

PROJECT_DIR = Path(__file__).resolve().parent.parent
READY_LINE = re.compile(r"listening on (http://\S+)")


class StandinError(RuntimeError):
    pass


class StandinProcess:
    def __init__(self, extra_args: list[str] | None = None) -> None:
        self.extra_args = extra_args or []
        self.workdir = Path(tempfile.mkdtemp(prefix="kanta-seed-standin-"))
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout_s: float = 20.0) -> str:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_DIR), os.environ.get("PYTHONPATH")])),
        }
        cmd = [
            sys.executable,
            "-m",
            "seed.standin",
            "--port",
            "0",
            "--db",
            str(self.workdir / "kanta.sqlite"),
        ]
        # stderr to a file: a pipe nobody reads would block the stand-in once it fills up.
        self.log_path = self.workdir / "standin.log"
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(
                [*cmd, *self.extra_args], stdout=subprocess.PIPE, stderr=log, text=True, env=env
            )
        with gevent.Timeout(timeout_s, False):
            line = self.proc.stdout.readline() if self.proc.stdout else ""
            match = READY_LINE.search(line)
            if match:
                self.url = match.group(1)
                return self.url
        err = self.log_path.read_text() if self.log_path.exists() else ""
        self.stop()
        raise StandinError(f"the stand-in did not start: {err.strip() or 'no ready line in time'}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)
