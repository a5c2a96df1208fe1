"""The Locust user: make sure the event exists, then claim, upload and report, one image at a time."""

from __future__ import annotations

import functools
import re
import time
from typing import Any

import gevent
from locust import FastHttpUser, task
from locust.exception import StopUser

from seed.coordination.coordinator import EventFailed, LinkClosed, SeedLink, not_sent
from seed.core.dataset import DatasetError
from seed.core.retry import RetryPolicy
from seed.core.work import Result
from seed.glue.seeder import Seeder, wait_for_seeder
from seed.kanta import contract as kanta

# uvicorn (Kanta) closes a keep-alive connection idle for 5 s: a POST sent on it just then gets no
# answer and its outcome is unknown. A user idle this long starts on a fresh connection instead.
IDLE_RECONNECT_S = 4.0

# The uuid straight from the 202's bytes: a full JSON parse per upload cost ~10% of the client's CPU
# (Kanta's body is {"uuid": "<32 hex>", ...}; its embeddings may one day make it long).
UUID_FIELD = re.compile(rb'"uuid"\s*:\s*"([0-9a-f]{32})"')


class KantaUploader(FastHttpUser):
    """Uploads images from the run's shared queue to one Kanta event, each exactly once."""

    host = kanta.DEFAULT_HOST

    def wait_time(self) -> float:
        return self.seeder.settings.upload_pause if self.seeder.settings else 0.0

    @property
    def link(self) -> SeedLink:
        link = self.seeder.link
        assert link is not None  # every process that runs users has one
        return link

    def on_start(self) -> None:
        self.seeder: Seeder = wait_for_seeder(self.environment)
        self.holding: int | None = None  # the image this user is sending right now
        self.last_request_at = time.monotonic()
        try:
            self.link.ensure_events(self.create_events)
        except (EventFailed, LinkClosed) as e:
            raise StopUser() from e  # the coordinator stops the whole run and says why

    def create_events(self, codes: list[str]) -> tuple[bool, str]:
        """POST /events for every event of the run, before the first upload. 201 and 400 'already
        exists' both mean: go on. The outcome of the first event is what the summary shows."""
        outcome = ""
        for code in codes:
            ok, detail = self.create_event(code)
            if not ok:
                return False, f"{code}: {detail}"
            outcome = outcome or detail
        return True, outcome

    def create_event(self, code: str) -> tuple[bool, str]:
        """No answer, 5xx and 429 are tried again like uploads, within the retry budget; any other
        answer is final."""
        s = self.seeder.settings
        assert s is not None
        body = kanta.event_payload(code, s.display_name)
        policy = RetryPolicy(max_attempts=s.max_attempts, retry_for_s=s.retry_for)
        attempts, failing_since = 0, None
        while True:
            sent_at = time.time()
            with self.client.post(
                kanta.url(s.host, kanta.EVENTS_PATH), json=body, name=kanta.EVENT_ROW, catch_response=True
            ) as resp:
                status, text = int(resp.status_code or 0), kanta.brief(resp.text or "")
                if status == 201 or (status == 400 and "already exists" in text):
                    resp.success()
                    return True, "created" if status == 201 else "already existed"
                reason = f"{status} {text}" if status else f"no answer ({resp.error})"
                resp.failure(reason)
            attempts += 1
            failing_since = failing_since or sent_at
            result = Result(index=-1, ok=False, status=status, sent_at=sent_at,
                            retry_after_s=parse_retry_after(resp.headers))  # fmt: skip
            wait = policy.next_try_in(result, attempts, failing_since, time.time())
            if wait is None:
                return False, f"POST /events answered {reason}"
            gevent.sleep(wait)

    @task
    def upload_next(self) -> None:
        s = self.seeder.settings
        assert s is not None
        try:
            up = self.link.claim()
        except (EventFailed, LinkClosed) as e:
            raise StopUser() from e
        self.holding = up.index
        try:
            # Read now (from this machine's copy, or as the grant brought it), dropped after the request.
            content_type, body = self.link.body(up)
        except DatasetError as e:
            self.holding = None
            self.link.report(not_sent(up.index, str(e)))
            return
        if time.monotonic() - self.last_request_at > IDLE_RECONNECT_S:
            self.client.client.clientpool.close()  # its keep-alive socket may be closed by now
        sent_at = time.time()
        t0 = time.perf_counter()
        with self.client.post(
            upload_url(s.host, up.event_code),
            data=body,  # type: ignore[arg-type]  # bytes: geventhttpclient sends them as they are
            headers={"Content-Type": content_type},
            name=kanta.UPLOAD_ROW,
            catch_response=True,
        ) as resp:
            latency_ms = (time.perf_counter() - t0) * 1000
            result = self.judge(resp, up.index, latency_ms, sent_at)
            if result.ok:
                resp.success()
            else:
                resp.failure(result.error or f"status {result.status}")
        self.holding = None
        self.last_request_at = time.monotonic()
        if result.status == 0 or result.status >= 500:
            # Kanta was seen to leave a keep-alive connection hanging after a 500: the next try starts
            # on a fresh one.
            self.client.client.clientpool.close()
        self.link.report(result)

    @staticmethod
    def judge(resp: Any, index: int, latency_ms: float, sent_at: float) -> Result:
        status = int(resp.status_code or 0)
        result = functools.partial(Result, index=index, status=status, latency_ms=latency_ms, sent_at=sent_at)
        if status == 202:
            found = UUID_FIELD.search(resp.content or b"")
            if found:
                return result(ok=True, uuid=found.group(1).decode())
            return result(ok=False, error="202 without a uuid")
        if status == 0:
            return result(ok=False, error=f"no answer: {resp.error}")
        return result(
            ok=False, error=kanta.brief(resp.text or ""), retry_after_s=parse_retry_after(resp.headers)
        )

    def on_stop(self) -> None:
        # Stopped mid-request (run stopped by hand, or -t): the image goes back, marked as maybe sent.
        holding = getattr(self, "holding", None)
        if holding is not None:
            self.link.give_back([holding], maybe_sent=True)
            self.holding = None


@functools.cache  # a handful of (host, event) pairs per process: no quote() per request
def upload_url(host: str, event_code: str) -> str:
    return kanta.url(host, kanta.upload_path(event_code))


def parse_retry_after(headers) -> float | None:
    value = headers.get("Retry-After") if headers else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from Kanta, the backoff applies instead
