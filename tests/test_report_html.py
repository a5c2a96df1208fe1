"""The one-file HTML report (seed/glue/report.py), opened offline in a real browser (Debian's chromium
via Playwright, every request but the file itself aborted): the stage chart, the 165 tiles, the summary,
the checks and baseline verdicts, the request statistics and the trends are all there, and the page
raised no error.

The fixture is a stock stand-in run of the Yale set as ``progress_document`` and ``--summary-json`` give
it (recorded shapes: 165 tiles on the subjects x conditions grid, a chart sample per read-back poll).

Set KANTA_SEED_SCREENSHOT_DIR=DIR to keep a full-page screenshot (report.png).
"""

from __future__ import annotations

import os
import random
import re
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Route

from seed.core import gate, history
from seed.core.summary import SCHEMA
from seed.glue.report import report_html, write_report

from . import test_webui
from .helpers import http
from .test_webui import wait_for_run_after

# test_webui's fixtures: the browser (Debian's chromium, one per module), and locust web UIs ended by PID.
browser, ui_factory = test_webui.browser, test_webui.ui_factory
SUBJECTS = [f"subject{n:02d}" for n in range(1, 16)]
CONDITIONS = ["centerlight", "glasses", "happy", "leftlight", "noglasses", "normal", "rightlight", "sad",
              "sleepy", "surprised", "wink"]  # fmt: skip
MEMBERS = [f"yale_png/{s}/{s}_{c}.png" for s in SUBJECTS for c in CONDITIONS]
FACELESS = {"yale_png/subject01/subject01_rightlight.png", "yale_png/subject05/subject05_rightlight.png"}
HOST = "http://127.0.0.1:34593"
SCREENSHOT_DIR = os.environ.get("KANTA_SEED_SCREENSHOT_DIR", "")


def run_summary(rng: random.Random, **over) -> dict:
    latency = sorted(rng.gauss(124, 14) for _ in MEMBERS)
    processed_at = sorted(rng.uniform(0.6, 6.1) for _ in MEMBERS)
    doc = {
        "schema": SCHEMA, "event_code": "test-yale-faces", "events": ["test-yale-faces-ac655f"], "host": HOST,
        "host_kind": "local", "data_set": "/work/shared/yale_png.zip", "images": 165, "wait_for": "faces",
        "result": "regression", "exit_code": 3, "event": "created", "users": 5, "processes": 1, "loops": 1,
        "mode": "bench", "measured": True, "uploaded": 165, "failed": 0, "failed_images": [], "verified": 165,
        "processed": 165, "verify": True, "attempts": 165, "retries": 0, "fail_ratio": 0.0,
        "rate_per_s": 40.1, "upload_window_s": 4.1, "steady_rate_per_s": 40.6, "steady_window_s": 3.9,
        "latency_ms": {"p50": latency[82], "p90": latency[148], "p95": latency[156], "p99": latency[163],
                       "max": latency[-1]},
        "wall_s": 9.6,
        "pipeline": {"accepted_s": 4.1, "stored_s": 5.6, "processed_s": 6.1, "processed_per_s": 29.6,
                     "backlog_peak": 52, "held_back_s": 0.0,
                     "lag_s": {"stored": {"p50": 0.9, "p95": 1.7, "max": 1.9},
                               "processed": {"p50": 1.4, "p95": 2.1, "max": 5.9}}},
        "faces": {"images_with_faces": 163, "images_without": 2, "total": 163, "faceless": sorted(FACELESS),
                  "expected": 162, "least": 146, "rule": "Yale layout"},
        "regressions": ["check-p95-ms: p95 156.3 ms > limit 150 ms"],
        "checks_asked": ["check-min-rate", "check-p95-ms"],
        "samples": {"latency_ms": latency, "processed_at_s": processed_at,
                    "stored_lag_s": [rng.uniform(0.2, 1.9) for _ in MEMBERS],
                    "processed_lag_s": [rng.uniform(0.5, 5.9) for _ in MEMBERS]},
        "proof": "by uuid: every image's 202 named its copy, and no other copy of ours is in the event",
    }  # fmt: skip
    doc.update(over)
    return doc


