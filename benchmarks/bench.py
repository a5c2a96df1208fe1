"""Client-side cost of kanta-seed per upload, beside the ceilings it could reach and the old script.

    .venv/bin/python benchmarks/bench.py               # 10 passes over the Yale set (1650 uploads) each
    .venv/bin/python benchmarks/bench.py --quick       # 2 passes
    .venv/bin/python benchmarks/bench.py --only kanta,minimal --markdown bench.md

The server is a null server that costs almost nothing (nginx on 127.0.0.1 answering 202 from its
config), so what differs between the rows is the client. Every client runs in a child process, and
its CPU is the child's whole CPU (getrusage RUSAGE_CHILDREN deltas around it), plus, where the
child measures it, the CPU of its upload loop alone. See benchmarks/README.md for what each row is.
Benchmarks report; they do not assert.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
MINIMAL_LOCUSTFILE = HERE / "minimal_locustfile.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EVENT_CODE = "bench-null"
RUN_TIMEOUT_S = 300.0
APPROACHES = ("kanta", "minimal", "httpuser", "bare", "old", "processes", "memory")

NGINX_CONF = """\
daemon off;
master_process on;
worker_processes {workers};
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_buffer_size 64k;
    client_max_body_size 32m;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    default_type application/json;
    server {{
        listen 127.0.0.1:{port};
        location = /system/health {{ return 200 '{{"status":"ok"}}'; }}
        location = /events {{
            if ($request_method = POST) {{ return 201 '{{"event_code":"{code}"}}'; }}
            return 200 '[]';
        }}
        location /pics/ {{
            if ($request_method = POST) {{
                # $request_id: 32 random hex digits per request, a fresh uuid at no cost.
                return 202 '{{"uuid":"$request_id","blob_url":"","faces":0,"boxes":[],"embeddings":[]}}';
            }}
            return 200 '[]';
        }}
        location / {{ return 404 '{{"detail":"Not Found"}}'; }}
    }}
}}
"""

# Loaded into every Locust child with -f LOCUSTFILE,PROBE: the CPU and wall time of the process
# between test_start and test_stop, i.e. the run without interpreter start, imports and data loading.
PROBE = """\
import json, os, time
from locust import events

_totals = {"cpu_s": 0.0, "wall_s": 0.0, "runs": 0}
_start = {}


@events.test_start.add_listener
def _bench_start(**_):
    _start["cpu"], _start["wall"] = time.process_time(), time.perf_counter()


@events.test_stop.add_listener
def _bench_stop(**_):
    if not _start:
        return
    _totals["cpu_s"] += time.process_time() - _start.pop("cpu")
    _totals["wall_s"] += time.perf_counter() - _start.pop("wall")
    _totals["runs"] += 1
    with open(os.environ["BENCH_PROBE_JSON"], "w") as f:
        json.dump(_totals, f)
