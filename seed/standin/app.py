"""The stand-in's HTTP routes: the subset of Kanta the seeder meets (see docs/kanta-contract.md)."""

from __future__ import annotations

import re
import socket
import struct
import uuid as uuidlib
from datetime import datetime, timedelta, timezone
from typing import Any

import gevent
from flask import Blueprint, Flask, Response, jsonify, request, send_file

from .faults import ERROR, LOSS, RESET_AFTER, RESET_BEFORE, THROTTLE, Faults
from .pipeline import Pipeline
from .store import Store, kanta_time

# Kanta's upload route pattern, and the Azure container-name rule the event code must also meet.
ROUTE_CODE = re.compile(r"^[a-zA-Z0-9_-]+$")
CONTAINER_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$")
DB_CODE_MAX = 32  # VARCHAR(32): a longer code fails the INSERT with a 500
ALLOWED_EXT = {"jpg", "jpeg", "png", "bmp", "gif", "tiff"}
CONTENT_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "bmp": "image/bmp",
    "gif": "image/gif",
    "tiff": "image/tiff",
}
# The only thing the blob route serves: <container>/images/<uuid>.<ext>, as the job writes it.
BLOB_PATH = re.compile(r"[a-z0-9-]{3,63}/images/[0-9a-f]{32}\.(?:" + "|".join(ALLOWED_EXT) + ")")


def validation_error(loc: list, msg: str) -> tuple[Response, int]:
    """FastAPI's 422 body shape."""
    return jsonify({"detail": [{"loc": loc, "msg": msg, "type": "value_error"}]}), 422


# Query values as FastAPI (pydantic v2, lax mode) reads them; each bad one adds a FastAPI error entry.
INT_TEXT = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*(?:\.0*)?")
ISO_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[Tt _]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]{1,6}))?)?"
    r"([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
)
UNIX_TIME = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
UNIX_MS_ABOVE = 2e10  # pydantic: a bigger number is milliseconds
INT64_MAX = 2**63 - 1  # beyond it the database cannot compare: a bad value, not a 500


def query_error(errors: list, name: str, kind: str, msg: str, raw: str, **ctx) -> None:
    entry: dict[str, Any] = {"type": kind, "loc": ["query", name], "msg": msg, "input": raw}
    if ctx:
        entry["ctx"] = ctx
    errors.append(entry)


def query_int(args, name: str, default, errors: list, ge: int | None = None, le: int | None = None):
    raw = args.get(name)
    if raw is None:
        return default
    text = raw.strip()
    if not INT_TEXT.fullmatch(text) or abs(int(text.split(".")[0].replace("_", ""))) > INT64_MAX:
        query_error(
            errors,
            name,
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer",
            raw,
        )
        return default
    value = int(text.split(".")[0].replace("_", ""))
    if ge is not None and value < ge:
        query_error(
            errors, name, "greater_than_equal", f"Input should be greater than or equal to {ge}", raw, ge=ge
        )
    elif le is not None and value > le:
        query_error(
            errors, name, "less_than_equal", f"Input should be less than or equal to {le}", raw, le=le
        )
    return value


def parse_query_datetime(text: str) -> datetime:
    """ISO 8601 (``T``, ``t``, space or ``_`` between date and time; a date alone is midnight) or Unix
    time in seconds (milliseconds above 2e10), as pydantic reads a datetime. No zone means UTC (what the
    timestamps are in). Raises ValueError."""
    m = ISO_DATETIME.fullmatch(text)
    if m:
        year, month, day, hour, minute, second, frac, zone = m.groups()
        micro = int((frac or "0").ljust(6, "0"))
        tz = timezone.utc
        if zone and zone not in "Zz":
            digits = zone[1:].replace(":", "")
            minutes = int(digits[:2]) * 60 + int(digits[2:4] or 0)
            if minutes >= 24 * 60:
                raise ValueError("timezone offset out of range")
            tz = timezone(timedelta(minutes=minutes if zone[0] == "+" else -minutes))
        dt = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro, tz
        )
        return dt.astimezone(timezone.utc)
    if UNIX_TIME.fullmatch(text):
        seconds = float(text)
        if abs(seconds) > UNIX_MS_ABOVE:
            seconds /= 1000
        return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=seconds)
    raise ValueError("input is not an ISO 8601 datetime or a Unix time")


def query_datetime(args, name: str, errors: list) -> datetime | None:
    raw = args.get(name)
    if raw is None:
        return None
    try:
        return parse_query_datetime(raw)
    except (ValueError, OverflowError) as e:
        query_error(
            errors, name, "datetime_from_date_parsing", f"Input should be a valid datetime or date, {e}", raw
        )
        return None


