"""Unit tests for the run checks and the baseline comparison (seed/checks.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seed.coordination.checks import (
    CHECKS,
    comparable,
    evaluate_checks,
    host_kind,
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
