"""Kanta's own seed script (data/main.py in the Kanta repository), its upload loop as it runs there.

    python benchmarks/old_script.py --api-url http://127.0.0.1:8080 --images ../shared/yale_png.zip \\
        --batch-size 5 --delay 0 --uploads 1650 --result-json out.json

What it keeps of data/main.py: the zip unpacked to a temporary folder and its *.png and *.jpg found
with rglob; the event made with POST /events; batches of --batch-size uploads run with
asyncio.gather on one httpx.AsyncClient, each opening its file afresh and posting it with httpx's
``files=`` (multipart encoded per request), 30 s timeout, a line printed per image; --delay between
batches (0.5 s there; bench.py passes 0, so the loop is measured, not the pause). What it adds, for
the benchmark: --images (data/main.py reads the zip beside itself), --uploads (the set repeated up to
N uploads, as the other rows' passes), and the loop's time and CPU written to --result-json.
httpx comes from kanta-seed's [bench] extra (pip install -e '.[bench]').
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import zipfile
from pathlib import Path

import httpx
from bodies import write_result


async def seed(args: argparse.Namespace) -> None:
    base_url, event_code, batch_size = args.api_url, args.event_code, args.batch_size
    with tempfile.TemporaryDirectory() as temp_dir:
        temp_path = Path(temp_dir)
        with zipfile.ZipFile(args.images, "r") as zip_ref:
            zip_ref.extractall(temp_path)
        image_files = list(temp_path.rglob("*.png")) + list(temp_path.rglob("*.jpg"))
        order = [image_files[i % len(image_files)] for i in range(args.uploads or len(image_files))]
        total = len(order)
        print(f"Found {len(image_files)} image files; {total} uploads")

        async with httpx.AsyncClient() as client:
            response = await client.post(f"{base_url}/events", json={"event_code": event_code}, timeout=30.0)
            print(f"event {event_code}: {response.status_code}")

            async def upload_image(image_path: Path, index: int) -> bool:
                try:
                    with open(image_path, "rb") as f:
                        content_type = "image/png" if image_path.suffix == ".png" else "image/jpeg"
                        files = {"image_file": (image_path.name, f, content_type)}
                        response = await client.post(
                            f"{base_url}/pics/{event_code}", files=files, timeout=30.0
                        )
                        if response.status_code == 202:
                            uuid = response.json().get("uuid")
                            print(f"   [{index:3}/{total}] ok {image_path.name} -> UUID: {uuid}")
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
                results = await asyncio.gather(*(upload_image(p, start + i + 1) for i, p in enumerate(batch)))
                ok += sum(results)
                if start + batch_size < total and args.delay > 0:
                    await asyncio.sleep(args.delay)
            loop_s, loop_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    print(f"Images uploaded: {ok}/{total}")
    if args.result_json:
        write_result(args.result_json, ok, total - ok, loop_s, loop_s, loop_cpu_s)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=5, help="uploads run concurrently (default 5)")
    p.add_argument("--delay", type=float, default=0.5, help="seconds between batches (default 0.5)")
    p.add_argument("--event-code", default="test-yale-faces")
    p.add_argument("--api-url", default="http://localhost:8000")
    p.add_argument("--images", required=True, help="the Yale zip")
    p.add_argument("--uploads", type=int, default=0, help="uploads in all (default: the set once)")
    p.add_argument("--result-json", default="")
    asyncio.run(seed(p.parse_args()))


if __name__ == "__main__":
    main()
