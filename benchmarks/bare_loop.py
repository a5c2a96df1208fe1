"""The ceiling of a Python client: N greenlets, one keep-alive geventhttpclient HTTPClient each.

    python benchmarks/bare_loop.py --host http://127.0.0.1:8080 --images ../shared/yale_png.zip \\
        --uploads 1650 --users 5 --result-json out.json

Bodies encoded once at start (benchmarks/bodies.py, as kanta-seed and the minimal locustfile encode
them), greenlets post the next one from a shared counter until --uploads are answered. No Locust, no
stats, no retries: what is left is the HTTP client and gevent. benchmarks/bench.py runs it as its
"bare geventhttpclient loop" row.
"""

from __future__ import annotations

import argparse
import itertools
import time

import gevent
from bodies import encode_bodies, write_result
from geventhttpclient import HTTPClient
from geventhttpclient.url import URL

BOUNDARY = "bench-bare-0123456789abcdef"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", required=True)
    p.add_argument("--images", required=True)
    p.add_argument("--uploads", type=int, required=True)
    p.add_argument("--users", type=int, default=5, help="greenlets, one connection each")
    p.add_argument("--event-code", default="bench-null")
    p.add_argument("--result-json", required=True)
    args = p.parse_args()

    bodies = encode_bodies(args.images, BOUNDARY)
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    url = URL(args.host)
    path = f"/pics/{args.event_code}"
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
    loop_s = time.perf_counter() - t0
    write_result(args.result_json, counts["ok"], counts["failed"], loop_s, loop_s, time.process_time() - cpu0)


if __name__ == "__main__":
    main()
