"""``torchconform bench run | pair | calibrate``: measure the benchmark definitions
(``suites/<section>/bench_*.py``) into run records.

* ``bench run --out DIR``: the selected cases in this process, interleaved in ``--rounds`` rounds with the
  machine's ceilings probed beside each (the between-run evidence of the sequential flow), exact
  counters per case, and with ``--instructions [TIER]`` the deterministic lane (instruction counts under
  callgrind, :mod:`harness.bench.callgrind`) on the CPU cases of that tier; ``DIR/record.json``.
* ``bench pair PY_A PY_B --out DIR``: two Python installations (e.g. two venvs' pythons, a baseline and a
  candidate torch) measured alternately; ``DIR/baseline/record.json``, ``DIR/candidate/record.json`` and
  ``DIR/compare.json``. Verdicts come from the policy, as at ``torchconform gate``: each benchmark is judged
  with its rule's threshold and alpha (``--policy``, default the checkout's), and a regression gates only
  where the rule does and the benchmark's noise allows detecting the threshold.
* ``bench calibrate K --out DIR``: K runs of this installation, each in a fresh worker process, then
  ``DIR/noise.json`` (each benchmark's run-to-run noise and minimum detectable effect).

``bench --pair A B`` and ``bench --calibrate K`` still work, with a deprecation line on stderr.
Exit status: 0 ok; 1 when some case raised an error (the op is broken: see the record's reasons);
2 for bad input (unknown device, section, bad -k expression, unusable python) as one line on stderr;
3 when nothing was measured (every selected case skipped).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from harness import options, record
from harness.bench.progress import fmt_duration
from harness.cli.parsing import Parser
from harness.errors import HarnessError


def _config(args):
    from harness.bench.timer import TimerConfig

    cfg = TimerConfig(l2=args.cuda_l2)
    for attr in ("min_time", "max_time", "min_samples", "block_time"):
        v = getattr(args, attr)
        if v is not None:
            if v <= 0:
                raise HarnessError(f"--{attr.replace('_', '-')} must be positive (got {v})")
            setattr(cfg, attr, v)
    if getattr(args, "rounds", 1) < 1:
        raise HarnessError(f"--rounds must be >= 1 (got {args.rounds})")
    if getattr(args, "instruction_repeats", 2) < 2:
        raise HarnessError(f"--instruction-repeats must be >= 2 (got {args.instruction_repeats})")
    cfg.max_time = max(cfg.max_time, cfg.min_time)
    cfg.max_samples = max(cfg.max_samples, cfg.min_samples)
    return cfg


def _select(args):
    """(devices, suites folder, benchmark definitions, cases) for the command's selection options."""
    from harness import devices as _devices
    from harness.bench.cases import select_cases
    from harness.bench.definition import discover

    if args.threads is not None and args.threads < 1:
        raise HarnessError(f"--threads must be >= 1 (got {args.threads})")
    devs = _devices.resolve(args.device)
    suites = Path(args.suites) if args.suites else None
    if suites is not None and not suites.is_dir():
        raise HarnessError(f"--suites {suites}: no such folder")
    try:
        benchmarks = discover(suites)
    except ValueError as exc:
        raise HarnessError(str(exc)) from None
    cases = select_cases(benchmarks, devs, keyword=args.keyword, sections=args.section, tier=args.tier)
    return devs, suites, benchmarks, cases


def _prepare(args):
    devs, suites, benchmarks, cases = _select(args)
    if args.list:
        for c in cases:
            print(c.name)
        return None
    if not cases:
        raise HarnessError("no benchmark cases selected (check -k / --section / --tier, or define BENCHMARKS "
                           "in suites/<section>/bench_*.py)")
    args.argv = getattr(args, "argv", None) or sys.argv[2:]
    log = (lambda m: None) if args.quiet else (lambda m: print(f"torchconform bench: {m}", flush=True))
    return devs, suites, benchmarks, cases, _config(args), log


