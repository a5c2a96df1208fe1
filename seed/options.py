"""kanta-seed's options (in Locust's --help and web UI form) and one frozen view of them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .kanta import DEFAULT_EVENT_CODE, default_event_name

DEFAULT_DATA = Path("data") / "yale_png.zip"


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

    @classmethod
    def from_options(cls, options: Any, host: str) -> Settings:
        code = str(getattr(options, "event_code", DEFAULT_EVENT_CODE) or "").strip()
        return cls(
            host=(host or "").strip(),
            event_code=code,
            event_name=str(getattr(options, "event_name", "") or "").strip() or default_event_name(code),
            images=str(getattr(options, "images", "") or "").strip(),
            standin=bool(getattr(options, "standin", False)),
            summary_json=str(getattr(options, "summary_json", "") or "").strip(),
            upload_pause=float(getattr(options, "upload_pause", 0.0) or 0.0),
        )
