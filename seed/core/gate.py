"""The regression gate that knows its noise: a run against one or several baseline runs.

A figure regresses only when it is worse than the baseline by more than BOTH

- the allowance: ``max_regression`` of the baseline's value (15% by default), and at least a floor
  (5 ms of latency, 0.5 s of processed time; the share of images with a face: 0.01), as before; and
- the noise band: where the figure of an identical rerun may land, as far as the baseline can tell.
  - Several baseline runs (files, or a history folder): the spread of their values. The band runs
    from their lowest to their highest value, each end stretched by the same factor again
    (low / (high/low) .. high * (high/low): a multiplicative spread, as run-to-run noise is), after
    Dixon's Q test (95%) took out at most one outlier at each end (one run on a busy machine must not
    open the band to everything); never narrower than the run's own sampling noise. The baseline's
    value is their median.
  - One baseline run: its per-image samples (``samples``, both summaries need them). The figure is
    recomputed on ``BOOTSTRAP`` resamples of each side (seeded: the same summaries always get the
    same verdict; latencies in moving blocks, in the order they happened, so a stall that slowed a
    stretch of uploads counts as one event, not as many independent ones); the band is the baseline's
    value plus and minus ``Z`` robust standard errors of the difference. Without samples (an older
    summary) there is no band: the allowance alone decides, as before.

A percentile from too few samples is "too few samples to judge": shown, never gated. A percentile
needs ``BEYOND_TAIL`` clumps of samples beyond it, a clump being the uploads in flight together (the
users: a stall delays them all at once): at -u 5 the p95 needs 300 samples, the p99 1500; at -u 1,
60 and 300. A figure the run or the baseline did not measure is "not measured".

What one baseline run cannot see: how much a whole run moves from one rerun to the next (on the
instant stand-in the median upload took 1.8 ms in one run and 15.6 ms in the next, same command:
which users overlapped, how gevent scheduled them). Per-image samples only say how much a run's
figure depends on which uploads happened to be slow. Several baseline runs see it, and a history
folder (``history.append``) gives them for free; every verdict says which noise it used (``noise``).

Pure functions over summary dicts as ``--summary-json`` writes them; the only I/O is
``load_baselines`` reading files.
"""

from __future__ import annotations

import json
import math
import random
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import urlsplit

from seed.core.figures import percentile
from seed.core.stages import steady_rate
from seed.core.summary import SCHEMA

SAMPLE_KEYS = ("latency_ms", "stored_lag_s", "processed_lag_s", "processed_at_s")
LATENCY_FLOOR_MS = 5.0  # a latency must also grow by this much: 2 -> 3 ms on a fast server is noise
PROCESSED_FLOOR_S = 0.5  # a pipeline time must also grow by this much: 1.0 -> 1.3 s is noise
FACES_SHARE_DROP = 0.01  # the share of images with a face must fall by more than this
BEYOND_TAIL = 3  # clumps of samples a percentile needs beyond it (a clump: the users' uploads in flight)
BOOTSTRAP = 400  # resamples of a summary's samples (one baseline run: of both sides)
MIN_BOOTSTRAP = 100  # ... and at least this many, however long the run
BOOTSTRAP_BUDGET = 800_000  # ... and at most this many samples drawn in all, per summary and kind
Z = 3.0  # robust standard errors of the difference a single-baseline band spans (two-sided ~99.7%)
SEED = 20250612  # the bootstrap's seed: the same summaries always get the same verdicts
STATUSES = ("ok", "regression", "too few samples", "not measured")
SPREAD_WIDEN = 1.0  # several baseline runs: each end of their span stretched by their spread, this often
HISTORY_LAST = 10  # a history folder as a baseline: its last runs that measured what this run does


class BaselineError(ValueError):
    """The baseline cannot be read or used; the message says which and why."""


# --- reading figures ----------------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _sub(summary: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = summary.get(key)
    return value if isinstance(value, Mapping) else {}


def samples_of(summary: Mapping[str, Any], key: str) -> list[float] | None:
    """The per-image samples of one kind (``SAMPLE_KEYS``), None when the summary has none."""
    values = _sub(summary, "samples").get(key)
    if not isinstance(values, list):
        return None
    out = [n for n in map(_number, values) if n is not None]
    return out or None


