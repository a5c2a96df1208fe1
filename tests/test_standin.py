"""Contract tests for the stand-in backend, read from docs/kanta-contract.md alone.

Plain HTTP through urllib with hand-built multipart bodies, nothing imported from ``seed``: a test
passes only when this reading of the contract and the stand-in's reading agree. Every test looks at
what the server stored (its SQLite rows, its blob files, a read-back), not only at status codes.

With no flags the stand-in models Kanta's pipeline under load (docs/kanta-contract.md): 202 first, then a
DB-pool wait that can drop the image, the row (listed, faces 0), a detection worker, the faces.
Besides Kanta's columns it records ``images.stored_at`` / ``processed_at`` and an ``uploads`` table
(every 202 and its outcome), and answers ``GET /_standin/stats``; tests read those to know when the
pipeline is idle instead of sleeping.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from http.client import HTTPConnection, HTTPException

import pytest

from .helpers import PROJECT, child_env, http

JSON = {"Content-Type": "application/json"}
UUID_HEX = re.compile(r"[0-9a-f]{32}")
IMAGE_ITEM_KEYS = {"uuid", "azure_blob_url", "file_extension", "faces", "created_at", "last_modified"}
EVENT_INFO_KEYS = {
    "code",
    "name",
    "description",
    "start_date_time",
    "end_date_time",
    "created_at",
    "running",
    "event_image_url",
    "qr_code_image_url",
}
CODE = "test-yale-faces"
INTERNAL_ERROR = (500, "Internal Server Error")  # Starlette's plain-text 500, not JSON


# --- small HTTP helpers ----------------------------------------------------------------------


def call(method: str, url: str, payload: object | None = None) -> tuple[int, object]:
    """JSON in, (status, parsed JSON, or the text of a body that is not JSON, or None) out."""
    body = None if payload is None else json.dumps(payload).encode()
    status, raw = http(method, url, body, JSON if body is not None else None)
    if not raw.strip():
        return status, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def raw_request(method: str, url: str, body: bytes | None, headers: dict) -> tuple[int | str, dict, bytes]:
    """(status, headers, body); status is "dropped: <error>" when the connection broke instead."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:  # a real HTTP answer: must be caught before OSError
        return e.code, dict(e.headers), e.read()
    except (OSError, HTTPException) as e:
        return f"dropped: {type(e).__name__}: {e}", {}, b""


def image_bytes(tag: str = "") -> bytes:
    """A PNG signature plus bytes unique to the tag, so a stored blob can be told from any other.

    Deterministic: the stand-in finds faces by content (~2% get none), so a rerun sees the same.
    """
    return b"\x89PNG\r\n\x1a\n" + tag.encode() + hashlib.sha256(tag.encode()).digest() * 8


def multipart(
    data: bytes, filename: str = "face.png", content_type: str = "image/png", field: str = "image_file"
) -> tuple[bytes, dict]:
    boundary = "kanta-standin-test-" + hashlib.sha256(data).hexdigest()[:16]
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def upload(base: str, code: str, data: bytes, **part) -> tuple[int | str, dict, object]:
    """POST /pics/{code}: (status, headers, parsed JSON or None)."""
    body, headers = multipart(data, **part)
    status, hdrs, raw = raw_request("POST", f"{base}/pics/{code}", body, headers)
    try:
        parsed = json.loads(raw) if raw.strip() else None
    except ValueError:
        parsed = raw
    return status, hdrs, parsed


def create_event(base: str, code: str, **fields) -> tuple[int, object]:
    return call("POST", f"{base}/events", {"event_code": code, **fields})


def list_pics(base: str, code: str, **params) -> tuple[int, object]:
    query = urllib.parse.urlencode({"event_code": code, **params})
    return call("GET", f"{base}/pics?{query}")


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02, what: str = "condition"):
    """Poll until ``predicate()`` is truthy; return its value, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last: {value!r})")
        time.sleep(interval)


def listed_uuids(base: str, code: str) -> set[str]:
    status, items = list_pics(base, code, limit=200)
    assert status == 200, items
    return {item["uuid"] for item in items}


def faces_of(base: str, uid: str) -> int | None:
    status, body = call("GET", f"{base}/pics/{uid}")
    return body["image"]["faces"] if status == 200 else None


def stored(server, code: str) -> dict[str, bytes]:
    return dict(server.images(code))


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def standin_stats(server, code: str | None = None) -> dict:
    """The stand-in-only account of every 202: accepted, stored, processed, dropped, in_pipeline."""
    query = "" if code is None else "?" + urllib.parse.urlencode({"event_code": code})
    status, body = call("GET", f"{server.url}/_standin/stats{query}")
    assert status == 200, body
    return body


def settle(server, code: str | None = None, timeout: float = 10.0) -> dict:
    """Wait until no accepted upload is still in the pipeline; the stats at that point."""
    return wait_for(
        lambda: (st := standin_stats(server, code))["in_pipeline"] == 0 and st,
        timeout=timeout,
        interval=0.05,
        what="pipeline idle",
    )


def image_records(server, code: str) -> dict[str, dict]:
    """uuid -> the stand-in's row of the image, with its precise stored_at / processed_at."""
    cols = ("uuid", "faces", "created_at", "last_modified", "stored_at", "processed_at", "blob_path")
    rows = server.rows(f"SELECT {', '.join(cols)} FROM images WHERE event_code = ?", code)
    return {r[0]: dict(zip(cols, r, strict=True)) for r in rows}


def upload_outcomes(server) -> dict[str, str | None]:
    """uuid -> what became of the 202 (None while still in the pipeline)."""
    return dict(server.rows("SELECT uuid, outcome FROM uploads"))


def lower_keys(headers: dict) -> dict:
    return {k.lower(): v for k, v in headers.items()}


def basename(member: str) -> str:
    return member.rsplit("/", 1)[-1]


def yale_members(zip_path) -> list[tuple[str, bytes]]:
    """(member, bytes) of the 165 Yale PNGs, in name order (junk such as .DS_Store left out)."""
    with zipfile.ZipFile(zip_path) as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".png") and not n.startswith("__MACOSX"))
        return [(n, zf.read(n)) for n in names]


@pytest.fixture
def event(standin) -> str:
    status, body = create_event(standin.url, CODE)
    assert status == 201, body
    return CODE


# --- health and the /api/v1 root path ---------------------------------------------------------


def test_health_with_and_without_prefix(standin):
    for prefix in ("", "/api/v1"):
        assert call("GET", f"{standin.url}{prefix}/system/health") == (200, {"status": "ok"}), prefix


def test_routes_answer_under_api_v1_prefix(standin):
    base = standin.url + "/api/v1"
    assert create_event(base, "prefixed")[0] == 201
    data = image_bytes("prefixed")
    status, _, body = upload(base, "prefixed", data)
    assert status == 202, body
    wait_for(lambda: body["uuid"] in listed_uuids(base, "prefixed"), what="listed under /api/v1")
    assert listed_uuids(standin.url, "prefixed") == {body["uuid"]}  # same store without the prefix
    assert stored(standin, "prefixed") == {body["uuid"]: data}


# --- events ----------------------------------------------------------------------------------


def test_create_event_201_then_400_already_exists(standin):
    status, body = create_event(standin.url, "my-event", name="Mine")
    assert status == 201, body
    assert set(body) == {"id", "code", "status"}
    assert isinstance(body["id"], int) and not isinstance(body["id"], bool)
    assert body["code"] == "my-event"
    assert body["status"] == "created; QR generation queued"
    assert standin.events() == ["my-event"]

    status, body = create_event(standin.url, "my-event", name="Again")
    assert (status, body) == (400, {"detail": "Event with code my-event already exists"})
    assert standin.events() == ["my-event"]
    assert standin.rows("SELECT name FROM events") == [("Mine",)]  # the first one was kept


BAD_EVENT_BODIES = {
    "missing-code": {"name": "no code"},
    "code-2-chars": {"event_code": "ab"},
    "code-empty": {"event_code": ""},
    "code-64-chars": {"event_code": "x" * 64},
    "start-equals-end": {
        "event_code": "same-time",
        "start_date_time": "2024-05-01T10:00:00",
        "end_date_time": "2024-05-01T10:00:00",
    },
    "start-after-end": {
        "event_code": "backwards",
        "start_date_time": "2024-05-02T10:00:00",
        "end_date_time": "2024-05-01T10:00:00",
    },
}


