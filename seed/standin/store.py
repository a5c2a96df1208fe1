"""The stand-in's storage: events, images and faces in SQLite, image bytes as files on disk.

Besides Kanta's own columns it keeps what tests need to see the pipeline: when each image became
listable (``stored_at``) and processed (``processed_at``), and an ``uploads`` table with every 202
and what became of it.

Timestamps: Kanta's ``created_at`` and first ``last_modified`` are the blob's creation time (Azure
gives it to the second); ``last_modified`` is set again, with microseconds, when faces are written.
The rows hold them in one fixed-width UTC form (``2026-12-06T05:27:47.000000Z``) so that text order is
time order; the routes write them as Kanta's pydantic does (``kanta_time``). They are on the server's
clock, which ``clock_offset_s`` can put off; ``stored_at`` / ``processed_at`` / ``uploads`` stay on
the true clock (they are the stand-in's own instruments, not Kanta's).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code TEXT UNIQUE NOT NULL,
    name TEXT, description TEXT,
    start_date_time TEXT, end_date_time TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
    uuid TEXT PRIMARY KEY,
    event_code TEXT NOT NULL,
    file_extension TEXT NOT NULL,
    faces INTEGER NOT NULL DEFAULT 0,
    size INTEGER NOT NULL,
    blob_path TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    stored_at REAL,
    processed_at REAL
);
CREATE INDEX IF NOT EXISTS images_by_event ON images (event_code, last_modified);
CREATE TABLE IF NOT EXISTS faces (
    face_id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_uuid TEXT NOT NULL,
    event_code TEXT NOT NULL,
    cluster_id INTEGER NOT NULL DEFAULT -2,
    x INTEGER NOT NULL, y INTEGER NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_by_event ON faces (event_code, face_id);
CREATE INDEX IF NOT EXISTS faces_by_image ON faces (image_uuid);
CREATE TABLE IF NOT EXISTS uploads (
    uuid TEXT PRIMARY KEY,
    event_code TEXT,
    accepted_at REAL,
    outcome TEXT,
    settled_at REAL
);
"""

STORED = "stored"


NS = 1_000_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def datetime_of_ns(ns: int) -> datetime:
    """An epoch time in nanoseconds as an aware UTC datetime (microseconds, truncated)."""
    return EPOCH + timedelta(microseconds=ns // 1000)


def db_stamp(dt: datetime) -> str:
    """The stored form of a time: UTC, microseconds always written, so text sorts as time does."""
    dt = dt.astimezone(timezone.utc) if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
        f".{dt.microsecond:06d}Z"
    )


