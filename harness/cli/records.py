"""Commands on run records: ``report``, ``compare``, ``gate``, ``merge``, ``env``, ``summary``, and
:func:`write_reports`, the one place reports and comparisons are written to files.

``compare`` and ``gate`` load both records and the policy, ask :func:`harness.gate.evaluate` for the
comparison and its verdict, and write the reports; ``report --baseline`` does the same for a report.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from harness import options, record
from harness.errors import HarnessError, RecordError

DEFAULT_COMPARE_OUT = Path("reports") / "compare"


# ---------------------------------------------------------------------------------------- report

def write_reports(rec: dict, out: str | Path, *, comparison: dict | None = None, history: list[dict] | None = None,
                  plots: bool = True, changes: dict | None = None) -> dict[str, Path]:
    """index.html, summary.md and junit.xml of ``rec`` into ``out`` (created), plus comparison.json
    with a comparison; returns {kind: path}. ``changes``: the history's change-points
    (:func:`harness.bench.history.changepoints`), computed here from ``history`` when not given."""
    from harness import report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if history and changes is None:
        changes = _changepoints(history, rec)
    texts = report.render_all(rec, comparison=comparison, history=history, plots=plots, changes=changes)
    paths = {}
    for kind, text in texts.items():
        paths[kind] = out / report.FILENAMES[kind]
        paths[kind].write_text(text, encoding="utf-8")
    if comparison is not None:
        paths["comparison"] = out / "comparison.json"
        paths["comparison"].write_text(json.dumps(record.sanitize(comparison), indent=1, default=str) + "\n",
                                       encoding="utf-8")
    return paths


def _changepoints(history: list[dict], rec: dict) -> dict | None:
    """The change-points of ``history`` (with ``rec``), or None where asv's step detection is missing."""
    from harness.bench.history import changepoints

    ids = {h.get("run_id") for h in history}
    try:
        return changepoints(list(history) + ([rec] if rec.get("run_id") not in ids else []))
    except HarnessError:
        return None


def print_paths(paths: dict, stream=None) -> None:
    for kind, p in paths.items():
        print(f"torchconform: {kind} report {p}", file=stream or sys.stdout)



def cmd_report(args) -> int:
    """Reports of the last RECORD; several records add their history; --baseline a comparison."""
    recs = [record.load(p) for p in args.records]
    rec = recs[-1]
    out = Path(args.out) if args.out else record.resolve_path(args.records[-1]).parent
    cmp = None
    if args.baseline:
        from harness import gate, policy

        cmp = gate.evaluate(record.load(args.baseline), rec, policy.load(args.policy))
    print_paths(write_reports(rec, out, comparison=cmp, history=recs if len(recs) > 1 else None,
                              plots=not args.no_plots))
    return 0


# ---------------------------------------------------------------------------------------- compare / gate

def load_history(folder) -> list[dict]:
    """Every valid run record under ``folder`` (``*.json`` and ``*/record.json``, recursively),
    oldest first; files that are not run records are skipped with a note on stderr."""
    root = Path(folder)
    if not root.is_dir():
        raise HarnessError(f"{root}: --history needs a folder of run records")
    recs, seen = [], set()
    for path in sorted(root.rglob("*.json")):
        try:
            rec = record.load(path)
        except RecordError as exc:
            print(f"torchconform: note: skipping {exc}", file=sys.stderr)
            continue
        if rec["run_id"] not in seen:
            seen.add(rec["run_id"])
            recs.append(rec)
    return sorted(recs, key=lambda r: r.get("created") or "")


def compare_or_gate(args, *, gate: bool) -> int:
    """``compare`` (reports; with ``--gate`` also the exit status) and ``gate`` (one line on stdout,
    exit 0 pass / 1 fail; reports only with ``--out``)."""
    from harness import gate as _gate, policy
    from harness.bench.noise import load_noise

    base = record.load(args.baseline)
    cand = record.load(args.candidate)
    pol = policy.load(args.policy, manifests=args.manifest or ())
    noise = load_noise(args.noise) if args.noise else None
    history = load_history(args.history) if getattr(args, "history", None) else None
    cmp = _gate.evaluate(base, cand, pol, noise=noise, history=history)
    if history is not None:
        ids = {r["run_id"] for r in history}
        history = history + [r for r in (base, cand) if r["run_id"] not in ids]
    if args.out:
        paths = write_reports(cand, args.out, comparison=cmp, history=history, plots=not args.no_plots)
        print_paths(paths, sys.stderr if gate else sys.stdout)
    print(cmp["gate"]["line"], flush=True)
    return _gate.exit_status(cmp, gate=gate or getattr(args, "gate", False))


def cmd_compare(args) -> int:
    """Compare CANDIDATE with BASELINE: reports in --out; with --gate, exit 1 on a failed gate."""
    return compare_or_gate(args, gate=False)


def cmd_gate(args) -> int:
    """The CI gate: one line on stdout, exit 0 pass, 1 fail, 2 error."""
    return compare_or_gate(args, gate=True)


# ---------------------------------------------------------------------------------------- merge / env / summary

def cmd_merge(args) -> int:
    from harness.fingerprint import mixed_keys
    from harness.merge import merge

    recs = [record.load(p) for p in args.records]
    merged = merge(recs, allow_mixed=args.allow_mixed, sources=[str(p) for p in args.records])
    if args.label is not None:
        merged["label"] = args.label
    mixed = mixed_keys([r.get("fingerprint") or {} for r in recs])
    if mixed:
        print(f"torchconform: warning: merged records differ in {', '.join(mixed)}; their benchmarks will "
              "only advise", file=sys.stderr)
    if any(r.get("coverage") for r in recs) and "coverage" not in merged:
        print("torchconform: warning: the records' coverage is of different torch builds and was not merged",
              file=sys.stderr)
    path = record.save(merged, args.out)
    print(f"torchconform: merged {len(recs)} records ({len(merged['tests'])} tests) into {path}")
    return 0