def faces_share(summary: Mapping[str, Any]) -> float | None:
    faces = _sub(summary, "faces")
    found, without = _number(faces.get("images_with_faces")), _number(faces.get("images_without"))
    if found is None or without is None or found + without == 0:
        return None
    return found / (found + without)


def faces_looked_at(summary: Mapping[str, Any]) -> int:
    faces = _sub(summary, "faces")
    return int((_number(faces.get("images_with_faces")) or 0) + (_number(faces.get("images_without")) or 0))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


@dataclass(frozen=True)
class Figure:
    """One figure the gate judges: where it is in a summary, which way is worse, its allowance floor,
    and how to recompute it from per-image samples (for the noise of one baseline run)."""

    name: str  # regression-<name>: the message prefix, and the JUnit test case
    label: str
    unit: str
    higher_is_worse: bool
    floor: float  # the figure must also get worse by this much (in its unit)
    read: Callable[[Mapping[str, Any], bool], float | None]  # (summary, steady) -> value
    sample_key: str | None = None  # the samples it is recomputed from
    statistic: Callable[[list[float]], float | None] | None = None  # samples (sorted) -> figure
    proxy: bool = False  # the statistic is a proxy: its relative noise is applied to the figure
    quantile: float | None = None  # a percentile: needs BEYOND_TAIL clumps of samples beyond it
    relative: bool = True  # the allowance is max_regression of the baseline; else the floor alone
    spec: str = ".1f"

    def min_samples(self, clump: int = 1) -> int:
        """The samples a percentile needs: BEYOND_TAIL clumps of samples beyond it (a clump: the uploads
        in flight together, which a stall delays together)."""
        if self.quantile is None or self.quantile >= 1:
            return 0
        return math.ceil(BEYOND_TAIL * max(1, clump) / (1 - self.quantile) - 1e-9)

    def fmt(self, value: float | None) -> str:
        if value is None:
            return "-"
        unit = f" {self.unit}" if self.unit and not self.unit.startswith("/") else self.unit
        return f"{format(value, self.spec)}{unit}"


def _rate(summary: Mapping[str, Any], steady: bool) -> float | None:
    if steady and _number(summary.get("steady_rate_per_s")) is not None:
        return _number(summary["steady_rate_per_s"])
    return _number(summary.get("rate_per_s"))


def _pipeline(key: str) -> Callable[[Mapping[str, Any], bool], float | None]:
    return lambda s, _steady: _number(_sub(s, "pipeline").get(key))


def _latency(which: str) -> Callable[[Mapping[str, Any], bool], float | None]:
    return lambda s, _steady: _number(_sub(s, "latency_ms").get(which))


def _pct(p: float) -> Callable[[list[float]], float | None]:
    return lambda xs: percentile(xs, p) if xs else None


def _inverse_mean(xs: list[float]) -> float | None:
    # Closed-loop users: uploads/s ~ users / mean latency; its relative noise is the rate's.
    m = _mean(xs) if xs else 0.0
    return 1000.0 / m if m > 0 else None


def _steady_processed(xs: list[float]) -> float | None:
    return steady_rate(xs, 0.0)  # processed_at_s is already from the first upload


FIGURES: tuple[Figure, ...] = (
    Figure("rate", "rate", "uploads/s", False, 0.0, _rate, "latency_ms", _inverse_mean, proxy=True),
    Figure("processed-rate", "processed rate", "images/s", False, 0.0, _pipeline("processed_per_s"),
           "processed_at_s", _steady_processed),
    Figure("processed-s", "processed", "s", True, PROCESSED_FLOOR_S, _pipeline("processed_s"),
           "processed_at_s", lambda xs: xs[-1] if xs else None),
    Figure("faces-share", "share of images with a face", "", False, FACES_SHARE_DROP,
           lambda s, _steady: faces_share(s), relative=False, spec=".3f"),
    Figure("p50-ms", "p50", "ms", True, LATENCY_FLOOR_MS, _latency("p50"), "latency_ms", _pct(50),
           quantile=0.50),
    Figure("p95-ms", "p95", "ms", True, LATENCY_FLOOR_MS, _latency("p95"), "latency_ms", _pct(95),
           quantile=0.95),
    Figure("p99-ms", "p99", "ms", True, LATENCY_FLOOR_MS, _latency("p99"), "latency_ms", _pct(99),
           quantile=0.99),
)  # fmt: skip
FIGURE_BY_NAME = {f.name: f for f in FIGURES}


