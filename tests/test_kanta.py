"""Unit tests for the pure parts of seed.kanta and seed.preflight: the contract, multipart bodies, prepare."""

from __future__ import annotations

import email.policy
import re
import zipfile
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from email.parser import BytesParser

import pytest

from seed.coordination import preflight
from seed.coordination.coordinator import Bodies
from seed.coordination.options import Settings
from seed.coordination.preflight import BadInput
from seed.core.dataset import DatasetError, Image, load, synthetic
from seed.kanta import contract as kanta

YALE_MEMBER = "yale_png/subject01/subject01_happy.png"


# --- event codes ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "code", ["test-yale-faces", "abc", "a-b-c", "0a9", "x" * 32, "a1-" + "b" * 29], ids=str
)
def test_event_code_that_works_end_to_end(code):
    assert kanta.event_code_problem(code) is None


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("Test-Upper", "upper-case"),
        ("a--b", "double hyphen"),
        ("under_score", "'_'"),
        ("-lead", "starts or ends with a hyphen"),
        ("trail-", "starts or ends with a hyphen"),
        ("ab", "2 characters"),
        ("x" * 33, "33 characters"),
        ("a b", "' '"),
        ("", "0 characters"),
        ("abc.d", "'.'"),
        ("caf\u00e9", "'é'"),
    ],
    ids=lambda v: repr(v)[:20],
)
def test_event_code_that_breaks_kanta(code, words):
    problem = kanta.event_code_problem(code)
    assert problem is not None
    assert words in problem


@pytest.mark.parametrize("code", ["abc\n", "test-yale-faces\n"], ids=repr)
def test_event_code_with_a_trailing_newline_is_refused(code):
    assert kanta.event_code_problem(code) is not None


def test_default_event_code_is_valid():
    assert kanta.event_code_problem(kanta.DEFAULT_EVENT_CODE) is None


# --- hosts and paths -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "host",
    [
        "http://localhost:8000",
        "https://kanta.example.org",
        "http://localhost:8000/api/v1",
        "https://kanta.example.org/api/v1/",
        "http://127.0.0.1:8000/",
    ],
)
def test_usable_host(host):
    assert kanta.host_problem(host) is None


@pytest.mark.parametrize(
    ("host", "words"),
    [
        ("ftp://localhost:8000", "not an http(s) URL"),
        ("localhost:8000", "not an http(s) URL"),
        ("http://", "not an http(s) URL"),
        ("", "not an http(s) URL"),
        ("http://localhost:8000/api/v1?x=1", "query or fragment"),
        ("http://localhost:8000#top", "query or fragment"),
    ],
)
def test_unusable_host(host, words):
    problem = kanta.host_problem(host)
    assert problem is not None and words in problem


@pytest.mark.parametrize("host", ["http://localhost:abc", "http://localhost:99999"])
def test_host_with_a_bad_port_is_refused(host):
    assert kanta.host_problem(host) is not None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("http://localhost:8000", "http://localhost:8000/events"),
        ("http://localhost:8000/", "http://localhost:8000/events"),
        ("http://localhost:8000/api/v1", "http://localhost:8000/api/v1/events"),
        ("http://localhost:8000/api/v1/", "http://localhost:8000/api/v1/events"),
    ],
)
def test_url_keeps_the_prefix_and_does_not_double_slashes(host, expected):
    assert kanta.url(host, kanta.EVENTS_PATH) == expected
    assert "//" not in kanta.url(host, kanta.HEALTH_PATH).split("://", 1)[1]


def test_upload_path_quotes_the_code():
    assert kanta.upload_path("test-yale-faces") == "/pics/test-yale-faces"
    assert kanta.upload_path("a b") == "/pics/a%20b"
    assert kanta.upload_path("a/b?c#d") == "/pics/a%2Fb%3Fc%23d"


def test_event_payload_is_a_week_from_now_in_iso_8601():
    now = datetime(2025, 3, 1, 12, 30, tzinfo=timezone.utc)
    p = kanta.event_payload("test-yale-faces", "Test Yale Faces", now)
    assert p["event_code"] == "test-yale-faces" and p["name"] == "Test Yale Faces"
    start = datetime.fromisoformat(p["start_date_time"])
    end = datetime.fromisoformat(p["end_date_time"])
    assert start == now
    assert start < end and end - start == timedelta(days=7)
    assert start.tzinfo is not None and end.tzinfo is not None