def test_create_event_bad_body_422(standin):
    for case, payload in BAD_EVENT_BODIES.items():
        status, body = call("POST", f"{standin.url}/events", payload)
        assert status == 422, (case, body)
        assert isinstance(body, dict) and isinstance(body.get("detail"), list) and body["detail"], case
    assert standin.events() == []


def test_event_code_longer_than_db_column_500(standin):
    ok = "c" * 32
    assert create_event(standin.url, ok)[0] == 201  # VARCHAR(32) holds 32
    for n in (33, 36, 63):
        status, body = create_event(standin.url, "d" * n)
        assert status == 500, (n, body)
    assert standin.events() == [ok]


def test_get_events_lists_event_info(standin):
    fields = {
        "name": "Yale faces",
        "description": "seeded",
        "start_date_time": "2024-05-01T10:00:00",
        "end_date_time": "2024-05-01T18:00:00",
    }
    assert create_event(standin.url, "listed", **fields)[0] == 201
    assert create_event(standin.url, "other")[0] == 201

    status, body = call("GET", f"{standin.url}/events?event_code=listed")
    assert status == 200, body
    assert set(body) == {"events"} and len(body["events"]) == 1
    info = body["events"][0]
    assert set(info) == EVENT_INFO_KEYS
    assert info["code"] == "listed"
    assert (info["name"], info["description"]) == ("Yale faces", "seeded")
    assert parse_time(info["start_date_time"]) == datetime(2024, 5, 1, 10)
    assert parse_time(info["end_date_time"]) == datetime(2024, 5, 1, 18)
    parse_time(info["created_at"])

    assert call("GET", f"{standin.url}/events?event_code=nope") == (200, {"events": []})


def test_delete_event_204_then_404(standin):
    assert create_event(standin.url, "doomed")[0] == 201
    assert create_event(standin.url, "kept")[0] == 201
    status, _ = call("DELETE", f"{standin.url}/events", {"event_code": "doomed"})
    assert status == 204
    assert standin.events() == ["kept"]
    assert call("GET", f"{standin.url}/events?event_code=doomed") == (200, {"events": []})
    status, _ = call("DELETE", f"{standin.url}/events", {"event_code": "doomed"})
    assert status == 404
    status, _ = call("DELETE", f"{standin.url}/events", {"event_code": "never-was"})
    assert status == 404
    assert standin.events() == ["kept"]


# --- uploads ---------------------------------------------------------------------------------


def test_upload_202_then_listed_and_stored(standin, event):
    data = image_bytes("one")
    t0 = time.monotonic()
    status, _, body = upload(standin.url, event, data, filename="subject01_happy.png")
    assert status == 202, body
    assert set(body) == {"uuid", "blob_url", "faces", "boxes", "embeddings"}
    assert UUID_HEX.fullmatch(body["uuid"]), body
    assert (body["blob_url"], body["faces"], body["boxes"], body["embeddings"]) == ("", 0, [], [])
    uid = body["uuid"]

    wait_for(lambda: uid in listed_uuids(standin.url, event), what="image listed")
    assert time.monotonic() - t0 < 5
    _, items = list_pics(standin.url, event)
    assert len(items) == 1
    item = items[0]
    assert set(item) == IMAGE_ITEM_KEYS
    assert item["uuid"] == uid and item["file_extension"] == "png" and item["faces"] in (0, 1)
    parse_time(item["created_at"])
    parse_time(item["last_modified"])

    assert stored(standin, event) == {uid: data}
    (blob_path,) = standin.rows("SELECT blob_path FROM images WHERE uuid = ?", uid)[0]
    assert blob_path.replace(os.sep, "/").endswith(f"images/{uid}.png")


def test_file_extension_from_filename(standin, event):
    expected = {"a.png": "png", "b.gif": "gif", "c.weird": "png"}
    uuids = {}
    for filename in expected:
        status, _, body = upload(standin.url, event, image_bytes(filename), filename=filename)
        assert status == 202, body
        uuids[body["uuid"]] = filename
    wait_for(lambda: listed_uuids(standin.url, event) == set(uuids), what="all three listed")
    _, items = list_pics(standin.url, event)
    got = {uuids[item["uuid"]]: item["file_extension"] for item in items}
    assert got == expected
    paths = dict(standin.rows("SELECT uuid, blob_path FROM images"))
    for uid, filename in uuids.items():
        assert paths[uid].endswith(f"{uid}.{expected[filename]}")


def test_same_file_twice_stores_two_images(standin, event):
    data = image_bytes("twice")
    first = upload(standin.url, event, data)
    second = upload(standin.url, event, data)
    assert first[0] == second[0] == 202
    assert first[2]["uuid"] != second[2]["uuid"]
    wait_for(lambda: len(stored(standin, event)) == 2, what="two stored")
    assert stored(standin, event) == {first[2]["uuid"]: data, second[2]["uuid"]: data}


def test_upload_non_image_400(standin, event):
    for content_type in ("text/plain", "application/octet-stream"):
        status, _, body = upload(standin.url, event, image_bytes(), content_type=content_type)
        assert (status, body) == (400, {"detail": "Must upload an image"}), content_type
    assert settle(standin)["accepted"] == 0  # no 202, so no background job either
    assert standin.rows("SELECT count(*) FROM images") == [(0,)]


def test_upload_missing_field_422(standin, event):
    status, _, body = upload(standin.url, event, image_bytes(), field="file")
    assert status == 422, body
    assert isinstance(body["detail"], list)
    empty_boundary = "nothing-here"
    status, _, _ = raw_request(
        "POST",
        f"{standin.url}/pics/{event}",
        f"--{empty_boundary}--\r\n".encode(),
        {"Content-Type": f"multipart/form-data; boundary={empty_boundary}"},
    )
    assert status == 422
    assert settle(standin)["accepted"] == 0
    assert standin.rows("SELECT count(*) FROM images") == [(0,)]


def test_upload_code_failing_route_pattern_422(standin):
    # POST /events does not check the characters: "a b" gets 201, then every upload to it is 422.
    assert create_event(standin.url, "a b")[0] == 201
    assert create_event(standin.url, "a.b")[0] == 201
    for path_code in ("a%20b", "a.b", "caf%C3%A9"):
        status, _, body = upload(standin.url, path_code, image_bytes())
        assert status == 422, (path_code, body)
        assert isinstance(body["detail"], list)
    assert settle(standin)["accepted"] == 0
    assert standin.rows("SELECT count(*) FROM images") == [(0,)]


def test_upload_code_with_trailing_newline_fails_route_pattern_422(standin):
    assert create_event(standin.url, "abc\n")[0] == 201  # POST /events does not check characters
    # The route pattern is a whole-string match: a trailing newline is not in [a-zA-Z0-9_-].
    status, _, body = upload(standin.url, "abc%0A", image_bytes())
    assert status == 422, body
    assert settle(standin)["accepted"] == 0
    assert standin.rows("SELECT count(*) FROM images") == [(0,)]


def test_upload_to_missing_event_202_but_dropped(standin):
    status, _, body = upload(standin.url, "no-such-event", image_bytes())
    assert status == 202, body
    assert UUID_HEX.fullmatch(body["uuid"])
    stats = settle(standin)
    assert (stats["accepted"], stats["stored"], stats["dropped_uuids"]) == (1, 0, [body["uuid"]])
    assert upload_outcomes(standin) == {body["uuid"]: "dropped-no-event"}
    assert call("GET", f"{standin.url}/pics/{body['uuid']}")[0] == 404
    assert standin.rows("SELECT count(*) FROM images") == [(0,)]
    assert not list(standin.blobs.rglob("*.png"))  # no blob either
    assert standin.events() == []  # the upload did not create the event either