NOTHING_MEASURED = 3


def _instruction_lane(args, rec, path, benchmarks, suites, cfg, log) -> None:
    """``--instructions [TIER]``: count instructions of the run's CPU cases in that tier; the counts go
    into the record's entries, the lane's summary (and wall time) into ``bench.instructions``."""
    from harness.bench.instructions import count_cases
    from harness.bench.cases import select_cases
    from harness.bench.progress import Progress

    tier = args.tier if args.instructions == "same" else args.instructions
    cases = select_cases(benchmarks, ["cpu"], keyword=args.keyword, sections=args.section, tier=tier)
    entries = {e["name"]: e for e in rec["benchmarks"] if e["status"] == "ok"}
    cases = [c for c in cases if c.name in entries]
    log(f"instruction lane (callgrind): {len(cases)} CPU cases of tier {tier}")
    prog = Progress(len(cases), enabled=not args.quiet)
    rec["bench"]["instructions"] = count_cases(cases, entries, suites=suites, cfg=cfg, log=log, progress=prog,
                                               repeats=args.instruction_repeats)
    record.save(rec, path)


def cmd_run(args) -> int:
    prepared = _prepare(args)
    if prepared is None:
        return 0
    devs, suites, benchmarks, cases, cfg, log = prepared
    from harness.bench.rounds import run_cases
    from harness.bench.sides import InProcessSide

    t0 = time.monotonic()
    out = Path(args.out or "reports/bench")
    side = InProcessSide(suites=suites, threads=args.threads, config=cfg, benchmarks=benchmarks)
    path = out / record.RECORD_FILENAME
    try:
        rec = run_cases(cases, side, path, args=args, devices=devs, cfg=cfg, label=args.label,
                        ceilings=not args.no_ceilings, log=log, progress=not args.quiet, rounds=args.rounds,
                        counters=not args.no_counters)
    finally:
        side.close()
    t_wall = time.monotonic() - t0
    if args.instructions:
        _instruction_lane(args, rec, path, benchmarks, suites, cfg, log)
    n = {s: sum(e["status"] == s for e in rec["benchmarks"]) for s in ("ok", "skipped", "error")}
    lane = (rec["bench"].get("instructions") or {})
    counted = sum((e.get("instructions") or {}).get("status") == "ok" for e in rec["benchmarks"])
    extra = (f"; instructions of {counted} cases in {fmt_duration(lane.get('wall_s') or 0)}"
             if lane.get("status") == "ok" else (f"; instruction lane skipped: {lane['reason']}" if lane else ""))
    print(f"torchconform bench: {n['ok']} measured, {n['skipped']} skipped, {n['error']} errors in "
          f"{fmt_duration(t_wall)} ({args.rounds} rounds){extra}; record {path}")
    if n["ok"] == 0 and not n["error"]:
        print("torchconform bench: nothing was measured (every selected case skipped)", file=sys.stderr)
        return NOTHING_MEASURED
    return rec["exit_status"]


def judge_with(pol, noise):
    """``judge(baseline, candidate) -> benchmark rows`` under policy ``pol``: the gate's own path."""
    from harness import gate

    return lambda baseline, candidate: gate.evaluate(baseline, candidate, pol, noise=noise)["benchmarks"]


