"""Self-benchmark of the comparison machinery on real timings: does it catch a planted 10% slowdown,
and how often does an unchanged installation raise a false alarm?

    python -m harness.bench.sensitivity [--trials 40] [--min-time 0.3] [--threads 1]

A small suite of CPU ops is defined here; each op runs ``reps`` times per call (10 by default), so
planting ``reps=11`` on one op makes it do exactly 10% more work. Each trial measures baseline and
candidate interleaved in this process (pair mode's loop, :func:`harness.bench.runner.measure_case`),
compares with :func:`harness.bench.significance.compare_benchmarks` (alpha 0.01, threshold 5%) and, like
``bench --pair``, re-measures flagged benchmarks once and keeps only confirmed flags.

* planted trials: the candidate's ``add`` op does 11 reps; success = it is a confirmed regression.
* A/A trials: nothing planted; a false alarm = ANY benchmark in the suite confirmed as a regression
  or improvement.
Prints both rates with 95% Wilson upper/lower bounds.
"""
from __future__ import annotations

import argparse
import math
import sys
import time

from harness import record
from harness.bench.definition import Benchmark


def _op(kind):
    def setup(device, n, reps=10):
        import torch

        g = torch.Generator().manual_seed(0)
        if kind == "matmul":
            a = torch.randn(n, n, generator=g).to(device)
            out = torch.empty(n, n, device=device)
            return lambda: [torch.mm(a, a, out=out) for _ in range(reps)]
        x = torch.randn(n, generator=g).to(device)
        out = torch.empty(n, device=device)
        if kind == "add":
            return lambda: [torch.add(x, x, out=out) for _ in range(reps)]
        if kind == "exp":
            return lambda: [torch.exp(x, out=out) for _ in range(reps)]
        if kind == "sum":
            return lambda: [x.sum() for _ in range(reps)]
        raise ValueError(kind)
    return setup


SUITE = [
    Benchmark(name="add", section="sens", setup=_op("add"), params={"n": [100_000]}),
    Benchmark(name="exp", section="sens", setup=_op("exp"), params={"n": [50_000]}),
    Benchmark(name="sum", section="sens", setup=_op("sum"), params={"n": [200_000]}),
    Benchmark(name="matmul", section="sens", setup=_op("matmul"), params={"n": [64]}),
]
PLANTED = "sens.add"


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def trial(cases, sides, cfg, alpha, threshold) -> list[dict]:
    from harness.bench.significance import compare_benchmarks, flagged
    from harness.bench.runner import make_entry, measure_case

    def measure(case_list):
        recs = [{"benchmarks": [], "ceilings": {}} for _ in sides]
        for case in case_list:
            for rec, res in zip(recs, measure_case(sides, case, cfg)):
                rec["benchmarks"].append(make_entry(case, res, threads=1, ceilings=None))
        return recs

    base, cand = measure(cases)
    rows = compare_benchmarks(base, cand, alpha=alpha, threshold=threshold, n_boot=1000)
    todo = {r["name"] for r in flagged(rows)}
    if todo:
        b2, c2 = measure([c for c in cases if c.name in todo])
        again = {r["name"]: r for r in compare_benchmarks(b2, c2, alpha=alpha, threshold=threshold, n_boot=1000)}
        for e in cand["benchmarks"]:
            if e["name"] in again:
                e["confirmation"] = {"verdict": again[e["name"]]["verdict"], "ratio": again[e["name"]]["ratio"]}
        rows = compare_benchmarks(base, cand, alpha=alpha, threshold=threshold, n_boot=1000)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.bench.sensitivity", description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=40, help="planted trials and A/A trials, each (default 40)")
    ap.add_argument("--min-time", type=float, default=0.3, help="measured seconds per case and side (default 0.3, as bench)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--threshold", type=float, default=0.05)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args(argv)

    from harness.bench.cases import select_cases
    from harness.bench.sides import InProcessSide
    from harness.bench.timer import TimerConfig

    cfg = TimerConfig(min_time=a.min_time, max_time=max(1.0, a.min_time * 4))
    cases = select_cases(SUITE, [a.device])
    base = InProcessSide(benchmarks=SUITE, threads=a.threads, config=cfg)
    same = InProcessSide(benchmarks=SUITE, threads=a.threads, config=cfg)
    slow = InProcessSide(benchmarks=SUITE, threads=a.threads, config=cfg, overrides={PLANTED: {"reps": 11}})
    t0 = time.monotonic()
    detected = alarms = planted_other_alarms = 0
    ratios = []
    for i in range(a.trials):
        rows = {r["name"]: r for r in trial(cases, [base, slow], cfg, a.alpha, a.threshold)}
        hit = next(r for n, r in rows.items() if n.startswith(PLANTED))
        detected += hit["verdict"] == "regression"
        ratios.append(hit["ratio"])
        planted_other_alarms += any(r["verdict"] in ("regression", "improvement") for n, r in rows.items()
                                    if not n.startswith(PLANTED))
        rows = trial(cases, [base, same], cfg, a.alpha, a.threshold)
        fa = [r for r in rows if r["verdict"] in ("regression", "improvement")]
        alarms += bool(fa)
        print(f"trial {i + 1}/{a.trials}: planted {hit['verdict']} (ratio {hit['ratio']:.3f}); "
              f"A/A {'FALSE ALARM ' + ', '.join(r['name'] for r in fa) if fa else 'quiet'}", flush=True)
    n = a.trials
    lo, _ = wilson(detected, n)
    _, hi = wilson(alarms, n)
    print(f"planted 10% slowdown of {PLANTED}: flagged in {detected}/{n} = {detected / n:.0%} of trials "
          f"(95% lower bound {lo:.0%}); median measured ratio {record.median(ratios):.3f}")
    print(f"A/A suite false alarms: {alarms}/{n} = {alarms / n:.1%} of trials (95% upper bound {hi:.1%}); "
          f"other benchmarks flagged in planted trials: {planted_other_alarms}/{n}")
    print(f"{len(cases)} benchmarks, alpha {a.alpha}, threshold {a.threshold:.0%}, min-time {a.min_time}s, "
          f"threads {a.threads}; {time.monotonic() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
