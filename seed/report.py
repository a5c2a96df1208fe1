"""The end-of-run summary: figures from the queue's results, the terminal text, JSON, the exit code."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from .work import WorkQueue

EXIT_OK = 0
EXIT_NOT_ALL_UPLOADED = 1
EXIT_BAD_INPUT = 2


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(
    queue: WorkQueue,
    *,
    event_code: str,
    host: str,
    data_set: str,
    skipped: int,
    started_at: float,
    finished_at: float,
    event: str,
    users: int,
    stopped_early: bool,
    verify: bool = False,
    readback: Any = None,
) -> dict[str, Any]:
    """Cluster-wide figures of one run. Times are wall-clock seconds (time.time)."""
    done = [e for e in queue.entries if e.state == "done"]
    failed = [e for e in queue.entries if e.state == "failed"]
    results = [e.result for e in done if e.result is not None and not e.resumed]
    latencies = sorted(r.latency_ms for r in results)
    # The rate covers the upload phase: repairs come after the read-back's wait and would dilute it.
    first_pass = [e.result for e in done if e.result is not None and not e.resumed and not e.repairs]
    if first_pass:
        first = min(r.sent_at for r in first_pass)
        last = max(r.sent_at + r.latency_ms / 1000 for r in first_pass)
        rate = len(first_pass) / max(last - first, 1e-9)
    else:
        rate = 0.0
    per_owner = Counter(e.attempted_by[-1] for e in done if e.attempted_by)
    return {
        "event_code": event_code,
        "host": host,
        "data_set": data_set,
        "skipped_members": skipped,
        "event": event,
        "users": users,
        "images": queue.total,
        "uploaded": len(done),
        "failed": len(failed),
        "failed_images": [
            {
                "member": e.member,
                "status": e.result.status if e.result else 0,
                "error": e.result.error if e.result else "",
            }
            for e in failed
        ],
        "not_attempted": queue.total - len(done) - len(failed),
        "retries": queue.retries,
        "possible_duplicates": [e.member for e in queue.entries if e.maybe_duplicate],
        "rate_per_s": round(rate, 2),
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 1),
            "p95": round(percentile(latencies, 95), 1),
            "p99": round(percentile(latencies, 99), 1),
        },
        "wall_s": round(max(0.0, finished_at - started_at), 3),
        "uploads_per_worker": dict(sorted(per_owner.items())),
        "stopped_early": stopped_early,
        "attempts": sum(e.attempts for e in queue.entries),
        "resumed": sum(1 for e in queue.entries if e.resumed),
        **readback_figures(queue, verify, readback, results),
    }


def readback_figures(queue: WorkQueue, verify: bool, readback: Any, results: list) -> dict[str, Any]:
    """What the read-back proved: verified, repaired, lost (named), drain time, faces, foreign images."""
    if not verify:
        return {"verify": False}
    ours = {u for e in queue.entries for u in e.uuids}
    latest = {e.uuids[-1] for e in queue.entries if e.verified and e.uuids}
    seen = readback.visible_at if readback is not None else {}
    first_sent = min((r.sent_at for r in results if r.sent_at), default=None)
    visible = [seen[u] for u in latest if u in seen]
    return {
        "verify": True,
        "verified": sum(1 for e in queue.entries if e.verified),
        "repaired": sum(e.repairs for e in queue.entries),
        "lost": [e.member for e in queue.entries if e.state == "done" and not e.verified],
        "verify_timed_out": bool(readback and readback.timed_out),
        "drain_s": round(max(visible) - first_sent, 3) if visible and first_sent else None,
        "with_faces": sum(1 for u in latest if readback is not None and readback.faces.get(u, 0) > 0),
        "foreign_images": len(readback.listed - ours) if readback is not None else 0,
        "readback_polls": readback.polls if readback is not None else 0,
    }


def exit_code(summary: dict[str, Any]) -> int:
    """0 only when every image is proven stored (verified), or uploaded when read-back is off."""
    proven = summary["verified"] if summary.get("verify") else summary["uploaded"]
    return EXIT_OK if proven == summary["images"] else EXIT_NOT_ALL_UPLOADED


def render(summary: dict[str, Any]) -> str:
    """The terminal summary; its headline keeps the old script's 'uploaded X/N'."""
    s = summary
    lat = s["latency_ms"]
    lines = [
        "kanta-seed summary",
        f"  event      {s['event_code']} at {s['host']} ({s['event']})",
        f"  data set   {s['data_set']} ({s['images']} images,"
        f" {s['skipped_members']} non-image members skipped)",
        f"  uploaded   {s['uploaded']}/{s['images']}"
        + (f", failed {s['failed']}" if s["failed"] else "")
        + (f", not attempted {s['not_attempted']}" if s["not_attempted"] else "")
        + (f", retries {s['retries']}" if s["retries"] else ""),
        f"  rate       {s['rate_per_s']:.1f} uploads/s with {s['users']} users, wall {s['wall_s']:.1f} s",
        f"  latency    p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms, p99 {lat['p99']:.0f} ms",
    ]
    if s.get("verify"):
        drain = (
            f", all visible {s['drain_s']:.1f} s after the first upload" if s["drain_s"] is not None else ""
        )
        lines.append(
            f"  verified   {s['verified']}/{s['images']} on the server{drain}"
            + (f", repaired {s['repaired']}" if s["repaired"] else "")
            + (f", {s['with_faces']} with faces so far" if s["with_faces"] else "")
            + (f", {s['foreign_images']} other images in the event" if s["foreign_images"] else "")
        )
        if s["lost"]:
            timed = " (read-back timed out)" if s["verify_timed_out"] else ""
            lines.append(f"  LOST{timed}: never showed up on the server: " + ", ".join(s["lost"]))
    if s["resumed"]:
        lines.append(f"  resumed    {s['resumed']} uploaded by an earlier run (ledger), not sent again")
    if len(s["uploads_per_worker"]) > 1:
        lines.append("  per worker " + ", ".join(f"{k}: {v}" for k, v in s["uploads_per_worker"].items()))
    for f in s["failed_images"]:
        lines.append(f"  FAILED     {f['member']}: {f['status'] or 'no answer'} {f['error']}".rstrip())
    if s["possible_duplicates"]:
        lines.append(
            f"  possible duplicates ({len(s['possible_duplicates'])}, sent again after an unknown outcome): "
            + ", ".join(s["possible_duplicates"])
        )
    if s["stopped_early"]:
        lines.append("  the run was stopped before every image had a result")
    return "\n".join(lines)


def write_json(summary: dict[str, Any], path: str) -> None:
    target = Path(path)
    if target.parent != Path(""):
        target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(summary, indent=2) + "\n")
