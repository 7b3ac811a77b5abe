"""``torchconform bench``: run the benchmark definitions and write a run record with every sample.

Three modes, one measurement loop (:func:`measure_case`):

* ``bench --out DIR``: measure the selected cases in this process; ``DIR/record.json`` is saved
  atomically after every case (``complete: false`` until the end, so an interrupted run keeps
  what it measured).
* ``bench --pair PY_A PY_B --out DIR``: two worker processes (e.g. two venvs' pythons, a baseline
  and a candidate torch) measured alternately, a few samples at a time in ABBA order, so drift of
  the machine hits both sides equally. Writes ``DIR/baseline/record.json``,
  ``DIR/candidate/record.json`` and ``DIR/compare.json``; every benchmark flagged as a regression
  or improvement is measured again (``--confirm-rounds``) and stays flagged only if that agrees.
* ``bench --calibrate K --out DIR``: K runs of this installation against itself, each in a fresh
  worker process, then ``DIR/noise.json``: each benchmark's run-to-run noise and minimum detectable
  effect, which :func:`harness.bench.compare.compare_benchmarks` reads (``noise=``).

Exit status: 0 ok; 1 when some case raised an error (the op is broken: see the record's reasons);
2 for bad input (unknown device, section, bad -k expression, unusable python) as one line on stderr.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

from harness import record as _record
from harness.errors import HarnessError

ERROR_EXIT = 1


# ------------------------------------------------------------------------------------ progress

class Progress:
    """``[done/total] case ... (eta)``: one ``\\r``-rewritten line on a terminal, plain lines otherwise."""

    def __init__(self, total: int, stream=None, enabled: bool = True):
        self.total = total
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)()) and os.environ.get("CI") is None
        self.enabled = enabled
        self.t0 = time.monotonic()
        self.done = 0
        self._width = 0

    def _eta(self) -> str:
        if self.done == 0:
            return "eta ?"
        left = (time.monotonic() - self.t0) / self.done * (self.total - self.done)
        return f"eta {_fmt_duration(left)}"

    def start(self, name: str) -> None:
        if self.enabled and self.tty:
            line = f"[{self.done + 1}/{self.total}] {name} ... ({self._eta()})"
            pad = max(self._width - len(line), 0)
            self._width = len(line)
            self.stream.write("\r" + line + " " * pad)
            self.stream.flush()

    def finish(self, name: str, result: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        line = f"[{self.done}/{self.total}] {name}: {result} ({self._eta()})"
        if self.tty:
            pad = max(self._width - len(line), 0)
            self._width = 0
            self.stream.write("\r" + line + " " * pad + "\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _fmt_duration(s: float) -> str:
    s = int(round(s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def fmt_time(sec: float | None) -> str:
    if sec is None or not math.isfinite(sec):
        return "-"
    for unit, f in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if sec >= f:
            return f"{sec / f:.3g} {unit}"
    return f"{sec / 1e-9:.3g} ns"


# --------------------------------------------------------------------------------- measurement

def measure_case(sides: list, case, cfg) -> list[dict]:
    """Measure one case on every side, alternating sides a few samples at a time.

    Returns one dict per side: ``status`` ('ok', 'skipped', 'error'), ``reason``, ``samples``,
    ``inner_loops`` and timer details. With several sides the inner loop count is the first
    side's, so every side's samples time the same number of calls."""
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
    n = int(infos[0]["inner_loops"])
    chunk = 5 if len(sides) == 1 else 4
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
        if all(c >= cfg.min_samples and t >= cfg.min_time for c, t in zip(counts, spent)):
            break
        if any(c >= cfg.max_samples or t >= cfg.max_time for c, t in zip(counts, spent)):
            break
    for r in results:
        r["inner_loops"] = n
        if len(sides) > 1:
            r["pair_chunk"] = chunk
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
    if result.get("pair_chunk"):
        entry["pair_chunk"] = result["pair_chunk"]
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


# -------------------------------------------------------------------------------------- modes

def run_cases(cases, side, out_path: Path, *, args, devices, cfg, label=None, ceilings=True, log=print,
              progress=True) -> dict:
    """Measure ``cases`` on one side, saving the record at ``out_path`` after every case."""
    hello = side.hello()
    rec = _new_record(hello, args, devices, cfg, "single", label)
    _record.save(rec, out_path)
    _measure_ceilings(side, rec, devices, ceilings, log)
    prog = Progress(len(cases), enabled=progress)
    errors = 0
    for case in cases:
        prog.start(case.name)
        res = measure_case([side], case, cfg)[0]
        entry = make_entry(case, res, threads=hello["threads"], ceilings=rec["ceilings"].get(case.device))
        errors += entry["status"] == "error"
        rec["benchmarks"].append(entry)
        _record.save(rec, out_path)
        prog.finish(case.name, _summary(entry))
    _close_record(rec, out_path, ERROR_EXIT if errors else 0)
    return rec


def run_pair(cases, sides, out: Path, *, args, devices, cfg, alpha=0.01, threshold=0.05, confirm_rounds=1,
             ceilings=True, log=print, progress=True, noise=None) -> tuple[list[dict], list[dict]]:
    """Alternate ``sides`` (baseline, candidate) per case; re-measure flagged cases; compare.
    Returns (records, rows)."""
    from harness.bench.compare import compare_benchmarks, flagged

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
    rows = compare_benchmarks(recs[0], recs[1], alpha=alpha, threshold=threshold, noise=noise)
    for _ in range(max(int(confirm_rounds), 0)):
        todo = [r for r in flagged(rows)
                if r["name"] in by_name and "confirmation" not in _entry_by_name(recs[1], r["name"])]
        if not todo:
            break
        log(f"re-measuring {len(todo)} flagged benchmark(s) to confirm")
        for r in todo:
            case = by_name[r["name"]]
            results = measure_case(sides, case, cfg)
            sub = [dict(rec, benchmarks=[make_entry(case, res, threads=h["threads"], ceilings=None)])
                   for rec, res, h in zip(recs, results, hellos)]
            again = compare_benchmarks(sub[0], sub[1], alpha=alpha, threshold=threshold, noise=noise)
            row2 = again[0] if again else {"verdict": "missing_in_candidate", "ratio": float("nan")}
            _entry_by_name(recs[1], r["name"])["confirmation"] = {
                "verdict": row2["verdict"], "ratio": row2.get("ratio"), "ci_low": row2.get("ci_low"),
                "ci_high": row2.get("ci_high"), "q_value": row2.get("q_value"),
                "samples_baseline": sub[0]["benchmarks"][0]["samples"],
                "samples_candidate": sub[1]["benchmarks"][0]["samples"]}
        rows = compare_benchmarks(recs[0], recs[1], alpha=alpha, threshold=threshold, noise=noise)
    for rec, p in zip(recs, paths):
        _close_record(rec, p, ERROR_EXIT if errors else 0)
    (out / "compare.json").write_text(json.dumps({"alpha": alpha, "threshold": threshold, "rows": rows},
                                                 indent=1, default=float), encoding="utf-8")
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
        gate = "" if r["gating"] else " (advisory)"
        stream.write(f"{r['verdict']:<20} {ratio:>8}  {r['name']}{gate}: {r['reason']}\n")


# ----------------------------------------------------------------------------------------- CLI

def add_arguments(p) -> None:
    from harness import options

    p.add_argument("--out", default=None, help="output folder (default reports/bench; pair: reports/bench-pair; "
                                                 "calibrate: reports/bench-noise)")
    p.add_argument("--device", default="cpu", metavar="DEVICES",
                   help="devices to benchmark: 'cpu' (default), 'cuda', 'all' or a comma-separated list")
    p.add_argument("--tier", default="default", choices=options.TIERS,
                   help="'smoke': first case of each benchmark; 'default'; 'full': adds full-tier benchmarks")
    p.add_argument("-k", dest="keyword", default=None, metavar="EXPR",
                   help="select cases whose id matches EXPR (substrings with and/or/not, as pytest -k)")
    p.add_argument("--section", action="append", default=None, metavar="NAME",
                   help="only this section's benchmarks (repeatable or comma-separated)")
    p.add_argument("--suites", default=None, help="folder holding <section>/bench_*.py (default: the project's suites)")
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
    g = p.add_argument_group("comparison modes")
    g.add_argument("--pair", nargs=2, metavar=("PYTHON_A", "PYTHON_B"), default=None,
                   help="interleave measurements of a baseline (A) and candidate (B) Python installation "
                        "(e.g. two venvs' bin/python) and compare them")
    g.add_argument("--confirm-rounds", type=int, default=1,
                   help="pair mode: re-measure flagged benchmarks this many times before calling them (default 1)")
    g.add_argument("--calibrate", type=int, default=None, metavar="K",
                   help="run this installation K times (fresh processes) and write OUT/noise.json")
    g.add_argument("--noise", default=None, help="pair mode: noise file from --calibrate to mark noisy benchmarks advisory")
    g.add_argument("--alpha", type=float, default=0.01, help="false-alarm rate (FDR across the suite), default 0.01")
    g.add_argument("--threshold", type=float, default=0.05, help="smallest relative change worth flagging, default 0.05")
    g.add_argument("--power", type=float, default=0.9, help="calibration: power of the minimum detectable effect (0.9)")


def _config(args):
    from harness.bench.timer import TimerConfig

    cfg = TimerConfig(l2=args.cuda_l2)
    for attr in ("min_time", "max_time", "min_samples", "block_time"):
        v = getattr(args, attr)
        if v is not None:
            if v <= 0:
                raise HarnessError(f"--{attr.replace('_', '-')} must be positive (got {v})")
            setattr(cfg, attr, v)
    cfg.max_time = max(cfg.max_time, cfg.min_time)
    cfg.max_samples = max(cfg.max_samples, cfg.min_samples)
    return cfg


def cmd_bench(args) -> int:
    from harness import devices as _devices
    from harness.bench.definition import discover
    from harness.bench.select import select_cases

    if args.pair and args.calibrate:
        raise HarnessError("--pair and --calibrate cannot be combined")
    if args.threads is not None and args.threads < 1:
        raise HarnessError(f"--threads must be >= 1 (got {args.threads})")
    if args.calibrate is not None and args.calibrate < 2:
        raise HarnessError(f"--calibrate needs K >= 2 runs (got {args.calibrate})")
    if not (0 < args.alpha < 1) or args.threshold < 0 or not (0 < args.power < 1):
        raise HarnessError("--alpha and --power must be in (0, 1) and --threshold >= 0")
    devs = _devices.resolve(args.device)
    suites = Path(args.suites) if args.suites else None
    if suites is not None and not suites.is_dir():
        raise HarnessError(f"--suites {suites}: no such folder")
    try:
        benchmarks = discover(suites)
    except ValueError as exc:
        raise HarnessError(str(exc)) from None
    cases = select_cases(benchmarks, devs, keyword=args.keyword, sections=args.section, tier=args.tier)
    if args.list:
        for c in cases:
            print(c.name)
        return 0
    if not cases:
        raise HarnessError("no benchmark cases selected (check -k / --section / --tier, or define BENCHMARKS "
                           "in suites/<section>/bench_*.py)")
    cfg = _config(args)
    args.argv = getattr(args, "argv", None) or sys.argv[2:]
    log = (lambda m: None) if args.quiet else (lambda m: print(f"torchconform bench: {m}", flush=True))
    t0 = time.monotonic()
    if args.pair:
        from harness.bench.compare import load_noise
        from harness.bench.sides import WorkerSide

        out = Path(args.out or "reports/bench-pair")
        noise = load_noise(args.noise) if args.noise else None
        sides = []
        try:
            for py in args.pair:
                sides.append(WorkerSide(py, suites=suites, threads=args.threads, config=cfg))
            recs, rows = run_pair(cases, sides, out, args=args, devices=devs, cfg=cfg, alpha=args.alpha,
                                  threshold=args.threshold, confirm_rounds=args.confirm_rounds,
                                  ceilings=not args.no_ceilings, log=log, progress=not args.quiet, noise=noise)
        finally:
            for s in sides:
                s.close()
        print_rows([r for r in rows if r["verdict"] != "unchanged"] or rows[:0])
        n_flag = sum(r["verdict"] == "regression" and r["gating"] for r in rows)
        print(f"torchconform bench: {len(cases)} cases in {_fmt_duration(time.monotonic() - t0)}; "
              f"{n_flag} confirmed gating regression(s); {out / 'compare.json'}")
        return max(r.get("exit_status") or 0 for r in recs)
    if args.calibrate:
        from harness.bench.compare import noise_from_records, save_noise
        from harness.bench.sides import WorkerSide

        out = Path(args.out or "reports/bench-noise")
        recs = []
        for k in range(args.calibrate):
            log(f"calibration run {k + 1}/{args.calibrate}")
            side = WorkerSide(sys.executable, suites=suites, threads=args.threads, config=cfg)
            try:
                recs.append(run_cases(cases, side, out / f"run-{k + 1}" / _record.RECORD_FILENAME, args=args,
                                      devices=devs, cfg=cfg, label=args.label, ceilings=not args.no_ceilings and k == 0,
                                      log=log, progress=not args.quiet))
            finally:
                side.close()
        noise = noise_from_records(recs, alpha=args.alpha, power=args.power, threshold=args.threshold)
        path = save_noise(noise, out / "noise.json")
        adv = [n for n, v in noise["benchmarks"].items() if not v["gating"]]
        for n, v in noise["benchmarks"].items():
            print(f"{'advisory' if not v['gating'] else 'gating':<9} mde {v['mde']:7.1%}  {n}")
        print(f"torchconform bench: noise of {len(noise['benchmarks'])} benchmarks from {args.calibrate} runs in "
              f"{_fmt_duration(time.monotonic() - t0)}; {len(adv)} too noisy to gate at {args.threshold:.0%}; {path}")
        return 0
    from harness.bench.sides import InProcessSide

    out = Path(args.out or "reports/bench")
    side = InProcessSide(suites=suites, threads=args.threads, config=cfg, benchmarks=benchmarks)
    path = out / _record.RECORD_FILENAME
    try:
        rec = run_cases(cases, side, path, args=args, devices=devs, cfg=cfg, label=args.label,
                        ceilings=not args.no_ceilings, log=log, progress=not args.quiet)
    finally:
        side.close()
    n = {s: sum(e["status"] == s for e in rec["benchmarks"]) for s in ("ok", "skipped", "error")}
    print(f"torchconform bench: {n['ok']} measured, {n['skipped']} skipped, {n['error']} errors in "
          f"{_fmt_duration(time.monotonic() - t0)}; record {path}")
    return rec["exit_status"]
