"""The coverage ledger: per-test usage folded into per-section and total figures against the universe,
the ``"coverage"`` dict of a run record, a terminal summary, and the diff of two runs.

Plain Python, no pytest import.
"""
from __future__ import annotations

import re

from harness.coverage.universe import KINDS, Universe, universe

FORMAT_VERSION = 1

RULE = ("exercised = called while a test that recorded at least one harness.checks assertion ran "
        "(any outcome); callables: the keys of torch.overrides.get_testing_overrides() called directly "
        "by the test (not from inside another torch callable); overloads: aten overloads that reached the "
        "Python dispatcher eagerly; nn_modules: public torch.nn classes with a forward of their own whose "
        "forward ran through module(...)")


def section_of(path: str) -> str | None:
    """``suites/<section>/...`` (a node id or file path) -> ``<section>``; None outside ``suites/``."""
    parts = re.split(r"[/\\]", path.split("::", 1)[0])
    for i, p in enumerate(parts[:-2]):
        if p == "suites":
            return parts[i + 1]
    return None


def _pct(n: int, total: int) -> float:
    return round(100.0 * n / total, 2) if total else 0.0


class Ledger:
    """Per-test usage folded into per-section and total coverage against a :class:`Universe`."""

    def __init__(self, uni: Universe | None = None, *, reasons: dict | None = None):
        self.universe = uni or universe()
        self.reasons: dict[str, str] = dict(reasons or {})
        self._checked: dict[str, dict[str, set]] = {}
        self._touched: dict[str, dict[str, set]] = {}
        self._tests: dict[str, list[int]] = {}

    def add(self, usage: Usage, *, checks: int, section: str | None = None) -> None:
        """Add one test's usage. ``checks``: how many harness.checks assertions the test recorded (the usage
        counts as exercised only when >= 1); ``section``: ``suites/<section>`` (None: ``"(other)"``)."""
        sec = section or "(other)"
        counts = self._tests.setdefault(sec, [0, 0])
        counts[0] += 1
        target = self._touched
        if checks >= 1:
            counts[1] += 1
            target = self._checked
        bucket = target.setdefault(sec, {k: set() for k in KINDS})
        for k in KINDS:
            bucket[k] |= getattr(usage, k)

    def note(self, kind: str, reason: str) -> None:
        """Record why a kind was not measured (e.g. the dispatch half was unavailable)."""
        self.reasons[kind] = reason

    def _union(self, which: dict, kind: str) -> set:
        out: set = set()
        for b in which.values():
            out |= b[kind]
        return out

    def as_dict(self, *, section_names: bool = True) -> dict:
        """The ``"coverage"`` entry of a run record (JSON-able; see the module docstring for the rule)."""
        uni = self.universe
        kinds = {}
        for k in KINDS:
            names = uni.names(k)
            checked = self._union(self._checked, k)
            touched = self._union(self._touched, k) | checked
            covered = sorted(checked & names)
            entry = {"total": len(names), "covered": len(covered), "percent": _pct(len(covered), len(names)),
                     "covered_names": covered, "uncovered": sorted(names - checked),
                     "touched_without_check": sorted((touched - checked) & names),
                     "outside_universe": sorted(touched - names)}
            if k in self.reasons:
                entry["not_measured"] = self.reasons[k]
            kinds[k] = entry
        kinds["overloads"]["source"] = uni.overloads_source
        kinds["nn_modules"]["excluded"] = dict(sorted(uni.nn_excluded.items()))
        kinds["callables"]["excluded"] = dict(getattr(uni, "callables_excluded", {}))
        sections = {}
        for sec in sorted(self._tests):
            n_tests, n_checked = self._tests[sec]
            s = {"tests": n_tests, "tests_with_checks": n_checked}
            for k in KINDS:
                names = uni.names(k)
                got = sorted(self._checked.get(sec, {}).get(k, set()) & names)
                s[k] = {"covered": len(got), "percent": _pct(len(got), len(names))}
                if section_names:
                    s[k]["names"] = got
            sections[sec] = s
        return {"version": FORMAT_VERSION, "torch": uni.torch_version, "rule": RULE, "totals": {
            k: {"covered": kinds[k]["covered"], "total": kinds[k]["total"], "percent": kinds[k]["percent"]} for k in KINDS},
            "kinds": kinds, "sections": sections}


