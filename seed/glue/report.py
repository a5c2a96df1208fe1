"""One self-contained HTML file of a run (``--report-html PATH``): the picture the web UI's Seeding tab
shows at the end of a run, for runs nobody watched (CI, headless).

It draws, with no network and no script needed to see any of it (inline CSS and SVG; a few lines of
inline script only pin a tile's details on click and follow a dark colour scheme):

- the progress: images at the run's end stage, the stage counts;
- the stage chart over time: accepted / stored / processed lines (``progress_doc["chart"]``), the
  backlog between them;
- the grid of images: one tile per image (``data-image``, ``data-state``), subjects x conditions for
  the Yale set (``progress_doc["grid"]``), its name, uuid and last error on hover;
- the summary rows (the terminal's);
- the checks, and the baseline verdict of each figure with its noise band and allowance;
- the run's request statistics (Locust's per-endpoint rows);
- the trend of the headline figures over the history runs, the baseline and the regressions marked.

The look is the tab's: its stylesheet (``webui/static/seed-tab.css``, shipped in the package) is
inlined, and the same ``ks-`` classes are used. The page's Content-Security-Policy forbids every
fetch, so a report opened anywhere loads nothing (thumbnails, which Kanta serves, are left out).
"""

from __future__ import annotations

import html
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from seed.core import history as hist
from seed.core.gate import FIGURE_BY_NAME, Verdict, verdict_from

STYLESHEET = Path(__file__).with_name("webui") / "static" / "seed-tab.css"
STATES = (
    ("pending", "not sent yet"),
    ("sending", "upload in flight"),
    ("accepted", "Kanta answered 202; not listed yet"),
    ("stored", "listed by Kanta (GET /pics)"),
    ("processed", "faces detected, or settled as faceless"),
    ("retrying", "an attempt failed; it is tried again"),
    ("repaired", "lost after its 202; it is sent again"),
    ("failed", "given up"),
)
MEANING = dict(STATES)
SERIES = (("accepted", 1, "accepted (202)"), ("stored", 2, "stored"), ("processed", 3, "processed"))
END_INDEX = {"accepted": 1, "stored": 2, "faces": 3}
END_WORD = {"accepted": "accepted", "stored": "stored", "faces": "processed"}
W, H = 760, 360
PAD_L, PAD_R, PAD_T, PAD_B = 46, 58, 14, 30
STEPS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
TREND_W, TREND_H = 320, 120
BAND_W, BAND_H = 220, 26

REPORT_CSS = """
html { background: #fff; color: rgba(0, 0, 0, .87); }
html[data-theme="dark"] { background: #121212; color: #e8e8e8; }
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.ks-page { max-width: 1320px; margin: 0 auto; padding: 16px 24px 40px; }
.ks-root .ks-card + .ks-card, .ks-root .ks-section { margin-top: 16px; }
.ks-root .ks-plot { min-height: 0; height: auto; }
.ks-root .ks-svg { position: static; height: auto; }
.ks-root .ks-tile { cursor: default; }
.ks-root .ks-tile:focus-visible { cursor: pointer; }
.ks-root .ks-generated { font-size: 12px; color: var(--ks-muted); }
.ks-table { width: 100%; border-collapse: collapse; font-size: 13px; margin-top: 8px; }
.ks-table th, .ks-table td { padding: 4px 10px 4px 0; text-align: left; vertical-align: middle; }
.ks-table thead th { font-weight: 600; color: var(--ks-muted); border-bottom: 1px solid var(--ks-border); }
.ks-table tbody tr + tr td, .ks-table tbody tr + tr th {
  border-top: 1px solid color-mix(in srgb, currentColor 8%, transparent);
}
.ks-table td.ks-num, .ks-table th.ks-num { text-align: right; padding-right: 16px; }
.ks-status-cell { font-weight: 600; text-transform: uppercase; font-size: 12px; letter-spacing: .04em; }
.ks-root [data-status="ok"] .ks-status-cell, .ks-root [data-status="pass"] .ks-status-cell {
  color: var(--ks-c-processed);
}
.ks-root [data-status="regression"] .ks-status-cell, .ks-root [data-status="fail"] .ks-status-cell {
  color: var(--ks-c-failed);
}
.ks-root [data-status="too few samples"] .ks-status-cell,
.ks-root [data-status="not measured"] .ks-status-cell { color: var(--ks-c-retrying); }
.ks-message { font-size: 12px; color: var(--ks-muted); }
.ks-bandbar .ks-band { fill: color-mix(in srgb, var(--ks-c-accepted) 18%, transparent); }
.ks-bandbar .ks-axisline { stroke: var(--ks-border); }
.ks-bandbar .ks-limit { stroke: var(--ks-c-retrying); stroke-width: 2; stroke-dasharray: 3 2; }
.ks-bandbar .ks-base { stroke: currentColor; stroke-width: 2; }
.ks-bandbar .ks-value { fill: var(--ks-c-processed); stroke: none; }
.ks-bandbar[data-status="regression"] .ks-value { fill: var(--ks-c-failed); }
.ks-trends { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 12px; }
.ks-root .ks-trends .ks-card { margin-top: 0; }
.ks-root .ks-section > .ks-card-note { margin-left: 8px; }
.ks-trend h3 { font-size: 13px; margin: 0 0 2px; font-weight: 600; }
.ks-trend .ks-trend-note { font-size: 12px; color: var(--ks-muted); }
.ks-trend svg { display: block; width: 100%; height: auto; overflow: visible; }
.ks-trend .ks-tline { fill: none; stroke: var(--ks-c-accepted); stroke-width: 2; }
.ks-trend .ks-pt { fill: var(--ks-c-accepted); }
.ks-trend .ks-pt[data-regression="true"] { fill: var(--ks-c-failed); r: 5; }
.ks-trend .ks-pt[data-current="true"] { stroke: currentColor; stroke-width: 2; }
.ks-trend .ks-tbase { stroke: currentColor; stroke-opacity: .6; stroke-dasharray: 5 3; }
.ks-trend .ks-tband { fill: color-mix(in srgb, var(--ks-c-accepted) 14%, transparent); }
.ks-trend text { fill: currentColor; opacity: .7; font-size: 11px; }
.ks-empty-note { color: var(--ks-muted); font-size: 13px; }
"""

