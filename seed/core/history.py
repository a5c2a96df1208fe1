"""A history of runs: one JSON file per run in a folder (``--history DIR``), and the trend of the
headline figures over them.

Each file is the run's summary as ``--summary-json`` writes it, plus one key ``history`` with what
the run was: its commit, host kind, data set, users, mode, processes, loops and when it ran. A file is
therefore itself a summary: it can be given to ``--baseline`` as it is, and a history folder can be
given to ``--baseline`` whole (``gate.load_baselines``).

File names sort by time (``20260612T103015.123456Z-<commit>.json``, UTC), so ``load`` reads them in
the order they ran without opening them; a second run in the same microsecond is named a microsecond
later (never overwritten).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from seed.core.figures import percentile

KEY = "history"  # the key of the run's metadata in an entry
SUFFIX = ".json"
COMMIT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Headline:
    """A figure the trend shows: its name, unit, and whether higher is worse."""

    name: str
    label: str
    unit: str
    higher_is_worse: bool


# The headline figures, in the order the report shows them; names as gate.FIGURES names them.
HEADLINES: tuple[Headline, ...] = (
    Headline("processed-s", "processed (last image)", "s", True),
    Headline("processed-rate", "processed rate (steady)", "images/s", False),
    Headline("rate", "upload rate", "uploads/s", False),
    Headline("p50-ms", "latency p50", "ms", True),
    Headline("p95-ms", "latency p95", "ms", True),
    Headline("p99-ms", "latency p99", "ms", True),
    Headline("faces-share", "share of images with a face", "", False),
)
HEADLINE_BY_NAME = {h.name: h for h in HEADLINES}


def mapping(value: Any) -> Mapping[str, Any]:
    """A nested object of a summary, or an empty one when it is missing or not an object."""
    return value if isinstance(value, Mapping) else {}


def listing(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


class HistoryError(ValueError):
    """The history folder cannot be written or read; the message says which and why."""


# --- what a run was -------------------------------------------------------------------------------------
def commit(cwd: str | Path | None = None) -> str:
    """The commit being measured: ``git rev-parse HEAD`` where the run started, else $GITHUB_SHA, else ""."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=None if cwd is None else str(cwd),
            capture_output=True,
            text=True,
            timeout=COMMIT_TIMEOUT_S,
            check=False,
        )
        head = done.stdout.strip()
        if done.returncode == 0 and len(head) >= 7 and all(c in "0123456789abcdef" for c in head):
            return head
    except (OSError, subprocess.SubprocessError):
        pass
    return os.environ.get("GITHUB_SHA", "").strip()


def meta_of(
    summary: Mapping[str, Any], meta: Mapping[str, Any] | None = None, now: float | None = None
) -> dict:
    """The metadata of one run: what the caller says (``meta``) wins over what the summary says."""
    stamp = time.time() if now is None else now
    out: dict[str, Any] = {
        "commit": None,  # filled below only when the caller did not say
        "host_kind": summary.get("host_kind", ""),
        "host": summary.get("host", ""),
        "data_set": PurePath(str(summary.get("data_set", ""))).name,
        "images": summary.get("images"),
        "users": summary.get("users"),
        "processes": summary.get("processes", 1),
        "loops": summary.get("loops", 1),
        "mode": summary.get("mode", "seed"),
        "result": summary.get("result", ""),
        "exit_code": summary.get("exit_code"),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{int(stamp % 1 * 1e6):06d}Z",
        "unix_time": round(stamp, 6),
    }
    out.update({k: v for k, v in (meta or {}).items()})
    if out.get("commit") is None:
        out["commit"] = commit()
    return out


def file_name(meta: Mapping[str, Any], later_us: int = 0) -> str:
    """``20260612T103015.123456Z-1a2b3c4d5e6f``: sorts by time; the commit is only a hint. ``later_us``
    moves the time on by that many microseconds (a second run in the same microsecond sorts after)."""
    stamp = str(meta.get("timestamp", "")).replace("-", "").replace(":", "")
    if later_us and len(stamp) == 23 and stamp[15] == "." and stamp[16:22].isdigit():
        seconds, micro = stamp[:15], int(stamp[16:22]) + later_us
        stamp = f"{seconds}.{micro:06d}Z" if micro < 1_000_000 else f"{seconds}.999999Z-{later_us}"
    short = "".join(c for c in str(meta.get("commit") or "")[:12] if c.isalnum()) or "nocommit"
    return f"{stamp}-{short}"


