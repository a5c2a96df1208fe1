"""The Locust web UI as a seeding console: the start form checked as strictly as a headless run, a
"Seeding" tab that draws the run (progress bar, pipeline chart, one tile per image), and the summary
as JSON and Markdown downloads.

Only Locust's own extension points, no fork of its front end:
- a Flask ``before_request`` hook vets ``POST /swarm`` (the start form) with the same checks as a
  headless run, and refuses a bad form with Locust's own ``{"success": false, "message": ...}``;
- Locust's ``extended_tabs`` template arg adds the tab; with no table of its own, Locust leaves its
  panel empty, and ``static/seed-tab.js`` (plain JS, shipped in the package, injected into Locust's
  page by an ``after_request`` hook) draws into it from ``/kanta-seed/progress.json``;
- ``extended_csv_files`` puts the summary downloads in Locust's "Download Data" tab.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, request
from flask_login import current_user
from locust.argument_parser import get_parser
from locust.runners import STATE_CLEANUP, STATE_INIT, STATE_RUNNING, STATE_STOPPED, STATE_STOPPING

from .. import __version__, driver, progress
from ..options import Settings
from ..preflight import BadInput
from ..session import Session
from ..summary import markdown

if TYPE_CHECKING:
    from locust.web import WebUI

log = logging.getLogger("kanta_seed")
TAB_KEY = "kanta-seed"
TAB_TITLE = "Seeding"
PREFIX = "/kanta-seed"
STATIC_DIR = Path(__file__).with_name("static")
# Form fields Locust's /swarm handler treats specially; the rest are options, kanta-seed's among them.
LOCUST_FORM_FIELDS = frozenset(
    {"user_count", "spawn_rate", "host", "run_time", "profile", "user_classes", "shape_class"}
)
STOP_STATES = (STATE_CLEANUP, STATE_STOPPING, STATE_STOPPED)


def attach(session: Session, web_ui: WebUI) -> None:
    """Add the start-form check, the Seeding tab and the summary downloads to Locust's web UI."""
    app = web_ui.app
    base = (getattr(session.environment.parsed_options, "web_base_path", None) or "").rstrip("/")
    blueprint = Blueprint(
        "kanta_seed",
        __name__,
        url_prefix=f"{base}{PREFIX}",
        static_folder=str(STATIC_DIR),
        static_url_path="/static",
    )
    # The declared types of the form's options: Locust keeps a None-default option's value as text.
    types = {dest: a.type for dest, a in get_parser().args_included_in_web_ui.items() if callable(a.type)}

    @app.before_request
    def vet_start_form() -> Response | None:
        if request.method != "POST" or request.endpoint != "locust.swarm":
            return None
        return check_start_form(session, web_ui, types)

    @app.after_request
    def add_to_page(response: Response) -> Response:
        if request.endpoint == "locust.request_stats" and response.status_code == 200 and response.is_json:
            return with_run_state(session, response)
        if (
            request.endpoint == "locust.index"
            and response.status_code == 200
            and response.mimetype == "text/html"
        ):
            return with_tab_script(response)
        return response

    @blueprint.route("/progress.json")
    @web_ui.auth_required_if_enabled
    def progress_json() -> Response:
        response = jsonify(progress_document(session))
        response.headers["Cache-Control"] = "no-store"
        return response

    @blueprint.route("/summary.json")
    @web_ui.auth_required_if_enabled
    def summary_json() -> Response:
        return summary_download(session, "json")

    @blueprint.route("/summary.md")
    @web_ui.auth_required_if_enabled
    def summary_md() -> Response:
        return summary_download(session, "md")

    app.register_blueprint(blueprint)
    # update_template_args() merges into template_args, so these keys survive every page load.
    args = web_ui.template_args
    args["extended_tabs"] = [*args.get("extended_tabs", []), {"title": TAB_TITLE, "key": TAB_KEY}]
    args["extended_csv_files"] = [
        *args.get("extended_csv_files", []),
        {"href": f".{PREFIX}/summary.json", "title": "Download kanta-seed summary JSON"},
        {"href": f".{PREFIX}/summary.md", "title": "Download kanta-seed summary Markdown"},
    ]


def with_tab_script(response: Response) -> Response:
    """Locust's page with the Seeding tab's script and style (relative URLs: --web-base-path works)."""
    html = response.get_data(as_text=True)
    if "seed-tab.js" in html:
        return response
    tags = (
        f'<link rel="stylesheet" href=".{PREFIX}/static/seed-tab.css?v={__version__}">'
        f'<script defer src=".{PREFIX}/static/seed-tab.js?v={__version__}" data-tab-key="{TAB_KEY}"'
        f' data-tab-title="{TAB_TITLE}"></script>'
    )
    at = html.rfind("</body>")
    response.set_data(html[:at] + tags + html[at:] if at != -1 else html + tags)
    return response


