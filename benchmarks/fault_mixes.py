"""Seed the stand-in under each fault mix and put what it stored beside what the run's summary says.

    .venv/bin/python benchmarks/fault_mixes.py [--users 5] [--only none,loss] [--json out.json]

For each mix (MIXES: the stand-in's own flags, seeded so a mix is repeatable): a fresh stand-in with
its default, stock Kanta pipeline, one headless kanta-seed run against it, then the stand-in's records
once its pipeline is idle: images stored, copies missing and extra by content against the zip (exactly
once: both should be 0), what it dropped; beside the summary: exit code, verified, attempts, retries,
repaired, adopted, removed, named possible duplicates, wall time. Benchmarks report; they do not
assert. Load goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import harness
from harness import cell

CODE = "fault-mix"
RUN_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Mix:
    key: str
    name: str
    flags: tuple[str, ...]


MIXES = [
    Mix("none", "none", ()),
    Mix("5xx-resets", "20% 5xx + 5% resets", ("--error-rate", "0.2", "--reset-before-rate", "0.05")),
    Mix("429", "10% 429 (Retry-After 0.3 s)", ("--throttle-rate", "0.1", "--retry-after", "0.3")),
    Mix("loss", "5% silent loss after 202", ("--loss-rate", "0.05")),
    Mix("slow", "3 s slow visibility", ("--visible-after", "3")),
    Mix("stored-reset", "5% stored, then reset", ("--reset-after-rate", "0.05")),
    Mix(
        "all",
        "all together",
        (
            "--error-rate", "0.15", "--throttle-rate", "0.05", "--retry-after", "0.3",
            "--reset-before-rate", "0.03", "--reset-after-rate", "0.03", "--loss-rate", "0.05",
            "--latency-ms", "5", "--visible-after", "1",
        ),
    ),
]  # fmt: skip
FAULT_SEED = ("--fault-seed", "7")
COLUMNS = [
    "mix", "exit", "srv stored", "missing", "extra copies", "srv dropped", "verified", "attempts",
    "retries", "repaired", "adopted", "removed", "possible dups", "wall s",
]  # fmt: skip


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=5)
    p.add_argument("--only", default="", help=f"comma-separated subset of: {','.join(m.key for m in MIXES)}")
    harness.add_output_args(p, RUN_TIMEOUT_S)
    args = p.parse_args(argv)
    harness.check_images(p, args)
    only = [k.strip() for k in args.only.split(",") if k.strip()] or [m.key for m in MIXES]
    expected = harness.zip_contents(args.images)
    figures = []
    with tempfile.TemporaryDirectory(prefix="kanta-faults-") as tmp:
        for mix in (m for m in MIXES if m.key in only):
            print(f"  {mix.name} ...", flush=True)
            run = harness.seed_standin(
                Path(tmp) / mix.key, [*mix.flags, *FAULT_SEED], args.images, args.users, [], CODE,
                args.run_timeout,
            )  # fmt: skip
            s = run.summary
            missing, extra = run.copy_errors(expected, 1)
            figures.append({
                "key": mix.key, "mix": mix.name, "flags": list(mix.flags), "exit": run.child.rc,
                "stored": sum(run.stored.values()), "missing": missing, "extra_copies": extra,
                "standin_dropped": run.stats.get("dropped"), "verified": s.get("verified"),
                "attempts": s.get("attempts"), "retries": s.get("retries"), "repaired": s.get("repaired"),
                "adopted": len(s.get("adopted") or []), "removed": s.get("removed"),
                "possible_duplicates": len(s.get("possible_duplicates") or []), "wall_s": s.get("wall_s"),
            })  # fmt: skip
    keys = ["mix", "exit", "stored", "missing", "extra_copies", "standin_dropped", "verified", "attempts"]
    keys += ["retries", "repaired", "adopted", "removed", "possible_duplicates", "wall_s"]
    table = [[cell(f[k], 1) for k in keys] for f in figures]
    print("\n" + harness.text_table(COLUMNS, table))
    md = "# kanta-seed under fault mixes (stand-in)\n\n" + harness.markdown_table(COLUMNS, table) + "\n"
    harness.write_outputs(args, {"users": args.users, "rows": figures}, md)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
