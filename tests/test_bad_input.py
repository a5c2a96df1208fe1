"""Bad input fails before any upload: exit code 2, one line that says what and how to fix, nothing sent."""

from __future__ import annotations

import json
import os
import socket
import time
import zipfile
from pathlib import Path

import pytest

from .helpers import run_locust
from .tripwire import Tripwire


@pytest.fixture
def standin(fast_standin):
    """These tests are not about Kanta's lag: a stand-in that stores at once."""
    return fast_standin


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_case(tmp_path, case: str) -> tuple[list[str], str, bool]:
    """(extra args, expected words in the message, whether -H points at the stand-in)."""
    if case == "missing-path":
        return ["--images", str(tmp_path / "nope.zip")], "does not exist", True
    if case == "fifo-path":
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)
        return ["--images", str(fifo)], "neither a file nor a folder", True
    if case == "not-a-zip":
        (tmp_path / "notes.txt").write_text("hello")
        return ["--images", str(tmp_path / "notes.txt")], "not a zip file", True
    if case == "damaged-zip":
        good = tmp_path / "good.zip"
        with zipfile.ZipFile(good, "w") as zf:
            zf.writestr("a.png", b"\x89PNG\r\n\x1a\n" + b"x" * 5000)
        data = bytearray(good.read_bytes())
        data[40:200] = b"\0" * 160  # corrupt the member's data, keep the directory
        (tmp_path / "bad.zip").write_bytes(bytes(data))
        return ["--images", str(tmp_path / "bad.zip")], "damaged zip", True
    if case == "no-images":
        folder = tmp_path / "empty-set"
        (folder / "sub").mkdir(parents=True)
        (folder / ".DS_Store").write_bytes(b"junk")
        (folder / "sub" / "readme.txt").write_text("no images here")
        return ["--images", str(folder)], "holds no images", True
    if case.startswith("code:"):
        return [f"--event-code={case[5:]}"], "--event-code", True
    if case.startswith("host:"):
        return ["-H", case[5:]], "host", False
    if case == "no-host-nothing-on-8000":
        return [], "nothing answers at http://localhost:8000", False
    if case == "nothing-answers":
        return ["-H", f"http://127.0.0.1:{closed_port()}"], "nothing answers", False
    if case == "negative-pause":
        return ["--upload-pause", "-1"], "--upload-pause", True
    if case == "nan-pause":
        return ["--upload-pause", "nan"], "--upload-pause", True
    if case == "zero-attempts":
        return ["--max-attempts", "0"], "--max-attempts", True
    if case == "zero-verify-timeout":
        return ["--verify-timeout", "0"], "--verify-timeout", True
    if case == "member-over-20mb":
        big = tmp_path / "bomb.zip"
        with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("set/huge.png", b"\x89PNG\r\n\x1a\n" + bytes(21 * 1024 * 1024))
        return ["--images", str(big)], "20 MB", True
    if case == "summary-json-is-a-folder":
        (tmp_path / "out").mkdir()
        return ["--summary-json", str(tmp_path / "out")], "is a folder", True
    if case == "html-under-a-file":
        (tmp_path / "notes.txt").write_text("x")
        return ["--html", str(tmp_path / "notes.txt" / "r.html")], "cannot create files", True
    if case == "baseline-typo":
        return ["--baseline", str(tmp_path / "basline.json")], "--baseline", True
    if case == "baseline-old-schema":
        (tmp_path / "old.json").write_text('{"rate_per_s": 100, "images": 165}')
        return ["--baseline", str(tmp_path / "old.json")], "schema", True
    if case == "negative-check":
        return ["--check-p95-ms", "-5"], "--check-p95-ms -5 must be a number >= 0", True
    if case == "share-over-one":
        return ["--check-min-faces-share", "1.5"], "must be a share in 0..1", True
    if case == "bench-cleanup-without-bench":
        return ["--bench-cleanup"], "--bench-cleanup deletes a --bench run's own events; add --bench", True
    if case == "strict-with-junk":
        return ["--strict"], "--strict: 1 member of", True
    if case == "zero-users":
        return ["-u", "0"], "-u 0: no user would upload anything", True
    if case == "baseline-other-users":
        other = {"schema": 2, "data_set": "/elsewhere/yale_png.zip", "images": 165, "users": 50,
                 "host": "http://127.0.0.1:1", "rate_per_s": 100.0}  # fmt: skip
        (tmp_path / "base.json").write_text(json.dumps(other))
        return ["--baseline", str(tmp_path / "base.json")], "(users: run 3, baseline 50)", True
    if case == "only-damaged-images":
        z = tmp_path / "damaged.zip"
        with zipfile.ZipFile(z, "w") as zf:
            zf.writestr("set/cut.png", b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + b"x" * 40)
        return ["--images", str(z)], "damaged", True
    raise AssertionError(case)