def check_start_form(session: Session, web_ui: WebUI, types: dict[str, Any]) -> Response | None:
    """Refuse a start form that a headless run would refuse; on success keep the plan for test_start."""
    env = session.environment
    runner = env.runner
    if env.parsed_options is None or runner is None or runner.state not in (STATE_INIT, STATE_STOPPED):
        return None  # a running test's user count being edited: no new run starts, nothing to vet
    if web_ui.web_login and not current_user.is_authenticated:
        return None  # Locust's login check on the view answers this one
    try:
        options, host = apply_form(env.parsed_options, request.form, env.host or "", types)
        plan = driver.prepare_plan(session, Settings.from_options(options, host))
    except ValueError as e:  # BadInput, or a value Settings cannot read: a message, not a bare 500
        log.error("kanta-seed: %s (start refused)", e)
        return jsonify({"success": False, "message": f"kanta-seed: {e}", "host": env.host})
    # start_test compares its own Settings with plan.settings and uses the plan when they are equal.
    session.plan = plan
    driver.log_plan(plan)  # the terminal says what is about to be seeded, as a headless run does
    return None


def apply_form(options: Any, form: Any, host: str, types: dict[str, Any]) -> tuple[Any, str]:
    """A copy of the parsed options with the form applied, converted as Locust's /swarm does it.

    A copy, because a refused form must leave the options of the next start untouched.
    """
    applied = copy.copy(options)
    values = vars(applied)
    if "host" in form:
        host = str(form["host"]).replace("<", "").replace(">", "")  # what /swarm stores as the host
    for key, value in form.items():
        if key in LOCUST_FORM_FIELDS or key not in values:
            continue
        current = values[key]
        if isinstance(current, bool):
            values[key] = value == "true"
        elif isinstance(current, list):
            continue  # no kanta-seed option is a list; Locust handles its own
        else:
            # Locust stores type(current)(value), text for a None default, and answers a value that
            # does not convert with a bare 500: check against the declared type and name the field.
            kind = types.get(key) or type(current)
            try:
                if value != "" or not (current is None or isinstance(current, str)):
                    kind(value)  # an optional option may be left empty
                values[key] = value if current is None else type(current)(value)
            except ValueError:
                flag = "--" + key.replace("_", "-")
                raise BadInput(f"{flag} {value!r} is not a valid {kind.__name__}") from None
    return applied, host


def with_run_state(session: Session, response: Response) -> Response:
    """Locust's stats JSON, with the state a seeding run really is in; a new response (Locust memoizes)."""
    run, runner = session.run, session.environment.runner
    if run is None or runner is None or runner.state not in STOP_STATES:
        return response
    data = dict(response.get_json())
    # Locust's UI polls only while it reads "spawning" or "running", and this JSON is memoized for
    # 2 s: a poll landing in the brief cleanup/stopping window would freeze the page there. The
    # seeding run goes on until its summary exists (in-flight uploads finish first), so it reads
    # "running" until then, "stopped" after.
    data["state"] = STATE_STOPPED if run.finished else STATE_RUNNING
    return jsonify(data)


def progress_document(session: Session) -> dict[str, Any]:
    """What the Seeding tab draws: figures, tiles, the chart, and the summary once there is one."""
    run = session.run
    snap = progress.snapshot(run)
    doc: dict[str, Any] = {"snapshot": snap, "tiles": [], "chart": [], "rows": []}
    if run is not None:
        doc["tiles"] = progress.tiles(run)
        doc["chart"] = progress.chart(run)
        doc["grid"] = progress.grid(run)
        if run.summary is not None:
            doc["rows"] = [[label, value] for label, value in run.summary.rows()]
    return doc


def summary_download(session: Session, kind: str) -> Response:
    """The last run's summary, as --summary-json / --summary-md write it, as a file download."""
    run = session.run
    summary = run.summary if run is not None else None
    if summary is None:
        return Response(
            "kanta-seed: no summary yet; it appears when a run ends\n", 404, mimetype="text/plain"
        )
    if kind == "json":
        body, mime = json.dumps(summary.to_dict(), indent=2) + "\n", "application/json"
    else:
        body, mime = markdown(summary), "text/markdown"
    response = Response(body, mimetype=mime)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="kanta-seed-summary-{summary.event_code}.{kind}"'
    )
    return response
