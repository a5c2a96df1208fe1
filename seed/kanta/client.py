"""The coordinator's side of Kanta: read the event back, look an image up, remove an extra copy, read a
blob, list clusters. The uploads themselves are the users' (``users.py``).

One client over a small transport: ``locust_transport`` during a run (each read is a row of Locust's
stats: Kanta's reads are not free, and the benchmark should show them) and ``urllib_transport``
before one starts (the checks before the first request, when Locust has no run yet).

A list answer is read strictly: an item without a string uuid or an integer ``faces`` makes the
whole page unreadable (None), never a crash and never a guess.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from seed.core.server_clock import ServerClock, has_fraction, parse_http_date, parse_time
from seed.kanta import contract as kanta

log = logging.getLogger("kanta_seed")
PAGE = 200  # Kanta's largest page
MAX_BLOB_BYTES = 64 * 1024 * 1024
GARBLED = "a list that is not Kanta's (an item without a string uuid or an integer faces)"


@dataclass(frozen=True)
class Answer:
    status: int  # 0 when no answer came
    body: bytes = b""
    error: str = ""
    date: str = ""  # the HTTP Date header: the server's clock, to the second


# (method, url, name for the stats, timeout s[, JSON body]) -> Answer
Transport = Callable[..., Answer]


@dataclass(frozen=True)
class Item:
    """One image of an event, as ``GET /pics`` lists it."""

    uuid: str
    faces: int
    blob_url: str
    last_modified: str
    created_at: str = ""

    @property
    def created(self) -> float | None:
        """When Kanta stored it, on the server's clock (epoch s, to the second)."""
        return parse_time(self.created_at)

    @property
    def faces_written(self) -> float | None:
        """When Kanta wrote its faces, on the server's clock (epoch s, microseconds); None before (Kanta
        rewrites last_modified only when it finds a face, and then with a fraction)."""
        return parse_time(self.last_modified) if self.faces > 0 and has_fraction(self.last_modified) else None


def parse_items(body: Any) -> list[Item] | None:
    """A list page, or None when it is not one (an item that is not what Kanta lists spoils the page)."""
    if not isinstance(body, list):
        return None
    items: list[Item] = []
    for raw in body:
        if not isinstance(raw, dict):
            return None
        uid, faces = raw.get("uuid"), raw.get("faces")
        if not isinstance(uid, str) or not uid or isinstance(faces, bool) or not isinstance(faces, int):
            return None
        blob = raw.get("azure_blob_url")
        blob = blob if isinstance(blob, str) else ""
        items.append(
            Item(uid, faces, blob, str(raw.get("last_modified", "")), str(raw.get("created_at", "") or ""))
        )
    return items


def described(answer: Answer, n: int = 80) -> str:
    """An answer in a few words for a one-line error: its status and the start of its body."""
    if answer.status == 0:
        return f"nothing ({answer.error})" if answer.error else "nothing"
    text = " ".join(answer.body[:400].decode("utf-8", "replace").split())
    shown = text[:n] + ("..." if len(text) > n else "")
    return f"HTTP {answer.status}" + (f" ({shown!r})" if shown else " (empty)")


def json_of(answer: Answer) -> Any:
    try:
        return json.loads(answer.body) if answer.body else None
    except ValueError:
        return None


