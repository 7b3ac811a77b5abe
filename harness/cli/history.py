"""``torchconform history RECORD... | FOLDER``: change-points in each benchmark's series over a history of
run records (the nightly view), found by :mod:`harness.bench.history` (asv's step detection).

Prints one line per step (the first record after it, the step's size) and one per series too short to
fit ("insufficient data"); with ``--out DIR`` also writes ``history.json`` and the reports of the latest
record with the series plotted and the steps marked (index.html). Exit status: 0 analysed (steps or
not), 2 bad input (a missing or corrupt record, asv missing), 3 nothing to analyse (no benchmark
measured in any record).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from harness import options, record
from harness.errors import HarnessError

NOTHING_TO_ANALYSE = 3


def load_records(paths: list[str]) -> list[dict]:
    """Records from files or folders (a folder: every record under it, recursively), each once."""
    from harness.cli.records import load_history

    recs, seen = [], set()
    for p in paths:
        path = Path(p)
        got = load_history(path) if path.is_dir() and not (path / record.RECORD_FILENAME).is_file() \
            else [record.load(path)]
        for r in got:
            if r["run_id"] not in seen:
                seen.add(r["run_id"])
                recs.append(r)
    return sorted(recs, key=lambda r: r.get("created") or "")


def cmd_history(args) -> int:
    from harness.bench import history
    from harness.cli.records import print_paths, write_reports

    if args.min_points < 3:
        raise HarnessError(f"--min-points must be >= 3 (got {args.min_points})")
    recs = load_records(args.records)
    if not recs:
        raise HarnessError("no run records found in " + ", ".join(args.records))
    analysis = history.changepoints(recs, min_points=args.min_points)
    n_series = sum(len(v) for v in analysis["series"].values())
    if n_series == 0:
        print(f"torchconform history: nothing to analyse: no benchmark was measured in the {len(recs)} records",
              file=sys.stderr)
        return NOTHING_TO_ANALYSE
    for line in history.step_lines(analysis):
        print(line)
    n_steps = sum(len(f["steps"]) for v in analysis["series"].values() for f in v.values())
    short = sum(f["status"] != "ok" for v in analysis["series"].values() for f in v.values())
    if args.out:
        out = Path(args.out)
        paths = write_reports(recs[-1], out, history=recs, changes=analysis, plots=not args.no_plots)
        paths["history"] = out / "history.json"
        paths["history"].write_text(json.dumps(record.sanitize(analysis), indent=1) + "\n", encoding="utf-8")
        print_paths(paths)
    print(f"torchconform history: {len(recs)} records, {n_series} series, {n_steps} step(s), "
          f"{short} with insufficient data (fewer than {args.min_points} points)")
    return 0


def add_parser(sub) -> None:
    h = sub.add_parser("history", help="change-points per benchmark over a history of run records (asv step detection)",
                       description="Find steps in each benchmark's series (median time per record, and "
                                   "instructions per call where counted) over RECORDs or a FOLDER of nightly "
                                   "records, oldest first by creation time. Exit 0 analysed, 2 bad input, "
                                   "3 nothing to analyse.")
    h.add_argument("records", nargs="+", metavar="RECORD|FOLDER", help="run records, or folders holding them")
    h.add_argument("--out", default=None, metavar="DIR",
                   help="write history.json and the latest record's reports with the series and steps plotted")
    h.add_argument("--min-points", type=int, default=5, metavar="N",
                   help="a series with fewer points says 'insufficient data' (default 5)")
    options.add_to_argparse(h, (options.NO_PLOTS,))
    h.set_defaults(func=cmd_history)
