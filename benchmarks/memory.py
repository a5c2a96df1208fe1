"""Peak memory of a seeding run against the data set's size: is it flat?

For each size (default 0.15, 1.5 and 5 GB) it writes a folder of photo-sized JPEGs (about 3 MB each:
random noise, which JPEG cannot shrink, each made distinct by a comment segment) under /tmp, seeds it
with real ``locust --headless --standin --standin-faults=--instant`` runs, in one process, as a
master with 2 workers that read the folder themselves (``--processes 2``), and as a master with 2
workers started in an empty folder (the master streams them the bytes), and prints each process's peak
RSS against the target (300 MB). The folders are deleted afterwards unless --keep.

The peak RSS of each process is its VmHWM, read from /proc every 0.1 s while it runs (the stand-in,
a child of the run, is left out: it is the server); the summary's ``peak_rss_mb`` (the largest
ru_maxrss any process reported, which also sees the last moments) is shown beside it. The folders are
written by a child process: a process started from this one inherits its high-water mark, and this
one stays small. It reports; it asserts nothing.

    .venv/bin/python benchmarks/memory.py                       # 0.15, 1.5 and 5 GB
    .venv/bin/python benchmarks/memory.py --sizes 0.15 1.5 --json memory.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's seed/
from seed.standin.launcher import free_port

PROJECT = Path(__file__).resolve().parent.parent
LOCUSTFILE = PROJECT / "locustfile.py"
TARGET_MB = 300.0
PHOTO_SIZE = (2100, 1600)  # random noise at quality 90: about 3 MB a photo
BASES = 16  # distinct noise photos; every file is one of them with a comment of its own
POLL_S = 0.1
MODES = {"one": (), "workers": ("--processes", "2"), "streamed": ()}


# --- the folders ---------------------------------------------------------------------------------------
def noise_jpeg(rng: random.Random, size: tuple[int, int]) -> bytes:
    im = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90)
    return out.getvalue()


def with_comment(jpeg: bytes, text: str) -> bytes:
    """The same JPEG with a COM segment after its SOI: other bytes, the same picture."""
    body = text.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(body) + 2).to_bytes(2, "big") + body + jpeg[2:]


def make_folder(folder: Path, total_bytes: int, seed: int = 0) -> tuple[int, int]:
    """Photos until the folder holds total_bytes; returns (photos, bytes)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    bases = []
    for _ in range(BASES):
        scale = rng.uniform(0.85, 1.15)  # sizes vary, as a phone's photos do
        bases.append(noise_jpeg(rng, (int(PHOTO_SIZE[0] * scale), int(PHOTO_SIZE[1] * scale))))
    n = written = 0
    while written < total_bytes:
        data = with_comment(bases[n % BASES], f"kanta-seed memory benchmark photo {n}")
        (folder / f"photo-{n:05d}.jpg").write_bytes(data)
        n, written = n + 1, written + len(data)
    return n, written


# --- a run and its processes' memory -----------------------------------------------------------------
@dataclass
class Row:
    size_gb: float
    photos: int
    data_mb: float
    mode: str
    exit_code: int = -1
    wall_s: float = 0.0
    uploaded: int = 0
    peak_mb: dict[str, float] = field(default_factory=dict)  # process -> VmHWM
    summary_peak_rss_mb: float | None = None
    note: str = ""

    @property
    def worst_mb(self) -> float:
        return max([*self.peak_mb.values(), self.summary_peak_rss_mb or 0.0])

    @property
    def meets(self) -> bool:
        return bool(self.peak_mb) and self.worst_mb <= TARGET_MB and self.exit_code == 0


