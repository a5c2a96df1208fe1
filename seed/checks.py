"""Pass/fail checks on a run's summary, and regressions against a baseline of earlier summaries.

Pure functions over summary dicts (the shape ``report.summarize`` writes with ``--summary-json``);
the only I/O is ``load_baselines`` reading baseline JSON files. Every function returns messages,
one per problem, empty when all is well: the caller decides the exit code.

- ``evaluate_checks``: absolute limits (k6-style thresholds): rate, p50/p95 latency, failure ratio,
  drain time, and the pipeline's: processed rate and time, share of images with a face, cluster purity.
- ``load_baselines``: one or several earlier summaries, averaged, refused when they disagree on what
  was measured.
- ``comparable``: why a run and a baseline measure different things (then a regression is noise).
- ``compare``: a rate drop or a latency rise beyond a tolerance.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath
from typing import Any

from .kanta import host_kind as kanta_host_kind
from .summary import SCHEMA

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


# --- absolute checks --------------------------------------------------------------------------------
def evaluate_checks(summary: Mapping[str, Any], limits: Mapping[str, float | None]) -> list[str]:
    """One message per breached limit; a limit that is None (unset) is skipped.

    limits: min_rate (uploads/s, at least), p50_ms, p95_ms, fail_ratio, drain_s (each at most).
    A value exactly at its limit passes. A figure the summary lacks is not a breach: drain_s only
    exists for runs that measured it, and a check cannot fail on what was not measured.
    """
    problems: list[str] = []

    limit = limits.get("min_rate")
    rate = rate_of(summary)
    if limit is not None and rate is not None and _below(rate, limit):
        problems.append(f"check-min-rate: rate {rate:.1f} uploads/s < limit {_fmt(limit)} uploads/s")

    for which in ("p50", "p95"):
        limit = limits.get(f"{which}_ms")
        value = latency_of(summary, which)
        if limit is not None and value is not None and _above(value, limit):
            problems.append(f"check-{which}-ms: {which} {value:.1f} ms > limit {_fmt(limit)} ms")

    limit = limits.get("fail_ratio")
    ratio = fail_ratio_of(summary)
    if limit is not None and ratio is not None and _above(ratio, limit):
        problems.append(f"check-fail-ratio: fail ratio {ratio:.4g} > limit {_fmt(limit)}")

    limit = limits.get("drain_s")
    drain = _number(summary.get("drain_s"))
    if limit is not None and drain is not None and _above(drain, limit):
        problems.append(f"check-drain-s: drain {drain:.1f} s > limit {_fmt(limit)} s")

    limit = limits.get("min_processed_rate")
    value = processed_rate_of(summary)
    if limit is not None and value is not None and _below(value, limit):
        problems.append(
            f"check-min-processed-rate: {value:.1f} images processed/s < limit {_fmt(limit)} images/s"
        )

    limit = limits.get("processed_s")
    value = _pipeline(summary, "processed_s")
    if limit is not None and value is not None and _above(value, limit):
        problems.append(f"check-processed-s: processed {value:.1f} s > limit {_fmt(limit)} s")

    limit = limits.get("min_faces_share")
    value = faces_share_of(summary)
    if limit is not None and value is not None and _below(value, limit):
        problems.append(f"check-min-faces-share: {value:.3f} of images with a face < limit {_fmt(limit)}")

    limit = limits.get("min_cluster_purity")
    clusters = summary.get("clusters")
    value = _number(clusters.get("purity")) if isinstance(clusters, Mapping) else None
    if limit is not None and value is None:
        problems.append(f"check-min-cluster-purity: no clusters to check (limit {_fmt(limit)})")
    elif limit is not None and value is not None and _below(value, limit):
        problems.append(f"check-min-cluster-purity: purity {value:.3f} < limit {_fmt(limit)}")

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
    known = {"data set": "data_set", "images": "images", "users": "users", "host kind": "host"}
    return [
        f"{key}: run {mine[key]!r}, baseline {theirs[key]!r}"
        for key, field in known.items()
        if field in planned and mine[key] != theirs[key]
    ]


# --- baselines ---------------------------------------------------------------------------------------
def _average(docs: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Numbers averaged over the documents that have them; nested dicts likewise; anything else from the
    first document that has it (names, lists of failures: not figures)."""
    out: dict[str, Any] = {}
    keys: list[str] = []
    for doc in docs:
        keys.extend(k for k in doc if k not in keys)
    for key in keys:
        values = [doc[key] for doc in docs if key in doc]
        numbers = [n for n in map(_number, values) if n is not None]
        if numbers and len(numbers) == len(values):
            out[key] = sum(numbers) / len(numbers)
        elif all(isinstance(v, Mapping) for v in values):
            out[key] = _average(values)
        else:
            out[key] = values[0]
    return out


