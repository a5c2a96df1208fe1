"""What the benchmark's own clients share: the Yale PNGs, their multipart bodies and the result file.

Standard library only, on purpose: the bare loop and the minimal locustfile import it, and neither may
carry kanta-seed's imports into what they measure.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_members(zip_path: str | Path) -> list[tuple[str, bytes]]:
    """(member name, bytes) of every PNG in the zip, told by its bytes, sorted by name."""
    with zipfile.ZipFile(zip_path) as zf:
        pairs = [(name, zf.read(name)) for name in sorted(zf.namelist())]
    return [(name, data) for name, data in pairs if data.startswith(PNG_MAGIC)]


def encode_bodies(zip_path: str | Path, boundary: str) -> list[bytes]:
    """One multipart body per PNG (the ``image_file`` field), encoded once, as kanta-seed encodes them."""
    return [
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="image_file"; filename="{Path(name).name}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
        for name, data in png_members(zip_path)
    ]


def write_result(
    path: str | Path, uploaded: int, failed: int, active_s: float, wall_s: float, loop_cpu_s: float | None
) -> None:
    """The one result file of a client that is not kanta-seed (bench.py reads it).

    active_s: first upload sent .. last answered (uploads/s is uploads over it, as kanta-seed's
    rate_per_s); wall_s: the client's run; loop_cpu_s: CPU of the upload loop alone, when the client
    measures it (the Locust clients leave that to benchmarks/probe.py).
    """
    result = {"uploaded": uploaded, "failed": failed, "active_s": active_s, "wall_s": wall_s}
    if loop_cpu_s is not None:
        result["loop_cpu_s"] = loop_cpu_s
    Path(path).write_text(json.dumps(result))
