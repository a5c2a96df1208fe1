"""Unit tests for seed.dataset: the zip and folder indexes, reading at send time, sniffing, limits and
the synthetic set."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib
from collections import Counter
from pathlib import Path, PurePosixPath

import pytest

from seed.core import dataset
from seed.core.dataset import CONDITIONS, DatasetError, load, sniff, synthetic

YALE_MEMBERS = 165
YALE_DISTINCT_CONTENTS = 156

# A 1x1 GIF89a built by hand: header, logical screen (global colour table of 2), image descriptor,
# LZW minimum code size 2, one data sub-block, block terminator, trailer.
TINY_GIF = (
    b"GIF89a"
    + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0)
    + b"\x00\x00\x00\xff\xff\xff"
    + b"\x2c"
    + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
    + b"\x02\x02\x44\x01\x00"
    + b"\x3b"
)
# Enough of a JFIF header for the magic; the loader tells images by their first bytes only.
TINY_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
TINY_BMP = b"BM" + struct.pack("<IHHI", 58, 0, 0, 54) + b"\x00" * 50
TINY_WEBP = b"RIFF" + struct.pack("<I", 26) + b"WEBPVP8 " + b"\x00" * 18


def png(seed: int = 0, width: int = 4, height: int = 3) -> bytes:
    """A small valid grayscale PNG whose bytes depend on ``seed``."""
    return dataset.grayscale_png(width, height, lambda x, y: (seed * 31 + x * 7 + y) % 256)


def make_zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)
    return root


# --- the real Yale zip ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def yale(yale_zip):
    return load(yale_zip)


def test_yale_zip_gives_165_images_in_member_order(yale, yale_zip):
    with zipfile.ZipFile(yale_zip) as zf:
        pngs = [n for n in zf.namelist() if n.endswith(".png")]
    assert len(yale.images) == YALE_MEMBERS
    members = [i.member for i in yale.images]
    assert members == sorted(pngs)  # member-path order, not the zip's own (unsorted) order
    assert members[0] == "yale_png/subject01/subject01_centerlight.png"
    assert members[-1] == "yale_png/subject15/subject15_wink.png"
    assert yale.source == str(yale_zip)


def test_yale_images_carry_their_exact_bytes_name_and_type(yale, yale_zip):
    with zipfile.ZipFile(yale_zip) as zf:
        for img in yale.images:
            assert yale.read(img) == zf.read(img.member), img.member
            assert img.size == zf.getinfo(img.member).file_size
            assert img.filename == PurePosixPath(img.member).name
            assert img.content_type == "image/png"
    assert yale.total_bytes == sum(len(yale.read(i)) for i in yale.images)
    assert 3_000_000 < yale.total_bytes < 6_000_000  # "about 4 MB"


def test_yale_identity_is_the_member_path_not_the_content(yale):
    members = [i.member for i in yale.images]
    assert len(set(members)) == YALE_MEMBERS
    contents = Counter(hashlib.sha256(yale.read(i)).hexdigest() for i in yale.images)
    assert len(contents) == YALE_DISTINCT_CONTENTS
    assert sorted(contents.values()).count(2) == 9 and max(contents.values()) == 2
    by_member = {i.member: yale.read(i) for i in yale.images}
    a = by_member["yale_png/subject12/subject12_normal.png"]
    b = by_member["yale_png/subject12/subject12_noglasses.png"]
    assert a == b  # a byte-identical pair stays two images


def test_yale_ds_store_is_skipped_and_counted(yale):
    assert [k.member for k in yale.skipped] == ["yale_png/.DS_Store"]
    assert all(not i.member.endswith(".DS_Store") for i in yale.images)


# --- folders and odd names -----------------------------------------------------------------------
def test_load_folder_with_nested_subfolders(tmp_path):
    root = write_tree(
        tmp_path / "set",
        {
            "b/deep/er/two.png": png(2),
            "a/one.png": png(1),
            "top.png": png(0),
            "a/.DS_Store": b"\x00\x00\x00\x01Bud1",
        },
    )
    ds = load(root)
    assert [i.member for i in ds.images] == ["a/one.png", "b/deep/er/two.png", "top.png"]
    assert [ds.read(i) for i in ds.images] == [png(1), png(2), png(0)]
    assert [i.filename for i in ds.images] == ["one.png", "two.png", "top.png"]
    assert [k.member for k in ds.skipped] == ["a/.DS_Store"]
    assert ds.source == str(root)


def test_original_yale_gif_without_extension_loads_as_gif(tmp_path):
    root = write_tree(tmp_path / "yalefaces", {"subject01.glasses": TINY_GIF})
    ds = load(root)
    (img,) = ds.images
    assert img.member == "subject01.glasses"
    assert img.content_type == "image/gif"
    assert img.filename == "subject01.glasses.gif"
    assert ds.read(img) == TINY_GIF


def test_original_yale_gif_inside_a_zip(tmp_path):
    z = make_zip(tmp_path / "yalefaces.zip", {"yalefaces/subject01.glasses": TINY_GIF})
    (img,) = load(z).images
    assert (img.member, img.filename, img.content_type) == (
        "yalefaces/subject01.glasses",
        "subject01.glasses.gif",
        "image/gif",
    )


@pytest.mark.parametrize(
    ("name", "data", "filename", "ctype"),
    [
        ("photo.jpeg", TINY_JPEG, "photo.jpeg", "image/jpeg"),
        ("photo.jpg", TINY_JPEG, "photo.jpg", "image/jpeg"),
        ("PHOTO.JPG", TINY_JPEG, "PHOTO.JPG", "image/jpeg"),
        ("face.png", png(), "face.png", "image/png"),
        ("face.jpg", png(), "face.jpg.png", "image/png"),  # wrong extension: the true one is added
        ("scan.bmp", TINY_BMP, "scan.bmp", "image/bmp"),
        ("pic.webp", TINY_WEBP, "pic.webp", "image/webp"),
        ("noext", TINY_WEBP, "noext.webp", "image/webp"),
    ],
)
def test_upload_filename_carries_the_true_extension(tmp_path, name, data, filename, ctype):
    (img,) = load(write_tree(tmp_path / "set", {name: data})).images
    assert (img.filename, img.content_type) == (filename, ctype)


def test_junk_is_skipped_even_when_it_looks_like_an_image(tmp_path):
    z = make_zip(
        tmp_path / "set.zip",
        {
            "set/face.png": png(1),
            "__MACOSX/set/._face.png": png(2),  # resource forks: skipped by name, not by bytes
            "__MACOSX/set/face.png": png(5),
            "set/._foo.png": png(3),
            "set/Thumbs.db": png(4),
            "set/desktop.ini": b"[.ShellClassInfo]\r\n",
            "set/notes.txt": b"these are the Yale faces\n",
            "set/.DS_Store": b"\x00\x00\x00\x01Bud1",
        },
    )
    ds = load(z)
    assert [i.member for i in ds.images] == ["set/face.png"]
    assert sorted(k.member for k in ds.skipped) == sorted(
        [
            "__MACOSX/set/._face.png",
            "__MACOSX/set/face.png",
            "set/._foo.png",
            "set/Thumbs.db",
            "set/desktop.ini",
            "set/notes.txt",
            "set/.DS_Store",
        ]
    )


def test_junk_in_a_folder_is_skipped(tmp_path):
    root = write_tree(
        tmp_path / "set",
        {
            "face.png": png(1),
            "__MACOSX/._face.png": png(2),
            "__MACOSX/face.png": png(5),
            "._foo.png": png(3),
            "Thumbs.db": png(4),
            "readme.txt": b"hello",
        },
    )
    ds = load(root)
    assert [i.member for i in ds.images] == ["face.png"]
    assert sorted(k.member for k in ds.skipped) == [
        "._foo.png",
        "Thumbs.db",
        "__MACOSX/._face.png",
        "__MACOSX/face.png",
        "readme.txt",
    ]


# --- sniffing ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (png(), ("image/png", "png")),
        (TINY_GIF, ("image/gif", "gif")),
        (b"GIF87a" + TINY_GIF[6:], ("image/gif", "gif")),
        (TINY_JPEG, ("image/jpeg", "jpg")),
        (TINY_BMP, ("image/bmp", "bmp")),
        (TINY_WEBP, ("image/webp", "webp")),
    ],
    ids=["png", "gif89a", "gif87a", "jpeg", "bmp", "webp"],
)
def test_sniff_knows_image_magic(data, expected):
    assert sniff(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"hello, world\n",
        b"",
        b"RIFF\x24\x00\x00\x00WAVEfmt ",  # RIFF, but audio
        b"\x89PNG",  # truncated signature
        b"%PDF-1.7\n",
    ],
    ids=["text", "empty", "riff-wave", "short-png", "pdf"],
)
def test_sniff_says_none_for_what_is_not_an_image(data):
    assert sniff(data) is None


# --- limits --------------------------------------------------------------------------------------
def test_the_limit_is_20_mb_per_image_and_none_in_all():
    assert dataset.MAX_IMAGE_BYTES == 20 * 1024 * 1024
    assert not hasattr(dataset, "MAX_TOTAL_BYTES")


def test_zip_member_declaring_over_the_limit_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset, "MAX_IMAGE_BYTES", 1000)
    big = png(1) + b"\x00" * 1001  # compresses to almost nothing: a small zip bomb
    z = make_zip(tmp_path / "bomb.zip", {"a/big.png": big, "a/small.png": png(2)})
    with zipfile.ZipFile(z) as zf:
        assert zf.getinfo("a/big.png").file_size > 1000
        assert zf.getinfo("a/big.png").compress_size < 1000

    def no_reading(*_a, **_k):
        raise AssertionError("an over-declared member must be refused before it is read")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_reading)
    with pytest.raises(DatasetError, match="20 MB limit") as e:
        load(z)
    assert "a/big.png" in str(e.value)


def test_member_at_exactly_the_limit_loads(tmp_path, monkeypatch):
    data = png(1)
    monkeypatch.setattr(dataset, "MAX_IMAGE_BYTES", len(data))
    ds = load(make_zip(tmp_path / "edge.zip", {"edge.png": data}))
    (img,) = ds.images
    assert ds.read(img) == data


def test_folder_file_whose_real_bytes_exceed_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset, "MAX_IMAGE_BYTES", 1000)
    root = write_tree(tmp_path / "set", {"big.png": png(1) + b"\x00" * 1000, "ok.png": png(2)})
    with pytest.raises(DatasetError, match="20 MB limit") as e:
        load(root)
    assert "big.png" in str(e.value)


def test_member_whose_real_bytes_exceed_its_declared_size_is_refused_by_bytes(tmp_path, monkeypatch):
    # A reader that yields more than the declared size (a lying header): the bytes decide.
    monkeypatch.setattr(dataset, "MAX_IMAGE_BYTES", 1000)
    big = png(1) + b"\x00" * 2000
    entries = [("liar.png", 10, lambda: io.BytesIO(big))]
    with pytest.raises(DatasetError, match="20 MB limit") as e:
        dataset._collect(tmp_path / "x.zip", entries)
    assert "liar.png" in str(e.value)


def test_read_is_capped_just_over_the_limit(monkeypatch):
    monkeypatch.setattr(dataset, "MAX_IMAGE_BYTES", 1000)
    stream = io.BytesIO(b"\x00" * 100_000)
    assert len(dataset._read_capped(stream)) == 1001
    assert stream.closed


def test_zip_member_understating_its_size_is_refused(tmp_path, monkeypatch):
    """Real bytes over the limit behind a small declared size: never loaded, always a DatasetError."""
    monkeypatch.setattr(dataset, "MAX_IMAGE_BYTES", 1000)
    data = png(1) + bytes(range(256)) * 20  # over 5000 bytes
    z = bytearray(make_zip(tmp_path / "ok.zip", {"liar.png": data}).read_bytes())
    local, central = z.index(b"PK\x03\x04"), z.index(b"PK\x01\x02")
    struct.pack_into("<I", z, local + 22, 500)  # uncompressed size in the local header
    struct.pack_into("<I", z, central + 24, 500)  # and in the central directory
    liar = tmp_path / "liar.zip"
    liar.write_bytes(bytes(z))
    with zipfile.ZipFile(liar) as zf:
        assert zf.getinfo("liar.png").file_size == 500
    with pytest.raises(DatasetError, match=r"damaged zip|20 MB limit"):
        load(liar)


def test_an_index_reads_in_chunks_never_past_the_limit(monkeypatch):
    monkeypatch.setattr(dataset, "MAX_IMAGE_BYTES", 1000)
    monkeypatch.setattr(dataset, "CHUNK_BYTES", 64)
    stream = Counting(b"\x00" * 100_000)
    with pytest.raises(DatasetError, match=r"big\.png is over the 20 MB limit"):
        dataset.scan(stream, "big.png")
    assert stream.served == 1001 and stream.closed


class Counting(io.BytesIO):
    """A stream that counts the bytes read from it."""

    served = 0

    def read(self, n=-1):
        data = super().read(n)
        self.served += len(data)
        return data


# --- unusable paths ------------------------------------------------------------------------------
def test_not_a_zip(tmp_path):
    f = tmp_path / "faces.zip"
    f.write_text("I am a text file with a zip name\n")
    with pytest.raises(DatasetError, match="not a zip file"):
        load(f)


def test_an_image_file_is_not_a_data_set(tmp_path):
    f = tmp_path / "face.png"
    f.write_bytes(png())
    with pytest.raises(DatasetError, match="not a zip file"):
        load(f)


def test_empty_folder_holds_no_images(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds no images"):
        load(tmp_path / "empty")


def test_folder_of_junk_holds_no_images(tmp_path):
    root = write_tree(tmp_path / "set", {".DS_Store": b"junk", "sub/readme.txt": b"no images"})
    with pytest.raises(DatasetError, match="holds no images"):
        load(root)


def test_zip_without_images_holds_no_images(tmp_path):
    z = make_zip(tmp_path / "docs.zip", {"docs/readme.txt": b"hello", "docs/.DS_Store": b"x"})
    with pytest.raises(DatasetError, match="holds no images"):
        load(z)


def test_missing_path_does_not_exist(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load(tmp_path / "nope.zip")


# --- the synthetic set ---------------------------------------------------------------------------
def png_facts(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, decompressed IDAT) of a PNG, checking the signature and every chunk CRC."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(tag + body), tag
        chunks.append((tag, body))
        pos += 12 + length
    tags = [t for t, _ in chunks]
    assert tags[0] == b"IHDR" and tags[-1] == b"IEND" and b"IDAT" in tags
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (depth, colour) == (8, 0)  # 8-bit grayscale
    raw = zlib.decompress(b"".join(b for t, b in chunks if t == b"IDAT"))
    return width, height, raw


def test_synthetic_set_is_165_yale_named_images():
    ds = synthetic()
    assert len(ds.images) == 165
    assert ds.skipped == ()
    names = [(i.member, i.filename) for i in ds.images]
    expected = [
        (f"synthetic/subject{s:02d}/subject{s:02d}_{c}.png", f"subject{s:02d}_{c}.png")
        for s in range(1, 16)
        for c in CONDITIONS
    ]
    assert names == expected
    assert len(CONDITIONS) == 11 and "rightlight" in CONDITIONS and "noglasses" in CONDITIONS
    assert {i.content_type for i in ds.images} == {"image/png"}


def test_synthetic_images_are_distinct_valid_pngs():
    ds = synthetic()
    assert len({ds.read(i) for i in ds.images}) == 165
    for img in ds.images:
        data = ds.read(img)
        assert sniff(data) == ("image/png", "png")
        width, height, raw = png_facts(data)
        assert (width, height) == (80, 60)
        assert len(raw) == height * (width + 1), img.member
        assert all(raw[r * (width + 1)] == 0 for r in range(height))  # filter type "none"


def test_synthetic_set_is_deterministic():
    assert synthetic() == synthetic()
    made_again = synthetic.__wrapped__()  # made once per process: make it again, without the cache
    assert made_again == synthetic()
    assert [made_again.read(i) for i in made_again.images] == [
        synthetic().read(i) for i in synthetic().images
    ]


# --- images are checked to their end, not only sniffed ------------------------------------------------
DAMAGED = [
    ("truncated.png", png(1, 40, 30)[:-20], "truncated PNG"),
    ("garbage.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40, "PNG"),
    ("bad-crc.png", png(2)[:-5] + b"\x00\x00\x00\x00\x00", "PNG"),
    ("empty.png", b"", "empty (0 bytes)"),
    ("cut.gif", TINY_GIF[:-1], "truncated GIF"),
    ("cut.jpg", TINY_JPEG[:-2], "truncated JPEG"),
    ("cut.bmp", TINY_BMP[:40], "truncated BMP"),
    ("cut.webp", TINY_WEBP[:20], "truncated WebP"),
]


@pytest.mark.parametrize(("name", "data", "reason"), DAMAGED)
def test_an_image_that_does_not_decode_to_its_end_is_skipped_with_its_reason(tmp_path, name, data, reason):
    z = make_zip(tmp_path / "set.zip", {"set/good.png": png(9), f"set/{name}": data})
    ds = load(z)
    assert [i.member for i in ds.images] == ["set/good.png"]
    assert [k.member for k in ds.skipped] == [f"set/{name}"]
    assert reason in ds.skipped[0].reason


def test_whole_images_of_every_kind_load(tmp_path):
    files = {"a.png": png(1), "b.gif": TINY_GIF, "c.jpg": TINY_JPEG, "d.bmp": TINY_BMP, "e.webp": TINY_WEBP}
    ds = load(make_zip(tmp_path / "ok.zip", files))
    assert [i.member for i in ds.images] == sorted(files) and ds.skipped == ()
    assert all(i.sha256 == hashlib.sha256(ds.read(i)).hexdigest() for i in ds.images)


def test_a_set_of_only_damaged_images_says_so(tmp_path):
    with pytest.raises(DatasetError, match=r"holds no images .*damaged"):
        load(make_zip(tmp_path / "bad.zip", {"a.png": png(1)[:-20]}))


# --- an index, not the bytes: memory flat in the data set's size, bytes read when sent -----------------
@pytest.mark.parametrize("chunk", [1, 5, 7, 64, 1 << 20])
def test_checks_to_the_end_do_not_depend_on_how_the_bytes_stream_in(tmp_path, monkeypatch, chunk):
    """The same verdicts (and reasons) however the bytes are cut into chunks."""
    monkeypatch.setattr(dataset, "CHUNK_BYTES", chunk)
    padded_jpeg = TINY_JPEG + b"\x00" * 9  # trailing NULs after the end marker are fine
    whole = {"a.png": png(1, 40, 30), "b.gif": TINY_GIF, "c.jpg": padded_jpeg, "d.bmp": TINY_BMP}
    ds = load(make_zip(tmp_path / "ok.zip", {**whole, **{f"bad/{n}": d for n, d, _ in DAMAGED}}))
    assert [i.member for i in ds.images] == sorted(whole)
    reasons = {k.member.removeprefix("bad/"): k.reason for k in ds.skipped}
    for name, _, reason in DAMAGED:
        assert reason in reasons[name], (name, reasons[name])
    assert reasons["bad-crc.png"].startswith("damaged PNG (bad CRC in chunk")
    assert reasons["truncated.png"] == "truncated PNG (chunk b'IDAT' runs past the end)"


def test_a_png_whose_first_chunk_is_not_ihdr_is_damaged(tmp_path):
    ihdr_last = png(1)[:8] + png(1)[33:-12] + png(1)[8:33] + png(1)[-12:]
    ds = load(make_zip(tmp_path / "set.zip", {"a.png": png(2), "odd.png": ihdr_last}))
    assert [(k.member, k.reason) for k in ds.skipped] == [
        ("odd.png", "damaged PNG (does not start with IHDR)")
    ]


def test_the_index_holds_no_image_bytes(tmp_path):
    """Images are indexed (member, size, sha256), never held: the index of 24 MB of images is a few KB,
    and indexing it never holds more than a chunk or so at a time."""
    import pickle
    import tracemalloc

    files = {f"s/{n:02d}.jpg": jpeg_of(1024 * 1024, n) for n in range(24)}
    root = write_tree(tmp_path / "set", files)
    tracemalloc.start()
    try:
        ds = load(root)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(ds.images) == 24 and ds.total_bytes == sum(len(d) for d in files.values())
    assert peak < 4 * dataset.CHUNK_BYTES  # one chunk in flight, not the 24 MB
    img = ds.images[0]
    assert not hasattr(img, "data") and set(vars(img)) == {
        "member",
        "filename",
        "content_type",
        "size",
        "sha256",
    }
    index = pickle.dumps((ds.source, ds.images, ds.skipped))
    assert len(index) < 200 * len(ds.images)


def jpeg_of(size: int, n: int) -> bytes:
    """A JPEG-looking member of about ``size`` bytes (magic, filler, end marker), distinct per n."""
    body = hashlib.sha256(str(n).encode()).digest() * (size // 32)
    return TINY_JPEG[:-2] + body + b"\xff\xd9"


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_a_body_read_at_send_time_is_the_file(tmp_path, kind):
    files = {f"s/{n}.jpg": jpeg_of(50_000, n) for n in range(3)}
    root = write_tree(tmp_path / "set", files)
    ds = load(root if kind == "folder" else make_zip(tmp_path / "set.zip", files))
    assert ds.kind == kind
    for img in ds.images:
        assert ds.read(img) == files[img.member] == (root / img.member).read_bytes()
        assert img.sha256 == hashlib.sha256(files[img.member]).hexdigest()
        assert img.size == len(files[img.member])


def test_a_file_changed_after_indexing_is_refused_when_read(tmp_path):
    root = write_tree(tmp_path / "set", {"a.png": png(1), "b.png": png(2)})
    ds = load(root)
    (root / "a.png").write_bytes(png(3))  # the same size, other bytes
    (root / "b.png").unlink()
    with pytest.raises(DatasetError, match=r"a.png in .* changed since the run indexed it"):
        ds.read(ds.images[0])
    with pytest.raises(DatasetError, match=r"cannot read b.png"):
        ds.read(ds.images[1])


def test_the_digest_names_the_index_not_the_place(tmp_path):
    files = {"s/a.png": png(1), "s/b.png": png(2)}
    one, two = load(write_tree(tmp_path / "one", files)), load(write_tree(tmp_path / "two", files))
    assert one.source != two.source and one.digest == two.digest
    assert load(make_zip(tmp_path / "z.zip", files)).digest == one.digest
    other = load(write_tree(tmp_path / "three", {"s/a.png": png(1), "s/b.png": png(4)}))
    assert other.digest != one.digest
    assert synthetic().digest != one.digest


def test_preflight_reuses_an_index_while_the_files_stay_the_same(tmp_path, monkeypatch):
    from seed.coordination import preflight

    root = write_tree(tmp_path / "set", {"a.png": png(1)})
    first = preflight.index(root)
    calls = []
    monkeypatch.setattr(preflight, "load", lambda *a, **k: calls.append(a) or load(*a))
    assert preflight.index(root) is first and calls == []
    (root / "b.png").write_bytes(png(2))
    again = preflight.index(root)
    assert len(calls) == 1 and [i.member for i in again.images] == ["a.png", "b.png"]
