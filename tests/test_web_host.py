"""The web UI can start uploads to any host typed into its form: kanta-seed keeps it on loopback unless
the user says otherwise, and warns when it is opened wider without a login. Read from the kernel's own
table of listening sockets (/proc/net/tcp), not from what the process says."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .helpers import Processes, free_port, http


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on this port (IPv4 and IPv6)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.rsplit(":", 1)
            if state == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                found.add(decode(addr))
    return found


def decode(hexaddr: str) -> str:
    if len(hexaddr) == 8:  # IPv4, little-endian
        return ".".join(str(int(hexaddr[i : i + 2], 16)) for i in (6, 4, 2, 0))
    return "::" if set(hexaddr) == {"0"} else hexaddr


def start_ui(processes: Processes, cwd: Path, *args: str) -> tuple[int, object]:
    port = free_port()
    proc = processes.start("--standin", "--web-port", str(port), *args, cwd=cwd)
    deadline = time.monotonic() + 30
    while not listening_addresses(port):
        assert proc.poll() is None and time.monotonic() < deadline, "the web UI never listened"
        time.sleep(0.2)
    return port, proc


def test_the_web_ui_listens_on_loopback_only_by_default(processes, tmp_path):
    port, _ = start_ui(processes, tmp_path)
    assert listening_addresses(port) == {"127.0.0.1"}
    status, _ = http("GET", f"http://127.0.0.1:{port}/kanta-seed/progress.json")
    assert status == 200


@pytest.mark.parametrize(("web_host", "shown"), [("0.0.0.0", "0.0.0.0"), ("127.0.0.1", "127.0.0.1")])
def test_an_explicit_web_host_is_honoured_and_opening_it_wider_warns(processes, tmp_path, web_host, shown):
    port, proc = start_ui(processes, tmp_path, "--web-host", web_host)
    assert listening_addresses(port) == {shown}
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    warned = "listens on every network interface without a login" in out
    assert warned == (web_host == "0.0.0.0"), out[-2000:]