SCRIPT = """
(() => {
  'use strict';
  const root = document.querySelector('[data-kanta-seed-report]');
  if (!root) return;
  const dark = window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
  root.dataset.theme = dark ? 'dark' : 'light';
  const details = root.querySelector('.ks-details');
  const say = (tile) => {
    for (const t of root.querySelectorAll('.ks-tile[aria-pressed="true"]')) {
      t.setAttribute('aria-pressed', 'false');
    }
    if (!tile) { details.dataset.state = ''; details.textContent = details.dataset.hint || ''; return; }
    tile.setAttribute('aria-pressed', 'true');
    details.dataset.state = tile.dataset.state;
    details.textContent = (tile.getAttribute('title') || '').split('\\n').join(' \\u00b7 ');
  };
  root.addEventListener('click', (ev) => {
    const chip = ev.target.closest && ev.target.closest('[data-goto]');
    const tile = chip ? root.querySelector(`.ks-tile[data-image="${CSS.escape(chip.dataset.goto)}"]`)
      : ev.target.closest && ev.target.closest('.ks-tile');
    if (!tile) return;
    say(tile.getAttribute('aria-pressed') === 'true' && !chip ? null : tile);
    if (chip) tile.scrollIntoView({ block: 'nearest' });
  });
})();
"""


def mapping(value: Any) -> Mapping[str, Any]:
    """A nested object of a summary, or an empty one when it is missing or not an object."""
    return value if isinstance(value, Mapping) else {}


