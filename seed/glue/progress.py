"""A run's progress as plain data: the headless progress line, and what the web UI's Seeding tab draws
(stage counts, the chart's samples, one tile per image). Cluster-wide: it reads the coordinator's
``Run``.
"""

from __future__ import annotations

import re
import time
from typing import Any

from seed.coordination.run import Run
from seed.core.figures import rate
from seed.core.stages import rate_by_size
from seed.core.work import State

TILE_STATES = ("pending", "sending", "retrying", "repaired", "accepted", "stored", "processed", "failed")


def counts(run: Run) -> dict[str, int]:
    q, rb = run.queue, run.readback
    accepted = [i for i, e in enumerate(q.entries) if e.state == State.ACCEPTED]
    return {
        "total": q.total,
        "accepted": len(accepted),
        "stored": sum(1 for i in accepted if rb.stored(i)),
        "processed": sum(1 for i in accepted if rb.processed(i)),
        "failed": q.count(State.FAILED),
        "doubt": q.count(State.DOUBT),
        "retrying": q.count(State.DELAYED)
        + sum(1 for e in q.entries if e.state == State.PENDING and e.attempts),
        "in_flight": q.count(State.CLAIMED),
        "done": sum(1 for i in accepted if run.at_end_stage(i)),
    }


def snapshot(run: Run | None, now: float | None = None) -> dict[str, Any]:
    """Cluster-wide figures of the current (or last) run; zeros before the first run."""
    if run is None:
        zeros = dict.fromkeys(("total", "accepted", "stored", "processed", "failed", "doubt", "retrying"), 0)
        return {"state": "idle", **zeros, "in_flight": 0, "done": 0, "rate_per_s": 0.0, "eta_s": None,
                "elapsed_s": 0.0, "end_stage": "", "outage_s": None, "summary": None}  # fmt: skip
    now = now or time.time()
    end = run.ended_at or now
    c = counts(run)
    # The same window as the summary's rate: 202s per second from the first upload sent to the last
    # 202 (once nothing is left to send), or to now.
    sending = run.queue.waiting or run.queue.count(State.CLAIMED)
    upload_end = end if sending or not run.first_accepts else max(run.first_accepts)
    rate_now = rate(len(run.first_accepts), run.first_sent_at, upload_end)
    done_rate = rate(c["done"] - c_counted_before(run), run.first_sent_at, end)
    left = c["total"] - c["done"] - c["failed"]
    rb = run.readback
    outage = None
    if rb.unreadable and rb.last_good_at is not None and now - rb.last_good_at > 2:
        outage = round(now - rb.last_good_at, 1)
    return {
        "state": "finished" if run.finished else "running",
        "event_code": run.settings.event_code,
        "host": run.settings.host,
        "end_stage": run.settings.wait_stage,
        **c,
        "rate_per_s": round((run.summary.rate_per_s or 0.0) if run.summary else rate_now, 2),
        "eta_s": round(left / done_rate, 1) if done_rate > 0 and left else (0.0 if not left else None),
        "elapsed_s": round(end - run.started_at, 1),
        "outage_s": outage,
        "held_back": run.backlog.held_since is not None,
        "by_size": by_size(run),
        "summary": brief_summary(run),
    }


# The per-image lists are for the JSON file, not for a page polled every 1.5 s.
HEAVY = ("samples", "stage_times")


def brief_summary(run: Run) -> dict[str, Any] | None:
    if run.summary is None:
        return None
    return {k: v for k, v in run.summary.to_dict().items() if k not in HEAVY}


def by_size(run: Run) -> list[list[float]]:
    """Images processed per second against the images in the event, so far (Kanta slows as it grows)."""
    if run.summary is not None:
        return run.summary.pipeline.rate_by_size
    times = [
        s.processed_at
        for s in run.stages.stages.values()
        if s.counted and s.processed_at is not None and not s.faceless
    ]
    return rate_by_size(times, run.stages.held_before)


def c_counted_before(run: Run) -> int:
    """Images at their end stage that this run did not upload (resumed, already there): not a rate."""
    return sum(1 for i, e in enumerate(run.queue.entries) if (e.resumed or e.present) and run.at_end_stage(i))


def line(snap: dict[str, Any], retry_for: float) -> str:
    """The headless progress line: the three stages, failures, rate, ETA (or the outage)."""
    stages = f"accepted {snap['accepted']} / stored {snap['stored']} / processed {snap['processed']}"
    if snap["end_stage"] == "accepted":
        stages = f"accepted {snap['accepted']}"
    extra = "".join(
        f", {snap[k]} {label}" for k, label in (("retrying", "retrying"), ("doubt", "in doubt")) if snap[k]
    )
    if snap["outage_s"] is not None:
        tail = (
            f"Kanta at {snap['host']} not answering for {snap['outage_s']:.0f} s"
            f" (giving up after {retry_for:g} s)"
        )
    else:
        eta = "?" if snap["eta_s"] is None else f"{snap['eta_s']:.0f} s"
        held = ", held back by --max-backlog" if snap.get("held_back") else ""
        tail = f"{snap['rate_per_s']:.1f} uploads/s, ETA {eta}{held}"
        waiting = snap["accepted"] - snap["stored"]
        if snap["end_stage"] != "accepted" and waiting and not snap["in_flight"] and snap["rate_per_s"]:
            tail += f"; {waiting} accepted, not listed by Kanta yet (its pipeline is behind)"
    return f"kanta-seed: {stages} of {snap['total']}, {snap['failed']} failed{extra}; {tail}"


