"""Smoke tests of the benchmarks: they still run end to end; nothing about speed is asserted.

bench.py: one pass of its two cheapest rows (minimal FastHttpUser, the bare loop) against its nginx
null server (config template, child files, probe, CPU accounting, table, ratios by key). It needs
nginx (scripts/system-deps.sh installs it) and fails, not skips, without it.
pipeline.py --quick: one kanta-seed run (-u 5) on a fresh stand-in with the stock pipeline, read
back from its summary JSON and the stand-in's own records.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from .helpers import PROJECT, child_env

BENCH = PROJECT / "benchmarks" / "bench.py"
PIPELINE = PROJECT / "benchmarks" / "pipeline.py"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def run_script(*args: str, timeout: float, cwd) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=child_env(cwd), cwd=cwd
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def test_bench_runs_minimal_and_bare(tmp_path, yale_zip):
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    proc = run_script(
        str(BENCH), "--quick", "--passes", "1", "--only", "minimal,bare", "--images", str(yale_zip),
        "--nginx", NGINX, "--run-timeout", "30", "--json", str(out_json), "--markdown", str(out_md),
        timeout=90, cwd=tmp_path,
    )  # fmt: skip
    figures = json.loads(out_json.read_text())
    rows = {r["key"]: r for r in figures["rows"]}
    assert set(rows) == {"minimal-5", "minimal-50", "bare-5"}
    assert (rows["minimal-50"]["name"], rows["minimal-50"]["users"]) == ("minimal FastHttpUser", 50)
    for row in rows.values():
        assert row["errors"] == [] and row["failed"] == 0
        assert row["uploads"] == figures["per_pass"] == 165
        assert row["uploads_per_s"] > 0 and row["cpu_ms_per_upload"] > 0 and row["loop_cpu_ms_per_upload"] > 0
    ratios = {(r["numerator"], r["denominator"], r["figure"]) for r in figures["ratios"]}
    assert ("minimal-5", "bare-5", "loop_cpu_ms_per_upload") in ratios  # looked up by key, both rows ran
    assert all(r["value"] > 0 for r in figures["ratios"])
    assert "| approach |" in out_md.read_text()
    assert "uploads/s" in proc.stdout


def test_pipeline_quick(tmp_path, yale_zip):
    out_json = tmp_path / "pipeline.json"
    proc = run_script(
        str(PIPELINE), "--quick", "--images", str(yale_zip), "--run-timeout", "90", "--json", str(out_json),
        timeout=150, cwd=tmp_path,
    )  # fmt: skip
    (row,) = json.loads(out_json.read_text())["rows"]
    assert (row["key"], row["users"], row["errors"]) == ("u5", 5, [])
    assert (row["exit_code"], row["result"]) == (0, "pass")
    for figure in (
        "accepted_s",
        "stored_s",
        "processed_s",
        "processed_per_s",
        "rate_per_s",
        "p50_ms",
        "wall_s",
    ):
        assert isinstance(row[figure], (int, float)), figure
    assert isinstance(row["backlog_peak"], int)
    assert set(row["standin"]) == {"accepted", "stored", "processed", "dropped"}
    assert row["standin"]["stored"] >= 165 and row["copies_exact"] is True
    assert "processed s" in proc.stdout and "srv dropped" in proc.stdout
