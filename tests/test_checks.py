"""Unit tests for the run checks and the baseline comparison (seed/checks.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seed.coordination.checks import (
    CHECKS,
    BaselineError,
    comparable,
    compare,
    evaluate_checks,
    host_kind,
    load_baselines,
)
from seed.core.summary import SCHEMA

NO_LIMITS = {"min_rate": None, "p50_ms": None, "p95_ms": None, "fail_ratio": None, "drain_s": None}


def summary(**over) -> dict:
    base = {
        "schema": SCHEMA,
        "event_code": "test-yale-faces",
        "host": "http://127.0.0.1:44299",
        "data_set": "data/yale_png.zip",
        "users": 5,
        "images": 165,
        "uploaded": 165,
        "failed": 0,
        "rate_per_s": 100.0,
        "latency_ms": {"p50": 20.0, "p95": 40.0, "p99": 60.0},
        "wall_s": 2.0,
        "stopped_early": False,
    }
    base.update(over)
    return base


def write(tmp_path: Path, name: str, doc: dict) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


# --- evaluate_checks: each check at its boundary ---------------------------------------------------
@pytest.mark.parametrize(
    ("limits", "over", "expected"),
    [
        ({"min_rate": 100}, {}, None),  # exactly at the limit passes
        ({"min_rate": 100.1}, {}, "check-min-rate: rate 100.0 uploads/s < limit 100.1 uploads/s"),
        ({"p50_ms": 20}, {}, None),
        ({"p50_ms": 19.9}, {}, "check-p50-ms: p50 20.0 ms > limit 19.9 ms"),
        ({"p95_ms": 40}, {}, None),
        ({"p95_ms": 250}, {"latency_ms": {"p50": 1, "p95": 412.0, "p99": 500}},
         "check-p95-ms: p95 412.0 ms > limit 250 ms"),
        ({"fail_ratio": 0.1}, {"failed": 11, "images": 110}, None),
        ({"fail_ratio": 0.1}, {"failed": 12, "images": 110},
         "check-fail-ratio: fail ratio 0.1091 > limit 0.1"),
        ({"drain_s": 3}, {"drain_s": 3.0}, None),
        ({"drain_s": 3}, {"drain_s": 3.2}, "check-drain-s: drain 3.2 s > limit 3 s"),
    ],
)  # fmt: skip
def test_each_check_at_its_boundary(limits, over, expected):
    problems = evaluate_checks(summary(**over), {**NO_LIMITS, **limits})
    assert problems == ([] if expected is None else [expected])


def test_unset_limits_are_skipped():
    awful = summary(rate_per_s=0.1, failed=165, latency_ms={"p50": 1e6, "p95": 1e6, "p99": 1e6}, drain_s=1e6)
    assert evaluate_checks(awful, NO_LIMITS) == []
    assert evaluate_checks(awful, {}) == []


def test_every_breach_is_reported():
    awful = summary(rate_per_s=1.0, failed=165, latency_ms={"p50": 1e3, "p95": 1e3, "p99": 1e3}, drain_s=60)
    limits = {"min_rate": 10, "p50_ms": 100, "p95_ms": 200, "fail_ratio": 0.0, "drain_s": 5}
    names = [p.split(":")[0] for p in evaluate_checks(awful, limits)]
    assert names == ["check-min-rate", "check-p50-ms", "check-p95-ms", "check-fail-ratio", "check-drain-s"]


def test_a_check_without_its_figure_fails_as_not_measured():
    assert evaluate_checks(summary(), {"drain_s": 0.001}) == ["check-drain-s: not measured (limit 0.001 s)"]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.name)
def test_every_check_in_the_table_fails_when_it_cannot_be_evaluated(check):
    """A check that cannot fail is no check: an impossible limit on a run that measured nothing fails."""
    empty = {"schema": SCHEMA, "measured": False, "images": 165}
    impossible = 1.0 if check.share else 1e9
    (problem,) = evaluate_checks(empty, {check.name: impossible})
    assert problem.startswith(f"{check.label}: not measured"), problem
    (problem,) = evaluate_checks({"schema": SCHEMA}, {check.name: impossible})
    assert problem.startswith(f"{check.label}: ") and ("not measured" in problem or "no clusters" in problem)


def test_every_check_in_the_table_is_an_option_with_its_validation():
    from seed.coordination.options import Settings, problems

    for check in CHECKS:
        settings = Settings(limits=((check.name, -1.0),))
        assert any(p.startswith(f"{check.flag} -1 must be") for p in problems(settings)), check.flag


def test_steady_rate_and_explicit_fail_ratio_win():
    s = summary(rate_per_s=50.0, steady_rate_per_s=120.0, failed=0, fail_ratio=0.2)
    assert evaluate_checks(s, {"min_rate": 100}) == []  # the steady rate is compared
    assert evaluate_checks(s, {"fail_ratio": 0.1}) == ["check-fail-ratio: fail ratio 0.2 > limit 0.1"]


# --- comparable -------------------------------------------------------------------------------------
def test_same_run_elsewhere_is_comparable():
    # Another port, another path to the same zip: still the same measurement.
    other = summary(host="http://localhost:5000/api/v1", data_set="/ci/shared/yale_png.zip", rate_per_s=3.0)
    assert comparable(summary(), other) == []


def test_incomparable_fields_are_named():
    other = summary(
        data_set="synthetic", images=100, users=50, processes=4, host="http://kanta.example.org:8000"
    )
    diffs = comparable(summary(), other)
    assert [d.split(":")[0] for d in diffs] == ["data set", "images", "users", "processes", "host kind"]
    assert "host kind: run 'local', baseline 'remote'" in diffs


def test_host_kind_prefers_the_explicit_field():
    assert host_kind(summary(host="http://127.0.0.2:8000")) == "local"
    assert host_kind(summary(host="http://[::1]:8000")) == "local"
    assert host_kind(summary(host="http://10.0.0.5:8000")) == "remote"
    assert host_kind(summary(host="http://localhost:8000", host_kind="remote")) == "remote"


# --- load_baselines ---------------------------------------------------------------------------------
def test_two_baselines_are_averaged(tmp_path):
    a = write(tmp_path, "a.json", summary(rate_per_s=100.0, latency_ms={"p50": 10, "p95": 20, "p99": 30}))
    b = write(tmp_path, "b.json", summary(rate_per_s=200.0, latency_ms={"p50": 20, "p95": 40, "p99": 50}))
    base = load_baselines([a, b])
    assert base["rate_per_s"] == 150.0
    assert base["latency_ms"] == {"p50": 15.0, "p95": 30.0, "p99": 40.0}
    assert base["users"] == 5 and isinstance(base["users"], int)
    assert base["baseline_files"] == [str(a), str(b)]


def test_one_baseline_path_is_read_as_it_is(tmp_path):
    a = write(tmp_path, "a.json", summary(rate_per_s=123.0))
    assert load_baselines(a)["rate_per_s"] == 123.0
    assert load_baselines(str(a))["rate_per_s"] == 123.0


def test_incomparable_baselines_are_refused_and_named(tmp_path):
    a = write(tmp_path, "a.json", summary(users=5))
    b = write(tmp_path, "b.json", summary(users=50))
    with pytest.raises(BaselineError, match=r"users: .*a\.json 5, .*b\.json 50"):
        load_baselines([a, b])


def test_unreadable_baseline_is_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(BaselineError, match=r"bad\.json"):
        load_baselines([bad])
    with pytest.raises(BaselineError, match="no baseline"):
        load_baselines([])


# --- compare ----------------------------------------------------------------------------------------
def test_no_regression_within_tolerance():
    base = summary(rate_per_s=100.0, latency_ms={"p50": 100.0, "p95": 200.0, "p99": 300.0})
    run = summary(rate_per_s=85.0, latency_ms={"p50": 115.0, "p95": 230.0, "p99": 345.0})  # at the limits
    assert compare(run, base) == []


def test_rate_and_latency_regressions_name_figure_values_and_limit():
    base = summary(rate_per_s=100.0, latency_ms={"p50": 100.0, "p95": 200.0, "p99": 300.0})
    run = summary(rate_per_s=84.0, latency_ms={"p50": 100.0, "p95": 231.0, "p99": 300.0})
    assert compare(run, base) == [
        "regression-rate: rate 84.0 uploads/s < allowed 85.0 uploads/s (baseline 100.0 uploads/s, -15%)",
        "regression-p95-ms: p95 231.0 ms > allowed 230.0 ms (baseline 200.0 ms, +15% and more than 5 ms)",
    ]


def test_floor_ms_keeps_tiny_latencies_from_flapping():
    base = summary(latency_ms={"p50": 2.0, "p95": 4.0, "p99": 10.0})
    run = summary(latency_ms={"p50": 7.0, "p95": 9.1, "p99": 16.0})  # +250%, but p50 only 5 ms above
    problems = compare(run, base)
    assert [p.split(":")[0] for p in problems] == ["regression-p95-ms", "regression-p99-ms"]
    assert "allowed 9.0 ms" in problems[0]  # 4 + 5 ms floor, above 4 * 1.15
    assert compare(run, base, floor_ms=10.0) == []


def test_a_baseline_ten_times_faster_is_a_rate_regression():
    base = summary(rate_per_s=1000.0)
    problems = compare(summary(rate_per_s=100.0), base)
    assert problems == [
        "regression-rate: rate 100.0 uploads/s < allowed 850.0 uploads/s (baseline 1000.0 uploads/s, -15%)"
    ]


def test_steady_rate_compared_only_when_both_have_it():
    base = summary(rate_per_s=100.0, steady_rate_per_s=200.0)
    assert compare(summary(rate_per_s=100.0), base) == []  # rate_per_s on both sides
    assert compare(summary(rate_per_s=100.0, steady_rate_per_s=160.0), base)[0].startswith(
        "regression-rate: rate 160.0"
    )


def test_a_baseline_of_another_schema_is_refused_with_a_way_out(tmp_path):
    old = write(tmp_path, "old.json", {k: v for k, v in summary().items() if k != "schema"})
    with pytest.raises(
        BaselineError, match=r"old\.json: a summary of schema 1, .* schema 2; make a new baseline"
    ):
        load_baselines([old])


@pytest.mark.parametrize(
    ("limits", "over", "expected"),
    [
        ({"min_processed_rate": 10}, {"pipeline": {"processed_per_s": 10.0}}, None),
        ({"min_processed_rate": 10.5}, {"pipeline": {"processed_per_s": 10.0}},
         "check-min-processed-rate: 10.0 images processed/s < limit 10.5 images/s"),
        ({"processed_s": 12}, {"pipeline": {"processed_s": 12.0}}, None),
        ({"processed_s": 11}, {"pipeline": {"processed_s": 12.0}},
         "check-processed-s: processed 12.0 s > limit 11 s"),
        ({"min_faces_share": 0.98}, {"faces": {"images_with_faces": 162, "images_without": 3}}, None),
        ({"min_faces_share": 0.99}, {"faces": {"images_with_faces": 162, "images_without": 3}},
         "check-min-faces-share: 0.982 of images with a face < limit 0.99"),
        ({"min_cluster_purity": 0.8}, {"clusters": {"purity": 0.864}}, None),
        ({"min_cluster_purity": 0.9}, {"clusters": {"purity": 0.864}},
         "check-min-cluster-purity: purity 0.864 < limit 0.9"),
        ({"min_cluster_purity": 0.9}, {"clusters": None},
         "check-min-cluster-purity: no clusters to check (limit 0.9)"),
    ],
)  # fmt: skip
def test_each_pipeline_check_at_its_boundary(limits, over, expected):
    problems = evaluate_checks(summary(**over), limits)
    assert problems == ([] if expected is None else [expected])


def test_the_pipeline_regressing_against_the_baseline_is_named():
    base = summary(
        pipeline={"processed_per_s": 30.0, "processed_s": 6.0},
        faces={"images_with_faces": 162, "images_without": 3},
    )
    slower = summary(
        pipeline={"processed_per_s": 21.0, "processed_s": 8.6},
        faces={"images_with_faces": 100, "images_without": 65},
    )
    named = sorted(p.split(":")[0] for p in compare(slower, base, 0.15))
    assert named == ["regression-faces-share", "regression-processed-rate", "regression-processed-s"]
    assert compare(base, base, 0.15) == []


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.name)
def test_every_check_in_the_table_fails_on_an_impossible_limit(check):
    """On a run that measured everything, the limit no run can meet fails and names its check."""
    measured = summary(
        fail_ratio=0.01,
        drain_s=3.0,
        pipeline={"processed_per_s": 30.0, "processed_s": 6.0},
        faces={"images_with_faces": 162, "images_without": 3},
        clusters={"purity": 0.9},
    )
    impossible = (1.0 if check.share else 1e9) if check.bound == "min" else 0.0
    if check.share and check.bound == "min":  # a share of exactly 1 is possible: the figure is below it
        assert check.figure(measured) < 1.0
    (problem,) = evaluate_checks(measured, {check.name: impossible})
    assert problem.startswith(f"{check.label}: ") and "limit" in problem, problem
