"""Event-like group photos composed from a face data set, with the ground truth of where each face is.

``make_event`` writes ``OUT/event-0001.jpg`` ... and ``OUT/ground-truth.json``. Each photo is a
photo-sized JPEG (default 3000x2000, quality 92, about 2 MB): a textured background (a colour
gradient, a few shapes and pixel noise, so the JPEG stays as big as a phone photo) with N faces of N
different subjects, N uniform in ``faces``. Each face is a whole data-set image (a Yale image is
320x243, the face in its middle) scaled so that its face is 200-450 px tall at a photo height of
2000 px (in proportion for other heights), the size Kanta's HOG detector finds, and placed in a cell
of its own of a grid laid over the photo, so no two overlap.

The box recorded for a face is not the whole pasted image but the face in it, scaled and moved with
the image: for a Yale image (320x243), its subject's box in ``YALE_FACE_BOXES``, the median of the
boxes dlib's HOG detector (what Kanta runs: ``face_recognition.face_locations(model="hog")``) gives
on that subject's images (subjects 06 and 14 sit well left of the middle); for any other image,
``FACE_BOX``, the central region where that detector's median box lies on the Yale images.

Deterministic: photo k depends only on the data set, ``seed``, k, ``faces`` and ``size``. Streaming:
one photo at a time is composed, written and dropped; only the data set's compressed bytes stay.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from PIL import Image, ImageDraw, ImageOps

from seed.core.dataset import Dataset, DatasetError, load
from seed.core.face_clusters import subject_of

PROJECT = Path(__file__).resolve().parents[2]
# Where make-event looks for the Yale zip without --images, as a seeding run does (data/yale_png.zip in
# the working folder or the project), and then beside the project (../shared/yale_png.zip).
DEFAULT_IMAGES = (
    Path("data") / "yale_png.zip",
    PROJECT / "data" / "yale_png.zip",
    PROJECT.parent / "shared" / "yale_png.zip",
)
GROUND_TRUTH = "ground-truth.json"
SUBJECT = re.compile(r"subject(\d+)")
JPEG_QUALITY = 92

# The face inside a source image, as fractions of its width and height: the central region, where
# dlib's HOG box (dlib 20.0.1, upsampled once, as face_recognition runs it) lies on the Yale images,
# median left 110, top 82, width 130, height 130 of 320x243 (measured on the 162 where it finds one).
YALE_SIZE = (320, 243)
FACE_BOX = (110 / 320, 82 / 243, 130 / 320, 130 / 243)
# The same, per Yale subject (left, top, width, height in px of 320x243): the median edges of the HOG
# boxes on the subject's images. Against each image's own HOG box, IoU min 0.57, median 0.84 (the
# central region: min 0.29, median 0.70).
YALE_FACE_BOXES = {
    "01": (110, 82, 137, 130),
    "02": (124, 96, 130, 130),
    "03": (96, 96, 130, 130),
    "04": (124, 82, 130, 130),
    "05": (120, 73, 134, 143),
    "06": (46, 82, 137, 130),
    "07": (96, 96, 130, 130),
    "08": (96, 82, 130, 130),
    "09": (96, 82, 130, 130),
    "10": (110, 82, 130, 130),
    "11": (110, 96, 130, 130),
    "12": (115, 67, 154, 153),
    "13": (127, 104, 109, 120),
    "14": (67, 82, 130, 130),
    "15": (110, 96, 130, 130),
}
# Face heights (the box's) at a photo height of REFERENCE_HEIGHT; scaled with the photo's height.
FACE_HEIGHTS = (200, 450)
REFERENCE_HEIGHT = 2000
MIN_FACE_PX = 60  # below this (in a small --size) HOG misses faces: refuse the size
MAX_SIDE = 10000
NOISE = 0.12  # share of pixel noise blended into the background: ~2 MB per 3000x2000 JPEG


@dataclass(frozen=True)
class Face:
    subject: str  # "subject04"
    member: str  # where it came from in the data set
    data: bytes  # the encoded image, decoded only when placed

    def box_in(self, size: tuple[int, int]) -> tuple[float, float, float, float]:
        """Where the face lies in its image of this size, as fractions: left, top, width, height."""
        known = YALE_FACE_BOXES.get(self.subject.removeprefix("subject")) if size == YALE_SIZE else None
        if known is None:
            return FACE_BOX
        x, y, w, h = known
        return x / YALE_SIZE[0], y / YALE_SIZE[1], w / YALE_SIZE[0], h / YALE_SIZE[1]


@dataclass(frozen=True)
class Placed:
    face: Face
    box: tuple[int, int, int, int]  # where its face lies in the photo: x, y, w, h

    def truth(self) -> dict:
        return {"subject": self.face.subject, "box": list(self.box), "source": self.face.member}


def make_event(
    out: Path,
    photos: int,
    images: Path,
    faces: tuple[int, int] = (2, 6),
    size: tuple[int, int] = (3000, 2000),
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write ``photos`` group photos and their ground truth into ``out`` (created; must be new or empty).

    Returns the path of ``ground-truth.json``. ``progress`` is called with the count written so far
    after each photo. Raises ValueError (DatasetError for the data set) on bad input, before writing.
    """
    out = Path(out)
    check_request(out, photos, faces, size)
    by_subject = faces_by_subject(load(Path(images)))
    if len(by_subject) < faces[1]:
        raise ValueError(
            f"{images} has faces of {len(by_subject)} subjects (told by 'subjectNN' in the member path);"
            f" {faces[1]} faces of different subjects per photo need at least {faces[1]}"
        )
    out.mkdir(parents=True, exist_ok=True)
    truth: dict[str, list[dict]] = {}
    digits = max(4, len(str(photos)))
    for k in range(1, photos + 1):
        name = f"event-{k:0{digits}d}.jpg"
        placed = write_photo(out / name, k, by_subject, faces, size, seed)
        truth[name] = [p.truth() for p in placed]
        if progress is not None:
            progress(k)
    path = out / GROUND_TRUTH
    partial = path.with_name(f".{GROUND_TRUTH}.partial")
    partial.write_text(truth_json(truth))
    partial.replace(path)
    return path