def summary_lines(cov: dict, *, show_uncovered: tuple = ("nn_modules",), limit: int = 400) -> list[str]:
    """Plain-text lines for a terminal: totals, per section, and the uncovered names of ``show_uncovered``."""
    lines = [f"coverage (torch {cov['torch']}), exercised by a check with an oracle:"]
    for k in KINDS:
        t = cov["kinds"][k]
        extra = f"  [not measured: {t['not_measured']}]" if "not_measured" in t else ""
        lines.append(f"  {k:<11} {t['covered']:>5} / {t['total']:<5} {t['percent']:6.2f}%"
                     f"  (+{len(t['touched_without_check'])} touched without a check){extra}")
    for sec, s in cov["sections"].items():
        figs = "  ".join(f"{k} {s[k]['covered']} ({s[k]['percent']:.1f}%)" for k in KINDS)
        lines.append(f"  section {sec}: {s['tests']} tests ({s['tests_with_checks']} with checks)  {figs}")
    for k in show_uncovered:
        unc = cov["kinds"][k]["uncovered"]
        lines.append(f"  uncovered {k} ({len(unc)}):")
        lines += [f"    {n}" for n in unc[:limit]]
        if len(unc) > limit:
            lines.append(f"    ... {len(unc) - limit} more")
    return lines


def diff(baseline: dict | None, candidate: dict) -> dict:
    """Compare two ``"coverage"`` dicts (baseline may be None). Per kind:

    ``untested``: in the candidate torch, exercised by no checked test of the candidate run;
    ``new_untested``: of those, the ones the baseline torch did not have (new API nobody tests yet);
    ``lost``: exercised in the baseline run, present but not exercised in the candidate run;
    ``gained``: exercised in the candidate run, not in the baseline run;
    ``removed``: in the baseline torch's universe, gone from the candidate's;
    plus both runs' ``covered``/``total``/``percent``.
    """
    out: dict = {"baseline_torch": baseline["torch"] if baseline else None, "candidate_torch": candidate["torch"], "kinds": {}}
    for k in KINDS:
        c = candidate["kinds"][k]
        c_cov, c_unc = set(c["covered_names"]), set(c["uncovered"])
        entry = {"candidate": {x: c[x] for x in ("covered", "total", "percent")}, "untested": sorted(c_unc)}
        if baseline is not None:
            b = baseline["kinds"][k]
            b_cov = set(b["covered_names"])
            b_all = b_cov | set(b["uncovered"])
            c_all = c_cov | c_unc
            entry["baseline"] = {x: b[x] for x in ("covered", "total", "percent")}
            entry["new_untested"] = sorted(c_unc - b_all)
            entry["lost"] = sorted((b_cov & c_all) - c_cov)
            entry["gained"] = sorted(c_cov - b_cov)
            entry["removed"] = sorted(b_all - c_all)
        out["kinds"][k] = entry
    return out


def merge(covs: list[dict]) -> dict:
    """One ``"coverage"`` dict from several runs of the same torch build (shards, pytest-xdist workers):
    exercised sets are unions, test counts add up, figures are recomputed. Needs the per-section names
    (``as_dict(section_names=True)``, the default); raises ValueError for different torch builds."""
    if not covs:
        raise ValueError("no coverage to merge")
    builds = sorted({c["torch"] for c in covs})
    if len(builds) > 1:
        raise ValueError(f"coverage of different torch builds cannot be merged: {', '.join(builds)}")
    kinds = {}
    for k in KINDS:
        ents = [c["kinds"][k] for c in covs]
        covered = set().union(*(e["covered_names"] for e in ents))
        names = covered | set().union(*(e["uncovered"] for e in ents))
        entry = {"total": len(names), "covered": len(covered), "percent": _pct(len(covered), len(names)),
                 "covered_names": sorted(covered), "uncovered": sorted(names - covered),
                 "touched_without_check": sorted(set().union(*(e["touched_without_check"] for e in ents)) - covered),
                 "outside_universe": sorted(set().union(*(e["outside_universe"] for e in ents)))}
        for extra in ("not_measured", "source", "excluded"):
            found = [e[extra] for e in ents if extra in e]
            if found:
                entry[extra] = found[0]
        kinds[k] = entry
    sections: dict = {}
    for c in covs:
        for sec, s in c["sections"].items():
            acc = sections.setdefault(sec, {"tests": 0, "tests_with_checks": 0, **{k: set() for k in KINDS}})
            acc["tests"] += s["tests"]
            acc["tests_with_checks"] += s["tests_with_checks"]
            for k in KINDS:
                if "names" not in s[k]:
                    raise ValueError(f"section {sec!r} has no names to merge (write it with section_names=True)")
                acc[k] |= set(s[k]["names"])
    for sec, acc in sections.items():
        for k in KINDS:
            got = sorted(acc[k])
            acc[k] = {"covered": len(got), "percent": _pct(len(got), kinds[k]["total"]), "names": got}
    return {"version": FORMAT_VERSION, "torch": builds[0], "rule": RULE,
            "totals": {k: {x: kinds[k][x] for x in ("covered", "total", "percent")} for k in KINDS},
            "kinds": kinds, "sections": dict(sorted(sections.items()))}