"""


# --- measurements ---------------------------------------------------------------------------------------
@dataclass
class Measure:
    """One row: an approach at one concurrency, summed over its child processes."""

    name: str
    users: int
    uploads: int = 0
    failed: int = 0
    wall_s: float = 0.0  # the run: kanta-seed's wall_s, Locust test_start..test_stop, or the loop
    active_s: float = 0.0  # first upload sent .. last answered: uploads/s is uploads over this
    process_s: float = 0.0  # the child processes from start to exit
    cpu_s: float = 0.0  # whole child processes (getrusage)
    loop_cpu_s: float | None = None  # the run or loop only, measured inside the child
    processes: int = 0
    note: str = ""
    errors: list[str] = field(default_factory=list)
    peak_rss_mb: float | None = None  # kanta-seed's own figure (largest process of the run)

    @property
    def rate(self) -> float:
        return self.uploads / self.active_s if self.active_s > 0 else 0.0

    @property
    def cpu_ms(self) -> float | None:
        return self.cpu_s * 1000 / self.uploads if self.uploads else None

    @property
    def loop_cpu_ms(self) -> float | None:
        if self.loop_cpu_s is None or not self.uploads:
            return None
        return self.loop_cpu_s * 1000 / self.uploads

    def add_loop_cpu(self, seconds: float | None) -> None:
        if seconds is not None:
            self.loop_cpu_s = (self.loop_cpu_s or 0.0) + seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "users": self.users,
            "uploads": self.uploads,
            "failed": self.failed,
            "wall_s": round(self.wall_s, 3),
            "active_s": round(self.active_s, 3),
            "process_s": round(self.process_s, 3),
            "uploads_per_s": round(self.rate, 1),
            "cpu_ms_per_upload": _round(self.cpu_ms),
            "loop_cpu_ms_per_upload": _round(self.loop_cpu_ms),
            "processes": self.processes,
            "peak_rss_mb": self.peak_rss_mb,
            "note": self.note,
            "errors": self.errors,
        }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


@dataclass
class Child:
    rc: int
    elapsed_s: float
    cpu_s: float
    log: Path
    timed_out: bool

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_child(
    cmd: list[str], log: Path, timeout: float, env: dict[str, str] | None = None, cwd: Path = PROJECT
) -> Child:
    """Run one child to its end (killed by its PID after timeout); its CPU is the RUSAGE_CHILDREN delta.

    RUSAGE_CHILDREN only grows when a child is reaped, and nginx is not reaped until the very end,
    so the delta around one wait() is that child's CPU (and that of any children it reaped).
    """
    before = _children_cpu()
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(cwd), **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a timeout kills it and anything it started
        )
        timed_out = False
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            rc = proc.wait()
    return Child(rc, time.perf_counter() - start, _children_cpu() - before, log, timed_out)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# --- the null server --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def null_server(nginx: str, workdir: Path, workers: int) -> Iterator[str]:
    """nginx in the foreground with a generated config; stopped by the PID it wrote, always."""
    tmp = workdir / "nginx"
    tmp.mkdir()
    last_error = ""
    for _attempt in range(3):  # the free port may be taken between its probe and nginx's bind
        port = free_port()
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, workers=workers, code=EVENT_CODE))
        pid_file = tmp / "nginx.pid"
        pid_file.unlink(missing_ok=True)
        proc = subprocess.Popen(
            [nginx, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
            stdin=subprocess.DEVNULL,
            stdout=(tmp / "nginx.out").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            if _wait_healthy(url, proc, timeout=10.0):
                yield url
                return
            status = "not answering" if proc.poll() is None else f"exit code {proc.returncode}"
            logs = [f.read_text(errors="replace").strip() for f in (tmp / "nginx.out", tmp / "error.log")
                    if f.is_file()]  # fmt: skip
            last_error = "; ".join([status, *filter(None, logs)])
        finally:
            _stop_nginx(proc, pid_file)
    raise RuntimeError(f"nginx did not start ({last_error.strip()[-800:]})")


@contextmanager
def standin_server(workdir: Path) -> Iterator[str]:
    """kanta-seed's stand-in (Flask on gevent, SQLite): a real single-process server, ended by its PID."""
    tmp = workdir / "standin"
    tmp.mkdir()
    cmd = [sys.executable, "-m", "seed.standin", "--port", "0", "--db", str(tmp / "k.sqlite")]
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    with (tmp / "standin.err").open("w") as err:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env, start_new_session=True
        )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if "listening on " not in line:
            raise RuntimeError(f"the stand-in did not start: {(tmp / 'standin.err').read_text()[-800:]}")
        yield line.split("listening on ", 1)[1].split()[0]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
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


# --- the approaches ---------------------------------------------------------------------------------------
@dataclass
class Context:
    host: str
    images: Path
    per_pass: int
    passes: int
    workdir: Path
    spawn_rate: int
    timeout: float
    probe: Path
    kanta_dir: Path = PROJECT
    kanta_flags: frozenset[str] = frozenset()  # the options this kanta-seed offers, of KANTA_FLAGS
    kanta_args: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return self.per_pass * self.passes

    @property
    def loops(self) -> bool:
        return "--loops" in self.kanta_flags


