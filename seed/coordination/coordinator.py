"""Messages between the users' side (a ``SeedLink`` per process) and the one ``Coordinator``.

The coordinator lives on the local runner or on the master. It keeps the event gate (the run's
events are made sure of once, before the first upload), the claims parked until images are ready,
and the message dispatch; what happens to the images it hands to the ``Run`` directly. Each process
that runs users (the local process, or each worker) has one link, shared by its users. Both talk in
small dicts; only the transport differs: direct calls in one process, Locust's own ``send_message``
channel in a cluster. So a local run exercises the same code as a distributed one.

Link -> coordinator ops: ``event?``, ``event-result``, ``claim``, ``results``, ``release``.
Coordinator -> link ops: ``event`` (create | ready | failed), ``grant`` (images), ``exit`` (code).
Every message carries the run id; a message from another run is ignored.

Image bytes: no process holds the data set's bytes, each body is read when it is sent (``Bodies``).
Every ``event`` message names the run's data set (its path and the digest of its index; in one
process, the index itself). A link that finds a copy of it (the worker's own ``--images``, else the
same path) indexes it and, if its digest is the master's, says so in its claims: it is granted
indexes only and reads the bodies itself. A link without one is granted the bodies too, read by the
coordinator as it grants, a few MB per grant (``GRANT_BYTES``).
"""

from __future__ import annotations

import functools
import logging
import resource
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import gevent
from gevent.event import Event

from seed.coordination.run import Run
from seed.core.dataset import Dataset, DatasetError, load, synthetic
from seed.core.greenlets import Spawner, logged_spawner
from seed.core.work import Result
from seed.kanta import contract as kanta
from seed.kanta.contract import Upload

log = logging.getLogger("kanta_seed")

MESSAGE = "kanta_seed"  # the one custom Locust message type both sides register
RESULTS_PER_MESSAGE = 32
RESULT_WINDOW_S = 0.02  # how long a worker may hold results back to send them in one message
STALE_CLAIMS_S = 3.0  # a worker that heard nothing from the master this long may have been declared lost
GRANT_BYTES = 16 * 1024 * 1024  # about this many image bytes per grant to a worker without the data set
NOT_SENT = -1  # Result.status of an image whose bytes could not be read: never sent, and final

Send = Callable[[str, dict], None]  # coordinator side: send(owner, message)
Users = Callable[[], int]  # how many users run now (for the summary's "users started")


