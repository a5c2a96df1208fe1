"""Performance-regression runs: figures, checks and the baseline gate, end to end on the stand-in."""

from __future__ import annotations

import json

import pytest

from .helpers import read_json, run_locust


@pytest.fixture
def standin(fast_standin):
    """These tests are not about Kanta's lag: a stand-in that stores at once."""
    return fast_standin


CODE = "test-yale-faces"
SUMMARY_FIELDS = {
    "images", "uploaded", "failed", "failed_images", "rate_per_s", "steady_rate_per_s", "steady_window_s",
    "latency_ms", "wall_s", "event_code", "events", "host", "host_kind", "data_set", "users", "spawn_rate",
    "processes", "loops", "attempts", "retries", "fail_ratio", "possible_duplicates", "verified", "repaired",
    "lost", "drain_s", "foreign_images", "client_cpu_s", "cpu_s_per_1000_uploads",
    "peak_rss_mb", "versions", "timed", "regressions", "uploads_per_worker",
    "schema", "result", "exit_code", "pipeline", "faces", "adopted", "removed", "extra_copies", "missing",
}  # fmt: skip


def seed(standin, yale_zip, tmp_path, *extra: str, users: str = "5"):
    summary = tmp_path / "s.json"
    run = run_locust(
        "-u", users, "-r", users, "-H", standin.url, "--images", str(yale_zip),
        "--summary-json", str(summary), "--fresh", *extra, cwd=tmp_path,
    )  # fmt: skip
    return run, (read_json(summary) if summary.exists() else {})


def test_summary_has_every_figure_and_a_markdown_table(standin, yale_zip, tmp_path):
    run, s = seed(standin, yale_zip, tmp_path, "--summary-md", str(tmp_path / "s.md"))
    assert run.returncode == 0, run.output[-3000:]
    assert set(s) >= SUMMARY_FIELDS, SUMMARY_FIELDS - set(s)
    assert set(s["latency_ms"]) == {"p50", "p90", "p95", "p99", "max"}
    assert set(s["versions"]) == {"kanta-seed", "locust", "python"}
    assert (s["schema"], s["result"], s["exit_code"]) == (2, "pass", 0)
    assert set(s["pipeline"]) >= {
        "accepted_s",
        "stored_s",
        "processed_s",
        "processed_per_s",
        "backlog_peak",
        "lag_s",
    }
    assert set(s["pipeline"]["lag_s"]) == {"stored", "processed"}
    assert set(s["faces"]) >= {"images_with_faces", "images_without", "total"}
    assert s["cpu_s_per_1000_uploads"] > 0 and s["peak_rss_mb"] > 10 and s["host_kind"] == "local"
    md = (tmp_path / "s.md").read_text()
    assert "| result | pass (exit 0)" in md and "| pipeline |" in md


def test_breached_check_exits_3_and_names_it(standin, yale_zip, tmp_path):
    run, s = seed(standin, yale_zip, tmp_path, "--check-p50-ms", "0.001", "--check-min-rate", "1")
    assert run.returncode == 3, run.output[-3000:]
    assert len(s["regressions"]) == 1 and s["regressions"][0].startswith("check-p50-ms")
    assert "CHECK FAILED check-p50-ms" in run.output


def test_baseline_ten_times_faster_exits_3(standin, yale_zip, tmp_path):
    run, s = seed(standin, yale_zip, tmp_path)
    assert run.returncode == 0
    fast = dict(s, rate_per_s=s["rate_per_s"] * 10, steady_rate_per_s=None)
    (tmp_path / "fast.json").write_text(json.dumps(fast))
    again, s2 = seed(standin, yale_zip, tmp_path, "--baseline", str(tmp_path / "fast.json"))
    assert again.returncode == 3, again.output[-3000:]
    assert any(r.startswith("regression-rate") for r in s2["regressions"])
    # Against a slower baseline (averaged from two files) the run passes: the gate is not trigger-happy.
    slow = dict(s, rate_per_s=s["rate_per_s"] / 10, steady_rate_per_s=None,
                latency_ms={k: v * 10 + 100 for k, v in s["latency_ms"].items()},
                pipeline={**s["pipeline"], "processed_per_s": s["pipeline"]["processed_per_s"] / 10,
                          "processed_s": s["pipeline"]["processed_s"] * 10})  # fmt: skip
    (tmp_path / "slow.json").write_text(json.dumps(slow))
    twice = f"{tmp_path / 'slow.json'},{tmp_path / 'slow.json'}"
    same, s3 = seed(standin, yale_zip, tmp_path, "--baseline", twice)
    assert same.returncode == 0, s3.get("regressions")
    assert (
        s3["baseline"].startswith(f"compared with {tmp_path / 'slow.json'}")
        and "no figure worse" in same.output
    )


