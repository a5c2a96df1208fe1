"""Nothing lost: retries, read-back proof, repair of images lost after 202, resume after a crash.

Each run goes against a stand-in with injected faults (seeded, so repeatable), and the proof is the
stand-in's own records: every image of the data set is stored under the uuid the ledger names for
it, with the same bytes, and any extra copy is of an image the summary names as a possible duplicate.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import (
    LOCUSTFILE,
    assert_every_image_and_duplicates_named,
    child_env,
    read_json,
    run_locust,
    stored_contents,
    yale_contents,
    yale_member_hashes,
)

CODE = "test-yale-faces"

MIXES = {
    "5xx-and-resets": ["--error-rate", "0.2", "--reset-before-rate", "0.05"],
    "throttled": ["--throttle-rate", "0.1", "--retry-after", "0.3"],
    "silent-loss": ["--loss-rate", "0.05"],
    "slow-visibility": ["--visible-after", "3"],
    "reset-after-store": ["--reset-after-rate", "0.05"],
    "all-together": [
        "--error-rate", "0.15", "--throttle-rate", "0.05", "--retry-after", "0.3",
        "--reset-before-rate", "0.03",
        "--reset-after-rate", "0.03", "--loss-rate", "0.05", "--latency-ms", "5", "--visible-after", "1",
    ],
}  # fmt: skip


def ledger_uuids(path: Path) -> dict[str, str]:
    latest: dict[str, str] = {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if rec["kind"] == "result" and rec["ok"]:
            latest[rec["member"]] = rec["uuid"]
    return latest


def assert_stored_as_claimed(standin, summary: dict, ledger: Path) -> None:
    """The stand-in's records agree with the run: each member under its uuid, extras named."""
    hashes = yale_member_hashes()
    by_uuid = dict(standin.images(CODE))

    for member, uid in ledger_uuids(ledger).items():
        assert uid in by_uuid, f"{member}: uuid {uid} not stored"
        assert hashlib.sha256(by_uuid[uid]).hexdigest() == hashes[member], f"{member}: wrong bytes"
    assert_every_image_and_duplicates_named(standin, CODE, summary)


@pytest.mark.parametrize("mix", list(MIXES), ids=list(MIXES))
def test_fault_mix_ends_with_every_image_verified(standin_factory, yale_zip, tmp_path, mix):
    standin = standin_factory(*MIXES[mix], "--fault-seed", "7")
    summary, ledger = tmp_path / "s.json", tmp_path / "ledger.jsonl"
    run = run_locust(
        "-u", "5", "-r", "5", "-H", standin.url, "--images", str(yale_zip), "--summary-json", str(summary),
        "--ledger", str(ledger), cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.output[-3000:]
    s = read_json(summary)
    assert (s["verified"], s["uploaded"], s["lost"]) == (165, 165, [])
    assert_stored_as_claimed(standin, s, ledger)
    if mix == "silent-loss":
        assert s["repaired"] > 0
    if mix in ("5xx-and-resets", "throttled", "all-together"):
        assert s["retries"] > 0 and s["attempts"] > 165
    if mix == "reset-after-store":
        assert s["possible_duplicates"]  # stored, but the client never heard: named
    if mix == "slow-visibility":
        assert s["drain_s"] >= 3 and s["repaired"] == 0


def test_verify_timeout_names_what_is_missing(standin_factory, yale_zip, tmp_path):
    standin = standin_factory("--visible-after", "30")
    summary = tmp_path / "s.json"
    run = run_locust(
        "-u", "5", "-r", "5", "-H", standin.url, "--images", str(yale_zip), "--summary-json", str(summary),
        "--verify-timeout", "2", cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 1, run.output[-3000:]
    s = read_json(summary)
    assert s["verify_timed_out"] and s["verified"] == 0 and len(s["lost"]) == 165
    assert "LOST (read-back timed out)" in run.output
    standin.stop()  # before its delayed stores land, so nothing else is touched


def test_no_verify_trusts_the_202(standin_factory, yale_zip, tmp_path):
    standin = standin_factory("--loss-rate", "0.1", "--fault-seed", "3")
    summary = tmp_path / "s.json"
    run = run_locust(
        "-u", "5", "-r", "5", "-H", standin.url, "--images", str(yale_zip), "--summary-json", str(summary),
        "--no-verify", cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0
    assert read_json(summary)["uploaded"] == 165
    time.sleep(0.3)
    assert sum(stored_contents(standin, CODE).values()) < 165  # what --no-verify cannot see


def test_rerun_after_a_complete_run_uploads_nothing(standin, yale_zip, tmp_path):
    args = ("-u", "5", "-r", "5", "-H", standin.url, "--images", str(yale_zip), "--summary-json", "s.json")
    first = run_locust(*args, cwd=tmp_path)
    assert first.returncode == 0, first.output[-3000:]
    second = run_locust(*args, cwd=tmp_path)
    assert second.returncode == 0, second.output[-3000:]
    assert "nothing to upload" in second.output and "--fresh" in second.output
    s = read_json(tmp_path / "s.json")
    assert s["resumed"] == 165 and s["verified"] == 165 and s["attempts"] == 0
    assert stored_contents(standin, CODE) == yale_contents()  # not a single extra upload
    third = run_locust(*args, "--fresh", cwd=tmp_path)
    assert third.returncode == 0
    assert sum(stored_contents(standin, CODE).values()) == 330  # --fresh uploads them again


def test_sigkill_then_the_same_command_resumes(standin_factory, yale_zip, tmp_path):
    standin = standin_factory("--latency-ms", "40")
    args = ["-u", "4", "-r", "4", "-H", standin.url, "--images", str(yale_zip), "--summary-json", "s.json"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary", *args],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env(),
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not standin.events() or len(standin.images(CODE)) < 40):
            time.sleep(0.05)
        assert standin.events(), "the first run never started"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    before = sum(stored_contents(standin, CODE).values())
    assert 40 <= before < 165
    run = run_locust(*args, cwd=tmp_path)
    assert run.returncode == 0, run.output[-3000:]
    s = read_json(tmp_path / "s.json")
    assert s["resumed"] >= 40 and s["verified"] == 165
    ledger = next((tmp_path / "data" / "ledgers").glob("*.jsonl"))
    assert_stored_as_claimed(standin, s, ledger)
    assert len(s["possible_duplicates"]) <= 4  # only what 4 users had in flight at the kill
