"""The end-of-run summary: figures from the queue's results, the terminal text, JSON and Markdown,
and the exit code.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .work import WorkQueue

EXIT_OK = 0
EXIT_NOT_ALL_UPLOADED = 1
EXIT_BAD_INPUT = 2
EXIT_REGRESSION = 3
STEADY_MIN_S = 1.0  # a steady window shorter than this is noise: report the whole-run rate instead
STEADY_MIN_UPLOADS = 20


@dataclass
class RunFacts:
    """What the summary needs besides the queue: the run's parameters and its timeline (wall clock)."""

    event_code: str
    host: str
    data_set: str
    skipped: int
    started_at: float
    finished_at: float
    event: str
    users: int = 0
    users_started: int = 0
    spawn_rate: float = 0.0
    processes: int = 1
    loops: int = 1
    events: list[str] = field(default_factory=list)
    stopped_early: bool = False
    timed: bool = False  # ended by -t/--run-time, as meant
    verify: bool = False
    readback: Any = None
    spawned_at: float | None = None  # every user running (end of the ramp-up)
    drained_at: float | None = None  # the last image claimed (start of the tail)
    usage: dict[str, tuple[float, float]] = field(default_factory=dict)  # process -> (CPU s, peak RSS MB)
    versions: dict[str, str] = field(default_factory=dict)


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def host_kind(host: str) -> str:
    """'local' for loopback (a stand-in or a stack on this machine), else 'remote'."""
    from urllib.parse import urlsplit

    name = (urlsplit(host).hostname or "").lower()
    return "local" if name in ("localhost", "::1") or name.startswith("127.") else "remote"


def summarize(queue: WorkQueue, facts: RunFacts) -> dict[str, Any]:
    """Cluster-wide figures of one run."""
    done = [e for e in queue.entries if e.state == "done"]
    failed = [e for e in queue.entries if e.state == "failed"]
    results = [e.result for e in done if e.result is not None and not e.resumed]
    latencies = sorted(r.latency_ms for r in results)
    # The rate covers the upload phase: repairs come after the read-back's wait and would dilute it.
    first_pass = [e.result for e in done if e.result is not None and not e.resumed and not e.repairs]
    ends = sorted(r.sent_at + r.latency_ms / 1000 for r in first_pass)
    if first_pass:
        first = min(r.sent_at for r in first_pass)
        rate = len(first_pass) / max(ends[-1] - first, 1e-9)
    else:
        rate = 0.0
    steady_rate, window = steady_figures(ends, facts.spawned_at, facts.drained_at)
    per_owner = Counter(e.attempted_by[-1] for e in done if e.attempted_by)
    attempts = sum(e.attempts for e in queue.entries)
    uploads_done = len(results)
    cpu_s = sum(cpu for cpu, _ in facts.usage.values())
    return {
        "event_code": facts.event_code,
        "events": facts.events or [facts.event_code],
        "host": facts.host,
        "host_kind": host_kind(facts.host),
        "data_set": facts.data_set,
        "skipped_members": facts.skipped,
        "event": facts.event,
        "users": facts.users,
        "users_started": facts.users_started,
        "spawn_rate": facts.spawn_rate,
        "processes": facts.processes,
        "loops": facts.loops,
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
        "attempts": attempts,
        "retries": queue.retries,
        "fail_ratio": round(queue.failed_attempts / attempts, 4) if attempts else 0.0,
        "possible_duplicates": [e.member for e in queue.entries if e.maybe_duplicate],
        "rate_per_s": round(rate, 2),
        "steady_rate_per_s": round(steady_rate, 2) if steady_rate is not None else round(rate, 2),
        "steady_window_s": round(window, 3) if window is not None else None,
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 1),
            "p90": round(percentile(latencies, 90), 1),
            "p95": round(percentile(latencies, 95), 1),
            "p99": round(percentile(latencies, 99), 1),
            "max": round(latencies[-1], 1) if latencies else 0.0,
        },
        "wall_s": round(max(0.0, facts.finished_at - facts.started_at), 3),
        "uploads_per_worker": dict(sorted(per_owner.items())),
        "stopped_early": facts.stopped_early,
        "timed": facts.timed,
        "resumed": sum(1 for e in queue.entries if e.resumed),
        "client_cpu_s": round(cpu_s, 3),
        "cpu_s_per_1000_uploads": round(cpu_s / uploads_done * 1000, 3) if uploads_done and cpu_s else None,
        "peak_rss_mb": round(max((rss for _, rss in facts.usage.values()), default=0.0), 1),
        "cpu_s_by_process": {owner: round(cpu, 3) for owner, (cpu, _) in sorted(facts.usage.items())},
        "versions": facts.versions,
        **readback_figures(queue, facts.verify, facts.readback, results),
    }