CASES = [
    "missing-path",
    "fifo-path",
    "not-a-zip",
    "damaged-zip",
    "no-images",
    "code:Test-Upper",
    "code:a--b",
    "code:under_score",
    "code:-lead",
    "code:trail-",
    "code:ab",
    "code:" + "x" * 33,
    "code:a b",
    "host:ftp://127.0.0.1:1",
    "host:localhost:8000",
    "host:http://127.0.0.1:abc",
    "host:http://127.0.0.1:99999",
    "nothing-answers",
    "no-host-nothing-on-8000",
    "negative-pause",
    "nan-pause",
    "zero-attempts",
    "zero-verify-timeout",
    "member-over-20mb",
    "code:Bad_Code",
    "summary-json-is-a-folder",
    "html-under-a-file",
    "baseline-typo",
    "baseline-old-schema",
    "negative-check",
    "share-over-one",
    "bench-cleanup-without-bench",
    "strict-with-junk",
    "only-damaged-images",
    "zero-users",
    "baseline-other-users",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_2_before_any_request(standin, yale_zip, tmp_path, case):
    args, words, at_standin = make_case(tmp_path, case)
    base = ["--images", str(yale_zip)] if "--images" not in args else []
    host = ["-H", standin.url] if at_standin else []
    # The default host is a developer's own Kanta: that case runs where nothing can listen on it.
    own_network = case == "no-host-nothing-on-8000"
    run = run_locust(
        "-u", "3", "-r", "3", *host, *base, *args, cwd=tmp_path, timeout=30, own_network=own_network
    )
    assert run.returncode == 2, run.output[-2000:]
    lines = [ln for ln in run.output.splitlines() if ln.startswith("kanta-seed:")]
    assert len(lines) == 1 and words in lines[0], run.output[-2000:]
    assert "Traceback" not in run.output
    assert run.seconds < 20
    assert standin.events() == []  # nothing was sent
    if case == "code:Bad_Code":  # every problem at once, not one per try
        assert "upper-case" in lines[0] and "'_'" in lines[0]


def test_readme_hostile_input_table_lists_exactly_these_cases():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme.split("### Hostile input", 1)[1].split("\n\n## ", 1)[0]
    rows = [ln.split("|")[1].strip() for ln in table.splitlines() if ln.startswith("| ") and "---" not in ln]
    assert sorted(rows[1:]) == sorted(CASES)  # rows[0] is the header


def test_the_tripwire_records_what_connects_to_it(tmp_path):
    """The suite's guard on port 8000 (tests/conftest.py), tried on a port of its own."""
    port = closed_port()
    wire = Tripwire(port, tmp_path / "hits.txt", hosts=("127.0.0.1",)).start()
    try:
        assert wire.listening == [f"127.0.0.1:{port}"]
        with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
            c.sendall(b"POST /events HTTP/1.1\r\n")
        deadline = time.monotonic() + 5
        while not wire.hits and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(wire.hits) == 1 and "POST /events" in wire.hits[0]
    finally:
        wire.stop()