def progress_doc(summary: dict) -> dict:
    """What ``progress_document`` serves at the end of that run."""
    tiles = [
        {
            "image": m, "state": "processed", "uuid": f"{i:032x}", "faces": 0 if m in FACELESS else 1,
            "attempts": 2 if i == 7 else 1, "repairs": 0,
            "error": "503 Service Unavailable" if i == 7 else "",
            "thumb": f"{HOST}/blobs/test-yale-faces/images/{i:032x}.png",  # a report must not fetch it
        }
        for i, m in enumerate(MEMBERS)
    ]  # fmt: skip
    chart = [[0.41, 27, 15, 5], [1.55, 73, 47, 39], [2.7, 118, 82, 73], [3.85, 165, 117, 108],
             [5.01, 165, 157, 145], [6.16, 165, 165, 165], [7.31, 165, 165, 165],
             [9.6, 165, 165, 165]]  # fmt: skip
    grid = {
        "rows": SUBJECTS,
        "cols": CONDITIONS,
        "cells": {
            m: [SUBJECTS.index(m.split("/")[1]), CONDITIONS.index(m.rsplit("_", 1)[1][:-4])] for m in MEMBERS
        },
    }
    snapshot = {
        "state": "finished", "event_code": "test-yale-faces", "host": HOST, "end_stage": "faces",
        "total": 165, "accepted": 165, "stored": 165, "processed": 165, "failed": 0, "doubt": 0,
        "retrying": 0,
        "in_flight": 0, "done": 165, "rate_per_s": 40.1, "eta_s": 0.0, "elapsed_s": 9.6, "outage_s": None,
        "held_back": False, "summary": summary,
    }  # fmt: skip
    rows = [
        ["result", "REGRESSION (exit 3): every image made it, but a check or the baseline failed"],
        ["event", f"test-yale-faces-ac655f at {HOST} (created)"],
        ["data set", "/work/shared/yale_png.zip (165 images, 1 member skipped)"],
        ["uploaded", "165/165"],
        ["CHECK FAILED", "check-p95-ms: p95 156.3 ms > limit 150 ms"],
    ]
    return {
        "snapshot": snapshot,
        "tiles": tiles,
        "chart": chart,
        "grid": grid,
        "rows": rows,
        "phase": "ended",
    }


STATS = [
    {"name": "/events", "method": "POST", "num_requests": 1, "num_failures": 0, "avg": 1.8, "p50": 2,
     "p95": 2},
    {"name": "/pics/[event_code]", "method": "POST", "num_requests": 166, "num_failures": 1, "avg": 114.0,
     "p50": 120, "p95": 140},
    {"name": "/pics?event_code=[event_code]", "method": "GET", "num_requests": 11, "num_failures": 0,
     "avg": 91.3, "p50": 54, "p95": 150},
]  # fmt: skip


@pytest.fixture
def report(tmp_path) -> Path:
    rng = random.Random(7)
    folder = tmp_path / "history"
    for i in range(6):
        past = run_summary(
            rng, result="pass", exit_code=0, regressions=[], rate_per_s=40 + rng.uniform(-1, 1)
        )
        if i == 4:
            past["regressions"] = ["regression-p50-ms: p50 170.0 ms > allowed 143.0 ms"]
        history.append(folder, past, {"commit": f"{i:040x}"}, now=1_780_000_000 + 3600 * i)
    summary = run_summary(rng)
    baselines = gate.load_baselines(folder, like=summary)
    verdicts = gate.judge(summary, baselines)
    summary["baseline"] = f"compared with {folder}: " + gate.headline(verdicts, 0.15)
    summary["baseline_files"] = [b["baseline_file"] for b in baselines]
    path = tmp_path / "out" / "report.html"
    write_report(path, report_html(summary, progress_doc(summary), history.load(folder), verdicts, STATS))
    return path


def test_the_report_is_one_file_that_names_nothing_to_fetch(report):
    html = report.read_text()
    assert html.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in html
    assert "default-src 'none'" in html
    assert not re.search(r"<(link|img|iframe|object|embed)\b", html), "no element that loads a resource"
    assert not re.search(r"\b(src|href)=", html)
    assert "@import" not in html and "url(" not in html