def steady_figures(
    ends: list[float], spawned_at: float | None, drained_at: float | None
) -> tuple[float | None, float | None]:
    """Uploads/s between the end of the ramp-up and the start of the tail (last claim), if long enough."""
    if not ends or spawned_at is None or drained_at is None or drained_at - spawned_at < STEADY_MIN_S:
        return None, None
    inside = sum(1 for t in ends if spawned_at <= t <= drained_at)
    if inside < STEADY_MIN_UPLOADS:
        return None, None
    return inside / (drained_at - spawned_at), drained_at - spawned_at


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
        # Lost means "looked for and not there": without a read-back (stopped first) nothing is.
        "lost": [e.member for e in queue.entries if e.state == "done" and not e.verified] if readback else [],
        "verify_timed_out": bool(readback and readback.timed_out),
        "drain_s": round(max(visible) - first_sent, 3) if visible and first_sent else None,
        "with_faces": sum(1 for u in latest if readback is not None and readback.faces.get(u, 0) > 0),
        "foreign_images": len(readback.listed - ours) if readback is not None else 0,
        "readback_polls": readback.polls if readback is not None else 0,
    }


def exit_code(summary: dict[str, Any]) -> int:
    """0 only when every image is proven stored (verified), or uploaded when read-back is off.

    A run ended by -t as meant is judged on what it did: no failure and nothing lost. A breached
    check or a regression against the baseline (``summary["regressions"]``) gives 3.
    """
    if summary["timed"]:
        ok = summary["failed"] == 0 and not summary.get("lost")
    else:
        proven = summary["verified"] if summary.get("verify") else summary["uploaded"]
        ok = proven == summary["images"]
    if not ok:
        return EXIT_NOT_ALL_UPLOADED
    return EXIT_REGRESSION if summary.get("regressions") else EXIT_OK


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
        f"  rate       {s['rate_per_s']:.1f} uploads/s with {users_text(s)}, wall {s['wall_s']:.1f} s"
        + (
            f", steady {s['steady_rate_per_s']:.1f}/s over {s['steady_window_s']:.1f} s"
            if s["steady_window_s"]
            else ""
        ),
        f"  latency    p50 {lat['p50']:.0f} ms, p90 {lat['p90']:.0f} ms, p95 {lat['p95']:.0f} ms,"
        f" p99 {lat['p99']:.0f} ms, max {lat['max']:.0f} ms",
    ]
    if s["cpu_s_per_1000_uploads"] is not None:
        lines.append(
            f"  client     {s['cpu_s_per_1000_uploads']:.2f} CPU s per 1000 uploads,"
            f" peak memory {s['peak_rss_mb']:.0f} MB, {s['processes']} process(es)"
        )
    if s.get("verify") and s["readback_polls"]:
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
    if s["timed"]:
        lines.append(f"  timed run: ended by --run-time with {s['uploaded']} of {s['images']} images done")
    elif s["stopped_early"]:
        lines.append("  the run was stopped before every image had a result")
    for message in s.get("regressions", []):
        lines.append(f"  REGRESSION {message}")
    return "\n".join(lines)


def users_text(s: dict[str, Any]) -> str:
    started = s.get("users_started") or s["users"]
    if started >= s["users"]:
        return f"{s['users']} users"
    return f"{s['users']} users ({started} had started when the work ran out; raise -r to ramp up faster)"


def markdown(summary: dict[str, Any]) -> str:
    """A Markdown table of the figures, ready for a CI job summary ($GITHUB_STEP_SUMMARY)."""
    s, lat = summary, summary["latency_ms"]
    verdict = {EXIT_OK: "pass", EXIT_NOT_ALL_UPLOADED: "incomplete", EXIT_REGRESSION: "regression"}
    rows = [
        ("result", verdict.get(exit_code(s), "?")),
        (
            "images",
            f"{s['uploaded']}/{s['images']} uploaded"
            + (f", {s['verified']} verified" if s.get("verify") else ""),
        ),
        ("uploads/s (steady)", f"{s['steady_rate_per_s']:.1f}"),
        ("uploads/s (whole run)", f"{s['rate_per_s']:.1f}"),
        (
            "latency p50 / p90 / p95 / p99 / max",
            " / ".join(f"{lat[k]:.0f} ms" for k in ("p50", "p90", "p95", "p99", "max")),
        ),
        ("failure ratio", f"{s['fail_ratio']:.2%}"),
        ("retries", str(s["retries"])),
        ("drain", f"{s['drain_s']:.1f} s" if s.get("drain_s") is not None else "-"),
        (
            "client CPU per 1000 uploads",
            f"{s['cpu_s_per_1000_uploads']:.2f} s" if s["cpu_s_per_1000_uploads"] else "-",
        ),
        ("peak memory", f"{s['peak_rss_mb']:.0f} MB"),
        (
            "run",
            f"{s['users']} users, spawn rate {s['spawn_rate']:g}, {s['processes']} process(es),"
            f" loops {s['loops']}",
        ),
        ("data set / host", f"{s['data_set']} / {s['host']} ({s['host_kind']})"),
        ("versions", ", ".join(f"{k} {v}" for k, v in s["versions"].items())),
    ]
    lines = ["### kanta-seed", "", "| figure | value |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += [f"| REGRESSION | {m} |" for m in s.get("regressions", [])]
    return "\n".join(lines) + "\n"


def write_text(path: str, text: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def write_json(summary: dict[str, Any], path: str) -> None:
    write_text(path, json.dumps(summary, indent=2) + "\n")
