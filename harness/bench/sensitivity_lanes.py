"""Self-benchmarks of the two lanes of the sequential flow (``python -m harness.bench.sensitivity --flow ...``).

* ``--flow sequential`` (wall time, as CI runs it): separate ``bench run``-style runs, each in a fresh
  worker process, measured in rounds with the machine's ceilings probed beside them
  (:func:`harness.bench.rounds.run_cases`). Per trial: a planted run B_i (``sens.add`` does 11 reps
  instead of 10: +10% work), then an unchanged run A_i. A/A: A_(i-1) against A_i; planted: A_(i-1)
  against B_i; both with the earlier A runs as ``history``. A *gating alarm* is a regression or
  improvement the comparison may gate on (detectable between runs); advisory flags are counted apart.
  ``--gap S`` sleeps between trials, to spread them over the day.
* ``--flow instructions`` (the deterministic lane): ``--runs`` callgrind workers, one after the other,
  each counting :data:`INSTRUCTION_SUITE` (``sens.add`` at 50 reps and ``sens.add_2pct`` at 51: +2% of
  executed work). A/A: run i against run i+1 (every benchmark but the plant); planted: run i's
  ``sens.add`` against run i+1's ``sens.add_2pct``. ``--suite real --tier smoke`` counts the real CPU
  cases instead and reports their spread within and across runs (no plant).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from harness import record
from harness.bench.sensitivity_suite import INSTRUCTION_SUITE, PLANT_2PCT, PLANTED, SUITE, wilson


def _args(a):
    class Args:  # what rounds.run_cases reads from the CLI's namespace
        tier, argv = "default", ["sensitivity"]
    return Args


def sequential(a) -> int:
    from harness.bench.cases import select_cases
    from harness.bench.rounds import run_cases
    from harness.bench.sides import WorkerSide
    from harness.bench.significance import compare_benchmarks
    from harness.bench.timer import TimerConfig

    cfg = TimerConfig(min_time=a.min_time, max_time=max(1.0, a.min_time * 4))
    cases = select_cases(SUITE, [a.device])
    out = Path(a.out or tempfile.mkdtemp(prefix="torchconform-sequential-"))
    t0 = time.monotonic()

    def run(tag, overrides=None):
        side = WorkerSide(a.python, threads=a.threads, config=cfg, overrides=overrides,
                          definitions="harness.bench.sensitivity_suite:SUITE")
        try:
            return run_cases(cases, side, out / tag / record.RECORD_FILENAME, args=_args(a), devices=[a.device],
                             cfg=cfg, log=lambda m: None, progress=False, rounds=a.rounds, counters=False)
        finally:
            side.close()

    def judge(base, cand, history):
        return compare_benchmarks(base, cand, alpha=a.alpha, threshold=a.threshold, history=history, n_boot=1000)

    prev, history = run("A-0"), []
    detected = gated = alarms = advisory = 0
    for i in range(1, a.trials + 1):
        if a.gap and i > 1:
            time.sleep(a.gap)
        planted, cur = run(f"B-{i}", {PLANTED: {"reps": 11}}), run(f"A-{i}")
        hit = next(r for r in judge(prev, planted, history) if r["name"].startswith(PLANTED))
        detected += hit["verdict"] == "regression"
        gated += hit["verdict"] == "regression" and hit["detectable"]
        rows = judge(prev, cur, history)
        fa = [r for r in rows if r["verdict"] in ("regression", "improvement") and r["detectable"]]
        adv = [r for r in rows if r["verdict"] in ("regression", "improvement") and not r["detectable"]]
        alarms += bool(fa)
        advisory += bool(adv)
        print(f"trial {i}/{a.trials}: planted {hit['verdict']} (ratio {hit['ratio']:.3f}, raw {hit['raw_ratio']:.3f}, "
              f"{'gating' if hit['detectable'] else 'advisory: ' + str(hit['undetectable'])}); A/A "
              f"{'GATING ALARM ' + ', '.join(r['name'] for r in fa) if fa else 'quiet'}"
              f"{'; advisory flags ' + ', '.join(r['name'] for r in adv) if adv else ''}", flush=True)
        history.append(prev)
        prev = cur
    n = a.trials
    print(f"sequential flow, planted 10% of {PLANTED}: flagged {detected}/{n}, as a gating regression {gated}/{n} "
          f"(95% lower bound {wilson(gated, n)[0]:.0%})")
    print(f"sequential A/A: gating alarms in {alarms}/{n} trials (95% upper bound {wilson(alarms, n)[1]:.0%}); "
          f"advisory flags in {advisory}/{n}")
    print(f"{len(cases)} benchmarks, {a.rounds} rounds, alpha {a.alpha}, threshold {a.threshold:.0%}, "
          f"min-time {a.min_time}s, threads {a.threads}; records in {out}; {time.monotonic() - t0:.0f}s")
    return 0


def instructions(a) -> int:
    from harness.bench import exact
    from harness.bench.cases import select_cases
    from harness.bench.definition import discover
    from harness.bench.instructions import count_cases

    real = a.suite == "real"
    benchmarks = discover(a.suites) if real else INSTRUCTION_SUITE
    cases = select_cases(benchmarks, ["cpu"], tier=a.tier if real else "default", keyword=a.keyword)
    runs, walls = [], []
    for k in range(a.runs):
        entries = {c.name: {"name": c.name} for c in cases}
        lane = count_cases(cases, entries, suites=a.suites if real else None, log=lambda m: None,
                           definitions=None if real else "harness.bench.sensitivity_suite:INSTRUCTION_SUITE")
        if lane["status"] != "ok":
            print(f"instruction lane unavailable: {lane['reason']}")
            return 0
        walls.append(lane["wall_s"])
        runs.append(entries)
        print(f"run {k + 1}/{a.runs}: {lane['wall_s']:.0f}s", flush=True)
    names = [c.name for c in cases if c.name != PLANT_2PCT[1]]
    alarms = detected = 0
    for x, y in zip(runs, runs[1:]):
        flags = [n for n in names if (exact.instructions(x[n], y[n]) or {}).get("verdict") in ("regression", "improvement")]
        alarms += bool(flags)
        if flags:
            print(f"A/A ALARM: {', '.join(flags)}")
        if not real:
            hit = exact.instructions(x[PLANT_2PCT[0]], y[PLANT_2PCT[1]])
            detected += hit["verdict"] == "regression"
            print(f"planted: {hit['reason']} -> {hit['verdict']}")
    print("benchmark | instructions/call | spread within a run (max) | spread across runs")
    for n in names:
        counts = [r[n]["instructions"].get("per_call") for r in runs if r[n]["instructions"].get("status") == "ok"]
        if not counts:
            print(f"{n} | {runs[0][n]['instructions'].get('reason')}")
            continue
        within = max(r[n]["instructions"]["spread"] for r in runs if r[n]["instructions"].get("status") == "ok")
        across = (max(counts) - min(counts)) / record.median(counts)
        print(f"{n} | {record.median(counts):.6g} | {within:.4%} | {across:.4%}")
    pairs = len(runs) - 1
    if not real:
        print(f"planted 2% of executed work: flagged in {detected}/{pairs} run pairs "
              f"(95% lower bound {wilson(detected, pairs)[0]:.0%})")
    print(f"A/A: alarms in {alarms}/{pairs} run pairs (95% upper bound {wilson(alarms, pairs)[1]:.0%}); margin floor "
          f"{exact.MIN_MARGIN:.1%}, {exact.SPREAD_FACTOR:g}x spread")
    print(f"lane wall time per run: median {record.median(walls):.0f}s ({len(cases)} cases)")
    return 0
