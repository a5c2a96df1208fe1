"""The Locust web UI as a seeding console: the start form checked as strictly as a headless run, a
"Seeding" tab with the live progress and the end-of-run summary, and the summary as a JSON download.

Only Locust's own extension points, no fork of its front end:
- a Flask ``before_request`` hook vets ``POST /swarm`` (the start form) with the same checks as a
  headless run, and refuses a bad form with Locust's own ``{"success": false, "message": ...}``;
- Locust's ``extended_tabs``/``extended_tables`` template args draw the tab, fed by an
  ``extended_stats`` entry added to the ``/stats/requests`` JSON the UI polls anyway;
- ``extended_csv_files`` puts the summary JSON download in Locust's "Download Data" tab.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, request
from flask_login import current_user
from locust.argument_parser import get_parser
from locust.runners import STATE_CLEANUP, STATE_INIT, STATE_RUNNING, STATE_STOPPED, STATE_STOPPING

from . import progress, report
from .options import Settings
from .preflight import BadInput, prepare
from .session import Session

if TYPE_CHECKING:
    from locust.web import WebUI

log = logging.getLogger("kanta_seed")
TAB_KEY = "kanta-seed"
SUMMARY_PATH = "/kanta-seed/summary.json"
# Form fields Locust's /swarm handler treats specially; the rest are options, kanta-seed's among them.
LOCUST_FORM_FIELDS = frozenset(
    {"user_count", "spawn_rate", "host", "run_time", "profile", "user_classes", "shape_class"}
)
STOP_STATES = (STATE_CLEANUP, STATE_STOPPING, STATE_STOPPED)
LABEL_WIDTH = 11  # report.render's label column: "  event      ...", "  per worker ..."


def attach(session: Session, web_ui: WebUI) -> None:
    """Add the start-form check, the Seeding tab and the summary download to Locust's web UI."""
    app = web_ui.app
    base = (getattr(session.environment.parsed_options, "web_base_path", None) or "").rstrip("/")
    blueprint = Blueprint("kanta_seed", __name__, url_prefix=base or None)
    # The declared types of the form's options: Locust keeps a None-default option's value as text.
    types = {dest: a.type for dest, a in get_parser().args_included_in_web_ui.items() if callable(a.type)}

    @app.before_request
    def vet_start_form() -> Response | None:
        if request.method != "POST" or request.endpoint != "locust.swarm":
            return None
        return check_start_form(session, web_ui, types)

    @app.after_request
    def add_progress(response: Response) -> Response:
        if request.endpoint != "locust.request_stats" or response.status_code != 200 or not response.is_json:
            return response
        return with_progress(session, response)

    @blueprint.route(SUMMARY_PATH)
    @web_ui.auth_required_if_enabled
    def summary_json() -> Response:
        return summary_download(session)

    app.register_blueprint(blueprint)
    # update_template_args() merges into template_args, so these keys survive every page load.
    args = web_ui.template_args
    args["extended_tabs"] = [*args.get("extended_tabs", []), {"title": "Seeding", "key": TAB_KEY}]
    args["extended_tables"] = [
        *args.get("extended_tables", []),
        {
            "key": TAB_KEY,
            "structure": [{"key": "figure", "title": "Figure"}, {"key": "value", "title": "Value"}],
        },
    ]
    args["extended_csv_files"] = [
        *args.get("extended_csv_files", []),
        {"href": f".{SUMMARY_PATH}", "title": "Download kanta-seed summary JSON"},
    ]


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
        plan = prepare(Settings.from_options(options, host))
    except ValueError as e:  # BadInput, or a value Settings cannot read: a message, not a bare 500
        log.error("kanta-seed: %s (start refused)", e)
        return jsonify({"success": False, "message": f"kanta-seed: {e}", "host": env.host})
    # on_test_start compares its own Settings with plan.settings and reuses the plan when equal.
    session.plan = plan
    from .lifecycle import log_plan  # here, not at the top: lifecycle imports this module

    log_plan(session)  # the terminal says what is about to be seeded, as a headless run does
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


def with_progress(session: Session, response: Response) -> Response:
    """Locust's stats JSON plus the Seeding tab's rows; a new response, since Locust memoizes its own."""
    data = dict(response.get_json())
    snap = progress.snapshot(session)
    others = [e for e in data.get("extended_stats") or [] if e.get("key") != TAB_KEY]
    data["extended_stats"] = [*others, {"key": TAB_KEY, "data": rows(snap)}]
    run, runner = session.run, session.environment.runner
    if run is not None and runner is not None and runner.state in STOP_STATES:
        # Locust's UI polls only while it reads "spawning" or "running", and this JSON is memoized
        # for 2 s: a poll landing in the brief cleanup/stopping window would freeze the page there,
        # without the summary. The seeding run goes on until its summary exists (in-flight uploads
        # finish first), so it reads "running" until then, "stopped" after.
        data["state"] = STATE_STOPPED if run.finished else STATE_RUNNING
    return jsonify(data)


def rows(snap: dict[str, Any]) -> list[dict[str, str]]:
    """The Seeding tab's table: live figures, then the summary once the run has finished."""
    eta = "-" if snap["eta_s"] is None else f"{snap['eta_s']:.0f} s"
    verified = "-" if snap["verified"] is None else str(snap["verified"])
    out = [
        ("state", snap["state"]),
        ("event", snap.get("event_code", "-")),
        ("uploaded", f"{snap['done']}/{snap['total']}"),
        ("failed", str(snap["failed"])),
        ("retrying", str(snap["retrying"])),
        ("uploads/s", f"{snap['rate_per_s']:.1f}"),
        ("ETA", eta),
        ("verified", verified),
        ("elapsed", f"{snap['elapsed_s']:.1f} s"),
    ]
    if snap["summary"] is not None:
        out += summary_rows(snap["summary"])
    return [{"figure": f, "value": v} for f, v in out]


def summary_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The terminal summary's own lines, split into label and value: the same figures, by construction."""
    lines = report.render(summary).splitlines()[1:]  # below the "kanta-seed summary" title
    out = [("summary", "as in the terminal; the JSON is in the Download Data tab")]
    for line in lines:
        # "  rate       672.7 uploads/s ...": a label column; a free sentence ("  LOST: ...") has none.
        label, value = line[2 : 2 + LABEL_WIDTH], line[2 + LABEL_WIDTH :]
        if label.endswith(" ") and label.strip() and value[:1] not in ("", " "):
            out.append((f"summary: {label.strip()}", value))
        else:
            out.append(("summary", line.strip()))
    return out


def summary_download(session: Session) -> Response:
    """The last run's summary, as --summary-json writes it (report.write_json), as a file download."""
    summary = progress.snapshot(session)["summary"]
    if summary is None:
        return Response(
            "kanta-seed: no summary yet; it appears when a run ends\n", 404, mimetype="text/plain"
        )
    response = Response(json.dumps(summary, indent=2) + "\n", mimetype="application/json")
    name = f"kanta-seed-summary-{summary['event_code']}.json"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