class KantaClient:
    def __init__(self, host: str, transport: Transport, blob_host: str = "", timeout_s: float = 20.0) -> None:
        self.host = host
        self.transport = transport
        self.blob_host = blob_host  # --blob-host: where blobs are read, whatever their URLs say
        self.timeout_s = timeout_s
        self._netlocs: dict[str, str] = {}  # blob URL netloc -> the netloc that reaches it
        self.blob_note = ""  # said once: where blobs are read from, when not where their URLs say
        self.list_problem = ""  # why the last list could not be read ("" when it could)
        self.clock = ServerClock()  # Kanta's clock against ours, from every answer's Date header
        self.lists = 0  # list requests (pages) made
        self.rows_listed = 0
        self.list_seconds = 0.0  # spent waiting for lists: what the read-back costs Kanta, roughly

    def _get(self, path: str, name: str) -> Answer:
        sent = time.time()
        answer: Answer = self.transport("GET", kanta.url(self.host, path), name, self.timeout_s)
        if answer.date:
            self.clock.observe(sent, time.time(), parse_http_date(answer.date))
        return answer

    # --- the event's images -----------------------------------------------------------------------
    def list_event(self, code: str, created_from: float | None = None) -> dict[str, Item] | None:
        """Every image of one event (uuid -> item), paged; {} for an event Kanta does not know; None when
        a page could not be read.

        created_from: only the images Kanta stored at or after this server time (its ``date_from`` on
        ``created_at``, to the second): a read-back whose cost follows what changed.
        """
        items: dict[str, Item] = {}
        offset = 0
        since = ""
        if created_from is not None:
            stamp = datetime.fromtimestamp(math.floor(created_from), tz=timezone.utc)
            since = "&date_from=" + stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        t0 = time.perf_counter()
        while True:
            path = f"{kanta.PICS_PATH}?event_code={code}&limit={PAGE}&offset={offset}{since}"
            answer = self._get(path, kanta.LIST_ROW)
            self.lists += 1
            self.list_seconds += time.perf_counter() - t0
            t0 = time.perf_counter()
            if answer.status in (404, 500) and offset == 0:
                return {}  # Kanta answers 500 (or 404) for an event it does not know: nothing stored
            page = parse_items(json_of(answer)) if answer.status == 200 else None
            if page is None:
                self.list_problem = (
                    f"no answer ({answer.error})" if answer.status == 0
                    else f"HTTP {answer.status}" if answer.status != 200
                    else GARBLED
                )  # fmt: skip
                return None
            items.update((i.uuid, i) for i in page)
            self.rows_listed += len(page)
            if len(page) < PAGE:
                self.list_problem = ""
                return items
            offset += PAGE

    def image(self, uuid: str) -> tuple[int, int]:
        """GET /pics/{uuid}: (200, faces) stored, (404, 0) not (or not yet), (0, 0) no answer."""
        answer = self._get(f"{kanta.PICS_PATH}/{uuid}", kanta.IMAGE_ROW)
        body = json_of(answer) if answer.status == 200 else None
        image = body.get("image") if isinstance(body, dict) else None
        faces = image.get("faces") if isinstance(image, dict) else None
        if answer.status == 200 and (isinstance(faces, bool) or not isinstance(faces, int)):
            return 0, 0  # an answer that is not Kanta's: as good as none
        return answer.status, faces or 0

    def image_faces(self, uuid: str) -> list[dict[str, Any]] | None:
        """The faces of one image (GET /pics/{uuid}: each with its bbox and cluster_id), or None."""
        answer = self._get(f"{kanta.PICS_PATH}/{uuid}", kanta.IMAGE_ROW)
        body = json_of(answer) if answer.status == 200 else None
        faces = body.get("faces") if isinstance(body, dict) else None
        return [f for f in faces if isinstance(f, dict)] if isinstance(faces, list) else None

    def image_clusters(self, uuid: str) -> list[int] | None:
        """The cluster id of each face of one image (GET /pics/{uuid}), or None when unreadable."""
        answer = self._get(f"{kanta.PICS_PATH}/{uuid}", kanta.IMAGE_ROW)
        body = json_of(answer) if answer.status == 200 else None
        faces = body.get("faces") if isinstance(body, dict) else None
        if not isinstance(faces, list):
            return None
        ids = [f.get("cluster_id") for f in faces if isinstance(f, dict)]
        return [int(c) for c in ids if isinstance(c, int) and not isinstance(c, bool)]

    def delete_image(self, code: str, uuid: str) -> int:
        """DELETE /pics/{code}/{uuid}: 204 removed, 404 already gone."""
        path = f"{kanta.PICS_PATH}/{code}/{uuid}"
        return self.transport("DELETE", kanta.url(self.host, path), kanta.DELETE_ROW, self.timeout_s).status

    def clusters(self, code: str) -> list[dict] | None:
        answer = self._get(f"{kanta.CLUSTERS_PATH}?event_code={code}&sample_size=1", kanta.CLUSTERS_ROW)
        body = json_of(answer) if answer.status == 200 else None
        return [c for c in body if isinstance(c, dict)] if isinstance(body, list) else None

    def health(self) -> Answer:
        return self._get(kanta.HEALTH_PATH, kanta.HEALTH_PATH)

    def not_kanta(self, health: Answer) -> str:
        """Why what answers at the host is not Kanta ("" when it looks like Kanta): its health route
        answers ``{"status": "ok"}`` and its events route ``{"events": [...]}`` (docs/kanta-contract.md)."""
        body = json_of(health) if health.status == 200 else None
        if not (isinstance(body, dict) and body.get("status") == "ok"):
            return f"GET {kanta.HEALTH_PATH} answered {described(health)}"
        events = self._get(f"{kanta.EVENTS_PATH}?event_code=kanta-seed-probe", kanta.EVENT_ROW)
        body = json_of(events) if events.status == 200 else None
        if not (isinstance(body, dict) and isinstance(body.get("events"), list)):
            return f"GET {kanta.EVENTS_PATH} answered {described(events)}"
        return ""

    def delete_event(self, code: str) -> int:
        """DELETE /events {"event_code": code}: 204 removed (with its images), 404 not there, 0 no answer."""
        body = json.dumps({"event_code": code}).encode()
        url = kanta.url(self.host, kanta.EVENTS_PATH)
        return self.transport("DELETE", url, kanta.EVENT_ROW, self.timeout_s, body).status

    # --- blobs ------------------------------------------------------------------------------------
    def blob_digest(self, url: str) -> str | None:
        """sha256 of the bytes at a blob URL, or None when they cannot be read."""
        if not url.startswith(("http://", "https://")):
            return None
        answer = self.transport("GET", self._reachable(url), kanta.BLOB_ROW, self.timeout_s)
        if answer.status != 200:
            return None
        return hashlib.sha256(answer.body).hexdigest()

    def _reachable(self, url: str) -> str:
        """The blob URL, pointed at a host this machine can reach.

        Kanta's docker-compose names its blob store ``azurite``, a name only the compose network
        resolves (its port is published on the host): then the Kanta host's address is tried with the
        same port and path. --blob-host overrides both.
        """
        parts = urlsplit(url)
        netloc = self._netlocs.get(parts.netloc)
        if netloc is None:
            netloc = self._netloc_for(parts)
            self._netlocs[parts.netloc] = netloc
        return urlunsplit(parts._replace(netloc=netloc)) if netloc != parts.netloc else url

    def _netloc_for(self, parts: Any) -> str:
        port = f":{parts.port}" if parts.port else ""
        if self.blob_host:
            netloc = (
                self.blob_host
                if ":" in self.blob_host.rpartition("]")[2]  # a port after the host (or after [IPv6])
                else (self.blob_host + port)
            )
            self.blob_note = f"blobs read from {netloc} (--blob-host) instead of {parts.netloc}"
            return netloc
        try:
            socket.getaddrinfo(parts.hostname, parts.port or 80)
            return parts.netloc
        except (OSError, UnicodeError):
            kanta_host = urlsplit(self.host).hostname or "localhost"
            shown = f"[{kanta_host}]" if ":" in kanta_host else kanta_host
            netloc = shown + port
            self.blob_note = (
                f"blob URLs name {parts.hostname!r}, which does not resolve here: reading them from"
                f" {netloc} (Kanta's host, same port); pass --blob-host HOST[:PORT] to choose"
            )
            log.warning("kanta-seed: %s", self.blob_note)
            return netloc


