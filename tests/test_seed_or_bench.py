"""A run declares its target, and every start path reaches it: real ``locust`` processes against one
long-lived stand-in, asserting on what the stand-in stored.

- seed (the default): a rerun into a complete event uploads nothing and reports no regression;
  ``--fresh`` resets (removes the data set's copies by content) and seeds: exactly once again;
- bench: each run uploads everything into a new event of its own, and compares with a baseline;
- Kanta or nothing: a plain HTTP server at the host is refused before the first upload, in one line;
- usable means faces: a stand-in whose face detection is off does not pass;
- the README's CI recipe runs as written (extracted from the README, so the two cannot drift).
"""

from __future__ import annotations

import http.server
import re
import shlex
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

from seed.coordination.checks import CHECKS

from .helpers import PROJECT, YALE_ZIP, read_json, run_locust, stored_contents, yale_contents

CODE = "test-yale-faces"
ONCE = yale_contents()


def seed(standin, cwd: Path, *extra: str, summary: str = "s.json"):
    cwd.mkdir(parents=True, exist_ok=True)
    out = cwd / summary
    out.unlink(missing_ok=True)
    run = run_locust(
        "-u", "5", "-r", "5", "-H", standin.url, "--images", str(YALE_ZIP), "--summary-json", str(out),
        *extra, cwd=cwd,
    )  # fmt: skip
    return run, (read_json(out) if out.exists() else {})


def test_a_rerun_into_a_complete_event_uploads_nothing_and_reports_no_regression(fast_standin, tmp_path):
    first, _ = seed(fast_standin, tmp_path, summary="base.json")
    assert first.returncode == 0, first.output[-3000:]
    assert stored_contents(fast_standin, CODE) == ONCE
    again, s2 = seed(fast_standin, tmp_path, "--baseline", str(tmp_path / "base.json"))
    assert again.returncode == 0, again.output[-3000:]
    assert stored_contents(fast_standin, CODE) == ONCE  # nothing added
    assert (s2["measured"], s2["regressions"], s2["rate_per_s"]) == (False, [], None)
    assert s2["uploaded"] - s2["resumed"] - s2["present"] == 0
    assert "uploaded   0 (165 already there)" in again.output
    assert "nothing measured" in again.summary_line("rate")
    assert again.summary_line("baseline").strip().startswith("baseline   not compared")


def test_a_rerun_with_no_ledger_finds_the_copies_by_content(fast_standin, tmp_path):
    first, _ = seed(fast_standin, tmp_path, "--ledger", str(tmp_path / "one.jsonl"))
    assert first.returncode == 0, first.output[-3000:]
    again, s = seed(fast_standin, tmp_path, "--ledger", str(tmp_path / "other.jsonl"))
    assert again.returncode == 0, again.output[-3000:]
    assert (s["present"], s["attempts"]) == (165, 0)
    assert stored_contents(fast_standin, CODE) == ONCE


def test_fresh_after_a_complete_run_resets_then_seeds_exactly_once(fast_standin, tmp_path):
    first, _ = seed(fast_standin, tmp_path)
    assert first.returncode == 0, first.output[-3000:]
    before = {u for u, _ in fast_standin.images(CODE)}
    fresh, s = seed(fast_standin, tmp_path, "--fresh")
    assert fresh.returncode == 0, fresh.output[-3000:]
    assert stored_contents(fast_standin, CODE) == ONCE
    assert not before & {u for u, _ in fast_standin.images(CODE)}  # every copy is new
    assert (s["cleared"], s["uploaded"], s["measured"]) == (165, 165, True)
    assert "165 copies removed first" in fresh.summary_line("uploaded")


