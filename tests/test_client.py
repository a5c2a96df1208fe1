"""Unit tests for the coordinator's Kanta client over a fake transport (no network), and for the
contract rules of seed/kanta.py it relies on: the event-code rule and what counts as this machine."""

from __future__ import annotations

import hashlib
import json
import socket
from urllib.parse import parse_qs, urlsplit

import pytest

from seed.kanta import client as clients
from seed.kanta import contract as kanta
from seed.kanta.client import PAGE, Answer, Item, KantaClient, parse_items

HOST = "http://kanta.test:8000/api/v1"
BLOB = "http://azurite:10000/devstoreaccount1/ev/images/abc.png"


def item(uuid: str, faces: object = 1, **extra: object) -> dict:
    return {"uuid": uuid, "azure_blob_url": f"http://b/{uuid}.png", "file_extension": "png", "faces": faces,
            "created_at": "2026-12-01T10:00:00", "last_modified": "2026-12-01T10:00:01", **extra}  # fmt: skip


class FakeTransport:
    """Answers by (method, path); records every request."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.routes: dict[str, Answer] = {}
        self.pages: list[Answer] | None = None  # GET /pics answers, by offset / PAGE

    def __call__(self, method: str, url: str, name: str, timeout_s: float) -> Answer:
        self.calls.append((method, url, name))
        parts = urlsplit(url)
        if self.pages is not None and parts.path.endswith("/pics") and parts.query:
            q = parse_qs(parts.query)
            assert q["limit"] == [str(PAGE)]
            n = int(q["offset"][0]) // PAGE
            return self.pages[n] if n < len(self.pages) else Answer(200, b"[]")
        return self.routes.get(f"{method} {parts.netloc}{parts.path}", Answer(404, b""))


def page(*items: dict) -> Answer:
    return Answer(200, json.dumps(list(items)).encode())


def no_dns(monkeypatch, unresolvable: set[str]) -> list[str]:
    """getaddrinfo that knows every name but these; records what it was asked."""
    asked: list[str] = []

    def fake(host, port, *args, **kwargs):
        asked.append(host)
        if host in unresolvable:
            raise socket.gaierror(-2, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(clients.socket, "getaddrinfo", fake)
    return asked


# --- parse_items --------------------------------------------------------------------------------------
def test_a_list_page_is_read_into_items():
    items = parse_items([item("a", 2), item("b", 0, azure_blob_url=None)])
    assert items == [
        Item("a", 2, "http://b/a.png", "2026-12-01T10:00:01", "2026-12-01T10:00:00"),
        Item("b", 0, "", "2026-12-01T10:00:01", "2026-12-01T10:00:00"),
    ]
    assert parse_items([]) == []


def test_kantas_stamps_are_read_on_its_clock():
    with_face, without = parse_items([item("a", 1, last_modified="2026-12-01T10:00:01.25Z"), item("b", 0)])
    assert with_face.created == without.created == 1796119200.0  # 2026-12-01T10:00:00 UTC
    assert with_face.faces_written == 1796119201.25
    assert without.faces_written is None  # no face: last_modified is still the blob's second


@pytest.mark.parametrize(
    "body",
    [
        None, {"detail": "x"}, "Internal Server Error", [1], [item("a"), "b"],
        [item("a"), item("b", "n/a")], [item("a", True)], [item("a", 1.5)], [item("a", None)],
        [item("")], [{"faces": 1}], [item("a"), {"uuid": 7, "faces": 1}],
    ],
)  # fmt: skip
def test_one_malformed_item_makes_the_page_unreadable(body):
    assert parse_items(body) is None


# --- list_event -----------------------------------------------------------------------------------------
def test_list_event_pages_with_limit_200_and_keeps_the_path_prefix():
    t = FakeTransport()
    t.pages = [page(*(item(f"u{i}") for i in range(k, min(k + PAGE, 450)))) for k in range(0, 450, PAGE)]
    listing = KantaClient(HOST, t).list_event("ev")
    assert listing is not None and len(listing) == 450 and listing["u449"].faces == 1
    urls = [urlsplit(u) for _, u, _ in t.calls]
    assert [u.path for u in urls] == ["/api/v1/pics"] * 3
    assert [parse_qs(u.query)["offset"] for u in urls] == [["0"], ["200"], ["400"]]
    assert all(parse_qs(u.query)["event_code"] == ["ev"] for u in urls)
    assert {name for _, _, name in t.calls} == {kanta.LIST_ROW}


def test_a_full_last_page_is_followed_by_an_empty_one():
    t = FakeTransport()
    t.pages = [page(*(item(f"u{i}") for i in range(PAGE)))]
    assert len(KantaClient(HOST, t).list_event("ev") or {}) == PAGE
    assert len(t.calls) == 2


def test_an_item_repeated_across_pages_is_one_image():
    t = FakeTransport()
    t.pages = [page(*(item(f"u{i}") for i in range(PAGE))), page(item("u199", 3), item("new"))]
    listing = KantaClient(HOST, t).list_event("ev")
    assert listing is not None and len(listing) == PAGE + 1 and listing["u199"].faces == 3


@pytest.mark.parametrize("status", [404, 500])
def test_an_event_kanta_does_not_know_holds_nothing(status):
    t = FakeTransport()
    t.pages = [Answer(status, b"Internal Server Error")]
    assert KantaClient(HOST, t).list_event("nope") == {}


@pytest.mark.parametrize(
    "second",
    [Answer(500, b"Internal Server Error"), Answer(404, b""), Answer(0, b"", "timed out"), Answer(200, b"[{"),
     page(item("x", "n/a")), Answer(503, b"")],
)  # fmt: skip
def test_a_later_page_that_cannot_be_read_spoils_the_whole_listing(second):
    t = FakeTransport()
    t.pages = [page(*(item(f"u{i}") for i in range(PAGE))), second]
    assert KantaClient(HOST, t).list_event("ev") is None


@pytest.mark.parametrize(
    "first", [Answer(0, b"", "refused"), Answer(503, b""), Answer(200, b"not json"), page(item("a", "n/a"))]
)
def test_a_first_page_that_cannot_be_read_is_none_not_empty(first):
    t = FakeTransport()
    t.pages = [first]
    assert KantaClient(HOST, t).list_event("ev") is None


# --- one image ------------------------------------------------------------------------------------------
def test_image_reads_the_status_and_the_faces():
    t = FakeTransport()
    faces = [{"face_id": 1, "cluster_id": 4}, {"face_id": 2, "cluster_id": -2}]
    t.routes["GET kanta.test:8000/api/v1/pics/a"] = Answer(
        200, json.dumps({"image": item("a", 2), "faces": faces}).encode()
    )
    odd = {"image": item("o", "n/a")}
    t.routes["GET kanta.test:8000/api/v1/pics/odd"] = Answer(200, json.dumps(odd).encode())
    t.routes["GET kanta.test:8000/api/v1/pics/down"] = Answer(0, b"", "timed out")
    c = KantaClient(HOST, t)
    assert c.image("a") == (200, 2)
    assert c.image("missing") == (404, 0)
    assert c.image("odd") == (0, 0)  # a 200 that is not Kanta's answer is as good as none
    assert c.image("down") == (0, 0)
    assert c.image_clusters("a") == [4, -2] and c.image_clusters("missing") is None


# --- blobs -----------------------------------------------------------------------------------------------
def test_blob_digest_is_the_sha256_of_the_blobs_bytes(monkeypatch):
    no_dns(monkeypatch, set())
    t = FakeTransport()
    t.routes["GET azurite:10000/devstoreaccount1/ev/images/abc.png"] = Answer(200, b"PNG bytes")
    c = KantaClient(HOST, t)
    assert c.blob_digest(BLOB) == hashlib.sha256(b"PNG bytes").hexdigest()
    assert c.blob_digest(BLOB.replace("abc", "gone")) is None
    assert c.blob_digest("") is None and c.blob_digest("ftp://x/y") is None
    assert len(t.calls) == 2 and c.blob_note == ""


def test_an_unresolvable_blob_host_is_read_from_kantas_host_on_the_same_port(monkeypatch):
    asked = no_dns(monkeypatch, {"azurite"})
    t = FakeTransport()
    t.routes["GET kanta.test:10000/devstoreaccount1/ev/images/abc.png"] = Answer(200, b"x")
    c = KantaClient(HOST, t)
    assert c.blob_digest(BLOB) == hashlib.sha256(b"x").hexdigest()
    assert c.blob_digest(BLOB.replace("abc", "def")) is None
    assert asked == ["azurite"]  # looked up once per blob host
    assert [u for _, u, _ in t.calls] == [
        "http://kanta.test:10000/devstoreaccount1/ev/images/abc.png",
        "http://kanta.test:10000/devstoreaccount1/ev/images/def.png",
    ]
    assert "'azurite'" in c.blob_note and "kanta.test:10000" in c.blob_note and "--blob-host" in c.blob_note


def test_the_fallback_to_an_ipv6_kanta_host_is_bracketed(monkeypatch):
    no_dns(monkeypatch, {"azurite"})
    t = FakeTransport()
    KantaClient("http://[::1]:8000", t).blob_digest(BLOB)
    assert t.calls[0][1] == "http://[::1]:10000/devstoreaccount1/ev/images/abc.png"


@pytest.mark.parametrize(
    ("blob_host", "netloc"),
    [("localhost", "localhost:10000"), ("blobs.lan:9999", "blobs.lan:9999"), ("[::1]", "[::1]:10000"),
     ("[::1]:9999", "[::1]:9999"), ("127.0.0.1", "127.0.0.1:10000")],
)  # fmt: skip
def test_blob_host_overrides_where_blobs_are_read(monkeypatch, blob_host, netloc):
    asked = no_dns(monkeypatch, {"azurite"})
    t = FakeTransport()
    c = KantaClient(HOST, t, blob_host=blob_host)
    c.blob_digest(BLOB)
    assert t.calls[0][1] == f"http://{netloc}/devstoreaccount1/ev/images/abc.png"
    assert asked == [] and "--blob-host" in c.blob_note


def test_blob_host_keeps_a_blob_url_without_a_port_portless(monkeypatch):
    no_dns(monkeypatch, set())
    t = FakeTransport()
    KantaClient(HOST, t, blob_host="store").blob_digest("https://cdn.example/ev/images/a.png")
    assert t.calls[0][1] == "https://store/ev/images/a.png"


# --- the contract rules (seed/kanta.py) ---------------------------------------------------------------------
def test_event_code_problems_lists_every_problem_at_once():
    problems = kanta.event_code_problems("-Bad_Code--é")
    assert len(problems) == 4  # the two odd characters in one sentence
    text = " ".join(problems)
    for words in ("upper-case", "'_'", "'é'", "double hyphen", "starts or ends with a hyphen"):
        assert words in text, words
    assert kanta.event_code_problem("-Bad_Code--é") == "; ".join(problems)


@pytest.mark.parametrize(
    ("code", "count", "words"),
    [("ab", 1, "2 characters"), ("a" * 33, 1, "33 characters"), ("", 1, "0 characters"),
     ("Test-Upper", 1, "upper-case"), ("a--b", 1, "double hyphen"), ("under_score", 1, "'_'"),
     ("a b", 1, "' '"), ("ab\n", 1, "'\\n'"), ("-lead", 1, "hyphen"), ("trail-", 1, "hyphen"),
     ("A_", 3, "characters long")],
)  # fmt: skip
def test_event_code_problems_one_by_one(code, count, words):
    problems = kanta.event_code_problems(code)
    assert len(problems) == count and words in " ".join(problems), problems


@pytest.mark.parametrize("code", ["abc", "test-yale-faces", "a1-b2-c3", "0" * 32, "x-y"])
def test_event_codes_that_work_have_no_problem(code):
    assert kanta.event_code_problems(code) == [] and kanta.event_code_problem(code) is None


@pytest.mark.parametrize(
    ("host", "kind"),
    [("http://localhost:8000", "local"), ("http://LOCALHOST:8000/api/v1", "local"),
     ("http://localhost.localdomain:8000", "local"), ("http://ip6-localhost:8000", "local"),
     ("http://127.0.0.1:8000", "local"), ("http://127.8.9.10", "local"), ("http://[::1]:8000", "local"),
     ("http://kanta.example:8000", "remote"), ("https://10.0.0.5", "remote"),
     ("http://[2001:db8::1]", "remote"), ("http://localhost.example.com", "remote"), ("not a url", "remote")],
)  # fmt: skip
def test_host_kind(host, kind):
    assert kanta.host_kind(host) == kind
