"""``make-event``: event-like group photos from the Yale faces, and the ground truth of where each is.

Checked on the files written: the count and names, that every JPEG decodes to its end at its size,
the bytes of a photo-sized one, the faces per photo (2..6, different subjects, inside the photo, apart),
and that each box holds the face of its subject: the box's pixels, scaled back, against the face of
the Yale image it came from (and of another subject's image in the same condition).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from seed.core import event_photos
from seed.core.dataset import DatasetError
from seed.core.event_photos import Face, main, make_event
from tests.helpers import YALE_ZIP

SMALL = (1200, 800)
SIDE = 32  # faces are compared at SIDE x SIDE


@pytest.fixture(scope="module")
def small_event(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("small") / "event"
    make_event(out, 6, YALE_ZIP, size=SMALL, seed=3)
    return out


@pytest.fixture(scope="module")
def full_event(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("full") / "event"
    make_event(out, 2, YALE_ZIP, seed=7)
    return out


@pytest.fixture(scope="module")
def yale() -> dict[str, bytes]:
    with zipfile.ZipFile(YALE_ZIP) as zf:
        return {n: zf.read(n) for n in zf.namelist() if n.endswith(".png")}


def truth_of(out: Path) -> dict[str, list[dict]]:
    return json.loads((out / "ground-truth.json").read_text())


def decoded(path: Path) -> Image.Image:
    """The photo, decoded to its last pixel (a truncated JPEG raises here)."""
    with Image.open(path) as im:
        assert im.format == "JPEG"
        im.load()
        return im.copy()


def gray_values(im: Image.Image) -> list[int]:
    return list(im.convert("L").resize((SIDE, SIDE), Image.Resampling.BILINEAR).tobytes())


def correlation(a: list[int], b: list[int]) -> float:
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    return cov / (va * vb) ** 0.5


def source_face(yale: dict[str, bytes], member: str) -> list[int]:
    """The face region of a Yale image, where make-event says the face lies in it."""
    subject = re.search(r"subject\d+", member)
    assert subject
    with Image.open(io.BytesIO(yale[member])) as im:
        im.load()
        w, h = im.size
        fx, fy, fw, fh = Face(subject.group(0), member, b"").box_in(im.size)
        return gray_values(
            im.crop((round(fx * w), round(fy * h), round((fx + fw) * w), round((fy + fh) * h)))
        )


def other_subject(member: str) -> str:
    """The same condition of the next subject (subject15 -> subject01)."""
    found = re.search(r"subject(\d+)", member)
    assert found
    other = f"subject{int(found.group(1)) % 15 + 1:02d}"
    return member.replace(f"subject{found.group(1)}", other)


def overlaps(a: list[int], b: list[int]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def check_event(out: Path, photos: int, size: tuple[int, int], yale: dict[str, bytes]) -> list[int]:
    """Every check of the files and the ground truth; returns each photo's size in bytes."""
    names = [f"event-{k:04d}.jpg" for k in range(1, photos + 1)]
    assert sorted(p.name for p in out.iterdir()) == [*names, "ground-truth.json"]
    truth = truth_of(out)
    assert list(truth) == names
    width, height = size
    own_scores, other_scores = [], []
    for name in names:
        photo = decoded(out / name)
        assert photo.size == size
        faces = truth[name]
        assert 2 <= len(faces) <= 6
        assert len({f["subject"] for f in faces}) == len(faces), "one face per subject"
        for f in faces:
            x, y, w, h = f["box"]
            assert x >= 0 and y >= 0 and x + w <= width and y + h <= height, f
            assert re.fullmatch(r"subject\d\d", f["subject"])
            assert f"/{f['subject']}/" in f["source"] and f["source"] in yale
            # Kanta's detector finds faces 200-450 px tall at 2000 px (scaled for a smaller photo)
            lo, hi = event_photos.face_heights(height)
            assert lo - 1 <= h <= hi + 1, f
            crop = gray_values(photo.crop((x, y, x + w, y + h)))
            own = correlation(crop, source_face(yale, f["source"]))
            other = correlation(crop, source_face(yale, other_subject(f["source"])))
            assert own > 0.9, (name, f, own)
            assert other < own - 0.1, (name, f, own, other)
            own_scores.append(own)
            other_scores.append(other)
        for i, a in enumerate(faces):
            for b in faces[i + 1 :]:
                assert not overlaps(a["box"], b["box"]), (name, a, b)
    assert min(own_scores) > max(other_scores)
    return [(out / n).stat().st_size for n in names]


