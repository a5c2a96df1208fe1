"""Read-back: proof that the server stored each image, and repair of images lost after their 202.

Kanta answers 202 before it stores anything and drops an upload silently when its background job
fails, so only the event's image list proves an upload. After the last upload the verifier pages
through ``GET /pics?event_code=...`` (limit 200, no faster than once a second: each list costs the
server's single event loop about 50 ms at 165 images) until every uuid this run was handed is
listed. An image not listed long after its 202 was lost: it goes back to the queue to be uploaded
again (a repair) and is waited for too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent

from . import kanta
from .work import WorkQueue

log = logging.getLogger("kanta_seed")

PAGE = 200
POLL_S = 1.0
FIRST_LOOK_S = 0.25  # the last uploads' background jobs usually finish within this
LOST_AFTER_MIN_S = 5.0  # never call an image lost sooner than this after its 202


@dataclass
class Readback:
    """What the read-back saw."""

    visible_at: dict[str, float] = field(default_factory=dict)  # uuid -> first time seen listed
    faces: dict[str, int] = field(default_factory=dict)  # uuid -> faces at the last look
    listed: set[str] = field(default_factory=set)  # every uuid in the event at the last look
    polls: int = 0
    timed_out: bool = False


class Verifier:
    """Polls the event's list until every done image's latest uuid is there, repairing lost ones."""

    def __init__(
        self,
        readers: dict[str, Callable[[int], tuple[int, Any]]],
        queue: WorkQueue,
        reopen: Callable[[int], None],
        timeout_s: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = gevent.sleep,
    ) -> None:
        self.readers = readers  # event code -> (offset -> (HTTP status, parsed JSON))
        self.queue = queue
        self.reopen = reopen  # hands an image back to the users for a repair
        self.timeout_s = timeout_s
        self.clock = clock
        self.sleep = sleep
        self.seen = Readback()
        self.answered_at: dict[int, float] = {}  # index -> when its current uuid was handed out

    def list_events(self) -> dict[str, dict] | None:
        """Every image in the run's events (uuid -> item), or None when a list could not be read."""
        items: dict[str, dict] = {}
        for read_page in self.readers.values():
            listed = list_event(read_page)
            if listed is None:
                return None
            items.update(listed)
        return items

    def poll_once(self) -> None:
        listed = self.list_events()
        now = self.clock()
        self.seen.polls += 1
        if listed is None:
            return
        self.seen.listed = set(listed)
        for uid, item in listed.items():
            self.seen.visible_at.setdefault(uid, now)
            self.seen.faces[uid] = int(item.get("faces") or 0)
        # Call an image lost only well after the slowest one that did show up took to appear.
        delays = [
            self.seen.visible_at[e.uuids[-1]] - self.answered_at.get(i, now)
            for i, e in self._done_with_uuid()
            if e.uuids[-1] in self.seen.visible_at
        ]
        lost_after = max(LOST_AFTER_MIN_S, 2 * max(delays, default=0.0))
        for i, e in self._done_with_uuid():
            uid = e.uuids[-1]
            if uid in listed:
                e.verified = True
            elif now - self.answered_at.setdefault(i, now) > lost_after:
                log.warning(
                    "kanta-seed: %s (uuid %s) never showed up on the server: uploading it again",
                    e.member,
                    uid,
                )
                self.answered_at.pop(i, None)
                self.reopen(i)

    def _done_with_uuid(self):
        return [(i, e) for i, e in enumerate(self.queue.entries) if e.state == "done" and e.uuids]

    def note_answer(self, index: int) -> None:
        """A (re-)upload of this image was answered with a uuid just now."""
        self.answered_at[index] = self.clock()

    def finished(self) -> bool:
        return self.queue.complete and all(e.verified for e in self.queue.entries if e.state == "done")

    def run(self) -> Readback:
        """Poll until every done image is verified or the timeout runs out."""
        deadline = self.clock() + self.timeout_s
        self.sleep(FIRST_LOOK_S)
        while True:
            self.poll_once()
            if self.finished():
                return self.seen
            if self.clock() >= deadline:
                self.seen.timed_out = True
                return self.seen
            self.sleep(min(POLL_S, max(0.0, deadline - self.clock())))


def list_event(read_page: Callable[[int], tuple[int, Any]]) -> dict[str, dict] | None:
    """Every image of one event (uuid -> item), paged; None when the list could not be read."""
    items: dict[str, dict] = {}
    offset = 0
    while True:
        status, body = read_page(offset)
        if status in (404, 500) and offset == 0:
            return {}  # Kanta answers 500 (or 404) for an event it does not know: nothing stored
        if status != 200 or not isinstance(body, list):
            return None
        items.update({str(i.get("uuid")): i for i in body if isinstance(i, dict)})
        if len(body) < PAGE:
            return items
        offset += PAGE


def page_reader(client: Any, host: str, event_code: str) -> Callable[[int], tuple[int, Any]]:
    """GET /pics pages through a Locust client, so each read shows in Locust's stats as its own row."""

    def read(offset: int) -> tuple[int, Any]:
        url = kanta.url(host, f"{kanta.PICS_PATH}?event_code={event_code}&limit={PAGE}&offset={offset}")
        with client.get(url, name=kanta.LIST_ROW, catch_response=True) as resp:
            status = int(resp.status_code or 0)
            if status in (200, 404, 500):
                resp.success()  # an unknown event answers 500 on Kanta: a fact, not a failure here
            try:
                return status, resp.json() if status == 200 else None
            except ValueError:
                return status, None

    return read
