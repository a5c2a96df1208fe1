"""kanta-seed's options, declared once: each ``Settings`` field carries its flag, default, help and web-UI
metadata, and ``add_arguments`` registers them all on Locust's parser.

Like Locust's own options (``LOCUST_<NAME>``), each one can also come from an environment variable
``KANTA_SEED_<NAME>`` or from a ``locust.conf`` line, and the start form of the web UI shows it.
"""

from __future__ import annotations

import math
import re
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from seed.coordination.checks import CHECK_BY_NAME, CHECKS
from seed.kanta.contract import DEFAULT_EVENT_CODE, DEFAULT_HOST, default_event_name

DEFAULT_DATA = Path("data") / "yale_png.zip"
ENV_PREFIX = "KANTA_SEED_"
WAIT_STAGES = ("accepted", "stored", "faces")  # --wait-for: where a run may end, in pipeline order
DEFAULT_WEB_HOST = "127.0.0.1"  # kanta-seed's web UI can send load anywhere: loopback unless asked


def option(flag: str, default: Any, help: str, *, web: bool = True, **argparse: Any) -> Any:
    """A Settings field that is also a command-line option (see add_arguments)."""
    return field(default=default, metadata={"flag": flag, "help": help, "web": web, "argparse": argparse})


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


@dataclass(frozen=True)
class Settings:
    """What one run was asked to do: Locust's host plus every kanta-seed option, read once."""

    host: str = DEFAULT_HOST  # Locust's -H (not ours); no -H means Kanta's default
    event_code: str = option(
        "--event-code",
        DEFAULT_EVENT_CODE,
        "Kanta event to seed: 3..32 lowercase letters, digits, single hyphens",
    )
    event_name: str = option("--event-name", "", "Event name shown in Kanta (default: derived from the code)")
    images: str = option(
        "--images",
        "",
        f"A zip or a folder of images (default: {DEFAULT_DATA} in the working folder or the project, when it"
        " exists)",
    )
    bench: bool = option(
        "--bench",
        False,
        "Benchmark instead of seed: every run uploads the whole data set into a new event of its own"
        " (<event-code>-<run id>; one per pass with --loops) and measures it",
    )
    bench_cleanup: bool = option(
        "--bench-cleanup",
        False,
        "With --bench: delete the run's events when it ends (DELETE /events), for a long-lived stack",
    )
    standin: bool = option(
        "--standin",
        False,
        "Start the built-in Kanta stand-in on a free 127.0.0.1 port and seed it (with no data file, a"
        " built-in synthetic set of 165 PNGs)",
        web=False,
    )
    standin_faults: str = option(
        "--standin-faults",
        "",
        'Stand-in flags for --standin, e.g. "--error-rate 0.2", or --standin-faults=--instant for one'
        " flag alone (see python -m seed.standin -h)",
        web=False,
    )
    wait_for: str = option(
        "--wait-for",
        "faces",
        "When the run is done: every image accepted (202), stored (listed by Kanta) or with its faces"
        " detected",
        choices=WAIT_STAGES,
    )
    no_verify: bool = option("--no-verify", False, "Skip the read-back: the same as --wait-for accepted")
    verify_timeout: float = option(
        "--verify-timeout",
        60.0,
        "Seconds the read-back waits with nothing changing on the server before it gives up",
        type=float,
    )
    upload_pause: float = option(
        "--upload-pause",
        0.0,
        "Seconds each user waits between its uploads (the old script's --delay)",
        type=float,
    )
    max_attempts: int = option(
        "--max-attempts", 30, "Tries per image for what is worth retrying (no answer, 5xx, 429)", type=int
    )
    retry_for: float = option(
        "--retry-for",
        60.0,
        "Seconds an image keeps being retried after its first failure (rides through a backend restart)",
        type=float,
    )
    request_timeout: float = option(
        "--request-timeout", 20.0, "Seconds an upload may take before it is cut off and retried", type=float
    )
    max_backlog: int = option(
        "--max-backlog",
        100,
        "Most images accepted by Kanta but not yet processed (its pipeline drops uploads it cannot drain;"
        " also at most what drains in 15 s, starting at 20); 0 = unbounded",
        type=int,
    )
    ledger: str = option(
        "--ledger",
        "",
        "What was stored where, to resume after a crash (default: <host>--<event>.jsonl in"
        " $XDG_CACHE_HOME/kanta-seed/ledgers/, else ~/.cache/kanta-seed/ledgers/, for this machine user)",
    )
    fresh: bool = option(
        "--fresh",
        False,
        "Reset, then seed: remove this data set's copies from the event (by content), then upload every"
        " image",
    )
    allow_existing: bool = option(
        "--allow-existing",
        False,
        "Seed an event that also holds images that are not the data set's (they are left untouched)",
    )
    top_up: bool = option(
        "--top-up",
        False,
        "Upload only what the event lacks, by content (what a seed run always does; kept for old commands)",
    )
    keep_extra_copies: bool = option(
        "--keep-extra-copies", False, "Leave extra copies this run stored by accident (default: remove them)"
    )
    blob_host: str = option(
        "--blob-host",
        "",
        "HOST[:PORT] to read image blobs from, when the blob URLs Kanta lists name a host this machine"
        " cannot reach (default: the URL's own host, else Kanta's host)",
    )
    strict: bool = option("--strict", False, "Refuse a data set with any member skipped (exit 2)")
    summary_json: str = option("--summary-json", "", "Write the end-of-run summary as JSON to this path")
    summary_md: str = option("--summary-md", "", "Write the summary as a Markdown table (a CI job summary)")
    report_html: str = option(
        "--report-html",
        "",
        "Write one self-contained HTML report of the run (progress, stage chart, image grid, summary, checks,"
        " baseline verdict, request statistics, trend), viewable offline",
    )
    history: str = option(
        "--history",
        "",
        "A folder that keeps every run's summary (with its commit, host kind, data set, users, mode);"
        " pass the same folder to --baseline to compare with its last runs",
    )
    junit: str = option(
        "--junit", "", "Write JUnit XML: a testcase per check and per baseline figure (for CI test reports)"
    )
    loops: int = option(
        "--loops",
        1,
        "Upload the data set this many times (a longer benchmark): the event holds it N times",
        type=int,
    )
    fresh_event: bool = option(
        "--fresh-event",
        False,
        "The same as --bench: each run (and each pass of --loops) to a new event of its own",
    )
    # The --check-* limits: one row each in checks.CHECKS (flag, help, validation, evaluation).
    limits: tuple[tuple[str, float], ...] = ()
    baseline: str = option(
        "--baseline",
        "",
        "Summary JSON file(s) or a --history folder to compare with, comma-separated; a regression beyond"
        " the allowance and the noise exits 3",
    )
    max_regression: float = option(
        "--max-regression",
        0.15,
        "Allowed regression against the baseline, as a share (latency also gets a 5 ms floor)",
        type=float,
    )
    force_compare: bool = option(
        "--force-compare",
        False,
        "Compare with a baseline even when the runs differ (data set, users, processes, host kind)",
    )
    wait_clusters: float = option(
        "--wait-clusters",
        0.0,
        "Seconds to wait for Kanta's clustering job to cluster the event's faces (0: do not look)",
        type=float,
    )
    subject_pattern: str = option(
        "--subject-pattern", r"subject(\d+)", "Regex whose first group names an image's subject in its path"
    )

    # --- derived -----------------------------------------------------------------------------------
    @property
    def display_name(self) -> str:
        return self.event_name or default_event_name(self.event_code)

    @property
    def mode(self) -> str:
        """What the run declares as its target: 'seed' (the event ends holding the data set exactly once;
        a rerun converges to that) or 'bench' (a new event per run, always uploading everything)."""
        return "bench" if self.bench or self.fresh_event else "seed"

    @property
    def wait_stage(self) -> str:
        return "accepted" if self.no_verify else self.wait_for

    @property
    def verify(self) -> bool:
        return self.wait_stage != "accepted"

    @property
    def baselines(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.baseline.split(",") if p.strip())

    @property
    def checks(self) -> dict[str, float]:
        """The --check-* limits asked for: name (without check_) -> limit."""
        return dict(self.limits)

    @classmethod
    def from_options(cls, options: Any, host: str | None) -> Settings:
        """Locust's parsed options (or anything with the same attributes) -> Settings.

        A value a field's type cannot take raises ValueError naming the flag.
        """
        values: dict[str, Any] = {"host": (host or "").strip() or DEFAULT_HOST}
        for f in option_fields():
            raw = getattr(options, f.name, f.default)
            values[f.name] = convert(f, raw)
        limits = []
        for check in CHECKS:
            raw = getattr(options, "check_" + check.name, None)
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                continue
            try:
                limits.append((check.name, float(raw)))
            except (TypeError, ValueError):
                raise ValueError(f"{check.flag} {raw!r} is not a valid float") from None
        values["limits"] = tuple(limits)
        return cls(**values)