def test_incomparable_baseline_is_refused_unless_forced(standin, yale_zip, tmp_path):
    first, s = seed(standin, yale_zip, tmp_path, users="2")
    assert first.returncode == 0
    (tmp_path / "b.json").write_text(json.dumps(s))
    other, _ = seed(standin, yale_zip, tmp_path, "--baseline", str(tmp_path / "b.json"), users="4")
    assert other.returncode == 2, other.output[-3000:]  # refused before the first upload
    assert "--baseline measured something else (users: run 4, baseline 2)" in other.output
    assert len(standin.images(CODE)) == 165  # nothing sent
    forced, s3 = seed(standin, yale_zip, tmp_path, "--baseline", str(tmp_path / "b.json"), "--force-compare",
                      "--max-regression", "0.99", users="4")  # fmt: skip
    assert forced.returncode in (0, 3) and not any("not comparable" in r for r in s3["regressions"])


def test_loops_upload_the_set_n_times(standin, yale_zip, tmp_path):
    run, s = seed(standin, yale_zip, tmp_path, "--loops", "3")
    assert run.returncode == 0, run.output[-3000:]
    assert s["images"] == s["uploaded"] == s["verified"] == 3 * 165
    assert len(standin.images(CODE)) == 3 * 165 and standin.events() == [CODE]


def test_fresh_event_gives_each_pass_its_own_event(standin, yale_zip, tmp_path):
    run, s = seed(standin, yale_zip, tmp_path, "--loops", "2", "--fresh-event")
    assert run.returncode == 0, run.output[-3000:]
    assert len(s["events"]) == 2 and sorted(standin.events()) == sorted(s["events"])
    assert all(len(standin.images(code)) == 165 for code in s["events"])


def test_the_latency_figure_is_the_uploads_own(standin_factory, yale_zip, tmp_path):
    """Injected 100 ms is a floor no upload can beat; and kanta-seed's p50 is Locust's own for the same
    requests (Locust rounds its percentiles to two digits), not a figure of its own making."""
    standin = standin_factory("--instant", "--latency-ms", "100")
    run, s = seed(standin, yale_zip, tmp_path, "--csv", str(tmp_path / "st"))
    assert run.returncode == 0, run.output[-3000:]
    rows = (tmp_path / "st_stats.csv").read_text().splitlines()
    header = rows[0].split(",")
    upload = next(r.split(",") for r in rows[1:] if r.split(",")[1] == "/pics/[event_code]")
    locust_p50 = float(upload[header.index("50%")])
    assert 100 <= s["latency_ms"]["p50"] <= s["latency_ms"]["max"]
    assert abs(s["latency_ms"]["p50"] - locust_p50) <= 0.1 * locust_p50


def test_timed_run_ends_cleanly(standin_factory, yale_zip, tmp_path):
    standin = standin_factory("--instant", "--latency-ms", "20")
    run, s = seed(standin, yale_zip, tmp_path, "--loops", "50", "-t", "3s")
    assert run.returncode == 0, run.output[-3000:]
    assert s["timed"] and 0 < s["uploaded"] < s["images"] and s["failed"] == 0
    assert "timed run: ended by --run-time" in run.output


def test_locusts_own_reports_keep_working(standin, yale_zip, tmp_path):
    run, _ = seed(
        standin, yale_zip, tmp_path, "--html", str(tmp_path / "r.html"), "--json-file", str(tmp_path / "st")
    )
    assert run.returncode == 0, run.output[-3000:]
    assert "/pics/[event_code]" in (tmp_path / "r.html").read_text()
    rows = {
        (r["method"], r["name"]): r["num_requests"] for r in json.loads((tmp_path / "st.json").read_text())
    }
    assert rows[("POST", "/pics/[event_code]")] == 165 and rows[("POST", "/events")] == 1
