"""The table of --check-* limits, and what makes a run comparable with a baseline.

Pure functions over summary dicts (the shape ``--summary-json`` writes); every function returns
messages, one per problem, empty when all is well: the caller decides the exit code.

- ``CHECKS``: one row per check (its flag, validation, figure and message); ``evaluate_checks`` runs
  them (k6-style thresholds). A check the run could not evaluate fails as "not measured".
- ``comparable``: why a run and a baseline measure different things (then a regression is noise).
  The comparison itself, which knows the noise, is ``seed/core/gate.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from seed.kanta.contract import host_kind as kanta_host_kind

LATENCIES = ("p50", "p95", "p99")
PROCESSED_FLOOR_S = 0.5  # a pipeline time must also grow by this much: 1.0 -> 1.3 s on a stand-in is noise


class BaselineError(ValueError):
    """The baseline files cannot be read or averaged; the message says which and why."""


# --- figures read from a summary ------------------------------------------------------------------
def _number(value: Any) -> float | None:
    # bool is an int in Python; a flag such as stopped_early is not a figure.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def rate_of(summary: Mapping[str, Any], steady: bool = True) -> float | None:
    """Uploads/s: the steady-state rate when the summary has one (ramp-up and tail excluded)."""
    if steady and _number(summary.get("steady_rate_per_s")) is not None:
        return _number(summary["steady_rate_per_s"])
    return _number(summary.get("rate_per_s"))


def latency_of(summary: Mapping[str, Any], which: str) -> float | None:
    lat = summary.get("latency_ms")
    return _number(lat.get(which)) if isinstance(lat, Mapping) else None


def fail_ratio_of(summary: Mapping[str, Any]) -> float | None:
    """Failed images over images; an explicit fail_ratio wins (it may count retries the way it likes)."""
    explicit = _number(summary.get("fail_ratio"))
    if explicit is not None:
        return explicit
    failed, images = _number(summary.get("failed")), _number(summary.get("images"))
    if failed is None or images is None:
        return None
    return failed / images if images > 0 else 0.0  # no images: nothing could fail


def _above(value: float, limit: float) -> bool:
    # Exactly at the limit passes, also when the limit came out of float arithmetic (100 * 1.15).
    return value > limit and not math.isclose(value, limit, rel_tol=1e-9, abs_tol=1e-12)


def _below(value: float, limit: float) -> bool:
    return value < limit and not math.isclose(value, limit, rel_tol=1e-9, abs_tol=1e-12)


def _fmt(value: float) -> str:
    return f"{value:g}"


# --- the table of checks -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """One ``--check-NAME LIMIT``: the option, its validation, its evaluation and its message, in one row.

    A new check is one row of ``CHECKS``: ``options.py`` registers its flag from here, ``problems``
    validates its limit from ``share``, and ``evaluate_checks`` runs it.
    """

    name: str  # min_rate -> --check-min-rate, Settings.checks["min_rate"]
    bound: str  # "min": the figure must be at least the limit; "max": at most
    figure: Callable[[Mapping[str, Any]], float | None]  # None: the run did not measure it
    said: str  # how the figure is said in a breach, "{value}" formatted by ``spec``
    unit: str  # after the limit in a breach ("" for a share)
    help: str
    spec: str = ".1f"
    share: bool = False  # a share in 0..1 (else a number >= 0)
    absent: str = "not measured"  # what a run without the figure says

    @property
    def flag(self) -> str:
        return "--check-" + self.name.replace("_", "-")

    @property
    def label(self) -> str:
        return self.flag.removeprefix("--")

    def breached(self, value: float, limit: float) -> bool:
        return _below(value, limit) if self.bound == "min" else _above(value, limit)

    def message(self, value: float, limit: float) -> str:
        op = "<" if self.bound == "min" else ">"
        said = self.said.format(value=format(value, self.spec))
        return f"{self.label}: {said} {op} limit {_fmt(limit)}{self.unit}"


def _clusters_purity(summary: Mapping[str, Any]) -> float | None:
    clusters = summary.get("clusters")
    return _number(clusters.get("purity")) if isinstance(clusters, Mapping) else None


CHECKS: tuple[Check, ...] = (
    Check(
        "min_rate", "min", lambda s: rate_of(s), "rate {value} uploads/s", " uploads/s",
        "Fail (exit 3) below this many uploads/s (steady; whole-run when a run has no steady window)",
    ),
    Check(
        "p50_ms", "max", lambda s: latency_of(s, "p50"), "p50 {value} ms", " ms",
        "Fail (exit 3) when the p50 upload latency is above this many ms",
    ),
    Check(
        "p95_ms", "max", lambda s: latency_of(s, "p95"), "p95 {value} ms", " ms",
        "Fail (exit 3) when the p95 upload latency is above this many ms",
    ),
    Check(
        "fail_ratio", "max", lambda s: fail_ratio_of(s), "fail ratio {value}", "",
        "Fail (exit 3) when more than this share of attempts failed, e.g. 0.01", spec=".4g", share=True,
    ),
    Check(
        "drain_s", "max", lambda s: _number(s.get("drain_s")), "drain {value} s", " s",
        "Fail (exit 3) when the last image was stored later than this after the first upload",
    ),
    Check(
        "min_processed_rate", "min", lambda s: processed_rate_of(s), "{value} images processed/s",
        " images/s", "Fail (exit 3) below this many images processed/s (steady)",
        absent="not measured: no steady processed rate",
    ),
    Check(
        "processed_s", "max", lambda s: _pipeline(s, "processed_s"), "processed {value} s", " s",
        "Fail (exit 3) when the last image was processed later than this after the first upload",
    ),
    Check(
        "min_faces_share", "min", lambda s: faces_share_of(s), "{value} of images with a face", "",
        "Fail (exit 3) when fewer than this share of images got a face, e.g. 0.98 (default: the data"
        " set's expected faces)", spec=".3f", share=True,
    ),
    Check(
        "min_cluster_purity", "min", _clusters_purity, "purity {value}", "",
        "Fail (exit 3) when the clusters' purity against the subjects is below this (needs"
        " --wait-clusters)", spec=".3f", share=True, absent="no clusters to check",
    ),
)  # fmt: skip
CHECK_BY_NAME = {c.name: c for c in CHECKS}


def evaluate_checks(summary: Mapping[str, Any], limits: Mapping[str, float | None]) -> list[str]:
    """One message per breached limit, in the table's order; a limit that is None (unset) is skipped.

    A value exactly at its limit passes. A check the run could not evaluate (its figure is missing, or
    the run measured nothing: ``measured`` false) fails and says so: a check that cannot fail is no check.
    """
    problems: list[str] = []
    nothing = summary.get("measured") is False
    for check in CHECKS:
        limit = limits.get(check.name)
        if limit is None:
            continue
        value = None if nothing else check.figure(summary)
        if value is None:
            why = "not measured: this run uploaded nothing" if nothing else check.absent
            problems.append(f"{check.label}: {why} (limit {_fmt(limit)}{check.unit})")
        elif check.breached(value, limit):
            problems.append(check.message(value, limit))
    return problems


def _pipeline(summary: Mapping[str, Any], key: str) -> float | None:
    pipe = summary.get("pipeline")
    return _number(pipe.get(key)) if isinstance(pipe, Mapping) else None


def processed_rate_of(summary: Mapping[str, Any]) -> float | None:
    return _pipeline(summary, "processed_per_s")


def faces_share_of(summary: Mapping[str, Any]) -> float | None:
    """Share of the images looked at that got at least one face."""
    faces = summary.get("faces")
    if not isinstance(faces, Mapping):
        return None
    found, without = _number(faces.get("images_with_faces")), _number(faces.get("images_without"))
    if found is None or without is None or found + without == 0:
        return None
    return found / (found + without)


# --- what makes two runs comparable ----------------------------------------------------------------
def host_kind(summary: Mapping[str, Any]) -> str:
    """'local' (a stand-in or null server on this machine) or 'remote' (a real stack elsewhere).

    An explicit host_kind in the summary wins: a real Kanta on localhost is still a real Kanta.
    """
    explicit = summary.get("host_kind")
    if isinstance(explicit, str) and explicit:
        return explicit
    return kanta_host_kind(str(summary.get("host", "")))


def _data_set_name(summary: Mapping[str, Any]) -> str:
    # The same zip sits at different paths on a laptop and in CI: compare its name, not its path.
    return PurePath(str(summary.get("data_set", ""))).name


def identity(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that must agree for two runs to measure the same thing."""
    return {
        "data set": _data_set_name(summary),
        "images": summary.get("images"),
        "users": summary.get("users"),
        # Summaries without the field come from one-process runs.
        "processes": summary.get("processes", 1),
        "host kind": host_kind(summary),
        "mode": summary.get("mode", "seed"),  # a seed run's figures and a bench run's measure other things
    }


def _differences(a: Mapping[str, Any], b: Mapping[str, Any], name_a: str, name_b: str) -> list[str]:
    ida, idb = identity(a), identity(b)
    return [f"{key}: {name_a} {ida[key]!r}, {name_b} {idb[key]!r}" for key in ida if ida[key] != idb[key]]


def comparable(run: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[str]:
    """Why the run and the baseline are not comparable, one line per difference; empty when they are."""
    return _differences(run, baseline, "run", "baseline")


def comparable_at_start(planned: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[str]:
    """As ``comparable``, for what is known before the first upload: the keys ``planned`` has (the rest,
    such as the processes of a cluster, is compared at the end)."""
    mine, theirs = identity(planned), identity(baseline)
    known = {
        "data set": "data_set",
        "images": "images",
        "users": "users",
        "host kind": "host",
        "mode": "mode",
    }
    return [
        f"{key}: run {mine[key]!r}, baseline {theirs[key]!r}"
        for key, field in known.items()
        if field in planned and mine[key] != theirs[key]
    ]
