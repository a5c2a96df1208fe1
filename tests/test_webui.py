"""The Locust web UI as a seeding console, driven in a real browser (Debian's chromium via Playwright)
against a real ``locust`` process (no --headless) and a stand-in with a stock Kanta's pipeline: the
Seeding tab is checked as a picture (progress bar, chart, one tile per image, the summary), and what the
stand-in stored is the proof.

Set KANTA_SEED_SCREENSHOT_DIR=docs to save the tab mid-run and at the end (webui-midrun.png,
webui-final.png; full page, 1280 px wide).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.error
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from seed.coordination.options import add_arguments

from .helpers import YALE_ZIP, Processes, free_port, http, stored_contents, yale_contents

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; a browser is never downloaded
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync",
]  # fmt: skip
CODE = "web-ui-seed"
STOPPED = re.compile(r"Status\s*stopped", re.I)  # Locust's header text; CSS shows it upper-case
READY = re.compile(r"Status\s*ready", re.I)
RUN_S = 45_000  # ms a run may take to show up in the UI and end (the stand-in's pipeline: ~10 s)
TILE_STATES = {"pending", "sending", "accepted", "stored", "processed", "failed", "retrying", "repaired"}
SCREENSHOT_DIR = os.environ.get("KANTA_SEED_SCREENSHOT_DIR", "")
# What the page shows of the run, read in one go.
PAGE_STATE = """() => {
  const bar = document.querySelector('[role=progressbar][aria-valuemax]');
  const tiles = [...document.querySelectorAll('[data-image][data-state]')];
  const states = {};
  for (const t of tiles) states[t.dataset.state] = (states[t.dataset.state] || 0) + 1;
  const box = (n) => {
    if (!n) return null;
    const r = n.getBoundingClientRect();
    return [r.x, r.y, r.width, r.height];
  };
  return {
    now: bar ? Number(bar.getAttribute('aria-valuenow')) : -1,
    max: bar ? Number(bar.getAttribute('aria-valuemax')) : -1,
    tiles: tiles.length, states,
    boxes: [bar, document.querySelector('.ks-chart svg'), tiles[0], tiles[tiles.length - 1]].map(box),
  };
}"""


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
def ui_factory(processes, tmp_path) -> Iterator[Callable[[str], LocustUI]]:
    """Start ``locust`` web UIs seeding a given host; each ended by its PID when the test ends."""
    started: list[LocustUI] = []

    def make(host: str) -> LocustUI:
        cwd = tmp_path / f"ui{len(started)}"
        cwd.mkdir()
        started.append(LocustUI(processes, host, cwd))
        return started[-1]

    yield make
    for ui in started:
        print(ui.output)  # pytest shows it when the test failed


@pytest.fixture
def locust_ui(standin, ui_factory) -> LocustUI:
    return ui_factory(standin.url)


def seeding_options() -> dict[str, tuple[str, object, object]]:
    """kanta-seed's web-UI options as registered on Locust's parser: dest -> (help, default, type)."""

    class Recorder:
        def __init__(self) -> None:
            self.options: dict[str, tuple[str, object, object]] = {}

        def add_argument(self, *flags: str, **kw: object) -> None:
            if kw.get("include_in_web_ui", True):
                dest = flags[0].lstrip("-").replace("-", "_")
                self.options[dest] = (str(kw["help"]), kw.get("default"), kw.get("type"))

        def set_defaults(self, **_: object) -> None:
            pass  # Locust's own options' defaults (--web-host): not a seeding option

    recorder = Recorder()
    add_arguments(recorder)
    return recorder.options


def custom_parameters(page: Page) -> None:
    """Open the start form's "Custom parameters" (where Locust puts a locustfile's own options)."""
    button = page.get_by_role("button", name="Custom parameters")
    if button.get_attribute("aria-expanded") != "true":
        button.click()


def summary_row(page: Page, label: str) -> Locator:
    """The value of one row of the Seeding tab's end-of-run summary."""
    header = page.get_by_role("rowheader", name=label, exact=True)
    return page.get_by_role("row").filter(has=header).get_by_role("cell")


def progress(ui: LocustUI) -> dict:
    code, body = http("GET", ui.url + "/kanta-seed/progress.json")
    assert code == 200, body
    return json.loads(body)


def run_id(ui: LocustUI) -> str | None:
    return progress(ui).get("run")


def wait_for_run_after(ui: LocustUI, before: str | None, timeout_s: float = RUN_S / 1000) -> dict:
    """The progress document of a run other than ``before``, once that run has ended."""
    deadline = time.monotonic() + timeout_s
    while True:
        doc = progress(ui)
        if doc.get("run") not in (None, before) and doc.get("phase") == "ended":
            return doc
        assert time.monotonic() < deadline, f"no new run ended in {timeout_s:g} s:\n{ui.output}"
        time.sleep(0.3)


def page_state(page: Page) -> dict:
    return page.evaluate(PAGE_STATE)


def screenshot(page: Page, name: str) -> None:
    if SCREENSHOT_DIR:
        page.mouse.move(0, 0)
        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.wait_for_timeout(400)  # let the tiles' colour transitions end
        page.screenshot(path=str(Path(SCREENSHOT_DIR) / name), full_page=True)


def status(page: Page) -> Locator:
    return page.locator("header")


def start(page: Page, **fields: str | bool) -> None:
    """Fill the start form (a field by the start of its label; a bool ticks a box) and press START."""
    custom_parameters(page)
    for label, value in fields.items():
        field = page.get_by_label(label, exact=False)
        if isinstance(value, bool):
            field.set_checked(value)
        else:
            field.fill(value)
    page.get_by_role("button", name="Start").click()
    page.get_by_role("tab", name="Seeding").click()


