"""Unit tests for the ledger: what each fact does to the folded memory, chains, and torn lines."""

from __future__ import annotations

import json

from seed.core import ledger as ledgers
from seed.core.ledger import Memory, fold


def folded(*facts: tuple[str, dict]) -> Memory:
    mem = Memory()
    for kind, rec in facts:
        fold(mem, kind, {"kind": kind, **rec})
    return mem


def begin(fresh: bool = False, pre: dict | None = None, tag: str = "t1") -> tuple[str, dict]:
    return "begin", {"run": "r", "tag": tag, "fresh": fresh, "pre_existing": pre or {}}


def test_a_begin_starts_a_chain_with_what_the_events_held_before():
    mem = folded(begin(fresh=True, pre={"e": ["p1", "p2"]}, tag="abc"))
    assert mem.runs == 1 and not mem.empty
    assert mem.pre_existing == {"e": {"p1", "p2"}} and mem.run_tag == "abc"
    assert Memory().empty


def test_a_resume_keeps_the_first_runs_pre_existing_and_tag():
    mem = folded(
        begin(fresh=True, pre={"e": ["p1"]}, tag="first"),
        ("end", {"complete": True}),
        begin(pre={"e": ["p1", "ours"]}, tag="second"),  # what a resume sees includes its own copies
    )
    assert mem.runs == 2 and mem.pre_existing == {"e": {"p1"}} and mem.run_tag == "first"
    assert not mem.complete  # a run began after the complete one


def test_a_fresh_begin_forgets_the_older_chain():
    mem = folded(
        begin(fresh=True, pre={"e": ["p1"]}, tag="old"),
        ("result", {"member": "a", "ok": True, "uuid": "ua"}),
        ("claim", {"members": ["b"]}),
        ("removed", {"member": "c", "uuid": "uc"}),
        begin(fresh=True, pre={"e": ["ua"]}, tag="new"),
    )
    assert (mem.runs, mem.uuids, mem.in_flight, mem.removed, mem.known_uuids) == (1, {}, set(), set(), set())
    assert mem.pre_existing == {"e": {"ua"}} and mem.run_tag == "new"


def test_claims_are_in_flight_until_an_outcome():
    mem = folded(begin(), ("claim", {"members": ["a", "b", "c"]}), ("claim", {"member": "d"}))
    assert mem.in_flight == {"a", "b", "c", "d"}
    fold(mem, "result", {"member": "a", "ok": True, "uuid": "ua"})
    fold(mem, "result", {"member": "b", "ok": False, "status": 503, "unknown": False, "final": False})
    fold(mem, "result", {"member": "c", "ok": False, "status": 0, "unknown": True, "final": False})
    fold(mem, "result", {"member": "d", "ok": False, "status": 0, "unknown": True, "final": True})
    # a: stored; b: answered with a failure, nothing stored; c: no answer, may be stored; d: given up
    assert mem.in_flight == {"c"} and mem.uuids == {"a": "ua"} and mem.known_uuids == {"ua"}


def test_a_second_202_is_an_extra_copy_not_the_upload():
    mem = folded(
        begin(),
        ("result", {"member": "a", "ok": True, "uuid": "first"}),
        ("result", {"member": "a", "ok": True, "uuid": "second"}),
    )
    assert mem.uuids == {"a": "first"} and mem.known_uuids == {"first", "second"}


def test_an_ok_result_without_a_uuid_proves_nothing():
    mem = folded(begin(), ("claim", {"members": ["a"]}), ("result", {"member": "a", "ok": True, "uuid": ""}))
    assert mem.uuids == {} and mem.in_flight == set()


def test_a_release_maybe_sent_stays_in_flight_and_one_unsent_does_not():
    mem = folded(
        begin(),
        ("claim", {"members": ["a", "b", "c"]}),
        ("release", {"members": ["a"], "maybe_sent": True}),
        ("release", {"members": ["b"], "maybe_sent": False}),
    )
    assert mem.in_flight == {"a", "c"}


def test_an_adoption_is_the_upload_even_over_an_earlier_uuid():
    mem = folded(
        begin(),
        ("claim", {"members": ["a", "b"]}),
        ("release", {"members": ["a", "b"], "maybe_sent": True}),
        ("adopt", {"member": "a", "uuid": "found"}),
        ("result", {"member": "b", "ok": True, "uuid": "twin-a"}),
        ("lost", {"member": "b", "uuid": "twin-a"}),
        ("adopt", {"member": "b", "uuid": "found-b"}),
    )
    assert mem.uuids == {"a": "found", "b": "found-b"} and mem.in_flight == set()
    assert mem.known_uuids == {"found", "twin-a", "found-b"}


