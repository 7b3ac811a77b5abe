"""Self-benchmark of the comparison machinery on real timings: does it catch a planted slowdown,
and how often does an unchanged installation raise a false alarm?

    python -m harness.bench.sensitivity [--trials 40] [--min-time 0.3] [--threads 1]      # pair flow
    python -m harness.bench.sensitivity --flow sequential [--trials 40] [--rounds 5] [--gap S] [--out DIR]
    python -m harness.bench.sensitivity --flow instructions [--runs 21] [--suite real --tier smoke]

The sequential and instruction flows are in :mod:`harness.bench.sensitivity_lanes`; the pair flow
(this module's :func:`trial`) is described below.

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
import sys
import time

from harness import record
from harness.bench.sensitivity_suite import PLANTED, SUITE, wilson  # noqa: F401 (re-exported)


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
    ap.add_argument("--flow", choices=("pair", "sequential", "instructions"), default="pair",
                    help="pair: interleaved A/B in this process (default); sequential: separate runs in fresh "
                         "processes, rounds and between-run evidence, as CI compares records; instructions: the "
                         "callgrind lane (2%% plant)")
    ap.add_argument("--rounds", type=int, default=5, help="sequential: rounds per run (default 5, as bench run)")
    ap.add_argument("--gap", type=float, default=0.0, help="sequential: seconds to sleep between trials")
    ap.add_argument("--out", default=None, help="sequential: keep the records in this folder (default: a temp folder)")
    ap.add_argument("--python", default=sys.executable, help="sequential: the python whose torch is measured")
    ap.add_argument("--runs", type=int, default=21, help="instructions: callgrind runs (pairs = runs - 1; default 21)")
    ap.add_argument("--suite", choices=("sens", "real"), default="sens",
                    help="instructions: the planted sensitivity suite (default) or the real CPU cases")
    ap.add_argument("--tier", default="smoke", help="instructions --suite real: the tier of cases (default smoke)")
    ap.add_argument("-k", dest="keyword", default=None, help="instructions --suite real: select cases (as bench -k)")
    ap.add_argument("--suites", default=None, help="instructions --suite real: the suites folder")
    a = ap.parse_args(argv)
    if a.flow != "pair":
        from harness.bench import sensitivity_lanes

        return getattr(sensitivity_lanes, a.flow)(a)

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
