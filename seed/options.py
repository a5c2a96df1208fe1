"""kanta-seed's options (in the web UI form and `kanta-seed --help`) and one frozen view of them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .kanta import DEFAULT_EVENT_CODE, DEFAULT_HOST, default_event_name

DEFAULT_DATA = Path("data") / "yale_png.zip"
CHECKS = ("min_rate", "p50_ms", "p95_ms", "fail_ratio", "drain_s")  # --check-<name with dashes>


def add_arguments(parser: Any) -> None:
    """Register the options on Locust's parser (``events.init_command_line_parser``).

    On the parser itself, not an argument group: only Locust's own add_argument marks an option
    for the web UI form.
    """
    g = parser
    g.add_argument(
        "--event-code",
        default=DEFAULT_EVENT_CODE,
        help="Kanta event to seed: 3..32 lowercase letters, digits and single hyphens",
    )
    g.add_argument(
        "--event-name", default="", help="Event name shown in Kanta (default: derived from the code)"
    )
    g.add_argument(
        "--images",
        default="",
        help=f"A zip or a folder of images (default: {DEFAULT_DATA} when it exists)",
    )
    g.add_argument(
        "--standin",
        action="store_true",
        default=False,
        include_in_web_ui=False,
        help="Start the built-in Kanta stand-in on a free 127.0.0.1 port and seed it "
        "(with no data file, a built-in synthetic set of 165 PNGs)",
    )
    g.add_argument("--summary-json", default="", help="Write the end-of-run summary as JSON to this path")
    g.add_argument(
        "--max-attempts",
        type=int,
        default=5,
        help="Tries per image for what is worth retrying (no answer, 5xx, 429), with backoff",
    )
    g.add_argument(
        "--no-verify",
        action="store_true",
        default=False,
        help="Skip the read-back that proves each image is stored (and repairs images lost after 202)",
    )
    g.add_argument(
        "--verify-timeout",
        type=float,
        default=60.0,
        help="Seconds the read-back may wait for every image to show up on the server",
    )
    g.add_argument(
        "--ledger",
        default="",
        help="Where to record what was stored, to resume after a crash"
        " (default: data/ledgers/<host>--<event>.jsonl)",
    )
    g.add_argument(
        "--fresh",
        action="store_true",
        default=False,
        help="Ignore the ledger: upload every image again, even those an earlier run stored",
    )
    g.add_argument(
        "--standin-faults",
        default="",
        include_in_web_ui=False,
        help='Fault flags for --standin, e.g. "--error-rate 0.2 --loss-rate 0.05"'
        " (see python -m seed.standin -h)",
    )
    g.add_argument(
        "--loops",
        type=int,
        default=1,
        help="Upload the data set this many times (a longer benchmark); to one event unless --fresh-event",
    )
    g.add_argument(
        "--fresh-event",
        action="store_true",
        default=False,
        help="Upload each pass of --loops to a new event of its own (<code>-<run>-<pass>)",
    )
    g.add_argument(
        "--summary-md", default="", help="Write the summary as a Markdown table (for a CI job summary)"
    )
    g.add_argument(
        "--check-min-rate", type=float, default=None, help="Fail (exit 3) below this many uploads/s (steady)"
    )
    g.add_argument(
        "--check-p50-ms",
        type=float,
        default=None,
        help="Fail (exit 3) when the p50 upload latency is above this",
    )
    g.add_argument(
        "--check-p95-ms",
        type=float,
        default=None,
        help="Fail (exit 3) when the p95 upload latency is above this",
    )
    g.add_argument(
        "--check-fail-ratio",
        type=float,
        default=None,
        help="Fail (exit 3) when this share of attempts failed, e.g. 0.01",
    )
    g.add_argument(
        "--check-drain-s",
        type=float,
        default=None,
        help="Fail (exit 3) when images took longer to show up on the server",
    )
    g.add_argument(
        "--baseline",
        default="",
        help="Summary JSON file(s) to compare with, comma-separated (averaged); a regression exits 3",
    )
    g.add_argument(
        "--max-regression",
        type=float,
        default=0.15,
        help="Allowed regression against the baseline, as a share (latency also gets a 5 ms floor)",
    )
    g.add_argument(
        "--force-compare",
        action="store_true",
        default=False,
        help="Compare with a baseline even when the runs differ (data set, users, processes, host kind)",
    )
    g.add_argument(
        "--upload-pause",
        type=float,
        default=0.0,
        help="Seconds each user waits between its uploads (the old script's --delay; default none)",
    )


@dataclass(frozen=True)
class Settings:
    """What one run was asked to do, read once from Locust's parsed options."""

    host: str
    event_code: str
    event_name: str
    images: str
    standin: bool
    summary_json: str
    upload_pause: float
    max_attempts: int = 5
    verify: bool = True
    verify_timeout: float = 60.0
    ledger: str = ""
    fresh: bool = False
    loops: int = 1
    fresh_event: bool = False
    summary_md: str = ""
    checks: tuple[tuple[str, float], ...] = ()  # (name, limit) of each check asked for
    baseline: tuple[str, ...] = ()
    max_regression: float = 0.15
    force_compare: bool = False

    @classmethod
    def from_options(cls, options: Any, host: str) -> Settings:
        code = str(getattr(options, "event_code", DEFAULT_EVENT_CODE) or "").strip()
        return cls(
            # No -H: Kanta's default, as KantaUploader.host tells Locust (environment.host stays None).
            host=(host or "").strip() or DEFAULT_HOST,
            event_code=code,
            event_name=str(getattr(options, "event_name", "") or "").strip() or default_event_name(code),
            images=str(getattr(options, "images", "") or "").strip(),
            standin=bool(getattr(options, "standin", False)),
            summary_json=str(getattr(options, "summary_json", "") or "").strip(),
            upload_pause=float(getattr(options, "upload_pause", 0.0) or 0.0),
            max_attempts=int(getattr(options, "max_attempts", 5)),
            verify=not bool(getattr(options, "no_verify", False)),
            verify_timeout=float(getattr(options, "verify_timeout", 60.0)),
            ledger=str(getattr(options, "ledger", "") or "").strip(),
            fresh=bool(getattr(options, "fresh", False)),
            loops=int(getattr(options, "loops", 1)),
            fresh_event=bool(getattr(options, "fresh_event", False)),
            summary_md=str(getattr(options, "summary_md", "") or "").strip(),
            checks=tuple(
                (name, float(value))
                for name in CHECKS
                if (value := getattr(options, f"check_{name}", None)) not in (None, "")
            ),
            baseline=tuple(
                p.strip() for p in str(getattr(options, "baseline", "") or "").split(",") if p.strip()
            ),
            max_regression=float(getattr(options, "max_regression", 0.15)),
            force_compare=bool(getattr(options, "force_compare", False)),
        )