def tile_state(run: Run, index: int) -> str:
    e = run.queue.entries[index]
    if e.state == State.FAILED:
        return "failed"
    if e.state == State.CLAIMED:
        return "sending"
    if e.state in (State.DELAYED, State.DOUBT) or (e.state == State.PENDING and e.attempts and not e.repairs):
        return "retrying"
    if e.state == State.PENDING:
        return "repaired" if e.repairs else "pending"
    if run.readback.processed(index):
        return "processed"
    if run.readback.stored(index):
        return "stored"
    return "accepted"


TILES_SHOWN = 600  # beyond this many images, a tile stands for a run of consecutive images
# a group tile shows the least advanced of its images (what still needs watching)
LEAST_DONE = ("failed", "repaired", "retrying", "pending", "sending", "accepted", "stored", "processed")


def tiles(run: Run, most: int = TILES_SHOWN) -> list[dict[str, Any]]:
    """One tile per image, or, for a data set of thousands, one per run of consecutive images (at most
    ``most`` tiles: a page stays readable and light), each showing its least advanced image."""
    each = image_tiles(run)
    if len(each) <= most:
        return each
    size = -(-len(each) // most)  # ceiling: at most `most` groups
    out = []
    for start in range(0, len(each), size):
        group = each[start : start + size]
        state = min((t["state"] for t in group), key=LEAST_DONE.index)
        first, last = group[0]["image"], group[-1]["image"]
        out.append({
            "image": f"{first} .. {last} ({len(group)} images)",
            "state": state,
            "uuid": "",
            "faces": sum(t["faces"] for t in group),
            "attempts": sum(t["attempts"] for t in group),
            "repairs": sum(t["repairs"] for t in group),
            "error": next((t["error"] for t in group if t["error"]), ""),
            "thumb": "",
            "images": len(group),
        })  # fmt: skip
    return out


def image_tiles(run: Run) -> list[dict[str, Any]]:
    out = []
    for i, e in enumerate(run.queue.entries):
        stage = run.stages.stages.get(i)
        error = ""
        if e.result is not None and not e.result.ok:
            error = f"{e.result.status or 'no answer'} {e.result.error}".strip()
        item = run.readback.listed.get(e.uuid) if e.uuid else None
        out.append(
            {
                "image": e.member,
                "state": tile_state(run, i),
                "uuid": e.uuid,
                "faces": stage.faces if stage is not None and stage.uuid == e.uuid else 0,
                "attempts": e.attempts,
                "repairs": e.repairs,
                "error": error,
                "thumb": item.blob_url if item is not None else "",
            }
        )
    return out


def chart(run: Run, now: float | None = None) -> list[list[float]]:
    """(seconds since the first upload, accepted, stored, processed) at each look and now, counted from
    each image's own stage times (as the summary's figures are), not from what a poll had seen."""
    base = run.first_sent_at or run.started_at
    counted = [s for s in run.stages.stages.values() if s.counted and s.accepted_at is not None]
    looks = [t for t, *_ in run.stages.samples] + [run.ended_at or now or time.time()]
    out = []
    for t in looks:
        out.append([
            round(max(0.0, t - base), 2),
            sum(1 for s in counted if s.accepted_at is not None and s.accepted_at <= t),
            sum(1 for s in counted if s.stored_at is not None and s.stored_at <= t),
            sum(1 for s in counted if s.processed_at is not None and s.processed_at <= t),
        ])  # fmt: skip
    return out


GRID_NAME = re.compile(r"(subject\d+)[_.-]([a-z]+)", re.IGNORECASE)


def grid(run: Run) -> dict[str, Any] | None:
    """Subjects x conditions when every member path names one (the Yale layout), else None (also when the
    tiles stand for groups of images)."""
    if len(run.queue.entries) > TILES_SHOWN:
        return None
    cells: dict[str, list[int]] = {}
    rows: list[str] = []
    cols: list[str] = []
    for e in run.queue.entries:
        found = GRID_NAME.search(e.member.rsplit("/", 1)[-1])
        if not found:
            return None
        subject, condition = found.group(1).lower(), found.group(2).lower()
        if subject not in rows:
            rows.append(subject)
        if condition not in cols:
            cols.append(condition)
        cells[e.member] = [rows.index(subject), cols.index(condition)]
    if len({tuple(v) for v in cells.values()}) != len(cells):
        return None  # several passes (or names) share a cell: a plain grid shows them better
    return {"rows": rows, "cols": cols, "cells": cells}