def option_fields() -> list[Any]:
    return [f for f in fields(Settings) if "flag" in f.metadata]


def convert(f: Any, raw: Any) -> Any:
    """One option's value as its field's type; text comes from the web form, env vars and locust.conf."""
    default = f.default if f.default is not MISSING else None
    if isinstance(default, bool):
        return raw if isinstance(raw, bool) else str(raw).strip().lower() in ("1", "true", "yes", "on")
    if raw is None or (isinstance(raw, str) and raw.strip() == "" and not isinstance(default, str)):
        return default if not isinstance(default, str) else ""
    kind: Any = f.metadata["argparse"].get("type") or type(default)
    if kind is type(None):
        kind = str
    try:
        value = kind(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        raise ValueError(f"{f.metadata['flag']} {raw!r} is not a valid {kind.__name__}") from None
    return value.strip() if isinstance(value, str) else value


def with_default(help_text: str, default: Any) -> str:
    """The help text with its default spelled out, unless it already says it."""
    if "default" in help_text or isinstance(default, bool) or default in (None, ""):
        return help_text
    shown = f"{default:g}" if isinstance(default, float) else str(default)
    return f"{help_text} (default: {shown})"


def add_arguments(parser: Any) -> None:
    """Register every option on Locust's parser (``events.init_command_line_parser``).

    On the parser itself, not an argument group: only Locust's own add_argument marks an option
    for the web UI form. Help texts name their defaults, as ``--help`` shows them.
    """
    for f in option_fields():
        meta = f.metadata
        kwargs: dict[str, Any] = dict(meta["argparse"])
        if isinstance(f.default, bool):
            kwargs["action"] = "store_true"
        kwargs["default"] = f.default
        parser.add_argument(
            meta["flag"],
            help=with_default(meta["help"], f.default),
            env_var=env_name(meta["flag"]),
            include_in_web_ui=meta["web"],
            **kwargs,
        )
    for check in CHECKS:
        parser.add_argument(
            check.flag,
            help=check.help,
            env_var=env_name(check.flag),
            include_in_web_ui=True,
            type=float,
            default=None,
        )
    # Locust's web UI listens on every interface by default and its form starts uploads to any host
    # typed in: kanta-seed keeps it on loopback unless --web-host (or LOCUST_WEB_HOST) says otherwise.
    parser.set_defaults(web_host=DEFAULT_WEB_HOST)


# --- checks of the values, before the first request ---------------------------------------------------
def problems(s: Settings) -> list[str]:
    """Every value that cannot work, one message each (the event code and host are checked elsewhere)."""
    out: list[str] = []

    def number(flag: str, value: float, ok: bool, want: str) -> None:
        if not ok or (isinstance(value, float) and math.isnan(value)):
            out.append(f"{flag} {value:g} {want}")

    number(
        "--upload-pause", s.upload_pause, 0 <= s.upload_pause < math.inf, "is not a number of seconds >= 0"
    )
    number("--max-attempts", s.max_attempts, s.max_attempts >= 1, "must be at least 1")
    number("--retry-for", s.retry_for, 0 <= s.retry_for < math.inf, "must be a number of seconds >= 0")
    number(
        "--request-timeout",
        s.request_timeout,
        0 < s.request_timeout < math.inf,
        "must be a positive number of seconds",
    )
    number(
        "--verify-timeout",
        s.verify_timeout,
        0 < s.verify_timeout < math.inf,
        "must be a positive number of seconds",
    )
    number("--max-backlog", s.max_backlog, s.max_backlog >= 0, "must be 0 (unbounded) or more")
    number("--loops", s.loops, s.loops >= 1, "must be at least 1")
    number("--max-regression", s.max_regression, 0 <= s.max_regression < 1, "must be a share in 0..1")
    number(
        "--wait-clusters",
        s.wait_clusters,
        0 <= s.wait_clusters < math.inf,
        "must be a number of seconds >= 0",
    )
    for name, limit in s.checks.items():
        check = CHECK_BY_NAME[name]
        if check.share:
            number(check.flag, limit, 0 <= limit <= 1, "must be a share in 0..1")
        else:
            number(check.flag, limit, 0 <= limit < math.inf, "must be a number >= 0")
    if s.wait_for not in WAIT_STAGES:
        out.append(f"--wait-for {s.wait_for!r} must be one of {', '.join(WAIT_STAGES)}")
    if s.bench_cleanup and s.mode != "bench":
        out.append(
            "--bench-cleanup deletes a --bench run's own events; add --bench (a seed run keeps its event)"
        )
    if "min_cluster_purity" in s.checks and not s.wait_clusters:
        out.append("--check-min-cluster-purity needs --wait-clusters S (how long to wait for clusters)")
    try:
        pattern = re.compile(s.subject_pattern)
        if pattern.groups < 1:
            out.append(f"--subject-pattern {s.subject_pattern!r} needs a group, e.g. 'subject(\\d+)'")
    except re.error as e:
        out.append(f"--subject-pattern {s.subject_pattern!r} is not a regex ({e})")
    if s.blob_host and not re.fullmatch(
        r"[A-Za-z0-9.-]+(:\d{1,5})?|\[[0-9A-Fa-f:]+\](:\d{1,5})?", s.blob_host
    ):
        out.append(f"--blob-host {s.blob_host!r} is not HOST or HOST:PORT")
    return out
