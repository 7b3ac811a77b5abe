"""Print a plain-text table of a run record: section x outcome counts and time.

Needs nothing beyond the standard library (used by ``scripts/gpu-check`` on bare machines):
``python -m harness.summary RECORD [--wall SECONDS] [--by-device]``.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict

from harness import record
from harness.errors import HarnessError

COLUMNS = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


def table(rec: dict, by_device: bool = False) -> str:
    rows: dict[tuple, dict] = defaultdict(lambda: dict.fromkeys(COLUMNS + ("time",), 0))
    for t in rec["tests"]:
        key = (t.get("section") or "-",) + ((t.get("device") or "-",) if by_device else ())
        rows[key][t["status"]] += 1
        rows[key]["time"] += t.get("duration", 0.0)
    head = ("section", "device") if by_device else ("section",)
    lines = [" ".join(f"{h:<14}" for h in head) + "".join(f"{c:>9}" for c in COLUMNS) + f"{'time(s)':>9}"]
    total = dict.fromkeys(COLUMNS + ("time",), 0)
    for key in sorted(rows):
        r = rows[key]
        for c in total:
            total[c] += r[c]
        lines.append(" ".join(f"{k:<14}" for k in key) + "".join(f"{r[c]:>9}" for c in COLUMNS) + f"{r['time']:>9.1f}")
    lines.append(" ".join(f"{k:<14}" for k in ("TOTAL",) + ("",) * (len(head) - 1)) +
                 "".join(f"{total[c]:>9}" for c in COLUMNS) + f"{total['time']:>9.1f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.summary", description=__doc__.splitlines()[0])
    p.add_argument("record")
    p.add_argument("--wall", type=float, default=None, help="wall time of the run in seconds, printed last")
    p.add_argument("--by-device", action="store_true")
    a = p.parse_args(argv)
    try:
        rec = record.load(a.record)
    except HarnessError as exc:
        print(f"summary: error: {exc}", file=sys.stderr)
        return 2
    print(table(rec, a.by_device))
    if a.wall is not None:
        print(f"wall time {a.wall:.0f} s; torch {rec['fingerprint'].get('torch', {}).get('version')}; "
              f"devices {','.join(rec.get('devices') or [])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