def test_event_payload_defaults_to_now():
    before = datetime.now(timezone.utc)
    p = kanta.event_payload("abc", "Abc")
    after = datetime.now(timezone.utc)
    start = datetime.fromisoformat(p["start_date_time"])
    assert before <= start <= after
    assert start < datetime.fromisoformat(p["end_date_time"])


# --- multipart bodies ----------------------------------------------------------------------------
def parse_multipart(body: bytes, content_type: str):
    """Parse a multipart/form-data body with the standard library's email package, independently."""
    raw = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode() + body
    msg = BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    assert msg.is_multipart()
    assert not msg.defects, msg.defects
    return list(msg.iter_parts())


@pytest.fixture(scope="module")
def yale_png(yale_zip) -> tuple[Image, bytes]:
    with zipfile.ZipFile(yale_zip) as zf:
        data = zf.read(YALE_MEMBER)
    return Image(YALE_MEMBER, "subject01_happy.png", "image/png", len(data), ""), data


def image_of(member: str, filename: str, content_type: str, data: bytes) -> tuple[Image, bytes]:
    return Image(member, filename, content_type, len(data), ""), data


def test_encode_upload_is_one_image_file_part(yale_png):
    image, data = yale_png
    boundary = kanta.multipart_boundary()
    body = kanta.encode_upload(image, data, boundary)
    (part,) = parse_multipart(body, kanta.content_type_header(boundary))
    assert part.get_content_disposition() == "form-data"
    assert part.get_param("name", header="content-disposition") == "image_file"
    assert part.get_filename() == "subject01_happy.png"
    assert part.get_content_type() == "image/png"
    payload = part.get_payload(decode=True)
    assert payload == data  # byte for byte, \r and \n bytes included
    # The round trip means something: a real PNG with CR and LF bytes inside (its signature has both).
    assert len(data) > 10_000 and b"\r\n" in data and data.count(b"\n") > 1


def test_encode_upload_body_framing(yale_png):
    body = kanta.encode_upload(*yale_png, "XyZ")
    assert body.startswith(b"--XyZ\r\n")
    assert body.endswith(b"\r\n--XyZ--\r\n")
    assert body.count(b"--XyZ") == 2
    assert kanta.content_type_header("XyZ") == "multipart/form-data; boundary=XyZ"


def test_boundaries_are_fresh_and_header_safe():
    a, b = kanta.multipart_boundary(), kanta.multipart_boundary()
    assert a != b
    assert len(a) <= 70 and all(c.isalnum() or c == "-" for c in a)  # RFC 2046 bchars subset


@pytest.mark.parametrize(
    "filename", ['say "cheese".png', 'a"b.gif', "back\\slash.png", 'both\\"mixed.png'], ids=repr
)
def test_filename_quotes_and_backslashes_are_escaped(filename):
    img, data = image_of("set/" + filename, filename, "image/gif", b"GIF89a\x01\x00\x01\x00payload")
    body = kanta.encode_upload(img, data, "b0undary")
    header = body.split(b"\r\n\r\n", 1)[0].decode()
    value = header.split('filename="', 1)[1].rsplit('"', 1)[0]
    assert re.fullmatch(r'(?:[^"\\\r\n]|\\.)*', value), value  # a valid quoted-string body
    assert value != filename  # something was escaped
    (part,) = parse_multipart(body, kanta.content_type_header("b0undary"))
    assert part.get_filename() == filename
    assert part.get_param("name", header="content-disposition") == "image_file"
    assert part.get_payload(decode=True) == data


def test_filename_with_a_line_break_stays_in_one_header():
    img, data = image_of("set/odd\r\nname.png", "odd\r\nname.png", "image/png", b"\x89PNG\r\n\x1a\nrest")
    body = kanta.encode_upload(img, data, "b0undary")
    (part,) = parse_multipart(body, kanta.content_type_header("b0undary"))
    assert part.get_content_type() == "image/png"
    assert part.get_filename() is not None and part.get_filename().endswith(".png")
    assert part.get_payload(decode=True) == data


# --- preflight: the uploads, and their bodies read when sent ---------------------------------------
def test_a_plan_has_one_upload_per_image_and_no_bodies(yale_zip):
    ds = load(yale_zip)
    uploads = preflight.uploads_of(ds, "test-yale-faces")
    assert len(uploads) == len(ds.images) == 165
    for i, (u, img) in enumerate(zip(uploads, ds.images, strict=True)):
        assert (u.index, u.member, u.event_code, u.body, u.content_type) == (
            i, img.member, "test-yale-faces", b"", ""
        )  # fmt: skip


