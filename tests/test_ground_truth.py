"""Matching Kanta's faces (``GET /pics/{uuid}``: bbox {x, y, width, height}, cluster_id) to the known
faces of a generated event, and the scores over the matches; on boxes made up for each case."""

from __future__ import annotations

import pytest

from seed.core.ground_truth import box_of, iou, match, score


def known(subject: str, x: int, y: int, w: int = 100, h: int = 100) -> dict:
    return {"subject": subject, "box": [x, y, w, h], "source": f"yale_png/{subject}/{subject}_normal.png"}


def kanta(x: int, y: int, w: int = 100, h: int = 100, cluster: int = -2, face_id: int = 1) -> dict:
    return {"face_id": face_id, "cluster_id": cluster, "bbox": {"x": x, "y": y, "width": w, "height": h}}


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (10, 0, 10, 10)) == 0.0  # touching
    assert iou((0, 0, 10, 10), (50, 50, 10, 10)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (2, 2, 5, 5)) == pytest.approx(25 / 100)  # inside


def test_boxes_from_kanta_and_from_the_ground_truth() -> None:
    assert box_of(kanta(1, 2, 3, 4)) == (1, 2, 3, 4)
    assert box_of(known("subject01", 1, 2, 3, 4)) == (1, 2, 3, 4)
    assert box_of({"bbox": {"x": 1, "y": 2, "width": 0, "height": 4}}) is None
    assert box_of({"bbox": {"x": 1, "y": 2}}) is None
    assert box_of({"bbox": {"x": "1", "y": 2, "width": 3, "height": 4}}) is None
    assert box_of({"box": [1, 2, True, 4]}) is None
    assert box_of({"face_id": 3}) is None


def test_each_known_face_matches_the_detection_over_it() -> None:
    truth = [known("subject01", 0, 0), known("subject02", 500, 0), known("subject03", 0, 500)]
    # Kanta lists them in its own order, a little off the known boxes, one face missed, one extra.
    detected = [kanta(510, 8, 90, 95), kanta(1000, 1000), kanta(-5, 4, 110, 100)]
    assert match(truth, detected) == [(0, 2), (1, 0)]


def test_below_the_least_overlap_is_no_match() -> None:
    truth = [known("subject01", 0, 0)]
    assert match(truth, [kanta(60, 0)]) == []  # IoU 40/160 = 0.25
    assert match(truth, [kanta(60, 0)], min_iou=0.2) == [(0, 0)]
    assert match(truth, [kanta(40, 0)]) == [(0, 0)]  # IoU 60/140 = 0.43


def test_the_highest_overlap_wins_and_no_face_is_used_twice() -> None:
    truth = [known("subject01", 0, 0), known("subject02", 80, 0)]
    # detection 0 overlaps both known faces; known 1 fits it best, so known 0 takes detection 1.
    detected = [kanta(75, 0), kanta(0, 0, 90, 100)]
    assert match(truth, detected) == [(0, 1), (1, 0)]
    # two detections over one known face: the better one matches, the other is left over
    assert match([known("subject01", 0, 0)], [kanta(20, 0), kanta(5, 0)]) == [(0, 1)]


def test_unusable_boxes_match_nothing() -> None:
    truth = [known("subject01", 0, 0), {"subject": "subject02"}]
    assert match(truth, [{"face_id": 1, "cluster_id": 3}, kanta(0, 0)]) == [(0, 1)]
    assert match([], [kanta(0, 0)]) == []
    assert match(truth, []) == []


def photo(*subjects: str) -> list[dict]:
    """Known faces side by side, 200 px apart."""
    return [known(s, 200 * i, 0) for i, s in enumerate(subjects)]


def test_score_counts_recall_and_clusters() -> None:
    photos = {
        "event-0001.jpg": photo("subject01", "subject02", "subject03"),
        "event-0002.jpg": photo("subject02", "subject01"),
        "event-0003.jpg": photo("subject03", "subject04"),
    }
    detections = {
        # all three found; subjects 01 and 02 in clusters 7 and 8, subject 03 in 9
        "event-0001.jpg": [kanta(0, 0, cluster=7), kanta(200, 0, cluster=8), kanta(400, 0, cluster=9)],
        # both found, but subject 01 lands in subject 02's cluster; an extra face in the background
        "event-0002.jpg": [kanta(0, 0, cluster=8), kanta(200, 0, cluster=8), kanta(900, 900, cluster=5)],
        # subject 03 found but not clustered yet (-2), subject 04 noise (-1)
        "event-0003.jpg": [kanta(2, 2, cluster=-2), kanta(200, 0, cluster=-1)],
        "not-ours.jpg": [kanta(0, 0, cluster=1)],
    }
    result = score(photos, detections)
    assert result["photos"] == 3
    assert result["placed"] == 7
    assert result["found"] == 8
    assert result["matched"] == 7
    assert result["missed"] == 0
    assert result["unmatched_detections"] == 1
    assert result["unknown_photos"] == 1
    assert result["recall"] == 1.0
    assert (result["clustered"], result["noise"], result["unclustered"]) == (5, 1, 1)
    assert (result["clusters"], result["subjects"]) == (3, 3)
    # clusters 7: [01], 8: [02, 02, 01], 9: [03] -> 4 of 5 faces with their cluster's majority subject
    assert result["purity"] == pytest.approx(0.8)
    assert result["ari"] == pytest.approx(0.4 / 1.9)  # (1 - 0.6) / (2.5 - 0.6)


def test_score_recall_counts_faces_not_found() -> None:
    photos = {"a.jpg": photo("subject01", "subject02"), "b.jpg": photo("subject03", "subject04")}
    # b.jpg was never read back: nothing found there; in a.jpg one detection is off every known face
    detections = {"a.jpg": [kanta(0, 0, cluster=0), kanta(100, 500, cluster=0)]}
    result = score(photos, detections)
    assert (result["placed"], result["found"], result["matched"]) == (4, 2, 1)
    assert result["missed"] == 3
    assert result["unmatched_detections"] == 1
    assert result["recall"] == 0.25
    assert result["purity"] == 1.0
    assert result["ari"] == 1.0  # one face: nothing to disagree about


def test_score_perfect_clustering() -> None:
    subjects = ["subject01", "subject02", "subject03"]
    photos = {f"p{i}.jpg": photo(*subjects[i:], *subjects[:i]) for i in range(3)}
    detections = {
        name: [kanta(200 * i, 0, cluster=10 + subjects.index(f["subject"])) for i, f in enumerate(faces)]
        for name, faces in photos.items()
    }
    result = score(photos, detections)
    assert result["recall"] == 1.0
    assert result["purity"] == 1.0
    assert result["ari"] == 1.0


def test_score_without_clusters_or_faces() -> None:
    result = score({"a.jpg": photo("subject01")}, {"a.jpg": [kanta(0, 0, cluster=-2)]})
    assert result["matched"] == 1
    assert result["purity"] is None and result["ari"] is None
    assert result["unclustered"] == 1
    empty = score({}, {})
    assert empty["placed"] == 0 and empty["recall"] is None and empty["purity"] is None
