"""A run's plan as the Locust glue asks for it: every check before the first request, with Locust's own
options (its output paths, -u), and the plan told in the log before the first upload."""

from __future__ import annotations

import logging
from typing import Any

from seed.coordination.options import Settings
from seed.coordination.preflight import BadInput, Plan, prepare
from seed.core.ledger import Memory
from seed.core.words import counted

log = logging.getLogger("kanta_seed")
ZERO_USERS = "-u 0: no user would upload anything; pass -u N (1 or more), e.g. -u 5"
STAGE_WORDS = {"accepted": "accepted", "stored": "stored", "faces": "processed (faces detected)"}


def prepare_plan(
    options: Any, settings: Settings, remembered: Memory, reach: bool = True, users: int | None = None
) -> Plan:
    """The checks before a run, with Locust's own output paths and what this process remembers.

    users: the users the run will start (-u headless, the form's user count in the web UI).
    """
    headless = bool(getattr(options, "headless", False))
    if users is None and headless:
        users = getattr(options, "num_users", None)
    if users == 0:
        raise BadInput(ZERO_USERS)
    outputs: dict[str, tuple[str, tuple[str, ...]]] = {}
    if getattr(options, "csv_prefix", None):
        outputs["--csv"] = (options.csv_prefix, ("_stats.csv", "_failures.csv"))
    if getattr(options, "html_file", None):
        outputs["--html"] = (options.html_file, ("",))
    if getattr(options, "json_file", None):
        outputs["--json-file"] = (options.json_file, (".json",))
    return prepare(
        settings,
        reach=reach,
        locust_outputs=outputs,
        remembered=remembered,
        users=users if headless else None,
    )


def log_plan(plan: Plan) -> None:
    """What is about to be seeded, in one line before the first upload."""
    ds = plan.dataset
    skipped = ""
    if ds.skipped:
        n = len(ds.skipped)
        shown = "; ".join(f"{k.member}: {k.reason}" for k in ds.skipped[:3]) + (" ..." if n > 3 else "")
        skipped = f", {counted(n, 'member')} skipped ({shown})"
    log.info(
        "kanta-seed: %s: %d images (%.1f MB) from %s%s -> %s %s at %s, until every image is %s",
        plan.settings.mode, len(ds.images), ds.total_bytes / 1e6, ds.source, skipped,
        "events" if len(plan.event_codes) > 1 else "event", ", ".join(plan.event_codes),
        plan.settings.host, STAGE_WORDS[plan.settings.wait_stage],
    )  # fmt: skip
    for note in plan.notes:
        log.warning("kanta-seed: %s", note)


def tell_resume(plan: Plan, total: int, done: int, doubt: int) -> None:
    where = f"{plan.settings.event_code} at {plan.settings.host}"
    where += f" (ledger {plan.ledger_path})" if plan.ledger_path else " (remembered by this process)"
    if done == total:
        log.warning(
            "kanta-seed: all %d images were already uploaded to %s by an earlier run; nothing to upload,"
            " verifying they are there (--fresh resets and uploads again; --bench measures a new event)",
            total, where,
        )  # fmt: skip
    elif done or doubt:
        log.info(
            "kanta-seed: resuming %s: %d already uploaded, %d were in flight when it stopped (decided by"
            " what the event holds, not sent blindly)",
            where, done, doubt,
        )  # fmt: skip
