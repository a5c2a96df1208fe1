"""Real headless locust runs against the stand-in: what the server stored is the proof."""

from __future__ import annotations

import pytest

from .helpers import read_json, run_locust, stored_contents, yale_contents


@pytest.fixture
def standin(fast_standin):
    """These tests are not about Kanta's lag: a stand-in that stores at once."""
    return fast_standin


CODE = "test-yale-faces"


@pytest.mark.parametrize("users", [("-u", "1", "-r", "1"), ("-u", "5", "-r", "1"), ("-u", "20", "-r", "20")])
def test_yale_stored_exactly_once(standin, yale_zip, tmp_path, users):
    summary = tmp_path / "summary.json"
    run = run_locust(
        *users, "-H", standin.url, "--images", str(yale_zip), "--summary-json", str(summary), cwd=tmp_path
    )
    assert run.returncode == 0, run.output[-3000:]
    assert standin.events() == [CODE]
    assert stored_contents(standin, CODE) == yale_contents()  # every image, each once (by bytes)
    s = read_json(summary)
    assert (s["images"], s["uploaded"], s["failed"]) == (165, 165, 0)
    assert s["event_code"] == CODE and s["host"] == standin.url
    assert s["rate_per_s"] > 0 and s["wall_s"] > 0
    assert 0 < s["latency_ms"]["p50"] <= s["latency_ms"]["p95"] <= s["latency_ms"]["p99"]
    assert "uploaded   165/165" in run.output


def test_one_event_request_and_one_stats_row_per_kind(standin, yale_zip, tmp_path):
    run = run_locust(
        "-u",
        "8",
        "-r",
        "8",
        "-H",
        standin.url,
        "--images",
        str(yale_zip),
        "--csv",
        str(tmp_path / "st"),
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.output[-3000:]
    rows = (tmp_path / "st_stats.csv").read_text().splitlines()
    counts = {(r.split(",")[0], r.split(",")[1]): int(r.split(",")[2]) for r in rows[1:]}
    reads = counts.pop(("GET", "/pics?event_code=[event_code]"))  # the read-back
    probes = counts.pop(("GET", "/system/health"), 0)  # Kanta's clock, probed from its Date headers
    assert reads >= 1
    expected = {
        ("", "Aggregated"): 166 + reads + probes,
        ("POST", "/events"): 1,
        ("POST", "/pics/[event_code]"): 165,
    }
    assert counts == expected


def test_prefixed_host_keeps_its_path(standin, yale_zip, tmp_path):
    run = run_locust(
        "-u", "3", "-r", "3", "-H", standin.url + "/api/v1/", "--images", str(yale_zip), cwd=tmp_path
    )
    assert run.returncode == 0, run.output[-3000:]
    assert sum(stored_contents(standin, CODE).values()) == 165


def test_existing_event_is_reused(standin, yale_zip, tmp_path):
    args = ("-u", "4", "-r", "4", "-H", standin.url, "--images", str(yale_zip), "--event-code", "second-run")
    first = run_locust(*args, cwd=tmp_path)
    second = run_locust(*args, cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, second.output[-3000:]
    assert "(created)" in first.output and "(already existed)" in second.output
    assert standin.events() == ["second-run"]


def test_standin_demo_on_a_fresh_folder(tmp_path):
    """`--standin` with no data file: the built-in stand-in and synthetic set, nothing else running."""
    summary = tmp_path / "s.json"
    run = run_locust("-u", "5", "-r", "5", "--standin", "--summary-json", str(summary), cwd=tmp_path)
    assert run.returncode == 0, run.output[-3000:]
    s = read_json(summary)
    assert s["data_set"] == "built-in synthetic set" and s["uploaded"] == 165
    assert s["host"].startswith("http://127.0.0.1:")


def test_upload_pause_spaces_a_users_uploads(standin, yale_zip, tmp_path):
    summary = tmp_path / "s.json"
    run = run_locust(
        "-u", "2", "-r", "2", "-H", standin.url, "--images", str(yale_zip),
        "--upload-pause", "0.05", "--summary-json", str(summary), cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.output[-3000:]
    # 165 uploads by 2 users pausing 50 ms each: at least ~82 pauses per user.
    assert read_json(summary)["wall_s"] >= 82 * 0.05


def test_kanta_seed_command_lists_its_options_and_runs_from_any_folder(tmp_path):
    """Locust prints --help before reading a locustfile; `python -m seed --help` shows ours too."""
    import subprocess
    import sys

    from .helpers import child_env

    helped = subprocess.run(
        [sys.executable, "-m", "seed", "--help"], capture_output=True, text=True, env=child_env(), timeout=60
    )
    assert helped.returncode == 0
    assert (
        "--event-code" in helped.stdout
        and "--check-p95-ms" in helped.stdout
        and "--headless" in helped.stdout
    )
    ran = subprocess.run(
        [sys.executable, "-m", "seed", "--headless", "--only-summary", "-u", "3", "-r", "3", "--standin"],
        capture_output=True, text=True, env=child_env(), timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert "uploaded   165/165" in ran.stdout
    assert list(tmp_path.iterdir()) == []  # a stand-in run leaves no ledger behind
