"""Kanta's upload pipeline after the 202, modelled with gevent sleeps (see docs/kanta-contract.md).

A stock Kanta answers 202 first; the background job then takes a DB connection from a pool of
5 + 10 overflow (waiting at most 30 s, else the image is gone), stores the blob, inserts the row
(listed, faces 0), waits for one of 4 face-detection workers, updates faces and releases the
connection. The jobs and the request handlers share one event loop, so a backlog slows the 202.
Everything here is time, not CPU: tests run many stand-ins side by side on small machines.

Broken Kantas: ``no_faces`` (detection runs but finds nothing), ``detection_dies`` (every job dies
on reaching detection, as when Kanta is killed mid-run), and ``cost_per_image_s`` (every load of an
event holds the loop longer as the event grows: Kanta loads all of an event's images with it).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import gevent
from gevent.event import Event

from .store import STORED, Store

log = logging.getLogger("kanta-standin.pipeline")

# Share of a job's event-loop time spent in each of its two steps (the rest goes to the update).
STORE_STEP_SHARE = 0.6
BLOB_STORE_S = 0.008  # the blob store is another process (Azurite): time, but not the loop's
HANDLER_LOOP_S = 0.002  # the upload route's own loop time before it answers
# GET /pics loads every image of the event: measured on a real Kanta (2 cores), ~50 ms of its loop at 165
# images and 0.10-0.19 s at 1,650: a fixed part and a part per image of the event.
LISTING_LOOP_S = 0.039
LISTING_LOOP_S_PER_IMAGE = 0.000067
FACELESS_ONE_IN = 50  # ~2% of images get no face, as ~2% of the Yale set on a real Kanta
POOL_SIZE_MAX = 5  # SQLAlchemy's pool_size; the rest of --db-pool is its overflow


class Fifo:
    """Slots handed to waiters strictly first come, first served, so a run is repeatable.

    A slot freed while someone waits goes straight to the oldest waiter: a newcomer cannot barge in.
    """

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiters: deque[list] = deque()  # [Event, granted]

    def acquire(self, timeout: float | None = None) -> bool:
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return True
        waiter = [Event(), False]
        self._waiters.append(waiter)
        waiter[0].wait(timeout)
        if waiter[1]:  # granted, even if the timeout fired in the same instant
            return True
        self._waiters.remove(waiter)
        return False

    def release(self) -> None:
        if self._waiters:
            waiter = self._waiters.popleft()
            waiter[1] = True
            waiter[0].set()
        else:
            self.free += 1

    @contextmanager
    def slot(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    @property
    def waiting(self) -> int:
        return len(self._waiters)


class EventLoop:
    """Kanta's single event loop: whoever holds it for a while makes everyone else wait, in order."""

    def __init__(self) -> None:
        self._lock = Fifo(1)

    @contextmanager
    def busy(self, seconds: float) -> Iterator[None]:
        """Hold the loop for ``seconds``; the body (the real DB write) runs at the end of that time."""
        if seconds <= 0:
            yield
            return
        with self._lock.slot():
            gevent.sleep(seconds)
            yield

    @property
    def held(self) -> bool:
        return self._lock.free == 0

    @property
    def waiting(self) -> int:
        return self._lock.waiting


def detect(data: bytes) -> list[tuple[int, int, int, int]]:
    """The 'face detection': by content, so a rerun and a second copy of an image agree."""
    digest = hashlib.sha256(data).digest()
    if int.from_bytes(digest[:8], "big") % FACELESS_ONE_IN == 0:
        return []
    # One face with a box derived from the bytes: plausible numbers, same every time.
    return [(20 + digest[8] % 60, 20 + digest[9] % 40, 90 + digest[10] % 60, 90 + digest[11] % 60)]


@dataclass(frozen=True)
class PipelineConfig:
    instant: bool = False
    workers: int = 4
    detect_s: float = 0.1
    db_pool: int = 15
    db_pool_timeout_s: float = 30.0
    loop_s: float = 0.025
    store_delay_s: float = 0.02  # --instant only: from 202 to stored
    instant_detect_s: float = 0.05  # --instant only: from stored to faces
    no_faces: bool = False  # detection runs and finds no face in any image
    detection_dies: bool = False  # a job that reaches detection dies there: stored, never processed
    cost_per_image_s: float = 0.0  # loop time per image of the event, each time the event is loaded

    def pool_error(self, code: str) -> str:
        """SQLAlchemy's QueuePool timeout as Kanta's job logs it, with this pool's numbers."""
        size = min(POOL_SIZE_MAX, self.db_pool)
        return (
            f"Error fetching event {code}: QueuePool limit of size {size} overflow {self.db_pool - size}"
            f" reached, connection timed out, timeout {self.db_pool_timeout_s:.2f}"
            " (Background on this error at: https://sqlalche.me/e/20/3o7r)"
        )


