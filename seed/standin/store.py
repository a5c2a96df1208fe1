"""The stand-in's storage: events and image rows in SQLite, image bytes as files on disk."""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import datetime, timezone
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
    last_modified TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS images_by_event ON images (event_code, last_modified);
"""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


class Store:
    """SQLite rows plus blob files. One connection, serialised: the server is single-threaded gevent."""

    def __init__(self, db_path: Path, blob_dir: Path) -> None:
        self.blob_dir = blob_dir
        blob_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        # WAL lets tests read the database while the server writes it.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

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
                    now_iso(),
                ),
            )
            return int(cur.lastrowid)

    def delete_event(self, code: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM events WHERE code = ?", (code,))
            self._db.execute("DELETE FROM images WHERE event_code = ?", (code,))
            return cur.rowcount > 0

    # images -----------------------------------------------------------------
    def store_image(self, code: str, uuid: str, ext: str, data: bytes) -> None:
        container = self.blob_dir / code.lower() / "images"
        container.mkdir(parents=True, exist_ok=True)
        blob = container / f"{uuid}.{ext}"
        tmp = blob.with_suffix(".part")
        tmp.write_bytes(data)
        os.replace(tmp, blob)
        stamp = now_iso()
        with self._lock:
            self._db.execute(
                "INSERT INTO images (uuid, event_code, file_extension, faces, size, blob_path,"
                " created_at, last_modified) VALUES (?, ?, ?, 0, ?, ?, ?, ?)",
                (uuid, code, ext, len(data), str(blob), stamp, stamp),
            )

    def set_faces(self, uuid: str, faces: int) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE images SET faces = ?, last_modified = ? WHERE uuid = ?", (faces, now_iso(), uuid)
            )

    def list_images(self, code: str, limit: int, offset: int) -> list[dict]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM images WHERE event_code = ? ORDER BY last_modified DESC, uuid"
                " LIMIT ? OFFSET ?",
                (code, limit, offset),
            ).fetchall()
        return [dict(r) for r in rows]

    def get_image(self, uuid: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM images WHERE uuid = ?", (uuid,)).fetchone()
        return dict(row) if row else None

    def delete_image(self, code: str, uuid: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT blob_path FROM images WHERE uuid = ? AND event_code = ?", (uuid, code)
            ).fetchone()
            if not row:
                return False
            self._db.execute("DELETE FROM images WHERE uuid = ?", (uuid,))
        Path(row["blob_path"]).unlink(missing_ok=True)
        return True