def test_upload_to_event_with_kanta_breaking_code_500(standin):
    codes = ["Test-Upper", "a--b", "under_score", "-lead"]
    for code in codes:
        status, body = create_event(standin.url, code)
        assert status == 201, (code, body)  # POST /events accepts them...
    for code in codes:
        status, _, body = upload(standin.url, code, image_bytes(code))
        assert (status, body) == (500, b"Internal Server Error"), code  # ...but uploads to them fail
    # The container is made before the 202, whether the event exists or not: a bad name is a 500.
    for code in ("no_such_event", "no--such", "x" * 64):
        assert upload(standin.url, code, image_bytes(code))[0] == 500, code
    assert settle(standin)["accepted"] == 0
    assert standin.rows("SELECT count(*) FROM images") == [(0,)]
    assert standin.events() == codes


# --- GET /pics -------------------------------------------------------------------------------


def test_list_pics_limit_bounds_422(standin, event):
    for limit in (0, -1, 201, 1000, "x"):
        status, body = list_pics(standin.url, event, limit=limit)
        assert status == 422, (limit, body)
    for limit in (1, 200):
        assert list_pics(standin.url, event, limit=limit) == (200, [])


def test_list_pics_unknown_event_500_plain_text(standin, event):
    # A differently-cased code is another code: unknown too.
    for code in ("no-such-event", event.upper()):
        query = urllib.parse.urlencode({"event_code": code, "limit": 200})
        status, headers, body = raw_request("GET", f"{standin.url}/pics?{query}", None, {})
        assert (status, body) == (500, b"Internal Server Error"), code
        assert lower_keys(headers)["content-type"].startswith("text/plain"), headers
    assert list_pics(standin.url, event) == (200, [])  # a known but empty event is a plain []


def test_list_pics_paging_covers_all_disjointly(standin, event):
    uploaded = set()
    for i in range(55):
        status, _, body = upload(standin.url, event, image_bytes(f"page{i}"))
        assert status == 202, body
        uploaded.add(body["uuid"])
    # Wait until the pipeline is idle (every image stored and detected): last_modified no longer moves.
    stats = settle(standin, event, timeout=30)
    assert stats["accepted"] == stats["stored"] == stats["processed"] == 55, stats
    assert set(stored(standin, event)) == uploaded

    status, default_page = list_pics(standin.url, event)
    assert status == 200 and len(default_page) == 50  # default limit 50

    pages = []
    for offset in (0, 20, 40, 60):
        status, page = list_pics(standin.url, event, limit=20, offset=offset)
        assert status == 200, page
        pages.append([item["uuid"] for item in page])
    assert [len(p) for p in pages] == [20, 20, 15, 0]
    flat = [u for p in pages for u in p]
    assert len(flat) == len(set(flat)) == 55
    assert set(flat) == uploaded

    _, full = list_pics(standin.url, event, limit=200)
    assert [item["uuid"] for item in full] == flat  # pages are slices of one order
    stamps = [parse_time(item["last_modified"]) for item in full]
    assert stamps == sorted(stamps, reverse=True)


def test_list_pics_newest_last_modified_first(standin, event):
    uids = []
    for tag in ("older", "newer"):
        status, _, body = upload(standin.url, event, image_bytes(tag))
        assert status == 202, body
        uid = body["uuid"]
        wait_for(lambda uid=uid: faces_of(standin.url, uid) == 1, what=f"{tag} detected")
        uids.append(uid)
    _, items = list_pics(standin.url, event)
    assert [item["uuid"] for item in items] == [uids[1], uids[0]]
    assert parse_time(items[0]["last_modified"]) > parse_time(items[1]["last_modified"])


# --- the pipeline after the 202 --------------------------------------------------------------


def test_listed_with_faces_0_then_faces_and_a_fresh_last_modified(standin_factory):
    server = faulty(standin_factory, "--detect-ms", "1500")  # a wide window between listed and faces
    status, _, body = upload(server.url, CODE, image_bytes("face"))
    assert status == 202, body
    uid = body["uuid"]

    def item():
        status, items = list_pics(server.url, CODE)
        assert status == 200, items
        return next((i for i in items if i["uuid"] == uid), None)

    first = wait_for(item, what="listed")
    assert first["faces"] == 0  # listed before detection ran, exactly like a faceless image
    assert image_records(server, CODE)[uid]["processed_at"] is None
    assert first["created_at"] == first["last_modified"]
    assert parse_time(first["created_at"]).microsecond == 0  # second resolution, as Kanta's func.now()

    later = wait_for(lambda: (i := item())["faces"] == 1 and i, timeout=15, interval=0.1, what="faces=1")
    assert later["created_at"] == first["created_at"]
    assert parse_time(later["last_modified"]) > parse_time(first["last_modified"])  # set again on faces
    record = image_records(server, CODE)[uid]
    ((accepted_at,),) = server.rows("SELECT accepted_at FROM uploads WHERE uuid = ?", uid)
    assert accepted_at <= record["stored_at"] < record["processed_at"]
    assert record["processed_at"] - record["stored_at"] >= 1.4  # it did wait for the 1.5 s detection
    assert upload_outcomes(server) == {uid: "stored"}


def test_db_pool_timeout_drops_accepted_uploads_first_come_first_served(standin_factory):
    # 2 connections, 1 detection worker of 1 s, 1.5 s to wait: jobs 1 and 2 get a connection at once,
    # job 3 the one job 1 frees at ~1 s; jobs 4-6 time out at ~1.5 s, before job 2 frees its at ~2 s.
    flags = ("--workers", "1", "--detect-ms", "1000", "--db-pool", "2", "--db-pool-timeout", "1.5")
    server = faulty(standin_factory, *flags)
    uids = []
    for i in range(6):
        status, _, body = upload(server.url, CODE, image_bytes(f"pool{i}"))
        assert status == 202, body  # the 202 comes before any of that work
        uids.append(body["uuid"])
    stats = settle(server, CODE, timeout=15)
    assert stats["dropped_uuids"] == uids[3:]
    assert (stats["accepted"], stats["stored"], stats["processed"], stats["dropped"]) == (6, 3, 3, 3)
    assert upload_outcomes(server) == {
        **{u: "stored" for u in uids[:3]},
        **{u: "dropped-pool-timeout" for u in uids[3:]},
    }
    assert listed_uuids(server.url, CODE) == set(uids[:3])
    assert set(stored(server, CODE)) == set(uids[:3])
    for uid in uids[3:]:  # gone after its 202: no row, no blob
        assert call("GET", f"{server.url}/pics/{uid}")[0] == 404
        assert not list(server.blobs.rglob(f"{uid}.*"))
    log = server.log_path.read_text()
    line = (
        f"Error fetching event {CODE}: QueuePool limit of size 2 overflow 0 reached,"
        " connection timed out, timeout 1.50"
    )
    assert log.count(line) == 3, log
    # Unchanged since the pipeline went idle, but for the one GET /pics above (3 rows).
    after = standin_stats(server, CODE)
    assert after.pop("list_loop_ms") > stats.pop("list_loop_ms")  # the list held the loop
    assert after == {**stats, "in_pipeline": 0, "list_requests": 1, "rows_listed": 3}
    v1 = call("GET", f"{server.url}/api/v1/_standin/stats?event_code={CODE}")[1]
    assert {k: v1[k] for k in ("accepted", "stored", "dropped")} == {"accepted": 6, "stored": 3, "dropped": 3}
    assert standin_stats(server, "other-event")["accepted"] == 0


def test_a_backlog_on_the_event_loop_slows_the_202(standin_factory):
    # Each job holds the shared loop for 0.2 s in all (three turns): ten of them queue about 2 s of
    # loop time, and the next upload's handler must wait its turn on that loop before it answers.
    flags = ("--loop-ms", "200", "--workers", "10", "--detect-ms", "0")
    server = faulty(standin_factory, *flags)
    with ThreadPoolExecutor(10) as pool:
        first = list(pool.map(lambda i: upload(server.url, CODE, image_bytes(f"loop{i}")), range(10)))
    assert [r[0] for r in first] == [202] * 10
    t0 = time.monotonic()
    status, _, body = upload(server.url, CODE, image_bytes("behind"))
    waited = time.monotonic() - t0
    assert status == 202, body
    assert waited >= 0.1, waited  # behind the turns (60-80 ms each) the ten jobs have queued
    assert call("GET", f"{server.url}/pics/{body['uuid']}")[0] == 404  # accepted, not yet stored
    stats = settle(server, CODE, timeout=30)
    assert (stats["accepted"], stats["stored"], stats["dropped"]) == (11, 11, 0), stats


