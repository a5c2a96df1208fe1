"""The Locust web UI as a seeding console, driven in a real browser (Debian's chromium via Playwright)
against a real ``locust`` process (no --headless) and a stand-in: what the stand-in stored is the proof.

Set KANTA_SEED_SCREENSHOT=docs/webui-progress.png to save the Seeding tab at the end of the first run.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.error
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from seed.options import add_arguments

from .helpers import YALE_ZIP, Processes, free_port, http, stored_contents, yale_contents

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; a browser is never downloaded
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync",
]  # fmt: skip
CODE = "web-ui-seed"
STOPPED = re.compile(r"Status\s*stopped", re.I)  # Locust's header text; CSS shows it upper-case
READY = re.compile(r"Status\s*ready", re.I)
RUN_S = 30_000  # ms a run may take to show up in the UI (Locust polls every 2 s)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # No skip: without a browser the web UI is untested, and that must show as a failure.
    assert CHROMIUM.is_file(), f"no chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


class LocustUI:
    """A real ``locust`` process with its web UI on a free port; its output is kept for failures."""

    def __init__(self, processes: Processes, host: str, cwd: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = processes.start(
            "--web-host", "127.0.0.1", "--web-port", str(port), "-H", host, "--images", str(YALE_ZIP),
            "-u", "10", "-r", "10", cwd=cwd,
        )  # fmt: skip
        self.lines: list[str] = []
        # Drain the pipe so a chatty run never blocks on a full one.
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()
        deadline = time.monotonic() + 30
        while not self.answers():
            assert self.proc.poll() is None and time.monotonic() < deadline, f"no web UI:\n{self.output}"
            time.sleep(0.2)

    def answers(self) -> bool:
        try:
            return http("GET", self.url + "/")[0] == 200
        except urllib.error.URLError:
            return False

    @property
    def output(self) -> str:
        return "".join(self.lines)[-4000:]

    def post_form(self, **fields: str) -> dict:
        """POST /swarm as the start form does (every field it sends), with some fields changed."""
        form = {"user_count": "10", "spawn_rate": "10", "event_code": CODE, **fields}
        status, body = http(
            "POST",
            self.url + "/swarm",
            urllib.parse.urlencode(form).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status == 200, body
        return json.loads(body)


@pytest.fixture
def locust_ui(processes, standin, tmp_path) -> Iterator[LocustUI]:
    ui = LocustUI(processes, standin.url, tmp_path)
    yield ui
    print(ui.output)  # pytest shows it when the test failed


def seeding_options() -> dict[str, tuple[str, object, object]]:
    """kanta-seed's web-UI options as registered on Locust's parser: dest -> (help, default, type)."""

    class Recorder:
        def __init__(self) -> None:
            self.options: dict[str, tuple[str, object, object]] = {}

        def add_argument(self, *flags: str, **kw: object) -> None:
            if kw.get("include_in_web_ui", True):
                dest = flags[0].lstrip("-").replace("-", "_")
                self.options[dest] = (str(kw["help"]), kw.get("default"), kw.get("type"))

    recorder = Recorder()
    add_arguments(recorder)
    return recorder.options


def custom_parameters(page: Page) -> None:
    """Open the start form's "Custom parameters" (where Locust puts a locustfile's own options)."""
    button = page.get_by_role("button", name="Custom parameters")
    if button.get_attribute("aria-expanded") != "true":
        button.click()


def figure(page: Page, name: str) -> Locator:
    """The value cell of one row of the Seeding tab's table."""
    cell = page.locator("td").filter(has_text=re.compile(rf"^{re.escape(name)}$"))
    return page.locator("tr").filter(has=cell).locator("td").nth(1)


def status(page: Page) -> Locator:
    return page.locator("header")


def start(page: Page, **fields: str) -> None:
    custom_parameters(page)
    for label, value in fields.items():
        page.get_by_label(label, exact=False).fill(value)
    page.get_by_role("button", name="Start").click()
    page.get_by_role("tab", name="Seeding").click()


