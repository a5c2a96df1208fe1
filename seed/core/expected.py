"""What a data set should look like once Kanta has processed it: how many of its images should get a face.

"Usable" means faces: a Kanta whose face detection broke still stores every image, so a run that only
counted stored images would pass. The rule, said in the summary:
- the Yale layout (``subjectNN[._]<condition>``): every image has a face except the three ``rightlight``
  images of subjects 01, 05 and 11 (a real Kanta finds none in those: 162 of 165, measured);
- any other data set: no manifest, so every image is taken to have a face, and half of them is asked.
A run waiting for faces passes only when faces were found in at least ``share`` of the images expected
to have one. ``--check-min-faces-share`` replaces the rule with a limit of its own (exit 3).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

YALE_NAME = re.compile(r"subject(\d{2})[._]([a-z]+)(?:\.\w+)?$")
YALE_FACELESS = frozenset({("01", "rightlight"), ("05", "rightlight"), ("11", "rightlight")})
YALE_SHARE = 0.9  # of the images with a face: a few misses are Kanta's detector, not a broken pipeline
OTHER_SHARE = 0.5  # without a manifest nothing is known per image: only a pipeline that finds few fails


@dataclass(frozen=True)
class FaceRule:
    expected: int  # images that should get a face
    share: float  # of those, the least share that must
    basis: str  # said in the summary

    @property
    def least(self) -> int:
        return math.ceil(self.expected * self.share - 1e-9)


def face_rule(members: Iterable[str]) -> FaceRule:
    names = [PurePosixPath(m).name.lower() for m in members]
    matches = [YALE_NAME.search(n) for n in names]
    if names and all(matches):
        expected = sum(1 for m in matches if m and (m.group(1), m.group(2)) not in YALE_FACELESS)
        return FaceRule(expected, YALE_SHARE, "Yale layout: no face in the rightlight images of 01, 05, 11")
    return FaceRule(len(names), OTHER_SHARE, "no face manifest for this data set")