def test_small_photos_hold_the_faces_the_ground_truth_says(small_event: Path, yale) -> None:
    check_event(small_event, 6, SMALL, yale)


def test_photo_sized_photos_are_big_jpegs_with_the_faces(full_event: Path, yale) -> None:
    sizes = check_event(full_event, 2, (3000, 2000), yale)
    assert all(s >= 500 * 1024 for s in sizes), sizes


def test_the_same_seed_makes_the_same_photos(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    make_event(a, 2, YALE_ZIP, faces=(3, 3), size=(900, 600), seed=11)
    make_event(b, 2, YALE_ZIP, faces=(3, 3), size=(900, 600), seed=11)
    make_event(c, 2, YALE_ZIP, faces=(3, 3), size=(900, 600), seed=12)
    assert truth_of(a) == truth_of(b) != truth_of(c)
    for name in ("event-0001.jpg", "event-0002.jpg"):
        assert (a / name).read_bytes() == (b / name).read_bytes() != (c / name).read_bytes()
    assert all(len(faces) == 3 for faces in truth_of(a).values())


def test_progress_is_told_after_each_photo(tmp_path: Path) -> None:
    seen: list[int] = []
    path = make_event(tmp_path / "out", 3, YALE_ZIP, size=(900, 600), progress=seen.append)
    assert seen == [1, 2, 3]
    assert path == tmp_path / "out" / "ground-truth.json"


def test_an_empty_folder_is_fine(tmp_path: Path) -> None:
    make_event(tmp_path, 1, YALE_ZIP, size=(900, 600))
    assert (tmp_path / "event-0001.jpg").is_file()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"photos": 0}, "photos must be a whole number of at least 1"),
        ({"faces": (0, 3)}, "1 <= LO <= HI"),
        ({"faces": (5, 3)}, "1 <= LO <= HI"),
        ({"faces": (2, 16)}, "faces of 15 subjects"),
        ({"size": (0, 2000)}, "size must be WIDTHxHEIGHT"),
        ({"size": (3000, 400)}, "too small"),
        ({"size": (500, 2000), "faces": (6, 6)}, "cannot hold 6 faces"),
    ],
)
def test_bad_requests_are_refused_before_anything_is_written(tmp_path: Path, kwargs, message) -> None:
    out = tmp_path / "out"
    args = {"photos": 1, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        make_event(out, images=YALE_ZIP, **args)
    assert not out.exists() or not any(out.iterdir())


def test_a_folder_that_is_not_empty_or_not_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not empty"):
        make_event(tmp_path, 1, YALE_ZIP)
    with pytest.raises(ValueError, match="is not a folder"):
        make_event(tmp_path / "keep.txt", 1, YALE_ZIP)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_a_data_set_without_subjects_is_refused(tmp_path: Path, yale) -> None:
    images = tmp_path / "faces.zip"
    with zipfile.ZipFile(images, "w") as zf:
        zf.writestr("people/a.png", yale["yale_png/subject01/subject01_normal.png"])
    with pytest.raises(ValueError, match="faces of 0 subjects"):
        make_event(tmp_path / "out", 1, images)
    with pytest.raises(DatasetError, match="does not exist"):
        make_event(tmp_path / "out", 1, tmp_path / "nowhere.zip")


def test_the_command_writes_and_reports_progress(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code = main(
        [str(out), "--photos", "10", "--images", str(YALE_ZIP), "--faces", "2-3", "--size", "900x600"]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "make-event: 10/10 photos" in printed
    assert len(truth_of(out)) == 10
    assert all(2 <= len(f) <= 3 for f in truth_of(out).values())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--photos", "0"], "photos must be a whole number"),
        (["--photos", "2", "--faces", "6-2"], "1 <= LO <= HI"),
        (["--photos", "2", "--faces", "two"], "not a range LO-HI"),
        (["--photos", "2", "--size", "big"], "not a size WIDTHxHEIGHT"),
        (["--photos", "x"], "invalid int value"),
        ([], "required: --photos"),
    ],
)
def test_the_command_refuses_bad_input_in_one_line(tmp_path: Path, capsys, args, message) -> None:
    out = tmp_path / "out"
    code: int | str | None
    try:
        code = main([str(out), "--images", str(YALE_ZIP), *args])
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()
