"""Exactly once where Kanta lags, drops and is interrupted: real ``locust`` processes against the
Kanta-like stand-in, and the proof is the stand-in's own records (its SQLite rows and blob files):
at the end the event holds every image of the data set exactly as many times as the run asked for.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from seed.coordination.backlog import START

from .helpers import (
    LOCUSTFILE,
    free_port,
    read_json,
    run_locust,
    spawn_locust,
    stored_contents,
    yale_contents,
)

CODE = "test-yale-faces"
FAST = ["--instant"]  # the stand-in stores 20 ms after the 202 (for tests that need speed)


def times(n: int) -> Counter:
    return Counter({digest: count * n for digest, count in yale_contents().items()})


def seed(standin, yale_zip, cwd, *extra: str, users: str = "5", timeout: float = 120):
    summary = cwd / "s.json"
    summary.unlink(missing_ok=True)
    run = run_locust(
        "-u", users, "-r", users, "-H", standin.url, "--images", str(yale_zip),
        "--summary-json", str(summary), *extra, cwd=cwd, timeout=timeout,
    )  # fmt: skip
    return run, (read_json(summary) if summary.exists() else {})


def standin_stats(standin) -> dict:
    from .helpers import http

    status, body = http("GET", standin.url + "/_standin/stats")
    assert status == 200, body
    return json.loads(body)


# --- faults ---------------------------------------------------------------------------------------
MIXES = {
    "5xx-and-resets": ["--error-rate", "0.2", "--reset-before-rate", "0.05"],
    "throttled": ["--throttle-rate", "0.1", "--retry-after", "0.3"],
    "silent-loss": ["--loss-rate", "0.05"],
    "reset-after-store": ["--reset-after-rate", "0.05"],
    "all-together": [
        "--error-rate", "0.15", "--throttle-rate", "0.05", "--retry-after", "0.3",
        "--reset-before-rate", "0.03", "--reset-after-rate", "0.03", "--loss-rate", "0.05",
        "--latency-ms", "5", "--visible-after", "1",
    ],
}  # fmt: skip


@pytest.mark.parametrize("mix", list(MIXES), ids=list(MIXES))
def test_fault_mix_ends_with_exactly_the_data_set(standin_factory, yale_zip, tmp_path, mix):
    standin = standin_factory(*FAST, *MIXES[mix], "--fault-seed", "7")
    run, s = seed(standin, yale_zip, tmp_path)
    assert run.returncode == 0, run.output[-3000:]
    assert stored_contents(standin, CODE) == times(1), run.output[-3000:]
    assert (s["verified"], s["uploaded"], s["lost"], s["extra_copies"], s["missing"]) == (
        165,
        165,
        [],
        [],
        [],
    )
    if mix == "silent-loss":
        assert s["repaired"] > 0
    if mix == "reset-after-store":  # stored, but the client never heard: found by content, not resent
        assert s["adopted"] and s["repaired"] == 0
    if mix in ("5xx-and-resets", "throttled", "all-together"):
        assert s["retries"] > 0 and s["attempts"] > 165


def test_slow_visibility_is_waited_for_not_repaired(standin_factory, yale_zip, tmp_path):
    standin = standin_factory(*FAST, "--visible-after", "8")
    run, s = seed(standin, yale_zip, tmp_path)
    assert run.returncode == 0, run.output[-3000:]
    assert stored_contents(standin, CODE) == times(1)
    assert s["repaired"] == 0 and s["removed"] == 0 and s["pipeline"]["stored_s"] >= 8


# --- a backlog Kanta cannot drain -------------------------------------------------------------------
# A pipeline slower than the uploads and a DB pool that times out quickly: unbounded, it drops.
DROPPY = ["--workers", "2", "--detect-ms", "40", "--db-pool", "6", "--db-pool-timeout", "1.5"]


@pytest.mark.parametrize("bound", ["default", "unbounded"])
def test_a_backlog_that_drops_ends_with_every_image_stored_exactly_three_times(
    standin_factory, yale_zip, tmp_path, bound
):
    standin = standin_factory(*DROPPY)
    extra = ["--max-backlog", "0"] if bound == "unbounded" else ["--max-backlog", "40"]
    run, s = seed(standin, yale_zip, tmp_path, "--loops", "3", *extra, users="10", timeout=240)
    assert run.returncode == 0, run.output[-3000:]
    assert stored_contents(standin, CODE) == times(3)
    dropped = standin_stats(standin)["dropped"]
    if bound == "unbounded":
        assert dropped > 0 and s["repaired"] >= dropped  # it overloaded Kanta, and repaired every drop
    else:
        assert dropped == 0 and s["pipeline"]["held_back_s"] > 0  # the bound kept Kanta from dropping


# --- interrupted, then the same command ---------------------------------------------------------------
def wait_until_stored(standin, code: str, timeout_s: float = 30.0) -> None:
    """Until the run is in its upload phase: the event exists and holds an image."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not (code in standin.events() and standin.images(code)):
        time.sleep(0.02)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_interrupted_then_the_same_command_stores_exactly_165(standin_factory, yale_zip, tmp_path, sig):
    standin = standin_factory("--latency-ms", "30")
    rng = random.Random(f"{sig}-trials")
    for trial in range(2):
        cwd = tmp_path / f"trial{trial}"
        cwd.mkdir()
        code = f"interrupt-{trial}"
        args = ["-u", "5", "-r", "5", "-H", standin.url, "--images", str(yale_zip), "--event-code", code]
        proc = spawn_locust(str(LOCUSTFILE), "--headless", "--only-summary", *args, cwd=cwd)
        try:
            wait_until_stored(standin, code)
            time.sleep(rng.random() * 1.5)  # somewhere in the upload phase
            os.killpg(proc.pid, getattr(signal, sig)) if sig == "SIGKILL" else proc.send_signal(
                getattr(signal, sig)
            )
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
        if sig != "SIGKILL":
            assert proc.returncode == 1 and "Traceback" not in out, out[-3000:]
            assert out.rstrip().splitlines()[-1].startswith("  "), "the summary is the last thing printed"
            assert "rerun the same command to resume" in out
        again = run_locust(*args, cwd=cwd)
        assert again.returncode == 0, again.output[-3000:]
        assert stored_contents(standin, code) == times(1), (sig, trial, again.output[-2000:])


