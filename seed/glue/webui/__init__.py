"""The Locust web UI as a seeding console: the start form checked as strictly as a headless run and laid
out for seeding, a "Seeding" tab that draws the run (progress bar, pipeline chart, one tile per image),
and the summary as JSON and Markdown downloads.

Only Locust's own extension points, no fork of its front end:
- a Flask ``before_request`` hook vets ``POST /swarm`` (the start form) with the same checks as a
  headless run, and refuses a bad form with Locust's own ``{"success": false, "message": ...}``;
- Locust's ``extended_tabs`` template arg adds the tab; with no table of its own, Locust leaves its
  panel empty, and ``static/seed-tab.js`` (plain JS, shipped in the package, injected into Locust's
  page by an ``after_request`` hook) draws into it from ``/kanta-seed/progress.json``;
- ``extended_csv_files`` puts the summary downloads, and the run's one-file HTML report (the tab's
  picture at the end of the run, as ``--report-html`` writes it), in Locust's "Download Data" tab.

The start form. Locust 2.47's React form lists a locustfile's options ("Custom parameters") in the
order of ``template_args["extra_options"]``, each labelled from its dest ("check_p50_ms" becomes
"Check P5 0Ms") and named for the POST by a camelCase round trip that mangles digits (the field of
``check_p50_ms`` posts ``check_p5_0ms``, which Locust ignores). So:
- the page's ``window.templateArgs`` is rewritten (the same ``after_request`` hook): kanta-seed's
  options in the order a user needs them (FORM_GROUPS), each with the value the next run would use
  (the last accepted START's: a reload keeps them; Locust itself keeps host, users and spawn rate);
- the form check maps a mangled field name back to its option (``form_aliases``) and stores every
  kanta-seed value of an accepted START in the parsed options itself (Locust skips names it does not
  know);
- the tab script relabels the fields (FORM_GROUPS' labels, help texts kept), heads each group, and
  shows one line saying what the next START fills, from ``/kanta-seed/target.json``.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, request
from flask_login import current_user
from jinja2.utils import htmlsafe_json_dumps
from locust.argument_parser import get_parser
from locust.runners import STATE_CLEANUP, STATE_INIT, STATE_RUNNING, STATE_STOPPED, STATE_STOPPING

from seed import __version__
from seed.coordination.options import Settings, add_arguments
from seed.coordination.preflight import BadInput
from seed.core import gate
from seed.core.summary import markdown
from seed.glue import plans, progress
from seed.glue.seeder import Seeder
from seed.kanta import contract as kanta
from seed.kanta.client import KantaClient, urllib_transport

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
TARGET_TIMEOUT_S = 3.0  # the form's "what the next START fills" line reads the event at most this long
# kanta-seed's options in the start form, in the order a user needs them: what to seed where, how fast,
# what to do with what is already there, then the gates; an option not named here (a new one) comes
# last, under "More". Labels: the dest in words ("upload_pause": "Upload pause"), unless named here.
FORM_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("What to seed, where", ("event_code", "event_name", "images", "bench", "bench_cleanup", "loops",
                             "fresh_event")),
    ("Pacing", ("upload_pause", "max_backlog", "wait_for", "no_verify", "verify_timeout",
                "max_attempts", "retry_for", "request_timeout")),
    ("Ledger and what the event holds", ("ledger", "fresh", "top_up", "allow_existing",
                                         "keep_extra_copies", "blob_host", "strict")),
    ("Checks and baseline", ("check_min_rate", "check_p50_ms", "check_p95_ms", "check_fail_ratio",
                             "check_drain_s", "check_min_processed_rate", "check_processed_s",
                             "check_min_faces_share", "check_min_cluster_purity", "baseline",
                             "max_regression", "force_compare", "wait_clusters", "subject_pattern")),
    ("Summary files", ("summary_json", "summary_md", "report_html", "junit", "history")),
)  # fmt: skip
LABELS = {
    "check_p50_ms": "Check p50 ms",
    "check_p95_ms": "Check p95 ms",
    "summary_json": "Summary JSON",
    "summary_md": "Summary Markdown",
}
# Locust's page: ``window.templateArgs = {{ template_args|tojson }}`` (one line: tojson escapes "<").
TEMPLATE_ARGS = re.compile(r"(window\.templateArgs\s*=\s*)(\{.*?\})(\s*</script>)", re.S)


def attach(seeder: Seeder, web_ui: WebUI) -> None:
    """Add the start-form check, the Seeding tab and the summary downloads to Locust's web UI."""
    app = web_ui.app
    assert app is not None  # Locust's WebUI makes its Flask app in its constructor
    base = (getattr(seeder.environment.parsed_options, "web_base_path", None) or "").rstrip("/")
    blueprint = Blueprint(
        "kanta_seed",
        __name__,
        url_prefix=f"{base}{PREFIX}",
        static_folder=str(STATIC_DIR),
        static_url_path="/static",
    )
    # The declared types of the form's options: Locust keeps a None-default option's value as text.
    types = {dest: a.type for dest, a in get_parser().args_included_in_web_ui.items() if callable(a.type)}
    ours = seed_options()
    form = form_layout(ours)
    aliases = form_aliases(ours)

    @app.before_request
    def vet_start_form() -> Response | None:
        if request.method != "POST" or request.endpoint != "locust.swarm":
            return None
        return check_start_form(seeder, web_ui, types, aliases)

    @app.after_request
    def add_to_page(response: Response) -> Response:
        if request.endpoint == "locust.request_stats" and response.status_code == 200 and response.is_json:
            return with_run_state(seeder, response)
        if (
            request.endpoint == "locust.index"
            and response.status_code == 200
            and response.mimetype == "text/html"
        ):
            return with_tab_script(with_form_values(response, seeder, ours), form)
        return response

    @blueprint.route("/progress.json")
    @web_ui.auth_required_if_enabled
    def progress_json() -> Response:
        response = jsonify(progress_document(seeder))
        response.headers["Cache-Control"] = "no-store"
        return response

    @blueprint.route("/target.json")
    @web_ui.auth_required_if_enabled
    def target_json() -> Response:
        response = jsonify(target_document(seeder, request.args))
        response.headers["Cache-Control"] = "no-store"
        return response

    @blueprint.route("/summary.json")
    @web_ui.auth_required_if_enabled
    def summary_json() -> Response:
        return summary_download(seeder, "json")

    @blueprint.route("/summary.md")
    @web_ui.auth_required_if_enabled
    def summary_md() -> Response:
        return summary_download(seeder, "md")

    @blueprint.route("/report.html")
    @web_ui.auth_required_if_enabled
    def report() -> Response:
        return report_download(seeder)

    app.register_blueprint(blueprint)
    # update_template_args() merges into template_args, so these keys survive every page load.
    args = web_ui.template_args
    args["extended_tabs"] = [*args.get("extended_tabs", []), {"title": TAB_TITLE, "key": TAB_KEY}]
    args["extended_csv_files"] = [
        *args.get("extended_csv_files", []),
        {"href": f".{PREFIX}/summary.json", "title": "Download kanta-seed summary JSON"},
        {"href": f".{PREFIX}/summary.md", "title": "Download kanta-seed summary Markdown"},
        {"href": f".{PREFIX}/report.html", "title": "Download kanta-seed report (one HTML file)"},
    ]