def locust_cmd(locustfile: str, ctx: Context, users: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "locust", "-f", f"{locustfile},{ctx.probe}", "--headless",
        "-u", str(users), "-r", str(ctx.spawn_rate), "-H", ctx.host, "--images", str(ctx.images), *extra,
    ]  # fmt: skip


# Options of kanta-seed the benchmark uses when the locustfile offers them: --loops N runs every
# pass in one process; --no-verify skips the read-back (the null server lists nothing); --fresh and
# --ledger keep a pass from resuming the one before and keep the ledger out of data/.
KANTA_FLAGS = {"--loops": ["1"], "--no-verify": [], "--fresh": [], "--ledger": ["x.jsonl"]}


def kanta_flags(kanta_dir: Path) -> frozenset[str]:
    """The options of KANTA_FLAGS this locustfile accepts.

    Not from --help: Locust 2.47 prints its help before it imports the locustfile, so a locustfile's
    own options never show there. --list imports it, parses every option and exits before any run;
    an unknown option makes it exit 2.
    """
    found = set()
    for flag, value in KANTA_FLAGS.items():
        probe = subprocess.run(
            [sys.executable, "-m", "locust", "-f", "locustfile.py", "--list", flag, *value],
            cwd=kanta_dir,
            env={**os.environ, "PYTHONPATH": str(kanta_dir)},
            capture_output=True,
            timeout=60,
        )
        if probe.returncode == 0:
            found.add(flag)
    return frozenset(found)


def bench_kanta(
    ctx: Context, users: int, processes: int = 0, passes: int | None = None, name: str = "kanta-seed"
) -> Measure:
    """kanta-seed as users run it; one process per pass until it has --loops.

    processes > 0 runs Locust's distributed mode (--processes N: a master and N workers);
    passes overrides the number of passes (the memory rows).
    """
    passes = passes or ctx.passes
    m = Measure(name, users, note="--loops" if ctx.loops else f"{passes} processes, 1 pass each")
    runs = [passes] if ctx.loops else [1] * passes
    for n, loops in enumerate(runs):
        tag = f"{name.replace(' ', '_')}-u{users}-p{processes}-{n}"
        summary_path, probe_path = ctx.workdir / f"{tag}.json", ctx.workdir / f"{tag}.probe.json"
        # --only-summary as for the minimal runs: the same Locust output on both sides.
        extra = ["--summary-json", str(summary_path), "--event-code", EVENT_CODE, "--only-summary"]
        if ctx.loops:
            extra += ["--loops", str(loops)]
        if processes:
            extra += ["--processes", str(processes)]
        if "--no-verify" in ctx.kanta_flags:
            extra.append("--no-verify")
        if "--fresh" in ctx.kanta_flags:
            extra.append("--fresh")
        if "--ledger" in ctx.kanta_flags:
            extra += ["--ledger", str(ctx.workdir / f"{tag}.ledger.jsonl")]
        child = run_child(
            locust_cmd("locustfile.py", ctx, users, *extra, *ctx.kanta_args),
            ctx.workdir / f"{tag}.log",
            ctx.timeout,
            {"BENCH_PROBE_JSON": str(probe_path)},
            cwd=ctx.kanta_dir,
        )
        summary, probe = read_json(summary_path), read_json(probe_path)
        _account(m, child, tag)
        if summary is None:
            m.errors.append(f"{tag}: no summary JSON")
            continue
        uploaded = int(summary["uploaded"])
        m.uploads += uploaded
        m.failed += int(summary.get("failed", 0))
        m.wall_s += float(summary["wall_s"])
        rate = float(summary.get("rate_per_s") or 0)
        m.active_s += uploaded / rate if rate > 0 else float(summary["wall_s"])
        m.add_loop_cpu(probe["cpu_s"] if probe else None)
        if summary.get("peak_rss_mb"):
            m.peak_rss_mb = max(m.peak_rss_mb or 0.0, float(summary["peak_rss_mb"]))
    if m.peak_rss_mb:
        m.note += f"; peak memory {m.peak_rss_mb:.0f} MB"
    return m


