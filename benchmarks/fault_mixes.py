"""Seed the stand-in under each fault mix and print what its own records say.

    .venv/bin/python benchmarks/fault_mixes.py [--images data/yale_png.zip] [--users 5]

For each mix: a fresh stand-in (seeded faults), one headless kanta-seed run against it, then the
stand-in's SQLite and blob files are read: images stored, extra copies (by content, against the data
set), and the run's own summary (exit code, verified, attempts, retries, repairs, named possible
duplicates, wall time). It reports; it asserts nothing. Load goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
MIXES = {
    "none": [],
    "20% 5xx + 5% resets": ["--error-rate", "0.2", "--reset-before-rate", "0.05"],
    "10% 429 (Retry-After 0.3 s)": ["--throttle-rate", "0.1", "--retry-after", "0.3"],
    "5% silent loss after 202": ["--loss-rate", "0.05"],
    "3 s slow visibility": ["--visible-after", "3"],
    "5% stored, then reset": ["--reset-after-rate", "0.05"],
    "all together": [
        "--error-rate", "0.15", "--throttle-rate", "0.05", "--retry-after", "0.3",
        "--reset-before-rate", "0.03",
        "--reset-after-rate", "0.03", "--loss-rate", "0.05", "--latency-ms", "5", "--visible-after", "1",
    ],
}  # fmt: skip
CODE = "fault-mix"


def contents(zip_path: Path) -> Counter:
    with zipfile.ZipFile(zip_path) as zf:
        return Counter(hashlib.sha256(zf.read(n)).hexdigest() for n in zf.namelist() if n.endswith(".png"))


def one_mix(flags: list[str], images: Path, users: int, workdir: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    db = workdir / "kanta.sqlite"
    server = subprocess.Popen(
        [sys.executable, "-m", "seed.standin", "--port", "0", "--db", str(db), "--fault-seed", "7", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        url = re.search(r"(http://\S+)", server.stdout.readline()).group(1)
        summary = workdir / "s.json"
        t0 = time.monotonic()
        run = subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(PROJECT / "locustfile.py"), "--headless",
             "--only-summary",
             "-u", str(users), "-r", str(users), "-H", url, "--images", str(images), "--event-code", CODE,
             "--summary-json", str(summary), "--ledger", str(workdir / "ledger.jsonl")],
            cwd=workdir, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        wall = time.monotonic() - t0
        time.sleep(1.5)  # let the stand-in's delayed stores land before counting
        with sqlite3.connect(db) as con:
            paths = [p for (p,) in con.execute("SELECT blob_path FROM images WHERE event_code = ?", (CODE,))]
        stored = Counter(hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
    expected = contents(images)
    s = json.loads(summary.read_text()) if summary.exists() else {}
    return {
        "exit": run.returncode,
        "stored": sum(stored.values()),
        "missing": sum((expected - stored).values()),
        "extra copies": sum((stored - expected).values()),
        "named possible duplicates": len(s.get("possible_duplicates", [])),
        "verified": s.get("verified"),
        "attempts": s.get("attempts"),
        "retries": s.get("retries"),
        "repairs": s.get("repaired"),
        "wall s": round(wall, 1),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = PROJECT / "data" / "yale_png.zip"
    p.add_argument(
        "--images",
        type=Path,
        default=default if default.exists() else PROJECT.parent / "shared" / "yale_png.zip",
    )
    p.add_argument("--users", type=int, default=5)
    args = p.parse_args()
    rows = []
    for name, flags in MIXES.items():
        with tempfile.TemporaryDirectory(prefix="kanta-faults-") as tmp:
            print(f"  {name} ...", flush=True)
            rows.append({"mix": name, **one_mix(flags, args.images.resolve(), args.users, Path(tmp))})
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
