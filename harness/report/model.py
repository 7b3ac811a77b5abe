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


def build(rec: dict, *, baseline: dict | None = None) -> dict:
    tests = rec.get("tests", [])
    fp = rec.get("fingerprint", {})
    torch_fp = fp.get("torch") or {}
    failures = [t for t in tests if t["status"] in FAILING]
    model = {
        "title": f"torchconform report: torch {torch_fp.get('version')} on {fp.get('hostname')}",
        "run": {k: rec.get(k) for k in ("run_id", "created", "finished", "complete", "exit_status", "tier", "devices", "label")},
        "totals": _counts(tests),
        "sections": section_table(tests),
        "conformance": conformance_table(tests),
        "failures": [{"nodeid": t["nodeid"], "status": t["status"], "message": t.get("message") or ""} for t in failures],
        "skips": sorted(Counter((t.get("message") or "no reason") for t in tests if t["status"] == "skipped").items(),
                        key=lambda kv: -kv[1]),
        "precision": precision_rows(tests),
        "benchmarks": [{"name": b["name"], "n": len(b["samples"]),
                        "median": sorted(b["samples"])[len(b["samples"]) // 2] if b["samples"] else None,
                        "unit": b.get("unit", "s")} for b in rec.get("benchmarks", [])],
        "fingerprint": fp,
        "environment": environment_rows(fp, (baseline or {}).get("fingerprint") if baseline else None),
        "tests": tests,
        "verdict": "FAIL" if failures else ("INCOMPLETE" if not rec.get("complete") else "PASS"),
    }
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
            "torch threads": t.get("num_threads"), "Python": (f.get("python") or {}).get("version"),
            "hostname": f.get("hostname"), "git": ((f.get("git") or {}).get("commit") or "")[:12] or None,
        }
    cur, old = pick(fp), pick(base)
    return [{"key": k, "value": v, "baseline": old.get(k) if base else None,
             "differs": bool(base) and old.get(k) != v} for k, v in cur.items()]