# --- the verdict ----------------------------------------------------------------------------------------
@dataclass
class Verdict:
    """One figure of the run against the baseline."""

    figure: str  # FIGURES' name: rate, processed-rate, processed-s, faces-share, p50-ms, ...
    label: str
    unit: str
    status: str  # ok | regression | too few samples | not measured
    value: float | None  # the run's
    baseline: float | None  # the baseline's (the median of several runs)
    band: tuple[float, float] | None  # the noise band: where an identical rerun's value may fall
    limit: float | None  # the allowance: worse than this is beyond max_regression and the floor
    higher_is_worse: bool
    noise: str  # how the band was found: "3 baseline runs", "per-image samples (bootstrap)", ...
    samples: int | None  # samples the figure rests on (the fewest of run and baseline), when known
    message: str
    baseline_values: list[float] = field(default_factory=list)  # each baseline run's value

    @property
    def failed(self) -> bool:
        return self.status == "regression"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["band"] = list(self.band) if self.band is not None else None
        return out


def verdict_from(obj: Verdict | Mapping[str, Any]) -> Verdict:
    """A Verdict, from itself or from its ``to_dict`` (as a summary's JSON may carry it)."""
    if isinstance(obj, Verdict):
        return obj
    band = obj.get("band")
    return Verdict(
        figure=str(obj.get("figure", "")),
        label=str(obj.get("label", obj.get("figure", ""))),
        unit=str(obj.get("unit", "")),
        status=str(obj.get("status", "ok")),
        value=_number(obj.get("value")),
        baseline=_number(obj.get("baseline")),
        band=(float(band[0]), float(band[1])) if isinstance(band, (list, tuple)) and len(band) == 2 else None,
        limit=_number(obj.get("limit")),
        higher_is_worse=bool(obj.get("higher_is_worse", True)),
        noise=str(obj.get("noise", "")),
        samples=int(obj["samples"]) if isinstance(obj.get("samples"), int) else None,
        message=str(obj.get("message", "")),
        baseline_values=[float(v) for v in obj.get("baseline_values") or [] if _number(v) is not None],
    )


def regressions(verdicts: Iterable[Verdict]) -> list[str]:
    """The messages of the figures that regressed (each exits 3, as ``compare``'s do)."""
    return [v.message for v in verdicts if v.failed]


def headline(verdicts: Sequence[Verdict], max_regression: float) -> str:
    """One line for the summary's baseline row: the outcome, and what was not judged."""
    bad = [v.figure for v in verdicts if v.failed]
    few = [v.figure for v in verdicts if v.status == "too few samples"]
    noise = next((v.noise for v in verdicts if v.status in ("ok", "regression")), "")
    text = (
        f"{len(bad)} figure(s) worse beyond the allowance and the noise: {', '.join(bad)}"
        if bad
        else f"no figure worse by more than {max_regression:.0%} and the noise"
    )
    if noise:
        text += f" (noise from {noise})"
    if few:
        text += f"; too few samples to judge {', '.join(few)}"
    return text


# --- the noise ------------------------------------------------------------------------------------------
def _robust_se(values: list[float]) -> float:
    """A standard error from bootstrap replicates that a few wild ones do not inflate: IQR / 1.349."""
    xs = sorted(values)
    if len(xs) < 4:
        return 0.0
    return (percentile(xs, 75) - percentile(xs, 25)) / 1.349


TIME_ORDERED = frozenset({"latency_ms"})  # samples in the order they happened: resampled in blocks
BLOCK_POWER = 0.5  # a block is n ** BLOCK_POWER samples long


def block_size(n: int) -> int:
    return max(1, min(n, round(n**BLOCK_POWER)))