def test_the_report_offline_in_a_browser(report: Path, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1320, "height": 900})
    url = report.as_uri()
    requests: list[str] = []
    errors: list[str] = []

    def only_the_file(route: Route) -> None:
        requests.append(route.request.url)
        if route.request.url == url:
            route.continue_()
        else:
            route.abort()

    page.route("**/*", only_the_file)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    page.wait_for_load_state("load")
    try:
        # the stage chart: three lines over time, each with a point per chart sample (and the origin)
        lines = page.eval_on_selector_all(
            ".ks-chart svg polyline.ks-line",
            "ls => ls.map(l => [l.dataset.series, l.getAttribute('points').trim().split(/\\s+/).length])",
        )
        assert lines == [["accepted", 9], ["stored", 9], ["processed", 9]]
        assert page.locator(".ks-chart svg polygon.ks-backlog").get_attribute("points")
        # the tiles: one per image, on the subjects x conditions grid, with their states
        tiles = page.locator("[data-image][data-state]")
        assert tiles.count() == 165
        assert set(page.eval_on_selector_all("[data-image]", "ts => ts.map(t => t.dataset.image)")) == set(
            MEMBERS
        )
        assert page.locator('[data-state="processed"][data-faceless="true"]').count() == len(FACELESS)
        box = page.locator('[data-image="yale_png/subject15/subject15_wink.png"]').bounding_box()
        first = page.locator('[data-image="yale_png/subject01/subject01_centerlight.png"]').bounding_box()
        assert box and first and box["x"] > first["x"] and box["y"] > first["y"]  # laid out as the grid
        # the progress
        bar = page.locator("[role=progressbar]")
        assert (bar.get_attribute("aria-valuenow"), bar.get_attribute("aria-valuemax")) == ("165", "165")
        # the summary rows, the checks, the baseline verdict with its noise band
        assert page.locator('.ks-rows tr[data-row="CHECK FAILED"]').count() == 1
        assert page.locator('[data-check="check-p95-ms"][data-status="fail"]').count() == 1
        assert page.locator('[data-check="check-min-rate"][data-status="pass"]').count() == 1
        figures = page.eval_on_selector_all(
            ".ks-baseline tbody tr", "rs => rs.map(r => [r.dataset.figure, r.dataset.status])"
        )
        assert [f for f, _ in figures] == [f.name for f in gate.FIGURES]
        assert dict(figures)["p99-ms"] == "too few samples"
        assert page.locator(".ks-baseline [data-band]").first.get_attribute("data-band")
        assert page.locator(".ks-baseline svg.ks-bandbar rect.ks-band").count() >= 4
        # the request statistics
        endpoints = page.eval_on_selector_all(
            ".ks-requests tbody tr", "rs => rs.map(r => r.dataset.endpoint)"
        )
        assert endpoints == [s["name"] for s in STATS]
        # the trends: a small chart per headline figure, this run last, the past regression marked
        assert page.locator("[data-trend] svg polyline.ks-tline").count() == len(history.HEADLINES)
        p50 = page.locator('[data-trend="p50-ms"] circle.ks-pt')
        assert (
            p50.count() == 7 and page.locator('[data-trend="p50-ms"] [data-regression="true"]').count() == 1
        )
        assert page.locator('[data-trend="rate"] [data-current="true"]').count() == 1
        assert page.locator('[data-trend="rate"] [data-baseline-run="true"]').count() == 6
        # the script ran (the page's policy allows its own inline script, nothing else): a click pins a tile
        page.locator('[data-image="yale_png/subject01/subject01_happy.png"]').click()
        assert "subject01_happy: processed" in page.locator(".ks-details").inner_text()
        page.locator('.ks-chip[data-goto="yale_png/subject05/subject05_rightlight.png"]').click()
        assert "subject05_rightlight" in page.locator(".ks-details").inner_text()
        if SCREENSHOT_DIR:
            page.screenshot(path=str(Path(SCREENSHOT_DIR) / "report.png"), full_page=True)
    finally:
        page.close()
    assert errors == []
    assert requests == [url]  # nothing but the file: no thumbnail, font or script from anywhere


