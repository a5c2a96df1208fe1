"""Everything checked before the first request: data set, event code, host. Nothing half-done.

``prepare`` either returns a ready ``Plan`` (every upload body encoded once) or raises ``BadInput``
with one line that says what is wrong and how to fix it.
"""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

from . import kanta
from .dataset import Dataset, DatasetError, load, synthetic
from .kanta import Upload
from .options import DEFAULT_DATA, Settings

HEALTH_TIMEOUT_S = 5.0
PROJECT_DIR = (
    Path(__file__).resolve().parent.parent
)  # its data/ is the second place the Yale zip is looked for


class BadInput(ValueError):
    """The run cannot start; the message is meant for the user as it is."""


RUN_TAG_LEN = 6


@dataclass(frozen=True)
class Plan:
    settings: Settings
    dataset: Dataset
    uploads: tuple[Upload, ...]  # every upload of the run: loops x images

    @property
    def event_codes(self) -> list[str]:
        return list(dict.fromkeys(u.event_code for u in self.uploads))

    def for_run(self, run_tag: str) -> Plan:
        """The uploads of one run: with --fresh-event each pass goes to an event of this run's own."""
        s = self.settings
        codes = [
            f"{s.event_code}-{run_tag}-{n}" if s.fresh_event else s.event_code for n in range(1, s.loops + 1)
        ]
        images = self.uploads[: len(self.dataset.images)]
        uploads = tuple(
            replace(u, index=p * len(images) + u.index, event_code=code)
            for p, code in enumerate(codes)
            for u in images
        )
        return replace(self, uploads=uploads)


def resolve_data_path(settings: Settings, project_dir: Path) -> Path | None:
    """The data set to load: --images, else data/yale_png.zip (here or beside the project), else None."""
    if settings.images:
        return Path(settings.images).expanduser()
    for candidate in (Path.cwd() / DEFAULT_DATA, project_dir / DEFAULT_DATA):
        if candidate.is_file():
            return candidate
    return None


def load_dataset(settings: Settings, project_dir: Path) -> Dataset:
    path = resolve_data_path(settings, project_dir)
    if path is None:
        if settings.standin:
            return synthetic()
        raise BadInput(
            f"no data set: put yale_png.zip at {DEFAULT_DATA} or pass --images PATH "
            "(or add --standin to try the built-in synthetic set on a local stand-in)"
        )
    try:
        return load(path)
    except DatasetError as e:
        raise BadInput(str(e)) from e


def check_settings(settings: Settings) -> None:
    problem = kanta.event_code_problem(settings.event_code)
    if problem:
        raise BadInput(f"--event-code {settings.event_code!r} {problem}")
    problem = kanta.host_problem(settings.host)
    if problem:
        raise BadInput(f"host {settings.host!r} {problem} (-H/--host)")
    if not 0 <= settings.upload_pause < math.inf:  # also refuses nan
        raise BadInput(f"--upload-pause {settings.upload_pause} is not a number of seconds >= 0")
    if settings.loops < 1:
        raise BadInput(f"--loops {settings.loops} must be at least 1")
    if (
        settings.fresh_event
        and len(settings.event_code) + len(f"-{'f' * RUN_TAG_LEN}-{settings.loops}") > kanta.CODE_MAX
    ):
        raise BadInput(
            f"--event-code {settings.event_code!r} is too long for --fresh-event: the pass events"
            f" <code>-<run>-<pass> must stay within {kanta.CODE_MAX} characters"
        )
    if settings.max_attempts < 1:
        raise BadInput(f"--max-attempts {settings.max_attempts} must be at least 1")
    if not 0 < settings.verify_timeout < math.inf:
        raise BadInput(f"--verify-timeout {settings.verify_timeout} must be a positive number of seconds")


def check_reachable(host: str) -> None:
    """Fail fast when nothing answers at the host; any HTTP answer at all counts as reachable."""
    try:
        with urllib.request.urlopen(kanta.url(host, kanta.HEALTH_PATH), timeout=HEALTH_TIMEOUT_S):
            pass
    except urllib.error.HTTPError:
        pass  # a server answered: good enough here, the event request will say more
    except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise BadInput(
            f"nothing answers at {host} ({reason}); start Kanta there, pass -H URL, or add --standin"
        ) from e


def encode(dataset: Dataset, event_code: str) -> tuple[Upload, ...]:
    """Every multipart body, once: a request does no encoding work (passes share the bytes)."""
    boundary = kanta.multipart_boundary()
    header = kanta.content_type_header(boundary)
    return tuple(
        Upload(i, img.member, kanta.encode_upload(img, boundary), header, event_code)
        for i, img in enumerate(dataset.images)
    )


def prepare(settings: Settings, project_dir: Path = PROJECT_DIR, reach: bool = True) -> Plan:
    """Validate everything, load the data set and encode every upload; raises BadInput."""
    check_settings(settings)
    dataset = load_dataset(settings, project_dir)
    if reach:
        check_reachable(settings.host)
    return Plan(settings, dataset, encode(dataset, settings.event_code))
