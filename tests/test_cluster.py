"""The coordinator and its links, in one process with greenlets: the event gate, the claim flow, the
backlog bound, and a worker that went quiet."""

from __future__ import annotations

import time
from types import SimpleNamespace

import gevent
import gevent.event
import pytest
from gevent.queue import Queue

from seed.coordination.coordinator import Coordinator, EventFailed, SeedLink, from_wire, to_wire
from seed.coordination.options import Settings
from seed.coordination.preflight import prepare
from seed.coordination.run import Run
from seed.core.work import Result


class NoKanta:
    """The run's client; these tests never let it read anything."""

    host = "http://127.0.0.1:9"
    blob_note = ""

    def list_event(self, code):
        raise AssertionError("no read-back in these tests")


def make_run(tmp_path, **settings) -> Run:
    plan = prepare(Settings(standin=True, **settings), project_dir=tmp_path, reach=False)
    return Run(plan, NoKanta())


def cluster(n_links: int, users_per_link: int, contact_age=lambda: 0.0):
    """Links that talk to one coordinator through queues, as Locust's channel would (asynchronously)."""
    inbox: Queue = Queue()
    links: dict[str, SeedLink] = {}
    coordinator = Coordinator(send=lambda owner, m: gevent.spawn(links[owner].handle, from_wire(to_wire(m))))
    for n in range(n_links):
        name = f"w{n}"
        links[name] = SeedLink(
            send=lambda m, name=name: inbox.put((name, m)),
            batch=lambda: users_per_link,
            contact_age=contact_age,
        )

    def pump():
        while True:
            owner, m = inbox.get()
            coordinator.handle(owner, m)

    return coordinator, links, gevent.spawn(pump)


def run_users(links: dict[str, SeedLink], users_per_link: int, create, pause: float = 0.001):
    seen: list[tuple[str, int]] = []

    def user(name: str, link: SeedLink):
        link.ensure_events(create)
        while True:
            up = link.claim()
            seen.append((name, up.index))
            gevent.sleep(pause)
            link.report(
                Result(index=up.index, ok=True, status=202, uuid=f"u{up.index:031d}", sent_at=time.time())
            )

    return seen, [gevent.spawn(user, n, link) for n, link in links.items() for _ in range(users_per_link)]


def wait_until(predicate, timeout: float = 5.0) -> bool:
    with gevent.Timeout(timeout, False):
        while not predicate():
            gevent.sleep(0.005)
        return True
    return False


@pytest.mark.parametrize("n_links", [1, 3])
def test_events_once_and_every_image_once(tmp_path, n_links):
    run = make_run(tmp_path, no_verify=True)
    coordinator, links, pump = cluster(n_links, users_per_link=4)
    coordinator.begin(run)
    for link in links.values():
        link.reset(run.run_id)
    creates: list[list[str]] = []

    def create(codes):
        creates.append(codes)
        gevent.sleep(0.01)  # others must wait for the outcome, not create again
        return True, "created"

    seen, users = run_users(links, 4, create)
    assert wait_until(lambda: run.queue.complete), "the run did not complete"
    gevent.killall([*users, pump])
    assert creates == [[run.settings.event_code]]
    assert sorted(i for _, i in seen) == list(range(165))
    assert run.event_outcome == "created"
    if n_links > 1:
        assert len({name for name, _ in seen}) > 1  # the work was shared


def test_every_pass_event_is_made_before_the_first_upload(tmp_path):
    run = make_run(tmp_path, no_verify=True, loops=3, fresh_event=True)
    coordinator, links, pump = cluster(1, users_per_link=2)
    coordinator.begin(run)
    links["w0"].reset(run.run_id)
    made: list[str] = []

    def create(codes):
        assert not run.queue.count("accepted"), "an upload went before its event"
        made.extend(codes)
        return True, "created"

    _, users = run_users(links, 2, create)
    assert wait_until(lambda: run.queue.complete)
    gevent.killall([*users, pump])
    assert made == run.plan.event_codes and len(made) == 3