class Pipeline:
    """Runs each accepted upload's background job and knows which ones are still under way."""

    def __init__(self, store: Store, config: PipelineConfig) -> None:
        self.store = store
        self.config = config
        self.loop = EventLoop()
        self.db_pool = Fifo(config.db_pool)
        self.detectors = Fifo(config.workers)
        self.live: dict[str, str] = {}  # uuid -> event code of every job not yet finished
        self.meters: dict[str, Counter] = {}  # event code -> counters since the start (see stats)

    def meter(self, code: str) -> Counter:
        return self.meters.setdefault(code, Counter())

    # costs the request handlers pay on the shared loop -----------------------
    def event_load_s(self, code: str) -> float:
        """Loop time of loading the event with all its images (``cost_per_image_s`` per image)."""
        if not self.config.cost_per_image_s:
            return 0.0
        cost = self.config.cost_per_image_s * self.store.count_images(code)
        meter = self.meter(code)
        meter["event_loads"] += 1
        meter["event_load_us"] += round(cost * 1e6)
        return cost

    def load_event(self, code: str) -> None:
        """A route that loads the event (GET /events, GET /clusters): only that cost."""
        with self.loop.busy(self.event_load_s(code)):
            pass

    def handler_cost(self, code: str) -> None:
        """The upload route: its own bit of loop time, and the load of the event."""
        base = 0.0 if self.config.instant else HANDLER_LOOP_S
        with self.loop.busy(base + self.event_load_s(code)):
            pass

    def listing_cost(self, code: str, images: int) -> None:
        """GET /pics: reading every image of the event (pipeline mode), and the load of the event."""
        base = 0.0 if self.config.instant else LISTING_LOOP_S + LISTING_LOOP_S_PER_IMAGE * images
        cost = base + self.event_load_s(code)
        self.meter(code)["list_loop_us"] += round(cost * 1e6)  # the read-back's share of the loop
        with self.loop.busy(cost):
            pass

    def listed(self, code: str, rows: int) -> None:
        meter = self.meter(code)
        meter["list_requests"] += 1
        meter["rows_listed"] += rows

    def detect(self, data: bytes) -> list[tuple[int, int, int, int]]:
        return [] if self.config.no_faces else detect(data)

    def died_in_detection(self, code: str) -> bool:
        """With ``detection_dies``: the job ends here, its image stored and never processed."""
        if self.config.detection_dies:
            self.meter(code)["detection_died"] += 1
        return self.config.detection_dies

    # jobs --------------------------------------------------------------------
    def accept(self, code: str, uid: str, ext: str, data: bytes, lost: bool, delay_s: float) -> None:
        """Record the 202 and start its job (a lost one is recorded as such and never runs)."""
        if lost:
            self.store.record_upload(uid, code, "lost-fault")
            return
        self.store.record_upload(uid, code)
        self.live[uid] = code
        job = self._instant_job if self.config.instant else self._job
        gevent.spawn(self._guarded, job, code, uid, ext, data, delay_s)  # guarded: _guarded logs a failure

    def _guarded(self, job, code: str, uid: str, ext: str, data: bytes, delay_s: float) -> None:
        try:
            job(code, uid, ext, data, delay_s)
        except Exception as e:  # Kanta only logs a failed job; the image is whatever it got to
            log.exception("Error processing image %s of event %s", uid, code)
            if self.store.get_image(uid) is None:
                self.store.settle_upload(uid, f"failed: {type(e).__name__}")
        finally:
            self.live.pop(uid, None)

    def _instant_job(self, code: str, uid: str, ext: str, data: bytes, delay_s: float) -> None:
        gevent.sleep(self.config.store_delay_s + delay_s)
        with self.loop.busy(self.event_load_s(code)):
            event = self.store.find_event(code)
        if event is None:
            self.store.settle_upload(uid, "dropped-no-event")
            return
        self.store.store_image(code, uid, ext, data)
        self.store.settle_upload(uid, STORED)
        if self.died_in_detection(code):
            return
        gevent.sleep(self.config.instant_detect_s)
        self.store.set_faces(uid, self.detect(data))

    def _job(self, code: str, uid: str, ext: str, data: bytes, delay_s: float) -> None:
        cfg = self.config
        if delay_s:
            gevent.sleep(delay_s)
        if not self.db_pool.acquire(cfg.db_pool_timeout_s):
            log.error(cfg.pool_error(code))
            self.store.settle_upload(uid, "dropped-pool-timeout")
            return
        try:  # the connection is held from the event lookup to the faces update
            with self.loop.busy(cfg.loop_s * STORE_STEP_SHARE / 2 + self.event_load_s(code)):
                event = self.store.find_event(code)
            if event is None:  # Kanta's trap: the 202 went out, the image silently goes nowhere
                self.store.settle_upload(uid, "dropped-no-event")
                return
            gevent.sleep(BLOB_STORE_S)
            blob = self.store.write_blob(code, uid, ext, data)
            with self.loop.busy(cfg.loop_s * STORE_STEP_SHARE / 2):
                self.store.insert_image(code, uid, ext, len(data), blob)
                self.store.settle_upload(uid, STORED)
            if self.died_in_detection(code):
                return
            with self.detectors.slot():
                gevent.sleep(cfg.detect_s)
            boxes = self.detect(data)
            with self.loop.busy(cfg.loop_s * (1 - STORE_STEP_SHARE)):
                self.store.set_faces(uid, boxes)
        finally:
            self.db_pool.release()

    def stats(self, code: str | None = None) -> dict:
        stats = self.store.upload_stats(code)
        stats["in_pipeline"] = sum(1 for c in self.live.values() if code is None or c == code)
        stats["waiting_for_db"] = self.db_pool.waiting
        stats["waiting_for_detection"] = self.detectors.waiting
        stats["loop_held"] = self.loop.held
        stats["waiting_for_loop"] = self.loop.waiting
        meters: Counter[str] = Counter()
        for c, meter in self.meters.items():
            if code is None or c == code:
                meters.update(meter)
        for key in ("list_requests", "rows_listed", "event_loads", "detection_died"):
            stats[key] = meters[key]
        stats["event_load_ms"] = meters["event_load_us"] / 1000
        stats["list_loop_ms"] = meters["list_loop_us"] / 1000
        return stats
