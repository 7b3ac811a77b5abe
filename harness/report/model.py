"""The report model: everything the renderers show, computed once from run record(s).

Renderers only format this model; they compute nothing of their own.
"""
from __future__ import annotations

from collections import Counter, defaultdict

from harness.record import STATUSES

FAILING = ("failed", "error", "xpassed")


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


def section_table(tests: list[dict]) -> list[dict]:
    groups: dict[str, list] = defaultdict(list)
    for t in tests:
        groups[t.get("section") or "-"].append(t)
    return [{"section": k, **_counts(v), "duration": round(sum(t.get("duration", 0) for t in v), 2)}
            for k, v in sorted(groups.items())]


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


def _median_q(samples):
    s = sorted(samples)
    if not s:
        return None
    n = len(s)

    def q(p):
        x = p * (n - 1)
        lo = int(x)
        hi = min(lo + 1, n - 1)
        return s[lo] + (s[hi] - s[lo]) * (x - lo)

    return {"median": q(0.5), "q1": q(0.25), "q3": q(0.75), "n": n}


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
            series.setdefault(b["name"], [None] * len(recs))[i] = _median_q(b.get("samples") or [])
    return {"runs": runs, "series": series}


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


def build(rec: dict, *, baseline: dict | None = None, policy=None, comparison: dict | None = None,
          history: list[dict] | None = None, plots: bool = True) -> dict:
    """The model of ``rec``; with ``baseline`` (or a precomputed ``comparison``) also what changed
    and the gate's verdict under ``policy``; with ``history`` (several records, ``rec`` included or
    not) the per-benchmark history."""
    if comparison is None and baseline is not None:
        from harness.compare import compare

        comparison = compare(baseline, rec, policy)
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
        "totals": _counts(tests),
        "sections": section_table(tests),
        "conformance": conformance_table(tests),
        "failures": [{"nodeid": t["nodeid"], "status": t["status"], "message": t.get("message") or "",
                      "change": t.get("change"), "expectation": t.get("expectation")} for t in failures],
        "skips": sorted(Counter((t.get("message") or "no reason") for t in tests if t["status"] == "skipped").items(),
                        key=lambda kv: -kv[1]),
        "precision": precision_rows(tests),
        "benchmarks": [{"name": b["name"], "n": len(b["samples"]),
                        "median": sorted(b["samples"])[len(b["samples"]) // 2] if b["samples"] else None,
                        "unit": b.get("unit", "s")} for b in rec.get("benchmarks", [])],
        "fingerprint": fp,
        "environment": (comparison["environment"] if comparison is not None else
                        environment_rows(fp, (baseline or {}).get("fingerprint") if baseline else None)),
        "tests": tests,
        "verdict": "FAIL" if failures else ("INCOMPLETE" if not rec.get("complete") else "PASS"),
        "comparison": comparison,
        "gate": comparison["gate"] if comparison is not None else None,
        "history": None,
    }
    if comparison is not None:
        model["verdict"] = comparison["gate"]["verdict"]
        base_sections = {r["section"]: r for r in section_table(baseline.get("tests", []))} if baseline else {}
        for r in model["sections"]:
            r["baseline"] = base_sections.get(r["section"])
    if history:
        ids = {h.get("run_id") for h in history}
        recs = list(history) + ([rec] if rec.get("run_id") not in ids else [])
        model["history"] = history_model(recs)
    model["plots"] = _plots(model) if plots else {"unavailable": "plots not requested", "bench_ratio": None,
                                                  "history": None}
    return model


def environment_rows(fp: dict, base: dict | None = None) -> list[dict]:
    def pick(f):
        if not f:
            return {}
        t = f.get("torch") or {}
        c = f.get("cpu") or {}
        return {
            "torch": t.get("version"), "torch git": t.get("git_version"), "CUDA": t.get("cuda"), "cuDNN": t.get("cudnn"),
            "driver": (f.get("driver") or {}).get("driver_version"),
            "GPUs": ", ".join(g.get("name", "") for g in f.get("gpus") or []) or "none",
            "CPU": c.get("model"), "CPU flags": " ".join(c.get("flags") or []),
            "CPU capability": t.get("cpu_capability"), "logical CPUs": c.get("logical_cpus"),
            "torch threads": t.get("num_threads"), "Python": (f.get("python") or {}).get("version"),
            "numpy": (f.get("packages") or {}).get("numpy"),
            "hostname": f.get("hostname"), "git": ((f.get("git") or {}).get("commit") or "")[:12] or None,
        }
    cur, old = pick(fp), pick(base)
    return [{"key": k, "value": v, "baseline": old.get(k) if base else None,
             "differs": bool(base) and old.get(k) != v} for k, v in cur.items()]
