"""The web UI's start form and what a run declares as its target, in a real browser against a real
``locust`` process and a stand-in (the machinery of test_webui.py):

- STOP part-way, then NEW and START to the same event: the event ends holding each image exactly once
  (a seed run converges: it uploads only what the event lacks), and Locust's header, the Seeding tab's
  badge and the summary say the same;
- the form refuses ``-u 0`` as a headless run does, and a field whose name Locust's form mangles
  (``check_p95_ms`` posts as ``check_p5_0ms``) still reaches the checks;
- the form lists kanta-seed's options in the order a user needs them, labelled properly;
- a reload keeps the last START's values, and the form says what the next START fills (and what that
  event holds now);
- bench mode: every START seeds a new event of its own.

Every wait is bounded (RUN_S); nothing asserts on wall time.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse

from playwright.sync_api import Page, expect

from seed.glue import plans

from . import test_webui
from .helpers import free_port, http, stored_contents, yale_contents
from .test_webui import (
    READY,
    RUN_S,
    LocustUI,
    custom_parameters,
    expect_agreement,
    progress,
    start,
    status,
    summary_row,
    wait_for_run_after,
)

# test_webui's fixtures: the browser (one per module), and locust web UIs ended by PID after each test.
browser, ui_factory, locust_ui = test_webui.browser, test_webui.ui_factory, test_webui.locust_ui

CODE = "web-ui-rerun"
# The start form's first fields, in this order (what to seed where), and where the gates come.
FIRST_FIELDS = ["eventCode", "eventName", "images", "bench", "benchCleanup"]
FIELD_NAMES = "() => [...document.querySelectorAll('.MuiAccordionDetails-root [name]')].map((n) => n.name)"


def target(ui: LocustUI, **args: str) -> dict:
    code, body = http("GET", f"{ui.url}/kanta-seed/target.json?{urllib.parse.urlencode(args)}")
    assert code == 200, body
    return json.loads(body)


def target_line(page: Page):
    return page.locator("[data-kanta-seed-target]:visible")


def wait_until_accepted(ui: LocustUI, at_least: int) -> dict:
    """The running run's snapshot once Kanta accepted at least this many images (bounded)."""
    deadline = time.monotonic() + RUN_S / 1000
    while True:
        doc = progress(ui)
        if doc["snapshot"].get("accepted", 0) >= at_least:
            return doc
        assert doc.get("phase") != "ended", f"the run ended before STOP:\n{ui.output}"
        assert time.monotonic() < deadline, f"fewer than {at_least} accepted:\n{ui.output}"
        time.sleep(0.2)


def copies(contents) -> str:
    """How a stored content count differs from the data set's, in words (for assertion messages)."""
    want = yale_contents()
    extra = sum(max(0, n - want.get(h, 0)) for h, n in contents.items())
    missing = sum(max(0, n - contents.get(h, 0)) for h, n in want.items())
    stored, images = sum(contents.values()), sum(want.values())
    return f"{stored} stored for {images} images: {extra} extra, {missing} missing"


def test_stop_then_new_fills_the_event_exactly_once(browser, standin, ui_factory):
    ui = ui_factory(standin.url)  # a stock Kanta's pipeline
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(ui.url)

    # Run 1, paced so that STOP lands part-way; STOP once Kanta accepted some images.
    start(page, **{"Event code": CODE, "Upload pause": "0.5"})
    first = wait_until_accepted(ui, 20)["run"]
    page.get_by_role("button", name="Stop", exact=True).click()
    stopped = wait_for_run_after(ui, None)
    assert stopped["run"] == first and stopped["result"] == "stopped", stopped
    expect_agreement(page, "stopped")  # header STOPPED, badge STOPPED, summary "stopped"
    code, body = http("GET", ui.url + "/kanta-seed/summary.json")
    summary = json.loads(body)
    assert code == 200 and summary["result"] == "stopped" and summary["uploaded"] < 165, summary

    # Run 2: NEW keeps the form's values (the event); START to the same event, unpaced.
    page.get_by_role("button", name="New").click()
    custom_parameters(page)
    expect(page.get_by_label("Event code", exact=False)).to_have_value(CODE)
    start(page, **{"Upload pause": "0"})
    second = wait_for_run_after(ui, first)

    # The proof first: the stand-in holds each Yale image exactly once (no copy added by the rerun).
    held = stored_contents(standin, CODE)
    assert held == yale_contents(), f"{copies(held)}\n{ui.output}"
    assert second["result"] == "pass", second
    expect_agreement(page, "pass")
    expect(summary_row(page, "result")).to_contain_text("pass (exit 0)")
    assert standin.events() == [CODE]
    assert not errors, errors