def test_a_report_from_the_summary_alone_and_from_hostile_names():
    """No progress document (a run that ended before its first poll), Locust's own stats shape, and
    names that are HTML: the page still says what it can, and escapes what it shows."""
    bare = {"schema": SCHEMA, "event_code": "x-y", "host": HOST, "images": 3, "uploaded": 0, "verified": 0,
            "result": "incomplete", "exit_code": 1, "wait_for": "accepted", "rate_per_s": None,
            "regressions": [],
            "failed_images": [{"member": "<b>bold</b>.png", "status": 0, "error": "reset"}]}  # fmt: skip
    locust_rows = [{"name": "/pics/[event_code]", "method": "POST", "num_requests": 3, "num_failures": 3,
                    "avg_response_time": 5.0, "median_response_time": 4, "response_time_percentile_0.95": 9,
                    "max_response_time": 12}]  # fmt: skip
    html = report_html(bare, {}, [], [], locust_rows)
    assert "no upload was accepted" in html and "Not compared with a baseline." in html
    assert "No history (--history DIR keeps one)." in html and "No --check-* was asked for." in html
    assert '<td class="ks-num">4</td><td class="ks-num">9</td><td class="ks-num">12</td>' in html
    assert 'class="ks-line" data-series="stored" points=""' in html  # not read back: one line only
    hostile = '<img src=x onerror="alert(1)">.png'
    doc = {"tiles": [{"image": hostile, "state": "failed", "error": "</script><script>alert(2)</script>"}]}
    html = report_html({**bare, "event_code": "<i>code</i>"}, doc)
    assert "<img src=x" not in html and "<script>alert" not in html and "<i>code</i>" not in html
    assert html.count("<script>") == 1


class Tags(HTMLParser):
    """Every start tag of a page with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_the_web_ui_offers_the_last_runs_report_as_a_download(fast_standin, ui_factory, browser, tmp_path):
    """A seed started from the web UI (POST /swarm), then GET /kanta-seed/report.html: one file, named for
    the event, that loads nothing from anywhere, with the run's 165 tiles, its chart and its requests."""
    ui = ui_factory(fast_standin.url)
    code, body = http("GET", ui.url + "/kanta-seed/report.html")
    assert code == 404 and body.decode().count("\n") == 1, body  # no run has ended: one line says so
    code, body = http("GET", ui.url + "/")
    assert code == 200 and "/kanta-seed/report.html" in body.decode()  # in the "Download Data" tab
    assert ui.post_form(user_count="5", spawn_rate="5", event_code="web-ui-report")["success"], ui.output
    ended = wait_for_run_after(ui, None)
    assert ended["result"] == "pass", ui.output

    with urllib.request.urlopen(ui.url + "/kanta-seed/report.html", timeout=30) as resp:
        assert resp.status == 200 and resp.headers.get_content_type() == "text/html"
        disposition = resp.headers["Content-Disposition"]
        html = resp.read().decode()
    assert disposition == 'attachment; filename="kanta-seed-report-web-ui-report.html"'
    assert html.startswith("<!DOCTYPE html>") and "default-src 'none'" in html
    parser = Tags()
    parser.feed(html)
    # self-contained: nothing that loads, no src/href to anywhere (an anchor in the page at most)
    assert not [t for t, _ in parser.tags if t in ("link", "img", "iframe", "object", "embed")]
    refs = [a[k] or "" for _, a in parser.tags for k in ("src", "href") if k in a]
    assert all(r.startswith("#") for r in refs), refs
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", html, re.I)
    assert "@import" not in html and "url(" not in html
    tiles = [a for _, a in parser.tags if "data-image" in a]
    assert len(tiles) == 165 and {a.get("data-state") for a in tiles} == {"processed"}
    assert 'data-endpoint="/pics/[event_code]"' in html  # Locust's request statistics of the run

    # and offline in a browser: every request but the file's own aborted
    path = tmp_path / "report.html"
    path.write_text(html)
    page = browser.new_page()
    requests: list[str] = []

    def only_the_file(route: Route) -> None:
        requests.append(route.request.url)
        if route.request.url == path.as_uri():
            route.continue_()
        else:
            route.abort()

    page.route("**/*", only_the_file)
    try:
        page.goto(path.as_uri())
        assert page.locator("[data-image][data-state]").count() == 165
        assert page.locator(".ks-chart svg polyline.ks-line").count() == 3
        bar = page.locator("[role=progressbar]")
        assert (bar.get_attribute("aria-valuenow"), bar.get_attribute("aria-valuemax")) == ("165", "165")
    finally:
        page.close()
    assert requests == [path.as_uri()]
