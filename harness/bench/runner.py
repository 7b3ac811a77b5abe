"""Measuring benchmark cases into run records: one measurement loop (:func:`measure_case`) for
one side or two alternating sides, the record's lifecycle, and progress lines.

* :func:`harness.bench.rounds.run_cases`: the selected cases on one side, interleaved in rounds
  (built on :func:`measure_case` and the record helpers here);
* :func:`run_pair`: two sides (e.g. two venvs' pythons, a baseline and a candidate torch) measured
  alternately, a few samples at a time in ABBA order, so drift of the machine hits both sides
  equally; every benchmark the caller's judgement flags as a regression or improvement is measured
  again and stays flagged only if that agrees.

The ``torchconform bench run|pair|calibrate`` commands around these are in :mod:`harness.cli.bench`;
whether a benchmark regressed is decided there, by the policy (:mod:`harness.gate`).
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from harness import record as _record
from harness.bench.progress import Progress, fmt_time

ERROR_EXIT = 1


# --------------------------------------------------------------------------------- measurement

def measure_case(sides: list, case, cfg, *, inner_loops: int | None = None, share: float = 1.0,
                 counters: bool = False) -> list[dict]:
    """Measure one case on every side, alternating sides a few samples at a time.

    Returns one dict per side: ``status`` ('ok', 'skipped', 'error'), ``reason``, ``samples``,
    ``inner_loops`` and timer details. With several sides the inner loop count is the first
    side's, so every side's samples time the same number of calls. ``inner_loops`` fixes it (a later
    round of the same case); ``share`` scales the time and sample budgets (one round's share of
    them); ``counters`` also measures each side's exact counters (``counters``) after the samples."""
    results = [{"status": "ok", "reason": None, "samples": [], "inner_loops": None} for _ in sides]
    name = case.bench.full_name
    t0 = time.perf_counter()
    for i, s in enumerate(sides):
        r = s.setup(name, case.params, case.device)
        if r["status"] != "ok":
            results[i].update(status=r["status"], reason=r["reason"])
    if any(r["status"] != "ok" for r in results):
        _release(sides)
        return _finish(results, t0)
    infos = [s.warmup() for s in sides]
    for r, info in zip(results, infos):
        if info["status"] != "ok":
            r.update(status="error", reason=info["reason"])
        else:
            r.update(timer=info["timer"], l2=info["l2"], warmup_calls=info["warmup_calls"])
    if any(r["status"] != "ok" for r in results):
        _release(sides)
        return _finish(results, t0)
    n = int(inner_loops or infos[0]["inner_loops"])
    min_time, max_time = cfg.min_time * share, cfg.max_time * share
    min_samples = max(3, math.ceil(cfg.min_samples * share)) if share < 1 else cfg.min_samples
    max_samples = max(min_samples, math.ceil(cfg.max_samples * share))
    chunk = min(5, min_samples) if len(sides) == 1 else 4
    spent = [0.0] * len(sides)
    rnd = 0
    while True:
        order = range(len(sides)) if rnd % 2 == 0 else range(len(sides) - 1, -1, -1)
        for i in order:
            rep = sides[i].samples(chunk, n)
            if rep["status"] != "ok":
                results[i].update(status="error", reason=rep["reason"])
                _release(sides)
                return _finish(results, t0)
            results[i]["samples"].extend(rep["samples"])
            spent[i] += sum(rep["samples"]) * n
        rnd += 1
        counts = [len(r["samples"]) for r in results]
        if all(c >= min_samples and t >= min_time for c, t in zip(counts, spent)):
            break
        if any(c >= max_samples or t >= max_time for c, t in zip(counts, spent)):
            break
    for r in results:
        r["inner_loops"] = n
        if len(sides) > 1:
            r["pair_chunk"] = chunk
    if counters:
        for r, s in zip(results, sides):
            r["counters"] = s.counters()
    _release(sides)
    return _finish(results, t0)


def _release(sides):
    for s in sides:
        s.release()


def _finish(results, t0):
    wall = time.perf_counter() - t0
    for r in results:
        r["wall_s"] = wall
    return results


def make_entry(case, result: dict, *, threads: int, ceilings: dict | None) -> dict:
    from harness import stats
    from harness.bench.timer import roofline

    counts = case.bench.counts(case.params)
    samples = [float(x) for x in result["samples"]]
    entry = {"name": case.name, "group": case.group, "section": case.bench.section, "device": case.device,
             "params": dict(case.params), "unit": "s", "samples": samples, "inner_loops": result.get("inner_loops"),
             **counts, "throughput_unit": case.bench.throughput_unit, "threads": threads,
             "status": result["status"], "reason": result.get("reason"),
             "timer": result.get("timer"), "l2": result.get("l2"), "warmup_calls": result.get("warmup_calls"),
             "wall_s": round(result.get("wall_s", 0.0), 4)}
    for key in ("pair_chunk", "rounds", "counters", "instructions"):
        if result.get(key):
            entry[key] = result[key]
    if samples:
        med = stats.median(samples)
        lo, hi = stats.bootstrap_median_ci(samples, conf=0.95, n_boot=1000)
        entry.update(median=med, ci_low=lo, ci_high=hi, **roofline(counts, ceilings, med))
    return entry


def _summary(entry: dict) -> str:
    if entry["status"] != "ok":
        return f"{entry['status']}: {entry['reason']}"
    frac = entry.get("roofline_fraction")
    extra = f", {frac:.1%} of roofline ({entry['bound']})" if frac is not None else ""
    return (f"median {fmt_time(entry['median'])} [{fmt_time(entry['ci_low'])}..{fmt_time(entry['ci_high'])}] "
            f"n={len(entry['samples'])}x{entry['inner_loops']}{extra}")