# --- transports ------------------------------------------------------------------------------------
def urllib_transport(method: str, url: str, name: str, timeout_s: float, body: bytes | None = None) -> Answer:
    """Plain urllib, for the checks before a run (no Locust stats yet)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            return Answer(resp.status, resp.read(MAX_BLOB_BYTES), date=resp.headers.get("Date") or "")
    except urllib.error.HTTPError as e:
        return Answer(e.code, e.read(MAX_BLOB_BYTES))
    except (OSError, ValueError) as e:
        return Answer(0, b"", str(getattr(e, "reason", e)))


def locust_transport(session: Any, expected: tuple[int, ...] = (200, 204, 404, 500)) -> Transport:
    """Through a Locust FastHttpSession: each request is a row of Locust's stats.

    Statuses in ``expected`` are facts the caller reads (a 404 for a uuid not stored yet, a 500 for an
    event Kanta does not know), not failures of the request.
    """

    def send(method: str, url: str, name: str, timeout_s: float, body: bytes | None = None) -> Answer:
        # The session's own network_timeout applies (a keyword here would become a query parameter).
        extra: dict[str, Any] = (
            {"data": body, "headers": {"Content-Type": "application/json"}} if body else {}
        )
        with session.request(method, url, name=name, catch_response=True, **extra) as resp:
            status = int(resp.status_code or 0)
            error = getattr(resp, "error", None)
            if status in expected:
                resp.success()
            elif status == 0:
                resp.failure(f"no answer: {error}")
            date = (resp.headers or {}).get("Date") or "" if status else ""
            return Answer(status, resp.content or b"", str(error or ""), date)

    return send
