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
) -> dict[str, Any]:
    """Cluster-wide figures of one run. Times are wall-clock seconds (time.time)."""
    done = [e for e in queue.entries if e.state == "done"]
    failed = [e for e in queue.entries if e.state == "failed"]
    results = [e.result for e in done if e.result is not None]
    latencies = sorted(r.latency_ms for r in results)
    if results:
        first = min(r.sent_at for r in results)
        last = max(r.sent_at + r.latency_ms / 1000 for r in results)
        rate = len(results) / max(last - first, 1e-9)
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
    }


def exit_code(summary: dict[str, Any]) -> int:
    return EXIT_OK if summary["uploaded"] == summary["images"] else EXIT_NOT_ALL_UPLOADED


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