def internal_error() -> Response:
    """An unhandled exception on Kanta: Starlette's plain-text 500, not JSON."""
    return Response("Internal Server Error", status="500 Internal Server Error", mimetype="text/plain")


def container_ok(code: str) -> bool:
    lowered = code.lower()
    return 3 <= len(lowered) <= 63 and bool(CONTAINER_NAME.fullmatch(lowered))


def extension_of(filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return ext if ext in ALLOWED_EXT else "png"


def reset_connection() -> None:
    """Drop the client's TCP connection with an RST, as a crashed proxy or worker would."""
    sock = request.environ.get("standin.socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # close() alone would leave the fd open (the server's file objects hold it): shut it down.
        sock.shutdown(socket.SHUT_RDWR)


def event_info(row: dict) -> dict:
    return {
        "code": row["code"],
        "name": row["name"],
        "description": row["description"],
        "start_date_time": row["start_date_time"],
        "end_date_time": row["end_date_time"],
        "created_at": kanta_time(row["created_at"]),
        "running": True,
        "event_image_url": None,
        "qr_code_image_url": None,
    }


def bbox(face: dict) -> dict:
    return {k: face[k] for k in ("x", "y", "width", "height")}


def create_app(store: Store, faults: Faults, pipeline: Pipeline, base_url: str) -> Flask:
    """The Flask app; ``base_url`` is where the server listens, for the public blob URLs."""
    app = Flask("kanta-standin")
    api = Blueprint("kanta", __name__)

    def blob_url(code: str, uid: str, ext: str) -> str:
        return f"{base_url}/blobs/{code.lower()}/images/{uid}.{ext}"

    def image_item(row: dict) -> dict:
        return {
            "uuid": row["uuid"],
            "azure_blob_url": blob_url(row["event_code"], row["uuid"], row["file_extension"]),
            "file_extension": row["file_extension"],
            "faces": row["faces"],
            "created_at": kanta_time(row["created_at"]),
            "last_modified": kanta_time(row["last_modified"]),
        }

    @app.errorhandler(404)
    def not_found(_e):
        return jsonify({"detail": "Not Found"}), 404  # FastAPI's answer for a path it has no route for

    @app.errorhandler(500)
    def unhandled(_e):
        return internal_error()

    @api.get("/system/health")
    def health():
        return jsonify({"status": "ok"})

    @api.post("/events")
    def create_event():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return validation_error(["body"], "a JSON object is required")
        code = body.get("event_code")
        if not isinstance(code, str) or not 3 <= len(code) <= 63:
            return validation_error(["body", "event_code"], "must be a string of 3..63 characters")
        start, end = body.get("start_date_time"), body.get("end_date_time")
        try:
            if start and end and datetime.fromisoformat(start) >= datetime.fromisoformat(end):
                return validation_error(["body"], "start_date_time must be before end_date_time")
        except (TypeError, ValueError):
            return validation_error(["body"], "dates must be ISO-8601")
        if store.find_event(code) is not None:
            return jsonify({"detail": f"Event with code {code} already exists"}), 400
        if len(code) > DB_CODE_MAX:
            return internal_error()
        event_id = store.create_event(code, body)
        return jsonify({"id": event_id, "code": code, "status": "created; QR generation queued"}), 201

    @api.get("/events")
    def list_events():
        code = request.args.get("event_code")
        rows = store.list_events() if code is None else [r for r in [store.find_event(code)] if r]
        for row in rows:  # each event is loaded with all its images
            pipeline.load_event(row["code"])
        return jsonify({"events": [event_info(r) for r in rows]})

    @api.delete("/events")
    def delete_event():
        body = request.get_json(silent=True) or {}
        if not store.delete_event(str(body.get("event_code", ""))):
            return jsonify({"detail": "Event not found"}), 404
        return Response(status=204)

    @api.post("/pics/<code>")
    def upload(code: str):
        if faults.latency_ms:
            gevent.sleep(faults.latency_ms / 1000)
        if not ROUTE_CODE.fullmatch(code):
            return validation_error(["path", "event_code"], "string does not match the route pattern")
        part = request.files.get("image_file")
        if part is None:
            return validation_error(["body", "image_file"], "Field required")
        if not (part.content_type or "").startswith("image/"):  # literal, as Kanta checks it
            return jsonify({"detail": "Must upload an image"}), 400
        fate = faults.draw()
        if fate == ERROR:
            return jsonify({"detail": "injected failure"}), 503
        if fate == THROTTLE:
            resp = jsonify({"detail": "slow down"})
            resp.headers["Retry-After"] = f"{faults.retry_after_s:g}"
            return resp, 429
        if fate == RESET_BEFORE:
            reset_connection()
            return Response(status=500)
        data = part.read()
        # Kanta creates the event's container before the 202: an invalid container name fails
        # loudly, and so does an upper-cased code of an existing event (observed, docs/kanta-contract.md).
        if not container_ok(code) or (code != code.lower() and store.find_event(code) is not None):
            return internal_error()
        pipeline.handler_cost(code)
        uid = uuidlib.uuid4().hex
        ext = extension_of(part.filename or "")
        pipeline.accept(code, uid, ext, data, lost=fate == LOSS, delay_s=faults.visible_after_s)
        if fate == RESET_AFTER:
            reset_connection()
            return Response(status=500)
        return jsonify({"uuid": uid, "blob_url": "", "faces": 0, "boxes": [], "embeddings": []}), 202

    @api.get("/pics")
    def list_pics():
        args, errors = request.args, []
        code = args.get("event_code", "")
        limit = query_int(args, "limit", 50, errors, ge=1, le=200)
        offset = query_int(args, "offset", 0, errors, ge=0)
        date_from = query_datetime(args, "date_from", errors)  # on created_at, inclusive
        date_to = query_datetime(args, "date_to", errors)  # on created_at, inclusive
        min_faces = query_int(args, "min_faces", None, errors, ge=0)
        max_faces = query_int(args, "max_faces", None, errors, ge=0)
        if errors:  # FastAPI checks the query before the route runs, and names every bad value
            return jsonify({"detail": errors}), 422
        if store.find_event(code) is None:
            return internal_error()  # the real server does not map its not-found error
        pipeline.listing_cost(code, store.count_images(code))
        rows = store.list_images(
            code,
            limit,
            offset,
            date_from=date_from,
            date_to=date_to,
            min_faces=min_faces,
            max_faces=max_faces,
        )
        pipeline.listed(code, len(rows))
        items = [image_item(r) for r in rows]
        if faults.garbled_list:
            items = [{**item, "faces": "n/a"} for item in items]
        return jsonify(items)

    @api.get("/pics/<uid>")
    def get_pic(uid: str):
        row = store.get_image(uid)
        if row is None:
            return jsonify({"detail": "Image not found"}), 404
        faces = [
            {"face_id": f["face_id"], "cluster_id": f["cluster_id"], "bbox": bbox(f)}
            for f in store.faces_of_image(uid)
        ]
        return jsonify({"image": image_item(row), "faces": faces})

    @api.delete("/pics/<code>/<uid>")
    def delete_pic(code: str, uid: str):
        if not store.delete_image(code, uid):
            return jsonify({"detail": "Image not found"}), 404
        return Response(status=204)

    @api.get("/clusters")
    def list_clusters():
        code = request.args.get("event_code", "")
        try:
            sample_size = int(request.args.get("sample_size", 5))
        except ValueError:
            return validation_error(["query", "sample_size"], "must be an integer")
        if not 1 <= sample_size <= 20:
            return validation_error(["query", "sample_size"], "must be in 1..20")
        if store.find_event(code) is None:
            return internal_error()  # same unmapped not-found lookup as GET /pics
        pipeline.load_event(code)
        groups: dict[int, list[dict]] = {}
        for face in store.faces_of_event(code):
            groups.setdefault(face["cluster_id"], []).append(face)
        return jsonify(
            [
                {
                    "cluster_id": cluster_id,
                    "face_count": len(faces),
                    "samples": [
                        {
                            "face_id": f["face_id"],
                            "sample_blob_url": blob_url(code, f["image_uuid"], f["file_extension"]),
                            "sample_bbox": bbox(f),
                        }
                        for f in faces[:sample_size]
                    ],
                }
                for cluster_id, faces in sorted(groups.items())
            ]
        )

    # Kanta answers with and without its /api/v1 root path.
    app.register_blueprint(api)
    app.register_blueprint(api, url_prefix="/api/v1", name="kanta_v1")

    @app.get("/blobs/<path:path>", merge_slashes=False)  # no redirect for //: a plain 404
    def blob(path: str):
        """The public blob container (Azurite for Kanta): exactly the uploaded bytes, nothing else."""
        if not BLOB_PATH.fullmatch(path):
            return Response("Not Found", status=404, mimetype="text/plain")
        root = store.blob_dir.resolve()
        target = (root / path).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return Response("Not Found", status=404, mimetype="text/plain")
        return send_file(target, mimetype=CONTENT_TYPES[target.suffix[1:]], conditional=False, etag=False)

    # Stand-in only: what became of every 202, for tests (Kanta itself has no such route).
    def stats():
        return jsonify(pipeline.stats(request.args.get("event_code")))

    app.add_url_rule("/_standin/stats", "standin_stats", stats)
    app.add_url_rule("/api/v1/_standin/stats", "standin_stats_v1", stats)
    return app