def with_tab_script(response: Response, form: dict[str, Any] | None = None) -> Response:
    """Locust's page with the Seeding tab's script and style (relative URLs: --web-base-path works),
    and the start form's layout for the script (labels, groups) as JSON."""
    html = response.get_data(as_text=True)
    if "seed-tab.js" in html:
        return response
    layout = str(htmlsafe_json_dumps(form or {}))
    tags = (
        f'<script type="application/json" id="kanta-seed-form">{layout}</script>'
        f'<link rel="stylesheet" href=".{PREFIX}/static/seed-tab.css?v={__version__}">'
        f'<script defer src=".{PREFIX}/static/seed-tab.js?v={__version__}" data-tab-key="{TAB_KEY}"'
        f' data-tab-title="{TAB_TITLE}"></script>'
    )
    at = html.rfind("</body>")
    response.set_data(html[:at] + tags + html[at:] if at != -1 else html + tags)
    return response


def check_start_form(
    seeder: Seeder, web_ui: WebUI, types: dict[str, Any], aliases: dict[str, str] | None = None
) -> Response | None:
    """Refuse a start form that a headless run would refuse; on success keep the plan for test_start,
    and the form's kanta-seed values in the parsed options (the next run's, and the reloaded form's)."""
    env = seeder.environment
    runner = env.runner
    if env.parsed_options is None or runner is None or runner.state not in (STATE_INIT, STATE_STOPPED):
        return None  # a running test's user count being edited: no new run starts, nothing to vet
    if web_ui.web_login and not current_user.is_authenticated:
        return None  # Locust's login check on the view answers this one
    fields = form_fields(request.form, aliases or {}, vars(env.parsed_options))
    try:
        if zero_users(fields.get("user_count")):  # what headless refuses for -u 0
            raise BadInput(plans.ZERO_USERS)
        options, host = apply_form(env.parsed_options, fields, env.host or "", types)
        plan = seeder.prepare(Settings.from_options(options, host))
    except ValueError as e:  # BadInput, or a value Settings cannot read: a message, not a bare 500
        log.error("kanta-seed: %s (start refused)", e)
        return jsonify({"success": False, "message": f"kanta-seed: {e}", "host": env.host})
    # Locust's /swarm stores only the fields it knows by name: kanta-seed stores its own (the same
    # values, converted as Locust converts them), so a field whose name Locust's form mangled counts.
    for dest in aliases.values() if aliases else ():
        if hasattr(options, dest):
            setattr(env.parsed_options, dest, getattr(options, dest))
    # start_test compares its own Settings with plan.settings and uses the plan when they are equal.
    seeder.plan = plan
    plans.log_plan(plan)  # the terminal says what is about to be seeded, as a headless run does
    return None


