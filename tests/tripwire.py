"""A listener that records every connection made to it: the suite's guard for Kanta's default port.

A Kanta developer runs their dev stack on localhost:8000. The suite must never send a request
there; while it runs, this tripwire holds 127.0.0.1:8000 (and [::1]:8000) where they are free and
records anything that connects, so a test that forgot its ``-H`` fails the suite instead of seeding
somebody's database.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Tripwire:
    port: int
    hosts: tuple[str, ...] = ("127.0.0.1", "::1")
    hits: list[str] = field(default_factory=list)  # "<peer> at <time>: <first bytes>"
    listening: list[str] = field(default_factory=list)  # addresses actually held
    busy: list[str] = field(default_factory=list)  # addresses another program holds
    _socks: list[socket.socket] = field(default_factory=list)

    def start(self) -> Tripwire:
        for host in self.hosts:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)
            except OSError:
                continue  # no IPv6 on this machine: nothing can connect there either
            try:
                sock.bind((host, self.port))
                sock.listen(16)
            except OSError:
                sock.close()
                self.busy.append(f"{host}:{self.port}")
                continue
            self._socks.append(sock)
            self.listening.append(f"{host}:{self.port}")
            threading.Thread(target=self._accept, args=(sock,), daemon=True).start()
        return self

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, peer = sock.accept()
            except OSError:
                return  # closed by stop()
            conn.settimeout(0.5)
            try:
                first = conn.recv(120)
            except OSError:
                first = b""
            finally:
                conn.close()
            self.hits.append(f"{peer[0]}:{peer[1]} at {time.strftime('%H:%M:%S')}: {first!r}")

    def stop(self) -> None:
        for sock in self._socks:
            sock.close()
        self._socks.clear()