def test_bodies_are_read_when_sent_with_one_boundary(yale_zip):
    ds = load(yale_zip)
    uploads = preflight.uploads_of(ds, "test-yale-faces")
    bodies = Bodies(ds)
    assert bodies.header == kanta.content_type_header(bodies.boundary)
    with zipfile.ZipFile(yale_zip) as zf:
        for u in (uploads[0], uploads[7], uploads[-1]):
            header, body = bodies.of(u)
            assert header == bodies.header
            assert body.startswith(f"--{bodies.boundary}\r\n".encode())
            assert body.endswith(f"\r\n--{bodies.boundary}--\r\n".encode())
            (part,) = parse_multipart(body, header)
            assert part.get_payload(decode=True) == zf.read(u.member)
            assert part.get_filename() == ds.images[u.index].filename
    assert Bodies(ds).boundary != bodies.boundary  # a new boundary per process and run
    carried = replace(uploads[3], body=b"--x\r\n...", content_type="multipart/form-data; boundary=x")
    assert bodies.of(carried) == (carried.content_type, carried.body)  # brought by a grant: as it is
    with pytest.raises(DatasetError, match="upload 3 is elsewhere"):
        bodies.of(replace(uploads[3], member="elsewhere"))


def settings(**overrides) -> Settings:
    values = dict(
        host="http://127.0.0.1:9",
        event_code="test-yale-faces",
        event_name="Test Yale Faces",
        images="",
        standin=False,
        summary_json="",
        upload_pause=0.0,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    """An empty project dir that is also the working dir: no data/yale_png.zip anywhere."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("code", ["Test-Upper", "a--b", "ab", ""])
def test_prepare_refuses_a_bad_event_code(empty_cwd, code):
    with pytest.raises(BadInput, match="--event-code"):
        preflight.prepare(settings(event_code=code, standin=True), empty_cwd, reach=False)


def test_prepare_refuses_a_bad_host(empty_cwd):
    with pytest.raises(BadInput, match="is not an http"):
        preflight.prepare(settings(host="localhost:8000", standin=True), empty_cwd, reach=False)


def test_prepare_refuses_a_negative_pause(empty_cwd):
    with pytest.raises(BadInput, match="--upload-pause"):
        preflight.prepare(settings(upload_pause=-0.5, standin=True), empty_cwd, reach=False)


def test_prepare_without_a_data_set_and_without_standin_is_bad_input(empty_cwd):
    with pytest.raises(BadInput, match="no data set") as e:
        preflight.prepare(settings(), empty_cwd, reach=False)
    assert "--images" in str(e.value) and "--standin" in str(e.value)


def test_prepare_with_a_missing_images_path_is_bad_input_even_with_standin(empty_cwd):
    with pytest.raises(BadInput, match="does not exist"):
        preflight.prepare(settings(images=str(empty_cwd / "nope.zip"), standin=True), empty_cwd, reach=False)


def test_prepare_with_standin_and_no_data_file_uses_the_synthetic_set(empty_cwd):
    plan = preflight.prepare(settings(standin=True), empty_cwd, reach=False)
    assert plan.dataset.source == "built-in synthetic set"
    assert plan.dataset == synthetic()
    assert len(plan.uploads) == 165
    assert plan.settings == settings(standin=True)


def test_prepare_finds_data_yale_png_zip_in_the_project(empty_cwd, yale_zip):
    project = empty_cwd / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "yale_png.zip").write_bytes(yale_zip.read_bytes())
    plan = preflight.prepare(settings(standin=True), project, reach=False)
    assert plan.dataset.source == str(project / "data" / "yale_png.zip")
    assert len(plan.uploads) == 165


def test_prepare_loads_images_given_explicitly(empty_cwd, yale_zip):
    plan = preflight.prepare(settings(images=str(yale_zip)), empty_cwd, reach=False)
    assert [u.member for u in plan.uploads] == [i.member for i in plan.dataset.images]
    assert len(plan.uploads) == 165


def test_no_host_given_means_kantas_default():
    """Locust leaves environment.host None without -H; the run must still aim at localhost:8000."""
    from types import SimpleNamespace

    from seed.coordination.options import Settings

    assert Settings.from_options(SimpleNamespace(), "").host == kanta.DEFAULT_HOST == "http://localhost:8000"
    assert Settings.from_options(SimpleNamespace(), None).host == kanta.DEFAULT_HOST
    assert Settings.from_options(SimpleNamespace(), " http://k:8000/api/v1 ").host == "http://k:8000/api/v1"
