"""JUnit XML of a run (``--junit PATH``), for CI test-report pages: a test case per check and per
baseline figure.

- A check asked for (``summary["checks_asked"]``, labels such as ``check-min-rate``) is a test case
  of class ``kanta-seed.checks``: a failure when ``summary["regressions"]`` has a message starting
  with its label (a breach, or "not measured": a check that cannot fail fails), else a pass. A
  ``check-`` message of a check not in ``checks_asked`` (an older summary) is a failure case too.
- A baseline figure (``gate.Verdict``, or its dict) is a test case of class ``kanta-seed.baseline``: a
  failure when it regressed, skipped when there were too few samples or it was not measured, else a pass.
- Any other regression message (the baseline refused at the end, or ``compare``'s ``regression-*``
  when no verdicts are given) is a failure case of class ``kanta-seed.baseline``.
- One case ``kanta-seed.run``/``result`` says whether every image made it (exit 1 is its failure).

Pure: a string, written by the caller.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from xml.etree import ElementTree as ET

from seed.core.gate import Verdict, verdict_from

SUITE = "kanta-seed"
RUN_CLASS = f"{SUITE}.run"
CHECK_CLASS = f"{SUITE}.checks"
BASELINE_CLASS = f"{SUITE}.baseline"


def mapping(value: Any) -> Mapping[str, Any]:
    """A nested object of a summary, or an empty one when it is missing or not an object."""
    return value if isinstance(value, Mapping) else {}


def _case(suite: ET.Element, classname: str, name: str, time_s: float = 0.0) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{time_s:.3f}")


def _text(value: Any) -> str:
    # XML 1.0 cannot carry most control characters; a message from a server might.
    return "".join(c for c in str(value) if c in "\t\n\r" or ord(c) >= 0x20)


def _fail(case: ET.Element, message: str, kind: str = "regression") -> None:
    node = ET.SubElement(case, "failure", message=_text(message), type=kind)
    node.text = _text(message)


def _skip(case: ET.Element, message: str) -> None:
    ET.SubElement(case, "skipped", message=_text(message))


def _label_of(message: str) -> str:
    """``check-min-rate: rate 3.0 uploads/s < limit 5`` -> ``check-min-rate``; a baseline that could not
    be compared (``baseline measured something else ...``) -> ``baseline``."""
    if message.startswith(("check-", "regression-")):
        return message.split(":", 1)[0].strip()
    return "baseline" if message.startswith("baseline") else "regression"


def junit_xml(
    summary: Mapping[str, Any],
    verdicts: Iterable[Verdict | Mapping[str, Any]] = (),
    suite_name: str = SUITE,
    timestamp: str = "",
) -> str:
    """The run as a JUnit XML document (one ``testsuites`` with one ``testsuite``)."""
    regressions = [str(r) for r in summary.get("regressions") or []]
    asked: Sequence[str] = [str(c) for c in summary.get("checks_asked") or []]
    judged = [verdict_from(v) for v in verdicts]
    wall = summary.get("wall_s")
    wall_s = float(wall) if isinstance(wall, (int, float)) and math.isfinite(wall) else 0.0

    root = ET.Element("testsuites", name=suite_name)
    suite = ET.SubElement(root, "testsuite", name=suite_name)
    props = ET.SubElement(suite, "properties")
    meta = mapping(summary.get("history"))
    for key, value in (
        ("event", summary.get("event_code", "")),
        ("host", summary.get("host", "")),
        ("host_kind", summary.get("host_kind", "")),
        ("data_set", summary.get("data_set", "")),
        ("users", summary.get("users", "")),
        ("mode", summary.get("mode", "")),
        ("result", summary.get("result", "")),
        ("exit_code", summary.get("exit_code", "")),
        ("commit", meta.get("commit", "")),
        ("baseline", summary.get("baseline", "")),
    ):
        ET.SubElement(props, "property", name=key, value=_text(value))

    # The run itself: did every image make it (exit 1 is not a regression, it is a failed run).
    case = _case(suite, RUN_CLASS, "result", wall_s)
    exit_code = summary.get("exit_code")
    if exit_code not in (0, 3) or summary.get("error"):
        _fail(case, f"{summary.get('result', 'failed')}: exit {exit_code}", kind="incomplete")

    # The checks: each one asked, then any breached one the summary did not list as asked.
    by_label: dict[str, list[str]] = {}
    for message in regressions:
        if message.startswith("check-"):
            by_label.setdefault(_label_of(message), []).append(message)
    for label in [*asked, *(label for label in by_label if label not in asked)]:
        case = _case(suite, CHECK_CLASS, label)
        if label in by_label:
            _fail(case, "; ".join(by_label[label]))

    # The baseline: one case per figure judged; other baseline problems as cases of their own.
    named = {v.figure for v in judged}
    for v in judged:
        case = _case(suite, BASELINE_CLASS, v.figure)
        if v.status == "regression":
            _fail(case, v.message)
        elif v.status in ("too few samples", "not measured"):
            _skip(case, v.message)
        out = ET.SubElement(case, "system-out")
        out.text = _text(v.message)
    for message in regressions:
        if message.startswith("check-"):
            continue
        label = _label_of(message)
        if label.removeprefix("regression-") in named:
            continue  # its verdict's case says it
        case = _case(suite, BASELINE_CLASS, label)
        _fail(case, message)

    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", "0")
    suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    suite.set("time", f"{wall_s:.3f}")
    stamp = timestamp or str(meta.get("timestamp", ""))
    if stamp:
        suite.set("timestamp", stamp.removesuffix("Z").split(".")[0])
    root.set("tests", suite.get("tests", "0"))
    root.set("failures", suite.get("failures", "0"))
    root.set("errors", "0")
    root.set("skipped", suite.get("skipped", "0"))
    root.set("time", suite.get("time", "0"))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