def test_yale_at_stock_settings_all_processed_a_few_faceless(standin, event, yale_zip):
    # The stand-in with no flags is a stock Kanta: 165 Yale images at 5 concurrent uploads all make it.
    members = yale_members(yale_zip)
    with ThreadPoolExecutor(5) as pool:
        results = list(pool.map(lambda m: upload(standin.url, event, m[1], filename=basename(m[0])), members))
    assert [r[0] for r in results] == [202] * 165
    sent = {r[2]["uuid"]: data for r, (_, data) in zip(results, members, strict=True)}
    stats = settle(standin, event, timeout=60)
    assert (stats["accepted"], stats["stored"], stats["processed"], stats["dropped"]) == (165, 165, 165, 0)
    assert stored(standin, event) == sent

    records = image_records(standin, event)
    faceless = {u for u, r in records.items() if r["faces"] == 0}
    assert 1 <= len(faceless) <= 10, len(faceless)  # "about 2%" (a real Kanta: 3 of 165)
    for uid, r in records.items():
        created = parse_time(r["created_at"])
        assert created.microsecond == 0, r
        if uid in faceless:  # last_modified never moves for an image with no face
            assert r["last_modified"] == r["created_at"], r
        else:
            assert r["faces"] == 1 and parse_time(r["last_modified"]) > created, r
    by_content: dict[str, set[int]] = {}
    for uid, data in sent.items():
        by_content.setdefault(hashlib.sha256(data).hexdigest(), set()).add(records[uid]["faces"])
    assert len(by_content) == 156  # 9 byte-identical pairs...
    assert all(len(faces) == 1 for faces in by_content.values())  # ...which get the same answer

    _, items = list_pics(standin.url, event, limit=200)
    assert {i["uuid"]: i["faces"] for i in items} == {u: r["faces"] for u, r in records.items()}
    stamps = [parse_time(i["last_modified"]) for i in items]
    assert stamps == sorted(stamps, reverse=True)

    faceless_uid = sorted(faceless)[0]
    assert call("GET", f"{standin.url}/pics/{faceless_uid}")[1]["faces"] == []
    face_ids = []
    for uid in sorted(set(records) - faceless)[:20]:
        _, got = call("GET", f"{standin.url}/pics/{uid}")
        assert [f["cluster_id"] for f in got["faces"]] == [-2]  # "not clustered yet"
        face_ids.append(got["faces"][0]["face_id"])
    assert len(set(face_ids)) == len(face_ids)  # a face id names one face


# --- GET and DELETE /pics/{uuid} -------------------------------------------------------------


def test_get_pic_and_faces_after_detection(standin, event):
    data = image_bytes("face")
    status, _, body = upload(standin.url, event, data)
    assert status == 202, body
    uid = body["uuid"]

    def detected():
        status, got = call("GET", f"{standin.url}/pics/{uid}")
        return got if status == 200 and got["image"]["faces"] == 1 else None

    got = wait_for(detected, what="faces=1")
    assert set(got) == {"image", "faces"}
    assert set(got["image"]) == IMAGE_ITEM_KEYS and got["image"]["uuid"] == uid
    assert len(got["faces"]) == 1
    face = got["faces"][0]
    assert {"face_id", "cluster_id", "bbox"} <= set(face)
    assert isinstance(face["face_id"], int) and face["cluster_id"] == -2
    assert set(face["bbox"]) == {"x", "y", "width", "height"}
    assert standin.rows("SELECT faces FROM images WHERE uuid = ?", uid) == [(1,)]
    assert stored(standin, event) == {uid: data}

    assert call("GET", f"{standin.url}/pics/{'0' * 32}")[0] == 404


def test_delete_pic_204_then_404(standin, event):
    kept = upload(standin.url, event, image_bytes("kept"))[2]["uuid"]
    doomed = upload(standin.url, event, image_bytes("doomed"))[2]["uuid"]
    wait_for(lambda: listed_uuids(standin.url, event) == {kept, doomed}, what="both listed")

    status, _ = call("DELETE", f"{standin.url}/pics/{event}/{doomed}")
    assert status == 204
    assert call("GET", f"{standin.url}/pics/{doomed}")[0] == 404
    assert listed_uuids(standin.url, event) == {kept}
    assert set(stored(standin, event)) == {kept}
    assert call("DELETE", f"{standin.url}/pics/{event}/{doomed}")[0] == 404
    assert call("GET", f"{standin.url}/pics/{kept}")[0] == 200


# --- public blobs ----------------------------------------------------------------------------


def raw_get(base: str, path: str) -> tuple[int, dict, bytes]:
    """GET with the path sent exactly as given (urllib would keep it too, but say so plainly)."""
    parts = urllib.parse.urlsplit(base)
    conn = HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, lower_keys(dict(resp.headers)), resp.read()
    finally:
        conn.close()


def test_blob_url_serves_the_exact_bytes_and_nothing_else(standin, event):
    sent = {}
    for filename in ("a.png", "b.gif"):
        data = image_bytes(filename)
        status, _, body = upload(standin.url, event, data, filename=filename)
        assert status == 202, body
        sent[body["uuid"]] = data
    settle(standin, event)
    _, items = list_pics(standin.url, event)
    assert {i["uuid"] for i in items} == set(sent)
    for item in items:
        uid, ext = item["uuid"], item["file_extension"]
        assert item["azure_blob_url"] == f"{standin.url}/blobs/{event}/images/{uid}.{ext}"
        status, headers, got = raw_request("GET", item["azure_blob_url"], None, {})
        assert (status, got) == (200, sent[uid])
        assert lower_keys(headers)["content-type"] == {"png": "image/png", "gif": "image/gif"}[ext]

    # Only blobs: nothing that climbs out of the folder, and no other file in it.
    (standin.blobs / "notes.txt").write_text("not a blob")
    uid = items[0]["uuid"]
    for path in (
        "/blobs/../kanta.sqlite",
        "/blobs/%2e%2e/kanta.sqlite",
        "/blobs/%2E%2E%2Fkanta.sqlite",
        f"/blobs/{event}/images/../../../kanta.sqlite",
        f"/blobs/{event}/images/%2e%2e/%2e%2e/%2e%2e/kanta.sqlite",
        "/blobs//etc/passwd",
        "/blobs/%2Fetc%2Fpasswd",
        "/blobs/notes.txt",
        "/blobs/",
        f"/blobs/{event}/images/{'0' * 32}.png",
        f"/blobs/{event.upper()}/images/{uid}.png",
        f"/api/v1/blobs/{event}/images/{uid}.png",
    ):
        status, _, body = raw_get(standin.url, path)
        assert status == 404, (path, body[:100])
    doomed = items[1]
    assert call("DELETE", f"{standin.url}/pics/{event}/{doomed['uuid']}")[0] == 204
    assert raw_request("GET", doomed["azure_blob_url"], None, {})[0] == 404  # deleted with its image


# --- clusters --------------------------------------------------------------------------------


def test_clusters_before_clustering_one_unclustered_entry(standin_factory):
    server = faulty(standin_factory, "--instant")
    assert call("GET", f"{server.url}/clusters?event_code={CODE}") == (200, [])  # no faces yet
    for i in range(8):
        assert upload(server.url, CODE, image_bytes(f"cluster{i}"))[0] == 202
    settle(server, CODE)
    face_urls = {}  # face_id -> its image's blob URL, from GET /pics/{uuid}
    for uid in listed_uuids(server.url, CODE):
        _, got = call("GET", f"{server.url}/pics/{uid}")
        for face in got["faces"]:
            face_urls[face["face_id"]] = got["image"]["azure_blob_url"]
    assert len(face_urls) >= 1

    for size, want in ((3, 3), (None, 5), (20, len(face_urls))):
        query = f"event_code={CODE}" + ("" if size is None else f"&sample_size={size}")
        status, body = call("GET", f"{server.url}/clusters?{query}")
        assert status == 200, body
        assert [(c["cluster_id"], c["face_count"]) for c in body] == [(-2, len(face_urls))]
        samples = body[0]["samples"]
        assert len(samples) == min(want, len(face_urls)), size
        for s in samples:
            assert face_urls[s["face_id"]] == s["sample_blob_url"]
            assert set(s["sample_bbox"]) == {"x", "y", "width", "height"}
    some_sample = samples[0]["sample_blob_url"]
    assert raw_request("GET", some_sample, None, {})[0] == 200
    for size in (0, 21, "x"):
        assert call("GET", f"{server.url}/clusters?event_code={CODE}&sample_size={size}")[0] == 422, size
    # An unknown event: the same unmapped not-found lookup as GET /pics, so the same plain 500.
    assert call("GET", f"{server.url}/clusters?event_code=no-such-event") == INTERNAL_ERROR