def truth_json(truth: dict[str, list[dict]]) -> str:
    """The ground truth as JSON, one line per face."""
    files = [
        f"  {json.dumps(name)}: [\n" + ",\n".join(f"    {json.dumps(f)}" for f in faces) + "\n  ]"
        for name, faces in truth.items()
    ]
    return "{\n" + ",\n".join(files) + "\n}\n"


def check_request(out: Path, photos: int, faces: tuple[int, int], size: tuple[int, int]) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder; pass a new or empty folder")
    if out.is_dir() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty; pass a new or empty folder")
    if isinstance(photos, bool) or not isinstance(photos, int) or photos < 1:
        raise ValueError(f"photos must be a whole number of at least 1, not {photos!r}")
    lo, hi = faces
    if not (isinstance(lo, int) and isinstance(hi, int)) or lo < 1 or lo > hi:
        raise ValueError(f"faces per photo must be a range LO-HI with 1 <= LO <= HI, not {lo}-{hi}")
    width, height = size
    if not all(isinstance(v, int) and 1 <= v <= MAX_SIDE for v in size):
        raise ValueError(f"size must be WIDTHxHEIGHT, each 1..{MAX_SIDE} px, not {width}x{height}")
    smallest = face_heights(height)[0]
    if smallest < MIN_FACE_PX:
        raise ValueError(
            f"size {width}x{height} is too small: its smallest face would be {smallest} px tall,"
            f" under the {MIN_FACE_PX} px Kanta's detector needs; use a height of at least"
            f" {math.ceil(MIN_FACE_PX * REFERENCE_HEIGHT / FACE_HEIGHTS[0])} px"
        )
    if largest_fit(hi, size) < smallest:
        raise ValueError(
            f"size {width}x{height} cannot hold {hi} faces of at least {smallest} px side by side;"
            " use a larger size or fewer faces"
        )


def faces_by_subject(dataset: Dataset) -> dict[str, list[Face]]:
    """The data set's images by subject (``subjectNN`` in the member path); others are left out."""
    found: dict[str, list[Face]] = {}
    for image in dataset.images:
        number = subject_of(image.member, SUBJECT)
        if number is not None:
            subject = f"subject{number}"
            found.setdefault(subject, []).append(Face(subject, image.member, dataset.read(image)))
    return dict(sorted(found.items()))


def face_heights(photo_height: int) -> tuple[int, int]:
    lo, hi = FACE_HEIGHTS
    return round(lo * photo_height / REFERENCE_HEIGHT), round(hi * photo_height / REFERENCE_HEIGHT)


