"""In-process tests of the glue that the real-process tests only reach from outside: options, the
summary's verdict and text, the progress figures, the web form, and Locust's hooks on a LocalRunner
(Locust's own pattern: an Environment, a local runner, the init event)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from types import SimpleNamespace

import gevent
import pytest
from locust import events
from locust.argument_parser import get_parser
from locust.env import Environment

from seed.__main__ import options_help
from seed.coordination.checks import CHECKS
from seed.coordination.options import Settings, env_name, option_fields
from seed.coordination.preflight import BadInput, prepare
from seed.coordination.run import Run
from seed.core.dataset import grayscale_png
from seed.core.summary import Faces, Latency, Summary, markdown, render
from seed.core.work import Result
from seed.glue import (
    lifecycle,  # noqa: F401  (its hooks, registered on Locust's events)
    progress,
)
from seed.glue.users import KantaUploader
from seed.glue.webui import apply_form
from seed.kanta.client import Answer

README = Path(__file__).resolve().parent.parent / "README.md"


# --- options --------------------------------------------------------------------------------------
def test_the_readme_options_table_lists_every_option():
    table = README.read_text().split("\n## Options", 1)[1].split("\n### ", 1)[0]
    listed = set(re.findall(r"^\| `(--[a-z0-9-]+)", table, re.M))
    listed |= set(re.findall(r"`, `(--[a-z0-9-]+)", table))
    ours = {f.metadata["flag"] for f in option_fields()} | {c.flag for c in CHECKS}
    assert ours - listed == set(), "options missing from the README table"
    assert listed - ours - {"--host", "--stop-timeout", "--web-host"} == set(), "the table lists gone options"


def test_every_option_comes_from_an_environment_variable_too(monkeypatch):
    monkeypatch.setenv(env_name("--event-code"), "from-env")
    monkeypatch.setenv(env_name("--max-backlog"), "7")
    options = get_parser().parse_args(["-f", "locustfile.py"])
    s = Settings.from_options(options, options.host)
    assert (s.event_code, s.max_backlog) == ("from-env", 7)
    assert options.web_host == "127.0.0.1"  # kanta-seed's web UI stays on loopback unless asked


def test_help_shows_every_default():
    text = options_help()
    for shown in ("default: test-yale-faces", "default: 30", "default: 60", "default: 100", "localhost:8000",
                  "default: faces", "exit codes"):  # fmt: skip
        assert shown in text, shown


def test_a_value_of_the_wrong_type_is_named():
    with pytest.raises(ValueError, match="--max-backlog 'lots' is not a valid int"):
        Settings.from_options(SimpleNamespace(max_backlog="lots"), "")


# --- the verdict --------------------------------------------------------------------------------------
def summary(**over) -> Summary:
    base = dict(event_code="e-x", events=["e-x"], host="http://127.0.0.1:1", host_kind="local",
                data_set="d.zip", images=3, wait_for="faces", uploaded=3, verified=3, processed=3,
                readback_polls=2, latency_ms=Latency(1, 2, 3, 4, 5))  # fmt: skip
    s = Summary(**{**base, **over})
    s.decide()
    return s


@pytest.mark.parametrize(
    ("over", "code", "result"),
    [
        ({}, 0, "pass"),
        ({"regressions": ["check-p95-ms: ..."]}, 3, "regression"),
        ({"processed": 2}, 1, "incomplete"),
        ({"extra_copies": ["a.png (u1)"]}, 1, "incomplete"),
        ({"missing": ["a.png"]}, 1, "incomplete"),
        ({"failed": 1, "uploaded": 2, "verified": 2, "processed": 2}, 1, "incomplete"),
        ({"stopped_early": True, "stop_reason": "stopped by Ctrl-C (SIGINT)"}, 1, "stopped"),
        ({"timed": True, "stopped_early": False, "processed": 1}, 0, "pass"),
        ({"error": "internal error in the read-back: boom"}, 1, "incomplete"),
        ({"wait_for": "accepted", "verified": 0, "processed": 0, "readback_polls": 0}, 0, "pass"),
    ],
)
def test_the_exit_code_says_what_happened(over, code, result):
    s = summary(**over)
    assert (s.exit_code, s.result) == (code, result)
    assert render(s).splitlines()[1].startswith(f"  result     {s.result.upper() if code else s.result}")


@pytest.mark.parametrize(
    ("over", "says", "never"),
    [
        ({}, "every image is where it should be, exactly once", "also holds"),
        ({"timed": True, "uploaded": 2, "verified": 2, "processed": 1, "images": 9},
         "timed run (--run-time): 1 of 9 processed in the time", "exactly once"),
        ({"wait_for": "accepted", "verify": False, "verified": 0, "processed": 0, "readback_polls": 0},
         "not proven stored", "exactly once"),
        ({"held_before": 165}, "the event also holds 165 images from before the run, untouched", ""),
    ],
)  # fmt: skip
def test_a_pass_claims_no_more_than_the_run_checked(over, says, never):
    line = render(summary(**over)).splitlines()[1]
    assert says in line and (not never or never not in line), line


def test_a_run_that_did_not_finish_says_how_many_reached_each_stage():
    s = summary(images=165, uploaded=26, verified=22, processed=21, stopped_early=True,
                faces=Faces(images_with_faces=19, images_without=2, total=19))  # fmt: skip
    s.pipeline.accepted_s, s.pipeline.stored_s, s.pipeline.processed_s = 4.0, 3.4, 3.3
    text = render(s)
    assert "accepted 26 by 4.0 s, stored 22 by 3.4 s, processed 21 by 3.3 s" in text
    assert "19 of the 21 images processed had faces" in text


def test_a_run_that_sent_nothing_says_so():
    s = summary(attempts=0, resumed=3, latency_ms=None)
    assert "n/a (nothing was uploaded)" in render(s)


def test_the_summary_tells_the_truth_when_nothing_worked():
    s = summary(uploaded=0, verified=0, processed=0, failed=3, latency_ms=None, readback_polls=0,
                failed_images=[{"member": f"m{i}", "status": 0, "error": "no answer"} for i in range(3)],
                failures_by_reason={"connection refused": 3})  # fmt: skip
    text = render(s)
    assert "latency    n/a" in text and "verified" not in text.split("stored", 1)[-1].split("\n")[0]
    assert "no answer no answer" not in text
    assert sum(1 for ln in text.splitlines() if "FAILED" in ln) == 1  # one line, names shortened
    assert "| result | INCOMPLETE (exit 1)" in markdown(s)


@pytest.mark.parametrize(
    ("pics", "words"),
    [
        (Answer(0, error="timed out"), "(GET /pics: no answer (timed out)); is Kanta up, or busy"),
        (Answer(200, b"<html>"), "(GET /pics: a list that is not Kanta's"),
        (Answer(403, b"no"), "(GET /pics: HTTP 403); is it Kanta?"),
    ],
)
def test_an_event_that_cannot_be_read_before_the_run_says_why(tmp_path, pics, words):
    waited: dict[str, float] = {}

    def transport(method: str, url: str, name: str, timeout_s: float) -> Answer:
        if "/events" in url:
            return Answer(200, b'{"events": []}')
        waited["pics" if "/pics" in url else "health"] = timeout_s
        return pics if "/pics" in url else Answer(200, b'{"status":"ok"}')

    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "a.png").write_bytes(grayscale_png(8, 8, lambda x, y: x * y))
    settings = Settings(host="http://127.0.0.1:9", images=str(tmp_path / "set"), ledger=str(tmp_path / "l"))
    with pytest.raises(BadInput, match=re.escape(words)):
        prepare(settings, project_dir=tmp_path, transport=transport)
    # health is asked briefly; a list may wait on Kanta's DB pool, as an upload may
    assert waited == {"health": 5.0, "pics": settings.request_timeout}


# --- progress, on a Run fed by hand --------------------------------------------------------------------
class NoKanta:
    host = "http://127.0.0.1:9"
    blob_note = ""


def test_progress_counts_and_the_line(tmp_path):
    plan = prepare(Settings(standin=True), project_dir=tmp_path, reach=False)
    run = Run(plan, NoKanta())
    got = run.queue.claim("local", 10)
    now = time.time()
    for i in got[:6]:
        run.result("local", Result(i, True, 202, uuid=f"{i:032x}", sent_at=now - 1, latency_ms=20))
    for i in got[6:8]:
        run.result("local", Result(i, False, 503, error="busy", sent_at=now - 1, latency_ms=5))
    run.result("local", Result(got[8], False, 0, error="no answer: reset", sent_at=now - 1, latency_ms=5))
    snap = progress.snapshot(run)
    assert (snap["accepted"], snap["retrying"], snap["doubt"], snap["in_flight"]) == (6, 2, 1, 1)
    line = progress.line(snap, 60)
    assert line.startswith("kanta-seed: accepted 6 / stored 0 / processed 0 of 165") and "1 in doubt" in line
    states = {t["state"] for t in progress.tiles(run)}
    assert {"accepted", "retrying", "sending", "pending"} <= states
    assert progress.grid(run)["rows"][:2] == ["subject01", "subject02"]


def test_thousands_of_images_are_shown_as_a_few_hundred_tiles(tmp_path):
    plan = prepare(Settings(standin=True, loops=10), project_dir=tmp_path, reach=False)  # 1,650 images
    run = Run(plan, NoKanta())
    got = run.queue.claim("local", 5)
    now = time.time()
    for i in got:
        run.result("local", Result(i, True, 202, uuid=f"{i:032x}", sent_at=now - 1, latency_ms=20))
    shown = progress.tiles(run)
    assert len(shown) <= progress.TILES_SHOWN and sum(t["images"] for t in shown) == 1650
    # a group shows its least advanced image: images 0-2 accepted; 3, 4 accepted but 5 not yet sent
    assert (shown[0]["state"], shown[1]["state"]) == ("accepted", "pending")
    assert shown[0]["image"].endswith("(3 images)") and progress.grid(run) is None
    assert len(progress.tiles(run, most=2000)) == 1650  # a few hundred images: one tile each


# --- the web form ----------------------------------------------------------------------------------
def test_the_form_is_applied_to_a_copy_and_converted():
    options = SimpleNamespace(event_code="a-b-c", upload_pause=0.0, check_p95_ms=None, fresh=False)
    applied, _ = apply_form(
        options, {"event_code": "x-y-z", "upload_pause": "0.5", "check_p95_ms": "", "fresh": "true"}, "", {}
    )
    assert (applied.event_code, applied.upload_pause, applied.check_p95_ms, applied.fresh) == (
        "x-y-z", 0.5, "", True,
    )  # fmt: skip
    assert options.event_code == "a-b-c"  # a refused form leaves the next start untouched


# --- Locust's hooks on a LocalRunner -------------------------------------------------------------------
def test_a_local_runner_seeds_the_stand_in_and_ends_by_itself(fast_standin, yale_zip, tmp_path):
    options = get_parser().parse_args(
        ["-f", "x.py", "--headless", "-H", fast_standin.url, "--images", str(yale_zip), "-u", "4", "-r", "4",
         "--summary-json", str(tmp_path / "s.json")]
    )  # fmt: skip
    env = Environment(user_classes=[KantaUploader], events=events, parsed_options=options, host=options.host)
    runner = env.create_local_runner()
    events.init.fire(environment=env, runner=runner, web_ui=None)
    runner.start(4, 4)
    with gevent.Timeout(60):
        runner.greenlet.join()  # the driver quits the runner when every image is done
    run = env.kanta_seed.run
    assert run.summary is not None and run.summary.exit_code == 0, render(run.summary)
    assert run.summary.verified == 165 and env.process_exit_code == 0
    assert (tmp_path / "s.json").is_file()