# --- connections and restarts ----------------------------------------------------------------


def keep_alive_connection(base: str) -> HTTPConnection:
    parts = urllib.parse.urlsplit(base)
    conn = HTTPConnection(parts.hostname, parts.port, timeout=10)
    for _ in range(2):  # two requests on one socket: keep-alive works
        conn.request("GET", "/system/health")
        resp = conn.getresponse()
        assert resp.status == 200 and not resp.will_close
        resp.read()
    return conn


def closed_by_peer(conn: HTTPConnection, wait_s: float) -> bool:
    """True when the server has closed the idle socket within ``wait_s``."""
    sock = conn.sock
    sock.settimeout(wait_s)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False


def test_idle_keep_alive_connection_closed_after_keep_alive_s(standin_factory):
    server = standin_factory("--keep-alive-s", "1")
    conn = keep_alive_connection(server.url)
    t0 = time.monotonic()
    assert closed_by_peer(conn, wait_s=5)
    assert time.monotonic() - t0 >= 0.8  # idle for the keep-alive time first, as uvicorn does
    conn.close()

    forever = standin_factory("--keep-alive-s", "0")
    conn = keep_alive_connection(forever.url)
    assert not closed_by_peer(conn, wait_s=1.5)
    conn.request("GET", "/system/health")  # the same socket still serves
    assert conn.getresponse().status == 200
    conn.close()


def test_restart_after_sigkill_on_the_same_port_keeps_what_was_stored(standin_factory):
    # One connection, held by a job whose detection takes 30 s: the second job waits for it.
    server = faulty(standin_factory, "--db-pool", "1", "--detect-ms", "30000")
    data = image_bytes("survivor")
    a = upload(server.url, CODE, data)[2]["uuid"]
    b = upload(server.url, CODE, image_bytes("in-flight"))[2]["uuid"]
    wait_for(lambda: a in listed_uuids(server.url, CODE), what="first image listed")
    url = server.url
    open_conn = keep_alive_connection(url)  # a live connection at the crash: the port is not clean

    server.kill()  # SIGKILL
    assert server.restart() == url  # at once, on the same port, same database and blobs
    open_conn.close()
    assert call("GET", f"{url}/system/health")[0] == 200
    _, items = list_pics(url, CODE)
    assert [(i["uuid"], i["faces"]) for i in items] == [(a, 0)]  # its detection died with the process
    assert raw_request("GET", items[0]["azure_blob_url"], None, {})[:3:2] == (200, data)
    assert upload_outcomes(server) == {a: "stored", b: "lost-restart"}  # the waiting job is gone
    stats = standin_stats(server, CODE)
    assert (stats["accepted"], stats["stored"], stats["dropped_uuids"], stats["in_pipeline"]) == (
        2,
        1,
        [b],
        0,
    )
    c = upload(url, CODE, image_bytes("after"))[2]["uuid"]
    wait_for(lambda: c in listed_uuids(url, CODE), what="an upload after the restart listed")

    for sig in (signal.SIGTERM, signal.SIGINT):  # both stop it cleanly
        server.proc.send_signal(sig)
        assert server.proc.wait(timeout=10) == 0, sig
        if sig == signal.SIGTERM:
            server.start()
    assert "Traceback" not in server.log_path.read_text()


# --- the acceptance run --------------------------------------------------------------


def test_done_when_330_yale_uploads_at_concurrency_20(standin_factory, yale_zip):
    """Issue 11's "Done when", literally: a plain HTTP client, 330 Yale uploads, 20 at a time."""
    flags = ("--workers", "2", "--detect-ms", "150", "--db-pool", "15", "--db-pool-timeout", "4")
    server = faulty(standin_factory, *flags)
    members = yale_members(yale_zip) * 2  # the Yale set twice, in name order
    snapshots: list[list[dict]] = []  # what a client polling GET /pics saw, in order
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            status, items = list_pics(server.url, CODE, limit=200)
            if status == 200 and items:
                snapshots.append(items)
            stop.wait(0.3)

    def post(member: tuple[str, bytes]) -> tuple[object, object]:
        name, data = member
        status, _, body = upload(server.url, CODE, data, filename=basename(name))
        return status, body

    t0 = time.monotonic()
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(post, members))
        posted_s = time.monotonic() - t0
        assert [status for status, _ in results] == [202] * 330
        sent = {body["uuid"]: data for (_, body), (_, data) in zip(results, members, strict=True)}
        stats = settle(server, CODE, timeout=90)
    finally:
        stop.set()
        poller.join(timeout=15)
    elapsed = time.monotonic() - t0
    final = [i for offset in (0, 200) for i in list_pics(server.url, CODE, limit=200, offset=offset)[1]]
    records = image_records(server, CODE)

    # Some accepted uploads are never listed: dropped after their 202, as Kanta logs it.
    dropped = set(stats["dropped_uuids"])
    assert stats["accepted"] == len(sent) == 330
    assert stats["stored"] + stats["dropped"] == 330 and stats["dropped"] >= 1 and stats["stored"] >= 1
    assert dropped <= set(sent)
    assert {u for snap in snapshots for u in (i["uuid"] for i in snap)} & dropped == set()
    assert {i["uuid"] for i in final} == set(records) == set(sent) - dropped
    assert {upload_outcomes(server)[u] for u in dropped} == {"dropped-pool-timeout"}
    pool_line = (
        f"Error fetching event {CODE}: QueuePool limit of size 5 overflow 10 reached,"
        " connection timed out, timeout 4.00"
    )
    assert server.log_path.read_text().count(pool_line) == len(dropped)

    # Listed with faces 0, later with faces.
    first_seen: dict[str, int] = {}
    filled = set()
    for snap in snapshots:
        for item in snap:
            if item["faces"] == 0:
                first_seen.setdefault(item["uuid"], 0)
            elif item["uuid"] in first_seen:
                filled.add(item["uuid"])
    assert filled, "no image was seen with faces 0 and later with faces"

    # A few stay faceless, and look exactly like unprocessed ones (faces 0, last_modified unmoved).
    faceless = {u for u, r in records.items() if r["faces"] == 0}
    assert all(records[u]["processed_at"] is not None for u in records)
    assert 1 <= len(faceless) <= len(records) // 10, (len(faceless), len(records))
    assert all(records[u]["last_modified"] == records[u]["created_at"] for u in faceless)
    faces_by_content: dict[bytes, set[int]] = {}
    for uid, r in records.items():
        faces_by_content.setdefault(sent[uid], set()).add(r["faces"])
    assert all(len(v) == 1 for v in faces_by_content.values())  # the second copy agrees

    # Newest last_modified first in every read, and positions that move while faces fill in.
    for snap in [*snapshots, final]:
        stamps = [parse_time(i["last_modified"]) for i in snap]
        assert stamps == sorted(stamps, reverse=True)
    assert moved_pairs(snapshots), "no two images ever swapped places"

    # A blob's bytes are what was sent; an unknown event is a plain-text 500.
    for item in final:
        status, _, got = raw_request("GET", item["azure_blob_url"], None, {})
        assert (status, got) == (200, sent[item["uuid"]])
    assert list_pics(server.url, "no-such-event") == INTERNAL_ERROR
    print(
        f"\ndone-when: accepted {stats['accepted']}, stored {stats['stored']}, dropped {stats['dropped']},"
        f" faceless {len(faceless)}, seen filling in {len(filled)}, {len(snapshots)} reads;"
        f" posted in {posted_s:.1f} s, idle after {elapsed:.1f} s"
    )


