"""Kanta's detected faces against the known ones of a generated event (``ground-truth.json``).

A known face is ``{"subject": "subject04", "box": [x, y, w, h], ...}`` (seed.core.event_photos). A
detected face is what ``GET /pics/{uuid}`` lists per face: ``{"face_id", "cluster_id", "bbox": {"x",
"y", "width", "height"}}``, ``x``/``y`` its left/top in pixels (docs/kanta-contract.md). They are
matched by box overlap (IoU), greedily, highest overlap first; faces of one photo never overlap, so a
detection overlaps at most one known face in practice. Cluster ids count only when >= 0: -1 is
DBSCAN's noise and -2 "not clustered yet", as everywhere else in kanta-seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from seed.core.face_clusters import adjusted_rand_index, purity

Box = tuple[float, float, float, float]  # x, y, width, height
MIN_IOU = 0.3


def box_of(face: Mapping[str, Any]) -> Box | None:
    """A face's box: Kanta's ``bbox`` {x, y, width, height}, or the ground truth's ``box`` [x, y, w, h];
    None when it has neither in a usable form (no area, not numbers)."""
    raw = face.get("bbox")
    values: Sequence[Any]
    if isinstance(raw, Mapping):
        values = [raw.get(k) for k in ("x", "y", "width", "height")]
    else:
        values = face.get("box") or ()
    if len(values) != 4 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return None
    x, y, w, h = (float(v) for v in values)
    return (x, y, w, h) if w > 0 and h > 0 else None


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes: 1.0 the same box, 0.0 apart or touching."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = min(ax + aw, bx + bw) - max(ax, bx)
    ih = min(ay + ah, by + bh) - max(ay, by)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


def match(
    truth: Sequence[Mapping[str, Any]], detected: Sequence[Mapping[str, Any]], min_iou: float = MIN_IOU
) -> list[tuple[int, int]]:
    """(truth index, detected index) pairs, each face in at most one pair, by IoU >= min_iou, greedily
    from the highest IoU (ties: lower indexes first); sorted by truth index."""
    truth_boxes = [box_of(t) for t in truth]
    found_boxes = [box_of(d) for d in detected]
    pairs = []
    for i, t in enumerate(truth_boxes):
        for j, d in enumerate(found_boxes):
            if t is not None and d is not None:
                overlap = iou(t, d)
                if overlap >= min_iou and overlap > 0:
                    pairs.append((-overlap, i, j))
    pairs.sort()
    used_truth: set[int] = set()
    used_found: set[int] = set()
    matched = []
    for _, i, j in pairs:
        if i not in used_truth and j not in used_found:
            used_truth.add(i)
            used_found.add(j)
            matched.append((i, j))
    return sorted(matched)


def cluster_of(face: Mapping[str, Any]) -> int | None:
    cid = face.get("cluster_id")
    return cid if isinstance(cid, int) and not isinstance(cid, bool) else None


def score(
    photos: Mapping[str, Sequence[Mapping[str, Any]]],
    detections: Mapping[str, Sequence[Mapping[str, Any]]],
    min_iou: float = MIN_IOU,
) -> dict[str, Any]:
    """How Kanta's faces compare with the ground truth, over all the photos.

    ``photos``: file name -> known faces (``ground-truth.json``). ``detections``: file name -> Kanta's
    faces of that photo (``GET /pics/{uuid}`` ``faces``); a photo missing here counts as one where
    nothing was found. Detections of a name the ground truth does not know are counted apart.

    Returns counts (``placed`` known faces, ``found`` detections in known photos, ``matched``,
    ``unmatched_detections``, ``missed`` known faces, ``unknown_photos``), ``recall`` (matched /
    placed: faces found out of faces placed), and over the matched faces whose cluster id is >= 0
    (``clustered``; ``noise`` -1 and ``unclustered`` -2 or missing are counted apart): ``purity`` and
    ``ari`` (adjusted Rand index) of cluster id against subject, None when no matched face is in a
    cluster, and ``clusters`` (how many distinct ids) and ``subjects``.
    """
    placed = found = matched = 0
    labels: list[int] = []
    subjects: list[str] = []
    noise = unclustered = 0
    for name, truth in photos.items():
        detected = detections.get(name, ())
        placed += len(truth)
        found += len(detected)
        for i, j in match(truth, detected, min_iou):
            matched += 1
            cid = cluster_of(detected[j])
            if cid is None or cid <= -2:
                unclustered += 1
            elif cid == -1:
                noise += 1
            else:
                labels.append(cid)
                subjects.append(str(truth[i].get("subject")))
    return {
        "photos": len(photos),
        "placed": placed,
        "found": found,
        "matched": matched,
        "missed": placed - matched,
        "unmatched_detections": found - matched,
        "unknown_photos": sum(1 for name in detections if name not in photos),
        "recall": matched / placed if placed else None,
        "clustered": len(labels),
        "noise": noise,
        "unclustered": unclustered,
        "clusters": len(set(labels)),
        "subjects": len(set(subjects)),
        "purity": purity(labels, subjects) if labels else None,
        "ari": adjusted_rand_index(labels, subjects) if labels else None,
    }