class Bodies:
    """Multipart bodies read from a data set when they are sent (one boundary per process and run)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.boundary = kanta.multipart_boundary()
        self.header = kanta.content_type_header(self.boundary)

    def of(self, up: Upload) -> tuple[str, bytes]:
        """(Content-Type header, body) of an upload: the one it carries, else read now.
        Raises DatasetError when its bytes cannot be read, or are no longer what was indexed."""
        if up.body:
            return up.content_type, up.body
        images = self.dataset.images
        image = images[up.index % len(images)]
        if image.member != up.member:
            raise DatasetError(
                f"upload {up.index} is {up.member}, but this data set has {image.member} there"
            )
        return self.header, kanta.encode_upload(image, self.dataset.read(image), self.boundary)


def index_copy(path: str) -> Dataset:
    """A copy of the data set on this machine, indexed as the master indexed its own (yielding as it goes)."""
    return load(Path(path).expanduser(), tick=gevent.sleep)


def not_sent(index: int, why: str) -> Result:
    return Result(index=index, ok=False, status=NOT_SENT, error=f"not sent: {why}", sent_at=time.time())


class EventFailed(Exception):
    """The event could not be made sure of: nothing may be uploaded."""


class LinkClosed(Exception):
    """The run is stopping: a user waiting for work should stop instead."""


class Coordinator:
    """The authority: hands out the event job once, grants claims, passes results to the run."""

    def __init__(self, send: Send, users: Users = lambda: 0, spawn: Spawner = logged_spawner) -> None:
        self._send = send
        self._users = users
        self._spawn = spawn
        self.run: Run | None = None
        self.gate = "idle"  # idle | unknown | creating | ready | failed
        self.gate_detail = ""
        self._gate_waiters: list[str] = []
        self._claim_waiters: dict[str, int] = {}  # owner -> n, parked until images are ready
        self._wakeup: gevent.Greenlet | None = None
        self._bodies: Bodies | None = None  # for owners without the data set
        self._holds_data: dict[str, bool] = {}  # owner -> its claims say it has the run's data set
        self.streamed: Counter[str] = Counter()  # owner -> images whose bytes went with its grants

    @property
    def run_id(self) -> str:
        return self.run.run_id if self.run is not None else ""

    def begin(self, run: Run) -> None:
        """Start serving a run (a web UI rerun calls this again)."""
        self.run = run
        self.gate, self.gate_detail = "unknown", ""
        self._gate_waiters, self._claim_waiters = [], {}
        self._bodies, self._holds_data, self.streamed = Bodies(run.plan.dataset), {}, Counter()

    def end(self) -> None:
        """Stop serving: parked claims stay parked (their users are being stopped)."""
        self.gate = "idle"
        self._claim_waiters.clear()
        if self._wakeup is not None:
            self._wakeup.kill(block=False)

    # --- incoming ---------------------------------------------------------------------------------
    def handle(self, owner: str, msg: dict) -> None:
        run = self.run
        if run is None or msg.get("run") != run.run_id:
            return  # a straggler from another run
        op = msg["op"]
        if self.gate == "idle" and op not in ("results", "release"):
            return  # the run is ending: no new work, but what happened in flight still counts
        if op == "event?":
            self._event_request(owner)
        elif op == "event-result":
            self._event_result(bool(msg["ok"]), str(msg.get("detail", "")))
        elif op == "claim":
            self._claim_waiters[owner] = max(1, int(msg.get("n", 1)))
            self._holds_data[owner] = bool(msg.get("data")) and msg.get("data") == run.plan.dataset.digest
            self.serve()
        elif op == "results":
            run.record_usage(owner, tuple(msg["usage"]))
            for result in msg["results"]:
                run.result(owner, Result(**result))
            self.serve()
        elif op == "release":
            self.release(owner, msg.get("indices"), bool(msg.get("maybe_sent", True)))
        else:
            log.warning("kanta-seed: unknown message op %r from %s", op, owner)

    def release(self, owner: str, indices: Sequence[int] | None, maybe_sent: bool) -> list[int]:
        """Put an owner's unfinished claims back (a stopped or lost owner)."""
        if self.run is None:
            return []
        back = self.run.released(owner, list(indices) if indices is not None else None, maybe_sent)
        if indices is None:  # the owner is gone: forget its parked claim too
            self._claim_waiters.pop(owner, None)
        self.serve()
        return back

    # --- the event gate ---------------------------------------------------------------------------
    def _event_request(self, owner: str) -> None:
        assert self.run is not None
        if self.gate == "unknown":
            self.gate = "creating"
            self._event(owner, "create", codes=self.run.plan.event_codes)
        elif self.gate == "creating":
            self._gate_waiters.append(owner)
        else:
            self._event(owner, self.gate, detail=self.gate_detail)

    def _event(self, owner: str, do: str, **more: Any) -> None:
        """An event message, naming the run's data set (to_wire makes the index a digest and a path)."""
        assert self.run is not None
        self._to(owner, {"op": "event", "do": do, **more, "dataset": self.run.plan.dataset})

    def _event_result(self, ok: bool, detail: str) -> None:
        assert self.run is not None
        if self.gate != "creating":
            return
        self.gate, self.gate_detail = ("ready" if ok else "failed"), detail
        self.run.event_outcome, self.run.event_failed = detail, not ok
        for owner in self._gate_waiters:
            self._event(owner, self.gate, detail=detail)
        self._gate_waiters.clear()
        self.serve()

    # --- claims -----------------------------------------------------------------------------------
    def serve(self) -> None:
        """Grant parked claims as far as the queue and the backlog bound allow."""
        run = self.run
        if run is None or self.gate != "ready":
            return
        limit = run.grant_limit()
        for owner, n in list(self._claim_waiters.items()):
            streamed = not self._holds_data.get(owner, False)
            if streamed:
                n = min(n, self._streamed_batch())
            if limit is not None:
                n = min(n, limit)
            got = run.queue.claim(owner, n) if n > 0 else []
            if not got:
                break
            del self._claim_waiters[owner]
            if limit is not None:
                limit -= len(got)
            run.claimed(owner, got, self._users())
            uploads = [run.plan.uploads[i] for i in got]
            if streamed:
                uploads = self._with_bodies(owner, uploads)
            self._to(owner, {"op": "grant", "uploads": uploads})  # even none: the owner claims again
        self._schedule_wakeup()

    def _streamed_batch(self) -> int:
        """Images per grant to an owner without the data set: about GRANT_BYTES of them."""
        assert self.run is not None
        ds = self.run.plan.dataset
        return max(1, GRANT_BYTES * len(ds.images) // max(1, ds.total_bytes))

    def _with_bodies(self, owner: str, uploads: list[Upload]) -> list[Upload]:
        """The uploads with their bodies, read now; one that cannot be read fails (never sent)."""
        assert self.run is not None and self._bodies is not None
        if not self.streamed[owner]:
            log.info("kanta-seed: %s has no copy of the data set: its grants carry the images' bytes", owner)
        out = []
        for up in uploads:
            try:
                header, body = self._bodies.of(up)
            except DatasetError as e:
                log.error("kanta-seed: %s", e)
                self.run.result(owner, not_sent(up.index, str(e)))
                continue
            out.append(replace(up, body=body, content_type=header))
            self.streamed[owner] += 1
        return out

    def _schedule_wakeup(self) -> None:
        # Parked claims wait for a retry's backoff to run out: wake them when it does. (The backlog
        # bound is lifted by the read-back's polls, which call serve() themselves.)
        assert self.run is not None
        delay = self.run.queue.next_ready_in()
        if not self._claim_waiters or delay is None or (self._wakeup and not self._wakeup.dead):
            return

        def wake() -> None:
            self._wakeup = None
            self.serve()

        self._wakeup = self._spawn("claims wake-up", delay + 0.001, wake)

    def _to(self, owner: str, msg: dict) -> None:
        self._send(owner, {**msg, "run": self.run_id})


class SeedLink:
    """The users' side in one process: asks for the event, claims in batches, reports results."""

    def __init__(
        self,
        send: Callable[[dict], None],
        batch: Callable[[], int],
        result_window_s: float = 0.0,
        contact_age: Callable[[], float] = lambda: 0.0,
        spawn: Spawner = logged_spawner,
        own_images: str = "",
    ) -> None:
        self._send = send
        self._spawn = spawn
        self._batch = batch
        # Over Locust's channel, results travel in batches (one message per window, not per upload):
        # the master's cost per upload was about 40% of a worker's when each result was a message.
        self._result_window_s = result_window_s
        # Seconds since this process last heard from the coordinator. A worker frozen (SIGSTOP) or cut
        # off past Locust's heartbeat was declared lost and its claims put in doubt: on waking up it
        # must not send what it still holds.
        self._contact_age = contact_age
        self._results: list[dict] = []
        self._flusher: gevent.Greenlet | None = None
        # The data set: a worker's own copy (its --images, else the master's path), indexed here and
        # checked against the master's digest; in one process, the coordinator's own index.
        self._own_images = own_images
        self.bodies: Bodies | None = None  # the run's data set, read here; None: grants carry bytes
        self._known: dict[str, Dataset] = {}  # digest -> a copy indexed here (kept for the next run)
        self._indexing: gevent.Greenlet | None = None
        self.reset("")

    def reset(self, run_id: str) -> None:
        self.run_id = run_id
        self._results = []  # held back from another run: stale
        self._cpu_at_reset = time.process_time()
        self.closed = False
        self._buffer: list[Upload] = []
        self._requesting = False
        self._granted = Event()
        self._event: tuple[str, str, list[str]] = ("unknown", "", [])  # state, detail, codes to create
        self._event_news = Event()  # replaced on every event message, like _granted
        self.dropped_stale = 0

    # --- incoming ---------------------------------------------------------------------------------
    def handle(self, msg: dict) -> None:
        if msg.get("run") != self.run_id:
            return
        op = msg["op"]
        if op == "event":
            if isinstance(msg.get("dataset"), Dataset):
                self._use(msg["dataset"])
            elif isinstance(msg.get("data"), dict):
                self._look_for(msg["data"])
            self._event = (msg["do"], str(msg.get("detail", "")), list(msg.get("codes") or []))
            self._wake_event_waiters()
        elif op == "grant":
            self._buffer.extend(msg["uploads"])
            self._requesting = False
            granted, self._granted = self._granted, Event()
            granted.set()

    # --- the data set ----------------------------------------------------------------------------
    def _use(self, dataset: Dataset) -> None:
        if self.bodies is None or self.bodies.dataset is not dataset:
            self.bodies = Bodies(dataset)

    def _look_for(self, data: dict) -> None:
        """The run's data set, as the master named it: use a copy indexed here, or look for one."""
        digest = str(data.get("digest", ""))
        if self.bodies is not None and self.bodies.dataset.digest == digest:
            return
        self.bodies = None
        if digest in self._known:
            self._use(self._known[digest])
        elif self._indexing is None or self._indexing.dead:
            self._indexing = self._spawn("data set index", 0.0, self._index, data)

    def _index(self, data: dict) -> None:
        digest, source = str(data.get("digest", "")), str(data.get("source", ""))
        candidates: list[tuple[str, Callable[[], Dataset]]]
        if data.get("kind") == "synthetic":
            candidates = [("", synthetic)]
        else:
            paths = dict.fromkeys(p for p in (self._own_images, source) if p)
            candidates = [(p, functools.partial(index_copy, p)) for p in paths]
        for path, index in candidates:
            if path and not Path(path).expanduser().exists():
                continue
            try:
                dataset = index()
            except DatasetError as e:
                log.warning("kanta-seed: no usable copy of the data set at %s (%s)", path, e)
                continue
            if dataset.digest != digest:
                log.warning(
                    "kanta-seed: the copy of the data set at %s is not the master's (other members or"
                    " bytes): the master sends the images' bytes",
                    path,
                )
                continue
            self._known = {digest: dataset}
            self._use(dataset)
            if path:
                log.info("kanta-seed: reading the images from this machine's copy at %s", path)
            return
        log.info("kanta-seed: no copy of the data set (%s) here: the master sends the images' bytes", source)

    def body(self, up: Upload) -> tuple[str, bytes]:
        """(Content-Type header, multipart body) of a granted upload, read now; raises DatasetError."""
        if up.body:
            return up.content_type, up.body
        if self.bodies is None:
            raise DatasetError(f"{up.member} was granted without its bytes, and there is no copy here")
        return self.bodies.of(up)

    def close(self) -> None:
        """The run is stopping: wake every waiting user so it stops now, not at the stop timeout."""
        self.closed = True
        self.flush_results()
        self._event_news.set()
        self._granted.set()

    def _wake_event_waiters(self) -> None:
        news, self._event_news = self._event_news, Event()
        news.set()

    # --- used by users ----------------------------------------------------------------------------
    def ensure_events(self, create: Callable[[list[str]], tuple[bool, str]]) -> None:
        """Block until the run's events exist; exactly one caller in the cluster creates them, all of
        them at once, before the first upload (a loaded Kanta takes seconds per POST /events)."""
        while True:
            if self.closed:
                raise LinkClosed()
            news = self._event_news  # taken first: in one process the answer arrives inside _to()
            state, detail, codes = self._event
            if state == "ready":
                return
            if state == "failed":
                raise EventFailed(detail)
            if state == "create":
                self._event = ("creating", "", [])  # this process's other users wait for the outcome
                ok, detail = create(codes)
                self._event = ("ready" if ok else "failed", detail, [])
                self._to({"op": "event-result", "ok": ok, "detail": detail})
                self._wake_event_waiters()
                continue
            if state == "unknown":
                self._event = ("asked", "", [])
                self._to({"op": "event?"})
            news.wait()

    def claim(self) -> Upload:
        """The next image for this user; blocks while none is ready (the run stops us when done)."""
        while True:
            if self._buffer and self._contact_age() > STALE_CLAIMS_S:
                self.dropped_stale += len(self._buffer)
                log.warning(
                    "kanta-seed: no word from the master for %.0f s: dropping %d claimed images it has"
                    " given to others",
                    self._contact_age(),
                    len(self._buffer),
                )
                self._buffer.clear()
                self._requesting = False
            if self._buffer:
                return self._buffer.pop(0)
            if self.closed:
                raise LinkClosed()
            indexing = self._indexing
            if indexing is not None and not indexing.dead:
                indexing.join(timeout=1.0)  # a copy of the data set is being checked: then claim
                continue
            granted = self._granted  # taken first: in one process the grant arrives inside _to()
            if not self._requesting:
                self._requesting = True
                self.flush_results()
                data = self.bodies.dataset.digest if self.bodies is not None else ""
                self._to({"op": "claim", "n": max(1, self._batch()), "data": data})
            granted.wait(timeout=1.0)  # wakes now and then to notice a lost contact

    def report(self, result: Result) -> None:
        self._results.append(dict(vars(result)))
        if self._result_window_s <= 0 or len(self._results) >= RESULTS_PER_MESSAGE:
            self.flush_results()
        elif self._flusher is None:
            self._flusher = self._spawn("results flush", self._result_window_s, self.flush_results)

    def flush_results(self) -> None:
        """Send the results held back so far (before a claim or a release, they must arrive first)."""
        flusher, self._flusher = self._flusher, None
        if flusher is not None and flusher is not gevent.getcurrent():
            flusher.kill(block=False)
        if not self._results:
            return
        results, self._results = self._results, []
        # This process's CPU and peak memory ride along, so the summary can count the client's cost.
        usage = (
            time.process_time() - self._cpu_at_reset,
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        )
        self._to({"op": "results", "results": results, "usage": usage})

    def give_back(self, indices: Sequence[int], maybe_sent: bool) -> None:
        self.flush_results()
        if indices:
            self._to({"op": "release", "indices": list(indices), "maybe_sent": maybe_sent})

    def hand_back_unsent(self) -> None:
        """On stop: claims that no user started go back to the queue for others."""
        unsent = [u.index for u in self._buffer]
        self._buffer.clear()
        self.give_back(unsent, maybe_sent=False)

    def _to(self, msg: dict) -> None:
        self._send({**msg, "run": self.run_id})


# --- wire format: Upload objects travel as plain lists over Locust's msgpack channel ---------------
UPLOAD_FIELDS = [f.name for f in fields(Upload)]
INDEX_FIELDS = UPLOAD_FIELDS[:3]  # index, member, event_code: what a grant to a copy's holder carries


def to_wire(msg: dict) -> dict:
    """Uploads as lists (without body fields when they carry none); the data set as what names it."""
    if msg.get("op") == "grant":
        return {
            **msg,
            "uploads": [
                [getattr(u, f) for f in UPLOAD_FIELDS if u.body or f in INDEX_FIELDS] for u in msg["uploads"]
            ],
        }
    if isinstance(msg.get("dataset"), Dataset):
        msg = dict(msg)
        ds: Dataset = msg.pop("dataset")
        msg["data"] = {"source": ds.source, "kind": ds.kind, "digest": ds.digest, "images": len(ds.images)}
    return msg


def from_wire(msg: dict) -> dict:
    if msg.get("op") == "grant":
        return {**msg, "uploads": [Upload(*u) for u in msg["uploads"]]}
    return msg
