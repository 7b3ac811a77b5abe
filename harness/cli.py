"""``torchconform``: the command-line face of the harness.

Every user error (missing or corrupt record, unknown device, ...) is printed as one line on
stderr with exit status 2; tracebacks are for bugs in torchconform itself. The CLI never imports
pytest: ``run`` starts pytest in a child process.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from harness import __version__, devices, options, record
from harness.errors import HarnessError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path("reports") / "latest"


def _suites_dir(arg: str | None) -> Path:
    if arg:
        p = Path(arg)
    elif Path("suites").is_dir():
        p = Path("suites")
    else:
        p = PROJECT_ROOT / "suites"
    if not p.is_dir():
        raise HarnessError(f"suites folder not found: {p} (pass --suites PATH)")
    return p


def cmd_run(args) -> int:
    """Run the suites under pytest, write the run record and the three reports."""
    devices.resolve(args.device)  # fail fast, with one clear line, on an unknown/missing device
    out = Path(args.out)
    rec_path = Path(args.record) if args.record else out / record.RECORD_FILENAME
    suites = _suites_dir(args.suites)
    cmd = [sys.executable, "-m", "pytest", str(suites), "-p", "harness.pytest_plugin", "--device", args.device,
           "--tier", args.tier, "--record", str(rec_path), *(["--shard", args.shard] if args.shard else []),
           *(["--policy", args.policy] if args.policy else []),
           *args.pytest_args]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    print("torchconform run:", " ".join(cmd), flush=True)
    started = time.monotonic()
    try:
        rc = subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        rc = 2
    elapsed = time.monotonic() - started
    if not rec_path.exists():
        raise HarnessError(f"pytest exited with status {rc} and wrote no run record at {rec_path}")
    rec = record.load(rec_path)
    paths = _write_reports(rec, out)
    print(f"torchconform: {elapsed:.0f}s; record {rec_path}")
    for kind, p in paths.items():
        print(f"torchconform: {kind} report {p}")
    return 0 if rc == 0 else (1 if rc in (1, 5) else 2)


def _write_reports(rec: dict, out: Path, baseline: dict | None = None) -> dict:
    from harness import report

    return report.write_all(rec, out, baseline=baseline)


def cmd_report(args) -> int:
    """Reports of the last RECORD; several records add their history; --baseline a comparison."""
    from harness import report

    recs = [record.load(p) for p in args.records]
    rec = recs[-1]
    out = Path(args.out) if args.out else record.resolve_path(args.records[-1]).parent
    baseline = record.load(args.baseline) if args.baseline else None
    pol = None
    if baseline is not None:
        from harness import policy

        pol = policy.load(args.policy)
    paths = report.write_all(rec, out, baseline=baseline, policy=pol, history=recs if len(recs) > 1 else None,
                             plots=not args.no_plots)
    for kind, p in paths.items():
        print(f"torchconform: {kind} report {p}")
    return 0


def cmd_compare(args) -> int:
    """Compare CANDIDATE with BASELINE: reports in --out; with --gate, exit 1 on a failed gate."""
    from harness import compare

    return compare.run_command(args, gate=False)


def cmd_gate(args) -> int:
    """The CI gate: one line on stdout, exit 0 pass, 1 fail, 2 error."""
    from harness import compare

    return compare.run_command(args, gate=True)


def cmd_env(args) -> int:
    from harness import fingerprint

    fp = fingerprint.collect()
    if args.json:
        print(json.dumps(fp, indent=2, default=str))
        return 0
    t = fp["torch"]
    rows = [("torch", f"{t.get('version')} (git {str(t.get('git_version'))[:12]}, debug={t.get('debug')})"),
            ("CUDA / cuDNN", f"{t.get('cuda')} / {t.get('cudnn')}"),
            ("driver", (fp.get("driver") or {}).get("driver_version")),
            ("GPUs", ", ".join(g["name"] for g in fp["gpus"]) or "none"),
            ("CPU", f"{fp['cpu']['model']} ({fp['cpu']['logical_cpus']} logical, flags {' '.join(fp['cpu']['flags'])})"),
            ("CPU capability", t.get("cpu_capability")),
            ("threads", f"intra-op {t.get('num_threads')}, inter-op {t.get('num_interop_threads')}"),
            ("devices", ", ".join(devices.available())),
            ("Python", f"{fp['python']['version']} ({fp['python']['executable']})"),
            ("host", fp["hostname"]),
            ("git", (fp.get("git") or {}).get("commit"))]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


def cmd_merge(args) -> int:
    recs = [record.load(p) for p in args.records]
    merged = record.merge(recs, allow_mixed=args.allow_mixed, sources=[str(p) for p in args.records])
    if args.label is not None:
        merged["label"] = args.label
    from harness.compare import mark_mixed

    mixed = mark_mixed(merged, recs)
    if mixed:
        print(f"torchconform: warning: merged records differ in {', '.join(mixed)}; their benchmarks will "
              "only advise", file=sys.stderr)
    path = record.save(merged, args.out)
    print(f"torchconform: merged {len(recs)} records ({len(merged['tests'])} tests) into {path}")
    return 0


def cmd_bench(args) -> int:
    """Benchmarks: single run, --pair interleaving, or --calibrate (see harness/bench/runner.py)."""
    from harness.bench.runner import cmd_bench as _run

    return _run(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="torchconform",
                                description="Conformance and benchmark suite for PyTorch builds: does the torch "
                                            "installed here behave as documented, how fast is it, and what changed "
                                            "against a baseline?")
    p.add_argument("--version", action="version", version=f"torchconform {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    r = sub.add_parser("run", help="run the suites and write a run record plus HTML, Markdown and JUnit reports",
                       description="Run the conformance suites under pytest, then write the run record and "
                                   "the reports (index.html, summary.md, junit.xml) into --out. Extra arguments "
                                   "after -- go to pytest (e.g. -- -k matmul -x).")
    options.add_to_argparse(r)
    r.add_argument("--out", default=str(DEFAULT_OUT), help=f"report folder (default {DEFAULT_OUT})")
    r.add_argument("--record", default=None, help="run record path (default OUT/record.json)")
    r.add_argument("--suites", default=None, help="suites folder (default ./suites or the installed checkout's)")
    r.add_argument("pytest_args", nargs=argparse.REMAINDER, help="arguments passed to pytest after --")
    r.set_defaults(func=cmd_run)

    rep = sub.add_parser("report", help="re-render the reports from a run record",
                         description="Render index.html, summary.md and junit.xml from RECORD (a record.json "
                                     "or the folder holding it).")
    rep.add_argument("records", nargs="+", metavar="RECORD",
                     help="run record(s); the last is reported, several add a per-benchmark history")
    rep.add_argument("--out", default=None, help="report folder (default: the last record's folder)")
    rep.add_argument("--baseline", default=None, metavar="RECORD", help="compare against this run record")
    rep.add_argument("--policy", default=None, metavar="FILE", help="gate policy for --baseline (docs/policy.md)")
    rep.add_argument("--no-plots", action="store_true", help="skip the matplotlib plots")
    rep.set_defaults(func=cmd_report)

    from harness import compare as _compare

    cp = sub.add_parser("compare", help="compare a candidate run with a baseline: what changed, reports",
                        description="Compare CANDIDATE with BASELINE (run records): new failures, fixes, tests "
                                    "that appeared or vanished, precision drift, benchmark ratios with confidence "
                                    "intervals, environment differences; writes index.html, summary.md, "
                                    "junit.xml and comparison.json into --out and prints the gate's verdict line.")
    _compare.add_arguments(cp, gate=False)
    cp.set_defaults(func=cmd_compare)

    g = sub.add_parser("gate", help="CI gate: exit 0 pass, 1 fail, 2 error, with the reason in one line",
                       description="Decide whether CANDIDATE may replace BASELINE under the policy (docs/policy.md): "
                                   "prints one line (GATE PASS/GATE FAIL: reasons) and exits 0 (pass), 1 (fail) or "
                                   "2 (missing or corrupt record, bad policy). --out writes the full reports.")
    _compare.add_arguments(g, gate=True)
    g.set_defaults(func=cmd_gate)

    e = sub.add_parser("env", help="print this machine's environment fingerprint")
    e.add_argument("--json", action="store_true", help="the full fingerprint as JSON")
    e.set_defaults(func=cmd_env)

    m = sub.add_parser("merge", help="merge run records from shards or machines into one",
                       description="Merge records (e.g. shards of one run). Records whose fingerprints differ "
                                   "(torch build, CPU, GPUs, Python) are refused unless --allow-mixed.")
    m.add_argument("records", nargs="+", metavar="RECORD")
    m.add_argument("--out", required=True, help="path of the merged record")
    m.add_argument("--allow-mixed", action="store_true", help="merge even if fingerprints are not comparable")
    m.add_argument("--label", default=None, help="label of the merged record (default: the first record's)")
    m.set_defaults(func=cmd_merge)

    from harness.bench import runner as _bench_runner  # stdlib-only at import; torch loads in cmd_bench

    bn = sub.add_parser("bench", help="run the benchmarks and write a run record with every sample",
                        description="Measure the benchmark definitions (suites/<section>/bench_*.py) and write "
                                    "OUT/record.json; --pair A B interleaves two Python installations and compares "
                                    "them; --calibrate K measures this installation's noise into OUT/noise.json.")
    _bench_runner.add_arguments(bn)
    bn.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "pytest_args", None) and args.pytest_args[0] == "--":
        args.pytest_args = args.pytest_args[1:]
    try:
        return int(args.func(args) or 0)
    except HarnessError as exc:
        print(f"torchconform: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("torchconform: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