def zero_users(value: Any) -> bool:
    try:
        return value is not None and int(str(value).strip()) == 0
    except ValueError:
        return False  # Locust's own check names a user count that is not a number


def form_fields(form: Any, aliases: dict[str, str], known: dict[str, Any]) -> dict[str, Any]:
    """The posted fields, each under its option's dest (Locust's form posts ``check_p5_0ms`` for
    ``check_p50_ms``); a field posted under its own name wins over a mangled one."""
    fields: dict[str, Any] = {}
    for key, value in form.items():
        dest = key if key in known else aliases.get(squash(key), key)
        if dest == key or dest not in fields:
            fields[dest] = value
    return fields


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


# --- the start form: which options are kanta-seed's, their order, labels and values ---------------------
def seed_options() -> dict[str, dict[str, Any]]:
    """kanta-seed's options in the start form, as options.add_arguments registers them:
    dest -> {"flag", "help", "default"} (the registry itself, so a new option shows up here too)."""

    class Recorder:
        def __init__(self) -> None:
            self.options: dict[str, dict[str, Any]] = {}

        def add_argument(self, *flags: str, **kw: Any) -> None:
            if kw.get("include_in_web_ui", True):
                dest = str(kw.get("dest") or flags[0].lstrip("-").replace("-", "_"))
                self.options[dest] = {
                    "flag": flags[0],
                    "help": str(kw.get("help") or ""),
                    "default": kw.get("default"),
                }

        def set_defaults(self, **_: Any) -> None:
            pass

    recorder = Recorder()
    add_arguments(recorder)
    return recorder.options


def squash(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def form_aliases(ours: dict[str, Any]) -> dict[str, str]:
    """What a form field name is squashed to (no "_", lower case) -> the dest it means."""
    return {squash(dest): dest for dest in ours}


def camel(dest: str) -> str:
    """The name Locust's React form gives an option's field (its snake-to-camel conversion)."""
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), dest)


def label_of(dest: str) -> str:
    return LABELS.get(dest) or dest.replace("_", " ").capitalize()


