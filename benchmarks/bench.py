"""Client-side cost of kanta-seed per upload, beside the ceilings it could reach and the old script.

    .venv/bin/python benchmarks/bench.py               # 10 passes over the Yale set (1650 uploads) each
    .venv/bin/python benchmarks/bench.py --quick       # 2 passes
    .venv/bin/python benchmarks/bench.py --only kanta,minimal --markdown bench.md

The server is nginx on 127.0.0.1 answering 202 from its config (nginx.conf.template), so what
differs between the rows is the client. Every client is a file of its own run as a child process;
its CPU is the child's whole CPU (getrusage RUSAGE_CHILDREN around it) and, measured inside it, the
CPU of its run alone (probe.py for the Locust rows). Rows and ratios are data (ROWS, RATIOS); see
benchmarks/README.md for what each row is. Benchmarks report; they do not assert.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
from bodies import png_members
from harness import HERE, PROJECT, Ratio, cell

EVENT_CODE = "bench-null"
SPAWN_RATE = 100
RUN_TIMEOUT_S = 300.0
NGINX_TEMPLATE = HERE / "nginx.conf.template"


# --- rows and ratios, as data -----------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One client at one concurrency. client: which file runs (CLIENTS); group: what --only picks."""

    key: str
    name: str
    users: int
    client: str
    group: str
    args: tuple[str, ...] = ()  # more arguments for the client
    passes: int | None = None  # passes over the data set instead of --passes (the memory rows)


ROWS = [
    Row("kanta-5", "kanta-seed", 5, "kanta", "kanta"),
    Row("kanta-50", "kanta-seed", 50, "kanta", "kanta"),
    Row("minimal-5", "minimal FastHttpUser", 5, "minimal", "minimal", ("MinimalFastUser",)),
    Row("minimal-50", "minimal FastHttpUser", 50, "minimal", "minimal", ("MinimalFastUser",)),
    Row("httpuser-5", "minimal HttpUser", 5, "minimal", "httpuser", ("MinimalHttpUser",)),
    Row("bare-5", "bare geventhttpclient loop", 5, "bare", "bare"),
    Row("old-5", "old script (asyncio + httpx)", 5, "old", "old"),
    *(
        Row(
            f"processes-{n}", f"kanta-seed --processes {n}", 20, "kanta", "processes", ("--processes", str(n))
        )
        for n in (1, 2, 4)
    ),
    *(Row(f"loops-{n}", f"kanta-seed --loops {n}", 5, "kanta", "memory", passes=n) for n in (5, 50)),
]
GROUPS = tuple(dict.fromkeys(r.group for r in ROWS))

RATIOS = [
    *(
        Ratio(f"kanta-{u}", f"minimal-{u}", figure, at_most=1.3)
        for u in (5, 50)
        for figure in ("cpu_ms_per_upload", "loop_cpu_ms_per_upload")
    ),
    Ratio("kanta-5", "old-5", "uploads_per_s", at_least=8),
    Ratio("old-5", "kanta-5", "cpu_ms_per_upload"),
    Ratio("httpuser-5", "old-5", "uploads_per_s"),
    Ratio("httpuser-5", "old-5", "loop_cpu_ms_per_upload"),
    Ratio("httpuser-5", "minimal-5", "loop_cpu_ms_per_upload"),
    Ratio(
        "processes-2", "processes-1", "uploads_per_s", at_least=1.6, note="where the client is the bottleneck"
    ),
    Ratio("processes-4", "processes-1", "uploads_per_s"),
    Ratio("loops-50", "loops-5", "peak_rss_mb", note="target: flat"),
    Ratio("minimal-5", "bare-5", "cpu_ms_per_upload"),
    Ratio("minimal-5", "bare-5", "loop_cpu_ms_per_upload"),
]
FIGURE_LABELS = {
    "cpu_ms_per_upload": "CPU per upload, whole process",
    "loop_cpu_ms_per_upload": "CPU per upload, run only",
    "uploads_per_s": "uploads/s",
    "peak_rss_mb": "peak memory",
}


# --- the clients: one file each -----------------------------------------------------------------------
@dataclass
class Context:
    host: str
    images: Path
    per_pass: int
    passes: int
    workdir: Path
    timeout: float


