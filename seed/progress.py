"""One snapshot of a run's progress, for the headless progress line and the web UI's progress tab."""

from __future__ import annotations

import time
from typing import Any

from .session import Session


def snapshot(session: Session) -> dict[str, Any]:
    """Cluster-wide figures of the current (or last) run; all zero before the first run."""
    run = session.run
    queue = session.coordinator.queue if session.coordinator else None
    if run is None or queue is None:
        zeros = dict.fromkeys(("total", "done", "failed", "retrying", "in_flight"), 0)
        return {"state": "idle", **zeros, "rate_per_s": 0.0, "eta_s": None, "verified": None,
                "elapsed_s": 0.0, "summary": None}  # fmt: skip
    done, failed = queue.count("done"), queue.count("failed")
    elapsed = (run.ended_at or time.time()) - run.started_at
    # Like the summary's rate: from the first upload sent, not from the start (event creation).
    sent = [e.result.sent_at for e in queue.entries if e.result is not None and e.result.sent_at]
    uploading = (run.ended_at or time.time()) - min(sent) if sent else 0.0
    rate = done / uploading if uploading > 0 else 0.0
    if run.summary is not None:  # at the end, the summary's figure (it excludes the read-back's wait)
        rate = run.summary["rate_per_s"]
    left = queue.total - done - failed
    return {
        "state": "finished" if run.finished else "running",
        "event_code": run.plan.settings.event_code,
        "total": queue.total,
        "done": done,
        "failed": failed,
        "retrying": queue.count("delayed")
        + sum(1 for e in queue.entries if e.state == "pending" and e.attempts),
        "in_flight": queue.count("claimed"),
        "rate_per_s": round(rate, 2),
        "eta_s": round(left / rate, 1) if rate > 0 and left else (0.0 if not left else None),
        "verified": run.verified,
        "elapsed_s": round(elapsed, 1),
        "summary": run.summary,
    }


def line(snap: dict[str, Any]) -> str:
    """The headless progress line: done/total, failures, rate, ETA."""
    eta = "?" if snap["eta_s"] is None else f"{snap['eta_s']:.0f} s"
    extra = f", {snap['retrying']} retrying" if snap["retrying"] else ""
    verified = f", {snap['verified']} verified" if snap["verified"] is not None else ""
    return (
        f"kanta-seed: {snap['done']}/{snap['total']} uploaded, {snap['failed']} failed{extra}{verified},"
        f" {snap['rate_per_s']:.1f}/s, ETA {eta}"
    )
