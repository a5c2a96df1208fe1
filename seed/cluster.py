"""Messages between the users' side (a ``SeedLink`` per process) and the one ``Coordinator``.

The coordinator lives on the local runner or on the master and owns the ``WorkQueue`` and the
event gate. Each process that runs users (the local process, or each worker) has one link, shared
by its users. Both talk in small dicts; only the transport differs: direct calls in one process,
Locust's own ``send_message`` channel in a cluster. So a local run exercises the same code as a
distributed one.

Link -> coordinator ops: ``event?``, ``event-result``, ``claim``, ``results``, ``release``.
Coordinator -> link ops: ``event`` (create | ready | failed), ``grant`` (images), ``exit`` (code).
Every message carries the run id; a message from another run is ignored. Event messages carry the
event code: a run may upload to several events (``--loops N --fresh-event``), each made sure of once.
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import fields

import gevent
from gevent.event import Event

from .kanta import Upload
from .retry import RetryPolicy
from .work import Result, WorkQueue

log = logging.getLogger("kanta_seed")

MESSAGE = "kanta_seed"  # the one custom Locust message type both sides register
RESULTS_PER_MESSAGE = 32
RESULT_WINDOW_S = 0.02  # how long a worker may hold results back to send them in one message

Send = Callable[[str, dict], None]  # coordinator side: send(owner, message)


class EventFailed(Exception):
    """The event could not be made sure of: nothing may be uploaded."""


class LinkClosed(Exception):
    """The run is stopping: a user waiting for work should stop instead."""


class Coordinator:
    """The authority: hands out the event job once, grants claims, records results, sees completion."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.run_id = ""
        self.queue: WorkQueue | None = None
        self.uploads: Sequence[Upload] = ()
        self.primary_event = ""  # the first event: no claim is served before it exists
        self.events: dict[str, list] = {}  # code -> [state, detail, waiting owners]
        self.active = False
        self._claim_waiters: dict[str, int] = {}  # owner -> n, parked until images are ready
        self._wakeup: gevent.Greenlet | None = None
        self.on_complete: Callable[[], None] = lambda: None
        self.on_event_failed: Callable[[str], None] = lambda detail: None
        self.on_result: Callable[[str, Result, str], None] = lambda owner, result, state: None
        self.on_claimed: Callable[[str, list[int]], None] = lambda owner, indices: None
        self.on_released: Callable[[str, list[int], bool], None] = lambda owner, indices, maybe_sent: None
        self.policy = RetryPolicy(max_attempts=1)
        self.usage: dict[str, tuple[float, float]] = {}  # owner -> (CPU s this run, peak RSS MB)
        self.drained_at: float | None = None  # wall time the last image was handed out

    def begin(self, run_id: str, queue: WorkQueue, uploads: Sequence[Upload]) -> None:
        """Start a run from a full queue (a web UI rerun calls this again)."""
        self.run_id, self.queue, self.uploads = run_id, queue, uploads
        self.primary_event = uploads[0].event_code if uploads else ""
        self.events = {}
        self.active = True
        self.usage, self.drained_at = {}, None
        self._claim_waiters.clear()

    def end(self) -> None:
        self.active = False
        self.events = {}
        self._claim_waiters.clear()
        if self._wakeup is not None:
            self._wakeup.kill(block=False)

    @property
    def event_state(self) -> str:
        """The primary event's state: unknown | creating | ready | failed (idle between runs)."""
        return self.events.get(self.primary_event, ["unknown"])[0] if self.active else "idle"

    @property
    def event_detail(self) -> str:
        return self.events.get(self.primary_event, ["", ""])[1]

    # --- incoming ---------------------------------------------------------------------------------
    def handle(self, owner: str, msg: dict) -> None:
        if msg.get("run") != self.run_id or self.queue is None or not self.active:
            return  # a straggler from another run
        op = msg["op"]
        if op == "event?":
            self._event_request(owner, str(msg["code"]))
        elif op == "event-result":
            self._event_result(str(msg["code"]), bool(msg["ok"]), str(msg.get("detail", "")))
        elif op == "claim":
            self._claim_waiters[owner] = max(1, int(msg.get("n", 1)))
            self._serve_claims()
        elif op == "results":
            self.usage[owner] = tuple(msg["usage"])
            for result in msg["results"]:
                self._result(owner, Result(**result))
        elif op == "release":
            self.release(owner, msg.get("indices"), bool(msg.get("maybe_sent", True)))
        else:
            log.warning("kanta-seed: unknown message op %r from %s", op, owner)

    def release(self, owner: str, indices: Sequence[int] | None, maybe_sent: bool) -> list[int]:
        """Put an owner's unfinished claims back for the others (stopped or lost owner)."""
        if self.queue is None:
            return []
        back = self.queue.release(owner, indices, maybe_sent)
        self.on_released(owner, back, maybe_sent)
        if indices is None:  # the owner is gone: forget its parked claim too
            self._claim_waiters.pop(owner, None)
        if back:
            self._serve_claims()
        return back

    def reopen(self, index: int) -> None:
        """Upload a done image again (lost after its 202); a waiting user takes it."""
        assert self.queue is not None
        self.queue.reopen(index)
        self._serve_claims()

    # --- the event gate ---------------------------------------------------------------------------
    def _event_request(self, owner: str, code: str) -> None:
        gate = self.events.setdefault(code, ["unknown", "", []])
        if gate[0] == "unknown":
            gate[0] = "creating"
            self._to(owner, {"op": "event", "code": code, "do": "create"})
        elif gate[0] == "creating":
            gate[2].append(owner)
        else:
            self._to(owner, {"op": "event", "code": code, "do": gate[0], "detail": gate[1]})

    def _event_result(self, code: str, ok: bool, detail: str) -> None:
        gate = self.events.get(code)
        if gate is None or gate[0] != "creating":
            return
        gate[0], gate[1] = ("ready" if ok else "failed"), detail
        for owner in gate[2]:
            self._to(owner, {"op": "event", "code": code, "do": gate[0], "detail": detail})
        gate[2].clear()
        if not ok:
            self.on_event_failed(f"{code}: {detail}")
        else:
            self._serve_claims()

    # --- claims and results -----------------------------------------------------------------------
    def _serve_claims(self) -> None:
        assert self.queue is not None
        if self.event_state != "ready":
            return
        for owner, n in list(self._claim_waiters.items()):
            got = self.queue.claim(owner, n)
            if not got:
                break
            del self._claim_waiters[owner]
            self.on_claimed(owner, got)
            self._to(owner, {"op": "grant", "uploads": [self.uploads[i] for i in got]})
            if not self.queue.waiting:
                self.drained_at = time.time()  # the tail starts: nothing left to hand out
        self._schedule_wakeup()

    def _schedule_wakeup(self) -> None:
        # Parked claims wait for a retry's backoff to run out: wake them when it does.
        assert self.queue is not None
        delay = self.queue.next_ready_in()
        if not self._claim_waiters or delay is None or (self._wakeup and not self._wakeup.dead):
            return

        def wake() -> None:
            self._wakeup = None
            self._serve_claims()

        self._wakeup = gevent.spawn_later(delay + 0.001, wake)

    def _result(self, owner: str, result: Result) -> None:
        assert self.queue is not None
        entry = self.queue.entries[result.index]
        retryable = self.policy.retryable(result)
        backoff = self.policy.backoff_s(entry.attempts + 1, result.retry_after_s) if retryable else 0.0
        if self.policy.outcome_unknown(result):
            entry.outcome_unknown = True  # a later success may be a second copy on the server
        state = self.queue.report(owner, result, retryable, backoff)
        self.on_result(owner, result, state)
        if state in ("pending", "delayed"):
            self._serve_claims()
        if self.queue.complete:
            self.on_complete()

    def _to(self, owner: str, msg: dict) -> None:
        self._send(owner, {**msg, "run": self.run_id})


