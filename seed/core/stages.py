"""Where each image of a run stands in Kanta's pipeline, and the pipeline's figures.

Kanta answers 202 before it does anything, so an image passes three stages: accepted (its 202),
stored (listed by ``GET /pics``), processed (listed with ``faces`` > 0; an image with no face looks like
an unprocessed one, so it counts as done once the pipeline has moved past it still at 0, and is left
out of the processed times). Polls discover; Kanta's own records time: stored is its ``created_at``
(to the second: the estimate is the end of that second, so never before the truth, bounded by the poll
that listed it and by its face write), processed is its ``last_modified`` face write (microseconds),
both mapped to our clock by the measured offset (``server_clock.py``). Only a server that lists no
timestamps falls back to the middle of the interval between two polls.

Pure: no I/O; ``readback.py`` feeds it what each poll saw.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from seed.core.figures import percentile, spread
from seed.core.summary import Pipeline

STEADY_MIN_IMAGES = 20  # fewer processed images than this: the steady rate is the whole span's


@dataclass
class Stage:
    uuid: str = ""
    accepted_at: float | None = None
    stored_at: float | None = None
    processed_at: float | None = None
    faces: int = 0
    counted: bool = True  # uploaded by this run: resumed and already-present images are not timed
    faceless: bool = False  # settled as processed with no face (the pipeline went quiet)
    listed_at: float | None = None  # our clock: the answer of the poll that first listed it
    listed_processed_at: float | None = None  # our clock: ... that first listed it with a face
    created: float | None = None  # Kanta's clock: created_at (to the second)
    faces_written: float | None = None  # Kanta's clock: the face write (microseconds)

    def timed(self, offset: float) -> None:
        """Stored and processed from Kanta's own stamps, on our clock (offset: server minus client)."""
        if self.listed_at is None:
            return
        if self.created is not None:
            stored = min(self.created + 1.0 - offset, self.listed_at)
            if self.faces_written is not None:
                stored = min(stored, self.faces_written - offset)
            if self.accepted_at is not None:
                stored = max(stored, self.accepted_at)
            self.stored_at = stored
        if self.faces_written is not None and self.stored_at is not None and self.listed_processed_at:
            written = max(self.faces_written - offset, self.stored_at)
            self.processed_at = min(written, self.listed_processed_at)


