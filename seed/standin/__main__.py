"""Run the stand-in: ``python -m seed.standin --port 0 --db PATH --blobs DIR [faults]``.

Prints one line ``kanta-standin listening on http://127.0.0.1:PORT`` once it accepts connections,
so a caller that asked for port 0 can read the port it got.
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
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
from gevent.pywsgi import WSGIHandler, WSGIServer  # noqa: E402

from .app import create_app  # noqa: E402
from .faults import Faults  # noqa: E402
from .store import Store  # noqa: E402


class SocketExposingHandler(WSGIHandler):
    """Puts the client socket in the WSGI environ so a fault can reset the connection."""

    def __init__(self, sock, address, server, rfile=None):
        # pywsgi writes a response's headers and body separately: without TCP_NODELAY, Nagle and the
        # client's delayed ACK add 40 ms to every keep-alive request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().__init__(sock, address, server, rfile)

    def get_environ(self):
        env = super().get_environ()
        env["standin.socket"] = self.socket
        return env


def rate(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a share between 0 and 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m seed.standin", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to bind; 0 picks a free one (default 8000)")
    p.add_argument("--db", type=Path, help="SQLite file (default: a temporary folder)")
    p.add_argument("--blobs", type=Path, help="folder for image files (default: beside the database)")
    p.add_argument(
        "--store-delay", type=float, default=0.02, help="seconds from 202 to stored (default 0.02)"
    )
    faults = p.add_argument_group("faults (uploads only; seeded, so a run is repeatable)")
    faults.add_argument("--error-rate", type=rate, default=0.0, help="share answered 503")
    faults.add_argument("--throttle-rate", type=rate, default=0.0, help="share answered 429 with Retry-After")
    faults.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds on a 429")
    faults.add_argument("--reset-before-rate", type=rate, default=0.0, help="share reset before storing")
    faults.add_argument("--reset-after-rate", type=rate, default=0.0, help="share stored, then reset")
    faults.add_argument("--loss-rate", type=rate, default=0.0, help="share answered 202, then lost")
    faults.add_argument("--latency-ms", type=float, default=0.0, help="added latency per upload")
    faults.add_argument("--visible-after", type=float, default=0.0, help="extra seconds before stored")
    faults.add_argument("--fault-seed", type=int, default=0, help="RNG seed for the faults")
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
            seed=args.fault_seed,
        )
    except ValueError as e:
        print(f"kanta-standin: {e}", file=sys.stderr)
        return 2
    db = args.db or Path(tempfile.mkdtemp(prefix="kanta-standin-")) / "kanta.sqlite"
    db.parent.mkdir(parents=True, exist_ok=True)
    blobs = args.blobs or db.parent / "blobs"
    app = create_app(Store(db, blobs), faults, store_delay_s=args.store_delay)
    server = WSGIServer(
        (args.host, args.port), app, handler_class=SocketExposingHandler, log=None, error_log=None
    )
    server.start()
    host, port = server.address[:2]
    print(f"kanta-standin listening on http://{host}:{port} (db {db})", flush=True)
    gevent.signal_handler(signal.SIGTERM, server.stop)
    gevent.signal_handler(signal.SIGINT, server.stop)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
