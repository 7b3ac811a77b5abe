"""The report model: everything the renderers show, computed once from a run record, optionally a
comparison (made by :mod:`harness.gate`, never here), a history of records and its change-points
(made by :mod:`harness.bench.history`, never here).

Renderers only format this model; they compute nothing of their own. The Coverage section comes from
the record's own ``coverage`` dict (:func:`coverage_model`), never from :mod:`harness.coverage`. Imports only
:mod:`harness.record` (the vocabulary: statuses, change kinds, the median, environment rows), so
``torchconform summary`` can use :func:`section_table` on machines without Jinja2.
"""
from __future__ import annotations

from collections import Counter, defaultdict

from harness.record import BENCH_SIGNALS, CHANGE_KINDS, COUNTERS, FAILING, STATUSES, environment_rows, median


def _counts(tests) -> dict:
    c = Counter(t["status"] for t in tests)
    d = {s: c.get(s, 0) for s in STATUSES}
    d["total"] = len(tests)
    return d


def conformance_table(tests: list[dict]) -> list[dict]:
    """Rows of section × device × dtype with outcome counts (denominators included)."""
    groups: dict[tuple, list] = defaultdict(list)
    for t in tests:
        groups[(t.get("section") or "-", t.get("device") or "-", t.get("dtype") or "-")].append(t)
    return [{"section": k[0], "device": k[1], "dtype": k[2], **_counts(v)} for k, v in sorted(groups.items())]


def section_table(tests: list[dict], *, by_device: bool = False) -> list[dict]:
    """Rows per section (and device, with ``by_device``): outcome counts and the summed duration."""
    groups: dict[tuple, list] = defaultdict(list)
    for t in tests:
        groups[(t.get("section") or "-",) + ((t.get("device") or "-",) if by_device else ())].append(t)
    return [{"section": k[0], **({"device": k[1]} if by_device else {}), **_counts(v),
             "duration": round(sum(t.get("duration", 0) for t in v), 2)} for k, v in sorted(groups.items())]


def _ratio(x):
    if isinstance(x, str):
        return float(x)
    return x


def precision_rows(tests: list[dict], limit: int = 25) -> list[dict]:
    """The checks closest to their tolerance (highest error/allowance ratio)."""
    rows = []
    for t in tests:
        for e in (t.get("checks") or {}).get("entries", []):
            r = _ratio(e.get("ratio"))
            if r is None or e.get("op") == "exact":
                continue
            rows.append({"nodeid": t["nodeid"], "api": e.get("api"), "dtype": e.get("dtype"), "op": e.get("op"),
                         "max_abs_err": e.get("max_abs_err"), "rtol": e.get("rtol"), "atol": e.get("atol"), "ratio": r})
    rows.sort(key=lambda r: -(r["ratio"] if r["ratio"] == r["ratio"] else 1e300))
    return rows[:limit]


def _quartiles(samples) -> dict | None:
    """Median (:func:`harness.record.median`) and the quartiles drawn as the history plot's whiskers."""
    s = sorted(samples)
    if not s:
        return None
    n = len(s)

    def q(p):
        x = p * (n - 1)
        lo = int(x)
        hi = min(lo + 1, n - 1)
        return s[lo] + (s[hi] - s[lo]) * (x - lo)

    return {"median": median(s), "q1": q(0.25), "q3": q(0.75), "n": n}


def history_model(records: list[dict]) -> dict:
    """Runs in time order with their outcome counts, and each benchmark's median per run."""
    recs = sorted(records, key=lambda r: r.get("created") or "")
    runs, series = [], {}
    for i, r in enumerate(recs):
        fp = r.get("fingerprint") or {}
        c = _counts(r.get("tests", []))
        runs.append({"run_id": r.get("run_id"), "label": r.get("label"), "created": r.get("created"),
                     "torch": (fp.get("torch") or {}).get("version"), "hostname": fp.get("hostname"),
                     "complete": r.get("complete"), **{k: c[k] for k in ("passed", "failed", "error", "skipped",
                                                                          "xfailed", "xpassed", "total")}})
        for b in r.get("benchmarks", []):
            series.setdefault(b["name"], [None] * len(recs))[i] = _quartiles(b.get("samples") or [])
    return {"runs": runs, "series": series}


