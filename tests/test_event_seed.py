"""Seeding a folder of generated event photos (``make-event``): exactly once, in one process and with
workers that read their own copy or get the bytes from the master."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from pathlib import Path

import pytest

from seed.core.event_photos import make_event

from .helpers import YALE_ZIP, free_port, read_json, run_locust, stored_contents

CODE = "test-yale-faces"
PHOTOS = 8


@pytest.fixture(scope="module")
def event_dir(tmp_path_factory) -> Path:
    """8 group photos of 1200x800 (2-4 faces each) composed from the Yale zip, with their ground truth."""
    out = tmp_path_factory.mktemp("made") / "event"
    make_event(out, PHOTOS, YALE_ZIP, faces=(2, 4), size=(1200, 800), seed=3)
    return out


def contents(folder: Path) -> Counter:
    return Counter(hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.jpg")))


def test_a_folder_of_generated_photos_is_seeded_exactly_once(fast_standin, event_dir, tmp_path):
    summary = tmp_path / "s.json"
    run = run_locust(
        "-u", "3", "-r", "3", "-H", fast_standin.url, "--images", str(event_dir),
        "--summary-json", str(summary), cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.output[-3000:]
    want = contents(event_dir)
    assert len(want) == PHOTOS
    assert stored_contents(fast_standin, CODE) == want
    s = read_json(summary)
    assert s["uploaded"] == PHOTOS and s["data_set"] == str(event_dir)
    assert [k["member"] for k in s["skipped"]] == ["ground-truth.json"]  # not an image: skipped, named
    # The ground truth beside the photos is checked against what Kanta detected (GET /pics/{uuid}); the
    # stand-in's "detector" places boxes by content, not where the faces are, so only the counts are sure.
    truth = json.loads((event_dir / "ground-truth.json").read_text())
    g = s["ground_truth"]
    assert g["photos"] == PHOTOS and g["placed"] == sum(map(len, truth.values()))
    assert 0 <= g["recall"] <= 1 and "detection recall" in run.summary_line("truth")


def test_workers_read_their_own_copy_or_get_the_bytes(fast_standin, event_dir, tmp_path, processes):
    """The master seeds `--images event` (relative): a worker in the same folder finds it and is granted
    indexes only; a worker in an empty folder has no copy, and the master sends it the bytes (each user
    pauses between uploads, so both workers take a share)."""
    work = tmp_path / "work"
    (work / "event").mkdir(parents=True)
    for f in event_dir.iterdir():
        (work / "event" / f.name).write_bytes(f.read_bytes())
    empty = tmp_path / "empty"
    empty.mkdir()
    port, summary = free_port(), tmp_path / "s.json"
    master = processes.master(
        "-u", "4", "-r", "4", "-H", fast_standin.url, "--images", "event", "--summary-json", str(summary),
        "--upload-pause", "0.3", port=port, workers=2, cwd=work,
    )  # fmt: skip
    near = processes.worker(port, cwd=work)
    # Two workers asking the master for its locustfile (-f -) at the same instant: on a loaded machine one
    # of them once never connected in the 4-wide suite (passes alone every time). One after the other.
    time.sleep(2)
    far = processes.worker(port, cwd=empty)
    code, out = processes.finish(master)
    assert code == 0, out[-3000:]
    (_, near_out), (_, far_out) = processes.finish(near, timeout=30), processes.finish(far, timeout=30)
    assert stored_contents(fast_standin, CODE) == contents(event_dir)
    s = read_json(summary)
    assert s["uploaded"] == PHOTOS and len(s["uploads_per_worker"]) == 2  # both took a share
    assert "reading the images from this machine's copy at event" in near_out, near_out[-2000:]
    assert "no copy of the data set (event) here: the master sends the images' bytes" in far_out, far_out[
        -2000:
    ]
    assert out.count("has no copy of the data set: its grants carry the images' bytes") == 1, out[-3000:]
    assert list(empty.iterdir()) == []


def test_kanta_seed_make_event_is_event_photos(tmp_path, capsys):
    """``kanta-seed make-event ...`` runs the generator, not Locust; ``kanta-seed --help`` names it."""
    from seed.__main__ import main, options_help

    out = tmp_path / "made"
    argv = ["make-event", str(out), "--photos", "2", "--size", "1200x800", "--images", str(YALE_ZIP)]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["event-0001.jpg", "event-0002.jpg", "ground-truth.json"]
    assert "make-event: wrote 2 photos" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["make-event", str(tmp_path / "other")])  # --photos is required: argparse's one line, exit 2
    assert e.value.code == 2
    assert "kanta-seed make-event OUT --photos N" in options_help()