# --- writing and reading --------------------------------------------------------------------------------
def append(
    directory: str | Path,
    summary: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> Path:
    """Write the run into the history folder (made when missing) as a file of its own; return its path.

    Never overwrites: a second run with the same name gets a numbered one.
    """
    folder = Path(directory)
    if folder.exists() and not folder.is_dir():
        raise HistoryError(f"history {folder} is a file; give a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HistoryError(f"history {folder}: cannot create the folder ({e})") from e
    entry = dict(summary)
    entry[KEY] = meta_of(summary, meta, now)
    text = json.dumps(entry, indent=1) + "\n"
    for n in range(1000):
        path = folder / f"{file_name(entry[KEY], later_us=n)}{SUFFIX}"
        try:
            with path.open("x") as f:  # "x": two runs at once never write one file
                f.write(text)
            return path
        except FileExistsError:
            continue
        except OSError as e:
            raise HistoryError(f"history {folder}: cannot write {path.name} ({e})") from e
    raise HistoryError(f"history {folder}: too many runs at {entry[KEY]['timestamp']}")


def entry_paths(directory: str | Path) -> list[Path]:
    """The entries' files, oldest first (by name, which is by time)."""
    folder = Path(directory)
    if not folder.is_dir():
        raise HistoryError(f"history {folder} is not a folder")
    return sorted(p for p in folder.iterdir() if p.suffix == SUFFIX and p.is_file() and p.name[:1].isdigit())


def load(directory: str | Path, last: int | None = None) -> list[dict[str, Any]]:
    """The entries of the history folder, oldest first; only the ``last`` N when given.

    An entry that cannot be read (a torn write, a stray file) is skipped: a history is evidence, not
    a contract; each entry gets ``history.file`` (where it came from).
    """
    paths = entry_paths(directory)
    entries: list[dict[str, Any]] = []
    for path in reversed(paths):  # newest first, so last=N opens only what it needs
        if last is not None and len(entries) >= last:
            break
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict):
            continue
        meta = mapping(doc.get(KEY))
        doc[KEY] = {**meta, "file": str(path)}
        entries.append(doc)
    entries.reverse()
    return entries


# --- the trend ------------------------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def figure_of(summary: Mapping[str, Any], figure: str) -> float | None:
    """A headline figure of one summary (None when the run did not measure it).

    The upload rate is the steady one when the run has it, else the whole run's (a trend mixes runs
    that had a steady window with runs that had none only when the runs themselves changed).
    """
    if summary.get("measured") is False:
        return None
    pipe = mapping(summary.get("pipeline"))
    lat = mapping(summary.get("latency_ms"))
    if figure == "rate":
        steady = _number(summary.get("steady_rate_per_s"))
        return steady if steady is not None else _number(summary.get("rate_per_s"))
    if figure == "processed-rate":
        return _number(pipe.get("processed_per_s"))
    if figure == "processed-s":
        return _number(pipe.get("processed_s"))
    if figure in ("p50-ms", "p95-ms", "p99-ms"):
        return _number(lat.get(figure.removesuffix("-ms")))
    if figure == "faces-share":
        faces = mapping(summary.get("faces"))
        found, without = _number(faces.get("images_with_faces")), _number(faces.get("images_without"))
        if found is None or without is None or found + without == 0:
            return None
        return found / (found + without)
    raise KeyError(f"unknown figure {figure!r}; one of {', '.join(HEADLINE_BY_NAME)}")


@dataclass(frozen=True)
class Point:
    """One run on a trend line."""

    index: int  # position in the entries given
    value: float | None  # None: that run did not measure it
    timestamp: str
    commit: str
    result: str  # the run's own result (pass, regression, ...)
    regression: bool  # this figure regressed in that run (its summary's regressions name it)
    file: str


def trend(entries: Sequence[Mapping[str, Any]], figure: str) -> list[Point]:
    """One point per entry, in the entries' order, for a headline figure."""
    if figure not in HEADLINE_BY_NAME:
        raise KeyError(f"unknown figure {figure!r}; one of {', '.join(HEADLINE_BY_NAME)}")
    points = []
    for i, entry in enumerate(entries):
        meta = mapping(entry.get(KEY))
        regressions = listing(entry.get("regressions"))
        points.append(
            Point(
                index=i,
                value=figure_of(entry, figure),
                timestamp=str(meta.get("timestamp", "")),
                commit=str(meta.get("commit", "")),
                result=str(entry.get("result", "")),
                regression=any(str(r).startswith(f"regression-{figure}:") for r in regressions),
                file=str(meta.get("file", "")),
            )
        )
    return points


def trends(entries: Sequence[Mapping[str, Any]]) -> dict[str, list[Point]]:
    """Every headline figure's trend, in HEADLINES' order; figures no entry measured are left out."""
    out = {}
    for h in HEADLINES:
        points = trend(entries, h.name)
        if any(p.value is not None for p in points):
            out[h.name] = points
    return out


def typical(points: list[Point]) -> float | None:
    """The median of a trend's values (what the report draws as the line's level)."""
    values = sorted(p.value for p in points if p.value is not None)
    return percentile(values, 50) if values else None