def bench_minimal(ctx: Context, users: int, user_class: str) -> Measure:
    """The ceiling inside Locust: benchmarks/minimal_locustfile.py, all passes in one process."""
    name = "minimal FastHttpUser" if user_class == "MinimalFastUser" else "minimal HttpUser"
    m = Measure(name, users)
    tag = f"{user_class}-u{users}"
    result_path, probe_path = ctx.workdir / f"{tag}.json", ctx.workdir / f"{tag}.probe.json"
    child = run_child(
        locust_cmd(
            str(MINIMAL_LOCUSTFILE),
            ctx,
            users,
            "--uploads",
            str(ctx.total),
            "--result-json",
            str(result_path),
            "--only-summary",
            user_class,
        ),
        ctx.workdir / f"{tag}.log",
        ctx.timeout,
        {"BENCH_PROBE_JSON": str(probe_path)},
    )
    _account(m, child, tag)
    result, probe = read_json(result_path), read_json(probe_path)
    if result is None:
        m.errors.append(f"{tag}: no result JSON")
        return m
    m.uploads, m.failed = int(result["uploaded"]), int(result["failed"])
    m.wall_s, m.active_s = float(result["wall_s"]), float(result["active_s"])
    m.add_loop_cpu(probe["cpu_s"] if probe else None)
    return m


def bench_script(ctx: Context, kind: str, users: int) -> Measure:
    """A plain client loop in a child process of this script: 'bare' or 'old'."""
    name = {"bare": "bare geventhttpclient loop", "old": "old script (asyncio + httpx)"}[kind]
    m = Measure(name, users)
    tag = f"{kind}-u{users}"
    result_path = ctx.workdir / f"{tag}.json"
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "_child", kind, "--host", ctx.host,
        "--images", str(ctx.images), "--uploads", str(ctx.total), "--users", str(users),
        "--result-json", str(result_path),
    ]  # fmt: skip
    child = run_child(cmd, ctx.workdir / f"{tag}.log", ctx.timeout)
    _account(m, child, tag)
    result = read_json(result_path)
    if result is None:
        m.errors.append(f"{tag}: no result JSON")
        return m
    m.uploads, m.failed = int(result["uploaded"]), int(result["failed"])
    m.wall_s = m.active_s = float(result["loop_s"])
    m.add_loop_cpu(float(result["loop_cpu_s"]))
    return m


def _account(m: Measure, child: Child, tag: str) -> None:
    m.processes += 1
    m.process_s += child.elapsed_s
    m.cpu_s += child.cpu_s
    if child.timed_out:
        m.errors.append(f"{tag}: killed after {child.elapsed_s:.0f} s")
    elif child.rc not in (0, 1, 3):  # kanta-seed: 1 not all uploaded, 3 a --check-* breached
        m.errors.append(f"{tag}: exit code {child.rc}: {child.tail(5)}")


