"""A listener that records every connection made to it: the suite's guard for Kanta's default port.

A Kanta developer runs their dev stack on localhost:8000. The suite must never send a request there;
while it runs, this tripwire holds 127.0.0.1:8000 (and [::1]:8000) where they are free and records
anything that connects, so a test that forgot its ``-H`` fails the suite instead of seeding somebody's
database. It runs as a child process of its own: a thread in the test process would be there before
Locust's gevent monkey-patching, which deadlocks the process.

    python tests/tripwire.py PORT OUT_FILE    # prints "holding ADDR ..." / "busy ADDR ..." then serves
"""

from __future__ import annotations

import selectors
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HOSTS = ("127.0.0.1", "::1")


@dataclass
class Tripwire:
    port: int
    out: Path
    hosts: tuple[str, ...] = HOSTS
    listening: list[str] = field(default_factory=list)  # addresses held
    busy: list[str] = field(default_factory=list)  # addresses another program holds
    proc: subprocess.Popen | None = None

    def start(self) -> Tripwire:
        self.out.write_text("")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, str(self.port), str(self.out), *self.hosts],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            kind, _, addr = line.strip().partition(" ")
            if kind == "ready":
                break
            (self.listening if kind == "holding" else self.busy).append(addr)
        return self

    @property
    def hits(self) -> list[str]:
        return [ln for ln in self.out.read_text().splitlines() if ln] if self.out.exists() else []

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=5)


def serve(port: int, out: Path, hosts: list[str]) -> None:
    selector = selectors.DefaultSelector()
    for host in hosts:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.bind((host, port))
            sock.listen(16)
        except OSError:
            print(f"busy {host}:{port}", flush=True)
            continue
        selector.register(sock, selectors.EVENT_READ)
        print(f"holding {host}:{port}", flush=True)
    print("ready", flush=True)
    while True:
        for key, _ in selector.select():
            conn, peer = key.fileobj.accept()
            conn.settimeout(0.5)
            try:
                first = conn.recv(120)
            except OSError:
                first = b""
            conn.close()
            with out.open("a") as f:
                f.write(f"{peer[0]}:{peer[1]} at {time.strftime('%H:%M:%S')}: {first!r}\n")


if __name__ == "__main__":
    serve(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
