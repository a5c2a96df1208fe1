"""Messages between the users' side (a ``SeedLink`` per process) and the one ``Coordinator``.

The coordinator lives on the local runner or on the master and owns the ``WorkQueue`` and the
event gate. Each process that runs users (the local process, or each worker) has one link, shared
by its users. Both talk in small dicts; only the transport differs: direct calls in one process,
Locust's own ``send_message`` channel in a cluster. So a local run exercises the same code as a
distributed one.

Link -> coordinator ops: ``event?``, ``event-result``, ``claim``, ``result``, ``release``.
Coordinator -> link ops: ``event`` (create | ready | failed), ``grant`` (images), ``exit`` (code).
Every message carries the run id; a message from another run is ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict

import gevent
from gevent.event import Event

from .kanta import Upload
from .retry import RetryPolicy
from .work import Result, WorkQueue

log = logging.getLogger("kanta_seed")

MESSAGE = "kanta_seed"  # the one custom Locust message type both sides register

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
        self.event_state = "idle"  # idle | unknown | creating | ready | failed
        self.event_detail = ""
        self._event_waiters: list[str] = []
        self._claim_waiters: dict[str, int] = {}  # owner -> n, parked until images are ready
        self._wakeup: gevent.Greenlet | None = None
        self.on_complete: Callable[[], None] = lambda: None
        self.on_event_failed: Callable[[str], None] = lambda detail: None
        self.on_result: Callable[[str, Result, str], None] = lambda owner, result, state: None
        self.on_claimed: Callable[[str, list[int]], None] = lambda owner, indices: None
        self.on_released: Callable[[str, list[int], bool], None] = lambda owner, indices, maybe_sent: None
        self.policy = RetryPolicy(max_attempts=1)

    def begin(self, run_id: str, queue: WorkQueue, uploads: Sequence[Upload]) -> None:
        """Start a run from a full queue (a web UI rerun calls this again)."""
        self.run_id, self.queue, self.uploads = run_id, queue, uploads
        self.event_state, self.event_detail = "unknown", ""
        self._event_waiters.clear()
        self._claim_waiters.clear()

    def end(self) -> None:
        self.event_state = "idle"
        self._event_waiters.clear()
        self._claim_waiters.clear()
        if self._wakeup is not None:
            self._wakeup.kill(block=False)

    # --- incoming ---------------------------------------------------------------------------------
    def handle(self, owner: str, msg: dict) -> None:
        if msg.get("run") != self.run_id or self.queue is None or self.event_state == "idle":
            return  # a straggler from another run
        op = msg["op"]
        if op == "event?":
            self._event_request(owner)
        elif op == "event-result":
            self._event_result(bool(msg["ok"]), str(msg.get("detail", "")))
        elif op == "claim":
            self._claim_waiters[owner] = max(1, int(msg.get("n", 1)))
            self._serve_claims()
        elif op == "result":
            self._result(owner, Result(**msg["result"]))
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
    def _event_request(self, owner: str) -> None:
        if self.event_state == "unknown":
            self.event_state = "creating"
            self._to(owner, {"op": "event", "do": "create"})
        elif self.event_state == "creating":
            self._event_waiters.append(owner)
        else:
            self._to(owner, {"op": "event", "do": self.event_state, "detail": self.event_detail})

    def _event_result(self, ok: bool, detail: str) -> None:
        if self.event_state != "creating":
            return
        self.event_state, self.event_detail = ("ready" if ok else "failed"), detail
        for owner in self._event_waiters:
            self._to(owner, {"op": "event", "do": self.event_state, "detail": detail})
        self._event_waiters.clear()
        if not ok:
            self.on_event_failed(detail)
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

    def __init__(self, send: Callable[[dict], None], batch: Callable[[], int]) -> None:
        self._send = send
        self._batch = batch
        self.run_id = ""
        self.reset("")

    def reset(self, run_id: str) -> None:
        self.run_id = run_id
        self.closed = False
        self._buffer: list[Upload] = []
        self._requesting = False
        self._granted = Event()
        self._event_state = "unknown"  # unknown | asked | create | ready | failed
        self._event_detail = ""
        self._event_known = Event()

    # --- incoming ---------------------------------------------------------------------------------
    def handle(self, msg: dict) -> None:
        if msg.get("run") != self.run_id:
            return
        op = msg["op"]
        if op == "event":
            self._event_state, self._event_detail = msg["do"], str(msg.get("detail", ""))
            self._event_known.set()
        elif op == "grant":
            self._buffer.extend(msg["uploads"])
            self._requesting = False
            granted, self._granted = self._granted, Event()
            granted.set()

    def close(self) -> None:
        """The run is stopping: wake every waiting user so it stops now, not at the stop timeout."""
        self.closed = True
        self._event_known.set()
        self._granted.set()

    # --- used by users ----------------------------------------------------------------------------
    def ensure_event(self, create: Callable[[], tuple[bool, str]]) -> None:
        """Block until the event is known to exist; exactly one caller in the cluster creates it."""
        while True:
            if self.closed:
                raise LinkClosed()
            if self._event_state == "ready":
                return
            if self._event_state == "failed":
                raise EventFailed(self._event_detail)
            if self._event_state == "create":
                self._event_state = "creating"
                self._event_known.clear()  # this process's other users wait for the outcome
                ok, detail = create()
                self._to({"op": "event-result", "ok": ok, "detail": detail})
                self._event_state, self._event_detail = ("ready" if ok else "failed"), detail
                self._event_known.set()
                continue
            if self._event_state == "unknown":
                self._event_state = "asked"
                self._event_known.clear()
                self._to({"op": "event?"})
            self._event_known.wait()

    def claim(self) -> Upload:
        """The next image for this user; blocks while none is ready (the run stops us when done)."""
        while not self._buffer:
            if self.closed:
                raise LinkClosed()
            granted = self._granted  # taken first: in one process the grant arrives inside _to()
            if not self._requesting:
                self._requesting = True
                self._to({"op": "claim", "n": max(1, self._batch())})
            granted.wait()
        return self._buffer.pop(0)

    def report(self, result: Result) -> None:
        self._to({"op": "result", "result": asdict(result)})

    def give_back(self, indices: Sequence[int], maybe_sent: bool) -> None:
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
def to_wire(msg: dict) -> dict:
    if msg.get("op") == "grant":
        return {
            **msg,
            "uploads": [[u.index, u.member, u.body, u.size, u.content_type] for u in msg["uploads"]],
        }
    return msg


def from_wire(msg: dict) -> dict:
    if msg.get("op") == "grant":
        return {**msg, "uploads": [Upload(*u) for u in msg["uploads"]]}
    return msg