# --- the child loops (run as: bench.py _child bare|old ...) --------------------------------------------
def png_members(zip_path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(zip_path) as zf:
        pairs = [(name, zf.read(name)) for name in sorted(zf.namelist())]
    return [(name, data) for name, data in pairs if data.startswith(PNG_MAGIC)]


def child_bare(args: argparse.Namespace) -> dict[str, Any]:
    """The ceiling of a Python client: N greenlets, one keep-alive HTTPClient each, pre-encoded bodies."""
    import gevent
    from geventhttpclient import HTTPClient
    from geventhttpclient.url import URL

    boundary = "bench-bare-0123456789abcdef"
    bodies = [
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image_file"; '
            f'filename="{Path(name).name}"\r\nContent-Type: image/png\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
        for name, data in png_members(Path(args.images))
    ]
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    url = URL(args.host)
    path = f"/pics/{EVENT_CODE}"
    claims = itertools.count()
    counts = {"ok": 0, "failed": 0}

    def worker() -> None:
        client = HTTPClient(url.host, url.port, connection_timeout=10, network_timeout=30)
        try:
            while (i := next(claims)) < args.uploads:
                resp = client.post(path, body=bodies[i % len(bodies)], headers=headers)
                resp.read()  # the whole answer, so the connection goes back for the next request
                counts["ok" if resp.status_code == 202 else "failed"] += 1
        finally:
            client.close()

    cpu0, t0 = time.process_time(), time.perf_counter()
    gevent.joinall([gevent.spawn(worker) for _ in range(args.users)], raise_error=True)
    return {
        "uploaded": counts["ok"],
        "failed": counts["failed"],
        "loop_s": time.perf_counter() - t0,
        "loop_cpu_s": time.process_time() - cpu0,
    }


def child_old(args: argparse.Namespace) -> dict[str, Any]:
    """The original data/main.py upload loop (batches with asyncio.gather, a fresh open() and httpx
    multipart files= per request, a line printed per image), without its pause between batches."""
    import httpx

    base_url, batch_size = args.host, args.users

    async def run() -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as temp_dir:
            temp_path = Path(temp_dir)
            with zipfile.ZipFile(args.images) as zf:
                zf.extractall(temp_path)
            image_files = sorted(temp_path.rglob("*.png")) + sorted(temp_path.rglob("*.jpg"))
            order = [image_files[i % len(image_files)] for i in range(args.uploads)]
            total = len(order)
            async with httpx.AsyncClient() as client:
                resp = await client.post(f"{base_url}/events", json={"event_code": EVENT_CODE}, timeout=30.0)
                print(f"event: {resp.status_code}")

                async def upload_image(image_path: Path, index: int) -> bool:
                    try:
                        with open(image_path, "rb") as f:
                            ctype = "image/png" if image_path.suffix == ".png" else "image/jpeg"
                            files = {"image_file": (image_path.name, f, ctype)}
                            response = await client.post(
                                f"{base_url}/pics/{EVENT_CODE}", files=files, timeout=30.0
                            )
                            if response.status_code == 202:
                                result = response.json()
                                uid = result.get("uuid")
                                print(f"   [{index:3}/{total}] ok {image_path.name} -> UUID: {uid}")
                                return True
                            print(f"   [{index:3}/{total}] x {image_path.name}: {response.status_code}")
                            return False
                    except Exception as e:
                        print(f"   [{index:3}/{total}] x {image_path.name}: {e}")
                        return False

                ok = 0
                cpu0, t0 = time.process_time(), time.perf_counter()
                for start in range(0, total, batch_size):
                    batch = order[start : start + batch_size]
                    results = await asyncio.gather(
                        *(upload_image(p, start + i + 1) for i, p in enumerate(batch))
                    )
                    ok += sum(results)
                loop_s, loop_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
        return {"uploaded": ok, "failed": total - ok, "loop_s": loop_s, "loop_cpu_s": loop_cpu_s}

    return asyncio.run(run())


def child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.py _child")
    parser.add_argument("kind", choices=("bare", "old"))
    parser.add_argument("--host", required=True)
    parser.add_argument("--images", required=True)
    parser.add_argument("--uploads", type=int, required=True)
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--result-json", required=True)
    args = parser.parse_args(argv)
    result = child_bare(args) if args.kind == "bare" else child_old(args)
    Path(args.result_json).write_text(json.dumps(result))
    print(json.dumps(result), flush=True)
    return 0


# --- the table ----------------------------------------------------------------------------------------
COLUMNS = (
    "approach",
    "users",
    "uploads",
    "wall s",
    "uploads/s",
    "CPU ms/upload (whole process)",
    "CPU ms/upload (loop only)",
    "processes",
)


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def rows_of(measures: list[Measure]) -> list[list[str]]:
    return [
        [
            m.name + (" (errors: see below)" if m.errors else ""),
            str(m.users),
            str(m.uploads) + (f" ({m.failed} failed)" if m.failed else ""),
            _num(m.wall_s, 2),
            _num(m.rate, 0),
            _num(m.cpu_ms, 3),
            _num(m.loop_cpu_ms, 3),
            str(m.processes),
        ]
        for m in measures
    ]


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def ratios(measures: list[Measure]) -> list[str]:
    """The comparisons the benchmark exists for, with their targets where there is one."""

    def find(name: str, users: int) -> Measure | None:
        return next((m for m in measures if m.name == name and m.users == users and m.uploads), None)

    def line(label: str, value: float | None, target: str = "", ok: bool | None = None) -> str:
        verdict = "" if ok is None else (" -> met" if ok else " -> NOT met")
        return f"{label}: {_num(value, 2)}x" + (f" (target {target}{verdict})" if target else "")

    lines = []
    for users in (5, 50):
        k, mini = find("kanta-seed", users), find("minimal FastHttpUser", users)
        if k and mini:
            whole = _ratio(k.cpu_ms, mini.cpu_ms)
            loop = _ratio(k.loop_cpu_ms, mini.loop_cpu_ms)
            lines.append(
                line(
                    f"kanta-seed / minimal FastHttpUser CPU per upload, -u {users}, whole process",
                    whole,
                    "<= 1.3x",
                    None if whole is None else whole <= 1.3,
                )
            )
            lines.append(
                line(
                    f"kanta-seed / minimal FastHttpUser CPU per upload, -u {users}, run only",
                    loop,
                    "<= 1.3x",
                    None if loop is None else loop <= 1.3,
                )
            )
    k, old, http = find("kanta-seed", 5), find("old script (asyncio + httpx)", 5), find("minimal HttpUser", 5)
    if k and old:
        r = _ratio(k.rate, old.rate)
        lines.append(
            line("kanta-seed / old script uploads/s, -u 5", r, ">= 8x", None if r is None else r >= 8)
        )
        lines.append(
            line("old script / kanta-seed CPU per upload, whole process", _ratio(old.cpu_ms, k.cpu_ms))
        )
    if http and old:
        lines.append(line("minimal HttpUser / old script uploads/s, -u 5", _ratio(http.rate, old.rate)))
        lines.append(
            line(
                "minimal HttpUser / old script CPU per upload, loop only",
                _ratio(http.loop_cpu_ms, old.loop_cpu_ms),
            )
        )
    mini, http5 = find("minimal FastHttpUser", 5), find("minimal HttpUser", 5)
    if mini and http5:
        lines.append(
            line(
                "minimal HttpUser / minimal FastHttpUser CPU per upload, run only",
                _ratio(http5.loop_cpu_ms, mini.loop_cpu_ms),
            )
        )
    one = find("kanta-seed --processes 1", 20)
    for n in (2, 4):
        more = find(f"kanta-seed --processes {n}", 20)
        if one and more:
            r = _ratio(more.rate, one.rate)
            lines.append(
                line(f"kanta-seed --processes {n} / --processes 1 uploads/s, -u 20", r,
                     ">= 1.6x where the client is the bottleneck" if n == 2 else "",
                     (r >= 1.6) if (n == 2 and r is not None) else None)
            )  # fmt: skip
    small, large = find("kanta-seed --loops 5", 5), find("kanta-seed --loops 50", 5)
    if small and large and small.peak_rss_mb and large.peak_rss_mb:
        lines.append(
            f"kanta-seed peak memory, --loops 50 / --loops 5: {large.peak_rss_mb / small.peak_rss_mb:.2f}x"
            f" ({large.peak_rss_mb:.0f} MB vs {small.peak_rss_mb:.0f} MB; target: flat)"
        )
    bare = find("bare geventhttpclient loop", 5)
    if mini and bare:
        lines.append(
            line(
                "minimal FastHttpUser / bare loop CPU per upload, whole process",
                _ratio(mini.cpu_ms, bare.cpu_ms),
            )
        )
        lines.append(
            line(
                "minimal FastHttpUser / bare loop CPU per upload, loop only",
                _ratio(mini.loop_cpu_ms, bare.loop_cpu_ms),
            )
        )
    for m in measures:
        if m.loop_cpu_s is not None and m.processes:
            outside = (m.cpu_s - m.loop_cpu_s) / m.processes
            lines.append(
                f"{m.name} -u {m.users}: CPU outside the run, per process: {outside:.2f} s"
                " (interpreter, imports, data loading, shutdown)"
            )
    return lines


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [list(COLUMNS), *rows]) for i in range(len(COLUMNS))]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*r) for r in [list(COLUMNS), *rows])


