"""Smoke test of benchmarks/bench.py: one pass of the two cheapest rows against its nginx null server.

It checks the benchmark still runs end to end (nginx config, child processes, CPU accounting,
table); it asserts nothing about speed. It needs nginx (scripts/system-deps.sh installs it) and
fails, not skips, without it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from .helpers import PROJECT, child_env

BENCH = PROJECT / "benchmarks" / "bench.py"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def test_bench_runs_minimal_and_bare(tmp_path, yale_zip):
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    proc = subprocess.run(
        [
            sys.executable, str(BENCH), "--quick", "--passes", "1", "--only", "minimal,bare",
            "--images", str(yale_zip), "--nginx", NGINX, "--run-timeout", "30",
            "--json", str(out_json), "--markdown", str(out_md),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    figures = json.loads(out_json.read_text())
    rows = {(r["name"], r["users"]): r for r in figures["rows"]}
    assert set(rows) == {
        ("minimal FastHttpUser", 5),
        ("minimal FastHttpUser", 50),
        ("bare geventhttpclient loop", 5),
    }
    for row in rows.values():
        assert row["errors"] == [] and row["failed"] == 0
        assert row["uploads"] == figures["per_pass"] == 165
        assert row["uploads_per_s"] > 0 and row["cpu_ms_per_upload"] > 0 and row["loop_cpu_ms_per_upload"] > 0
    assert "| approach |" in out_md.read_text()
    assert "uploads/s" in proc.stdout