def ordered(ours: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """kanta-seed's options grouped and in order; one not in FORM_GROUPS ends the last group."""
    groups = [(title, [d for d in dests if d in ours]) for title, dests in FORM_GROUPS]
    placed = {d for _, dests in groups for d in dests}
    rest = [d for d in ours if d not in placed]
    if rest:
        groups.append(("More", rest))
    return [(title, dests) for title, dests in groups if dests]


def form_layout(ours: dict[str, Any]) -> dict[str, Any]:
    """What the tab script needs to relabel and head the form's fields, by their field names."""
    fields: dict[str, dict[str, str]] = {}
    for title, dests in ordered(ours):
        for n, dest in enumerate(dests):
            help_text = ours[dest]["help"]
            label = label_of(dest)
            fields[camel(dest)] = {
                "dest": dest,
                "label": f"{label} ({help_text})" if help_text else label,
                "group": title if n == 0 else "",
            }
    return {"fields": fields, "order": list(fields)}


def with_form_values(response: Response, seeder: Seeder, ours: dict[str, Any]) -> Response:
    """Locust's page with kanta-seed's options in FORM_GROUPS' order, each with the value the next run
    uses (the last accepted START's; Locust's own form arg would be the command line's)."""
    html = response.get_data(as_text=True)
    found = TEMPLATE_ARGS.search(html)
    if not found:
        return response  # another Locust page layout: its form, as it is
    try:
        args = json.loads(found.group(2))
    except ValueError:
        return response
    extra = args.get("extra_options")
    if not isinstance(extra, dict):
        return response
    args["extra_options"] = arranged(extra, seeder.environment.parsed_options, ours)
    response.set_data(html[: found.start(2)] + str(htmlsafe_json_dumps(args)) + html[found.end(2) :])
    return response


def arranged(extra: dict[str, Any], options: Any, ours: dict[str, Any]) -> dict[str, Any]:
    """Locust's ``extra_options`` reordered (kanta-seed's by FORM_GROUPS, then anyone else's), with
    kanta-seed's default values taken from the parsed options (what the last accepted START set)."""
    out: dict[str, Any] = {}
    for _, dests in ordered(ours):
        for dest in dests:
            if dest not in extra:
                continue
            entry = dict(extra[dest])
            if options is not None and hasattr(options, dest):
                entry["default_value"] = json_value(getattr(options, dest))
            out[dest] = entry
    out.update((k, v) for k, v in extra.items() if k not in out)
    return out


def json_value(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, bool, int, float)) else str(value)


def target_document(seeder: Seeder, args: Any) -> dict[str, Any]:
    """What the next START fills: the mode, the event, and what that event holds now.

    The form's fields as query args (host, event_code, bench, fresh_event, loops; images is accepted
    and not read: the data set is read when START is pressed); a missing one is the current option.
    """
    env = seeder.environment
    options = env.parsed_options

    def current(name: str, fallback: Any) -> Any:
        value = args.get(name)
        if value is None:
            return getattr(options, name, fallback) if options is not None else fallback
        return value

    def flag(name: str) -> bool:
        value = current(name, False)
        return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "on", "yes")

    host = (
        (str(args.get("host") or "").strip() or env.host or kanta.DEFAULT_HOST)
        .replace("<", "")
        .replace(">", "")
    )
    code = str(current("event_code", kanta.DEFAULT_EVENT_CODE) or kanta.DEFAULT_EVENT_CODE).strip()
    try:
        loops = max(1, int(str(current("loops", 1)).strip() or 1))
    except ValueError:
        loops = 1
    settings = Settings(host=host, event_code=code, bench=flag("bench"), fresh_event=flag("fresh_event"))
    doc: dict[str, Any] = {"mode": settings.mode, "host": host, "event": code, "holds": None}
    problem = kanta.event_code_problem(code)
    if problem:
        return {**doc, "note": f"--event-code {code!r} {problem}"}
    if settings.mode == "bench":
        events = (
            f"a new event {code}-<run id>" if loops == 1 else f"{loops} new events {code}-<run id>-1..{loops}"
        )
        cleanup = "; deleted when the run ends (--bench-cleanup)" if flag("bench_cleanup") else ""
        return {**doc, "event": None, "note": f"{events} per START{cleanup}"}
    problem = kanta.host_problem(host)
    if problem:
        return {**doc, "note": f"host {host!r} {problem}"}
    client = KantaClient(host, urllib_transport, timeout_s=TARGET_TIMEOUT_S)
    items = client.list_event(code)
    if items is None:
        why = client.list_problem
        if why.startswith("no answer"):
            return {**doc, "note": f"nothing answers at {host}"}
        return {**doc, "note": f"cannot read event {code} at {host}: {why}"}
    held = len(items)
    if not held:
        return {**doc, "holds": 0, "note": "holds no images; START uploads the data set"}
    word = "image" if held == 1 else "images"
    return {**doc, "holds": held, "note": f"holds {held} {word}; START uploads what the data set lacks"}