def test_a_second_sigint_stops_at_once_cleanly(standin_factory, yale_zip, tmp_path):
    standin = standin_factory("--latency-ms", "400")
    args = ["-u", "5", "-r", "5", "-H", standin.url, "--images", str(yale_zip), "--stop-timeout", "30"]
    proc = spawn_locust(str(LOCUSTFILE), "--headless", "--only-summary", *args, cwd=tmp_path)
    wait_until_stored(standin, CODE)  # not a fixed sleep: on a loaded machine the imports alone take seconds
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    assert time.monotonic() - t0 < 5, "the second signal must not wait out the stop timeout"
    assert proc.returncode == 1 and "Traceback" not in out and "unexpected state" not in out, out[-3000:]
    again = run_locust(*args, cwd=tmp_path)
    assert again.returncode == 0, again.output[-3000:]
    assert stored_contents(standin, CODE) == times(1)


# --- a worker that stops answering ----------------------------------------------------------------
def test_a_frozen_worker_then_thawed_leaves_exactly_165(standin_factory, yale_zip, tmp_path, processes):
    standin = standin_factory("--latency-ms", "50")
    port, summary = free_port(), tmp_path / "s.json"
    master = processes.master(
        "-u", "6", "-r", "6", "-H", standin.url, "--images", str(yale_zip), "--summary-json", str(summary),
        port=port, workers=2, cwd=tmp_path,
    )  # fmt: skip
    frozen, other = processes.worker(port, cwd=tmp_path), processes.worker(port, cwd=tmp_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not standin.events() or len(standin.images(CODE)) < 20):
        time.sleep(0.05)
    os.kill(frozen.pid, signal.SIGSTOP)
    time.sleep(6)  # well past Locust's heartbeat: the master declares it lost
    os.kill(frozen.pid, signal.SIGCONT)
    code, out = processes.finish(master)
    assert code == 0, out[-3000:]
    for w in (frozen, other):
        processes.finish(w, timeout=30)
    assert stored_contents(standin, CODE) == times(1), out[-3000:]
    assert "is gone" in out