class SeedLink:
    """The users' side in one process: asks for the event, claims in batches, reports results."""

    def __init__(
        self, send: Callable[[dict], None], batch: Callable[[], int], result_window_s: float = 0.0
    ) -> None:
        self._send = send
        self._batch = batch
        # Over Locust's channel, results travel in batches (one message per window, not per upload):
        # the master's cost per upload was about 40% of a worker's when each result was a message.
        self._result_window_s = result_window_s
        self._results: list[dict] = []
        self._flusher: gevent.Greenlet | None = None
        self.run_id = ""
        self.reset("", "")

    def reset(self, run_id: str, primary_event: str = "") -> None:
        self.run_id = run_id
        self._results = []  # held back from another run: stale
        self._cpu_at_reset = time.process_time()
        self.primary_event = primary_event  # the event every user makes sure of in on_start
        self.closed = False
        self._buffer: list[Upload] = []
        self._requesting = False
        self._granted = Event()
        self._events: dict[str, tuple[str, str]] = {}  # code -> (asked | create | ready | failed, detail)
        self._event_news = Event()  # replaced on every event message, like _granted

    # --- incoming ---------------------------------------------------------------------------------
    def handle(self, msg: dict) -> None:
        if msg.get("run") != self.run_id:
            return
        op = msg["op"]
        if op == "event":
            self._events[str(msg["code"])] = (msg["do"], str(msg.get("detail", "")))
            self._wake_event_waiters()
        elif op == "grant":
            self._buffer.extend(msg["uploads"])
            self._requesting = False
            granted, self._granted = self._granted, Event()
            granted.set()

    def close(self) -> None:
        """The run is stopping: wake every waiting user so it stops now, not at the stop timeout."""
        self.closed = True
        self.flush_results()
        self._event_news.set()
        self._granted.set()

    def _wake_event_waiters(self) -> None:
        news, self._event_news = self._event_news, Event()
        news.set()

    def event_ready(self, code: str) -> bool:
        return self._events.get(code, ("", ""))[0] == "ready"

    # --- used by users ----------------------------------------------------------------------------
    def ensure_event(self, code: str, create: Callable[[str], tuple[bool, str]]) -> None:
        """Block until the event exists; exactly one caller in the cluster creates each event."""
        while True:
            if self.closed:
                raise LinkClosed()
            news = self._event_news  # taken first: in one process the answer arrives inside _to()
            state, detail = self._events.get(code, ("unknown", ""))
            if state == "ready":
                return
            if state == "failed":
                raise EventFailed(detail)
            if state == "create":
                self._events[code] = ("creating", "")  # this process's other users wait for the outcome
                ok, detail = create(code)
                self._to({"op": "event-result", "code": code, "ok": ok, "detail": detail})
                self._events[code] = ("ready" if ok else "failed", detail)
                self._wake_event_waiters()
                continue
            if state == "unknown":
                self._events[code] = ("asked", "")
                self._to({"op": "event?", "code": code})
            news.wait()

    def claim(self) -> Upload:
        """The next image for this user; blocks while none is ready (the run stops us when done)."""
        while not self._buffer:
            if self.closed:
                raise LinkClosed()
            granted = self._granted  # taken first: in one process the grant arrives inside _to()
            if not self._requesting:
                self._requesting = True
                self.flush_results()
                self._to({"op": "claim", "n": max(1, self._batch())})
            granted.wait()
        return self._buffer.pop(0)

    def report(self, result: Result) -> None:
        self._results.append(dict(vars(result)))
        if self._result_window_s <= 0 or len(self._results) >= RESULTS_PER_MESSAGE:
            self.flush_results()
        elif self._flusher is None:
            self._flusher = gevent.spawn_later(self._result_window_s, self.flush_results)

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


def to_wire(msg: dict) -> dict:
    if msg.get("op") == "grant":
        return {
            **msg,
            "uploads": [[getattr(u, f) for f in UPLOAD_FIELDS] for u in msg["uploads"]],
        }
    return msg


def from_wire(msg: dict) -> dict:
    if msg.get("op") == "grant":
        return {**msg, "uploads": [Upload(*u) for u in msg["uploads"]]}
    return msg