def test_failed_event_stops_everyone_and_uploads_nothing(tmp_path):
    run = make_run(tmp_path, no_verify=True)
    coordinator, links, pump = cluster(2, users_per_link=3)
    coordinator.begin(run)
    for link in links.values():
        link.reset(run.run_id)
    outcomes: list[str] = []

    def user(link):
        try:
            link.ensure_events(lambda codes: (False, "POST /events answered 500"))
            outcomes.append("went on")
        except EventFailed as e:
            outcomes.append(str(e))

    gevent.joinall([gevent.spawn(user, link) for link in links.values() for _ in range(3)], timeout=5)
    pump.kill()
    assert outcomes == ["POST /events answered 500"] * 6
    assert run.event_failed and run.event_outcome == "POST /events answered 500"
    assert run.queue.count("claimed") == 0


def test_messages_from_another_run_are_ignored(tmp_path):
    run = make_run(tmp_path, no_verify=True)
    coordinator, _links, pump = cluster(1, users_per_link=1)
    coordinator.begin(run)
    coordinator.handle("w0", {"op": "event?", "run": "old"})
    assert coordinator.gate == "unknown"
    pump.kill()


def test_a_lost_workers_claims_go_into_doubt_not_to_another_worker(tmp_path):
    run = make_run(tmp_path, no_verify=True)
    coordinator, links, pump = cluster(2, users_per_link=1)
    coordinator.begin(run)
    for link in links.values():
        link.reset(run.run_id)
    coordinator.gate = "ready"
    first = gevent.spawn(links["w0"].claim)
    assert first.get(timeout=2).index == 0
    back = coordinator.release("w0", None, maybe_sent=True)  # w0 is lost mid-upload
    assert back == [0] and run.queue.entries[0].state == "doubt"
    second = gevent.spawn(links["w1"].claim)
    assert second.get(timeout=2).index != 0  # the doubtful image is not sent again blindly
    pump.kill()


def test_a_link_that_lost_contact_drops_what_it_holds(tmp_path):
    """A worker frozen past Locust's heartbeat was declared lost: on waking it sends none of its claims."""
    run = make_run(tmp_path, no_verify=True)
    age = SimpleNamespace(s=0.0)
    coordinator, links, pump = cluster(1, users_per_link=4, contact_age=lambda: age.s)
    coordinator.begin(run)
    links["w0"].reset(run.run_id)
    coordinator.gate = "ready"
    link = links["w0"]
    got = gevent.spawn(link.claim).get(timeout=2)
    assert got.index == 0 and len(link._buffer) == 3  # a batch of 4: one in hand, three held
    coordinator.release("w0", None, maybe_sent=True)  # the master declared it lost meanwhile
    age.s = 10.0  # frozen: no word from the master for 10 s
    nxt = gevent.spawn(link.claim)
    gevent.sleep(0)  # it looks at its buffer, drops it and asks again
    age.s = 0.0  # thawed: heartbeats again
    assert nxt.get(timeout=2).index == 4  # fresh work, not images 1..3 that are in doubt now
    assert link.dropped_stale == 3
    assert [run.queue.entries[i].state for i in range(4)] == ["doubt"] * 4
    pump.kill()


def test_the_backlog_bound_holds_claims_until_the_pipeline_processes(tmp_path):
    run = make_run(tmp_path, max_backlog=10)
    coordinator, links, pump = cluster(1, users_per_link=4)
    coordinator.begin(run)
    links["w0"].reset(run.run_id)
    coordinator.gate = "ready"
    _, users = run_users(links, 4, lambda codes: (True, "created"))
    gevent.sleep(0.3)
    assert run.queue.count("accepted") + run.queue.count("claimed") <= 10  # nothing listed yet
    for i, e in enumerate(run.queue.entries):  # the read-back lists what was accepted, processed
        if e.state == "accepted":
            run.stages.seen(i, e.uuid, 1, time.time() - 0.3, time.time())
            run.readback.listed[e.uuid] = None
    run.after_poll(lost=0)  # what a poll does after it looked
    coordinator.serve()
    gevent.sleep(0.3)
    gevent.killall([*users, pump])
    assert 10 < run.queue.count("accepted") <= 20
    assert run.backlog.held_since is not None or run.held_back_s > 0
