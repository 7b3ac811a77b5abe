"""``torchconform coverage RECORD``: the coverage ledger a run recorded (``torchconform run --coverage``).

Prints, per kind (public callables, aten overloads, ``torch.nn`` module classes), how many the run
exercised (used inside a test that made a ``harness.checks`` check) of how many the recorded torch
offers, then the same per section; ``--uncovered`` lists the names no checked test used. ``--kind`` and
``--section`` narrow both: with a section, the figures and the uncovered list are that section's
(exercised by its tests) against the whole universe. ``--json OUT`` writes exactly what was printed, as
JSON. A missing or corrupt record, or one without coverage, is one line on stderr and exit status 2.
"""
from __future__ import annotations

import json
from pathlib import Path

from harness import record
from harness.coverage import KINDS
from harness.errors import HarnessError

NO_COVERAGE = "has no coverage data: run with `torchconform run --coverage` (pytest: --tc-coverage)"


def view(cov: dict, kinds: tuple = KINDS, section: str | None = None) -> dict:
    """The figures to show: the whole run's, or one section's, for ``kinds``."""
    sections = cov.get("sections") or {}
    if section is not None and section not in sections:
        known = ", ".join(sorted(sections)) or "none"
        raise HarnessError(f"no section {section!r} in the coverage (sections: {known})")
    out: dict = {"torch": cov["torch"], "rule": cov.get("rule"), "section": section, "kinds": {}, "sections": {}}
    if cov.get("partial"):
        out["partial"] = cov["partial"]
    for k in kinds:
        e = cov["kinds"][k]
        entry = {"covered": e["covered"], "total": e["total"], "percent": e["percent"],
                 "touched_without_check": len(e.get("touched_without_check", ())), "uncovered": e["uncovered"]}
        if section is not None:
            s = sections[section][k]
            if "names" not in s:
                raise HarnessError(f"section {section!r} of the coverage has no names (recorded without them)")
            everything = set(e["covered_names"]) | set(e["uncovered"])
            entry = {"covered": s["covered"], "total": e["total"], "percent": s["percent"],
                     "uncovered": sorted(everything - set(s["names"]))}
        if "not_measured" in e:
            entry["not_measured"] = e["not_measured"]
        out["kinds"][k] = entry
    for sec, s in sorted(sections.items()):
        if section is None or sec == section:
            out["sections"][sec] = {"tests": s["tests"], "tests_with_checks": s["tests_with_checks"],
                                    **{k: {"covered": s[k]["covered"], "percent": s[k]["percent"]} for k in kinds}}
    return out


def lines(v: dict, *, uncovered: bool = False) -> list[str]:
    """The plain-text lines of :func:`view`'s figures."""
    where = f", section {v['section']}" if v["section"] else ""
    out = [f"coverage of torch {v['torch']}{where}: exercised = used by a test that made a check"]
    if v.get("partial"):
        out.append(f"PARTIAL (the figures are a lower bound): {v['partial']}")
    out.append(f"  {'kind':<11} {'exercised':>9} {'total':>6} {'percent':>8}")
    for k, e in v["kinds"].items():
        extra = f"  (+{e['touched_without_check']} touched without a check)" if e.get("touched_without_check") else ""
        if "not_measured" in e:
            extra += f"  [not measured: {e['not_measured']}]"
        out.append(f"  {k:<11} {e['covered']:>9} {e['total']:>6} {e['percent']:>7.2f}%{extra}")
    if v["sections"]:
        out += ["", f"  {'section':<16} {'tests':>6} {'checked':>7}" + "".join(f" {k:>18}" for k in v["kinds"])]
        for sec, s in v["sections"].items():
            figs = "".join(f" {s[k]['covered']:>9} ({s[k]['percent']:5.1f}%)" for k in v["kinds"])
            out.append(f"  {sec:<16} {s['tests']:>6} {s['tests_with_checks']:>7}{figs}")
    if uncovered:
        for k, e in v["kinds"].items():
            out += ["", f"uncovered {k}{where} ({len(e['uncovered'])}):"] + [f"  {n}" for n in e["uncovered"]]
    return out


def cmd_coverage(args) -> int:
    rec = record.load(args.record)
    cov = rec.get("coverage")
    if not cov:
        raise HarnessError(f"{args.record}: {NO_COVERAGE}")
    kinds = (args.kind,) if args.kind else KINDS
    v = view(cov, kinds, args.section)
    print("\n".join(lines(v, uncovered=args.uncovered)))
    if args.json:
        if not args.uncovered:
            for e in v["kinds"].values():
                e.pop("uncovered")
        try:
            Path(args.json).write_text(json.dumps(v, indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            raise HarnessError(f"{args.json}: cannot write ({exc.__class__.__name__}: {exc.strerror or exc})") from None
        print(f"torchconform: coverage written to {args.json}")
    return 0


def add_parser(sub) -> None:
    c = sub.add_parser("coverage", help="print the coverage ledger of a run record (torchconform run --coverage)",
                       description="Print which public torch callables, aten overloads and torch.nn module classes "
                                   "a run exercised (used inside a test that made a check), per kind and per "
                                   "section, from RECORD (a record.json or its folder) of `torchconform run "
                                   "--coverage`. Exit 2 on a missing or corrupt record or one without coverage.")
    c.add_argument("record", metavar="RECORD", help="the run record (record.json or the folder holding it)")
    c.add_argument("--kind", choices=KINDS, default=None, help="only this kind (default: all three)")
    c.add_argument("--section", default=None, metavar="S",
                   help="only this section (suites/<S>): its figures and its uncovered names")
    c.add_argument("--uncovered", action="store_true", help="also list the names no checked test used")
    c.add_argument("--json", default=None, metavar="OUT", help="also write the printed figures as JSON to OUT")
    c.set_defaults(func=cmd_coverage)
