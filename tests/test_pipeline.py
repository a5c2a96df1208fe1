"""Kanta's pipeline measured, not only its 202s: the stage times, faces and clusters a run reports agree
with what the Kanta-like stand-in itself recorded (its SQLite rows), and the pipeline checks gate."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import time
import zipfile

from .helpers import YALE_ZIP, read_json, run_locust, stored_contents, yale_contents

CODE = "test-yale-faces"
POLL_S = 1.0  # the read-back's interval: a stage is seen at most this late


def seed(standin, yale_zip, cwd, *extra: str, users: str = "5", timeout: float = 120):
    summary = cwd / "s.json"
    run = run_locust(
        "-u", users, "-r", users, "-H", standin.url, "--images", str(yale_zip),
        "--summary-json", str(summary), *extra, cwd=cwd, timeout=timeout,
    )  # fmt: skip
    return run, (read_json(summary) if summary.exists() else {})


def test_stage_times_and_faces_agree_with_the_stand_ins_records(standin_factory, yale_zip, tmp_path):
    standin = standin_factory()  # the stock-Kanta pipeline: 4 workers, 100 ms detection, pool 15
    run, s = seed(standin, yale_zip, tmp_path)
    assert run.returncode == 0, run.output[-3000:]
    assert stored_contents(standin, CODE) == yale_contents()
    ((first_accepted,),) = standin.rows("SELECT MIN(accepted_at) FROM uploads")
    ((last_stored, last_processed),) = standin.rows("SELECT MAX(stored_at), MAX(processed_at) FROM images")
    p = s["pipeline"]
    latency = s["latency_ms"]["max"] / 1000  # the first 202 came this long after the first upload was sent
    assert abs(p["stored_s"] - (last_stored - first_accepted)) <= POLL_S + latency, p
    assert abs(p["processed_s"] - (last_processed - first_accepted)) <= POLL_S + latency + 0.5, p
    assert p["accepted_s"] <= p["stored_s"] + POLL_S and p["processed_per_s"] > 0 and p["backlog_peak"] > 0
    ((faceless,),) = standin.rows("SELECT COUNT(*) FROM images WHERE faces = 0 AND processed_at IS NOT NULL")
    assert s["faces"]["images_without"] == faceless == len(s["faces"]["faceless"])
    assert s["faces"]["images_with_faces"] == 165 - faceless
    assert s["processed"] == 165 and s["wait_for"] == "faces"


def test_the_pipeline_checks_fail_the_run_and_pass_it(standin_factory, yale_zip, tmp_path):
    standin = standin_factory()
    strict = [
        "--check-min-processed-rate",
        "100000",
        "--check-processed-s",
        "0.01",
        "--check-min-faces-share",
        "1",
    ]
    run, s = seed(standin, yale_zip, tmp_path, *strict, "--event-code", "strict")
    assert run.returncode == 3, run.output[-3000:]
    named = sorted(r.split(":")[0] for r in s["regressions"])
    assert named == ["check-min-faces-share", "check-min-processed-rate", "check-processed-s"]
    loose = [
        "--check-min-processed-rate",
        "0.1",
        "--check-processed-s",
        "600",
        "--check-min-faces-share",
        "0.9",
    ]
    run, s = seed(standin, yale_zip, tmp_path, *loose, "--event-code", "loose")
    assert run.returncode == 0 and s["regressions"] == [], run.output[-3000:]


def subject_by_digest() -> dict[str, int]:
    with zipfile.ZipFile(YALE_ZIP) as zf:
        return {
            hashlib.sha256(zf.read(n)).hexdigest(): int(re.search(r"subject(\d+)", n).group(1))
            for n in zf.namelist()
            if n.endswith(".png")
        }


def cluster_like_kanta(standin, merged: set[int]) -> None:
    """A test double of Kanta's clustering job: writes a cluster id on every face in the database, one
    per subject, except the merged subjects, which share one (as DBSCAN merged 04, 06, 14)."""
    subjects = subject_by_digest()
    for uid, data in standin.images(CODE):
        subject = subjects[hashlib.sha256(data).hexdigest()]
        cluster = min(merged) if subject in merged else subject
        with sqlite3.connect(standin.db) as con:
            con.execute("UPDATE faces SET cluster_id = ? WHERE image_uuid = ?", (cluster, uid))


def test_clusters_are_compared_with_the_subjects(standin_factory, yale_zip, tmp_path):
    standin = standin_factory()

    def job() -> None:  # runs once every image has its faces, as the scheduled job would
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = standin.rows("SELECT COUNT(*) FROM images WHERE processed_at IS NOT NULL")[0][0]
            if done == 165:
                cluster_like_kanta(standin, merged={4, 6, 14})
                return
            time.sleep(0.2)

    clustering = threading.Thread(target=job, daemon=True)
    clustering.start()
    run, s = seed(standin, yale_zip, tmp_path, "--wait-clusters", "30", "--check-min-cluster-purity", "0.5")
    clustering.join(timeout=5)
    assert run.returncode == 0, run.output[-3000:]
    c = s["clusters"]
    assert c["found"] and c["count"] == 13 and c["faces"] == s["faces"]["total"]
    # Three subjects in one cluster: the faces of the two that are not its majority count against purity.
    subjects = subject_by_digest()
    faces_of = dict(standin.rows("SELECT uuid, faces FROM images"))
    per_subject: dict[int, int] = {}
    for uid, data in standin.images(CODE):
        subject = subjects[hashlib.sha256(data).hexdigest()]
        per_subject[subject] = per_subject.get(subject, 0) + faces_of[uid]
    merged = [per_subject[k] for k in (4, 6, 14)]
    expected = (sum(per_subject.values()) - sum(merged) + max(merged)) / sum(per_subject.values())
    assert abs(c["purity"] - expected) < 1e-3 and 0.5 < c["ari"] < 1.0
    assert "clusters   13 clusters" in run.output


def test_no_clusters_is_said_and_does_not_fail_the_run(standin_factory, yale_zip, tmp_path):
    standin = standin_factory("--instant")
    run, s = seed(standin, yale_zip, tmp_path, "--wait-clusters", "2")
    assert run.returncode == 0, run.output[-3000:]
    assert s["clusters"]["found"] is False and "none after waiting 2 s" in s["clusters"]["note"]
