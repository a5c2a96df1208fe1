"""Kanta's own figures at any size: what the read-back and the backlog bound cost as the event grows.

    .venv/bin/python benchmarks/scale.py                      # 165 and 1,650 images, instant and stock
    .venv/bin/python benchmarks/scale.py --sizes 165,1650,16500
    .venv/bin/python benchmarks/scale.py --drop-prone         # also: the bound still prevents drops

Each row is one headless kanta-seed run (-u 10 -r 10, the Yale set --loops N into one event) on a fresh
stand-in, read from the run's summary JSON and from the stand-in's own records (GET /_standin/stats):

- wall: the run, start to end;
- rows/image: rows the stand-in listed (all GET /pics answers) per image of the run;
- read-back share: the stand-in's event-loop time spent on lists, over the run's wall;
- CPU/upload and peak memory of the client (the summary's own figures);
- bound/unbounded: the wall of the default --max-backlog against --max-backlog 0, side by side in one
  run of this script (the instant stand-in keeps up: the bound should cost nothing there).

Targets (issue "Kanta's own figures at any size"): rows/image <= 5 at 1,650; read-back share <= 3%;
the default bound <= 1.10x the unbounded wall where the server keeps up; no drop on the drop-prone
stand-in with the default bound. Benchmarks report; they do not assert.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

import harness
from harness import cell

CODE = "bench-scale"
YALE = 165
DROP_PRONE = ("--workers", "2", "--detect-ms", "40", "--db-pool", "6", "--db-pool-timeout", "1.5")
STANDINS = {"instant": ("--instant",), "stock": ()}
COLUMNS = [
    "row", "images", "wall s", "rows/image", "read-back share", "lists", "CPU ms/upload", "peak MB",
    "held back s", "srv dropped", "exact", "exit",
]  # fmt: skip


@dataclass(frozen=True)
class Row:
    key: str
    name: str
    images: int
    standin: tuple[str, ...]
    kanta: tuple[str, ...] = ()


def rows_for(sizes: list[int], drop_prone: bool) -> list[Row]:
    rows = []
    for size in sizes:
        loops = ("--loops", str(max(1, size // YALE)))
        for name, flags in STANDINS.items():
            rows.append(Row(f"{name}-{size}", f"{name}, default bound", size, flags, loops))
            if name == "instant":
                rows.append(
                    Row(f"{name}-{size}-unbounded", f"{name}, --max-backlog 0", size, flags,
                        (*loops, "--max-backlog", "0"))
                )  # fmt: skip
    if drop_prone:
        loops = ("--loops", "3")
        rows.append(Row("drop-495", "drop-prone, default bound", 495, DROP_PRONE, loops))
        rows.append(Row("drop-495-unbounded", "drop-prone, --max-backlog 0", 495, DROP_PRONE,
                        (*loops, "--max-backlog", "0")))  # fmt: skip
    return rows


def figures_of(row: Row, run: harness.SeedRun, expected: Any) -> dict[str, Any]:
    s, stats = run.summary, run.stats
    wall = s.get("wall_s") or 0.0
    copies = max(1, row.images // YALE)
    cpu = s.get("cpu_s_per_1000_uploads")
    return {
        "key": row.key,
        "name": row.name,
        "images": row.images,
        "exit_code": run.child.rc,
        "wall_s": wall,
        "rows_per_image": round((stats.get("rows_listed") or 0) / row.images, 2),
        "readback_share": round((stats.get("list_loop_ms") or 0) / 1000 / wall, 4) if wall else None,
        "lists": stats.get("list_requests"),
        "cpu_ms_per_upload": cpu,  # CPU s per 1000 uploads = ms per upload
        "peak_rss_mb": s.get("peak_rss_mb"),
        "held_back_s": (s.get("pipeline") or {}).get("held_back_s"),
        "dropped": stats.get("dropped"),
        "copies_exact": run.copies_exact(expected, copies),
        "readback": s.get("readback"),
        "errors": [f"{row.key}: {p}"] if (p := run.child.problem()) else [],
    }


def cells(f: dict[str, Any]) -> list[str]:
    share = f["readback_share"]
    return [
        f["name"], str(f["images"]), cell(f["wall_s"], 1), cell(f["rows_per_image"], 2),
        "-" if share is None else f"{share:.1%}", cell(f["lists"]), cell(f["cpu_ms_per_upload"], 2),
        cell(f["peak_rss_mb"], 0), cell(f["held_back_s"], 1), cell(f["dropped"]), cell(f["copies_exact"]),
        cell(f["exit_code"]),
    ]  # fmt: skip


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="165,1650", help="images per run, multiples of 165 (default 165,1650)")
    p.add_argument("--drop-prone", action="store_true", help="also the drop-prone stand-in, bound vs not")
    harness.add_output_args(p, 1800.0)
    args = p.parse_args(argv)
    harness.check_images(p, args)
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    rows = rows_for(sizes, args.drop_prone)
    figures = harness.seed_rows(
        rows, args.images, CODE, args.run_timeout, users=lambda row: 10,
        label=lambda row: f"{row.name}, {row.images} images", figures_of=figures_of, prefix="kanta-scale-",
    )  # fmt: skip
    by_key = {f["key"]: f for f in figures}
    lines = []
    for f in figures:
        other = by_key.get(f["key"] + "-unbounded")
        if other and other["wall_s"]:
            ratio = f["wall_s"] / other["wall_s"]
            lines.append(
                f"{f['name']} at {f['images']} images: wall {ratio:.2f}x the unbounded"
                f" ({f['wall_s']:.1f} s against {other['wall_s']:.1f} s)"
            )
    table = [cells(f) for f in figures]
    errors = [e for f in figures for e in f["errors"]]
    print("\n" + harness.text_table(COLUMNS, table))
    print("".join(f"\n{x}" for x in [*lines, *(f"error: {e}" for e in errors)]))
    md = "\n".join(["# kanta-seed on the stand-in: scale", "", harness.markdown_table(COLUMNS, table), ""])
    md += "".join(f"- {x}\n" for x in [*lines, *errors])
    harness.write_outputs(args, {"part": "scale", "rows": figures}, md)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