def with_run_state(seeder: Seeder, response: Response) -> Response:
    """Locust's stats JSON, with the state a seeding run really is in; a new response (Locust memoizes)."""
    run, runner = seeder.run, seeder.environment.runner
    if run is None or runner is None or runner.state not in STOP_STATES:
        return response
    data = dict(response.get_json())
    # Locust's UI polls only while it reads "spawning" or "running", and this JSON is memoized for
    # 2 s: a poll landing in the brief cleanup/stopping window would freeze the page there. The
    # seeding run goes on until its summary exists (in-flight uploads finish first), so it reads
    # "running" until then, "stopped" after.
    data["state"] = STATE_STOPPED if run.finished else STATE_RUNNING
    return jsonify(data)


def progress_document(seeder: Seeder) -> dict[str, Any]:
    """What the Seeding tab draws: figures, tiles, the chart, and the summary once there is one."""
    run = seeder.run
    snap = progress.snapshot(run)
    doc: dict[str, Any] = {"snapshot": snap, "tiles": [], "chart": [], "rows": [], **phase(seeder)}
    if run is not None:
        doc["run"] = run.run_id  # which run this is: a NEW run's figures are never the last one's
        doc["tiles"] = progress.tiles(run)
        doc["chart"] = progress.chart(run)
        doc["grid"] = progress.grid(run)
        if run.summary is not None:
            doc["rows"] = [[label, value] for label, value in run.summary.rows()]
    return doc


def phase(seeder: Seeder) -> dict[str, Any]:
    """Where the run is, for the tab's badge, from the same facts as Locust's header and the summary:
    ``running``; ``stopping`` (STOP pressed, or the run ending by itself: uploads in flight finish,
    the event is read back; Locust's header still reads RUNNING); ``ended``, with ``result`` the
    summary's own (pass, stopped, incomplete, regression) from the moment Locust's header reads
    STOPPED; ``idle`` before the first run."""
    run, runner = seeder.run, seeder.environment.runner
    if run is None:
        return {"phase": "idle", "result": None}
    if run.summary is not None:
        return {"phase": "ended", "result": run.summary.result}
    if run.finished or (runner is not None and runner.state in STOP_STATES):
        return {"phase": "stopping", "result": None}
    return {"phase": "running", "result": None}


def summary_download(seeder: Seeder, kind: str) -> Response:
    """The last run's summary, as --summary-json / --summary-md write it, as a file download."""
    run = seeder.run
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


def report_download(seeder: Seeder) -> Response:
    """The last run's one-file HTML report, as --report-html writes it (``Seeder.report``), as a file
    download: its verdicts from the summary, its trend from its --history folder, Locust's statistics."""
    run = seeder.run
    summary = run.summary if run is not None else None
    if run is None or summary is None:
        return Response("kanta-seed: no report yet; it appears when a run ends\n", 404, mimetype="text/plain")
    doc = summary.to_dict()
    verdicts = [
        gate.verdict_from(v)
        for v in doc.get("baseline_verdicts") or []
        if isinstance(v, (dict, gate.Verdict))
    ]
    try:
        body = seeder.report(run, doc, verdicts)
    except (OSError, ValueError) as e:  # its --history folder unreadable, say: one line, not a bare 500
        log.error("kanta-seed: the report could not be made: %s", e)
        return Response(f"kanta-seed: the report could not be made: {e}\n", 500, mimetype="text/plain")
    response = Response(body, mimetype="text/html")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="kanta-seed-report-{summary.event_code}.html"'
    )
    response.headers["Cache-Control"] = "no-store"
    return response