class Bootstrap:
    """Resamples (with replacement) of a summary's per-image samples, drawn once per summary and kind
    and shared by every figure computed from them; seeded, so the same summaries get the same verdicts."""

    def __init__(self, reps: int = BOOTSTRAP, seed: int = SEED) -> None:
        self.reps = reps
        self.rng = random.Random(seed)
        self._drawn: dict[tuple[int, str], list[list[float]] | None] = {}

    def resamples(self, doc: Mapping[str, Any], key: str) -> list[list[float]] | None:
        slot = (id(doc), key)
        if slot not in self._drawn:
            xs = samples_of(doc, key)
            if xs is None or len(xs) < 2:
                self._drawn[slot] = None
                return None
            # A long run's samples: fewer resamples (its sampling noise is small anyway), so the end
            # of a run never waits long for its verdict.
            reps = max(MIN_BOOTSTRAP, min(self.reps, BOOTSTRAP_BUDGET // len(xs)))
            if key in TIME_ORDERED:
                self._drawn[slot] = [sorted(self._blocks(xs)) for _ in range(reps)]
            else:
                self._drawn[slot] = [sorted(self.rng.choices(xs, k=len(xs))) for _ in range(reps)]
        return self._drawn[slot]

    def _blocks(self, xs: list[float]) -> list[float]:
        """A moving-block resample: runs of consecutive samples, so what slows a stretch of the run
        (a stall, a pause) is resampled as a whole, not as independent samples."""
        n = len(xs)
        size = block_size(n)
        out: list[float] = []
        while len(out) < n:
            start = self.rng.randrange(0, n - size + 1)
            out.extend(xs[start : start + size])
        return out[:n]

    def se(self, figure: Figure, doc: Mapping[str, Any], steady: bool = False) -> float | None:
        """The robust standard error of the figure in this summary, in the figure's unit; None when the
        summary has no samples for it. A proxy statistic's relative error is applied to the figure."""
        if figure.sample_key is None or figure.statistic is None:
            return None
        drawn = self.resamples(doc, figure.sample_key)
        if drawn is None:
            return None
        replicates = [v for v in map(figure.statistic, drawn) if v is not None]
        if len(replicates) < len(drawn) // 2:
            return None
        se = _robust_se(replicates)
        if figure.proxy:
            xs = samples_of(doc, figure.sample_key) or []
            centre, value = figure.statistic(sorted(xs)), figure.read(doc, steady)
            if not centre or value is None:
                return None
            se = se / centre * value
        return se


def _faces_noise(run: Mapping[str, Any], bases: Sequence[Mapping[str, Any]]) -> float:
    """The binomial standard error of a difference of two shares (pooled), for one baseline run."""
    n1 = faces_looked_at(run)
    n2 = min((faces_looked_at(b) for b in bases), default=0)
    shares = [s for s in (faces_share(run), *(faces_share(b) for b in bases)) if s is not None]
    if not n1 or not n2 or not shares:
        return 0.0
    p = _mean(shares)
    return math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))


# --- comparability --------------------------------------------------------------------------------------
LOCAL_HOSTNAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def host_kind(summary: Mapping[str, Any]) -> str:
    """'local' or 'remote': the summary's own ``host_kind``, else from its host (loopback is local)."""
    explicit = summary.get("host_kind")
    if isinstance(explicit, str) and explicit:
        return explicit
    name = (urlsplit(str(summary.get("host", ""))).hostname or "").lower()
    if name in LOCAL_HOSTNAMES or name.startswith("127.") or name == "::1":
        return "local"
    return "remote"