def cmd_pair(args) -> int:
    if args.alpha is not None or args.threshold is not None:
        raise HarnessError("--alpha/--threshold no longer apply to bench pair: its verdicts follow the policy "
                           "([benchmarks] default and rules, docs/policy.md); pass --policy FILE")
    from harness import policy
    from harness.bench.noise import load_noise

    pol = policy.load(args.policy)
    noise = load_noise(args.noise) if args.noise else (load_noise(pol.bench_noise) if pol.bench_noise else None)
    prepared = _prepare(args)
    if prepared is None:
        return 0
    devs, suites, _, cases, cfg, log = prepared
    from harness.bench.runner import print_rows, run_pair
    from harness.bench.sides import WorkerSide

    t0 = time.monotonic()
    out = Path(args.out or "reports/bench-pair")
    sides = []
    try:
        for py in args.pythons:
            sides.append(WorkerSide(py, suites=suites, threads=args.threads, config=cfg))
        recs, rows = run_pair(cases, sides, out, args=args, devices=devs, cfg=cfg, judge=judge_with(pol, noise),
                              confirm_rounds=args.confirm_rounds, ceilings=not args.no_ceilings, log=log,
                              progress=not args.quiet)
    finally:
        for s in sides:
            s.close()
    (out / "compare.json").write_text(json.dumps({"policy": pol.source, "rows": rows}, indent=1, default=float),
                                      encoding="utf-8")
    print_rows([r for r in rows if r["verdict"] != "unchanged"])
    n_flag = sum(r["verdict"] == "regression" and r["gating"] for r in rows)
    print(f"torchconform bench: {len(cases)} cases in {fmt_duration(time.monotonic() - t0)}; "
          f"{n_flag} confirmed gating regression(s) under {pol.source}; {out / 'compare.json'}")
    return max(r.get("exit_status") or 0 for r in recs)


def cmd_calibrate(args) -> int:
    if args.runs < 2:
        raise HarnessError(f"calibrate needs K >= 2 runs (got {args.runs})")
    if not (0 < args.alpha < 1) or args.threshold < 0 or not (0 < args.power < 1):
        raise HarnessError("--alpha and --power must be in (0, 1) and --threshold >= 0")
    prepared = _prepare(args)
    if prepared is None:
        return 0
    devs, suites, _, cases, cfg, log = prepared
    from harness.bench.noise import noise_from_records, save_noise
    from harness.bench.rounds import run_cases
    from harness.bench.sides import WorkerSide

    t0 = time.monotonic()
    out = Path(args.out or "reports/bench-noise")
    recs = []
    for k in range(args.runs):
        log(f"calibration run {k + 1}/{args.runs}")
        side = WorkerSide(sys.executable, suites=suites, threads=args.threads, config=cfg)
        try:
            recs.append(run_cases(cases, side, out / f"run-{k + 1}" / record.RECORD_FILENAME, args=args,
                                  devices=devs, cfg=cfg, label=args.label, ceilings=not args.no_ceilings and k == 0,
                                  log=log, progress=not args.quiet, rounds=args.rounds, counters=False))
        finally:
            side.close()
    noise = noise_from_records(recs, alpha=args.alpha, power=args.power, threshold=args.threshold)
    path = save_noise(noise, out / "noise.json")
    undetectable = [n for n, v in noise["benchmarks"].items() if not v["detectable"]]
    for n, v in noise["benchmarks"].items():
        print(f"{'detectable' if v['detectable'] else 'too noisy':<10} mde {v['mde']:7.1%}  {n}")
    print(f"torchconform bench: noise of {len(noise['benchmarks'])} benchmarks from {args.runs} runs in "
          f"{fmt_duration(time.monotonic() - t0)}; {len(undetectable)} cannot detect {args.threshold:.0%}; {path}")
    return 0


def _rounds_option(p) -> None:
    p.add_argument("--rounds", type=int, default=5, metavar="R",
                   help="measure every case once per round, R rounds spread over the run, with the machine's "
                        "ceilings probed beside each round (default 5; 1: one block per case, no between-run evidence)")