def history_steps(changes: dict | None) -> dict:
    """The change-points as table rows (every step, newest first) and the series with insufficient data."""
    if not changes:
        return {"steps": [], "insufficient": [], "min_points": None}
    steps, short = [], []
    for kind, by_name in changes["series"].items():
        for name, fit in by_name.items():
            if fit["status"] != "ok":
                short.append({"kind": kind, "name": name, "points": fit["points"]})
            steps += [dict(s, kind=kind, name=name) for s in fit["steps"]]
    steps.sort(key=lambda s: (-s["index"], s["name"], s["kind"]))
    return {"steps": steps, "insufficient": short, "min_points": changes.get("min_points")}


def _entry_row(b: dict) -> dict:
    ins = b.get("instructions") or {}
    cnt = b.get("counters") or {}
    return {"name": b["name"], "n": len(b["samples"]), "median": median(b["samples"]), "unit": b.get("unit", "s"),
            "instructions": ins.get("per_call") if ins.get("status") == "ok" else None,
            "instructions_spread": ins.get("spread") if ins.get("status") == "ok" else None,
            "instructions_note": None if ins.get("status") in (None, "ok") else ins.get("reason"),
            "counters": {k.key: cnt.get(k.key) for k in COUNTERS if cnt.get(k.key) is not None}}


def _plots(model: dict) -> dict:
    from harness.report import plots

    why = plots.unavailable()
    out = {"unavailable": why, "bench_ratio": None, "history": None}
    if why:
        return out
    cmp = model.get("comparison")
    if cmp and cmp["benchmarks"]:
        out["bench_ratio"] = plots.bench_ratio(cmp["benchmarks"])
    if model.get("history"):
        out["history"] = plots.history(model["history"])
    return out


COVERAGE_KINDS = (("callables", "public callables"), ("overloads", "aten overloads"),
                  ("nn_modules", "torch.nn module classes"))


def coverage_model(cov: dict | None, diff: dict | None = None, *, limit: int = 2000) -> dict | None:
    """The record's coverage ledger (``rec["coverage"]``, ``torchconform run --coverage``) as report rows:
    per kind the figures and the uncovered names (the first ``limit``), per section the figures; with
    ``diff`` (the comparison's advisory ``coverage``) also the baseline's figures, the names new in the
    candidate torch that no checked test uses, and the names the baseline run exercised but this one
    does not. None when the record has no ledger (the reports then have no Coverage section)."""
    if not cov:
        return None
    kinds = []
    for key, title in COVERAGE_KINDS:
        e = (cov.get("kinds") or {}).get(key)
        if e is None:
            continue
        d = ((diff or {}).get("kinds") or {}).get(key) or {}
        unc = [] if e.get("not_measured") else e["uncovered"]  # a kind not recorded has no name lists
        kinds.append({"key": key, "title": title, "covered": e["covered"], "total": e["total"],
                      "percent": e["percent"], "touched": len(e.get("touched_without_check") or ()),
                      "not_measured": e.get("not_measured"), "n_uncovered": len(unc),
                      "uncovered": unc[:limit], "baseline": d.get("baseline"),
                      "new_untested": [] if e.get("not_measured") else d.get("new_untested") or [],
                      "lost": [] if e.get("not_measured") else d.get("lost") or [],
                      "gained": len(d.get("gained") or ())})
    keys = [k["key"] for k in kinds]
    sections = [{"section": sec, "tests": s["tests"], "tests_with_checks": s["tests_with_checks"],
                 "figures": [{"covered": s[k]["covered"], "percent": s[k]["percent"]} for k in keys]}
                for sec, s in sorted((cov.get("sections") or {}).items())]
    return {"torch": cov.get("torch"), "rule": cov.get("rule"), "partial": cov.get("partial"), "kinds": kinds,
            "sections": sections, "diff": diff is not None,
            "baseline_torch": diff.get("baseline_torch") if diff else None,
            "baseline_has": bool(diff and diff.get("baseline_torch") is not None)}