# ----------------------------------------------------------------------------------- records

def _clocks() -> dict | None:
    from harness import fingerprint

    return fingerprint.nvidia_driver()


def _new_record(hello: dict, args, devices: list[str], cfg, mode: str, label: str | None) -> dict:
    rec = _record.new_record(fingerprint=hello["fingerprint"], tier=args.tier, devices=devices,
                             argv=["torchconform", "bench", *getattr(args, "argv", [])], label=label)
    rec["bench"] = {"mode": mode, "threads": hello["threads"], "python": hello.get("python"),
                    "timer": cfg.to_dict(), "clocks_start": _clocks() if any(d.startswith("cuda") for d in devices) else None}
    return rec


def _measure_ceilings(side, rec, devices, enabled: bool, log) -> None:
    if not enabled:
        return
    for d in devices:
        t = time.monotonic()
        c = side.ceilings(d)
        rec["ceilings"][d] = c
        g = f"{c['gflops']:.1f} GFLOP/s" if c.get("gflops") else "? GFLOP/s"
        bw = f"{c['gbps']:.1f} GB/s" if c.get("gbps") else "? GB/s"
        log(f"ceilings {d}: {g}, {bw} ({time.monotonic() - t:.1f}s)")


def _close_record(rec, path, exit_status):
    rec["finished"] = _record.utcnow()
    rec["complete"] = True
    rec["exit_status"] = exit_status
    if rec.get("bench", {}).get("clocks_start") is not None:
        rec["bench"]["clocks_end"] = _clocks()
    _record.save(rec, path)


# -------------------------------------------------------------------------------------- pair mode

def run_pair(cases, sides, out: Path, *, args, devices, cfg, judge, confirm_rounds=1, ceilings=True, log=print,
             progress=True) -> tuple[list[dict], list[dict]]:
    """Alternate ``sides`` (baseline, candidate) per case; re-measure flagged cases. ``judge(baseline,
    candidate)`` returns the comparison's benchmark rows of two records (each with ``name``,
    ``verdict``, ``ratio``, ``ci_low``, ``ci_high``, ``q_value``). Returns (records, final rows)."""
    paths = [out / "baseline" / _record.RECORD_FILENAME, out / "candidate" / _record.RECORD_FILENAME]
    hellos = [s.hello() for s in sides]
    recs = [_new_record(h, args, devices, cfg, "pair", label) for h, label in zip(hellos, ("baseline", "candidate"))]
    for rec, h, other in zip(recs, hellos, reversed(hellos)):
        rec["bench"]["pair_with"] = other.get("python")
    for rec, p, s, lab in zip(recs, paths, sides, ("baseline", "candidate")):
        _record.save(rec, p)
        _measure_ceilings(s, rec, devices, ceilings, lambda m, lab=lab: log(f"{lab}: {m}"))
    prog = Progress(len(cases), enabled=progress)
    by_name = {}
    errors = 0
    for case in cases:
        prog.start(case.name)
        results = measure_case(sides, case, cfg)
        entries = [make_entry(case, r, threads=h["threads"], ceilings=rec["ceilings"].get(case.device))
                   for r, h, rec in zip(results, hellos, recs)]
        errors += any(e["status"] == "error" for e in entries)
        for rec, e, p in zip(recs, entries, paths):
            rec["benchmarks"].append(e)
            _record.save(rec, p)
        by_name[case.name] = case
        b, c = entries
        if b["status"] == c["status"] == "ok":
            msg = f"{fmt_time(b['median'])} -> {fmt_time(c['median'])} ({c['median'] / b['median']:.3f}x)"
        else:
            msg = f"baseline {b['status']}, candidate {c['status']}: {b['reason'] or c['reason']}"
        prog.finish(case.name, msg)
    rows = judge(recs[0], recs[1])
    for _ in range(max(int(confirm_rounds), 0)):
        todo = [r for r in rows if r["verdict"] in ("regression", "improvement")
                if r["name"] in by_name and "confirmation" not in _entry_by_name(recs[1], r["name"])]
        if not todo:
            break
        log(f"re-measuring {len(todo)} flagged benchmark(s) to confirm")
        for r in todo:
            case = by_name[r["name"]]
            results = measure_case(sides, case, cfg)
            sub = [dict(rec, benchmarks=[make_entry(case, res, threads=h["threads"], ceilings=None)])
                   for rec, res, h in zip(recs, results, hellos)]
            again = judge(sub[0], sub[1])
            row2 = again[0] if again else {"verdict": "missing_in_candidate", "ratio": float("nan")}
            _entry_by_name(recs[1], r["name"])["confirmation"] = {
                "verdict": row2["verdict"], "ratio": row2.get("ratio"), "ci_low": row2.get("ci_low"),
                "ci_high": row2.get("ci_high"), "q_value": row2.get("q_value"),
                "samples_baseline": sub[0]["benchmarks"][0]["samples"],
                "samples_candidate": sub[1]["benchmarks"][0]["samples"]}
        rows = judge(recs[0], recs[1])
    for rec, p in zip(recs, paths):
        _close_record(rec, p, ERROR_EXIT if errors else 0)
    return recs, rows


def _entry_by_name(rec: dict, name: str) -> dict:
    for e in rec["benchmarks"]:
        if e["name"] == name:
            return e
    return {}


def print_rows(rows: list[dict], stream=None) -> None:
    stream = stream or sys.stdout
    for r in rows:
        ratio = f"{r['ratio']:.3f}x" if r.get("ratio") is not None else "-"
        gate = "" if r["gating"] else " (advisory)"  # the policy's answer: can this row block?
        stream.write(f"{r['verdict']:<20} {ratio:>8}  {r['name']}{gate}: {r['reason']}\n")