# --- the backend goes away --------------------------------------------------------------------------
def test_a_backend_restart_mid_run_is_ridden_through(standin_factory, yale_zip, tmp_path):
    standin = standin_factory("--latency-ms", "60")
    args = ["-u", "5", "-r", "5", "-H", standin.url, "--images", str(yale_zip), "--summary-json", "s.json"]
    proc = spawn_locust(str(LOCUSTFILE), "--headless", "--only-summary", *args, cwd=tmp_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not standin.events() or len(standin.images(CODE)) < 40):
        time.sleep(0.05)
    standin.kill()  # down: connections refused, jobs in its pipeline gone
    time.sleep(10)
    standin.start()  # back on the same port, with what it had stored
    out, _ = proc.communicate(timeout=150)
    assert proc.returncode == 0, out[-3000:]
    assert stored_contents(standin, CODE) == times(1)
    # Its detection jobs died with it: what it had stored and not processed was removed and sent again,
    # so every image in the event went through detection (none is left at 0 faces unlooked at).
    stranded = standin.rows("SELECT uuid FROM images WHERE event_code = ? AND processed_at IS NULL", CODE)
    assert stranded == [], out[-3000:]
    s = read_json(tmp_path / "s.json")
    assert s["reprocessed"] == 0 or "processed again after Kanta went away" in out


def test_a_hung_backend_ends_the_run_with_one_clear_line(standin_factory, yale_zip, tmp_path):
    standin = standin_factory("--latency-ms", "60")
    args = [
        "-u", "5", "-r", "5", "-H", standin.url, "--images", str(yale_zip), "--summary-json", "s.json",
        "--request-timeout", "2", "--verify-timeout", "6", "--retry-for", "6",
    ]  # fmt: skip
    proc = spawn_locust(str(LOCUSTFILE), "--headless", "--only-summary", *args, cwd=tmp_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not standin.events() or len(standin.images(CODE)) < 20):
        time.sleep(0.05)
    standin.signal(signal.SIGSTOP)  # accepts connections (the kernel does), answers nothing
    t0 = time.monotonic()
    try:
        out, _ = proc.communicate(timeout=90)
    finally:
        standin.signal(signal.SIGCONT)
    assert time.monotonic() - t0 < 60
    assert proc.returncode == 1, out[-3000:]
    assert "Traceback" not in out
    said = [ln for ln in out.splitlines() if "stopped answering" in ln or "nothing changed" in ln]
    assert said, out[-3000:]
    failed_lines = [ln for ln in out.splitlines() if "FAILED" in ln]
    assert len(failed_lines) <= 1  # one line with a count, names in the JSON


# --- an event that already holds images ------------------------------------------------------------
def test_an_event_that_already_holds_the_data_set(standin_factory, yale_zip, tmp_path):
    standin = standin_factory(*FAST)
    first, _ = seed(standin, yale_zip, tmp_path)
    assert first.returncode == 0, first.output[-3000:]
    other = tmp_path / "b"  # another folder, another user: no ledger of that run
    other.mkdir()
    found, s = seed(standin, yale_zip, other)  # the copies are found by content: nothing to upload
    assert found.returncode == 0, found.output[-3000:]
    assert "already holds 165 of the 165 images (by content): nothing to upload" in found.output
    assert s["present"] == 165 and s["attempts"] == 0
    (tmp_path / "c").mkdir()
    topped, s = seed(standin, yale_zip, tmp_path / "c", "--top-up")  # what a seed run always does
    assert topped.returncode == 0 and s["present"] == 165 and s["attempts"] == 0, topped.output[-3000:]
    assert stored_contents(standin, CODE) == times(1)
    again, s = seed(standin, yale_zip, other, "--fresh")  # reset, then seed: still exactly once
    assert again.returncode == 0, again.output[-3000:]
    assert s["cleared"] == 165 and s["attempts"] >= 165
    assert stored_contents(standin, CODE) == times(1)


def test_a_rerun_after_a_complete_run_uploads_nothing(standin_factory, yale_zip, tmp_path):
    standin = standin_factory(*FAST)
    first, _ = seed(standin, yale_zip, tmp_path)
    assert first.returncode == 0, first.output[-3000:]
    second, s = seed(standin, yale_zip, tmp_path)
    assert second.returncode == 0, second.output[-3000:]
    assert "nothing to upload" in second.output and "--fresh" in second.output
    assert s["resumed"] == 165 and s["verified"] == 165 and s["attempts"] == 0
    assert s["proof"].startswith("nothing sent by this run: the ledger names the copy an earlier run stored")
    assert stored_contents(standin, CODE) == times(1)


