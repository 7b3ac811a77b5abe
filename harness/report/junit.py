"""JUnit XML renderer: one testsuite per section, for CI systems that read JUnit.

With a comparison, tests the expectation manifest covers are written as skipped ("expected
failure: REASON") or, for an unexpected pass, as failures; a ``torchconform.benchmarks`` suite
has one case per benchmark (a failure for a gating regression; the line says which signal decided,
both signals' changes and any counter that changed) and a ``torchconform.gate`` suite
one case carrying the gate's verdict. An interrupted run (``complete: false``) adds a
``torchconform.run`` suite whose one case is an error: INCOMPLETE.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from harness.numfmt import pct


def _pct(x) -> str:
    return pct(x, missing="n/a")


def _clean(s) -> str:
    # XML 1.0 forbids most control characters; drop them rather than emit an unreadable file.
    return "".join(ch for ch in str(s) if ch in "\t\n\r" or 0x20 <= ord(ch) < 0xD800 or 0xE000 <= ord(ch) < 0xFFFE
                   or ord(ch) >= 0x10000)


def _first(msg: str) -> str:
    return msg.strip().splitlines()[0][:500] if msg.strip() else ""


def _case(suite, t) -> None:
    nodeid = t["nodeid"]
    path, _, name = nodeid.partition("::")
    case = ET.SubElement(suite, "testcase", classname=_clean(path.replace("/", ".").removesuffix(".py")),
                         name=_clean(name or path), time=f"{t.get('duration', 0):.3f}")
    msg = _clean(t.get("message") or "")
    first = _first(msg)
    change = t.get("change")
    exp = t.get("expectation")
    if change == "expected":
        ET.SubElement(case, "skipped", message=_clean(f"expected failure (manifest): {exp['reason']}"))
    elif change == "improved":
        el = ET.SubElement(case, "failure", message=_clean(f"unexpected pass of an expected failure ({exp['entry']}): "
                                                           "update the manifest"))
        el.text = _clean(f"manifest reason: {exp['reason']}")
    elif t["status"] in ("failed", "xpassed"):
        el = ET.SubElement(case, "failure", message=first or t["status"])
        el.text = msg
    elif t["status"] == "error":
        el = ET.SubElement(case, "error", message=first)
        el.text = msg
    elif t["status"] in ("skipped", "xfailed"):
        ET.SubElement(case, "skipped", message=first or t["status"])


def _counter_changes(row: dict, kinds: list[dict]) -> str:
    cnt = row.get("counters") or {}
    titles = {k["key"]: k["title"] for k in kinds}
    parts = [f"{titles.get(k, k)} {cnt['values'][k]['baseline']} -> {cnt['values'][k]['candidate']}"
             for k in cnt.get("changed") or []]
    return f"; counters changed: {', '.join(parts)}" if parts else ""


def render(model: dict) -> str:
    by_section: dict[str, list] = defaultdict(list)
    for t in model["tests"]:
        by_section[t.get("section") or "harness"].append(t)
    root = ET.Element("testsuites", name="torchconform", tests=str(model["totals"]["total"]))
    for section, tests in sorted(by_section.items()):
        exp = [t for t in tests if t.get("change") == "expected"]
        failures = sum((t["status"] in ("failed", "xpassed") and t.get("change") != "expected")
                       or t.get("change") == "improved" for t in tests)
        errors = sum(t["status"] == "error" and t.get("change") != "expected" for t in tests)
        skipped = sum(t["status"] in ("skipped", "xfailed") for t in tests) + len(exp)
        suite = ET.SubElement(root, "testsuite", name=_clean(section), tests=str(len(tests)), failures=str(failures),
                              errors=str(errors), skipped=str(skipped),
                              time=f"{sum(t.get('duration', 0) for t in tests):.3f}")
        for t in tests:
            _case(suite, t)
    if model.get("incomplete"):
        suite = ET.SubElement(root, "testsuite", name="torchconform.run", tests="1", failures="0", errors="1",
                              skipped="0", time="0")
        case = ET.SubElement(suite, "testcase", classname="torchconform.run", name="complete", time="0")
        ET.SubElement(case, "error", message=f"INCOMPLETE: the run was interrupted or crashed; "
                                             f"{model['totals']['total']} tests recorded")
    cmp = model.get("comparison")
    if cmp is not None:
        rows = cmp["benchmarks"]
        if rows:
            suite = ET.SubElement(root, "testsuite", name="torchconform.benchmarks", tests=str(len(rows)),
                                  failures=str(sum(bool(r.get("gating")) and r.get("verdict") == "regression"
                                                   for r in rows)), errors="0", skipped="0", time="0")
            for r in rows:
                case = ET.SubElement(suite, "testcase", classname="torchconform.benchmarks", name=_clean(r["name"]),
                                     time="0")
                ins = r.get("instructions") or {}
                summary = (f"{r.get('verdict')} (by {r.get('signal')}): time ratio {_pct(r.get('ratio'))} "
                           f"[CI {_pct(r.get('ci_low'))}, {_pct(r.get('ci_high'))}]"
                           + (f", instructions {_pct(ins['ratio'])} (margin {ins['margin'] * 100:.2f}%)"
                              if ins.get("ratio") is not None else "")
                           + f", threshold {(r.get('threshold') or 0) * 100:.0f}% ({r.get('mode')})"
                           + (f"; advisory: {r['advisory_reason']}" if r.get("advisory_reason") else "")
                           + _counter_changes(r, model.get("counter_kinds") or []))
                if r.get("gating") and r.get("verdict") == "regression":
                    ET.SubElement(case, "failure", message=_clean(summary))
                else:
                    ET.SubElement(case, "system-out").text = _clean(summary)
        g = cmp["gate"]
        suite = ET.SubElement(root, "testsuite", name="torchconform.gate", tests="1",
                              failures=str(int(g["verdict"] != "PASS")), errors="0", skipped="0", time="0")
        case = ET.SubElement(suite, "testcase", classname="torchconform.gate", name="gate", time="0")
        if g["verdict"] != "PASS":
            el = ET.SubElement(case, "failure", message=_clean(g["line"]))
            el.text = _clean("\n".join(g["reasons"] + [f"warning: {w}" for w in g["warnings"]]))
        elif g["warnings"]:
            ET.SubElement(case, "system-out").text = _clean("\n".join(f"warning: {w}" for w in g["warnings"]))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