def cmd_env(args) -> int:
    from harness import devices, fingerprint

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


SUMMARY_COLUMNS = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


def summary_table(rec: dict, by_device: bool = False) -> str:
    """A plain-text table of a record: section (x device) x outcome counts and time (the report's
    section table; needs neither Jinja2 nor matplotlib)."""
    from harness.report.model import section_table

    rows = section_table(rec["tests"], by_device=by_device)
    head = ("section", "device") if by_device else ("section",)
    lines = [" ".join(f"{h:<14}" for h in head) + "".join(f"{c:>9}" for c in SUMMARY_COLUMNS) + f"{'time(s)':>9}"]
    total = dict.fromkeys(SUMMARY_COLUMNS + ("duration",), 0)
    for r in rows:
        for c in total:
            total[c] += r[c]
        lines.append(" ".join(f"{r[h]:<14}" for h in head) + "".join(f"{r[c]:>9}" for c in SUMMARY_COLUMNS)
                     + f"{r['duration']:>9.1f}")
    lines.append(" ".join(f"{k:<14}" for k in ("TOTAL",) + ("",) * (len(head) - 1)) +
                 "".join(f"{total[c]:>9}" for c in SUMMARY_COLUMNS) + f"{total['duration']:>9.1f}")
    return "\n".join(lines)


def cmd_summary(args) -> int:
    rec = record.load(args.record)
    print(summary_table(rec, args.by_device))
    if args.wall is not None:
        print(f"wall time {args.wall:.0f} s; torch {rec['fingerprint'].get('torch', {}).get('version')}; "
              f"devices {','.join(rec.get('devices') or [])}")
    return 0


# ---------------------------------------------------------------------------------------- parsers

def _compare_arguments(parser, *, gate: bool) -> None:
    parser.add_argument("baseline", metavar="BASELINE", help="the baseline run record (record.json or its folder)")
    parser.add_argument("candidate", metavar="CANDIDATE", help="the candidate run record")
    options.add_to_argparse(parser, (options.POLICY, options.MANIFEST, options.NOISE))
    parser.add_argument("--history", default=None, metavar="DIR",
                        help="folder of earlier run records of this machine: between-run evidence for the benchmarks "
                             "(and, with reports, per-benchmark history plots)")
    if gate:
        parser.add_argument("--out", default=None, metavar="DIR",
                            help="also write index.html, summary.md, junit.xml and comparison.json here")
    else:
        parser.add_argument("--out", default=str(DEFAULT_COMPARE_OUT), metavar="DIR",
                            help="report folder (default reports/compare)")
        parser.add_argument("--gate", action="store_true",
                            help="exit 1 when the gate fails (as `torchconform gate` does)")
    options.add_to_argparse(parser, (options.NO_PLOTS,))


def add_parsers(sub) -> None:
    rep = sub.add_parser("report", help="re-render the reports from a run record",
                         description="Render index.html, summary.md and junit.xml from RECORD (a record.json "
                                     "or the folder holding it).")
    rep.add_argument("records", nargs="+", metavar="RECORD",
                     help="run record(s); the last is reported, several add a per-benchmark history")
    rep.add_argument("--out", default=None, help="report folder (default: the last record's folder)")
    rep.add_argument("--baseline", default=None, metavar="RECORD", help="compare against this run record")
    options.add_to_argparse(rep, (options.POLICY, options.NO_PLOTS))
    rep.set_defaults(func=cmd_report)

    cp = sub.add_parser("compare", help="compare a candidate run with a baseline: what changed, reports",
                        description="Compare CANDIDATE with BASELINE (run records): new failures, fixes, tests "
                                    "that appeared or vanished, precision drift, benchmark ratios with confidence "
                                    "intervals, environment differences; writes index.html, summary.md, "
                                    "junit.xml and comparison.json into --out and prints the gate's verdict line. "
                                    "Exit 1 when the candidate regressed (a new failure or a benchmark "
                                    "regression), with --gate when the gate fails.")
    _compare_arguments(cp, gate=False)
    cp.set_defaults(func=cmd_compare)

    g = sub.add_parser("gate", help="CI gate: exit 0 pass, 1 fail, 2 error, 3 nothing compared, with the reason in one line",
                       description="Decide whether CANDIDATE may replace BASELINE under the policy (docs/policy.md): "
                                   "prints one line (GATE PASS/GATE FAIL: reasons) and exits 0 (pass), 1 (fail), "
                                   "2 (missing or corrupt record, bad policy) or 3 (nothing compared: an empty record, "
                                   "or no test and no benchmark in both). --out writes the full reports.")
    _compare_arguments(g, gate=True)
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

    s = sub.add_parser("summary", help="print a plain-text table of a run record (section x outcome, time)",
                       description="Section x outcome counts and time of RECORD as plain text: needs no Jinja2 or "
                                   "matplotlib (scripts/gpu-check uses it on bare GPU machines).")
    s.add_argument("record", metavar="RECORD")
    s.add_argument("--wall", type=float, default=None, help="wall time of the run in seconds, printed last")
    s.add_argument("--by-device", action="store_true", help="one row per section and device")
    s.set_defaults(func=cmd_summary)
