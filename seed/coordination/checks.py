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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from seed.core.summary import SCHEMA
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


# --- baselines ---------------------------------------------------------------------------------------
def _average(docs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
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
    files = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not files:
        raise BaselineError("no baseline files given")
    docs: list[dict[str, Any]] = []
    for path in files:
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
    for path, doc in zip(files[1:], docs[1:], strict=True):
        differences = _differences(docs[0], doc, str(files[0]), str(path))
        if differences:
            raise BaselineError("baselines are not comparable: " + "; ".join(differences))
    averaged = _average(docs)
    # Identity fields are taken as they are (they agree), not as averages: users stays an int.
    for key in ("images", "users", "processes"):
        if key in docs[0]:
            averaged[key] = docs[0][key]
    averaged["baseline_files"] = [str(p) for p in files]
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