def test_another_data_set_in_a_seeded_event_is_no_resume_and_touches_nothing(
    standin_factory, yale_zip, tmp_path
):
    """The ledger of the first run is not a licence for the second: its images are the event's own."""
    standin = standin_factory(*FAST)
    first, _ = seed(standin, yale_zip, tmp_path)
    assert first.returncode == 0, first.output[-3000:]
    subset = tmp_path / "subject01"  # the same bytes under other member names: another data set
    subset.mkdir()
    with zipfile.ZipFile(yale_zip) as zf:
        for name in zf.namelist():
            if "/subject01/" in name and name.endswith(".png"):
                (subset / Path(name).name).write_bytes(zf.read(name))
    refused, _ = seed(standin, subset, tmp_path)
    assert refused.returncode == 2, refused.output[-3000:]
    assert "holds 154 images that are not the data set's (and 11 copies of it)" in refused.output
    topped, s = seed(standin, subset, tmp_path, "--allow-existing")
    assert topped.returncode == 0, topped.output[-3000:]
    assert s["present"] == 11 and s["attempts"] == 0 and s["removed"] == 0
    assert "the event also holds 154 images from before the run, untouched" in topped.output
    assert stored_contents(standin, CODE) == times(1)  # nothing uploaded, nothing deleted
    again, s = seed(standin, yale_zip, tmp_path)  # and back to the whole set: found by content
    assert again.returncode == 0 and s["attempts"] == 0, again.output[-3000:]
    assert stored_contents(standin, CODE) == times(1)


def test_a_failed_loops_run_resumes_rather_than_starting_over(standin_factory, yale_zip, tmp_path):
    standin = standin_factory(*FAST, "--latency-ms", "20")
    proc = spawn_locust(
        str(LOCUSTFILE), "--headless", "--only-summary", "-u", "5", "-r", "5", "-H", standin.url,
        "--images", str(yale_zip), "--loops", "3", cwd=tmp_path,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not standin.events() or len(standin.images(CODE)) < 200):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    run, s = seed(standin, yale_zip, tmp_path, "--loops", "3")
    assert run.returncode == 0, run.output[-3000:]
    assert s["resumed"] >= 150
    assert stored_contents(standin, CODE) == times(3)


# --- what the read-back can and cannot see -------------------------------------------------------------
def test_no_verify_trusts_the_202(standin_factory, yale_zip, tmp_path):
    standin = standin_factory(*FAST, "--loss-rate", "0.1", "--fault-seed", "3")
    run, s = seed(standin, yale_zip, tmp_path, "--no-verify")
    assert run.returncode == 0
    assert s["uploaded"] == 165 and s["readback_polls"] == 0 and "trusts each 202" in s["proof"]
    time.sleep(0.3)
    assert sum(stored_contents(standin, CODE).values()) < 165  # what --no-verify cannot see


def test_verify_timeout_names_what_is_missing(standin_factory, yale_zip, tmp_path):
    standin = standin_factory(*FAST, "--visible-after", "30")
    run, s = seed(standin, yale_zip, tmp_path, "--verify-timeout", "2")
    assert run.returncode == 1, run.output[-3000:]
    # Nothing is listed, so the backlog bound holds the rest back: no more is sent into a silent Kanta.
    # The bound starts at START until polls measure a drain, and nothing drains here.
    assert s["verified"] == 0 and len(s["lost"]) == s["uploaded"] == START
    assert s["not_attempted"] == 165 - START
    assert any("nothing changed on the server for 2 s" in n for n in s["notes"])
    standin.stop()  # before its delayed stores land, so nothing else is touched


def test_a_server_that_lists_garbage_ends_the_run_with_exit_1_and_a_line(standin_factory, yale_zip, tmp_path):
    """A list item with "faces": "n/a" once killed the read-back greenlet and hung the run."""
    standin = standin_factory(*FAST, "--garbled-list")
    t0 = time.monotonic()
    run, s = seed(standin, yale_zip, tmp_path, timeout=60)
    assert time.monotonic() - t0 < 45
    assert run.returncode == 1 and "Traceback" not in run.output, run.output[-3000:]
    assert any("answers GET /pics with a list that is not Kanta's" in n for n in s["notes"])