def test_seed_stop_and_seed_again_from_the_browser(browser, standin, locust_ui):
    ui = locust_ui
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page.goto(ui.url)

    # The start form: every seeding option, with its help text and its default (or the CLI's value).
    custom_parameters(page)
    images_help = seeding_options()["images"][0]  # --images is given on the command line
    for help_text, default, _ in seeding_options().values():
        # Locust labels a field "<Name from the dest> (<help>)"; its naming of digits is its own.
        field = page.get_by_label(re.compile(rf"^\S.* \({re.escape(help_text)}\)$"))
        if isinstance(default, bool):
            expect(field).not_to_be_checked()
        else:
            shown = "" if default is None else f"{default:g}" if isinstance(default, float) else str(default)
            expect(field).to_have_value(shown if help_text != images_help else str(YALE_ZIP))

    # Run 1: seeds every image, stops by itself, shows the summary, offers it as JSON.
    start(page, **{"Event Code": CODE})
    expect(figure(page, "uploaded")).to_have_text("165/165", timeout=RUN_S)
    expect(status(page)).to_contain_text(STOPPED, timeout=RUN_S)
    expect(figure(page, "summary: uploaded")).to_have_text("165/165")
    expect(figure(page, "summary: event")).to_have_text(f"{CODE} at {standin.url} (created)")
    expect(figure(page, "failed")).to_have_text("0")
    expect(figure(page, "ETA")).to_have_text("0 s")
    if os.environ.get("KANTA_SEED_SCREENSHOT"):
        page.screenshot(path=os.environ["KANTA_SEED_SCREENSHOT"], full_page=True)
    page.get_by_role("tab", name="Download Data").click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download kanta-seed summary JSON").click()
    summary = json.loads(Path(download.value.path()).read_text())
    assert (summary["event_code"], summary["event"]) == (CODE, "created")
    assert (summary["images"], summary["uploaded"], summary["failed"]) == (165, 165, 0)
    assert stored_contents(standin, CODE) == yale_contents(), ui.output

    # Run 2: stopped from the UI part-way; its summary says so.
    page.get_by_role("button", name="New").click()
    start(page, **{"Upload Pause": "0.5"})
    expect(figure(page, "state")).to_have_text("running", timeout=RUN_S)  # not run 1's last figures
    expect(figure(page, "uploaded")).to_have_text(re.compile(r"^([1-9]\d?|1[0-5]\d|16[0-4])/165$"))
    page.get_by_role("button", name="Stop").click()
    expect(status(page)).to_contain_text(STOPPED, timeout=RUN_S)
    expect(
        page.get_by_role("cell", name="the run was stopped before every image had a result")
    ).to_be_visible()
    partial = int(figure(page, "uploaded").inner_text().split("/")[0])
    assert 0 < partial < 165

    # Run 3: a full queue again, to the same event (reused, not created again).
    page.get_by_role("button", name="New").click()
    start(page, **{"Upload Pause": "0"})
    expect(figure(page, "summary: uploaded")).to_have_text("165/165", timeout=RUN_S)  # run 2's said N/165
    expect(figure(page, "summary: event")).to_have_text(f"{CODE} at {standin.url} (already existed)")
    expect(status(page)).to_contain_text(STOPPED)
    code, body = http("GET", ui.url + "/kanta-seed/summary.json")
    assert code == 200 and json.loads(body)["uploaded"] == 165

    assert standin.events() == [CODE]
    stored = stored_contents(standin, CODE)
    assert set(stored) == set(yale_contents()), ui.output
    assert sum(stored.values()) == 2 * 165 + partial, ui.output  # each run's uploads, each once
    assert all(stored[h] >= 2 * n for h, n in yale_contents().items())


def test_bad_start_form_is_refused_in_the_ui_and_nothing_is_sent(browser, standin, locust_ui, tmp_path):
    ui = locust_ui
    page = browser.new_page()
    page.goto(ui.url)
    custom_parameters(page)
    page.get_by_label("Event Code", exact=False).fill("Bad_Code!")
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("alert")).to_contain_text("kanta-seed: --event-code 'Bad_Code!'")
    expect(status(page)).to_contain_text(READY)
    expect(page.get_by_text("Start new load test")).to_be_visible()

    # The other kinds of bad input, as the form posts them: same answer shape, one clear line each.
    refused = {
        "images": (dict(images=str(tmp_path / "nope.zip")), "does not exist"),
        "host": (dict(host=f"http://127.0.0.1:{free_port()}"), "nothing answers"),
        "number": (dict(upload_pause="soon"), "--upload-pause 'soon' is not a valid float"),
    }
    # An option with no default: Locust keeps its text, kanta-seed still checks it against its type.
    for dest, (_, default, kind) in seeding_options().items():
        if default is None and kind in (int, float):
            flag = "--" + dest.replace("_", "-")
            refused["no default"] = ({dest: "lots"}, f"{flag} 'lots' is not a valid {kind.__name__}")
    for case, (fields, words) in refused.items():
        answer = ui.post_form(**fields)
        assert answer["success"] is False, (case, answer)
        assert answer["message"].startswith("kanta-seed: ") and words in answer["message"], (case, answer)

    _, stats = http("GET", ui.url + "/stats/requests")
    assert json.loads(stats)["state"] == "ready"
    assert standin.events() == [] and standin.rows("SELECT COUNT(*) FROM images") == [(0,)]
