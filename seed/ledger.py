"""What was stored where: an append-only JSON-lines file per (host, event), written as results arrive.

It lets the same command resume after a crash (even SIGKILL) without uploading twice:
- an image with a recorded uuid is not uploaded again, only verified by read-back;
- an image that was claimed but has no result was in flight when the process died: it may or may
  not have reached the server. It is sent again, and named as a possible duplicate unless the
  read-back shows no image in the event that the ledger does not know.

Each line is one fact: {"kind": "claim" | "result" | "release" | "lost", "member": ..., ...}; a claim
names a batch of members.
Lines are flushed one by one, so a kill loses at most the line being written (a torn last line is
ignored on reading).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

DEFAULT_DIR = Path("data") / "ledgers"


def default_path(host: str, event_code: str) -> Path:
    parts = urlsplit(host)
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{parts.hostname}_{parts.port or ''}{parts.path}").strip("_")
    return DEFAULT_DIR / f"{slug}--{event_code}.jsonl"


@dataclass
class Memory:
    """The ledger folded per member: the latest uuid of each stored image, and what was in flight."""

    uuids: dict[str, str] = field(default_factory=dict)  # member -> latest uuid handed out
    in_flight: set[str] = field(default_factory=set)  # claimed, no result or release after it
    known_uuids: set[str] = field(default_factory=set)  # every uuid this host/event was handed


def read(path: Path) -> Memory:
    mem = Memory()
    if not path.is_file():
        return mem
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
            kind, member = rec["kind"], rec["member"]
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line from a kill
        if kind == "claim":
            mem.in_flight.update(rec.get("members") or [member])
        elif kind == "release":
            mem.in_flight.discard(member)
        elif kind == "result":
            mem.in_flight.discard(member)
            if rec.get("ok") and rec.get("uuid"):
                mem.uuids[member] = rec["uuid"]
                mem.known_uuids.add(rec["uuid"])
        elif kind == "lost" and mem.uuids.get(member) == rec.get("uuid"):
            del mem.uuids[member]
    return mem


class Ledger:
    """Appends facts to the file; one line per fact, flushed at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("a", encoding="utf-8")

    def write(self, kind: str, member: str, **fields: object) -> None:
        self._file.write(
            json.dumps({"t": round(time.time(), 3), "kind": kind, "member": member, **fields}) + "\n"
        )
        self._file.flush()

    def close(self) -> None:
        self._file.close()
