"""The data set's index and its readers: a zip, a folder (nested is fine), or the built-in synthetic set.

Loading a data set indexes it, once: each member's path, size, content type and sha256, read in
chunks, so memory does not grow with the data set (a folder of 5 GB of photos is indexed in a few MB).
No image's bytes are kept: each is read again when it is sent (``Dataset.read``), checked against its
index entry, and dropped after its upload.

An image is told by its bytes (PNG, GIF, JPEG, BMP, WebP magic), not its name, so the original Yale
GIFs named ``subject01.glasses`` load too, and it is checked to its end while it streams past (a PNG's
chunk CRCs and IEND, the end markers of GIF and JPEG, the sizes BMP and WebP declare): Kanta stores a
truncated image and its face detection fails later. Its identity is its member path inside the data
set, never its content (the Yale set has byte-identical pairs); its sha256 is what proves which copy
Kanta holds. One image may be at most 20 MB; a data set has no limit of its own.
"""

from __future__ import annotations

import functools
import hashlib
import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Protocol

MAX_IMAGE_BYTES = 20 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024  # read this much at a time while indexing
HEAD_BYTES = 32  # enough of an image's start for its magic and the sizes BMP and WebP declare
SYNTHETIC_SOURCE = "built-in synthetic set"

# (magic prefix, content type, file extension)
SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"GIF87a", "image/gif", "gif"),
    (b"GIF89a", "image/gif", "gif"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"BM", "image/bmp", "bmp"),
)
JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}


class DatasetError(ValueError):
    """The data set cannot be used; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Image:
    """One image of the index: where it is and what it is, never its bytes (``Dataset.read`` has them)."""

    member: str  # identity: path inside the data set, e.g. yale_png/subject01/subject01_happy.png
    filename: str  # what the server is told; carries the true extension
    content_type: str
    size: int  # bytes
    sha256: str  # of its bytes, when it was indexed


@dataclass(frozen=True)
class Skipped:
    member: str
    reason: str


class Reader(Protocol):
    def open(self, member: str) -> IO[bytes]: ...


@dataclass(frozen=True)
class FolderReader:
    root: Path

    def open(self, member: str) -> IO[bytes]:
        return (self.root / member).open("rb")


class ZipReader:
    """Members of one zip file, opened once and kept open for the reads at send time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None

    def open(self, member: str) -> IO[bytes]:
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.path)
        return self._zip.open(member)


@dataclass(frozen=True)
class MemoryReader:
    """The built-in synthetic set's bytes (165 PNGs of 80x60): generated, so held."""

    data: dict[str, bytes]

    def open(self, member: str) -> IO[bytes]:
        return io.BytesIO(self.data[member])


@dataclass(frozen=True)
class Dataset:
    source: str  # what was loaded, for the summary: the --images path as given, or SYNTHETIC_SOURCE
    images: tuple[Image, ...]
    skipped: tuple[Skipped, ...]  # members that are not images, or not whole ones, and why
    reader: Reader | None = field(default=None, compare=False, repr=False)  # None: an index only
    kind: str = "folder"  # folder | zip | synthetic: where a worker looks for its own copy

    @property
    def total_bytes(self) -> int:
        return sum(i.size for i in self.images)

    @functools.cached_property
    def digest(self) -> str:
        """The index in one hash (members, sizes, contents): a worker's own copy is the master's when
        its digest is the same."""
        h = hashlib.sha256()
        for img in self.images:
            h.update(f"{img.member}\t{img.size}\t{img.sha256}\n".encode())
        return h.hexdigest()

    def read(self, image: Image) -> bytes:
        """An image's bytes, read now and checked against the index (a file changed since it was
        indexed is refused: the run would upload other bytes than it proves)."""
        if self.reader is None:
            raise DatasetError(f"{image.member}: this data set is an index only; its bytes are elsewhere")
        try:
            data = _read_capped(self.reader.open(image.member))
        except (OSError, KeyError, zipfile.BadZipFile, zlib.error, EOFError) as e:
            raise DatasetError(f"cannot read {image.member} from {self.source} ({e})") from e
        if len(data) != image.size or hashlib.sha256(data).hexdigest() != image.sha256:
            raise DatasetError(
                f"{image.member} in {self.source} changed since the run indexed it; start the run again"
            )
        return data