def grid(n: int, size: tuple[int, int]) -> tuple[int, int]:
    """(columns, rows) of at least n cells whose cells hold the largest faces; the fewest cells on a tie."""
    layouts = [(cols, math.ceil(n / cols)) for cols in range(1, n + 1)]
    return max(layouts, key=lambda g: (cell_fit(size[0] // g[0], size[1] // g[1]), -g[0] * g[1]))


def cell_fit(cell_w: int, cell_h: int) -> int:
    """The tallest face (its box's height, px) whose whole Yale-shaped source image fits a cell."""
    width, height = YALE_SIZE
    return math.floor(min(cell_w * height / width, cell_h) * FACE_BOX[3])


def largest_fit(n: int, size: tuple[int, int]) -> int:
    cols, rows = grid(n, size)
    return cell_fit(size[0] // cols, size[1] // rows)


def write_photo(
    path: Path,
    k: int,
    by_subject: dict[str, list[Face]],
    faces: tuple[int, int],
    size: tuple[int, int],
    seed: int,
) -> list[Placed]:
    """Compose photo k, write it to path, and return where its faces are."""
    rng = random.Random(f"kanta-seed event {seed} {k}")
    n = rng.randint(*faces)
    subjects = rng.sample(sorted(by_subject), n)
    chosen = [rng.choice(by_subject[s]) for s in subjects]
    photo = background(size, rng)
    cols, rows = grid(n, size)
    cell_w, cell_h = size[0] // cols, size[1] // rows
    cells = rng.sample(range(cols * rows), n)
    lo, hi = face_heights(size[1])
    placed = []
    for face, cell in zip(chosen, cells, strict=True):
        with Image.open(io.BytesIO(face.data)) as source:
            source.load()
            tile = source.convert("RGB")
        sw, sh = tile.size
        fx, fy, fw, fh = face.box_in(tile.size)
        # The face box's height in the photo; the whole image scales with it and must fit its cell.
        fit = min(cell_w / sw, cell_h / sh) * sh * fh
        face_h = rng.uniform(lo, min(hi, fit))
        scale = min(face_h / (sh * fh), cell_w / sw, cell_h / sh)
        tw, th = max(1, math.floor(sw * scale)), max(1, math.floor(sh * scale))
        cx, cy = (cell % cols) * cell_w, (cell // cols) * cell_h
        tx, ty = cx + rng.randint(0, cell_w - tw), cy + rng.randint(0, cell_h - th)
        photo.paste(tile.resize((tw, th), Image.Resampling.LANCZOS), (tx, ty))
        box = (
            tx + round(fx * tw),
            ty + round(fy * th),
            round(fw * tw),
            round(fh * th),
        )
        placed.append(Placed(face, box))
    partial = path.with_name(f".{path.name}.partial")
    photo.save(partial, "JPEG", quality=JPEG_QUALITY)
    partial.replace(path)
    return placed


def background(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """A photo-like textured background: a rotated two-colour gradient, shapes, and pixel noise."""
    width, height = size
    gradient = Image.linear_gradient("L").rotate(rng.uniform(0, 360), Image.Resampling.BILINEAR)
    gradient = gradient.resize(size, Image.Resampling.BILINEAR)
    photo = ImageOps.colorize(gradient, colour(rng), colour(rng))
    draw = ImageDraw.Draw(photo)
    for _ in range(rng.randint(8, 20)):
        x, y = rng.randrange(width), rng.randrange(height)
        rx, ry = rng.randint(1 + width // 30, 1 + width // 6), rng.randint(1 + height // 30, 1 + height // 4)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x - rx, y - ry, x + rx, y + ry), fill=colour(rng))
    noise = Image.frombytes("RGB", size, rng.randbytes(width * height * 3))
    return Image.blend(photo, noise, NOISE)


def colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


# --- kanta-seed make-event -----------------------------------------------------------------------
class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad input in one line and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_range(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a range LO-HI such as 2-6")
    lo = int(match.group(1))
    return lo, int(match.group(2) or lo)


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size WIDTHxHEIGHT such as 3000x2000")
    return int(match.group(1)), int(match.group(2))


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="kanta-seed make-event",
        description="Compose event-like group photos from a face data set, with their ground truth"
        f" ({GROUND_TRUTH}); seed the folder like any other with --images OUT.",
    )
    p.add_argument("out", type=Path, metavar="OUT", help="new or empty folder to write into")
    p.add_argument("--photos", type=int, required=True, metavar="N", help="how many photos")
    p.add_argument(
        "--images",
        type=Path,
        metavar="ZIP",
        help="face data set, a zip or a folder, each image's subject told by 'subjectNN' in its path"
        " (default: data/yale_png.zip here or in the project, else ../shared/yale_png.zip beside it)",
    )
    p.add_argument("--faces", type=parse_range, default=(2, 6), metavar="LO-HI", help="faces per photo")
    p.add_argument("--size", type=parse_size, default=(3000, 2000), metavar="WxH", help="photo size")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="the same seed makes the same photos")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``kanta-seed make-event OUT --photos N ...``; argv is what follows ``make-event``."""
    args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))

    def report(done: int) -> None:
        if done % 10 == 0 or done == args.photos:
            print(f"make-event: {done}/{args.photos} photos", flush=True)

    images = args.images or next((p for p in DEFAULT_IMAGES if p.is_file()), None)
    if images is None:
        print(
            f"kanta-seed make-event: error: no data set: put yale_png.zip at {DEFAULT_IMAGES[0]} or pass"
            " --images ZIP",
            file=sys.stderr,
        )
        return 2
    try:
        truth = make_event(args.out, args.photos, images, args.faces, args.size, args.seed, report)
    except (DatasetError, ValueError) as e:
        print(f"kanta-seed make-event: error: {e}", file=sys.stderr)
        return 2
    print(f"make-event: wrote {args.photos} photos and {truth}")
    return 0
