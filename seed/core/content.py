"""Proof by content: which copy in the event is which image's upload, and which copies are extra.

Kanta keeps no filename and no idempotency key, but it serves every stored image's exact bytes at its
``azure_blob_url``. So when an upload's outcome is unknown (no answer, a lost worker, a crash), the
event itself says whether it was stored: a copy whose sha256 is that image's, and that no 202 named,
is its upload. Identity stays the member path: the Yale set has byte-identical pairs, so copies are
counted per content against how many images of the data set have that content.

Pure: the caller lists the event, reads the blobs it needs, and applies the verdict.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Copy:
    """One image the event holds that this run (or its ledger) may have made."""

    uuid: str
    digest: str | None  # sha256 of its blob; None when the blob could not be read
    owner: int | None = None  # the image whose 202 (or an earlier adoption) named this uuid


@dataclass
class Verdict:
    keep: dict[int, str] = field(default_factory=dict)  # image -> the copy that counts as its upload
    adopt: dict[int, str] = field(default_factory=dict)  # the part of keep that no 202 had named
    surplus: list[str] = field(default_factory=list)  # copies of data-set content beyond one per image
    foreign: list[str] = field(default_factory=list)  # content that is no image of the data set
    unproven: list[str] = field(default_factory=list)  # unnamed copies whose bytes could not be read
    missing: list[int] = field(default_factory=list)  # images with no copy at all


def reconcile(
    members: Mapping[int, str], copies: Sequence[Copy], chosen: Mapping[int, str] | None = None
) -> Verdict:
    """Assign copies to images, one each.

    members: image index -> its content digest, for every image this event must hold once.
    copies: the copies to assign (listed in the event, never one it held before the run).
    chosen: image -> the uuid it already counts as; kept when that copy is there.

    An image keeps its chosen copy, else one of its own other copies (another 202 of it), else an
    unnamed copy of its content. A copy named by an image that is not in ``members`` is left alone.
    """
    chosen = chosen or {}
    verdict = Verdict()
    by_uuid = {c.uuid: c for c in copies}
    taken: set[str] = set()
    for i in members:
        uid = chosen.get(i)
        if uid in by_uuid and by_uuid[uid].owner in (i, None):
            verdict.keep[i] = uid
            taken.add(uid)
    own: dict[int, list[str]] = defaultdict(list)
    unnamed: dict[str, list[str]] = defaultdict(list)
    for c in copies:
        if c.uuid in taken:
            continue
        if c.owner is not None:
            if c.owner in members:
                own[c.owner].append(c.uuid)
            continue  # another image's business
        if c.digest is None:
            verdict.unproven.append(c.uuid)
        else:
            unnamed[c.digest].append(c.uuid)
    for i, digest in members.items():
        if i in verdict.keep:
            continue
        if own[i]:
            verdict.keep[i] = own[i].pop(0)
        elif unnamed[digest]:
            verdict.keep[i] = verdict.adopt[i] = unnamed[digest].pop(0)
        else:
            verdict.missing.append(i)
    digests = set(members.values())
    for uids in own.values():
        verdict.surplus.extend(uids)  # a second 202 for one image: the same bytes, stored twice
    for digest, uids in unnamed.items():
        (verdict.surplus if digest in digests else verdict.foreign).extend(uids)
    return verdict