def annotate(tests: list[dict], cmp: dict | None) -> list[dict]:
    """The candidate's tests, each with its change against the baseline and its expectation."""
    if not cmp:
        return tests
    by = {r["nodeid"]: r for r in cmp["tests"]}
    out = []
    for t in tests:
        r = by.get(t["nodeid"])
        if r is not None:
            t = dict(t, change=r["change"], expectation=r.get("expectation"))
        out.append(t)
    return out


def build(rec: dict, comparison: dict | None = None, history: list[dict] | None = None, *,
          plots: bool = True, changes: dict | None = None) -> dict:
    """The model of ``rec``; with ``comparison`` (of ``rec`` against a baseline, gate included) also
    what changed and the verdict; with ``history`` (several records, ``rec`` included or not) the
    per-benchmark history, and with ``changes`` its change-points."""
    tests = annotate(rec.get("tests", []), comparison)
    fp = rec.get("fingerprint", {})
    torch_fp = fp.get("torch") or {}
    failures = [t for t in tests if t["status"] in FAILING]
    title = f"torchconform report: torch {torch_fp.get('version')} on {fp.get('hostname')}"
    if comparison is not None:
        b = comparison["baseline"]
        title = (f"torchconform comparison: torch {torch_fp.get('version')} on {fp.get('hostname')} "
                 f"vs baseline torch {b['torch']} on {b['hostname']}")
    model = {
        "title": title,
        "run": {k: rec.get(k) for k in ("run_id", "created", "finished", "complete", "exit_status", "tier", "devices", "label")},
        "incomplete": not rec.get("complete"),
        "totals": _counts(tests),
        "sections": section_table(tests),
        "conformance": conformance_table(tests),
        "failures": [{"nodeid": t["nodeid"], "status": t["status"], "message": t.get("message") or "",
                      "change": t.get("change"), "expectation": t.get("expectation")} for t in failures],
        "skips": sorted(Counter((t.get("message") or "no reason") for t in tests if t["status"] == "skipped").items(),
                        key=lambda kv: -kv[1]),
        "precision": precision_rows(tests),
        "benchmarks": [_entry_row(b) for b in rec.get("benchmarks", [])],
        "benchmark_counters": [k._asdict() for k in COUNTERS
                               if any((b.get("counters") or {}).get(k.key) is not None for b in rec.get("benchmarks", []))],
        "benchmark_instructions": any((b.get("instructions") or {}).get("status") for b in rec.get("benchmarks", [])),
        "signals": [k._asdict() for k in BENCH_SIGNALS],
        "counter_kinds": [k._asdict() for k in COUNTERS],
        "fingerprint": fp,
        "environment": comparison["environment"] if comparison is not None else environment_rows(fp),
        "tests": tests,
        "verdict": "FAIL" if failures else ("INCOMPLETE" if not rec.get("complete") else "PASS"),
        "comparison": comparison,
        "gate": comparison["gate"] if comparison is not None else None,
        "change_kinds": [k._asdict() for k in CHANGE_KINDS],
        "history": None,
        "coverage": coverage_model(rec.get("coverage"), (comparison or {}).get("coverage")),
    }
    if comparison is not None:
        model["verdict"] = comparison["gate"]["verdict"]
        base_sections = comparison["sections"]["baseline"]
        for r in model["sections"]:
            r["baseline"] = base_sections.get(r["section"])
    if history:
        ids = {h.get("run_id") for h in history}
        recs = list(history) + ([rec] if rec.get("run_id") not in ids else [])
        model["history"] = history_model(recs)
        model["history"]["changes"] = changes
        model["history"].update(history_steps(changes))
    model["plots"] = _plots(model) if plots else {"unavailable": "plots not requested", "bench_ratio": None,
                                                  "history": None}
    return model
