"""How fast the Yale set becomes usable on the stand-in's stock Kanta pipeline, and what the backlog
bound costs.

    .venv/bin/python benchmarks/pipeline.py               # -u 1, -u 5, -u 20: stage times per row
    .venv/bin/python benchmarks/pipeline.py --quick       # -u 5 only
    .venv/bin/python benchmarks/pipeline.py --backlog     # --loops 3 -u 10, default bound vs --max-backlog 0

Every row is one headless kanta-seed run (-r = -u) on a fresh stand-in (seed.standin_process), read
from the run's summary JSON (schema 2) and from the stand-in's own records: GET /_standin/stats and,
for the copies, the sha256 of the blob files its SQLite `images` table lists, against the zip. Rows
and ratios are data (STAGE_ROWS, BACKLOG_ROWS, BACKLOG_RATIOS); benchmarks/README.md says how to
read them. Benchmarks report; they do not assert.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

import harness
from harness import Ratio, cell

CODE = "bench-pipeline"
RUN_TIMEOUT_S = 300.0
# A stand-in that drops when nothing bounds the backlog: 2 detection workers, a pool of 6 connections
# that a job waits for at most 1.5 s (README: "Kanta drops, kanta-seed repairs").
DROP_PRONE = ("--workers", "2", "--detect-ms", "40", "--db-pool", "6", "--db-pool-timeout", "1.5")


@dataclass(frozen=True)
class Row:
    key: str
    name: str
    users: int
    standin: tuple[str, ...] = ()  # stand-in flags; none: the stock Kanta pipeline
    kanta: tuple[str, ...] = ()  # more kanta-seed options
    copies: int = 1  # copies of each image the event should hold at the end (--loops)


STAGE_ROWS = [Row(f"u{u}", "stock pipeline", u) for u in (1, 5, 20)]
QUICK_KEYS = ("u5",)
LOOPS = ("--loops", "3")
BACKLOG_ROWS = [
    Row("drop-bounded", "drop-prone, --max-backlog 100 (default)", 10, DROP_PRONE, LOOPS, 3),
    Row("drop-unbounded", "drop-prone, --max-backlog 0", 10, DROP_PRONE, (*LOOPS, "--max-backlog", "0"), 3),
    Row("stock-bounded", "stock, --max-backlog 100 (default)", 10, (), LOOPS, 3),
    Row("stock-unbounded", "stock, --max-backlog 0", 10, (), (*LOOPS, "--max-backlog", "0"), 3),
]
BACKLOG_RATIOS = [
    Ratio(f"{kind}-bounded", f"{kind}-unbounded", figure)
    for kind in ("drop", "stock")
    for figure in ("wall_s", "processed_s")
]
FIGURE_LABELS = {"wall_s": "wall time", "processed_s": "processed time"}

STAGE_COLUMNS = [
    "row", "users", "accepted s", "stored s", "processed s", "processed/s", "backlog peak", "202s/s",
    "p50 ms", "wall s", "exit", "srv accepted", "srv stored", "srv processed", "srv dropped", "exact",
]  # fmt: skip
BACKLOG_COLUMNS = [
    "row", "users", "wall s", "processed s", "repaired", "held back s", "srv dropped", "exactly 3x", "exit",
]  # fmt: skip


def figures_of(row: Row, run: harness.SeedRun, expected: Any) -> dict[str, Any]:
    s, pipe = run.summary, run.summary.get("pipeline") or {}
    missing, extra = run.copy_errors(expected, row.copies)
    problem = run.child.problem()
    return {
        "key": row.key,
        "name": row.name,
        "users": row.users,
        "standin_flags": list(row.standin),
        "kanta_args": list(row.kanta),
        "exit_code": run.child.rc,
        "result": s.get("result"),
        **{k: pipe.get(k) for k in ("accepted_s", "stored_s", "processed_s", "processed_per_s")},
        **{k: pipe.get(k) for k in ("backlog_peak", "held_back_s")},
        "rate_per_s": s.get("rate_per_s"),
        "p50_ms": (s.get("latency_ms") or {}).get("p50"),
        "wall_s": s.get("wall_s"),
        "repaired": s.get("repaired"),
        "adopted": len(s.get("adopted") or []),
        "removed": s.get("removed"),
        "standin": {k: run.stats.get(k) for k in ("accepted", "stored", "processed", "dropped")},
        "copies_expected": row.copies,
        "copies_exact": run.copies_exact(expected, row.copies),
        "missing_copies": missing,
        "extra_copies": extra,
        "errors": [f"{row.key}: {problem}"] if problem else [],
    }


def stage_cells(f: dict[str, Any]) -> list[str]:
    srv = f["standin"]
    return [
        f"{f['name']} -u {f['users']}", str(f["users"]),
        *(cell(f[k], 1) for k in ("accepted_s", "stored_s", "processed_s", "processed_per_s")),
        cell(f["backlog_peak"]), cell(f["rate_per_s"], 1), cell(f["p50_ms"], 0), cell(f["wall_s"], 1),
        cell(f["exit_code"]), *(cell(srv[k]) for k in ("accepted", "stored", "processed", "dropped")),
        cell(f["copies_exact"]),
    ]  # fmt: skip


def backlog_cells(f: dict[str, Any]) -> list[str]:
    return [
        f["name"], str(f["users"]), cell(f["wall_s"], 1), cell(f["processed_s"], 1),
        cell(f["repaired"]), cell(f["held_back_s"], 1), cell(f["standin"]["dropped"]),
        cell(f["copies_exact"]), cell(f["exit_code"]),
    ]  # fmt: skip


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="one row: -u 5 (with --backlog: the drop-prone pair)")
    p.add_argument(
        "--backlog", action="store_true", help="the cost of the backlog bound instead of the stage rows"
    )
    harness.add_output_args(p, RUN_TIMEOUT_S)
    args = p.parse_args(argv)
    harness.check_images(p, args)
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.backlog:
        rows, columns, cells = BACKLOG_ROWS, BACKLOG_COLUMNS, backlog_cells
        rows = [r for r in rows if r.key.startswith("drop-")] if args.quick else rows
    else:
        rows, columns, cells = STAGE_ROWS, STAGE_COLUMNS, stage_cells
        rows = [r for r in rows if r.key in QUICK_KEYS] if args.quick else rows
    figures = harness.seed_rows(
        rows, args.images, CODE, args.run_timeout, users=lambda row: row.users,
        label=lambda row: f"{row.name} -u {row.users}", figures_of=figures_of, prefix="kanta-pipeline-",
    )  # fmt: skip
    by_key = {f["key"]: f for f in figures}
    labels = {r.key: r.name for r in rows}
    found = [
        r.evaluate(by_key, labels, FIGURE_LABELS)
        for r in (BACKLOG_RATIOS if args.backlog else [])
        if r.numerator in by_key and r.denominator in by_key
    ]
    table = [cells(f) for f in figures]
    lines = [harness.ratio_line(r) for r in found]
    errors = [e for f in figures for e in f["errors"]]
    print("\n" + harness.text_table(columns, table))
    print("".join(f"\n{x}" for x in [*lines, *(f"error: {e}" for e in errors)]))
    title = "backlog bound" if args.backlog else "stage times"
    md = "\n".join([f"# kanta-seed on the stand-in: {title}", "", harness.markdown_table(columns, table), ""])
    md += "".join(f"- {x}\n" for x in [*lines, *errors])
    harness.write_outputs(args, {"part": title, "rows": figures, "ratios": found}, md)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