def test_extra_copies_found_before_the_run_are_removed_and_foreign_images_refused(fast_standin, tmp_path):
    # The data set twice in one event (--loops 2): a seed run of it once converges to one copy.
    twice, _ = seed(fast_standin, tmp_path, "--loops", "2")
    assert twice.returncode == 0, twice.output[-3000:]
    assert stored_contents(fast_standin, CODE) == {h: 2 * n for h, n in ONCE.items()}
    run, s = seed(fast_standin, tmp_path)
    assert run.returncode == 0, run.output[-3000:]
    assert stored_contents(fast_standin, CODE) == ONCE
    assert (s["cleared"], s["present"], s["attempts"]) == (165, 165, 0)

    # Another data set into that event: the Yale images are not its own, so they are refused, untouched.
    run, _ = seed(fast_standin, tmp_path, "--images", str(one_image(tmp_path)))
    assert run.returncode == 2, run.output[-2000:]
    assert "that are not the data set's" in run.output and "--allow-existing" in run.output
    assert stored_contents(fast_standin, CODE) == ONCE
    run, s = seed(fast_standin, tmp_path, "--images", str(one_image(tmp_path)), "--allow-existing")
    assert run.returncode == 0, run.output[-2000:]
    # Its one image is there already, by content: nothing to upload; the 164 others are left untouched.
    assert stored_contents(fast_standin, CODE) == ONCE
    assert (s["present"], s["attempts"], s["held_before"]) == (1, 0, 164)


def one_image(tmp_path: Path) -> Path:
    with zipfile.ZipFile(YALE_ZIP) as zf:
        data = zf.read("yale_png/subject01/subject01_happy.png")
    folder = tmp_path / "one"
    folder.mkdir(exist_ok=True)
    (folder / "only.png").write_bytes(data)
    return folder


def test_bench_twice_uploads_everything_into_two_events_and_compares(fast_standin, tmp_path):
    first, s1 = seed(fast_standin, tmp_path, "--bench", summary="base.json")
    assert first.returncode == 0, first.output[-3000:]
    second, s2 = seed(
        fast_standin,
        tmp_path,
        "--bench",
        "--baseline",
        str(tmp_path / "base.json"),
        "--max-regression",
        "0.9",
    )
    # Compared, not refused (exit 2 or "not comparable"); whether a loaded machine's latency regressed is
    # the gate's business, not this test's.
    assert second.returncode in (0, 3), second.output[-3000:]
    events = fast_standin.events()
    assert len(events) == 2 and all(re.fullmatch(rf"{CODE}-[0-9a-f]{{6}}", e) for e in events), events
    for code in events:
        assert stored_contents(fast_standin, code) == ONCE
    assert (s1["mode"], s2["mode"], s2["uploaded"], s2["measured"]) == ("bench", "bench", 165, True)
    assert s2["baseline"].startswith("compared with")
    assert all(m.startswith("regression-") for m in s2["regressions"]), s2["regressions"]


def test_bench_cleanup_deletes_the_run_events(fast_standin, tmp_path):
    run, s = seed(fast_standin, tmp_path, "--bench", "--bench-cleanup", "--loops", "2")
    assert run.returncode == 0, run.output[-3000:]
    assert len(s["events"]) == 2 and fast_standin.events() == []
    assert any("--bench-cleanup: deleted 2 events" in n for n in s["notes"])


@pytest.fixture
def plain_server() -> Iterator[str]:
    """Any web server that is not Kanta: Python's own, answering 404 pages in HTML."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_host_that_is_not_kanta_is_refused_in_one_line(plain_server, tmp_path):
    run = run_locust("-u", "5", "-r", "5", "-H", plain_server, "--images", str(YALE_ZIP), cwd=tmp_path)
    assert run.returncode == 2, run.output[-3000:]
    lines = [ln for ln in run.output.splitlines() if ln.startswith("kanta-seed:")]
    assert (
        len(lines) == 1 and f"{plain_server} is not Kanta: GET /system/health answered HTTP 404" in lines[0]
    )
    assert "Traceback" not in run.output
    assert run.seconds < 60  # bounded: it never starts a run (not a timing assertion on the work)


def test_a_kanta_whose_face_detection_is_off_does_not_pass(standin_factory, tmp_path):
    standin = standin_factory("--no-faces")
    run, s = seed(standin, tmp_path)
    assert run.returncode == 1, run.output[-3000:]
    assert s["faces"]["images_with_faces"] == 0 and s["faces"]["expected"] == 162
    assert "far fewer have faces" in run.summary_line("result")
    assert stored_contents(standin, CODE) == ONCE  # stored: it is the faces that are missing


def test_every_check_that_cannot_be_evaluated_fails_and_is_named(fast_standin, tmp_path):
    first, _ = seed(fast_standin, tmp_path)
    assert first.returncode == 0, first.output[-3000:]
    limits = [a for c in CHECKS for a in (c.flag, "0.5")]
    again, s = seed(fast_standin, tmp_path, *limits, "--wait-clusters", "1")
    assert again.returncode == 3, again.output[-3000:]
    named = [m.split(":")[0] for m in s["regressions"]]
    assert named == [c.label for c in CHECKS]
    assert all("not measured" in m or "no clusters" in m for m in s["regressions"]), s["regressions"]


def readme_ci_command() -> str:
    """The 'seed and gate' command of the README's CI example, as written there."""
    text = (PROJECT / "README.md").read_text()
    block = re.search(r"- name: seed and gate\n\s+run: >\n((?:\s{8}.+\n)+)", text)
    assert block, "the README's CI example has no 'seed and gate' step"
    return " ".join(line.strip() for line in block.group(1).splitlines())