def sniff(data: bytes) -> tuple[str, str] | None:
    """(content type, extension) from the first bytes, or None when they are not an image we know."""
    for magic, ctype, ext in SIGNATURES:
        if data.startswith(magic):
            return ctype, ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    return None


class PngWalk:
    """A PNG's chunks walked as its bytes stream past: each CRC must match, IHDR first, IEND last
    (trailing bytes after it are fine)."""

    def __init__(self) -> None:
        self.skip = 8  # the signature
        self.state = "head"  # head (length and tag) | body | crc | done
        self.buf = b""
        self.tag = b""
        self.remaining = 0  # body bytes still to come
        self.crc = 0
        self.consumed = 0  # bytes of the current chunk seen so far
        self.first = True
        self.verdict: str | None = None  # once done: None (whole) or why not

    def feed(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        i, n = 0, len(view)
        if self.skip:
            i = min(self.skip, n)
            self.skip -= i
        while i < n and self.state != "done":
            if self.state == "head":
                take = bytes(view[i : i + 8 - len(self.buf)])
                self.buf += take
                i += len(take)
                self.consumed += len(take)
                if len(self.buf) == 8:
                    self.remaining, self.tag = struct.unpack(">I4s", self.buf)
                    self.buf, self.crc = b"", zlib.crc32(self.tag)
                    self.state = "body" if self.remaining else "crc"
            elif self.state == "body":
                part = view[i : i + self.remaining]
                self.crc = zlib.crc32(part, self.crc)
                self.remaining -= len(part)
                i += len(part)
                self.consumed += len(part)
                if not self.remaining:
                    self.state = "crc"
            else:
                take = bytes(view[i : i + 4 - len(self.buf)])
                self.buf += take
                i += len(take)
                self.consumed += len(take)
                if len(self.buf) == 4:
                    self._chunk_done(struct.unpack(">I", self.buf)[0])

    def _chunk_done(self, crc: int) -> None:
        self.buf = b""
        if crc != self.crc:
            self.state, self.verdict = (
                "done",
                f"damaged PNG (bad CRC in chunk {self.tag.decode('latin-1')!r})",
            )
        elif self.first and self.tag != b"IHDR":
            self.state, self.verdict = "done", "damaged PNG (does not start with IHDR)"
        elif self.tag == b"IEND":
            self.state, self.verdict = "done", None
        else:
            self.state, self.first, self.consumed = "head", False, 0

    def end(self) -> str | None:
        """The verdict once every byte was fed."""
        if self.state == "done":
            return self.verdict
        if self.skip or self.consumed < 12:
            return "truncated PNG (no IEND chunk)"
        return f"truncated PNG (chunk {self.tag!r} runs past the end)"


class Scan:
    """One member's bytes as they stream past: size, sha256, kind, and whether it is whole."""

    def __init__(self) -> None:
        self.size = 0
        self.sha = hashlib.sha256()
        self.head = b""  # the first HEAD_BYTES
        self.png: PngWalk | None = None  # walking its chunks, once its first 8 bytes say PNG
        self.tail = b""  # the last 2 bytes so far
        self.end_tail = b""  # the last 2 bytes before any trailing NULs

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        before = len(self.head)
        self.size += len(chunk)
        self.sha.update(chunk)
        if before < HEAD_BYTES:
            self.head += chunk[: HEAD_BYTES - before]
        if self.png is not None:
            self.png.feed(chunk)
        elif before < 8 <= len(self.head) and self.head.startswith(SIGNATURES[0][0]):
            self.png = PngWalk()
            self.png.feed(self.head[:before] + chunk)  # every byte so far: the head held all of them
        if chunk[-1]:
            self.end_tail = (self.tail + chunk[-2:])[-2:]
        else:
            kept = chunk.rstrip(b"\x00")
            if kept:
                self.end_tail = (self.tail + kept)[-2:] if len(kept) < 2 else kept[-2:]
        self.tail = (self.tail + chunk[-2:])[-2:]

    def damage(self, ext: str) -> str | None:
        """Why this image does not decode to its end, or None when it is whole (once all is fed)."""
        if ext == "png":
            return self.png.end() if self.png is not None else "truncated PNG (no IEND chunk)"
        if ext == "gif":
            return None if self.end_tail.endswith(b"\x3b") else "truncated GIF (no trailer)"
        if ext == "jpg":
            return None if self.end_tail.endswith(b"\xff\xd9") else "truncated JPEG (no end marker)"
        if ext == "bmp":
            if self.size < 26:
                return "truncated BMP (no header)"
            size, offset = (
                struct.unpack_from("<I", self.head, 2)[0],
                struct.unpack_from("<I", self.head, 10)[0],
            )
            return None if offset <= size <= self.size else "truncated BMP (shorter than its header says)"
        if ext == "webp":
            size = struct.unpack_from("<I", self.head, 4)[0] if self.size >= 12 else 0
            return None if 12 <= size + 8 <= self.size else "truncated WebP (shorter than its header says)"
        return None


def scan(stream: IO[bytes], member: str) -> Scan:
    """Read a member to its end, in chunks, never past the limit per image."""
    s = Scan()
    with stream:
        while chunk := stream.read(min(CHUNK_BYTES, MAX_IMAGE_BYTES + 1 - s.size)):
            s.feed(chunk)
            if s.size > MAX_IMAGE_BYTES:
                raise DatasetError(f"{member} is over the 20 MB limit per image")
    return s


def upload_filename(member: str, ext: str) -> str:
    """The member's base name, with the true extension appended when its own is missing or wrong.

    Kanta derives the stored extension from the filename, so ``subject01.glasses`` must travel as
    ``subject01.glasses.gif``.
    """
    name = PurePosixPath(member).name
    own = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    same = own == ext or (ext == "jpg" and own == "jpeg")
    return name if same else f"{name}.{ext}"


def is_junk(member: str) -> bool:
    parts = PurePosixPath(member).parts
    return "__MACOSX" in parts or parts[-1] in JUNK_NAMES or parts[-1].startswith("._")


def _read_capped(stream: IO[bytes]) -> bytes:
    # Declared sizes can lie (zip bombs): never read more than the limit allows.
    with stream:
        return stream.read(MAX_IMAGE_BYTES + 1)


Entry = tuple[str, int, Callable[[], IO[bytes]]]  # member path, declared size, opener
Tick = Callable[[], object]  # called after each member: a gevent process yields there


def _opener(f: Path) -> Callable[[], IO[bytes]]:
    return lambda: f.open("rb")


def load(path: Path, tick: Tick | None = None) -> Dataset:
    """Index every image below a zip or a folder, in member-path order; no image's bytes are kept."""
    if not path.exists():
        raise DatasetError(f"data set {path} does not exist; check the --images path")
    try:
        if path.is_dir():
            entries: list[Entry] = [
                (f.relative_to(path).as_posix(), f.stat().st_size, _opener(f))
                for f in path.rglob("*")
                if f.is_file()
            ]
            return _collect(path, entries, tick)
        if not path.is_file():
            raise DatasetError(f"{path} is neither a file nor a folder; pass a .zip or a folder of images")
        if not zipfile.is_zipfile(path):
            raise DatasetError(f"{path} is not a zip file or a folder; pass a .zip or a folder of images")
        with zipfile.ZipFile(path) as zf:
            entries = [
                (i.filename, i.file_size, functools.partial(zf.open, i))
                for i in zf.infolist()
                if not i.is_dir()
            ]
            return _collect(path, entries, tick)
    except OSError as e:
        raise DatasetError(
            f"cannot read {path}: {e.strerror or e}; check the path and its permissions"
        ) from e
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise DatasetError(f"{path} is a damaged zip file ({e})") from e


def _collect(path: Path, entries: list[Entry], tick: Tick | None = None) -> Dataset:
    images: list[Image] = []
    skipped: list[Skipped] = []
    for member, declared, opener in sorted(entries, key=lambda e: e[0]):
        if is_junk(member):
            skipped.append(Skipped(member, "junk (system file)"))
            continue
        if declared > MAX_IMAGE_BYTES:
            raise DatasetError(f"{member} is {declared} bytes, over the 20 MB limit per image")
        s = scan(opener(), member)
        if tick is not None:
            tick()
        if not s.size:
            skipped.append(Skipped(member, "empty (0 bytes)"))
            continue
        kind = sniff(s.head)
        if kind is None:
            skipped.append(Skipped(member, "not an image (PNG, GIF, JPEG, BMP, WebP)"))
            continue
        why = s.damage(kind[1])
        if why:
            skipped.append(Skipped(member, why))
            continue
        images.append(Image(member, upload_filename(member, kind[1]), kind[0], s.size, s.sha.hexdigest()))
    if not images:
        damaged = [k for k in skipped if k.reason.startswith(("truncated", "damaged", "empty"))]
        extra = f" ({len(damaged)} damaged, e.g. {damaged[0].member}: {damaged[0].reason})" if damaged else ""
        raise DatasetError(
            f"data set {path} holds no images (PNG, GIF, JPEG, BMP, WebP){extra}; check the path"
        )
    is_zip = not path.is_dir()
    reader: Reader = ZipReader(path) if is_zip else FolderReader(path)
    return Dataset(str(path), tuple(images), tuple(skipped), reader, "zip" if is_zip else "folder")


def stamp(path: Path) -> str:
    """What changes when a data set's files do (names, sizes, times): an index is reused while it stays
    the same ("" when the path cannot be looked at). Bytes are still checked when they are sent."""
    try:
        if path.is_dir():
            facts: list[tuple[str, int, int, int, int]] | list[int] = sorted(
                (f.relative_to(path).as_posix(), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
                for f in path.rglob("*")
                if f.is_file()
                for st in (f.stat(),)
            )
        else:
            st = path.stat()
            facts = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    except OSError:
        return ""
    return hashlib.sha256(repr((str(path.resolve()), facts)).encode()).hexdigest()


# --- the built-in synthetic set ------------------------------------------------------------------
SUBJECTS = 15
CONDITIONS = (
    "centerlight",
    "glasses",
    "happy",
    "leftlight",
    "noglasses",
    "normal",
    "rightlight",
    "sad",
    "sleepy",
    "surprised",
    "wink",
)


def grayscale_png(width: int, height: int, pixel) -> bytes:
    """A minimal 8-bit grayscale PNG, with the standard library only."""
    rows = b"".join(b"\x00" + bytes(pixel(x, y) for x in range(width)) for y in range(height))

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 6))
        + chunk(b"IEND", b"")
    )


@functools.cache  # deterministic and small: made once per process
def synthetic() -> Dataset:
    """165 deterministic grayscale PNGs named like Yale: 15 subjects x 11 conditions, all distinct."""
    images, data = [], {}
    for s in range(1, SUBJECTS + 1):
        for c, cond in enumerate(CONDITIONS):
            # A face-ish oval whose brightness and offset depend on subject and condition.
            def pixel(x: int, y: int, s=s, c=c) -> int:
                inside = ((x - 40 - c) ** 2) / 900 + ((y - 30 - s) ** 2) / 625 < 1
                return (40 + 9 * s + 13 * c + (x * y) % 7) % 256 if inside else (s * 7 + c) % 64

            member = f"synthetic/subject{s:02d}/subject{s:02d}_{cond}.png"
            png = grayscale_png(80, 60, pixel)
            data[member] = png
            sha = hashlib.sha256(png).hexdigest()
            images.append(Image(member, PurePosixPath(member).name, "image/png", len(png), sha))
    return Dataset(SYNTHETIC_SOURCE, tuple(images), (), MemoryReader(data), "synthetic")