def children_of() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree(root: int) -> list[int]:
    kids, out, todo = children_of(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def hwm_mb(pid: int) -> tuple[str, float] | None:
    """(what the process is, its peak RSS in MB), or None when it is gone or not ours to count."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    if "seed.standin" in cmdline or "locust" not in cmdline:
        return None  # the stand-in (the server) and helpers are not the client
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return cmdline, int(line.split()[1]) / 1024
    return None


def seed(folder: Path, mode: str, users: int, workdir: Path, timeout_s: float, row: Row) -> None:
    """One run; its processes' peaks into row. Modes: one (one process), workers (``--processes 2``:
    forked workers that find the folder and read it themselves), streamed (a master and 2 workers
    started in an empty folder: no copy there, so the master sends them the bytes)."""
    tag = f"{row.size_gb:g}gb-{mode}"
    summary = workdir / f"summary-{tag}.json"
    run = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "--standin", "--standin-faults=--instant", "-u", str(users), "-r", str(users),
        "--summary-json", str(summary),
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT),
        "PYTHONUNBUFFERED": "1",
        "XDG_CACHE_HOME": str(workdir / "cache"),
    }
    if mode == "streamed":
        port = str(free_port())
        empty = workdir / f"empty-{tag}"
        empty.mkdir()
        relative = os.path.relpath(folder, workdir)  # found from the master's folder, not the workers'
        master = [*run, "--images", relative, "--master", "--expect-workers", "2", "--master-bind-host",
                  "127.0.0.1", "--master-bind-port", port]  # fmt: skip
        worker = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host",
                  "127.0.0.1", "--master-port", port]  # fmt: skip
        commands = [("master", master, workdir), ("worker 1", worker, empty), ("worker 2", worker, empty)]
    else:
        main_name = "process" if mode == "one" else "master"
        commands = [(main_name, [*run, "--images", str(folder), *MODES[mode]], workdir)]
    start = time.monotonic()
    procs: list[tuple[str, subprocess.Popen, Path]] = []
    for name, cmd, cwd in commands:
        log = workdir / f"run-{tag}-{name.replace(' ', '')}.log"
        with log.open("w") as out:
            procs.append((name, subprocess.Popen(
                cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            ), log))  # fmt: skip
    peaks: dict[tuple[str, int], float] = {}  # (who started it, pid) -> VmHWM
    while any(proc.poll() is None for _, proc, _ in procs):
        for name, proc, _ in procs:
            for pid in tree(proc.pid):
                seen = hwm_mb(pid)
                if seen is not None:
                    peaks[name, pid] = max(peaks.get((name, pid), 0.0), seen[1])
        if time.monotonic() - start > timeout_s:
            for _, proc, _ in procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            row.note = f"killed after {timeout_s:.0f} s"
            break
        time.sleep(POLL_S)
    main, main_proc, main_log = procs[0]
    row.exit_code, row.wall_s = main_proc.returncode, round(time.monotonic() - start, 1)
    row.peak_mb = {main: round(peaks.get((main, main_proc.pid), 0.0), 1)}
    forked = sorted(pid for name, pid in peaks if name == main and pid != main_proc.pid)
    row.peak_mb.update({f"worker {n + 1}": round(peaks[main, pid], 1) for n, pid in enumerate(forked)})
    for name, proc, _ in procs[1:]:
        row.peak_mb[name] = round(peaks.get((name, proc.pid), 0.0), 1)
    try:
        s = json.loads(summary.read_text())
        row.uploaded = int(s.get("uploaded", 0))
        row.summary_peak_rss_mb = s.get("peak_rss_mb")
    except (OSError, ValueError):
        row.note = row.note or "no summary: " + tail(main_log)
    if row.exit_code != 0 and not row.note:
        row.note = tail(main_log)


def tail(log: Path) -> str:
    return " | ".join(log.read_text(errors="replace").splitlines()[-3:])


# --- the table -------------------------------------------------------------------------------------------
def table(rows: list[Row]) -> str:
    out = [
        f"| data set | photos | mode | exit | wall s | uploaded | peak RSS (VmHWM, MB) | summary peak_rss_mb"
        f" | <= {TARGET_MB:.0f} MB |",
        "| --- | ---: | --- | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for r in rows:
        peaks = ", ".join(f"{k} {v:.0f}" for k, v in r.peak_mb.items()) or "-"
        verdict = "yes" if r.meets else ("no" if r.peak_mb else "-")
        note = f" ({r.note})" if r.note else ""
        summary = f"{r.summary_peak_rss_mb:.0f}" if r.summary_peak_rss_mb is not None else "-"
        out.append(
            f"| {r.size_gb:g} GB ({r.data_mb:.0f} MB) | {r.photos} | {r.mode} | {r.exit_code}{note} |"
            f" {r.wall_s:.0f} | {r.uploaded} | {peaks} | {summary} | {verdict} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=float, nargs="+", default=[0.15, 1.5, 5.0], metavar="GB")
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    p.add_argument("-u", "--users", type=int, default=8, help="Locust users per run (default 8)")
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()), help="where the folders go")
    p.add_argument("--keep", action="store_true", help="keep the folders (and the runs' logs)")
    p.add_argument("--run-timeout", type=float, default=3600.0, metavar="S")
    p.add_argument("--json", type=Path, help="write the rows here too")
    p.add_argument("--make-folder", nargs=2, metavar=("FOLDER", "BYTES"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.make_folder:  # the child that writes a folder
        print(*make_folder(Path(args.make_folder[0]), int(args.make_folder[1])))
        return 0
    work = Path(tempfile.mkdtemp(prefix="kanta-seed-memory-", dir=args.workdir))
    rows: list[Row] = []
    try:
        for size in args.sizes:
            want = int(size * 1e9)
            free = shutil.disk_usage(work).free
            if free < 2 * want + 2 * 1024**3:  # the folder, the stand-in's copy of it, and room to spare
                need = 2 * want / 1e9 + 2
                print(f"skipping {size:g} GB: {free / 1e9:.1f} GB free in {work}, {need:.1f} GB needed")
                continue
            folder = work / f"photos-{size:g}gb"
            t0 = time.monotonic()
            made = subprocess.run(
                [sys.executable, __file__, "--make-folder", str(folder), str(want)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            photos, written = map(int, made.stdout.split())
            print(
                f"{size:g} GB: {photos} photos, {written / 1e6:.0f} MB in {time.monotonic() - t0:.0f} s",
                flush=True,
            )
            for mode in args.modes:
                row = Row(size, photos, round(written / 1e6, 1), mode)
                seed(folder, mode, args.users, work, args.run_timeout, row)
                rows.append(row)
                print(
                    f"  {mode}: exit {row.exit_code}, {row.wall_s:.0f} s, uploaded {row.uploaded},"
                    f" peak {row.peak_mb} MB {row.note}",
                    flush=True,
                )
            if not args.keep:
                shutil.rmtree(folder)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept in {work}")
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(
            json.dumps([{**asdict(r), "meets_target": r.meets} for r in rows], indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
