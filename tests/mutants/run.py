"""Run every planted bug against the suite tests that should catch it; print caught/missed.

    python -m tests.mutants.run [-k SUBSTRING] [--out FILE.json] [--timeout S] [--sections] [--control]
                                [--jobs N] [--tier TIER]

Each mutant runs in its own pytest process (``-p tests.mutants.plant --plant NAME -x``) on its ``paths``
(and ``select`` -k expression) when it has them, else on its whole ``sections``; ``--sections`` runs the
whole owning sections for every mutant (the authoritative, slow run).

Verdicts: *caught* when a test failed a check (AssertionError, harness.checks); *errored* when the first
failure is another exception (a real catch, or the patch itself crashing: read the evidence); *missed*
when everything passed; *broken* when pytest could not run (usage error, nothing collected, a crash);
*timeout*. ``--control`` runs each distinct target once WITHOUT a plant: it must pass (verdict *clean*),
or the catches on it mean nothing.

Thread counts: a mutant whose bug needs several threads (``threads=2``) runs with OMP_NUM_THREADS raised
to at least that, whatever the environment says; the JSON records the value each run had.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECK_ERRORS = ("AssertionError",)


def _command(targets, plant, select, tier, junit):
    cmd = [sys.executable, "-m", "pytest", *targets, "-x", "-q", "-p", "no:cacheprovider", "--tier", tier,
           "-o", "addopts=", "--junit-xml", junit]
    if plant:
        cmd += ["-p", "tests.mutants.plant", "--plant", plant]
    if select:
        cmd += ["-k", select]
    return cmd


def _first_failure(junit: str) -> tuple[str, str, dict]:
    """(node id, message, counts) of the first failed/errored testcase in a junit file."""
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError):
        return "", "", counts
    first = ("", "")
    for case in root.iter("testcase"):
        counts["tests"] += 1
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is None:
                continue
            counts[{"failure": "failures", "error": "errors", "skipped": "skipped"}[tag]] += 1
            if tag != "skipped" and not first[0]:
                node = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name', '')}"
                first = (node, (el.get("message") or (el.text or "")).strip())
    return first[0], first[1], counts


def _verdict(rc: int, message: str, counts: dict) -> str:
    if rc == -1:
        return "timeout"
    if rc == 0:
        return "missed"
    if rc == 1 and message:
        return "caught" if message.split(":", 1)[0].strip() in CHECK_ERRORS else "errored"
    return "broken"  # 2 interrupted (-x never gives 2 on a failure), 3 internal error, 4 usage, 5 nothing collected


def _env(threads: int) -> dict:
    env = dict(os.environ)
    have = env.get("OMP_NUM_THREADS")
    if have is not None and threads > 1 and int(have or 1) < threads:
        env["OMP_NUM_THREADS"] = str(threads)
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def run_target(targets, *, plant=None, select="", threads=1, timeout=600.0, tier="default") -> dict:
    """One pytest process on ``targets`` (with ``plant`` applied when given); the parsed outcome."""
    with tempfile.TemporaryDirectory(prefix="tc-mutant-") as tmp:
        junit = os.path.join(tmp, "junit.xml")
        cmd = _command(targets, plant, select, tier, junit)
        env = _env(threads)
        t0 = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
            rc, out = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired:
            rc, out = -1, ""
        seconds = round(time.monotonic() - t0, 1)
        node, message, counts = _first_failure(junit)
    tail = [ln for ln in out.splitlines() if ln.strip()][-1:] if out else []
    m = re.search(r"(\d+) xpassed", tail[0]) if tail else None
    return {"targets": list(targets), "select": select, "rc": rc, "seconds": seconds,
            "omp_num_threads": env.get("OMP_NUM_THREADS", "unset"), "counts": counts,
            "test": node, "evidence": message.splitlines()[0][:300] if message else "",
            "summary": tail[0][:200] if tail else "", "xpassed": int(m.group(1)) if m else 0}


def run_one(name: str, sections=None, timeout: float = 600.0, *, whole_sections: bool = False,
            tier: str = "default") -> dict:
    """Run mutant ``name`` on its targets (``sections`` overrides them with whole section folders)."""
    from tests.mutants.catalogue import MUTANTS

    m = MUTANTS[name]
    if sections is not None:
        targets, select = tuple(f"suites/{s}" for s in sections), ""
    else:
        targets, select = m.targets(whole_sections), ("" if whole_sections else m.select)
    r = run_target(targets, plant=name, select=select, threads=m.threads, timeout=timeout, tier=tier)
    r["verdict"] = _verdict(r["rc"], r["evidence"], r["counts"])
    return {"name": name, "sections": list(m.sections), "bug": m.bug, **r}


def _control(target, select, timeout, tier) -> dict:
    r = run_target(target, select=select, timeout=timeout, tier=tier)
    r["verdict"] = "clean" if r["rc"] == 0 else ("timeout" if r["rc"] == -1 else "FAILS")
    return {"name": "(no plant)", **r}


def _print(r):
    where = " ".join(r["targets"]) + (f" -k {r['select']!r}" if r["select"] else "")
    xp = f"  ({r['xpassed']} expected failures passed)" if r.get("xpassed") else ""
    print(f"{r['verdict']:>8}  {r['name']:<40} {r['seconds']:>6}s  {where[:70]}{xp}\n"
          f"{'':>10}{r['test'][:110]}  {r['evidence'][:150]}", flush=True)


def main(argv=None) -> int:
    from tests.mutants.catalogue import MUTANTS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-k", default="", help="only these mutants: a name, or comma-separated substrings of names")
    p.add_argument("--out", default=None, help="write the results as JSON")
    p.add_argument("--timeout", type=float, default=600, help="seconds per pytest process")
    p.add_argument("--sections", action="store_true", help="run each mutant on its whole owning sections")
    p.add_argument("--control", action="store_true",
                   help="run each distinct target once without a plant instead (it must pass)")
    p.add_argument("--jobs", type=int, default=1, help="pytest processes at once")
    p.add_argument("--tier", default="default", choices=("smoke", "default", "full"))
    a = p.parse_args(argv)
    keys = [k.strip() for k in a.k.split(",")]
    chosen = [a.k] if a.k in MUTANTS else [n for n in MUTANTS if any(k in n for k in keys)]
    t0 = time.monotonic()
    if a.control:
        jobs = {}
        for n in chosen:
            m = MUTANTS[n]
            jobs.setdefault((m.targets(a.sections), "" if a.sections else m.select), None)
        work = [lambda t=t, s=s: _control(t, s, a.timeout, a.tier) for (t, s) in jobs]
    else:
        work = [lambda n=n: run_one(n, timeout=a.timeout, whole_sections=a.sections, tier=a.tier) for n in chosen]
    rows = []
    with cf.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        for r in pool.map(lambda f: f(), work):
            rows.append(r)
            _print(r)
    wall = round(time.monotonic() - t0, 1)
    verdicts = [r["verdict"] for r in rows]
    if a.control:
        print(f"{verdicts.count('clean')}/{len(rows)} targets pass without a plant ({wall}s)")
    else:
        tally = ", ".join(f"{v} {verdicts.count(v)}" for v in ("caught", "errored", "missed", "broken", "timeout")
                          if verdicts.count(v))
        print(f"caught {verdicts.count('caught')}/{len(rows)} planted bugs ({tally}; {wall}s)")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps({"wall_seconds": wall, "tier": a.tier, "whole_sections": a.sections,
                                           "control": a.control, "results": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
