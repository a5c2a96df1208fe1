"""Kanta's own figures: the stage times kanta-seed reports, checked against what the stand-in recorded
for each image (its exact store and face-write times), with the stand-in's clock right and 30 s off.
Polls discover; the server's stamps time, mapped by the offset measured from its Date headers."""

from __future__ import annotations

import os

import pytest

from .helpers import YALE_ZIP, read_json, run_locust

PROCESSED_WITHIN_S = 0.25
# Kanta dates a stored image by its blob's creation time to the second: the truth lies in a 1 s window,
# whose end is the estimate (never earlier), tightened by the face write and the poll that listed it.
STORED_WITHIN_S = 1.0
ROUNDING_S = 0.005


@pytest.mark.parametrize("offset", ["0", "30", "-30"])
def test_stage_times_are_the_servers_own(standin_factory, tmp_path, offset):
    standin = standin_factory("--clock-offset", offset)
    out = tmp_path / "s.json"
    run = run_locust(
        "-u", "5", "-r", "5", "-H", standin.url, "--images", str(YALE_ZIP), "--summary-json", str(out),
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.output[-3000:]
    s = read_json(out)
    # Kanta's record of storing an image is its blob's creation time (created_at, to the second): the
    # truth is the blob's own, exact; processed is the face write.
    truth = {
        u: (os.stat(path).st_mtime, processed)
        for u, path, processed in standin.rows("SELECT uuid, blob_path, processed_at FROM images")
    }
    assert abs(s["readback"]["clock_offset_s"] - float(offset)) < 0.2, s["readback"]
    stored_errors, processed_errors = [], []
    for uuid, (_, stored, processed) in s["stage_times"].items():
        true_stored, true_processed = truth[uuid]
        stored_errors.append(stored - true_stored)
        if processed is not None:
            processed_errors.append(processed - true_processed)
    assert len(stored_errors) == 165 and len(processed_errors) >= 150
    # never earlier than the truth, but for how well the offset to the server's clock is known
    never_earlier = ROUNDING_S + s["readback"]["clock_uncertainty_s"]
    worst = max(map(abs, processed_errors))
    print(f"stored error s: min {min(stored_errors):.3f} max {max(stored_errors):.3f};"
          f" processed |error| max {worst:.3f}; read-back {s['readback']}")  # fmt: skip
    assert min(stored_errors) >= -never_earlier, sorted(stored_errors)[:5]
    assert max(stored_errors) <= STORED_WITHIN_S + never_earlier, sorted(stored_errors)[-5:]
    assert max(map(abs, processed_errors)) <= PROCESSED_WITHIN_S, sorted(processed_errors, key=abs)[-5:]
    # faceless images are left out of the processed times
    assert len(processed_errors) == s["faces"]["images_with_faces"]