# --- small helpers ---------------------------------------------------------------------------------------
def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def finite(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def secs(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "\u2013"
    if s < 60:
        return f"{s:.1f} s" if s < 10 else f"{round(s)} s"
    m = int(s // 60)
    return f"{m} min {round(s - 60 * m):02d} s"


def base_name(member: str) -> str:
    name = str(member).rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def attrs(**kw: Any) -> str:
    """HTML attributes; a None value is left out, ``class_`` is ``class``, ``data_x`` is ``data-x``."""
    out = []
    for key, value in kw.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        out.append(f' {name}="{esc(value)}"')
    return "".join(out)


def f1(v: float) -> str:
    return f"{v:.1f}"


# --- the progress ----------------------------------------------------------------------------------------
def snapshot_of(summary: Mapping[str, Any], progress_doc: Mapping[str, Any]) -> dict[str, Any]:
    """The progress figures: the document's snapshot, else what the summary says."""
    snap = progress_doc.get("snapshot")
    if isinstance(snap, Mapping) and snap.get("total"):
        return dict(snap)
    wait = str(summary.get("wait_for", "faces"))
    images = int(num(summary.get("images")))
    uploaded, verified = int(num(summary.get("uploaded"))), int(num(summary.get("verified")))
    processed = int(num(summary.get("processed")))
    done = {"accepted": uploaded, "stored": verified}.get(wait, min(verified, processed))
    pipe = mapping(summary.get("pipeline"))
    return {
        "state": "finished",
        "event_code": summary.get("event_code", ""),
        "host": summary.get("host", ""),
        "end_stage": wait,
        "total": images,
        "accepted": uploaded,
        "stored": verified,
        "processed": processed,
        "failed": int(num(summary.get("failed"))),
        "doubt": int(num(summary.get("in_doubt"))),
        "retrying": 0,
        "in_flight": 0,
        "done": done,
        "rate_per_s": num(summary.get("rate_per_s")),
        "eta_s": 0.0,
        "elapsed_s": num(summary.get("wall_s")),
        "pipeline": pipe,
    }


def progress_html(s: Mapping[str, Any]) -> str:
    total, done, failed = int(num(s.get("total"))), int(num(s.get("done"))), int(num(s.get("failed")))
    accepted = int(num(s.get("accepted")))
    word = END_WORD.get(str(s.get("end_stage")), "done")
    pipe = max(0, accepted - done)

    def pct(n: int) -> str:
        return f"{(100 * n / total) if total else 0:.3f}%"

    read_back = s.get("end_stage") != "accepted"
    share = f" ({math.floor(100 * done / total)} %)" if total else ""
    valuetext = f"{done} of {total} images {word}" + (f", {failed} failed" if failed else "")
    stats = []
    for key, label, value, sub in (
        ("accepted", "accepted", str(accepted), f"of {total}"),
        ("stored", "stored", str(int(num(s.get("stored")))) if read_back else "\u2013",
         f"of {total}" if read_back else "not read back"),
        ("processed", "processed", str(int(num(s.get("processed")))) if read_back else "\u2013",
         f"of {total}" if read_back else "not read back"),
        ("failed", "failed", str(failed), "given up"),
    ):  # fmt: skip
        bad = f' data-bad="{"true" if failed else "false"}"' if key == "failed" else ""
        stats.append(
            f'<div class="ks-stat" data-stat="{key}"{bad}><span class="ks-stat-label">{esc(label)}</span>'
            f'<b class="ks-stat-value">{esc(value)}</b><span class="ks-stat-sub">{esc(sub)}</span></div>'
        )
    left = max(0, total - accepted - failed)
    return (
        '<div class="ks-top"><div class="ks-barbox"><div class="ks-headline">'
        f'<b class="ks-big">{done} / {total}</b><span class="ks-big-text">images {esc(word)}{share}</span>'
        f'<span class="ks-timing">{esc(secs(num(s.get("elapsed_s"))))} elapsed · ended</span></div>'
        f'<div class="ks-progress" role="progressbar" aria-label="Images done" aria-valuemin="0"'
        f' aria-valuemax="{total}" aria-valuenow="{done}" aria-valuetext="{esc(valuetext)}">'
        f'<div class="ks-seg ks-seg-done" style="width:{pct(done)}"></div>'
        f'<div class="ks-seg ks-seg-pipe" style="width:{pct(pipe)}"></div>'
        f'<div class="ks-seg ks-seg-failed" style="width:{pct(failed)}"></div></div>'
        f'<div class="ks-barkey"><span class="ks-key ks-key-done">{done} {esc(word)}</span>'
        f'<span class="ks-key ks-key-pipe">{pipe} in Kanta&rsquo;s pipeline</span>'
        f'<span class="ks-key ks-key-left">{left} not accepted'
        + (f" · {failed} failed" if failed else "")
        + "</span></div></div>"
        f'<div class="ks-stats">{"".join(stats)}</div></div>'
    )


# --- the stage chart -------------------------------------------------------------------------------------
def nice_y(total: float) -> float:
    raw = total / 4
    p = 10 ** math.floor(math.log10(max(1.0, raw)))
    return next((m * p for m in (1, 2, 2.5, 5, 10) if m * p >= raw), raw)


def chart_points(chart: Any) -> list[list[float]]:
    out = []
    for p in chart if isinstance(chart, list) else []:
        usable = isinstance(p, (list, tuple)) and len(p) >= 4 and all(finite(v) is not None for v in p[:4])
        if usable and p[0] >= 0:
            out.append([float(v) for v in p[:4]])
    return out


def chart_html(points: list[list[float]], s: Mapping[str, Any], summary: Mapping[str, Any]) -> str:
    total = max(1, int(num(s.get("total"))))
    series = [[0.0, 0.0, 0.0, 0.0], *points]
    last = series[-1]
    end_index = END_INDEX.get(str(s.get("end_stage")), 3)
    span = max(10.0, last[0] * 1.05)
    step = next((st for st in STEPS if span / st <= 8), math.ceil(span / 8 / 3600) * 3600)
    t_max = math.ceil(span / step) * step
    iw, ih = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def x(t: float) -> str:
        return f1(PAD_L + t / t_max * iw)

    def y(v: float) -> str:
        return f1(PAD_T + ih - min(v, total) / total * ih)

    grid, axis = [], []
    ys = nice_y(total)
    v = 0.0
    while v < total:
        grid.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y(v)}" y2="{y(v)}"/>')
        axis.append(
            f'<text x="{PAD_L - 6}" y="{y(v)}" text-anchor="end" dominant-baseline="middle">{round(v)}</text>'
        )
        v += ys
    t = 0.0
    while t <= t_max + 1e-9:
        grid.append(f'<line class="ks-vgrid" x1="{x(t)}" x2="{x(t)}" y1="{PAD_T}" y2="{H - PAD_B}"/>')
        axis.append(f'<text x="{x(t)}" y="{H - PAD_B + 18}" text-anchor="middle">{round(t)} s</text>')
        t += step
    read_back = s.get("end_stage") != "accepted"
    lines, legend = [], []
    for key, i, label in SERIES:
        shown = i == 1 or read_back
        pts = " ".join(f"{x(p[0])},{y(p[i])}" for p in series) if shown else ""
        lines.append(f'<polyline class="ks-line" data-series="{key}" points="{pts}"/>')
        now = str(int(num(s.get(key)))) if shown else "\u2013"
        legend.append(
            f'<span class="ks-legend-item" data-series="{key}"><i aria-hidden="true"></i>{esc(label)}'
            f" <b>{now}</b></span>"
        )
    area = ""
    if end_index != 1:
        area = " ".join(
            [f"{x(p[0])},{y(p[1])}" for p in series]
            + [f"{x(p[0])},{y(p[end_index])}" for p in reversed(series)]
        )
    if end_index != 1:
        legend.append(
            '<span class="ks-legend-item" data-series="backlog"><i aria-hidden="true"></i>'
            "backlog (in Kanta&rsquo;s pipeline)</span>"
        )
    empty = "" if points else (
        f'<text class="ks-empty" text-anchor="middle" x="{PAD_L + iw / 2}" y="{PAD_T + ih / 2}">'
        "no upload was accepted</text>"
    )  # fmt: skip
    svg = (
        f'<svg class="ks-svg" role="img" viewBox="0 0 {W} {H}" xmlns="http://www.w3.org/2000/svg"'
        ' aria-label="Images accepted, stored and processed over time">'
        f'<g class="ks-gridlines">{"".join(grid)}</g>'
        f'<polygon class="ks-backlog" points="{area}"/>'
        f'<line class="ks-total" x1="{PAD_L}" x2="{W - PAD_R}" y1="{y(total)}" y2="{y(total)}"/>'
        f'<text class="ks-total-text" text-anchor="start" x="{W - PAD_R + 6}" y="{f1(float(y(total)) + 4)}">'
        f"{total} all</text>{''.join(lines)}"
        f'<g class="ks-axis">{"".join(axis)}</g>{empty}</svg>'
    )
    pace = pace_html(series, s, summary, end_index)
    return (
        '<figure class="ks-card ks-chart"><figcaption class="ks-chart-head">'
        '<span class="ks-card-title">Kanta&rsquo;s pipeline</span>'
        '<span class="ks-card-note">images over time since the first upload</span></figcaption>'
        f'<div class="ks-legend">{"".join(legend)}</div><div class="ks-plot">{svg}</div>{pace}</figure>'
    )


def pace_html(series: list[list[float]], s: Mapping[str, Any], summary: Mapping[str, Any], end: int) -> str:
    word = END_WORD.get(str(s.get("end_stage")), "processed")
    pipe = mapping(summary.get("pipeline"))
    peak = max([0.0, *(p[1] - p[end] for p in series)])
    items = [f"202 rate {num(s.get('rate_per_s')):.1f} uploads/s"]
    if end != 1:
        steady = finite(pipe.get("processed_per_s"))
        if steady and end == 3:
            items.append(f"{word} {steady:.1f}/s (steady)")
        items.append(f"backlog peak {int(max(peak, num(pipe.get('backlog_peak'))))}")
    total, done, failed = int(num(s.get("total"))), int(num(s.get("done"))), int(num(s.get("failed")))
    # exit 3 is a complete run whose check or baseline failed: every image made it
    complete = summary.get("exit_code") in (0, 3) if "exit_code" in summary else done == total
    end_at = finite({1: pipe.get("accepted_s"), 2: pipe.get("stored_s"), 3: pipe.get("processed_s")}.get(end))
    if complete:
        tone = "ok"
        text = f"Done: all {total} images {word}" + (
            f" {secs(end_at)} after the first upload." if end_at else "."
        )
    else:
        tone = "bad"
        text = f"Ended with {done} of {total} images {word}" + (f", {failed} failed." if failed else ".")
    spans = "".join(f'<span class="ks-pace-item">{esc(i)}</span>' for i in items)
    return (
        f'<div class="ks-pace">{spans}</div>'
        f'<div class="ks-verdict" data-tone="{tone}" aria-live="polite">{esc(text)}</div>'
    )


# --- the tiles -------------------------------------------------------------------------------------------
def describe(row: Mapping[str, Any]) -> list[str]:
    state = str(row.get("state", ""))
    lines = [
        f"{base_name(str(row.get('image', '')))}: {state}",
        MEANING.get(state, ""),
        str(row.get("image", "")),
    ]
    if row.get("uuid"):
        lines.append(f"uuid {row['uuid']}")
    if state == "processed":
        faces = int(num(row.get("faces")))
        lines.append("1 face" if faces == 1 else f"{faces} faces")
    attempts, repairs = int(num(row.get("attempts"))), int(num(row.get("repairs")))
    if attempts > 1 or repairs:
        lines.append(f"{attempts} attempts" + (f", {repairs} repaired" if repairs else ""))
    if row.get("error"):
        lines.append(f"last error: {row['error']}")
    return [line for line in lines if line]


def tiles_html(rows: Sequence[Mapping[str, Any]], grid: Any) -> str:
    gridded = (
        isinstance(grid, Mapping)
        and isinstance(grid.get("cells"), Mapping)
        and isinstance(grid.get("rows"), list)
        and isinstance(grid.get("cols"), list)
    )
    parts: list[str] = []
    if gridded:
        cols, rws, cells = grid["cols"], grid["rows"], grid["cells"]
        style = (
            f"grid-template-columns: var(--ks-label-w) repeat({len(cols)}, var(--ks-tile));"
            f" grid-template-rows: var(--ks-head-h) repeat({len(rws)}, var(--ks-tile))"
        )
        for c, name in enumerate(cols):
            parts.append(
                f'<span class="ks-col" title="{esc(name)}" aria-hidden="true"'
                f' style="grid-column:{c + 2};grid-row:1"><span>{esc(name)}</span></span>'
            )
        for r, name in enumerate(rws):
            parts.append(
                f'<span class="ks-row" title="{esc(name)}" aria-hidden="true"'
                f' style="grid-column:1;grid-row:{r + 2}">{esc(name)}</span>'
            )
    else:
        cells = {}
        style = "grid-template-columns: repeat(15, var(--ks-tile))"
    counts = dict.fromkeys(MEANING, 0)
    for row in rows:
        image, state = str(row.get("image", "")), str(row.get("state", "pending"))
        counts[state] = counts.get(state, 0) + 1
        place = cells.get(image) if gridded else None
        pos = f"grid-row:{int(place[0]) + 2};grid-column:{int(place[1]) + 2}" if place else None
        faceless = "true" if state == "processed" and not num(row.get("faces")) else "false"
        retried = "true" if num(row.get("attempts")) > 1 or num(row.get("repairs")) else "false"
        parts.append(
            "<button"
            + attrs(
                type="button", class_="ks-tile", data_image=image, data_state=state, data_faceless=faceless,
                data_retried=retried, aria_label=f"{base_name(image)}: {state}", aria_pressed="false",
                title="\n".join(describe(row)), style=pos,
            )
            + "></button>"
        )  # fmt: skip
    legend = "".join(
        f'<span class="ks-tl-item" data-state="{k}" title="{esc(m)}"><i class="ks-swatch" data-state="{k}"'
        f' aria-hidden="true"></i>{k} <b>{counts.get(k, 0)}</b></span>'
        for k, m in STATES
    )
    hint = "Hover over a tile for its name, uuid and last error; click it to pin them here."
    layout = "grid" if gridded else "plain"
    return (
        '<div class="ks-card ks-tiles-card"><div class="ks-tiles-head">'
        '<span class="ks-card-title">Images</span>'
        '<span class="ks-faceless-key"><i aria-hidden="true"></i>no face found</span></div>'
        f'<div class="ks-tile-legend">{legend}</div>'
        f'<div class="ks-tiles" role="group" aria-label="One tile per image" data-layout="{layout}"'
        f' style="{style}">{"".join(parts)}</div>'
        f'<div class="ks-details" aria-live="polite" data-hint="{esc(hint)}">{esc(hint)}</div></div>'
    )


# --- the summary, checks, baseline -----------------------------------------------------------------------
def rows_of(summary: Mapping[str, Any], progress_doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The summary's rows: the summary's own (``rows``), the progress document's, else built from fields."""
    for source in (summary.get("rows"), progress_doc.get("rows")):
        if isinstance(source, list) and source:
            return [(str(r[0]), str(r[1])) for r in source if isinstance(r, (list, tuple)) and len(r) >= 2]
    out: list[tuple[str, str]] = [
        ("result", f"{summary.get('result', '?')} (exit {summary.get('exit_code', '?')})")
    ]
    out.append(("event", f"{summary.get('event_code', '')} at {summary.get('host', '')}"))
    out.append(("data set", f"{summary.get('data_set', '')} ({summary.get('images', '?')} images)"))
    out.append(("uploaded", f"{summary.get('uploaded', '?')}/{summary.get('images', '?')}"))
    if summary.get("verify", True):
        out.append(
            ("stored", f"{summary.get('verified', '?')}/{summary.get('images', '?')} verified on the server")
        )
    faces = mapping(summary.get("faces"))
    if faces:
        out.append(
            (
                "faces",
                f"{faces.get('images_with_faces', 0)} images with faces ({faces.get('total', 0)} faces)",
            )
        )
    pipe = mapping(summary.get("pipeline"))
    if pipe:
        out.append((
            "pipeline",
            f"accepted {secs(finite(pipe.get('accepted_s')))}, stored {secs(finite(pipe.get('stored_s')))},"
            f" processed {secs(finite(pipe.get('processed_s')))} after the first upload",
        ))  # fmt: skip
    rate = finite(summary.get("rate_per_s"))
    out.append(("rate", "nothing measured" if rate is None else f"{rate:.1f} uploads/s (202s)"))
    lat = mapping(summary.get("latency_ms")) or None
    if lat:
        out.append(("latency", ", ".join(f"{k} {num(v):.0f} ms" for k, v in lat.items())))
    if summary.get("baseline"):
        out.append(("baseline", str(summary["baseline"])))
    for message in summary.get("regressions") or []:
        label = "CHECK FAILED" if str(message).startswith("check-") else "REGRESSION"
        out.append((label, str(message)))
    return out


def summary_html(summary: Mapping[str, Any], rows: list[tuple[str, str]]) -> str:
    result = str(summary.get("result") or ("pass" if summary.get("exit_code") == 0 else "not complete"))
    first = rows[0][1] if rows and rows[0][0] == "result" else ""
    verdict = first.split(":", 1)[1].strip() if ":" in first else first
    body = "".join(
        f'<tr data-row="{esc(label)}"><th scope="row">{esc(label)}</th><td>{esc(value)}</td></tr>'
        for label, value in rows
    )
    failed = [
        (str(f.get("member", "")), f"{f.get('status') or 'no answer'} {f.get('error') or ''}".strip())
        for f in summary.get("failed_images") or []
        if isinstance(f, Mapping)
    ]
    faces = mapping(summary.get("faces"))
    faceless = [(str(m), "") for m in faces.get("faceless") or []]

    def listing(title: str, items: list[tuple[str, str]], cls: str) -> str:
        if not items:
            return (
                f'<div class="ks-list {cls}"><h3>{esc(title)}: 0</h3><span class="ks-none">none</span></div>'
            )
        lis = "".join(
            f'<li><button type="button" class="ks-chip" data-goto="{esc(m)}" title="{esc(m)}">'
            f"{esc(base_name(m))}</button>"
            + (f'<span class="ks-why">{esc(why)}</span>' if why else "")
            + "</li>"
            for m, why in items
        )
        return f'<div class="ks-list {cls}"><h3>{esc(title)}: {len(items)}</h3><ul>{lis}</ul></div>'

    outcome = "pass" if summary.get("exit_code") == 0 else "fail"
    return (
        f'<section class="ks-card ks-result" aria-label="Summary" data-result="{outcome}">'
        '<div class="ks-result-head"><span class="ks-card-title">Summary</span>'
        f'<span class="ks-result-badge">{esc(result)}</span>'
        f'<span class="ks-result-verdict">{esc(verdict)}</span></div>'
        f'<table class="ks-rows"><tbody>{body}</tbody></table>'
        f'<div class="ks-lists">{listing("Failed images", failed, "ks-list-failed")}'
        f"{listing('Images with no face found', faceless, 'ks-list-faceless')}</div></section>"
    )


def checks_of(summary: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(label, status pass|fail, message) per check asked, then per breached check not listed as asked."""
    breached: dict[str, list[str]] = {}
    for message in summary.get("regressions") or []:
        text = str(message)
        if text.startswith("check-"):
            breached.setdefault(text.split(":", 1)[0].strip(), []).append(text)
    asked = [str(c) for c in summary.get("checks_asked") or []]
    out = []
    for label in [*asked, *(x for x in breached if x not in asked)]:
        if label in breached:
            out.append((label, "fail", "; ".join(breached[label])))
        else:
            out.append((label, "pass", "within its limit"))
    return out


def band_svg(v: Verdict) -> str:
    """The figure on a line: the noise band shaded, the allowance dashed, the baseline a tick, the run a
    dot."""
    marks = [m for m in (v.value, v.baseline, v.limit, *(v.band or ())) if m is not None and math.isfinite(m)]
    if not marks:
        return ""
    lo, hi = min(marks), max(marks)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.05 or 1.0
    lo, hi = lo - pad, hi + pad

    def x(value: float) -> str:
        return f1(6 + (value - lo) / (hi - lo) * (BAND_W - 12))

    parts = [f'<line class="ks-axisline" x1="6" x2="{BAND_W - 6}" y1="{BAND_H / 2}" y2="{BAND_H / 2}"/>']
    if v.band is not None:
        a, b = x(v.band[0]), x(v.band[1])
        parts.append(
            f'<rect class="ks-band" x="{a}" y="4" width="{f1(float(b) - float(a))}" height="{BAND_H - 8}"/>'
        )
    if v.limit is not None:
        parts.append(f'<line class="ks-limit" x1="{x(v.limit)}" x2="{x(v.limit)}" y1="2" y2="{BAND_H - 2}"/>')
    if v.baseline is not None:
        parts.append(
            f'<line class="ks-base" x1="{x(v.baseline)}" x2="{x(v.baseline)}" y1="6" y2="{BAND_H - 6}"/>'
        )
    if v.value is not None:
        parts.append(f'<circle class="ks-value" cx="{x(v.value)}" cy="{BAND_H / 2}" r="5"/>')
    title = (
        f"run {fmt(v, v.value)}; baseline {fmt(v, v.baseline)}; allowed {fmt(v, v.limit)}; noise band"
        f" {fmt(v, v.band[0]) if v.band else '-'}..{fmt(v, v.band[1]) if v.band else '-'}"
    )
    return (
        f'<svg class="ks-bandbar" data-status="{esc(v.status)}" viewBox="0 0 {BAND_W} {BAND_H}"'
        f' width="{BAND_W}" height="{BAND_H}" xmlns="http://www.w3.org/2000/svg" role="img"'
        f' aria-label="{esc(title)}">'
        f"<title>{esc(title)}</title>{''.join(parts)}</svg>"
    )


def fmt(v: Verdict, value: float | None) -> str:
    figure = FIGURE_BY_NAME.get(v.figure)
    if figure is not None:
        return figure.fmt(value)
    return "-" if value is None else f"{value:.3g} {v.unit}".strip()


def gate_html(summary: Mapping[str, Any], verdicts: list[Verdict]) -> str:
    checks = checks_of(summary)
    if checks:
        body = "".join(
            f'<tr data-check="{esc(label)}" data-status="{status}"><th scope="row">{esc(label)}</th>'
            f'<td class="ks-status-cell">{status}</td><td class="ks-message">{esc(message)}</td></tr>'
            for label, status, message in checks
        )
        check_table = (
            '<table class="ks-table ks-checks"><thead><tr><th>check</th><th>status</th><th>detail</th></tr>'
            f"</thead><tbody>{body}</tbody></table>"
        )
    else:
        check_table = '<p class="ks-empty-note">No --check-* was asked for.</p>'
    if verdicts:
        body = "".join(
            f'<tr data-figure="{esc(v.figure)}" data-status="{esc(v.status)}">'
            f'<th scope="row">{esc(v.label)}</th>'
            f'<td class="ks-num">{esc(fmt(v, v.value))}</td><td class="ks-num">{esc(fmt(v, v.baseline))}</td>'
            f'<td class="ks-num">{esc(fmt(v, v.limit))}</td>'
            f'<td class="ks-num" data-band="{esc(json.dumps(list(v.band)) if v.band else "")}">'
            f"{esc(fmt(v, v.band[0]) + ' .. ' + fmt(v, v.band[1]) if v.band else '-')}</td>"
            f"<td>{band_svg(v)}</td>"
            f'<td class="ks-status-cell">{esc(v.status)}</td>'
            f'<td class="ks-message">{esc(v.noise)}</td></tr>'
            for v in verdicts
        )
        base_table = (
            '<table class="ks-table ks-baseline"><thead><tr><th>figure</th><th class="ks-num">run</th>'
            '<th class="ks-num">baseline</th><th class="ks-num">allowed</th>'
            '<th class="ks-num">noise band</th>'
            "<th>band (shaded), allowance (dashed), baseline (tick), run (dot)</th><th>status</th>"
            f"<th>noise from</th></tr></thead><tbody>{body}</tbody></table>"
        )
    else:
        base_table = '<p class="ks-empty-note">Not compared with a baseline.</p>'
    said = str(summary.get("baseline") or "")
    return (
        '<section class="ks-card ks-section ks-gate" aria-label="Checks and baseline">'
        '<div class="ks-result-head"><span class="ks-card-title">Checks</span></div>'
        f"{check_table}"
        '<div class="ks-result-head"><span class="ks-card-title">Baseline</span>'
        f'<span class="ks-result-verdict">{esc(said)}</span></div>{base_table}</section>'
    )


# --- request statistics ----------------------------------------------------------------------------------
STAT_KEYS = {
    "avg": ("avg", "avg_response_time"),
    "p50": ("p50", "median_response_time", "response_time_percentile_0.5"),
    "p95": ("p95", "response_time_percentile_0.95"),
    "max": ("max", "max_response_time"),
    "rps": ("rps", "total_rps", "current_rps"),
}


def stat_value(row: Mapping[str, Any], what: str) -> float | None:
    for key in STAT_KEYS[what]:
        value = finite(row.get(key))
        if value is not None:
            return value
    return None


def stats_html(stats: Sequence[Mapping[str, Any]]) -> str:
    if not stats:
        return (
            '<section class="ks-card ks-section" aria-label="Request statistics">'
            '<span class="ks-card-title">Requests</span>'
            '<p class="ks-empty-note">No request statistics.</p></section>'
        )
    has_max = any(stat_value(r, "max") is not None for r in stats)
    head = (
        '<tr><th>method</th><th>name</th><th class="ks-num">requests</th><th class="ks-num">failures</th>'
        '<th class="ks-num">avg ms</th><th class="ks-num">p50 ms</th><th class="ks-num">p95 ms</th>'
        + ('<th class="ks-num">max ms</th>' if has_max else "")
        + "</tr>"
    )

    def cell(value: float | None, spec: str = ".0f") -> str:
        return f'<td class="ks-num">{"-" if value is None else format(value, spec)}</td>'

    body = []
    for row in stats:
        name = str(row.get("name", ""))
        failures = int(num(row.get("num_failures")))
        status = "fail" if failures else "pass"
        body.append(
            f'<tr data-endpoint="{esc(name)}" data-status="{status}"><td>{esc(row.get("method", ""))}</td>'
            f"<td>{esc(name)}</td>{cell(num(row.get('num_requests')))}{cell(float(failures))}"
            f"{cell(stat_value(row, 'avg'), '.1f')}{cell(stat_value(row, 'p50'))}"
            f"{cell(stat_value(row, 'p95'))}" + (cell(stat_value(row, "max")) if has_max else "") + "</tr>"
        )
    return (
        '<section class="ks-card ks-section" aria-label="Request statistics">'
        '<span class="ks-card-title">Requests</span>'
        '<span class="ks-card-note">Locust&rsquo;s statistics of this run, per endpoint</span>'
        f'<table class="ks-table ks-requests"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'
        "</section>"
    )


# --- trends over the history -----------------------------------------------------------------------------
def with_current(history: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The history with this run last: added unless the history already ends with it (``--history``
    may have been written before the report)."""
    entries: list[Mapping[str, Any]] = list(history)
    if entries and all(
        entries[-1].get(k) == summary.get(k) for k in ("events", "wall_s", "host", "rate_per_s")
    ):
        return entries
    entries.append({**summary, hist.KEY: {**mapping(summary.get(hist.KEY)), "timestamp": "this run"}})
    return entries


def trend_svg(
    points: list[hist.Point], verdict: Verdict | None, current: bool, baseline_files: set[str]
) -> str:
    known = [p for p in points if p.value is not None]
    if not known:
        return ""
    values = [p.value for p in known if p.value is not None]
    extra = []
    if verdict is not None:
        extra += [m for m in (verdict.baseline, *(verdict.band or ())) if m is not None and math.isfinite(m)]
    lo, hi = min(values + extra), max(values + extra)
    pad = (hi - lo) * 0.1 or abs(hi) * 0.1 or 1.0
    lo, hi = lo - pad, hi + pad
    left, right, top, bottom = 42, 8, 8, 18
    n = max(1, len(points) - 1)

    def x(i: int) -> float:
        return left + (i / n) * (TREND_W - left - right) if len(points) > 1 else (left + TREND_W - right) / 2

    def y(v: float) -> float:
        return top + (hi - v) / (hi - lo) * (TREND_H - top - bottom)

    parts = []
    if verdict is not None and verdict.band is not None:
        b_hi, b_lo = y(min(hi, verdict.band[1])), y(max(lo, verdict.band[0]))
        parts.append(
            f'<rect class="ks-tband" x="{left}" y="{f1(b_hi)}" width="{TREND_W - left - right}"'
            f' height="{f1(max(0.0, b_lo - b_hi))}"><title>noise band</title></rect>'
        )
    base = verdict.baseline if verdict is not None else hist.typical(points)
    if base is not None:
        parts.append(
            f'<line class="ks-tbase" x1="{left}" x2="{TREND_W - right}" y1="{f1(y(base))}"'
            f' y2="{f1(y(base))}">'
            f"<title>{'baseline' if verdict is not None else 'median of the runs'} {base:.4g}</title></line>"
        )
    parts.append(
        f'<text x="{left - 4}" y="{f1(y(hi - pad))}" text-anchor="end" dominant-baseline="middle">'
        f"{hi - pad:.3g}</text>"
    )
    parts.append(
        f'<text x="{left - 4}" y="{f1(y(lo + pad))}" text-anchor="end" dominant-baseline="middle">'
        f"{lo + pad:.3g}</text>"
    )
    line = " ".join(f"{f1(x(p.index))},{f1(y(p.value))}" for p in known if p.value is not None)
    parts.append(f'<polyline class="ks-tline" points="{line}"/>')
    last = len(points) - 1
    for p in known:
        assert p.value is not None
        is_current = current and p.index == last
        regression = p.regression or (is_current and verdict is not None and verdict.failed)
        tip = f"{p.timestamp or 'run'} {p.commit[:10]}: {p.value:.4g}" + (
            " (regression)" if regression else ""
        )
        tip += " (baseline run)" if p.file and p.file in baseline_files else ""
        parts.append(
            f'<circle class="ks-pt" cx="{f1(x(p.index))}" cy="{f1(y(p.value))}" r="{4 if regression else 3}"'
            f' data-regression="{str(regression).lower()}" data-current="{str(is_current).lower()}"'
            f' data-baseline-run="{str(bool(p.file and p.file in baseline_files)).lower()}">'
            f"<title>{esc(tip)}</title></circle>"
        )
    parts.append(f'<text x="{left}" y="{TREND_H - 4}">{esc(points[0].timestamp[:10] or "first")}</text>')
    parts.append(
        f'<text x="{TREND_W - right}" y="{TREND_H - 4}" text-anchor="end">this run</text>' if current else ""
    )
    svg = f'<svg viewBox="0 0 {TREND_W} {TREND_H}" xmlns="http://www.w3.org/2000/svg" role="img">'
    return f"{svg}{''.join(parts)}</svg>"


def trends_html(
    history: Sequence[Mapping[str, Any]], summary: Mapping[str, Any], verdicts: list[Verdict]
) -> str:
    if not history:
        return (
            '<section class="ks-card ks-section" aria-label="Trend"><span class="ks-card-title">Trend</span>'
            '<p class="ks-empty-note">No history (--history DIR keeps one).</p></section>'
        )
    entries, current = with_current(history, summary), True
    by_figure = {v.figure: v for v in verdicts}
    files = {str(f) for f in summary.get("baseline_files") or []}
    cards = []
    for name, points in hist.trends(entries).items():
        h = hist.HEADLINE_BY_NAME[name]
        verdict = by_figure.get(name)
        regressions = sum(1 for p in points if p.regression)
        note = f"{sum(1 for p in points if p.value is not None)} runs" + (
            f", {regressions} regression(s)" if regressions else ""
        )
        if verdict is not None:
            note += f"; this run: {verdict.status}"
        cards.append(
            f'<figure class="ks-card ks-trend" data-trend="{esc(name)}"><h3>{esc(h.label)}'
            f"{' (' + esc(h.unit) + ')' if h.unit and not h.unit.startswith('/') else ''}</h3>"
            f'<span class="ks-trend-note">{esc(note)}</span>'
            f"{trend_svg(points, verdict, current, files)}</figure>"
        )
    return (
        '<section class="ks-card ks-section" aria-label="Trend"><span class="ks-card-title">Trend</span>'
        f'<span class="ks-card-note">the headline figures over the last {len(entries)} runs (this run last);'
        " dashed: the baseline, shaded: its noise band, red: a regression</span>"
        f'<div class="ks-trends">{"".join(cards)}</div></section>'
    )


# --- the page --------------------------------------------------------------------------------------------
def stylesheet() -> str:
    try:
        return STYLESHEET.read_text()
    except OSError:  # a packaging without the tab's stylesheet: the report is plainer, not broken
        return ""


def report_html(
    summary: Mapping[str, Any],
    progress_doc: Mapping[str, Any] | None = None,
    history: Iterable[Mapping[str, Any]] = (),
    verdicts: Iterable[Verdict | Mapping[str, Any]] = (),
    stats: Iterable[Mapping[str, Any]] = (),
    generated_at: float | None = None,
) -> str:
    """The run as one self-contained HTML page (a string; the caller writes it)."""
    doc = progress_doc or {}
    s = snapshot_of(summary, doc)
    judged = [verdict_from(v) for v in verdicts]
    rows = rows_of(summary, doc)
    result = str(summary.get("result") or "")
    tiles = [t for t in doc.get("tiles") or [] if isinstance(t, Mapping)]
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(generated_at or time.time()))
    code = s.get("event_code") or summary.get("event_code", "")
    where = f"event {code} at {s.get('host') or summary.get('host', '')}"
    title = f"kanta-seed: {result or 'run'}, {summary.get('event_code', '')}"
    csp = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
    body = (
        '<section class="ks-root" data-kanta-seed-report="" data-theme="light"'
        ' aria-label="kanta-seed report">'
        '<div class="ks-head"><h2 class="ks-title">Seeding</h2>'
        f'<span class="ks-badge" data-state="ended" data-result="{esc(result)}">'
        f"{esc(result or 'ended')}</span>"
        f'<span class="ks-where">{esc(where)}</span>'
        f'<span class="ks-status ks-generated">written {esc(stamp)}</span></div>'
        f"{progress_html(s)}"
        f'<div class="ks-body">{chart_html(chart_points(doc.get("chart")), s, summary)}'
        f"{tiles_html(tiles, doc.get('grid'))}</div>"
        f"{summary_html(summary, rows)}"
        f"{gate_html(summary, judged)}"
        f"{stats_html([r for r in stats if isinstance(r, Mapping)])}"
        f"{trends_html([dict(h) for h in history], summary, judged)}"
        "</section>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en" data-theme="light"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title>"
        f"<style>{stylesheet()}\n{REPORT_CSS}</style></head>"
        f'<body><main class="ks-page">{body}</main><script>{SCRIPT}</script></body></html>\n'
    )


def write_report(path: str | Path, text: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