def identity(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that must agree for two runs to measure the same thing (as checks.identity)."""
    return {
        "data set": PurePath(str(summary.get("data_set", ""))).name,
        "images": summary.get("images"),
        "users": summary.get("users"),
        "processes": summary.get("processes", 1),
        "host kind": host_kind(summary),
        "mode": summary.get("mode", "seed"),
    }


def differences(a: Mapping[str, Any], b: Mapping[str, Any], name_a: str, name_b: str) -> list[str]:
    ida, idb = identity(a), identity(b)
    return [f"{key}: {name_a} {ida[key]!r}, {name_b} {idb[key]!r}" for key in ida if ida[key] != idb[key]]


# --- loading baselines ----------------------------------------------------------------------------------
def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise BaselineError(f"baseline {path} does not exist; check the path") from e
    except (OSError, ValueError) as e:
        raise BaselineError(f"baseline {path}: cannot read it as JSON ({e})") from e
    if not isinstance(doc, dict):
        raise BaselineError(f"baseline {path}: not a summary (a JSON object is expected)")
    return doc


def _schema_problem(doc: Mapping[str, Any], path: Path) -> str:
    if doc.get("schema") == SCHEMA:
        return ""
    return (
        f"baseline {path}: a summary of schema {doc.get('schema', 1)!r}, this kanta-seed writes"
        f" schema {SCHEMA}; make a new baseline with this version (--summary-json)"
    )


def _paths(paths_or_dir: str | Path | Iterable[str | Path]) -> list[Path]:
    items: list[str | Path] = [paths_or_dir] if isinstance(paths_or_dir, (str, Path)) else list(paths_or_dir)
    out: list[Path] = []
    for item in items:
        if isinstance(item, str):
            out += [Path(p.strip()) for p in item.split(",") if p.strip()]
        else:
            out.append(Path(item))
    return out


def _history_entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".json" and p.name[:1].isdigit())


def load_baselines(
    paths_or_dir: str | Path | Iterable[str | Path],
    like: Mapping[str, Any] | None = None,
    last: int = HISTORY_LAST,
) -> list[dict[str, Any]]:
    """The baseline runs: summary files (a path, a comma-separated list, or several), or history
    folders (``history.append``'s), each as a summary dict with ``baseline_file`` set.

    Files named one by one must be of this schema and measure the same thing as each other (else
    BaselineError, as ``checks.load_baselines``). A history folder spans changes over time, so from
    it come its ``last`` runs of this schema that measured what ``like`` (the run, or what is known
    of it before it starts) measures, or, without ``like``, what its newest such run measured;
    a folder with none of them is a BaselineError. Runs that measured nothing are left out.
    """
    paths = _paths(paths_or_dir)
    if not paths:
        raise BaselineError("no baseline files given")
    docs: list[dict[str, Any]] = []
    for path in paths:
        if path.is_dir():
            docs += _from_history(path, like, last)
            continue
        doc = _read(path)
        problem = _schema_problem(doc, path)
        if problem:
            raise BaselineError(problem)
        doc["baseline_file"] = str(path)
        docs.append(doc)
    first = docs[0]
    for doc in docs[1:]:
        found = differences(first, doc, first["baseline_file"], doc["baseline_file"])
        if found:
            raise BaselineError("baselines are not comparable: " + "; ".join(found))
    return docs


def _from_history(folder: Path, like: Mapping[str, Any] | None, last: int) -> list[dict[str, Any]]:
    """The folder's newest runs (``last`` of them, oldest first) of this schema that measured something,
    all of one kind: what ``like`` says it measures, the rest as the newest of them measured."""
    wanted = {} if like is None else {k: v for k, v in identity(like).items() if k in _known_keys(like)}
    kind: dict[str, Any] | None = None
    chosen: list[dict[str, Any]] = []
    for path in reversed(_history_entries(folder)):  # newest first
        if len(chosen) >= last:
            break
        try:
            doc = _read(path)
        except BaselineError:
            continue  # a torn or stray file in a history is not a reason to refuse the rest
        if _schema_problem(doc, path) or doc.get("measured") is False:
            continue
        mine = identity(doc)
        if any(mine[k] != v for k, v in wanted.items()) or (kind is not None and mine != kind):
            continue
        kind = mine
        doc["baseline_file"] = str(path)
        chosen.append(doc)
    if not chosen:
        what = "" if like is None else " that measured what this run measures"
        raise BaselineError(f"baseline {folder}: a history folder with no run of schema {SCHEMA}{what}")
    chosen.reverse()
    return chosen


def _known_keys(like: Mapping[str, Any]) -> set[str]:
    """The identity keys ``like`` says something about (a plan before the start lacks processes)."""
    fields = {
        "data set": "data_set",
        "images": "images",
        "users": "users",
        "processes": "processes",
        "host kind": "host",
        "mode": "mode",
    }
    return {k for k, f in fields.items() if f in like or (k == "host kind" and "host_kind" in like)}


# --- judging ------------------------------------------------------------------------------------------
def _worse(figure: Figure, value: float, than: float) -> bool:
    """Strictly worse, and not by a float's rounding (exactly at a limit passes)."""
    if math.isclose(value, than, rel_tol=1e-9, abs_tol=1e-12):
        return False
    return value > than if figure.higher_is_worse else value < than


def allowance(figure: Figure, baseline: float, max_regression: float) -> float:
    """The worst value the allowance lets through: max_regression of the baseline, and the floor."""
    if figure.higher_is_worse:
        relative = baseline * (1 + max_regression) if figure.relative else baseline
        return max(relative, baseline + figure.floor)
    relative = baseline * (1 - max_regression) if figure.relative else baseline
    return min(relative, baseline - figure.floor)


def clump_of(run: Mapping[str, Any]) -> int:
    """How many uploads are in flight together: the users (a stall delays all of them at once)."""
    users = _number(run.get("users"))
    return max(1, int(users)) if users else 1


def _sample_count(figure: Figure, docs: Sequence[Mapping[str, Any]]) -> int | None:
    """The fewest samples a percentile rests on, over the run and its baselines (None: unknown)."""
    counts = []
    for doc in docs:
        xs = samples_of(doc, figure.sample_key) if figure.sample_key else None
        if xs is not None:
            counts.append(len(xs))
            continue
        uploaded = _number(doc.get("uploaded"))
        if uploaded is None:
            return None
        counts.append(
            int(uploaded) - int(_number(doc.get("resumed")) or 0) - int(_number(doc.get("present")) or 0)
        )
    return min(counts) if counts else None


# Dixon's Q test at 95%: the critical gap / range of n values (n = 3..10); beyond 10, the value at 10.
DIXON_Q95 = {3: 0.970, 4: 0.829, 5: 0.710, 6: 0.625, 7: 0.568, 8: 0.526, 9: 0.493, 10: 0.466}


def without_outliers(values: Sequence[float]) -> list[float]:
    """The baseline runs' values without one outlier at each end (Dixon's Q test at 95%, on the log of
    positive values): one baseline run on a machine that was busy must not stretch the band over
    everything."""
    xs = sorted(values)
    if len(xs) < 4:
        return xs
    scale = [math.log(v) for v in xs] if xs[0] > 0 else list(xs)
    q = DIXON_Q95[min(len(xs), 10)]
    keep_lo, keep_hi = 0, len(xs)
    spread = scale[-1] - scale[0]
    if spread > 0:
        if (scale[-1] - scale[-2]) / spread > q:
            keep_hi -= 1
        if (scale[1] - scale[0]) / spread > q:
            keep_lo += 1
    return xs[keep_lo:keep_hi]


def spread_band(values: Sequence[float], own_half: float = 0.0) -> tuple[float, float]:
    """Where an identical rerun may land, from several baseline runs' values: their span (without an
    outlier at either end) stretched at each end by their spread (a factor for positive figures), and
    by at least ``own_half``, the run's own sampling noise."""
    kept = without_outliers(values)
    low, high = min(kept), max(kept)
    if low > 0:  # multiplicative: a figure that doubles by noise may also halve
        ratio = (high / low) ** SPREAD_WIDEN
        return min(low / ratio, low - own_half), max(high * ratio, high + own_half)
    width = max(SPREAD_WIDEN * (high - low), own_half)
    return low - width, high + width


def judge(
    run: Mapping[str, Any],
    baselines: Sequence[Mapping[str, Any]],
    max_regression: float = 0.15,
    figures: Sequence[Figure] = FIGURES,
) -> list[Verdict]:
    """One verdict per figure of ``figures``: the run against the baseline runs.

    Several baselines: their median is the baseline, their spread the noise. One: its value is the
    baseline, the per-image samples (when both have them) the noise. A run that measured nothing, or a
    figure missing on either side, is "not measured"; a percentile from too few samples, "too few
    samples". The rest is "regression" when worse than both the allowance and the noise band, else "ok".
    """
    if not baselines:
        raise BaselineError("no baseline runs to judge against")
    boot = Bootstrap()
    bases = [b for b in baselines if b.get("measured") is not False] or list(baselines)
    steady = all(_number(s.get("steady_rate_per_s")) is not None for s in (run, *bases))
    return [_judge_one(f, run, bases, max_regression, steady, boot) for f in figures]


def _judge_one(figure: Figure, run: Mapping[str, Any], bases: Sequence[Mapping[str, Any]],
               max_regression: float, steady: bool, boot: Bootstrap) -> Verdict:  # fmt: skip
    value = None if run.get("measured") is False else figure.read(run, steady)
    values = [v for v in (figure.read(b, steady) for b in bases) if v is not None]

    def verdict(status: str, message: str, **kw: Any) -> Verdict:
        fields: dict[str, Any] = {"baseline": None, "band": None, "limit": None, "noise": "", "samples": None}
        fields.update(kw)
        return Verdict(
            figure=figure.name, label=figure.label, unit=figure.unit, status=status, value=value,
            higher_is_worse=figure.higher_is_worse, message=message, baseline_values=values, **fields,
        )  # fmt: skip

    if value is None or not values:
        if run.get("measured") is False:
            why = "this run uploaded nothing"
        else:
            why = "the run did not measure it" if value is None else "the baseline did not measure it"
        return verdict("not measured", f"{figure.name}: not measured ({why})")
    base = statistics.median(values)
    limit = allowance(figure, base, max_regression)
    count = _sample_count(figure, [run, *bases]) if figure.quantile is not None else None
    needs = figure.min_samples(clump_of(run))
    if figure.quantile is not None and count is not None and count < needs:
        return verdict(
            "too few samples",
            f"{figure.name}: too few samples to judge ({figure.label} of {count} samples; it needs"
            f" {needs}): run {figure.fmt(value)}, baseline {figure.fmt(base)}",
            baseline=base, limit=limit, samples=count,
        )  # fmt: skip
    # The noise: the spread of several baseline runs, or one run's per-image sampling noise.
    if len(values) >= 2:
        own = boot.se(figure, run, steady)
        band = spread_band(values, Z * own if own else 0.0)
        noise = f"{len(values)} baseline runs"
    elif figure.name == "faces-share":
        half = Z * _faces_noise(run, bases)
        band, noise = (base - half, base + half), "the binomial noise of the shares"
    else:
        ses = (boot.se(figure, run, steady), boot.se(figure, bases[0], steady))
        if ses[0] is not None and ses[1] is not None:
            half = Z * math.hypot(ses[0], ses[1])
            noise = "per-image samples (bootstrap)"
        else:
            half, noise = 0.0, "one run without samples: the allowance alone"
        band = (base - half, base + half)
    edge = band[1] if figure.higher_is_worse else band[0]
    beyond_allowance, beyond_noise = _worse(figure, value, limit), _worse(figure, value, edge)
    op, sign = (">", "+") if figure.higher_is_worse else ("<", "-")
    floor = f" and {figure.fmt(figure.floor)}" if figure.floor else ""
    relative = (
        f"{sign}{max_regression:.0%}{floor}" if figure.relative else f"{sign}{figure.fmt(figure.floor)}"
    )
    said = (
        f"{figure.label} {figure.fmt(value)} {op} allowed {figure.fmt(limit)}"
        f" (baseline {figure.fmt(base)}, {relative})"
    )
    band_text = f"noise band {figure.fmt(band[0])}..{figure.fmt(band[1])} from {noise}"
    common = {"baseline": base, "band": band, "limit": limit, "noise": noise, "samples": count}
    if beyond_allowance and beyond_noise:
        return verdict("regression", f"regression-{figure.name}: {said}, beyond the {band_text}", **common)
    if beyond_allowance:
        return verdict("ok", f"{figure.name}: ok: {said}, but within the {band_text}", **common)
    return verdict(
        "ok",
        f"{figure.name}: ok: {figure.label} {figure.fmt(value)}, baseline {figure.fmt(base)} (allowed"
        f" {figure.fmt(limit)}; {band_text})",
        **common,
    )
