"""The coordinator and its links, in one process with greenlets: the event gate, the claim flow, the
backlog bound, and a worker that went quiet."""

from __future__ import annotations

import time
from types import SimpleNamespace

import gevent
import gevent.event
import pytest
from gevent.queue import Queue

from seed.coordination.coordinator import NOT_SENT, Coordinator, EventFailed, SeedLink, from_wire, to_wire
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


# --- image bytes: a worker with a copy of the data set is granted indexes only ------------------------
def photo(n: int) -> bytes:
    """A small JPEG-looking image (magic, filler, end marker), distinct per n."""
    return b"\xff\xd8\xff\xe0" + f"photo {n} ".encode() * 500 + b"\xff\xd9"


def write_set(root, photos: dict[str, bytes]):
    for name, data in photos.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def payload(body: bytes) -> bytes:
    """The file part's bytes of a one-part multipart body."""
    return body.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n--", 1)[0]


def test_a_worker_with_the_data_set_is_granted_indexes_only(tmp_path, monkeypatch):
    """Four workers as on four machines: one finds the master's --images path, one has its own copy
    elsewhere (its own --images), one a copy that differs, one none. The first two are granted indexes
    and read the bytes themselves; the others get the bytes with their grants. Every image goes once,
    and every body sent holds the file's bytes."""
    photos = {f"event/p{n:02d}.jpg": photo(n) for n in range(40)}
    write_set(tmp_path, photos)
    own = write_set(tmp_path / "elsewhere", photos)
    differs = write_set(tmp_path / "stale", {**photos, "event/p07.jpg": photo(99)})
    monkeypatch.chdir(tmp_path)  # the master's --images is relative: "event"
    plan = prepare(Settings(images="event", no_verify=True), project_dir=tmp_path, reach=False)
    run = Run(plan, NoKanta())
    hidden = str(tmp_path / "not-on-this-machine")
    wire: list[tuple[str, dict]] = []
    inbox: Queue = Queue()
    links: dict[str, SeedLink] = {}

    def send(owner, m):
        w = to_wire(m)
        wire.append((owner, w))
        if owner != "near" and "data" in w:  # another machine: the master's path is not there
            w = {**w, "data": {**w["data"], "source": hidden}}
        gevent.spawn(links[owner].handle, from_wire(w))

    coordinator = Coordinator(send=send)
    copies = {"near": "", "own": str(own / "event"), "differs": str(differs / "event"), "far": ""}
    for name, own_images in copies.items():
        links[name] = SeedLink(
            send=lambda m, name=name: inbox.put((name, m)), batch=lambda: 3, own_images=own_images
        )
    pump = gevent.spawn(lambda: [coordinator.handle(*inbox.get()) for _ in iter(int, 1)])
    coordinator.begin(run)
    for link in links.values():
        link.reset(run.run_id)
    sent: list[tuple[str, str, bytes]] = []

    def user(name: str, link: SeedLink):
        link.ensure_events(lambda codes: (True, "created"))
        while True:
            up = link.claim()
            header, body = link.body(up)
            assert header.startswith("multipart/form-data; boundary=")
            sent.append((name, up.member, payload(body)))
            gevent.sleep(0.002)
            link.report(Result(index=up.index, ok=True, status=202, uuid=f"u{up.index:031d}", sent_at=1.0))

    users = [gevent.spawn(user, n, link) for n, link in links.items() for _ in range(2)]
    assert wait_until(lambda: run.queue.complete), "the run did not complete"
    gevent.killall([*users, pump])

    assert sorted(member for _, member, _ in sent) == sorted(p.removeprefix("event/") for p in photos)
    assert all(data == photos[f"event/{member}"] for _, member, data in sent)
    grants = [(owner, u) for owner, m in wire if m["op"] == "grant" for u in m["uploads"]]
    by_owner = {name: [u for owner, u in grants if owner == name] for name in links}
    assert all(by_owner.values()), "every worker got work"
    for name in ("near", "own"):  # indexes only: [index, member, event code], no bytes
        assert all(len(u) == 3 and not any(isinstance(f, bytes) for f in u) for u in by_owner[name]), name
        assert coordinator.streamed[name] == 0
        assert links[name].bodies is not None
    for name in ("differs", "far"):  # the bytes went with the grants
        assert all(len(u) == 5 and isinstance(u[3], bytes) for u in by_owner[name]), name
        assert coordinator.streamed[name] == len(by_owner[name])
        assert links[name].bodies is None
    events = [m for _, m in wire if m["op"] == "event"]
    assert events and all(m["data"]["digest"] == plan.dataset.digest and "dataset" not in m for m in events)


def test_a_grant_to_a_worker_without_the_data_set_carries_a_few_mb(tmp_path, monkeypatch):
    """The master reads the bytes as it grants, GRANT_BYTES or so at a time, whatever the worker asks."""
    from seed.coordination import coordinator as coordination

    photos = {f"event/p{n:02d}.jpg": photo(n) for n in range(30)}
    write_set(tmp_path, photos)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(coordination, "GRANT_BYTES", 4 * sum(map(len, photos.values())) // len(photos) + 1)
    run = Run(prepare(Settings(images="event", no_verify=True), project_dir=tmp_path, reach=False), NoKanta())
    grants: list[dict] = []
    coordinator = Coordinator(send=lambda owner, m: grants.append(m) if m["op"] == "grant" else None)
    coordinator.begin(run)
    coordinator.gate = "ready"
    coordinator.handle("far", {"op": "claim", "n": 50, "data": "", "run": run.run_id})
    coordinator.handle("near", {"op": "claim", "n": 10, "data": run.plan.dataset.digest, "run": run.run_id})
    assert [len(g["uploads"]) for g in grants] == [4, 10]
    assert all(u.body for u in grants[0]["uploads"]) and not any(u.body for u in grants[1]["uploads"])


def test_an_image_whose_bytes_changed_is_not_sent_and_fails(tmp_path, monkeypatch):
    photos = {f"event/p{n}.jpg": photo(n) for n in range(3)}
    write_set(tmp_path, photos)
    monkeypatch.chdir(tmp_path)
    run = Run(prepare(Settings(images="event", no_verify=True), project_dir=tmp_path, reach=False), NoKanta())
    (tmp_path / "event" / "p1.jpg").write_bytes(photo(7))  # changed after the run indexed it
    grants: list[dict] = []
    coordinator = Coordinator(send=lambda owner, m: grants.append(m) if m["op"] == "grant" else None)
    coordinator.begin(run)
    coordinator.gate = "ready"
    coordinator.handle("far", {"op": "claim", "n": 3, "data": "", "run": run.run_id})
    assert [u.index for u in grants[0]["uploads"]] == [0, 2]
    e = run.queue.entries[1]
    assert e.state == "failed" and e.result.status == NOT_SENT
    assert "changed since the run indexed it" in e.result.error