def markdown(measures: list[Measure], ctx: Context, notes: list[str]) -> str:
    rows = rows_of(measures)
    out = [
        f"# kanta-seed benchmark ({ctx.passes} passes x {ctx.per_pass} images = {ctx.total} uploads each)",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join(" --- " if i == 0 else " ---: " for i in range(len(COLUMNS))) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
        *(f"- {n}" for n in ratios(measures)),
        "",
        *(f"- {n}" for n in notes),
    ]
    errors = [e for m in measures for e in m.errors]
    if errors:
        out += ["", "Errors:", *(f"- {e}" for e in errors)]
    return "\n".join(out) + "\n"


def environment_notes(ctx: Context, nginx: str, workers: int, target: str = "nginx") -> list[str]:
    if target == "standin":
        server = f"server: kanta-seed's stand-in (one process, SQLite, blobs on disk) on {ctx.host}"
    else:
        version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
        server = f"server: {version}, {workers} worker process(es), 202 from its config, on {ctx.host}"
    return [
        f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}",
        server,
        f"Locust runs: -r {ctx.spawn_rate}; kanta-seed from {ctx.kanta_dir}"
        + (f" ({' '.join(sorted(ctx.kanta_flags))} used)" if ctx.kanta_flags else "")
        + ("" if ctx.loops else "; without --loops: one process per pass, figures summed"),
        "wall s: kanta-seed's wall_s (run start to end); Locust test_start..test_stop; the loop for the"
        " scripts. uploads/s: uploads over the time from the first upload sent to the last answered.",
        "CPU whole process: getrusage(RUSAGE_CHILDREN) around each child. Loop only: time.process_time()"
        " inside the child, between test_start and test_stop for Locust, around the loop for the scripts.",
    ]


