"""The client side of the Kanta contract: paths, the event payload, the event-code rule, upload bodies.

Read from docs/kanta-contract.md; the stand-in reads the same page on its own (see seed/standin).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from ipaddress import ip_address
from urllib.parse import quote, urlsplit

from seed.core.dataset import Image

DEFAULT_HOST = "http://localhost:8000"
DEFAULT_EVENT_CODE = "test-yale-faces"
UPLOAD_FIELD = "image_file"
HEALTH_PATH = "/system/health"
EVENTS_PATH = "/events"
PICS_PATH = "/pics"
CLUSTERS_PATH = "/clusters"
# Rows in Locust's stats: one per request kind, never one per image or event.
EVENT_ROW = "/events"
UPLOAD_ROW = "/pics/[event_code]"
LIST_ROW = "/pics?event_code=[event_code]"
IMAGE_ROW = "/pics/[uuid]"
DELETE_ROW = "DELETE /pics/[event_code]/[uuid]"
CLUSTERS_ROW = "/clusters?event_code=[event_code]"
BLOB_ROW = "blob [event_code]/images/[uuid]"
LOCAL_HOSTNAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})

# What works end to end: the route pattern, the Azure container-name rule and VARCHAR(32) together.
CODE_RULE = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$")
CODE_MIN, CODE_MAX = 3, 32


def event_code_problems(code: str) -> list[str]:
    """Every reason Kanta would break on this event code (all at once), or [] when it works end to end."""
    out: list[str] = []
    if not CODE_MIN <= len(code) <= CODE_MAX:
        out.append(f"is {len(code)} characters long; Kanta needs {CODE_MIN}..{CODE_MAX}")
    if code != code.lower():
        out.append("has upper-case letters; Kanta needs lower case (it is also a blob container name)")
    others = sorted({c for c in code.lower() if not (c.isascii() and (c.isalnum() or c == "-"))})
    if others:
        out.append(
            "has " + ", ".join(repr(c) for c in others) + "; only lowercase letters, digits and hyphens work"
        )
    if "--" in code:
        out.append("has a double hyphen; hyphens must stand alone")
    if code[:1] == "-" or code[-1:] == "-":
        out.append("starts or ends with a hyphen; it must start and end with a letter or digit")
    if not out and not CODE_RULE.fullmatch(code):
        out.append("may only hold lowercase letters, digits and single hyphens, alphanumeric at both ends")
    return out


def event_code_problem(code: str) -> str | None:
    """All the problems of an event code in one sentence, or None."""
    problems = event_code_problems(code)
    return "; ".join(problems) if problems else None


def host_problem(host: str) -> str | None:
    """Why this is not a usable Kanta base URL, or None."""
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an http(s) URL; give one like http://localhost:8000 or http://host:8000/api/v1"
    if parts.query or parts.fragment:
        return "has a query or fragment; give only scheme, host, port and an optional path prefix"
    try:
        port = parts.port  # urlsplit checks the port only when asked
    except ValueError:
        port = 0
    if port == 0:
        return "has a port that is not a number in 1..65535"
    return None


def host_kind(host: str) -> str:
    """'local' for this machine (loopback: a stand-in, or a stack on this machine), else 'remote'."""
    name = (urlsplit(host).hostname or "").lower()
    if name in LOCAL_HOSTNAMES:
        return "local"
    try:
        return "local" if ip_address(name).is_loopback else "remote"
    except ValueError:
        return "remote"


def brief(text: str, n: int = 80) -> str:
    """An answer's body in a few words for a summary row: a server that is not Kanta may answer a page
    of HTML, and a row must stay one line."""
    flat = " ".join(text[:400].split())
    return flat[:n] + ("..." if len(flat) > n else "")


def url(host: str, path: str) -> str:
    """Join the base URL and an API path, keeping a path prefix such as /api/v1."""
    return host.rstrip("/") + path


def upload_path(event_code: str) -> str:
    return f"{PICS_PATH}/{quote(event_code, safe='')}"


def event_payload(code: str, name: str, now: datetime | None = None) -> dict:
    """The POST /events body: a week-long event starting now, as the old seed script made it."""
    start = now or datetime.now(timezone.utc)
    return {
        "event_code": code,
        "name": name,
        "description": "Seeded by kanta-seed (Locust upload benchmark)",
        "start_date_time": start.isoformat(),
        "end_date_time": (start + timedelta(days=7)).isoformat(),
    }


def default_event_name(code: str) -> str:
    return code.replace("-", " ").title()


@dataclass(frozen=True)
class Upload:
    """One image to send. Its multipart body is read and encoded when it is sent, by the process that
    sends it, and dropped after: a plan's uploads carry none. Only a grant to a worker without the data
    set carries one, read by the master as it grants."""

    index: int
    member: str
    event_code: str  # where it goes (with --loops --fresh-event each pass has its own event)
    body: bytes = b""  # the multipart body, when it travels with the upload
    content_type: str = ""  # its header, with the body's boundary


def multipart_boundary() -> str:
    return f"kanta-seed-{uuid.uuid4().hex}"


def content_type_header(boundary: str) -> str:
    return f"multipart/form-data; boundary={boundary}"


def encode_upload(image: Image, data: bytes, boundary: str) -> bytes:
    """The multipart/form-data body of POST /pics/{code}: one file part named image_file, holding
    ``data`` (the image's bytes, read just before)."""
    # Escape what would end the quoted string or the header line (browsers percent-encode CR/LF).
    filename = (
        image.filename.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "%0D").replace("\n", "%0A")
    )
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{UPLOAD_FIELD}"; filename="{filename}"\r\n'
        f"Content-Type: {image.content_type}\r\n\r\n"
    ).encode()
    return b"".join((head, data, f"\r\n--{boundary}--\r\n".encode()))