def test_the_form_refuses_no_users_and_reads_every_field(browser, standin, locust_ui):
    ui = locust_ui
    # -u 0 is refused as a headless run refuses it, in Locust's answer shape, and nothing is sent.
    answer = ui.post_form(user_count="0")
    assert answer == {"success": False, "message": f"kanta-seed: {plans.ZERO_USERS}", "host": answer["host"]}
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(ui.url)
    page.get_by_label("Number of users", exact=False).fill("0")
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("alert")).to_contain_text(f"kanta-seed: {plans.ZERO_USERS}")
    expect(status(page)).to_contain_text(READY)

    # kanta-seed's options in the order a user needs them, with labels a person would write.
    page.get_by_label("Number of users", exact=False).fill("10")
    custom_parameters(page)
    names = page.evaluate(FIELD_NAMES)
    ours = [n for n in names if n not in ("runTime", "profile")]
    assert ours[: len(FIRST_FIELDS)] == FIRST_FIELDS, ours
    assert ours.index("uploadPause") < ours.index("maxBacklog") < ours.index("checkMinRate"), ours
    assert ours.index("checkP95Ms") < ours.index("baseline"), ours
    for label in ("Check p50 ms (", "Check p95 ms (", "Upload pause (", "Bench (", "Bench cleanup ("):
        expect(page.get_by_label(label, exact=False)).to_have_count(1)
    assert not page.get_by_text(re.compile(r"P5 0Ms|P9 5Ms")).count()
    expect(page.get_by_role("heading", name="Pacing")).to_be_visible()

    # A field whose name Locust's form mangles on the way (checkP95Ms posts as check_p5_0ms) counts.
    page.get_by_label("Check p95 ms", exact=False).fill("lots")
    page.get_by_role("button", name="Start").click()
    refused = "kanta-seed: --check-p95-ms 'lots' is not a valid float"
    expect(page.get_by_role("alert")).to_contain_text(refused)
    expect(status(page)).to_contain_text(READY)
    assert standin.events() == [] and standin.rows("SELECT COUNT(*) FROM images") == [(0,)]


def test_target_json_says_what_start_fills(standin, locust_ui):
    ui = locust_ui
    doc = target(ui, host=standin.url, event_code=CODE)
    assert doc["mode"] == "seed" and doc["event"] == CODE and doc["holds"] == 0, doc
    assert doc["note"] == "holds no images; START uploads the data set", doc
    for args in (dict(bench="true"), dict(fresh_event="true")):
        doc = target(ui, host=standin.url, event_code=CODE, **args)
        assert doc["mode"] == "bench" and doc["event"] is None and doc["holds"] is None, doc
        assert doc["note"] == f"a new event {CODE}-<run id> per START", doc
    closed = f"http://127.0.0.1:{free_port()}"
    doc = target(ui, host=closed, event_code=CODE)
    assert doc["holds"] is None and doc["note"] == f"nothing answers at {closed}", doc
    doc = target(ui, host=standin.url, event_code="Bad_Code")
    assert doc["holds"] is None and doc["note"].startswith("--event-code 'Bad_Code'"), doc
    assert standin.events() == []  # looking sends nothing


def test_reload_keeps_the_last_start_and_says_what_the_event_holds(browser, fast_standin, ui_factory):
    ui = ui_factory(fast_standin.url)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(ui.url)
    custom_parameters(page)
    line = target_line(page)
    expect(line).to_contain_text("event test-yale-faces at")  # the command line's event, before a run
    expect(line).to_contain_text("holds no images")
    page.get_by_label("Event code", exact=False).fill(CODE)  # the line follows the field (debounced)
    expect(line).to_contain_text(f"event {CODE} at {fast_standin.url}: holds no images")
    page.get_by_label("Number of users", exact=False).fill("3")
    start(page, **{"Upload pause": "0.01", "Max backlog": "50", "Check p95 ms": "60000"})
    wait_for_run_after(ui, None)
    expect_agreement(page, "pass")

    # A reload, then NEW: the form holds the last START's values, not the command line's.
    page.reload()
    page.get_by_role("button", name="New").click()
    custom_parameters(page)
    expect(page.get_by_label("Event code", exact=False)).to_have_value(CODE)
    expect(page.get_by_label("Upload pause", exact=False)).to_have_value("0.01")
    expect(page.get_by_label("Max backlog", exact=False)).to_have_value("50")
    expect(page.get_by_label("Check p95 ms", exact=False)).to_have_value("60000")  # reached the server
    expect(page.get_by_label("Number of users", exact=False)).to_have_value("3")
    # ... and says what the event holds now: the whole data set.
    expect(target_line(page)).to_contain_text(
        f"event {CODE} at {fast_standin.url}: holds 165 images; START uploads what the data set lacks"
    )
    expect(target_line(page)).to_have_attribute("data-holds", "165")
    expect(target_line(page)).to_have_attribute("data-mode", "seed")


def test_bench_seeds_a_new_event_per_start(browser, fast_standin, ui_factory):
    """Bench mode from the form (needs issue 19's backend): each START makes and fills its own event."""
    ui = ui_factory(fast_standin.url)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(ui.url)
    custom_parameters(page)
    page.get_by_label("Event code", exact=False).fill(CODE)
    page.get_by_label("Bench (", exact=False).check()
    line = target_line(page)
    expect(line).to_have_attribute("data-mode", "bench")
    expect(line).to_contain_text(f"a new event {CODE}-<run id> per START")
    before: str | None = None
    for n in (1, 2):
        if n > 1:
            page.get_by_role("button", name="New").click()
            custom_parameters(page)
            expect(page.get_by_label("Bench (", exact=False)).to_be_checked()  # kept from the last START
            expect(target_line(page)).to_have_attribute("data-mode", "bench")
        start(page)
        before = wait_for_run_after(ui, before)["run"]
        expect_agreement(page, "pass")
        events = fast_standin.events()
        assert len(events) == n and all(e.startswith(f"{CODE}-") for e in events), events
    for event in fast_standin.events():
        held = stored_contents(fast_standin, event)
        assert held == yale_contents(), f"{event}: {copies(held)}\n{ui.output}"
    # Unticked, the form is back to seeding the one event (which bench runs left alone).
    page.get_by_role("button", name="New").click()
    custom_parameters(page)
    page.get_by_label("Bench (", exact=False).uncheck()
    expect(target_line(page)).to_contain_text(f"event {CODE} at {fast_standin.url}: holds no images")
