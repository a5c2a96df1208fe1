"""What was stored where: an append-only JSON-lines file per (host, event), written as things happen.

It lets the same command resume after a crash (even SIGKILL) without uploading twice:
- an image with a recorded uuid is not uploaded again, only verified by read-back;
- an image that was claimed but has no result was in flight when the process died: it may or may
  not have reached the server, so it is in doubt, and the read-back decides by content;
- the images the event held when seeding began (``begin``'s ``pre_existing``) are never adopted,
  moved or deleted, by this run or by any resume of it.

Each line is one fact: {"kind": ..., "member": ..., ...}:
  begin    a run starts: run id, run tag, data set key, events, loops; the first of a chain carries
           pre_existing
  claim    members handed to an owner (a batch)
  result   an attempt's outcome: ok, uuid, status
  release  members handed back: maybe_sent says whether they may have reached the server
  adopt    the event holds this member's bytes under this uuid (found by content)
  lost     this uuid never appeared: the member is sent again
  removed  an extra copy this run deleted
  end      the run ended: complete says whether every image reached its end stage
Lines are flushed one by one, so a kill loses at most the line being written (a torn last line is
ignored on reading). ``--fresh`` starts a new chain: a begin with ``fresh`` true forgets the older lines.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit


def cache_dir() -> Path:
    """The per-user place for ledgers (XDG), so a run's memory does not depend on the working folder."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kanta-seed" / "ledgers"


def default_path(host: str, event_code: str) -> Path:
    parts = urlsplit(host)
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{parts.hostname}_{parts.port or ''}{parts.path}").strip("_")
    return cache_dir() / f"{slug}--{event_code}.jsonl"


@dataclass
class Memory:
    """The ledger folded per member, for the current chain (since the last fresh begin)."""

    runs: int = 0  # begins in this chain
    pre_existing: dict[str, set[str]] = field(default_factory=dict)  # event -> uuids held before seeding
    run_tag: str = ""  # the first run's tag: the names of its --fresh-event pass events
    data_set: str = ""  # the first run's data set key (Plan.data_set_key): what a resume must match
    uuids: dict[str, str] = field(default_factory=dict)  # member -> the uuid that counts
    in_flight: set[str] = field(default_factory=set)  # claimed (or released maybe sent), no outcome
    known_uuids: set[str] = field(default_factory=set)  # every uuid this chain was handed or adopted
    removed: set[str] = field(default_factory=set)
    present: dict[str, str] = field(default_factory=dict)  # member -> the copy the event already held
    complete: bool = False  # the last run ended with every image at its end stage

    @property
    def empty(self) -> bool:
        return self.runs == 0


def read(path: Path) -> Memory:
    mem = Memory()
    if not path.is_file():
        return mem
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
            kind = rec["kind"]
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line from a kill
        if not isinstance(rec, dict):
            continue
        fold(mem, kind, rec)
    return mem


def fold(mem: Memory, kind: str, rec: dict[str, Any]) -> None:
    member = str(rec.get("member", ""))
    if kind == "begin":
        if rec.get("fresh"):
            mem.__init__()  # type: ignore[misc]  # a new chain: forget everything before
        if mem.runs == 0:
            mem.pre_existing = {code: set(uids) for code, uids in (rec.get("pre_existing") or {}).items()}
            mem.run_tag = str(rec.get("tag", ""))
            mem.data_set = str(rec.get("data_set", ""))
        mem.runs += 1
        mem.complete = False
    elif kind == "claim":
        mem.in_flight.update(rec.get("members") or [member])
    elif kind == "release":
        if not rec.get("maybe_sent"):
            mem.in_flight.difference_update(rec.get("members") or [member])
    elif kind == "result":
        if rec.get("ok") and rec.get("uuid"):
            mem.in_flight.discard(member)
            mem.known_uuids.add(rec["uuid"])
            mem.uuids.setdefault(member, rec["uuid"])  # a second 202 is an extra copy, not the upload
        elif rec.get("final") or not rec.get("unknown"):
            mem.in_flight.discard(member)  # answered with a failure: nothing was stored
    elif kind == "present":  # --top-up: already in the event before seeding; counts, never touched
        mem.present[member] = str(rec.get("uuid"))
        mem.in_flight.discard(member)
    elif kind == "adopt":
        mem.in_flight.discard(member)
        mem.known_uuids.add(rec["uuid"])
        mem.uuids[member] = rec["uuid"]
    elif kind == "lost" and mem.uuids.get(member) == rec.get("uuid"):
        del mem.uuids[member]
    elif kind == "removed":
        mem.removed.add(str(rec.get("uuid")))
        if mem.uuids.get(member) == rec.get("uuid"):
            del mem.uuids[member]
    elif kind == "end":
        mem.complete = bool(rec.get("complete"))


def _ends_a_line(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


class Ledger:
    """Appends facts to the file; one line per fact, flushed at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("a", encoding="utf-8")
        if self._file.tell() and not _ends_a_line(path):
            self._file.write("\n")  # after a torn last line, so the next fact is not torn with it

    def write(self, kind: str, member: str = "", **fields: object) -> None:
        if self._file.closed:
            return  # the run has ended; a straggler's fact is in the summary, not here
        line = {"t": round(time.time(), 3), "kind": kind, "member": member, **fields}
        self._file.write(json.dumps(line) + "\n")
        self._file.flush()

    def write_members(self, kind: str, members: Iterable[str], **fields: object) -> None:
        """One line for a batch (claims and releases come in batches)."""
        self.write(kind, "", members=list(members), **fields)

    def close(self) -> None:
        self._file.close()


class ProcessLedger(Ledger):
    """The same facts, kept in this process only: where no file ledger is kept (a --standin run), the
    web UI's next run (NEW) still resumes from what this process's earlier runs did."""

    def __init__(self) -> None:
        self.path = None  # type: ignore[assignment]
        self.memory = Memory()
        self.open = False

    def write(self, kind: str, member: str = "", **fields: object) -> None:
        if kind == "begin":
            self.open = True
        if self.open:
            fold(self.memory, kind, {"kind": kind, "member": member, **fields})
        if kind == "end":
            self.open = False

    def close(self) -> None:
        self.open = False
