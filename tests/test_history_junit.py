"""The history folder (seed/core/history.py) and the JUnit XML of a run (seed/core/junit.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from seed.core import gate, history, junit
from seed.core.summary import SCHEMA


def summary(**over) -> dict:
    doc = {
        "schema": SCHEMA,
        "event_code": "test-yale-faces",
        "events": ["test-yale-faces-r1"],
        "host": "http://127.0.0.1:40001",
        "host_kind": "local",
        "data_set": "/work/shared/yale_png.zip",
        "images": 165,
        "users": 5,
        "processes": 1,
        "loops": 1,
        "mode": "bench",
        "measured": True,
        "uploaded": 165,
        "result": "pass",
        "exit_code": 0,
        "wall_s": 9.5,
        "rate_per_s": 41.0,
        "steady_rate_per_s": 41.5,
        "latency_ms": {"p50": 124.0, "p90": 140.0, "p95": 150.0, "p99": 165.0, "max": 170.0},
        "pipeline": {"processed_s": 6.1, "processed_per_s": 29.2},
        "faces": {"images_with_faces": 160, "images_without": 5, "total": 160},
        "regressions": [],
    }
    doc.update(over)
    return doc


# --- history --------------------------------------------------------------------------------------------
def test_append_writes_one_file_per_run_sortable_by_time(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_SHA", "")
    folder = tmp_path / "perf" / "history"
    meta = {"commit": "0123456789abcdef0123456789abcdef01234567"}
    first = history.append(folder, summary(rate_per_s=40.0), meta, now=1_780_000_000.25)
    same_time = history.append(folder, summary(rate_per_s=41.0), meta, now=1_780_000_000.25)
    later = history.append(folder, summary(rate_per_s=42.0), {"commit": ""}, now=1_780_000_100.0)
    assert first.name == "20260528T202640.250000Z-0123456789ab.json"
    assert same_time.name == "20260528T202640.250001Z-0123456789ab.json"  # never overwritten
    assert later.name.endswith("Z-nocommit.json")
    assert sorted(p.name for p in folder.iterdir()) == [first.name, same_time.name, later.name]
    entry = json.loads(first.read_text())
    assert entry["rate_per_s"] == 40.0 and entry["schema"] == SCHEMA  # the summary, whole
    meta_written = entry["history"]
    assert meta_written["commit"] == meta["commit"]
    assert meta_written["timestamp"] == "2026-05-28T20:26:40.250000Z"
    assert {k: meta_written[k] for k in ("host_kind", "data_set", "users", "mode", "loops", "processes")} == {
        "host_kind": "local",
        "data_set": "yale_png.zip",
        "users": 5,
        "mode": "bench",
        "loops": 1,
        "processes": 1,
    }


def test_the_commit_is_git_head_else_github_sha(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_SHA", "feedface" * 5)
    assert history.commit(tmp_path) == "feedface" * 5  # not a git work tree
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert history.commit(repo) == head
    monkeypatch.setenv("GITHUB_SHA", "")
    assert history.commit(tmp_path) == ""
    entry = history.meta_of(summary(), {"commit": None, "branch": "main"}, now=0.0)
    assert entry["branch"] == "main" and entry["timestamp"] == "1970-01-01T00:00:00.000000Z"


def test_load_reads_the_last_runs_oldest_first_and_skips_what_is_not_a_run(tmp_path):
    for i in range(5):
        history.append(tmp_path, summary(rate_per_s=40.0 + i), {"commit": f"c{i}"}, now=1_780_000_000 + i)
    (tmp_path / "20990101T000000.000000Z-torn.json").write_text('{"schema": 2, "rate')
    (tmp_path / "README.md").write_text("the perf history")
    (tmp_path / "notes.json").write_text("{}")
    entries = history.load(tmp_path)
    assert [e["rate_per_s"] for e in entries] == [40.0, 41.0, 42.0, 43.0, 44.0]
    assert [e["rate_per_s"] for e in history.load(tmp_path, last=2)] == [43.0, 44.0]
    assert all(Path(e["history"]["file"]).parent == tmp_path for e in entries)
    with pytest.raises(history.HistoryError, match="is not a folder"):
        history.load(tmp_path / "nope")
    with pytest.raises(history.HistoryError, match="is a file"):
        history.append(tmp_path / "README.md", summary())


def test_a_history_folder_is_a_baseline(tmp_path):
    for i in range(12):
        history.append(tmp_path, summary(rate_per_s=40.0 + i % 3), {"commit": "c"}, now=1_780_000_000 + i)
    baselines = gate.load_baselines(tmp_path)
    assert len(baselines) == gate.HISTORY_LAST
    verdicts = {v.figure: v for v in gate.judge(summary(rate_per_s=41.0, steady_rate_per_s=None), baselines)}
    assert verdicts["rate"].status == "ok" and verdicts["rate"].noise == "10 baseline runs"


def test_trend_of_the_headline_figures(tmp_path):
    history.append(tmp_path, summary(), {"commit": "a"}, now=1_780_000_000)
    history.append(
        tmp_path,
        summary(
            steady_rate_per_s=None, rate_per_s=30.0, regressions=["regression-rate: rate 30.0 < allowed 35"]
        ),
        {"commit": "b"},
        now=1_780_000_001,
    )
    history.append(tmp_path, summary(measured=False), {"commit": "c"}, now=1_780_000_002)
    entries = history.load(tmp_path)
    points = history.trend(entries, "rate")
    assert [p.value for p in points] == [41.5, 30.0, None]  # steady when there is one; nothing measured
    assert [p.regression for p in points] == [False, True, False]
    assert [p.commit for p in points] == ["a", "b", "c"]
    assert history.trend(entries, "faces-share")[0].value == pytest.approx(160 / 165)
    assert history.trend(entries, "p95-ms")[0].value == 150.0
    assert list(history.trends(entries)) == [h.name for h in history.HEADLINES]
    assert history.typical(points) == 30.0
    with pytest.raises(KeyError):
        history.trend(entries, "wall")


# --- JUnit XML ------------------------------------------------------------------------------------------
def parse(text: str) -> ET.Element:
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(text.encode())


def cases(root: ET.Element) -> dict[tuple[str, str], ET.Element]:
    return {(c.get("classname", ""), c.get("name", "")): c for c in root.iter("testcase")}


def outcome(case: ET.Element) -> str:
    if case.find("failure") is not None:
        return "failure"
    return "skipped" if case.find("skipped") is not None else "pass"


def test_junit_a_case_per_check_and_per_baseline_figure():
    run = summary(
        result="regression",
        exit_code=3,
        checks_asked=["check-min-rate", "check-p95-ms", "check-fail-ratio"],
        regressions=[
            "check-p95-ms: p95 180.0 ms > limit 150 ms",
            "check-drain-s: drain 9.0 s > limit 5 s",  # asked, but not listed in checks_asked
            "regression-p50-ms: p50 170.0 ms > allowed 142.6 ms (baseline 124.0 ms, +15% and 5.0 ms)",
            "baseline measured something else (processes: run 2, baseline 1)",
        ],
        history={"commit": "abc123", "timestamp": "2026-05-28T20:26:40.250000Z"},
    )
    base = summary()
    verdicts = gate.judge(summary(latency_ms={"p50": 170.0, "p95": 150.0, "p99": 165.0}), [base, base])
    root = parse(junit.junit_xml(run, verdicts))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "kanta-seed"
    got = {key: outcome(c) for key, c in cases(root).items()}
    assert got == {
        ("kanta-seed.run", "result"): "pass",  # every image made it: exit 3 is not an incomplete run
        ("kanta-seed.checks", "check-min-rate"): "pass",
        ("kanta-seed.checks", "check-p95-ms"): "failure",
        ("kanta-seed.checks", "check-fail-ratio"): "pass",
        ("kanta-seed.checks", "check-drain-s"): "failure",
        ("kanta-seed.baseline", "rate"): "pass",
        ("kanta-seed.baseline", "processed-rate"): "pass",
        ("kanta-seed.baseline", "processed-s"): "pass",
        ("kanta-seed.baseline", "faces-share"): "pass",
        ("kanta-seed.baseline", "p50-ms"): "failure",
        ("kanta-seed.baseline", "p95-ms"): "skipped",  # too few samples
        ("kanta-seed.baseline", "p99-ms"): "skipped",
        ("kanta-seed.baseline", "baseline"): "failure",  # refused at the end
    }
    counts = {k: int(suite.get(k, "-1")) for k in ("tests", "failures", "errors", "skipped")}
    assert counts == {"tests": 13, "failures": 4, "errors": 0, "skipped": 2}
    assert root.get("tests") == "13" and root.get("failures") == "4"
    failure = cases(root)[("kanta-seed.checks", "check-p95-ms")].find("failure")
    assert failure is not None and failure.get("message") == "check-p95-ms: p95 180.0 ms > limit 150 ms"
    skipped = cases(root)[("kanta-seed.baseline", "p95-ms")].find("skipped")
    assert skipped is not None and "too few samples to judge" in skipped.get("message", "")
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["commit"] == "abc123" and props["result"] == "regression"
    assert suite.get("timestamp") == "2026-05-28T20:26:40" and suite.get("time") == "9.500"


def test_junit_of_an_incomplete_run_and_of_verdicts_from_json():
    bad = summary(result="incomplete", exit_code=1, wall_s=12.25, error="", regressions=[])
    verdicts = [v.to_dict() for v in gate.judge(summary(measured=False), [summary()])]
    root = parse(junit.junit_xml(bad, json.loads(json.dumps(verdicts))))
    got = {key: outcome(c) for key, c in cases(root).items()}
    assert got[("kanta-seed.run", "result")] == "failure"
    assert {v for (cls, _), v in got.items() if cls == "kanta-seed.baseline"} == {"skipped"}  # not measured


def test_junit_without_a_baseline_names_compares_regressions_and_strips_what_xml_cannot_carry():
    run = summary(
        exit_code=3,
        regressions=["regression-rate: rate 3.0 uploads/s < allowed 30.0\x00\x1b[31m", "check-min-rate: x"],
        host="http://127.0.0.1:1/<&>",
    )
    root = parse(junit.junit_xml(run))
    got = {key: outcome(c) for key, c in cases(root).items()}
    assert got == {
        ("kanta-seed.run", "result"): "pass",
        ("kanta-seed.checks", "check-min-rate"): "failure",
        ("kanta-seed.baseline", "regression-rate"): "failure",
    }
    failure = cases(root)[("kanta-seed.baseline", "regression-rate")].find("failure")
    assert failure is not None and "\x00" not in (failure.text or "") and "[31m" in (failure.text or "")
    assert {p.get("name"): p.get("value") for p in root.iter("property")}["host"] == "http://127.0.0.1:1/<&>"