def test_lost_and_removed_forget_only_the_uuid_they_name():
    mem = folded(
        begin(),
        ("result", {"member": "a", "ok": True, "uuid": "ua"}),
        ("result", {"member": "b", "ok": True, "uuid": "ub"}),
        ("result", {"member": "c", "ok": True, "uuid": "uc"}),
        ("lost", {"member": "a", "uuid": "other"}),  # an older uuid: a's counts still
        ("lost", {"member": "b", "uuid": "ub"}),
        ("removed", {"member": "c", "uuid": "extra-c"}),
    )
    assert mem.uuids == {"a": "ua", "c": "uc"} and mem.removed == {"extra-c"}
    fold(mem, "removed", {"kind": "removed", "member": "c", "uuid": "uc"})
    assert mem.uuids == {"a": "ua"} and mem.removed == {"extra-c", "uc"}
    fold(mem, "result", {"kind": "result", "member": "b", "ok": True, "uuid": "ub-again"})  # the repair
    assert mem.uuids["b"] == "ub-again"


def test_a_present_fact_is_not_a_claim_nor_a_lost_upload():
    mem = folded(begin(pre={"e": ["p"]}), ("present", {"member": "a", "uuid": "p"}))
    assert mem.in_flight == set() and mem.removed == set() and mem.pre_existing == {"e": {"p"}}


def test_end_says_whether_the_run_was_complete():
    assert folded(begin(), ("end", {"complete": True})).complete
    assert not folded(begin(), ("end", {"complete": False})).complete
    assert not folded(begin(), ("end", {})).complete


def test_written_facts_read_back_and_a_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / "sub" / "l.jsonl"
    led = ledgers.Ledger(path)
    led.write("begin", run="r1", tag="t", events=["e"], loops=1, fresh=True, pre_existing={"e": ["p"]})
    led.write_members("claim", ["a", "b", "c", "d"], owner="local")
    led.write("result", "a", ok=True, uuid="ua", status=202)
    led.write_members("release", ["c"], owner="local", maybe_sent=False)
    led.write("result", "d", ok=True, uuid="ud", status=202)
    led.write("lost", "d", uuid="ud")  # never showed up: must be sent again
    led.close()
    led.write("result", "b", ok=True, uuid="late")  # after the end: dropped, not a crash
    lines = path.read_text().splitlines()
    assert all(json.loads(ln)["t"] > 0 for ln in lines) and len(lines) == 6
    with path.open("a") as f:
        f.write('{"kind": "result", "member": "b", "ok": tr')  # torn by a kill
    mem = ledgers.read(path)
    assert mem.uuids == {"a": "ua"} and mem.in_flight == {"b"} and mem.known_uuids == {"ua", "ud"}
    assert mem.pre_existing == {"e": {"p"}} and mem.runs == 1


def test_lines_that_are_not_facts_are_skipped(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_text('\n[1, 2]\n"text"\n42\n{"member": "x"}\n{"kind": "claim", "members": ["a"]}\n')
    assert ledgers.read(path).in_flight == {"a"}


def test_a_run_appending_after_a_torn_line_is_not_lost_with_it(tmp_path):
    path = tmp_path / "l.jsonl"
    led = ledgers.Ledger(path)
    led.write("begin", run="r1", fresh=True, pre_existing={})
    led.write("result", "a", ok=True, uuid="ua")
    led.close()
    with path.open("a") as f:
        f.write('{"kind": "result", "member": "b", "ok": tr')  # the kill
    led = ledgers.Ledger(path)  # the same command again, with --fresh
    led.write("begin", run="r2", fresh=True, pre_existing={"e": ["ua"]})
    led.write("result", "b", ok=True, uuid="ub")
    led.close()
    mem = ledgers.read(path)
    assert mem.runs == 1 and mem.pre_existing == {"e": {"ua"}} and mem.uuids == {"b": "ub"}


def test_a_missing_ledger_is_an_empty_memory(tmp_path):
    assert ledgers.read(tmp_path / "none.jsonl").empty


def test_default_ledger_path_names_host_and_event_in_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    p = ledgers.default_path("http://localhost:8000/api/v1", "test-yale-faces")
    assert p == tmp_path / "kanta-seed" / "ledgers" / "localhost_8000_api_v1--test-yale-faces.jsonl"
    assert ledgers.default_path("https://kanta.example/", "e").name == "kanta.example--e.jsonl"
    assert ledgers.default_path("http://[::1]:8001", "e").name == "1_8001--e.jsonl"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert ledgers.cache_dir() == tmp_path / "home" / ".cache" / "kanta-seed" / "ledgers"


def test_what_top_up_found_in_the_event_is_remembered_for_a_resume():
    mem = folded(begin(), ("claim", {"members": ["a", "b"]}), ("present", {"member": "a", "uuid": "old"}))
    assert mem.present == {"a": "old"} and mem.uuids == {} and mem.in_flight == {"b"}