def load_baselines(paths: str | Path | Iterable[str | Path]) -> dict[str, Any]:
    """One baseline from one or several summary JSON files: their figures averaged.

    Averaging smooths a noisy machine; it is only meaningful between runs of the same thing, so the
    comparability fields (data set, images, users, processes, host kind) must agree, else BaselineError.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise BaselineError("no baseline files given")
    docs: list[dict[str, Any]] = []
    for path in paths:
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError as e:
            raise BaselineError(f"baseline {path} does not exist; check the path") from e
        except (OSError, ValueError) as e:
            raise BaselineError(f"baseline {path}: cannot read it as JSON ({e})") from e
        if not isinstance(doc, dict):
            raise BaselineError(f"baseline {path}: not a summary (a JSON object is expected)")
        if doc.get("schema") != SCHEMA:
            raise BaselineError(
                f"baseline {path}: a summary of schema {doc.get('schema', 1)!r}, this kanta-seed writes"
                f" schema {SCHEMA}; make a new baseline with this version (--summary-json)"
            )
        docs.append(doc)
    for path, doc in zip(paths[1:], docs[1:], strict=True):
        differences = _differences(docs[0], doc, str(paths[0]), str(path))
        if differences:
            raise BaselineError("baselines are not comparable: " + "; ".join(differences))
    averaged = _average(docs)
    # Identity fields are taken as they are (they agree), not as averages: users stays an int.
    for key in ("images", "users", "processes"):
        if key in docs[0]:
            averaged[key] = docs[0][key]
    averaged["baseline_files"] = [str(p) for p in paths]
    return averaged


# --- regressions ------------------------------------------------------------------------------------
def compare(
    run: Mapping[str, Any],
    baseline: Mapping[str, Any],
    max_regression: float = 0.15,
    floor_ms: float = 5.0,
) -> list[str]:
    """Regressions of the run against the baseline, one message each; empty when none.

    Rate: lower than baseline * (1 - max_regression). Latency p50/p95/p99: higher than
    baseline * (1 + max_regression) AND more than floor_ms above it, so that 2 ms -> 3 ms on a fast
    local server (+50%) does not flap. Exactly at the allowed limit is no regression.
    """
    problems: list[str] = []
    # The steady rate only when both have it: otherwise compare like with like.
    steady = all(_number(s.get("steady_rate_per_s")) is not None for s in (run, baseline))
    mine, theirs = rate_of(run, steady), rate_of(baseline, steady)
    if mine is not None and theirs is not None:
        allowed = theirs * (1 - max_regression)
        if _below(mine, allowed):
            problems.append(
                f"regression-rate: rate {mine:.1f} uploads/s < allowed {allowed:.1f} uploads/s"
                f" (baseline {theirs:.1f} uploads/s, -{max_regression:.0%})"
            )
    mine, theirs = processed_rate_of(run), processed_rate_of(baseline)
    if mine is not None and theirs is not None:
        allowed = theirs * (1 - max_regression)
        if _below(mine, allowed):
            problems.append(
                f"regression-processed-rate: {mine:.1f} images processed/s < allowed {allowed:.1f}"
                f" (baseline {theirs:.1f}, -{max_regression:.0%})"
            )
    mine, theirs = _pipeline(run, "processed_s"), _pipeline(baseline, "processed_s")
    if mine is not None and theirs is not None:
        allowed = max(theirs * (1 + max_regression), theirs + PROCESSED_FLOOR_S)
        if _above(mine, allowed):
            problems.append(
                f"regression-processed-s: processed {mine:.1f} s > allowed {allowed:.1f} s"
                f" (baseline {theirs:.1f} s, +{max_regression:.0%})"
            )
    mine, theirs = faces_share_of(run), faces_share_of(baseline)
    if mine is not None and theirs is not None and _below(mine, theirs - 0.01):
        problems.append(f"regression-faces-share: {mine:.3f} of images with a face < baseline {theirs:.3f}")
    for which in LATENCIES:
        mine, theirs = latency_of(run, which), latency_of(baseline, which)
        if mine is None or theirs is None:
            continue
        allowed = max(theirs * (1 + max_regression), theirs + floor_ms)
        if _above(mine, allowed):
            problems.append(
                f"regression-{which}-ms: {which} {mine:.1f} ms > allowed {allowed:.1f} ms"
                f" (baseline {theirs:.1f} ms, +{max_regression:.0%} and more than {_fmt(floor_ms)} ms)"
            )
    return problems