def kanta_argv(ctx: Context, row: Row, out: Path, passes: int) -> list[str]:
    """kanta-seed's own locustfile with the probe. The null server lists nothing: no read-back
    (--no-verify) and no backlog bound (--max-backlog 0: nothing would ever leave the backlog);
    --fresh and a ledger in the temp dir: each run uploads everything, nothing written elsewhere."""
    return harness.kanta_cmd(
        ctx.host, ctx.images, row.users, SPAWN_RATE, "--event-code", EVENT_CODE, "--loops", str(passes),
        "--no-verify", "--max-backlog", "0", "--fresh", "--ledger", str(out.with_suffix(".ledger.jsonl")),
        "--summary-json", str(out), *row.args, probe=True,
    )  # fmt: skip


def minimal_argv(ctx: Context, row: Row, out: Path, passes: int) -> list[str]:
    return [
        sys.executable, "-m", "locust", "-f", f"{HERE / 'minimal_locustfile.py'},{harness.PROBE}",
        "--headless", "--only-summary", "-u", str(row.users), "-r", str(SPAWN_RATE), "-H", ctx.host,
        "--images", str(ctx.images), "--uploads", str(ctx.per_pass * passes), "--result-json", str(out),
        *row.args,
    ]  # fmt: skip


def bare_argv(ctx: Context, row: Row, out: Path, passes: int) -> list[str]:
    return [
        sys.executable, str(HERE / "bare_loop.py"), "--host", ctx.host, "--images", str(ctx.images),
        "--uploads", str(ctx.per_pass * passes), "--users", str(row.users), "--event-code", EVENT_CODE,
        "--result-json", str(out),
    ]  # fmt: skip


def old_argv(ctx: Context, row: Row, out: Path, passes: int) -> list[str]:
    return [
        sys.executable, str(HERE / "old_script.py"), "--api-url", ctx.host, "--images", str(ctx.images),
        "--uploads", str(ctx.per_pass * passes), "--batch-size", str(row.users), "--delay", "0",
        "--event-code", EVENT_CODE, "--result-json", str(out),
    ]  # fmt: skip


CLIENTS = {"kanta": kanta_argv, "minimal": minimal_argv, "bare": bare_argv, "old": old_argv}