def badge(page: Page) -> Locator:
    """The Seeding tab's badge: where the run is, then the summary's own result."""
    return page.locator(".ks-badge")


def expect_agreement(page: Page, result: str) -> None:
    """Locust's header, the tab's badge and the summary say the same about an ended run."""
    expect(status(page)).to_contain_text(STOPPED, timeout=RUN_S)  # Locust's runner: not running
    expect(badge(page)).to_have_text(result, timeout=RUN_S)
    expect(page.locator(".ks-result-badge")).to_have_text(result)
    expect(summary_row(page, "result")).to_contain_text(re.compile(rf"^{result}\b", re.I))


def test_seed_and_seed_again_from_the_browser(browser, standin_factory, ui_factory):
    standin = standin_factory()  # a stock Kanta's pipeline: 165 images take ~10 s to be processed
    ui = ui_factory(standin.url)
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    elsewhere: list[str] = []  # the tab loads no library and calls nothing but kanta-seed and Kanta
    page.on("request", lambda r: None if r.url.startswith((ui.url, standin.url)) else elsewhere.append(r.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
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

    # Run 1, mid-run: the bar part-way, the tiles in more than one state, one tile per image.
    start(page, **{"Event Code": CODE})
    bar = page.get_by_role("progressbar", name="Images done")
    expect(bar).to_have_attribute("aria-valuemax", "165", timeout=RUN_S)
    page.wait_for_function(
        f"""() => {{ const s = ({PAGE_STATE})();
          return s.now > 0 && s.now < s.max && Object.keys(s.states).length >= 2; }}""",
        timeout=RUN_S,
    )
    mid = page_state(page)
    assert mid["tiles"] == 165 and set(mid["states"]) <= TILE_STATES, mid
    expect(page.locator(".ks-result")).to_be_hidden()  # no summary before the end
    screenshot(page, "webui-midrun.png")
    tile = page.locator('[data-image="yale_png/subject01/subject01_happy.png"]')
    tile.hover()
    expect(page.get_by_role("tooltip")).to_contain_text("subject01_happy")
    page.mouse.move(0, 0)
    expect(page.get_by_role("tooltip")).to_be_hidden()
    tile.focus()  # one tab stop for the tiles; the arrow keys move between them
    page.keyboard.press("ArrowRight")
    expect(page.locator('[data-image="yale_png/subject01/subject01_leftlight.png"]')).to_be_focused()
    page.keyboard.press("Escape")

    # Run 1, at the end: every image processed, the chart drawn, the summary shown and downloadable.
    expect(bar).to_have_attribute("aria-valuenow", "165", timeout=RUN_S)
    expect(status(page)).to_contain_text(STOPPED, timeout=RUN_S)
    expect(summary_row(page, "uploaded")).to_have_text("165/165", timeout=RUN_S)
    expect(summary_row(page, "event")).to_have_text(f"{CODE} at {standin.url} (created)")
    expect(summary_row(page, "result")).to_contain_text("pass (exit 0)")
    expect_agreement(page, "pass")
    end = page_state(page)
    assert end["tiles"] == 165 and set(end["states"]) <= {"stored", "processed"}, end
    assert end["boxes"] == mid["boxes"], "the layout moved while polling"
    points = page.locator(".ks-chart svg polyline").first.get_attribute("points") or ""
    assert len(points.split()) >= 3, points  # the origin and at least two looks at the event
    assert page.get_by_text(re.compile(r"^Images with no face found: \d+$")).is_visible()
    screenshot(page, "webui-final.png")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download summary JSON").click()
    summary = json.loads(Path(download.value.path()).read_text())
    assert (summary["schema"], summary["exit_code"], summary["event"]) == (2, 0, "created")
    assert (summary["images"], summary["uploaded"], summary["failed"]) == (165, 165, 0)
    faceless = summary["faces"]["faceless"]
    expect(page.get_by_text(f"Images with no face found: {len(faceless)}")).to_be_visible()
    code, markdown = http("GET", ui.url + "/kanta-seed/summary.md")
    assert code == 200 and b"165/165" in markdown
    assert stored_contents(standin, CODE) == yale_contents(), ui.output  # each image exactly once

    # Run 2 (Locust's NEW), to the same event: a seed run converges, so it finds every image there and
    # uploads nothing; the tab shows the new run, not run 1's figures.
    first = run_id(ui)
    page.get_by_role("button", name="New").click()
    start(page)
    wait_for_run_after(ui, first)
    expect(summary_row(page, "event")).to_have_text(
        f"{CODE} at {standin.url} (already existed)", timeout=RUN_S
    )
    expect(summary_row(page, "uploaded")).to_have_text("0 (165 already there)")
    expect(bar).to_have_attribute("aria-valuenow", "165")
    expect_agreement(page, "pass")
    code, body = http("GET", ui.url + "/kanta-seed/summary.json")
    assert code == 200 and json.loads(body)["event"] == "already existed"

    # Locust's other theme: the tab follows it.
    tab = page.locator("[data-kanta-seed]")
    theme = tab.get_attribute("data-theme")
    page.locator("header .MuiIconButton-root:visible").last.click()  # Locust's light/dark toggle
    expect(tab).to_have_attribute("data-theme", "light" if theme == "dark" else "dark")

    # Seeding again adds no copy: the event still holds each image exactly once.
    assert standin.events() == [CODE]
    assert stored_contents(standin, CODE) == yale_contents(), ui.output
    assert not elsewhere, elsewhere
    assert not errors, errors


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
