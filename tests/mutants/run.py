"""Run every planted bug against the suite sections that should catch it; print caught/missed.

    python -m tests.mutants.run [-k SUBSTRING] [--out FILE.json] [--timeout S]

A mutant is *caught* when pytest exits 1 (tests failed) on its sections, *missed* when they pass,
and *broken* on any other exit (the mutant itself crashed the session).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_one(name: str, sections, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "pytest", *[f"suites/{s}" for s in sections], "-p", "tests.mutants.plant",
           "--plant", name, "-x", "-q", "-p", "no:cacheprovider", "--tier", "default", "-o", "addopts="]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        rc, out = proc.returncode, proc.stdout
    except subprocess.TimeoutExpired:
        rc, out = -1, ""
    first_fail = next((ln for ln in out.splitlines() if ln.startswith("FAILED") or ln.startswith("ERROR")), "")
    verdict = {1: "caught", 0: "missed"}.get(rc, "broken" if rc != -1 else "timeout")
    return {"name": name, "sections": list(sections), "verdict": verdict, "rc": rc,
            "seconds": round(time.monotonic() - t0, 1), "evidence": first_fail[:200]}


def main(argv=None) -> int:
    from tests.mutants.catalogue import MUTANTS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-k", default="", help="only mutants whose name contains this")
    p.add_argument("--out", default=None, help="write the results as JSON")
    p.add_argument("--timeout", type=float, default=600)
    a = p.parse_args(argv)
    rows = []
    for name, m in MUTANTS.items():
        if a.k not in name:
            continue
        r = run_one(name, m.sections, a.timeout)
        r["bug"] = m.bug
        rows.append(r)
        print(f"{r['verdict']:>8}  {name:<36} {','.join(m.sections):<22} {r['seconds']:>6}s  {r['evidence'][:90]}", flush=True)
    caught = sum(r["verdict"] == "caught" for r in rows)
    print(f"caught {caught}/{len(rows)} planted bugs")
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