# --- main ------------------------------------------------------------------------------------------------
def default_images() -> Path:
    env = os.environ.get("KANTA_SEED_YALE")
    if env:
        return Path(env)
    local = PROJECT / "data" / "yale_png.zip"
    return local if local.is_file() else PROJECT.parent / "shared" / "yale_png.zip"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--passes", type=int, default=None, help="passes over the data set per run (default 10)")
    p.add_argument("--quick", action="store_true", help="2 passes (an explicit --passes wins)")
    p.add_argument("--only", default="", help=f"comma-separated subset of: {','.join(APPROACHES)}")
    p.add_argument("--images", type=Path, default=default_images(), help="the Yale zip")
    p.add_argument("--markdown", type=Path, default=None, help="also write the table as Markdown here")
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    p.add_argument("--run-timeout", type=float, default=RUN_TIMEOUT_S, help="seconds per child process")
    p.add_argument(
        "--kanta-dir",
        type=Path,
        default=PROJECT,
        help="the kanta-seed checkout to measure (default: this one), e.g. a git archive of a commit",
    )
    p.add_argument("--kanta-args", default="", help="more options for the kanta-seed runs, in one string")
    p.add_argument("--spawn-rate", type=int, default=100, help="Locust -r (default 100)")
    p.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    p.add_argument(
        "--target",
        choices=("nginx", "standin"),
        default="nginx",
        help="the server: nginx answering 202 at no cost (default), or kanta-seed's stand-in (a real server)",
    )
    p.add_argument("--nginx-workers", type=int, default=1, choices=(1, 2))
    args = p.parse_args(argv)
    args.passes = args.passes or (2 if args.quick else 10)
    only = [a.strip() for a in args.only.split(",") if a.strip()] or list(APPROACHES)
    unknown = sorted(set(only) - set(APPROACHES))
    if unknown:
        p.error(f"--only: unknown {', '.join(unknown)}; choose from {', '.join(APPROACHES)}")
    args.only = only
    if not args.images.is_file():
        p.error(f"no data set at {args.images} (pass --images PATH or set KANTA_SEED_YALE)")
    if not Path(args.nginx).is_file():
        p.error(f"no nginx at {args.nginx} (pass --nginx PATH)")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    per_pass = len(png_members(args.images))
    plan: list[tuple[str, Callable[[Context], Measure]]] = []
    if "kanta" in args.only:
        plan += [
            ("kanta-seed -u 5", lambda c: bench_kanta(c, 5)),
            ("kanta-seed -u 50", lambda c: bench_kanta(c, 50)),
        ]
    if "minimal" in args.only:
        plan += [
            ("minimal FastHttpUser -u 5", lambda c: bench_minimal(c, 5, "MinimalFastUser")),
            ("minimal FastHttpUser -u 50", lambda c: bench_minimal(c, 50, "MinimalFastUser")),
        ]
    if "httpuser" in args.only:
        plan += [("minimal HttpUser -u 5", lambda c: bench_minimal(c, 5, "MinimalHttpUser"))]
    if "bare" in args.only:
        plan += [("bare geventhttpclient loop x5", lambda c: bench_script(c, "bare", 5))]
    if "old" in args.only:
        plan += [("old script, batches of 5", lambda c: bench_script(c, "old", 5))]
    if "processes" in args.only:  # the distributed mode: does a second process add throughput?
        plan += [
            (
                f"kanta-seed --processes {n} -u 20",
                lambda c, n=n: bench_kanta(c, 20, n, name=f"kanta-seed --processes {n}"),
            )
            for n in (1, 2, 4)
        ]
    if "memory" in args.only:  # peak memory must stay flat however many uploads a run makes
        plan += [
            (
                f"kanta-seed --loops {n}",
                lambda c, n=n: bench_kanta(c, 5, passes=n, name=f"kanta-seed --loops {n}"),
            )
            for n in (5, 50)
        ]

    with tempfile.TemporaryDirectory(prefix="kanta-bench-") as tmp:
        workdir = Path(tmp)
        probe = workdir / "bench_probe.py"
        probe.write_text(PROBE)
        server = (
            standin_server(workdir)
            if args.target == "standin"
            else null_server(args.nginx, workdir, args.nginx_workers)
        )
        with server as host:
            ctx = Context(
                host=host,
                images=args.images.resolve(),
                per_pass=per_pass,
                passes=args.passes,
                workdir=workdir,
                spawn_rate=args.spawn_rate,
                timeout=args.run_timeout,
                probe=probe,
                kanta_dir=args.kanta_dir.resolve(),
                kanta_args=tuple(args.kanta_args.split()),
            )
            if {"kanta", "processes", "memory"} & set(args.only):
                ctx.kanta_flags = kanta_flags(ctx.kanta_dir)
            print(
                f"{args.target} server {host}; {args.passes} passes x {per_pass} images"
                f" = {ctx.total} uploads per row"
            )
            measures = []
            for label, fn in plan:
                print(f"  running {label} ...", flush=True)
                m = fn(ctx)
                measures.append(m)
                for e in m.errors:
                    print(f"    error: {e}", flush=True)
            notes = environment_notes(ctx, args.nginx, args.nginx_workers, args.target)

    print()
    print(text_table(rows_of(measures)))
    print()
    for line in ratios(measures):
        print(line)
    for note in notes:
        print(f"note: {note}")
    for e in (e for m in measures for e in m.errors):
        print(f"error: {e}")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(measures, ctx, notes))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "passes": args.passes,
            "per_pass": per_pass,
            "rows": [m.as_dict() for m in measures],
            "ratios": ratios(measures),
            "notes": notes,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        sys.exit(child_main(sys.argv[2:]))
    try:
        sys.exit(main(sys.argv[1:]))
    except RuntimeError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(2)
