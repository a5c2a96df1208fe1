"""Run the stand-in: ``python -m seed.standin --port 0 --db PATH --blobs DIR [pipeline] [faults]``.

Prints one line ``kanta-standin listening on http://127.0.0.1:PORT`` once it accepts connections,
so a caller that asked for port 0 can read the port it got. With no flags it behaves like a stock
Kanta under load (DB pool 5 + 10, 4 detection workers); ``--instant`` stores at once instead.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
from gevent.pywsgi import WSGIHandler, WSGIServer, format_date_time  # noqa: E402

from .app import create_app  # noqa: E402
from .faults import Faults  # noqa: E402
from .pipeline import Pipeline, PipelineConfig  # noqa: E402
from .store import Store  # noqa: E402

LISTEN_BACKLOG = 1024  # a burst of new connections must queue, not be refused


class SocketExposingHandler(WSGIHandler):
    """Puts the client socket in the WSGI environ so a fault can reset the connection, closes a
    keep-alive connection that stays idle for ``keep_alive_s`` (uvicorn's ``timeout_keep_alive``),
    and dates every answer on the server's clock (``clock_offset_s`` off the true one)."""

    keep_alive_s = 5.0
    clock_offset_s = 0.0

    def __init__(self, sock, address, server, rfile=None):
        # pywsgi writes a response's headers and body separately: without TCP_NODELAY, Nagle and the
        # client's delayed ACK add 40 ms to every keep-alive request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().__init__(sock, address, server, rfile)

    def read_requestline(self):
        if not self.keep_alive_s:
            return super().read_requestline()
        with gevent.Timeout(self.keep_alive_s, False):
            return super().read_requestline()
        return ""  # idle too long: pywsgi closes the connection, as uvicorn does

    def get_environ(self):
        env = super().get_environ()
        env["standin.socket"] = self.socket
        return env

    def finalize_headers(self):
        if self.provided_date is None and self.clock_offset_s:
            date = format_date_time(time.time() + self.clock_offset_s)
            self.response_headers.append((b"Date", date))
            self.provided_date = date
        super().finalize_headers()


class StandinServer(WSGIServer):
    reuse_addr = 1  # a restart on the same port works at once, even with connections in TIME_WAIT


def rate(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a share between 0 and 1")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must not be negative")
    return value


MAX_CLOCK_OFFSET_S = 10 * 365 * 86400


def clock_offset(text: str) -> float:
    value = float(text)
    if not abs(value) <= MAX_CLOCK_OFFSET_S:
        raise argparse.ArgumentTypeError(f"{text} is more than 10 years off")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m seed.standin", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to bind; 0 picks a free one (default 8000)")
    p.add_argument("--db", type=Path, help="SQLite file (default: a temporary folder)")
    p.add_argument("--blobs", type=Path, help="folder for image files (default: beside the database)")
    p.add_argument(
        "--keep-alive-s",
        type=non_negative,
        default=5.0,
        help="close a keep-alive connection idle this long, as uvicorn does; 0 keeps it (default 5)",
    )
    p.add_argument(
        "--clock-offset",
        type=clock_offset,
        default=0.0,
        metavar="S",
        help="the server's clock is S seconds off (may be negative): created_at, last_modified and"
        " the HTTP Date header (default 0)",
    )
    pipe = p.add_argument_group("pipeline (defaults: a stock Kanta)")
    pipe.add_argument("--workers", type=positive_int, default=4, help="face-detection workers (default 4)")
    pipe.add_argument("--detect-ms", type=non_negative, default=100.0, help="detection time per image (100)")
    pipe.add_argument("--db-pool", type=positive_int, default=15, help="DB connections, 5 + overflow (15)")
    pipe.add_argument(
        "--db-pool-timeout", type=non_negative, default=30.0, help="seconds a job waits for one (30)"
    )
    pipe.add_argument("--loop-ms", type=non_negative, default=25.0, help="event-loop time per job (25)")
    pipe.add_argument("--instant", action="store_true", help="no pipeline: store --store-delay after the 202")
    pipe.add_argument(
        "--store-delay", type=float, default=0.02, help="with --instant: seconds from 202 to stored (0.02)"
    )
    pipe.add_argument(
        "--cost-per-image-ms",
        type=non_negative,
        default=0.0,
        metavar="X",
        help="every load of an event (GET /pics, an upload and its job, GET /clusters, GET /events)"
        " holds the event loop X ms more per 1,000 images in the event; default 0 (a real Kanta's"
        " GET /pics took 100-190 ms at 1,650 images: X 60-115)",
    )
    faults = p.add_argument_group("faults (uploads only; seeded, so a run is repeatable)")
    faults.add_argument("--error-rate", type=rate, default=0.0, help="share answered 503")
    faults.add_argument("--throttle-rate", type=rate, default=0.0, help="share answered 429 with Retry-After")
    faults.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds on a 429")
    faults.add_argument("--reset-before-rate", type=rate, default=0.0, help="share reset before storing")
    faults.add_argument("--reset-after-rate", type=rate, default=0.0, help="share stored, then reset")
    faults.add_argument("--loss-rate", type=rate, default=0.0, help="share answered 202, then lost")
    faults.add_argument("--latency-ms", type=float, default=0.0, help="added latency per upload")
    faults.add_argument("--visible-after", type=float, default=0.0, help="extra seconds before the job")
    faults.add_argument(
        "--garbled-list", action="store_true", help='GET /pics lists "faces": "n/a" (a server gone wrong)'
    )
    faults.add_argument("--fault-seed", type=int, default=0, help="RNG seed for the faults")
    broken = p.add_argument_group("a broken Kanta (every image)")
    broken.add_argument(
        "--no-faces",
        action="store_true",
        help="face detection is broken: it runs but finds no face (listed with faces 0, last_modified"
        " unmoved, as Kanta leaves a faceless image)",
    )
    broken.add_argument(
        "--detection-dies",
        action="store_true",
        help="a job dies as it reaches face detection (as in a Kanta killed mid-run): stored and listed"
        " with faces 0, never processed",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        faults = Faults(
            error_rate=args.error_rate,
            throttle_rate=args.throttle_rate,
            retry_after_s=args.retry_after,
            reset_before_rate=args.reset_before_rate,
            reset_after_rate=args.reset_after_rate,
            loss_rate=args.loss_rate,
            latency_ms=args.latency_ms,
            visible_after_s=args.visible_after,
            garbled_list=args.garbled_list,
            seed=args.fault_seed,
        )
    except ValueError as e:
        print(f"kanta-standin: {e}", file=sys.stderr)
        return 2
    db = args.db or Path(tempfile.mkdtemp(prefix="kanta-standin-")) / "kanta.sqlite"
    db.parent.mkdir(parents=True, exist_ok=True)
    blobs = args.blobs or db.parent / "blobs"
    store = Store(db, blobs, clock_offset_s=args.clock_offset)
    store.forget_unfinished()
    pipeline = Pipeline(
        store,
        PipelineConfig(
            instant=args.instant,
            workers=args.workers,
            detect_s=args.detect_ms / 1000,
            db_pool=args.db_pool,
            db_pool_timeout_s=args.db_pool_timeout,
            loop_s=args.loop_ms / 1000,
            store_delay_s=args.store_delay,
            no_faces=args.no_faces,
            detection_dies=args.detection_dies,
            cost_per_image_s=args.cost_per_image_ms / 1000 / 1000,
        ),
    )
    SocketExposingHandler.keep_alive_s = args.keep_alive_s
    SocketExposingHandler.clock_offset_s = args.clock_offset
    server = StandinServer(
        (args.host, args.port), None, handler_class=SocketExposingHandler, log=None, error_log=None,
        backlog=LISTEN_BACKLOG,
    )  # fmt: skip
    server.start()
    host, port = server.address[:2]
    url = f"http://{host}:{port}"
    # The app needs the bound address for its public blob URLs, so it is made after the bind.
    server.application = create_app(store, faults, pipeline, url)
    print(f"kanta-standin listening on {url} (db {db})", flush=True)
    gevent.signal_handler(signal.SIGTERM, server.stop)
    gevent.signal_handler(signal.SIGINT, server.stop)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
