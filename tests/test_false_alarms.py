"""The baseline gate's false alarms, measured on real reruns: identical ``--bench`` runs on one stock
stand-in, each against the history of the runs before it (``--history DIR --baseline DIR``), raise no
regression; a pipeline 60% slower (``--detect-ms 160``, a stock Kanta's is 100) against the same history
exits 3 and names the pipeline's figure.

The rerun test takes minutes: it is marked slow and left out of the default run (``pytest -m slow``
runs it). The benchmark that prints the false-alarm rate over 10 reruns, on the stock and the instant
stand-in, is benchmarks/false_alarms.py; its plan and its tally are checked here in-process.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from seed.core import history

from .helpers import PROJECT, read_json, run_locust

CODE = "false-alarm"
WARMUP = 3  # runs that only build the history
RERUNS = 5  # identical reruns, each judged against the history and then appended to it
PIPELINE_FIGURES = ("processed-s", "processed-rate")


def bench(standin, yale_zip, cwd: Path, label: str, *extra: str) -> tuple[int, dict, str]:
    """One headless ``--bench`` run (a new event of its own) at -u 5: its exit, summary and output."""
    summary = cwd / f"{label}.json"
    run = run_locust(
        "-u", "5", "-r", "5", "-H", standin.url, "--images", str(yale_zip), "--bench", "--event-code", CODE,
        "--summary-json", str(summary), *extra, cwd=cwd,
    )  # fmt: skip
    return run.returncode, (read_json(summary) if summary.exists() else {}), run.output[-3000:]


@pytest.mark.slow
@pytest.mark.e2e
def test_identical_reruns_raise_no_alarm_and_a_slower_pipeline_is_caught(standin_factory, yale_zip, tmp_path):
    folder = tmp_path / "history"
    stock = standin_factory()  # one long-lived stock stand-in for every identical run
    for k in range(1, WARMUP + 1):
        rc, s, out = bench(stock, yale_zip, tmp_path, f"warmup-{k}", "--history", str(folder))
        assert rc == 0 and s.get("exit_code") == 0, out
    assert len(history.load(folder)) == WARMUP

    for k in range(1, RERUNS + 1):
        rc, s, out = bench(
            stock, yale_zip, tmp_path, f"rerun-{k}", "--history", str(folder), "--baseline", str(folder)
        )
        verdicts = s.get("baseline_verdicts") or []
        alarms = [v for v in verdicts if v.get("status") == "regression"]
        assert (rc, s.get("exit_code"), s.get("regressions"), alarms) == (0, 0, [], []), out
        judged = [v for v in verdicts if v.get("status") == "ok"]
        # not a vacuous pass: the pipeline's figures were judged, against the spread of several runs
        assert {v["figure"] for v in judged} >= set(PIPELINE_FIGURES), verdicts
        assert all(v["noise"].endswith("baseline runs") for v in judged), verdicts
    assert len(history.load(folder)) == WARMUP + RERUNS  # each rerun appended

    slower = standin_factory("--workers", "2", "--detect-ms", "160")  # a pipeline slower on any machine
    rc, s, out = bench(slower, yale_zip, tmp_path, "slower", "--baseline", str(folder))
    assert rc == 3 and s.get("exit_code") == 3, out
    named = {v["figure"] for v in s.get("baseline_verdicts") or [] if v.get("status") == "regression"}
    assert named & set(PIPELINE_FIGURES), s.get("baseline_verdicts")
    assert any(r.startswith("regression-processed") for r in s["regressions"]), s["regressions"]
    assert len(history.load(folder)) == WARMUP + RERUNS  # the slowed run did not join the baseline


# --- the benchmark script, in-process: its plan (--dry-run) and its tally --------------------------------
@pytest.fixture
def false_alarms(monkeypatch):
    monkeypatch.syspath_prepend(str(PROJECT / "benchmarks"))
    return importlib.import_module("false_alarms")


def test_the_benchmark_builds_a_history_then_judges_each_rerun_against_it(false_alarms, capsys):
    argv = ["--dry-run", "--only", "stock", "--warmup", "2", "--reruns", "3", "--slowed", "1"]
    assert false_alarms.main(argv) == 0
    runs = [line.split() for line in capsys.readouterr().out.splitlines() if " -m locust " in line]
    assert len(runs) == 2 + 3 + 2  # warmup, reruns, one per slowdown of the stock stand-in

    def value(cmd: list[str], flag: str) -> str | None:
        return cmd[cmd.index(flag) + 1] if flag in cmd else None

    hist = value(runs[0], "--history")
    assert hist and all("--bench" in r and value(r, "--summary-json") for r in runs)
    assert value(runs[0], "--baseline") is None  # the first run has nothing to compare with
    assert all(value(r, "--history") == value(r, "--baseline") == hist for r in runs[1:5])
    assert all(value(r, "--history") is None and value(r, "--baseline") == hist for r in runs[5:])
    assert len({value(r, "-H") for r in runs[:5]}) == 1  # one long-lived stand-in for the identical runs


def test_the_benchmark_counts_false_alarms_and_catches(false_alarms):
    Run = false_alarms.Run

    def run(code: int, *regressed: str, problem: str = "") -> object:
        verdicts = [{"figure": f, "status": "regression"} for f in regressed]
        verdicts.append({"figure": "p99-ms", "status": "too few samples"})
        summary = {"exit_code": code, "baseline_verdicts": verdicts,
                   "regressions": [f"regression-{f}: worse" for f in regressed]}  # fmt: skip
        return Run("run", code, 1.0, {} if problem else summary, problem)

    stock = false_alarms.KINDS[0]
    row = false_alarms.false_alarm_row(
        stock, [run(0), run(3, "p95-ms"), run(3, "p95-ms", "rate"), run(1, problem="killed after 180 s")]
    )
    assert (row["reruns"], row["false_alarms"], row["failed"]) == (4, 2, 1)
    assert row["figures"] == "p95-ms x2, rate x1" and row["not_judged"] == "p99-ms x3"
    pipeline = false_alarms.SLOWDOWNS[0]
    slow = false_alarms.slowdown_row(stock, pipeline, [run(3, "processed-s"), run(3, "p50-ms"), run(0)])
    assert (slow["caught"], slow["missed"], slow["runs"]) == (1, 2, 3)  # p50-ms is not what it moves
    text, md = false_alarms.tables([row], [slow])
    assert "2/3" in text and "1/3" in text and "| kind |" in md
