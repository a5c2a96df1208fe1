"""Locust's distributed mode: one exactly-once queue across every worker, and what happens when one dies."""

from __future__ import annotations

import os
import signal
import time

import pytest

from .helpers import (
    free_port,
    read_json,
    run_locust,
    stored_contents,
    yale_contents,
)


@pytest.fixture
def standin(fast_standin):
    """These tests are not about Kanta's lag: a stand-in that stores at once."""
    return fast_standin


CODE = "test-yale-faces"


@pytest.mark.parametrize("processes_n", [2, 4])
def test_processes_store_every_image_once(standin, yale_zip, tmp_path, processes_n):
    summary = tmp_path / "s.json"
    run = run_locust(
        "--processes", str(processes_n), "-u", "10", "-r", "10", "-H", standin.url,
        "--images", str(yale_zip), "--summary-json", str(summary), cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.output[-3000:]
    assert standin.events() == [CODE]
    assert stored_contents(standin, CODE) == yale_contents()
    s = read_json(summary)
    assert s["uploaded"] == 165 and sum(s["uploads_per_worker"].values()) == 165
    assert len(s["uploads_per_worker"]) >= 2  # the work was shared
    assert "local" not in s["uploads_per_worker"]


def test_master_and_two_workers_in_an_empty_folder(standin, yale_zip, tmp_path, processes):
    empty = tmp_path / "empty"
    empty.mkdir()
    port, summary = free_port(), tmp_path / "s.json"
    master = seeding_master(processes, standin, yale_zip, summary, "6", port=port, workers=2, cwd=tmp_path)
    workers = [processes.worker(port, cwd=empty) for _ in range(2)]
    code, out = processes.finish(master)
    assert code == 0, out[-3000:]
    for w in workers:
        wcode, wout = processes.finish(w, timeout=30)
        assert wcode == 0, wout[-2000:]
    assert list(empty.iterdir()) == []  # the workers needed and wrote no file
    assert stored_contents(standin, CODE) == yale_contents()
    assert len(read_json(summary)["uploads_per_worker"]) == 2


def seeding_master(processes, standin, yale_zip, summary, users: str, **kw):
    return processes.master(
        "-u", users, "-r", users, "-H", standin.url, "--images", str(yale_zip),
        "--summary-json", str(summary), **kw,
    )  # fmt: skip


def wait_stored(standin, n: int, *procs, timeout: float = 30) -> None:
    """Until the stand-in holds n images; else fail with what the given processes printed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(standin.images(CODE)) >= n if standin.events() else False:
            return
        time.sleep(0.05)
    printed = []
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        printed.append(
            f"--- {' '.join(proc.args[-6:])} (exit {proc.wait()}):\n{proc.communicate()[0][-3000:]}"
        )
    raise AssertionError(f"the stand-in did not store {n} images in {timeout}s\n" + "\n".join(printed))


def test_killed_worker_claims_go_to_the_others(standin_factory, yale_zip, tmp_path, processes):
    standin = standin_factory("--instant", "--latency-ms", "60")
    port, summary = free_port(), tmp_path / "s.json"
    master = seeding_master(processes, standin, yale_zip, summary, "6", port=port, workers=2, cwd=tmp_path)
    doomed, survivor = processes.worker(port, cwd=tmp_path), processes.worker(port, cwd=tmp_path)
    wait_stored(standin, 20, master, doomed, survivor)
    doomed.send_signal(signal.SIGKILL)
    code, out = processes.finish(master)
    assert code == 0, out[-3000:]
    assert processes.finish(survivor, timeout=30)[0] == 0
    s = read_json(summary)
    assert s["uploaded"] == 165
    assert stored_contents(standin, CODE) == yale_contents()  # exactly once, though a worker died mid-upload
    assert s["possible_duplicates"] == []
    assert "is gone" in out


def test_late_worker_gets_work(standin_factory, yale_zip, tmp_path, processes):
    # Slow enough (4 users, 150 ms an upload: ~6 s of work) that a worker starting on a loaded machine
    # still joins while there is work: the backlog bound no longer slows a server that keeps up.
    standin = standin_factory("--instant", "--latency-ms", "150")
    port, summary = free_port(), tmp_path / "s.json"
    master = seeding_master(processes, standin, yale_zip, summary, "4", port=port, workers=1, cwd=tmp_path)
    first = processes.worker(port, cwd=tmp_path)
    wait_stored(standin, 15, master, first)
    late = processes.worker(port, cwd=tmp_path)
    code, out = processes.finish(master)
    assert code == 0, out[-3000:]
    for w in (first, late):
        wcode, wout = processes.finish(w, timeout=30)
        assert wcode == 0, wout[-3000:]
    s = read_json(summary)
    assert len(s["uploads_per_worker"]) == 2 and min(s["uploads_per_worker"].values()) > 0
    assert stored_contents(standin, CODE) == yale_contents()
    assert s["possible_duplicates"] == []  # users moved to the late worker finished their upload first