def _common(p) -> None:
    p.add_argument("--out", default=None, help="output folder (default reports/bench; pair: reports/bench-pair; "
                                                 "calibrate: reports/bench-noise)")
    options.add_to_argparse(p, (options.DEVICE, options.TIER, options.SUITES))
    p.add_argument("-k", dest="keyword", default=None, metavar="EXPR",
                   help="select cases whose id matches EXPR (substrings with and/or/not, as pytest -k)")
    p.add_argument("--section", action="append", default=None, metavar="NAME",
                   help="only this section's benchmarks (repeatable or comma-separated)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads for CPU timing (default: torch's default here); recorded")
    p.add_argument("--min-time", type=float, default=None, help="measured seconds per case (default 0.3: at 0.3 s a planted 10%% slowdown was flagged in 40/40 trials here, at 0.1 s in 34/40)")
    p.add_argument("--max-time", type=float, default=None, help="cap on measured seconds per case (default 2)")
    p.add_argument("--min-samples", type=int, default=None, help="samples per case at least (default 15)")
    p.add_argument("--block-time", type=float, default=None,
                   help="seconds each sample's block of calls lasts at least (default 0.01)")
    p.add_argument("--cuda-l2", choices=("warm", "flush"), default="warm",
                   help="CUDA: keep L2 warm between calls (default) or flush it before every one-call sample")
    p.add_argument("--no-ceilings", action="store_true", help="skip measuring the machine's GFLOP/s and GB/s ceilings")

    p.add_argument("--label", default=None, help="free-form name of this installation, stored in the record")
    p.add_argument("--list", action="store_true", help="list the selected case ids and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-case progress lines")


def add_parser(sub) -> None:
    bn = sub.add_parser("bench", help="run the benchmarks (run | pair | calibrate) into run records with every sample",
                        description="Measure the benchmark definitions (suites/<section>/bench_*.py). "
                                    "`bench run` (the default) writes OUT/record.json; `bench pair A B` interleaves "
                                    "two Python installations and judges them under the policy; `bench calibrate K` "
                                    "measures this installation's noise into OUT/noise.json.")
    modes = bn.add_subparsers(dest="mode", metavar="MODE", parser_class=Parser)
    modes.required = True
    r = modes.add_parser("run", help="measure this installation (the default mode)")
    _common(r)
    _rounds_option(r)
    r.add_argument("--no-counters", action="store_true",
                   help="skip the exact counters (dispatcher calls, bytes allocated, graph nodes) per case")
    r.add_argument("--instructions", nargs="?", const="same", default=None, choices=("same", "smoke", "default", "full"),
                   metavar="TIER", help="also count instructions per call under callgrind for the CPU cases of TIER "
                                        "(default: the run's tier); about 50x slower than the wall-time run per case, so "
                                        "a pull-request lane uses `--instructions smoke` (docs/ci.md)")
    r.add_argument("--instruction-repeats", type=int, default=3, metavar="K",
                   help="counted repeats per case (their spread sets the case's noise margin; default 3)")
    r.set_defaults(func=cmd_run)
    pr = modes.add_parser("pair", help="interleave a baseline (A) and candidate (B) Python installation and judge them")
    pr.add_argument("pythons", nargs=2, metavar="PYTHON",
                    help="the baseline's and the candidate's python (e.g. two venvs' bin/python)")
    _common(pr)
    options.add_to_argparse(pr, (options.POLICY, options.NOISE))
    pr.add_argument("--confirm-rounds", type=int, default=1,
                    help="re-measure flagged benchmarks this many times before calling them (default 1)")
    pr.add_argument("--alpha", type=float, default=None, help=argparse.SUPPRESS)
    pr.add_argument("--threshold", type=float, default=None, help=argparse.SUPPRESS)
    pr.set_defaults(func=cmd_pair)
    c = modes.add_parser("calibrate", help="run this installation K times and write OUT/noise.json")
    c.add_argument("runs", type=int, metavar="K", help="number of runs, each in a fresh process (>= 2; 3 or more advised)")
    _common(c)
    _rounds_option(c)
    c.add_argument("--alpha", type=float, default=0.01, help="false-alarm rate of the detectable effect (0.01)")
    c.add_argument("--threshold", type=float, default=0.05, help="the change a benchmark should detect (0.05)")
    c.add_argument("--power", type=float, default=0.9, help="power of the minimum detectable effect (0.9)")
    c.set_defaults(func=cmd_calibrate)