def test_the_readme_ci_recipe_runs_as_written(tmp_path):
    """The README's CI step, twice as CI runs it: the first run starts the history (no baseline yet), the
    second finds one run there (the gate judges from three). Both pass; every artifact is there. The gate
    itself, on recorded and on real reruns: tests/test_gate.py and tests/test_false_alarms.py (slow)."""
    command = readme_ci_command()
    args = shlex.split(command)
    assert args[0] == ".venv/bin/locust", command
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "yale_png.zip").symlink_to(YALE_ZIP)  # the README's `cp "$YALE_ZIP" ...`
    runs = []
    for _ in range(2):
        done = run_locust(*[a for a in args[1:] if a != "--headless"], cwd=tmp_path, timeout=240)
        assert done.returncode == 0, done.output[-3000:]
        runs.append(read_json(tmp_path / "perf" / "run.json"))
    first, second = runs
    assert first["mode"] == "bench" and first["images"] == 495 and first["regressions"] == []
    assert "no earlier run in perf/history" in first["baseline"]
    # One earlier run shows nothing of the noise between runs: the gate waits for three.
    waiting = "holds 1 earlier run of this kind: the gate judges from 3 on"
    assert waiting in second["baseline"], second["baseline"]
    assert len(list((tmp_path / "perf" / "history").glob("*.json"))) == 2
    for artifact in ("run.md", "report.html", "junit.xml"):
        assert (tmp_path / "perf" / artifact).stat().st_size > 0
    suite = ElementTree.parse(tmp_path / "perf" / "junit.xml").getroot()
    assert suite.iter("testcase") and not list(suite.iter("failure"))


class HalfKanta(http.server.BaseHTTPRequestHandler):
    """Passes every check before the run (health, events, an empty list), then answers uploads with a
    page of HTML: an unexpected answer in the middle of a run."""

    def log_message(self, *_: object) -> None:
        pass

    def answer(self, status: int, body: str, kind: str = "application/json") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        known = {"/system/health": '{"status": "ok"}', "/events": '{"events": []}', "/pics": "[]"}
        self.answer(200, known[path]) if path in known else self.answer(404, '{"detail": "Not Found"}')

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/events"):
            self.answer(201, '{"id": 1, "code": "x", "status": "created"}')
        else:
            self.answer(200, "<!DOCTYPE html>\n<html><body><h1>Welcome</h1>\n" + "x" * 500, "text/html")


def test_an_unexpected_answer_in_a_run_ends_it_in_one_line_without_a_traceback(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HalfKanta)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host = f"http://127.0.0.1:{server.server_address[1]}"
        out = tmp_path / "s.json"
        run = run_locust(
            "-u", "2", "-r", "2", "-H", host, "--images", str(one_image(tmp_path)),
            "--summary-json", str(out), cwd=tmp_path,
        )  # fmt: skip
    finally:
        server.shutdown()
    assert run.returncode == 1, run.output[-3000:]
    assert "Traceback" not in run.output and "<!DOCTYPE html>\n" not in run.output, run.output[-3000:]
    assert run.summary_line("FAILED").strip() == "FAILED     1 (1 HTTP 200): only.png"
    (failed,) = read_json(out)["failed_images"]
    assert failed["error"].startswith("200 <!DOCTYPE html> <html><body><h1>Welcome</h1> xxx")
    assert len(failed["error"]) < 100, failed
