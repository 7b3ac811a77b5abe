"""Change-points in a history of run records (the nightly view), found with asv's step detection.

A pairwise threshold between two runs cannot tell a step from noise; a series of nightly records can.
For every benchmark, :func:`changepoints` takes the series of its median time per record (oldest first)
and, where records counted them, its instructions per call, and fits a piecewise-constant function with
``asv.step_detect.detect_steps`` (asv's own L1 Potts fit with an automatically chosen penalty: what
asv's dashboard shows), weighting each point by the inverse of its relative interquartile range as asv
weights by its confidence intervals. Each boundary between two fitted segments is a step, reported
with the first record after it and the step's size (right level / left level - 1; above 0 is slower).

A series with fewer than :data:`MIN_POINTS` points says ``insufficient data`` instead. Sensitivity of
the fit on 30-point series (measured, tests/test_bench_history.py): a step of 10 noise standard
deviations is found in about 96% of series, one of 5 in about 57%; no step was found in 200 flat
series. Rendering is the report's business (:mod:`harness.report.plots`); this module only computes.
"""
from __future__ import annotations

import math

from harness.errors import HarnessError
from harness.record import median

MIN_POINTS = 5
KINDS = {"wall": "median seconds per call", "instructions": "instructions per call"}


def _quartile_weight(samples) -> float | None:
    s = sorted(float(x) for x in samples if isinstance(x, (int, float)) and math.isfinite(x))
    if len(s) < 4:
        return None
    q1, q3, m = s[len(s) // 4], s[(3 * len(s)) // 4], median(s)
    return 1.0 / max((q3 - q1) / m, 1e-6) if m and m > 0 else None


def runs_of(records: list[dict]) -> list[dict]:
    """The records' identities in time order (what a step points at)."""
    return [{"index": i, "run_id": r.get("run_id"), "label": r.get("label"), "created": r.get("created"),
             "torch": ((r.get("fingerprint") or {}).get("torch") or {}).get("version")}
            for i, r in enumerate(records)]


def series(records: list[dict]) -> dict[str, dict[str, list]]:
    """``{kind: {benchmark: [(value, weight) or None per record]}}`` for kinds wall and instructions."""
    out: dict[str, dict[str, list]] = {"wall": {}, "instructions": {}}
    for i, rec in enumerate(records):
        for e in rec.get("benchmarks") or []:
            m = median(e.get("samples") or [])
            if m is not None and m > 0:
                out["wall"].setdefault(e["name"], [None] * len(records))[i] = (m, _quartile_weight(e["samples"]))
            ins = e.get("instructions") or {}
            if ins.get("status") == "ok" and isinstance(ins.get("per_call"), (int, float)):
                out["instructions"].setdefault(e["name"], [None] * len(records))[i] = (float(ins["per_call"]), None)
    return out


def steps_of(points: list, runs: list[dict], *, min_points: int = MIN_POINTS) -> dict:
    """The fit of one series: ``{"points", "status", "steps", "segments"}``; status 'insufficient data'
    (fewer than ``min_points`` points) or 'ok'; each step ``{"index", "run_id", "label", "created",
    "before", "after", "change"}`` where ``index`` is the first record after the step."""
    from asv.step_detect import detect_steps

    n = sum(p is not None for p in points)
    if n < min_points:
        return {"points": n, "status": "insufficient data", "steps": [], "segments": []}
    y = [p[0] if p is not None else None for p in points]
    w = [p[1] if p is not None else None for p in points]
    segs = detect_steps(y, w if any(x is not None for x in w) else None)
    segments = [{"left": int(left), "right": int(right), "value": float(v)} for left, right, v, _, _ in segs]
    steps = []
    for prev, cur in zip(segments, segments[1:]):
        run = runs[cur["left"]]
        steps.append({"index": cur["left"], "run_id": run["run_id"], "label": run["label"], "created": run["created"],
                      "torch": run["torch"], "before": prev["value"], "after": cur["value"],
                      "change": cur["value"] / prev["value"] - 1.0 if prev["value"] else None})
    return {"points": n, "status": "ok", "steps": steps, "segments": segments}


def changepoints(records: list[dict], *, min_points: int = MIN_POINTS) -> dict:
    """The history analysis of ``records`` (sorted oldest first here): ``{"runs": [...], "min_points",
    "series": {kind: {benchmark: steps_of(...)}}}``. HarnessError where asv is not installed."""
    try:
        import asv.step_detect  # noqa: F401
    except ImportError as exc:
        raise HarnessError(f"history needs asv's step detection (pip install asv, or torchconform[bench]): {exc}") \
            from None
    recs = sorted(records, key=lambda r: r.get("created") or "")
    runs = runs_of(recs)
    out = {"runs": runs, "min_points": min_points, "series": {}}
    for kind, by_name in series(recs).items():
        out["series"][kind] = {name: steps_of(points, runs, min_points=min_points)
                               for name, points in sorted(by_name.items())}
    return out


def step_lines(analysis: dict) -> list[str]:
    """One line per step (and one per series with insufficient data), for the terminal."""
    lines = []
    for kind, by_name in analysis["series"].items():
        for name, fit in by_name.items():
            if fit["status"] != "ok":
                lines.append(f"{'insufficient data':<18} {name} ({KINDS[kind]}: {fit['points']} points, "
                             f"need {analysis['min_points']})")
                continue
            for s in fit["steps"]:
                who = s["label"] or (s["run_id"] or "")[:8]
                lines.append(f"{'step ' + format(s['change'], '+.1%'):<18} {name} ({KINDS[kind]}) from run {who} "
                             f"({s['created']}, torch {s['torch']}): {s['before']:.4g} -> {s['after']:.4g}")
    return lines