def moved_pairs(snapshots: list[list[dict]]) -> int:
    """How many pairs of images appear in one order in a read and in the other order in a later one."""
    seen_before: set[tuple[str, str]] = set()  # (above, below) in some earlier read
    swapped = 0
    for snap in snapshots:
        order = [i["uuid"] for i in snap]
        pairs = {(order[i], order[j]) for i in range(len(order)) for j in range(i + 1, len(order))}
        swapped += sum(1 for above, below in pairs if (below, above) in seen_before)
        seen_before |= pairs
    return swapped


# --- injected faults -------------------------------------------------------------------------

MODES = {"pipeline": (), "instant": ("--instant",)}  # the faults work with and without the pipeline


def faulty(standin_factory, *flags: str):
    server = standin_factory(*flags)
    status, body = create_event(server.url, CODE)
    assert status == 201, body
    return server


def test_fault_error_rate_503_nothing_stored(standin_factory):
    server = faulty(standin_factory, "--error-rate", "1")
    statuses = [upload(server.url, CODE, image_bytes(str(i)))[0] for i in range(3)]
    assert statuses == [503] * 3
    assert settle(server)["accepted"] == 0
    assert stored(server, CODE) == {}
    assert list_pics(server.url, CODE) == (200, [])


def test_fault_throttle_429_with_retry_after(standin_factory):
    server = faulty(standin_factory, "--throttle-rate", "1", "--retry-after", "2")
    status, headers, _ = upload(server.url, CODE, image_bytes())
    assert status == 429
    assert lower_keys(headers).get("retry-after") == "2"
    assert settle(server)["accepted"] == 0
    assert stored(server, CODE) == {}


def test_fault_reset_before_drops_connection_nothing_stored(standin_factory):
    server = faulty(standin_factory, "--reset-before-rate", "1")
    status, _, _ = upload(server.url, CODE, image_bytes())
    assert isinstance(status, str) and status.startswith("dropped"), f"got an HTTP answer: {status}"
    assert settle(server)["accepted"] == 0
    assert stored(server, CODE) == {}
    assert list_pics(server.url, CODE) == (200, [])
    assert call("GET", f"{server.url}/system/health")[0] == 200  # the server itself lives on


@pytest.mark.parametrize("mode", MODES)
def test_fault_reset_after_drops_connection_but_stores(standin_factory, mode):
    server = faulty(standin_factory, "--reset-after-rate", "1", *MODES[mode])
    data = image_bytes("reset-after")
    status, _, _ = upload(server.url, CODE, data)
    assert isinstance(status, str) and status.startswith("dropped"), f"got an HTTP answer: {status}"
    got = wait_for(lambda: stored(server, CODE), what="image stored despite the reset")
    assert list(got.values()) == [data]
    assert listed_uuids(server.url, CODE) == set(got)
    assert upload_outcomes(server) == {next(iter(got)): "stored"}


@pytest.mark.parametrize("mode", MODES)
def test_fault_loss_202_but_never_stored(standin_factory, mode):
    server = faulty(standin_factory, "--loss-rate", "1", *MODES[mode])
    status, _, body = upload(server.url, CODE, image_bytes())
    assert status == 202, body
    assert UUID_HEX.fullmatch(body["uuid"])
    stats = settle(server)
    assert (stats["accepted"], stats["dropped_uuids"]) == (1, [body["uuid"]])
    assert upload_outcomes(server) == {body["uuid"]: "lost-fault"}
    assert call("GET", f"{server.url}/pics/{body['uuid']}")[0] == 404
    assert stored(server, CODE) == {}
    assert list_pics(server.url, CODE) == (200, [])


@pytest.mark.parametrize("mode", MODES)
def test_fault_visible_after_delays_listing(standin_factory, mode):
    server = faulty(standin_factory, "--visible-after", "1", *MODES[mode])
    data = image_bytes("late")
    t0 = time.monotonic()
    status, _, body = upload(server.url, CODE, data)
    assert status == 202, body
    time.sleep(max(0.0, 0.3 - (time.monotonic() - t0)))
    assert listed_uuids(server.url, CODE) == set()
    assert stored(server, CODE) == {}
    wait_for(
        lambda: body["uuid"] in listed_uuids(server.url, CODE),
        timeout=3 - (time.monotonic() - t0),
        interval=0.05,
        what="listed by 3 s",
    )
    assert stored(server, CODE) == {body["uuid"]: data}


def test_fault_latency_slows_uploads(standin_factory):
    server = faulty(standin_factory, "--latency-ms", "200")
    data = image_bytes("slow")
    t0 = time.monotonic()
    status, _, body = upload(server.url, CODE, data)
    elapsed = time.monotonic() - t0
    assert status == 202, body
    assert elapsed >= 0.2
    wait_for(lambda: stored(server, CODE) == {body["uuid"]: data}, what="slow upload stored")


def test_fault_seed_repeats_the_sequence(standin_factory):
    def run(seed: str) -> tuple[list, object]:
        server = faulty(standin_factory, "--error-rate", "0.5", "--fault-seed", seed)
        statuses = [upload(server.url, CODE, image_bytes(f"{seed}-{i}"))[0] for i in range(20)]
        return statuses, server

    first, server_a = run("7")
    second, server_b = run("7")
    other, _ = run("8")
    assert first == second
    assert set(first) == {202, 503}, first  # both fates actually drawn
    assert other != first  # the seed is used, not a fixed one
    for server, statuses in ((server_a, first), (server_b, second)):
        want = statuses.count(202)
        wait_for(lambda s=server, n=want: len(stored(s, CODE)) == n, what=f"{want} stored")


# --- Kanta's timestamps ----------------------------------------------------------------------

# As Kanta's JSON (pydantic v2) writes an aware UTC datetime: "Z", and a fraction only when it is not
# zero, cut of trailing zeros. created_at is to the second (Azure's blob creation time).
SECOND_STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
KANTA_STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{0,5}[1-9])?Z")
FACELESS = ("faceless0", "faceless86", "faceless139")  # tags whose image_bytes the stand-in finds no face in


def epoch(text: str) -> float:
    return parse_time(text).timestamp()


def test_timestamps_as_kanta_writes_them_created_at_is_the_blob_time(standin_factory):
    server = faulty(standin_factory, "--detect-ms", "300")
    tags = [f"stamp{i}" for i in range(5)] + [FACELESS[0]]
    uids = {}
    for tag in tags:
        status, _, body = upload(server.url, CODE, image_bytes(tag))
        assert status == 202, body
        uids[body["uuid"]] = tag
    stats = settle(server, CODE)
    assert (stats["stored"], stats["processed"]) == (6, 6), stats
    records = image_records(server, CODE)
    accepted = dict(server.rows("SELECT uuid, accepted_at FROM uploads"))
    _, items = list_pics(server.url, CODE)
    assert {i["uuid"] for i in items} == set(uids)
    with_faces = 0
    for item in items:
        uid, created, modified = item["uuid"], item["created_at"], item["last_modified"]
        record = records[uid]
        assert SECOND_STAMP.fullmatch(created), item
        assert KANTA_STAMP.fullmatch(modified), item
        # created_at is the blob's creation time (its file's mtime here), truncated to the second;
        # the blob was written after the 202 and before the row was listed.
        mtime_ns = os.stat(record["blob_path"]).st_mtime_ns
        assert epoch(created) == mtime_ns // 10**9, (item, mtime_ns)
        assert accepted[uid] <= mtime_ns / 1e9 <= record["stored_at"]
        if item["faces"]:  # set again when the faces were written, with microseconds
            with_faces += 1
            assert abs(epoch(modified) - record["processed_at"]) < 1e-5, (item, record)
            assert epoch(modified) > epoch(created)
        else:  # a faceless image keeps its first last_modified (Kanta writes faces=0 over 0: no UPDATE)
            assert uids[uid] == FACELESS[0] and record["processed_at"] is not None
            assert modified == created
        assert call("GET", f"{server.url}/pics/{uid}")[1]["image"] == item  # the same strings there
    assert with_faces == 5