def parse_stamp(text: str) -> datetime:
    """A stored (or older ``+00:00``) stamp as an aware UTC datetime; a naive one is taken as UTC."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt.astimezone(timezone.utc) if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def kanta_time(text: str | None) -> str | None:
    """A stored stamp as Kanta's JSON writes an aware UTC datetime (pydantic v2): ``Z``, and the
    fraction only when not zero, trailing zeros cut (``...:47Z``, ``...:47.153556Z``, ``...:47.0554Z``)."""
    if not text:
        return text
    dt = parse_stamp(text)
    out = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
    if dt.microsecond:
        out += f".{dt.microsecond:06d}".rstrip("0")
    return out + "Z"


class Store:
    """SQLite rows plus blob files. One connection, serialised: the server is single-threaded gevent."""

    def __init__(self, db_path: Path, blob_dir: Path, clock_offset_s: float = 0.0) -> None:
        self.blob_dir = blob_dir
        self.offset_ns = round(clock_offset_s * NS)  # the server's clock is this far off the true one
        blob_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        # WAL lets tests read the database while the server writes it; NORMAL still survives a
        # killed process (only an OS crash could lose the last commits) and spares an fsync per row.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """A database written by an older stand-in lacks the timing columns: add them."""
        have = {r["name"] for r in self._db.execute("PRAGMA table_info(images)")}
        for column in ("stored_at", "processed_at"):
            if column not in have:
                self._db.execute(f"ALTER TABLE images ADD COLUMN {column} REAL")
        # Its stamps were isoformat() text (``+00:00``, no fraction when inserted): into the sortable form.
        old = self._db.execute(
            "SELECT uuid, created_at, last_modified FROM images"
            " WHERE created_at NOT LIKE '%Z' OR last_modified NOT LIKE '%Z'"
        ).fetchall()
        self._db.executemany(
            "UPDATE images SET created_at = ?, last_modified = ? WHERE uuid = ?",
            [(db_stamp(parse_stamp(r[1])), db_stamp(parse_stamp(r[2])), r[0]) for r in old],
        )

    # the server's clock ------------------------------------------------------
    def now(self) -> datetime:
        """Now on the server's clock (the true one plus ``clock_offset_s``)."""
        return datetime_of_ns(time.time_ns() + self.offset_ns)

    def forget_unfinished(self) -> int:
        """After a restart the jobs that were running are gone, as on a real server: say so."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE uploads SET outcome = 'lost-restart', settled_at = ? WHERE outcome IS NULL",
                (time.time(),),
            )
            # Stored but never detected: the image stays (faces 0), its upload counts as stored.
            return cur.rowcount

    # events -----------------------------------------------------------------
    def find_event(self, code: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM events WHERE code = ?", (code,)).fetchone()
        return dict(row) if row else None

    def list_events(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._db.execute("SELECT * FROM events ORDER BY id")]

    def create_event(self, code: str, fields: dict) -> int:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO events (code, name, description, start_date_time, end_date_time, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    code,
                    fields.get("name"),
                    fields.get("description"),
                    fields.get("start_date_time"),
                    fields.get("end_date_time"),
                    db_stamp(self.now()),
                ),
            )
            return int(cur.lastrowid or 0)

    def delete_event(self, code: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM events WHERE code = ?", (code,))
            self._db.execute("DELETE FROM images WHERE event_code = ?", (code,))
            self._db.execute("DELETE FROM faces WHERE event_code = ?", (code,))
            return cur.rowcount > 0

    # uploads (the stand-in's own record of every 202) -------------------------
    def record_upload(self, uuid: str, code: str, outcome: str | None = None) -> None:
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO uploads (uuid, event_code, accepted_at, outcome, settled_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (uuid, code, now, outcome, now if outcome else None),
            )

    def settle_upload(self, uuid: str, outcome: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE uploads SET outcome = ?, settled_at = ? WHERE uuid = ?", (outcome, time.time(), uuid)
            )

    def upload_stats(self, code: str | None = None) -> dict:
        where, args = ("WHERE u.event_code = ?", (code,)) if code is not None else ("", ())
        with self._lock:
            rows = self._db.execute(
                "SELECT u.uuid, u.outcome, i.processed_at FROM uploads u"
                f" LEFT JOIN images i ON i.uuid = u.uuid {where} ORDER BY u.accepted_at",
                args,
            ).fetchall()
        outcomes: dict[str, int] = {}
        for r in rows:
            key = r["outcome"] or "in-pipeline"
            outcomes[key] = outcomes.get(key, 0) + 1
        dropped = [r["uuid"] for r in rows if r["outcome"] not in (None, STORED)]
        return {
            "accepted": len(rows),
            "stored": outcomes.get(STORED, 0),
            "processed": sum(1 for r in rows if r["outcome"] == STORED and r["processed_at"] is not None),
            "dropped": len(dropped),
            "dropped_uuids": dropped,
            "outcomes": outcomes,
        }

    # images -----------------------------------------------------------------
    def write_blob(self, code: str, uuid: str, ext: str, data: bytes) -> Path:
        """The blob file; its mtime is the blob's creation time (exactly, on the true clock)."""
        container = self.blob_dir / code.lower() / "images"
        container.mkdir(parents=True, exist_ok=True)
        blob = container / f"{uuid}.{ext}"
        tmp = blob.with_suffix(".part")
        tmp.write_bytes(data)
        created = time.time_ns()
        os.utime(tmp, ns=(created, created))
        os.replace(tmp, blob)
        return blob

    def blob_created(self, blob: Path) -> datetime:
        """The blob's creation time on the server's clock, to the second, as Azure reports it."""
        ns = blob.stat().st_mtime_ns + self.offset_ns
        return datetime_of_ns(ns - ns % NS)

    def insert_image(self, code: str, uuid: str, ext: str, size: int, blob: Path) -> None:
        """The row Kanta inserts: faces 0, created_at = last_modified = the blob's creation time."""
        stamp = db_stamp(self.blob_created(blob))
        with self._lock:
            self._db.execute(
                "INSERT INTO images (uuid, event_code, file_extension, faces, size, blob_path,"
                " created_at, last_modified, stored_at) VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?)",
                (uuid, code, ext, size, str(blob), stamp, stamp, time.time()),
            )

    def store_image(self, code: str, uuid: str, ext: str, data: bytes) -> None:
        self.insert_image(code, uuid, ext, len(data), self.write_blob(code, uuid, ext, data))

    def set_faces(self, uuid: str, boxes: list[tuple[int, int, int, int]]) -> None:
        """Detection done: faces and a fresh last_modified, but only when a face was found (as Kanta:
        writing faces=0 over 0 changes nothing, so no UPDATE and no new last_modified)."""
        done_ns = time.time_ns()
        with self._lock:
            row = self._db.execute("SELECT event_code FROM images WHERE uuid = ?", (uuid,)).fetchone()
            if row is None:  # deleted while it was being detected
                return
            if boxes:
                self._db.execute(
                    "UPDATE images SET faces = ?, last_modified = ?, processed_at = ? WHERE uuid = ?",
                    (len(boxes), db_stamp(datetime_of_ns(done_ns + self.offset_ns)), done_ns / NS, uuid),
                )
                self._db.executemany(
                    "INSERT INTO faces (image_uuid, event_code, x, y, width, height)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [(uuid, row["event_code"], *box) for box in boxes],
                )
            else:
                self._db.execute("UPDATE images SET processed_at = ? WHERE uuid = ?", (done_ns / NS, uuid))

    def count_images(self, code: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM images WHERE event_code = ?", (code,)).fetchone()
        return int(row[0])

    def list_images(
        self,
        code: str,
        limit: int,
        offset: int,
        *,
        date_from: datetime | None = None,
        date_to: datetime | None = None,
        min_faces: int | None = None,
        max_faces: int | None = None,
    ) -> list[dict]:
        """Kanta's list: its filters (dates on created_at, both ends inclusive; face counts inclusive),
        newest last_modified first. No tie-breaker, as on Kanta: equal stamps come in whatever order
        SQLite walks them."""
        where: list[str] = ["event_code = ?"]
        args: list[object] = [code]
        for clause, value in (
            ("created_at >= ?", None if date_from is None else db_stamp(date_from)),
            ("created_at <= ?", None if date_to is None else db_stamp(date_to)),
            ("faces >= ?", min_faces),
            ("faces <= ?", max_faces),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM images WHERE {' AND '.join(where)}"
                " ORDER BY last_modified DESC LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()
        return [dict(r) for r in rows]

    def get_image(self, uuid: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM images WHERE uuid = ?", (uuid,)).fetchone()
        return dict(row) if row else None

    def faces_of_image(self, uuid: str) -> list[dict]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM faces WHERE image_uuid = ? ORDER BY face_id", (uuid,)
            ).fetchall()
        return [dict(r) for r in rows]

    def faces_of_event(self, code: str) -> list[dict]:
        """Every face of the event with its image's row fields needed for a blob URL."""
        with self._lock:
            rows = self._db.execute(
                "SELECT f.*, i.file_extension FROM faces f JOIN images i ON i.uuid = f.image_uuid"
                " WHERE f.event_code = ? ORDER BY f.face_id",
                (code,),
            ).fetchall()
        return [dict(r) for r in rows]

    def delete_image(self, code: str, uuid: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT blob_path FROM images WHERE uuid = ? AND event_code = ?", (uuid, code)
            ).fetchone()
            if not row:
                return False
            self._db.execute("DELETE FROM images WHERE uuid = ?", (uuid,))
            self._db.execute("DELETE FROM faces WHERE image_uuid = ?", (uuid,))
        Path(row["blob_path"]).unlink(missing_ok=True)
        return True
