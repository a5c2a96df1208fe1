"""The coordinator and its links, in one process with greenlets: the event gate and the claim flow."""

from __future__ import annotations

import gevent
import gevent.event
import pytest
from gevent.queue import Queue

from seed.cluster import Coordinator, EventFailed, SeedLink, from_wire, to_wire
from seed.kanta import Upload
from seed.work import Result, WorkQueue

UPLOADS = [Upload(i, f"m{i}", b"body%d" % i, "multipart/form-data; boundary=b", "ev") for i in range(40)]


def cluster(n_links: int, users_per_link: int):
    """Links that talk to one coordinator through queues, as Locust's channel would (asynchronously)."""
    inbox: Queue = Queue()
    links: dict[str, SeedLink] = {}
    coordinator = Coordinator(send=lambda owner, m: gevent.spawn(links[owner].handle, from_wire(to_wire(m))))
    for n in range(n_links):
        name = f"w{n}"
        links[name] = SeedLink(send=lambda m, name=name: inbox.put((name, m)), batch=lambda: users_per_link)

    def pump():
        while True:
            owner, m = inbox.get()
            coordinator.handle(owner, m)

    return coordinator, links, gevent.spawn(pump)


def run_users(links: dict[str, SeedLink], users_per_link: int, create):
    seen: list[tuple[str, int]] = []

    def user(name: str, link: SeedLink):
        link.ensure_event("ev", create)
        while True:
            up = link.claim()
            seen.append((name, up.index))
            gevent.sleep(0.001)
            link.report(Result(index=up.index, ok=True, status=202, uuid="u"))

    return seen, [gevent.spawn(user, n, link) for n, link in links.items() for _ in range(users_per_link)]


@pytest.mark.parametrize("n_links", [1, 3])
def test_event_once_and_every_image_once_then_complete(n_links):
    coordinator, links, pump = cluster(n_links, users_per_link=4)
    creates: list[int] = []
    done = gevent.event.Event()
    coordinator.on_complete = done.set
    coordinator.begin("r1", WorkQueue([u.member for u in UPLOADS]), UPLOADS)
    for link in links.values():
        link.reset("r1")

    def create(code):
        creates.append(code)
        gevent.sleep(0.01)  # others must wait for the outcome, not create again
        return True, "created"

    seen, users = run_users(links, 4, create)
    assert done.wait(5), "the run did not complete"
    gevent.killall([*users, pump])
    assert len(creates) == 1
    assert sorted(i for _, i in seen) == list(range(40))
    if n_links > 1:
        assert len({name for name, _ in seen}) > 1  # the work was shared


def test_failed_event_stops_everyone_and_uploads_nothing():
    coordinator, links, pump = cluster(2, users_per_link=3)
    failures: list[str] = []
    coordinator.on_event_failed = failures.append
    coordinator.begin("r1", WorkQueue([u.member for u in UPLOADS]), UPLOADS)
    for link in links.values():
        link.reset("r1")
    outcomes: list[str] = []

    def user(link):
        try:
            link.ensure_event("ev", lambda code: (False, "POST /events answered 500"))
            outcomes.append("went on")
        except EventFailed as e:
            outcomes.append(str(e))

    gevent.joinall([gevent.spawn(user, link) for link in links.values() for _ in range(3)], timeout=5)
    pump.kill()
    assert outcomes == ["POST /events answered 500"] * 6
    assert failures == ["ev: POST /events answered 500"]
    assert coordinator.queue.count("claimed") == 0


def test_messages_from_another_run_are_ignored():
    coordinator, _links, pump = cluster(1, users_per_link=1)
    coordinator.begin("new", WorkQueue(["a"]), UPLOADS[:1])
    coordinator.handle("w0", {"op": "event?", "code": "ev", "run": "old"})
    assert coordinator.event_state == "unknown"
    pump.kill()


def test_released_claims_reach_a_waiting_link():
    coordinator, links, pump = cluster(2, users_per_link=1)
    coordinator.begin("r", WorkQueue(["a"]), UPLOADS[:1])
    for link in links.values():
        link.reset("r")
    coordinator.events["ev"] = ["ready", "created", []]
    first = gevent.spawn(links["w0"].claim)
    assert first.get(timeout=2).index == 0
    second = gevent.spawn(links["w1"].claim)  # parks: nothing left
    gevent.sleep(0.05)
    assert not second.ready()
    coordinator.release("w0", None, maybe_sent=True)  # w0 is lost
    assert second.get(timeout=2).index == 0
    assert coordinator.queue.entries[0].maybe_duplicate
    pump.kill()