def test_rows_of_an_older_standin_come_out_in_kantas_form(standin_factory):
    # An older stand-in stored isoformat() text ("+00:00", no fraction when inserted): still read right.
    server = faulty(standin_factory, "--instant")
    a = upload(server.url, CODE, image_bytes("old-a"))[2]["uuid"]
    b = upload(server.url, CODE, image_bytes("old-b"))[2]["uuid"]
    settle(server, CODE)
    server.kill()
    with sqlite3.connect(server.db) as con:
        for uid, created, modified in (
            (a, "2026-12-06T05:27:47+00:00", "2026-12-06T05:27:47.153550+00:00"),
            (b, "2026-12-06T05:27:48+00:00", "2026-12-06T05:27:48+00:00"),
        ):
            con.execute(
                "UPDATE images SET created_at = ?, last_modified = ? WHERE uuid = ?", (created, modified, uid)
            )
    server.restart()
    _, items = list_pics(server.url, CODE)
    assert [(i["uuid"], i["created_at"], i["last_modified"]) for i in items] == [
        (b, "2026-12-06T05:27:48Z", "2026-12-06T05:27:48Z"),
        (a, "2026-12-06T05:27:47Z", "2026-12-06T05:27:47.15355Z"),
    ]
    assert [i["uuid"] for i in list_pics(server.url, CODE, date_from="2026-12-06T05:27:48Z")[1]] == [b]


def test_clock_offset_moves_the_servers_clock(standin_factory):
    offset = -400 * 86400 - 0.5  # 400 days and half a second behind
    server = standin_factory("--instant", "--clock-offset", str(offset))
    t0 = time.time()
    status, body = create_event(server.url, CODE)
    assert status == 201, body
    status, headers, body = upload(server.url, CODE, image_bytes("face0"))
    t1 = time.time()
    assert status == 202, body
    uid = body["uuid"]
    settle(server, CODE)
    record = image_records(server, CODE)[uid]
    (item,) = list_pics(server.url, CODE)[1]
    assert item["faces"] == 1

    # created_at: the blob's creation time on the server's clock, to the second
    mtime_ns = os.stat(record["blob_path"]).st_mtime_ns
    assert epoch(item["created_at"]) == (mtime_ns + round(offset * 1e9)) // 10**9
    # last_modified: when the faces were written, on the server's clock (processed_at is the true one)
    assert abs(epoch(item["last_modified"]) - (record["processed_at"] + offset)) < 1e-5
    # the answer's Date header (to the second) and the event's created_at: the same clock
    date = parsedate_to_datetime(lower_keys(headers)["date"]).timestamp()
    assert t0 + offset - 1.001 <= date <= t1 + offset
    event_created = epoch(call("GET", f"{server.url}/events?event_code={CODE}")[1]["events"][0]["created_at"])
    assert t0 + offset - 0.001 <= event_created <= t1 + offset
    # the date filters compare with that clock: nothing was created in the true clock's last hour
    an_hour_ago = datetime.fromtimestamp(t0 - 3600, timezone.utc).isoformat()
    assert list_pics(server.url, CODE, date_from=an_hour_ago) == (200, [])
    assert [i["uuid"] for i in list_pics(server.url, CODE, date_to=an_hour_ago)[1]] == [uid]

    ahead = standin_factory("--instant", "--clock-offset", "3600")  # and ahead
    t0 = time.time()
    status, headers, _ = raw_request("GET", f"{ahead.url}/system/health", None, {})
    assert status == 200
    date = parsedate_to_datetime(lower_keys(headers)["date"]).timestamp()
    assert t0 + 3600 - 1.001 <= date <= time.time() + 3600
    for missing in ("/no-such-route", "/blobs/nothing"):  # every answer, not only the routes' own
        status, headers, _ = raw_request("GET", f"{ahead.url}{missing}", None, {})
        assert status == 404
        assert parsedate_to_datetime(lower_keys(headers)["date"]).timestamp() >= t0 + 3600 - 1.001


# --- GET /pics filters -----------------------------------------------------------------------


def uuids_of(server, **params) -> list[str]:
    status, items = list_pics(server.url, CODE, **{"limit": 200, **params})
    assert status == 200, (params, items)
    return [i["uuid"] for i in items]


def test_list_date_filters_on_created_at_both_ends_inclusive(standin_factory):
    server = faulty(standin_factory, "--instant")
    assert create_event(server.url, "other-event")[0] == 201

    def batch(tags) -> set[str]:
        uids = set()
        for tag in tags:
            status, _, body = upload(server.url, CODE, image_bytes(tag))
            assert status == 202, body
            uids.add(body["uuid"])
        settle(server)
        return uids

    first = batch(["d0", "d1", FACELESS[0]])
    created = {i["uuid"]: i["created_at"] for i in list_pics(server.url, CODE)[1]}
    t1 = max(epoch(created[u]) for u in first)  # the last second the first batch was created in
    wait_for(lambda: time.time() >= t1 + 1, timeout=3, what="the next second")
    second = batch(["d2", "d3", FACELESS[1]])
    assert upload(server.url, "other-event", image_bytes("elsewhere"))[0] == 202  # same times, not listed
    settle(server)
    created = {i["uuid"]: i["created_at"] for i in list_pics(server.url, CODE)[1]}
    assert set(created) == first | second
    t2 = min(epoch(created[u]) for u in second)
    assert t2 >= t1 + 1

    def at(ts: float, tz: timezone = timezone.utc) -> datetime:
        return datetime.fromtimestamp(ts, timezone.utc).astimezone(tz)

    kanta = {u: c for u, c in created.items() if epoch(c) == t2}  # as Kanta writes them
    assert kanta
    # Inclusive at both ends: an image created at exactly the bound is in.
    assert set(uuids_of(server, date_from=next(iter(kanta.values())))) == second
    assert set(uuids_of(server, date_to=at(t1).isoformat())) == first
    assert set(uuids_of(server, date_from=at(t1).isoformat(), date_to=at(t1).isoformat())) == {
        u for u in first if epoch(created[u]) == t1
    }
    micro = timedelta(microseconds=1)
    assert set(uuids_of(server, date_from=(at(t1) + micro).isoformat())) == second
    assert set(uuids_of(server, date_to=(at(t2) - micro).isoformat())) == first
    # Every form FastAPI reads as that instant: naive (UTC), an offset, Unix seconds and milliseconds.
    for form in (
        at(t2).strftime("%Y-%m-%dT%H:%M:%S"),
        at(t2).strftime("%Y-%m-%d %H:%M:%S+00:00"),
        at(t2, timezone(timedelta(hours=2))).isoformat(),
        at(t2, timezone(timedelta(hours=-5, minutes=-30))).isoformat(),
        str(int(t2)),
        str(int(t2) * 1000),
    ):
        assert set(uuids_of(server, date_from=form)) == second, form
    # A date alone is its midnight.
    assert set(uuids_of(server, date_from=at(t1).date().isoformat())) == first | second
    assert uuids_of(server, date_to=(at(t1).date() - timedelta(days=1)).isoformat()) == []
    # With the face filters and paging: filter first, then order, then the page.
    assert set(uuids_of(server, date_from=str(int(t2)), max_faces=0)) == {
        u for u in second if faces_of(server.url, u) == 0
    }
    full = uuids_of(server, date_from=str(int(t2)))
    pages = [uuids_of(server, date_from=str(int(t2)), limit=2, offset=o) for o in (0, 2, 4)]
    assert [len(p) for p in pages] == [2, 1, 0]
    assert [u for p in pages for u in p] == full
    assert standin_stats(server, CODE)["list_requests"] >= 15


