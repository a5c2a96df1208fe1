"""Image records and their loaders: a zip, a folder (nested is fine), or the built-in synthetic set.

An image is told by its bytes (PNG, GIF, JPEG, BMP, WebP magic), not its name, so the original Yale
GIFs named ``subject01.glasses`` load too, and it is checked to its end (a PNG's chunk CRCs and IEND,
the end markers of GIF and JPEG, the sizes BMP and WebP declare): Kanta stores a truncated image and
its face detection fails later. Its identity is its member path inside the data set, never its
content (the Yale set has byte-identical pairs); its sha256 is what proves which copy Kanta holds.
"""

from __future__ import annotations

import functools
import hashlib
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024

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
    member: str  # identity: path inside the data set, e.g. yale_png/subject01/subject01_happy.png
    filename: str  # what the server is told; carries the true extension
    content_type: str
    data: bytes
    sha256: str = ""  # of data; filled in by make_image

    @classmethod
    def of(cls, member: str, filename: str, content_type: str, data: bytes) -> Image:
        return cls(member, filename, content_type, data, hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class Skipped:
    member: str
    reason: str


@dataclass(frozen=True)
class Dataset:
    source: str  # what was loaded, for the summary
    images: tuple[Image, ...]
    skipped: tuple[Skipped, ...]  # members that are not images, or not whole ones, and why

    @property
    def total_bytes(self) -> int:
        return sum(len(i.data) for i in self.images)


def sniff(data: bytes) -> tuple[str, str] | None:
    """(content type, extension) from the bytes, or None when they are not an image we know."""
    for magic, ctype, ext in SIGNATURES:
        if data.startswith(magic):
            return ctype, ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    return None


def damage(data: bytes, ext: str) -> str | None:
    """Why an image with this signature does not decode to its end, or None when it is whole."""
    if ext == "png":
        return png_damage(data)
    if ext == "gif":
        return None if data.rstrip(b"\x00").endswith(b"\x3b") else "truncated GIF (no trailer)"
    if ext == "jpg":
        return None if data.rstrip(b"\x00").endswith(b"\xff\xd9") else "truncated JPEG (no end marker)"
    if ext == "bmp":
        if len(data) < 26:
            return "truncated BMP (no header)"
        size, offset = struct.unpack_from("<I", data, 2)[0], struct.unpack_from("<I", data, 10)[0]
        return None if offset <= size <= len(data) else "truncated BMP (shorter than its header says)"
    if ext == "webp":
        size = struct.unpack_from("<I", data, 4)[0] if len(data) >= 12 else 0
        return None if 12 <= size + 8 <= len(data) else "truncated WebP (shorter than its header says)"
    return None


def png_damage(data: bytes) -> str | None:
    """Walk the chunks: each CRC must match, IHDR first, IEND last (trailing bytes after it are fine)."""
    pos, first = 8, True
    while True:
        if pos + 12 > len(data):
            return "truncated PNG (no IEND chunk)"
        length, tag = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            return f"truncated PNG (chunk {tag!r} runs past the end)"
        if zlib.crc32(data[pos + 4 : pos + 8 + length]) != struct.unpack_from(">I", data, end - 4)[0]:
            return f"damaged PNG (bad CRC in chunk {tag.decode('latin-1')!r})"
        if first and tag != b"IHDR":
            return "damaged PNG (does not start with IHDR)"
        if tag == b"IEND":
            return None
        pos, first = end, False


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


def _read_capped(stream) -> bytes:
    # Declared sizes can lie (zip bombs): never read more than the limit allows.
    with stream:
        return stream.read(MAX_IMAGE_BYTES + 1)


Entry = tuple[str, int, Callable[[], bytes]]  # member path, declared size, reader


def _read_file(path: Path) -> bytes:
    return _read_capped(path.open("rb"))


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    return _read_capped(zf.open(info))


def load(path: Path) -> Dataset:
    """Load every image below a zip or a folder, in member-path order."""
    if not path.exists():
        raise DatasetError(f"data set {path} does not exist; check the --images path")
    try:
        if path.is_dir():
            entries: list[Entry] = [
                (f.relative_to(path).as_posix(), f.stat().st_size, functools.partial(_read_file, f))
                for f in path.rglob("*")
                if f.is_file()
            ]
            return _collect(path, entries)
        if not path.is_file():
            raise DatasetError(f"{path} is neither a file nor a folder; pass a .zip or a folder of images")
        if not zipfile.is_zipfile(path):
            raise DatasetError(f"{path} is not a zip file or a folder; pass a .zip or a folder of images")
        with zipfile.ZipFile(path) as zf:
            entries = [
                (i.filename, i.file_size, functools.partial(_read_member, zf, i))
                for i in zf.infolist()
                if not i.is_dir()
            ]
            return _collect(path, entries)
    except OSError as e:
        raise DatasetError(
            f"cannot read {path}: {e.strerror or e}; check the path and its permissions"
        ) from e
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise DatasetError(f"{path} is a damaged zip file ({e})") from e


def _collect(path: Path, entries: list[Entry]) -> Dataset:
    images: list[Image] = []
    skipped: list[Skipped] = []
    total = 0
    for member, declared, read in sorted(entries, key=lambda e: e[0]):
        if is_junk(member):
            skipped.append(Skipped(member, "junk (system file)"))
            continue
        if declared > MAX_IMAGE_BYTES:
            raise DatasetError(f"{member} is {declared} bytes, over the 20 MB limit per image")
        data = read()
        if len(data) > MAX_IMAGE_BYTES:
            raise DatasetError(f"{member} is over the 20 MB limit per image")
        if not data:
            skipped.append(Skipped(member, "empty (0 bytes)"))
            continue
        kind = sniff(data)
        if kind is None:
            skipped.append(Skipped(member, "not an image (PNG, GIF, JPEG, BMP, WebP)"))
            continue
        why = damage(data, kind[1])
        if why:
            skipped.append(Skipped(member, why))
            continue
        total += len(data)
        if total > MAX_TOTAL_BYTES:
            raise DatasetError(f"data set {path} holds over 1 GB of images; split it into smaller sets")
        images.append(Image.of(member, upload_filename(member, kind[1]), kind[0], data))
    if not images:
        damaged = [k for k in skipped if k.reason.startswith(("truncated", "damaged", "empty"))]
        extra = f" ({len(damaged)} damaged, e.g. {damaged[0].member}: {damaged[0].reason})" if damaged else ""
        raise DatasetError(
            f"data set {path} holds no images (PNG, GIF, JPEG, BMP, WebP){extra}; check the path"
        )
    return Dataset(str(path), tuple(images), tuple(skipped))


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


def synthetic() -> Dataset:
    """165 deterministic grayscale PNGs named like Yale: 15 subjects x 11 conditions, all distinct."""
    images = []
    for s in range(1, SUBJECTS + 1):
        for c, cond in enumerate(CONDITIONS):
            # A face-ish oval whose brightness and offset depend on subject and condition.
            def pixel(x: int, y: int, s=s, c=c) -> int:
                inside = ((x - 40 - c) ** 2) / 900 + ((y - 30 - s) ** 2) / 625 < 1
                return (40 + 9 * s + 13 * c + (x * y) % 7) % 256 if inside else (s * 7 + c) % 64

            member = f"synthetic/subject{s:02d}/subject{s:02d}_{cond}.png"
            images.append(
                Image.of(member, PurePosixPath(member).name, "image/png", grayscale_png(80, 60, pixel))
            )
    return Dataset("built-in synthetic set", tuple(images), ())