# --- one row ---------------------------------------------------------------------------------------------
@dataclass
class Measure:
    row: Row
    uploads: int = 0
    failed: int = 0
    wall_s: float = 0.0  # kanta-seed's wall_s; Locust's test_start..test_stop; the scripts' loop
    active_s: float = 0.0  # first upload sent .. last answered: uploads/s is uploads over this
    process_s: float = 0.0  # the child process from start to exit
    cpu_s: float = 0.0  # the whole child process (getrusage)
    loop_cpu_s: float | None = None  # the run or loop only, measured inside the child
    peak_rss_mb: float | None = None  # kanta-seed's own figure (its largest process)
    errors: list[str] = field(default_factory=list)

    def per_upload_ms(self, seconds: float | None) -> float | None:
        return None if seconds is None or not self.uploads else seconds * 1000 / self.uploads

    def figures(self) -> dict[str, Any]:
        return {
            "key": self.row.key,
            "name": self.row.name,
            "users": self.row.users,
            "uploads": self.uploads,
            "failed": self.failed,
            "wall_s": round(self.wall_s, 3),
            "active_s": round(self.active_s, 3),
            "process_s": round(self.process_s, 3),
            "uploads_per_s": round(self.uploads / self.active_s, 1) if self.active_s > 0 else None,
            "cpu_ms_per_upload": _round(self.per_upload_ms(self.cpu_s)),
            "loop_cpu_ms_per_upload": _round(self.per_upload_ms(self.loop_cpu_s)),
            "cpu_outside_run_s": None if self.loop_cpu_s is None else round(self.cpu_s - self.loop_cpu_s, 2),
            "peak_rss_mb": self.peak_rss_mb,
            "errors": self.errors,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def measure(ctx: Context, row: Row) -> Measure:
    m = Measure(row)
    passes = row.passes or ctx.passes
    out, probes = ctx.workdir / f"{row.key}.json", ctx.workdir / f"{row.key}.probes"
    probes.mkdir()
    env = harness.child_env(ctx.workdir / "cache", BENCH_PROBE_DIR=str(probes))
    child = harness.run_child(
        CLIENTS[row.client](ctx, row, out, passes), ctx.workdir / f"{row.key}.log", ctx.timeout, env, PROJECT
    )
    m.process_s, m.cpu_s = child.elapsed_s, child.cpu_s
    if child.problem():
        m.errors.append(f"{row.key}: {child.problem()}")
    result = harness.read_json(out)
    if result is None:
        m.errors.append(f"{row.key}: no result JSON")
        return m
    if row.client == "kanta":  # its summary JSON (schema 2)
        m.uploads, m.failed = int(result["uploaded"]), int(result["failed"])
        m.wall_s, m.active_s = float(result["wall_s"]), float(result.get("upload_window_s") or 0.0)
        m.peak_rss_mb = result.get("peak_rss_mb")
    else:  # bodies.write_result's file
        m.uploads, m.failed = int(result["uploaded"]), int(result["failed"])
        m.wall_s, m.active_s = float(result["wall_s"]), float(result["active_s"])
    m.loop_cpu_s = result.get("loop_cpu_s") if row.client in ("bare", "old") else None
    probe_files = [harness.read_json(p) for p in sorted(probes.glob("probe-*.json"))]
    if row.client in ("kanta", "minimal") and probe_files:
        m.loop_cpu_s = sum(float(p["cpu_s"]) for p in probe_files if p)
    if m.failed:
        m.errors.append(f"{row.key}: {m.failed} uploads failed")
    return m


# --- the null server ---------------------------------------------------------------------------------------
@contextmanager
def null_server(nginx: str, workdir: Path) -> Iterator[str]:
    """nginx in the foreground on NGINX_TEMPLATE; stopped by the PID it wrote, whatever happens."""
    prefix = workdir / "nginx"
    prefix.mkdir()
    conf, pid_file, out = prefix / "nginx.conf", prefix / "nginx.pid", prefix / "nginx.out"
    last_error = ""
    for _attempt in range(3):  # the free port may be taken between its probe and nginx's bind
        port = harness.free_port()
        text = NGINX_TEMPLATE.read_text()
        for key, value in (("@PREFIX@", str(prefix)), ("@PORT@", str(port)), ("@EVENT_CODE@", EVENT_CODE)):
            text = text.replace(key, value)
        conf.write_text(text)
        pid_file.unlink(missing_ok=True)
        with out.open("w") as log:
            proc = subprocess.Popen(
                [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            if _wait_healthy(url, proc, timeout=10.0):
                yield url
                return
            logs = [f.read_text(errors="replace").strip() for f in (out, prefix / "error.log") if f.is_file()]
            status = "not answering" if proc.poll() is None else f"exit code {proc.returncode}"
            last_error = "; ".join([status, *filter(None, logs)])
        finally:
            _stop_nginx(proc, pid_file)
    raise RuntimeError(f"nginx did not start ({last_error[-800:]})")


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/system/health", timeout=1) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def _stop_nginx(proc: subprocess.Popen, pid_file: Path) -> None:
    """SIGQUIT (graceful) to the master by the PID it wrote; SIGKILL to its group if it lingers."""
    if proc.poll() is not None:
        return
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        pid = proc.pid  # it wrote none yet: in the foreground the master is our child
    try:
        os.kill(pid, signal.SIGQUIT)
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- the report ----------------------------------------------------------------------------------------
COLUMNS = [
    "approach", "users", "uploads", "wall s", "uploads/s", "CPU ms/upload (whole process)",
    "CPU ms/upload (loop only)", "peak MB",
]  # fmt: skip


def table_rows(figures: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            f["name"] + (" (errors: see below)" if f["errors"] else ""),
            str(f["users"]),
            str(f["uploads"]) + (f" ({f['failed']} failed)" if f["failed"] else ""),
            cell(f["wall_s"]),
            cell(f["uploads_per_s"], 0),
            cell(f["cpu_ms_per_upload"], 3),
            cell(f["loop_cpu_ms_per_upload"], 3),
            cell(f["peak_rss_mb"], 0),
        ]
        for f in figures
    ]


def ratios(figures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every ratio whose two rows ran, looked up by key."""
    by_key = {f["key"]: f for f in figures if f["uploads"]}
    labels = {r.key: f"{r.name} -u {r.users}" for r in ROWS}
    return [
        r.evaluate(by_key, labels, FIGURE_LABELS)
        for r in RATIOS
        if r.numerator in by_key and r.denominator in by_key
    ]


def notes(host: str, nginx: str, passes: int, figures: list[dict[str, Any]]) -> list[str]:
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
    out = [
        f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}",
        f"server: {version}, 1 worker process, 202 from its config, on {host}",
        f"Locust runs: -r {SPAWN_RATE}; kanta-seed from {PROJECT} with --loops {passes} --no-verify"
        " --max-backlog 0 --fresh --ledger <temp dir>",
        "wall s: kanta-seed's wall_s (run start to end); Locust test_start..test_stop; the loop for the"
        " scripts. uploads/s: uploads over the time from the first upload sent to the last answered.",
        "CPU whole process: getrusage(RUSAGE_CHILDREN) around each child. Loop only: time.process_time()"
        " inside the child, between test_start and test_stop for Locust (probe.py), around the loop for"
        " the scripts.",
    ]
    out += [
        f"{f['name']} -u {f['users']}: CPU outside the run: {f['cpu_outside_run_s']:.2f} s"
        " (interpreter, imports, data loading, shutdown)"
        for f in figures
        if f["cpu_outside_run_s"] is not None
    ]
    return out


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--passes", type=int, default=None, help="passes over the data set per row (default 10)")
    p.add_argument("--quick", action="store_true", help="2 passes (an explicit --passes wins)")
    p.add_argument("--only", default="", help=f"comma-separated subset of: {','.join(GROUPS)}")
    p.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    harness.add_output_args(p, RUN_TIMEOUT_S)
    args = p.parse_args(argv)
    args.passes = args.passes or (2 if args.quick else 10)
    args.only = [a.strip() for a in args.only.split(",") if a.strip()] or list(GROUPS)
    unknown = sorted(set(args.only) - set(GROUPS))
    if unknown:
        p.error(f"--only: unknown {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    harness.check_images(p, args)
    if not Path(args.nginx).is_file():
        p.error(f"no nginx at {args.nginx} (pass --nginx PATH)")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    per_pass = len(png_members(args.images))
    plan = [r for r in ROWS if r.group in args.only]
    with (
        tempfile.TemporaryDirectory(prefix="kanta-bench-") as tmp,
        null_server(args.nginx, Path(tmp)) as host,
    ):
        ctx = Context(host, args.images, per_pass, args.passes, Path(tmp), args.run_timeout)
        total = per_pass * args.passes
        print(f"nginx {host}; {args.passes} passes x {per_pass} images = {total} uploads per row")
        figures = []
        for row in plan:
            print(f"  running {row.name} -u {row.users} ...", flush=True)
            m = measure(ctx, row)
            figures.append(m.figures())
            for e in m.errors:
                print(f"    error: {e}", flush=True)
    rows, found = table_rows(figures), ratios(figures)
    lines = [harness.ratio_line(r) for r in found]
    env_notes = notes(host, args.nginx, args.passes, figures)
    errors = [e for f in figures for e in f["errors"]]
    print("\n" + harness.text_table(COLUMNS, rows) + "\n")
    print("\n".join([*lines, *(f"note: {n}" for n in env_notes), *(f"error: {e}" for e in errors)]))
    md = "\n".join([
        f"# kanta-seed benchmark ({args.passes} passes x {per_pass} images each)", "",
        harness.markdown_table(COLUMNS, rows), "", *(f"- {x}" for x in [*lines, *env_notes]),
        *(["", "Errors:", *(f"- {e}" for e in errors)] if errors else []),
    ]) + "\n"  # fmt: skip
    payload = {
        "passes": args.passes,
        "per_pass": per_pass,
        "rows": figures,
        "ratios": found,
        "notes": env_notes,
    }
    harness.write_outputs(args, payload, md)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except RuntimeError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(2)