def test_list_face_filters_at_least_and_at_most(standin_factory):
    server = faulty(standin_factory, "--instant")
    tags = ["f0", "f1", "f2", *FACELESS]
    for tag in tags:
        assert upload(server.url, CODE, image_bytes(tag))[0] == 202
    settle(server, CODE)
    faces = {i["uuid"]: i["faces"] for i in list_pics(server.url, CODE)[1]}
    assert sorted(faces.values()) == [0, 0, 0, 1, 1, 1]  # the stand-in finds none in FACELESS
    none, one = ({u for u, n in faces.items() if n == k} for k in (0, 1))
    for params, want in (
        ({"min_faces": 1}, one),
        ({"max_faces": 0}, none),  # as on a real server: just the images still at 0 faces
        ({"min_faces": 0, "max_faces": 0}, none),
        ({"min_faces": 1, "max_faces": 1}, one),
        ({"min_faces": 0}, none | one),
        ({"max_faces": 5}, none | one),
        ({"min_faces": 2}, set()),
        ({"min_faces": 1, "max_faces": 0}, set()),
    ):
        assert set(uuids_of(server, **params)) == want, params
    assert len(uuids_of(server, min_faces=1, limit=2)) == 2
    stats = standin_stats(server, CODE)
    assert (stats["list_requests"], stats["rows_listed"]) == (1 + 8 + 1, 6 + (3 + 3 + 3 + 3 + 6 + 6) + 2)


BAD_FILTERS = {
    "date_from": ["yesterday", "", "2026-13-01", "2026-12-06T24:00:00", "2026-12-06T05:27:47.1234567Z"],
    "date_to": ["2026-02-30", "12/06/2026", "2026-12-06T05:27:47+24:00"],
    "min_faces": ["-1", "1.5", "one", "", "99999999999999999999"],
    "max_faces": ["-1", "x", ""],
}


def test_list_filters_bad_values_422_as_fastapi(standin_factory):
    server = faulty(standin_factory, "--instant")
    for name, values in BAD_FILTERS.items():
        for value in values:
            status, body = list_pics(server.url, CODE, **{name: value})
            assert status == 422, (name, value, body)
            assert [d["loc"] for d in body["detail"]] == [["query", name]], body
    # FastAPI names every bad value at once, and checks them before the route looks the event up.
    status, body = list_pics(server.url, "no-such-event", date_from="x", max_faces="-1", limit="0")
    assert status == 422, body
    assert sorted(d["loc"][1] for d in body["detail"]) == ["date_from", "limit", "max_faces"]
    for good in (
        {"min_faces": "0", "max_faces": "0"},
        {"date_from": "2026-12-06"},
        {"date_from": "2026-12-06T05:27Z"},
        {"date_to": "1700000000"},
        {"date_from": "1700000000000.5"},
    ):
        assert list_pics(server.url, CODE, **good) == (200, []), good
    assert standin_stats(server, CODE)["list_requests"] == 5  # a 422 lists nothing


# --- a broken Kanta --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_no_faces_every_image_processed_but_none_found(standin_factory, mode):
    tags = [f"face{i}" for i in range(6)]
    stock = faulty(standin_factory, "--instant")  # the same contents, where detection works
    for tag in tags:
        assert upload(stock.url, CODE, image_bytes(tag))[0] == 202
    settle(stock, CODE)
    assert [r["faces"] for r in image_records(stock, CODE).values()] == [1] * 6

    server = faulty(standin_factory, "--no-faces", *MODES[mode])
    uids = [upload(server.url, CODE, image_bytes(tag))[2]["uuid"] for tag in tags]
    stats = settle(server, CODE)
    assert (stats["accepted"], stats["stored"], stats["processed"], stats["dropped"]) == (6, 6, 6, 0)
    records = image_records(server, CODE)
    assert set(records) == set(uids)
    assert all(r["faces"] == 0 and r["processed_at"] is not None for r in records.values())
    _, items = list_pics(server.url, CODE)
    assert {i["uuid"]: i["faces"] for i in items} == dict.fromkeys(uids, 0)
    # As Kanta leaves a faceless image: faces 0 over 0 is no update, so last_modified does not move.
    assert all(i["last_modified"] == i["created_at"] for i in items)
    assert server.rows("SELECT count(*) FROM faces") == [(0,)]
    assert call("GET", f"{server.url}/pics/{uids[0]}")[1]["faces"] == []
    assert call("GET", f"{server.url}/clusters?event_code={CODE}") == (200, [])
    assert set(uuids_of(server, max_faces=0)) == set(uids)
    assert uuids_of(server, min_faces=1) == []


@pytest.mark.parametrize("mode", MODES)
def test_detection_dies_images_stay_stored_with_0_faces(standin_factory, mode):
    # One DB connection: a job hung in detection would keep it and the next jobs would time out.
    # These die and let go, as the jobs of a killed Kanta are gone.
    flags = ("--detection-dies", "--db-pool", "1", "--db-pool-timeout", "5", *MODES[mode])
    server = faulty(standin_factory, *flags)
    uids = [upload(server.url, CODE, image_bytes(f"face{i}"))[2]["uuid"] for i in range(5)]
    stats = settle(server, CODE)
    assert (stats["accepted"], stats["stored"], stats["processed"], stats["dropped"]) == (5, 5, 0, 0)
    assert (stats["detection_died"], stats["in_pipeline"]) == (5, 0)
    assert upload_outcomes(server) == dict.fromkeys(uids, "stored")
    records = image_records(server, CODE)
    assert all(r["faces"] == 0 and r["processed_at"] is None for r in records.values())
    _, items = list_pics(server.url, CODE)
    assert {i["uuid"]: i["faces"] for i in items} == dict.fromkeys(uids, 0)
    assert all(i["last_modified"] == i["created_at"] for i in items)  # never set again
    assert server.rows("SELECT count(*) FROM faces") == [(0,)]
    assert call("GET", f"{server.url}/pics/{uids[0]}")[1]["faces"] == []


def test_cost_per_image_ms_holds_the_loop_for_each_load_of_the_event(standin_factory):
    # 20 images stored without the cost, then the same database under --cost-per-image-ms.
    server = faulty(standin_factory, "--instant")
    for i in range(20):
        assert upload(server.url, CODE, image_bytes(f"cost{i}"))[0] == 202
    assert settle(server, CODE)["event_loads"] == 0  # no cost, nothing counted

    server.extra_args = ["--instant", "--cost-per-image-ms", "1000"]  # 1 ms per image: 20 ms a load
    server.restart()
    assert list_pics(server.url, CODE, limit=5)[0] == 200
    assert call("GET", f"{server.url}/clusters?event_code={CODE}")[0] == 200
    assert call("GET", f"{server.url}/events?event_code={CODE}")[0] == 200
    assert upload(server.url, CODE, image_bytes("cost20"))[0] == 202  # its job loads the event again
    stats = settle(server, CODE)
    assert (stats["event_loads"], stats["event_load_ms"]) == (5, 5 * 20.0), stats
    assert (stats["list_requests"], stats["rows_listed"]) == (1, 5)

    # 100 ms per image: a list holds the loop for 2.1 s, and an upload sent meanwhile waits its turn.
    server.extra_args = ["--instant", "--cost-per-image-ms", "100000"]
    server.restart()
    finished: list[str] = []
    answers: dict[str, object] = {}

    def run(name: str, request) -> None:
        answers[name] = request()
        finished.append(name)

    lister = threading.Thread(target=run, args=("list", lambda: list_pics(server.url, CODE)[0]))
    lister.start()
    wait_for(lambda: standin_stats(server)["loop_held"], what="the list holding the loop")
    uploader = threading.Thread(
        target=run, args=("upload", lambda: upload(server.url, CODE, image_bytes("cost21"))[0])
    )
    uploader.start()
    wait_for(lambda: standin_stats(server)["waiting_for_loop"] == 1, what="the upload waiting for the loop")
    lister.join(timeout=30)
    uploader.join(timeout=30)
    assert finished == ["list", "upload"]
    assert answers == {"list": 200, "upload": 202}
    stats = standin_stats(server, CODE)
    assert stats["event_load_ms"] >= 2 * 2100.0, stats


def test_help_names_the_broken_kanta_flags():
    def standin(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "seed.standin", *args]
        return subprocess.run(cmd, cwd=PROJECT, env=child_env(), capture_output=True, text=True, timeout=60)

    out = standin("-h")
    assert out.returncode == 0, out.stderr
    for flag in ("--no-faces", "--detection-dies", "--clock-offset", "--cost-per-image-ms"):
        assert flag in out.stdout, flag
    for bad in (("--clock-offset", "soon"), ("--cost-per-image-ms", "-1"), ("--clock-offset", "1e12")):
        out = standin(*bad)
        assert out.returncode == 2 and bad[0] in out.stderr, (bad, out.stderr)