@dataclass
class StageBook:
    stages: dict[int, Stage] = field(default_factory=dict)  # image index -> its current upload's stages
    samples: list[tuple[float, int, int, int]] = field(
        default_factory=list
    )  # (t, accepted, stored, processed)
    backlog_peak: int = 0
    held_before: int = 0  # images the event held before this run's (the event's size starts there)

    def of(self, index: int, uuid: str) -> Stage:
        """The stages of this image's current upload; a new uuid (repair, adoption) starts over."""
        stage = self.stages.get(index)
        if stage is None or stage.uuid != uuid:
            stage = self.stages[index] = Stage(uuid=uuid)
        return stage

    def accepted(self, index: int, uuid: str, at: float | None, counted: bool = True) -> None:
        stage = self.of(index, uuid)
        stage.accepted_at, stage.counted = at, counted

    def seen(
        self,
        index: int,
        uuid: str,
        faces: int,
        before: float,
        now: float,
        created: float | None = None,
        faces_written: float | None = None,
        offset: float = 0.0,
    ) -> bool:
        """This poll (answered at ``now``; the previous look was at ``before``) listed the image, with
        Kanta's stamps when it lists them (server clock; ``offset`` is server minus client). True if a
        stage was reached."""
        stage = self.of(index, uuid)
        changed = False
        if created is not None:
            stage.created = created
        if faces > 0 and faces_written is not None:
            stage.faces_written = faces_written
        if stage.stored_at is None:
            stage.listed_at = now
            stage.stored_at = middle(before, now, stage.accepted_at)
            changed = True
        if faces > 0 and (stage.processed_at is None or stage.faceless):
            stage.listed_processed_at = now
            stage.processed_at = middle(before, now, stage.stored_at)  # a late face wins over quiet
            stage.faceless, changed = False, True
        if changed:
            stage.timed(offset)
        if faces != stage.faces:
            stage.faces, changed = faces, True
        return changed

    def settle_faceless(self, index: int, at: float) -> None:
        """The pipeline went quiet with this stored image still at 0 faces: processed, with no face."""
        stage = self.stages.get(index)
        if stage is not None and stage.stored_at is not None and stage.processed_at is None:
            stage.processed_at, stage.faceless = max(at, stage.stored_at), True

    def retime(self, offset: float) -> None:
        """At the end, with the offset measured over the whole run: every stage time again."""
        for stage in self.stages.values():
            stage.timed(offset)

    def drop(self, index: int) -> None:
        self.stages.pop(index, None)

    def sample(self, now: float, indices: Iterable[int]) -> None:
        """Cumulative stage counts at this look (the live chart), and the backlog peak."""
        accepted = stored = processed = 0
        for i in indices:
            stage = self.stages.get(i)
            if stage is None or not stage.counted:
                continue
            accepted += stage.accepted_at is not None
            stored += stage.stored_at is not None
            processed += stage.processed_at is not None
        self.samples.append((now, accepted, stored, processed))
        self.backlog_peak = max(self.backlog_peak, accepted - processed)

    def per_image(self, first_sent: float | None) -> dict[str, list[float]]:
        """Each counted image's lags (s from its 202) and processed time (s from the first upload): the
        samples a regression gate judges noise by, not one percentile of them."""
        counted = [s for s in self.stages.values() if s.counted and s.accepted_at is not None]
        out: dict[str, list[float]] = {"stored_lag_s": [], "processed_lag_s": [], "processed_at_s": []}
        for s in counted:
            assert s.accepted_at is not None
            if s.stored_at is not None:
                out["stored_lag_s"].append(round(s.stored_at - s.accepted_at, 4))
            if s.processed_at is not None and not s.faceless:
                out["processed_lag_s"].append(round(s.processed_at - s.accepted_at, 4))
                if first_sent is not None:
                    out["processed_at_s"].append(round(s.processed_at - first_sent, 4))
        return out

    def figures(self, first_sent: float | None, held_back_s: float) -> Pipeline:
        counted = [s for s in self.stages.values() if s.counted and s.accepted_at is not None]
        pipe = Pipeline(backlog_peak=self.backlog_peak, held_back_s=round(held_back_s, 3))
        if first_sent is None or not counted:
            return pipe

        def last(times: list[float]) -> float | None:
            return round(max(times) - first_sent, 3) if times else None

        accepted = [s.accepted_at for s in counted if s.accepted_at is not None]
        stored = [s.stored_at for s in counted if s.stored_at is not None]
        # A faceless image's "processed" is when the pipeline was seen to move past it, not a time Kanta
        # recorded: left out of the processed times.
        processed = [s.processed_at for s in counted if s.processed_at is not None and not s.faceless]
        pipe.accepted_s, pipe.stored_s, pipe.processed_s = last(accepted), last(stored), last(processed)
        pipe.processed_per_s = steady_rate(sorted(processed), first_sent)
        pipe.rate_by_size = rate_by_size(processed, self.held_before)
        pipe.lag_s = {
            "stored": spread(
                s.stored_at - s.accepted_at
                for s in counted
                if s.stored_at is not None and s.accepted_at is not None
            ),
            "processed": spread(
                s.processed_at - s.accepted_at
                for s in counted
                if s.processed_at is not None and s.accepted_at is not None and not s.faceless
            ),
        }
        return pipe


def middle(before: float, now: float, floor: float | None) -> float:
    """The middle of (before, now], never before ``floor`` (the stage before) nor after now."""
    low = max(before, floor) if floor is not None else before
    return min(now, (min(low, now) + now) / 2)


SIZE_BUCKETS = 8  # the processed rate is shown over this many slices of the event's growth
BUCKET_MIN_IMAGES = 20


def rate_by_size(times: list[float], held_before: int = 0) -> list[list[float]]:
    """Images processed per second against the images in the event: [[images in the event at the slice's
    end, images/s in the slice], ...]. Kanta loads the whole event on every request, so it slows as the
    event grows; one rate for the whole run would hide that."""
    times = sorted(times)
    n = len(times)
    size = max(BUCKET_MIN_IMAGES, n // SIZE_BUCKETS)
    out: list[list[float]] = []
    for start in range(0, n - size + 1, size):
        chunk = times[start : start + size]
        span = chunk[-1] - (times[start - 1] if start else chunk[0])
        count = len(chunk) if start else len(chunk) - 1  # the first slice starts at its first image
        if span > 0 and count > 0:
            out.append([held_before + start + len(chunk), round(count / span, 2)])
    return out


def steady_rate(times: list[float], first_sent: float) -> float | None:
    """Images per second between the 10th and 90th percentile of their processed times (the ramp-up
    and the tail left out); over the whole span from the first upload when there are few images."""
    if not times:
        return None
    if len(times) < STEADY_MIN_IMAGES:
        span = times[-1] - first_sent
        return round(len(times) / span, 2) if span > 0 else None
    t10, t90 = percentile(times, 10), percentile(times, 90)
    inside = sum(1 for t in times if t10 < t <= t90)  # images processed during (t10, t90]: not t10's own
    return round(inside / (t90 - t10), 2) if t90 > t10 else None
