"""The deterministic lane: instructions executed per call of each CPU benchmark case, counted by
Valgrind's callgrind in ONE worker process (:mod:`harness.bench.callgrind` says how and why not
``Timer.collect_callgrind``), filled into the run record's entries (``instructions``) and summarised in
``bench.instructions`` (status, reason, tool, wall seconds: the lane's cost).

``torchconform bench run --instructions [TIER]`` runs it after the wall-time rounds, on the run's CPU
cases of that tier (``smoke`` in a pull-request lane: its cost is about 50x the cases' native time plus
one uninstrumented ``import torch`` under valgrind). Where valgrind is absent every CPU entry says
``skipped`` with the reason, and the comparison falls back to wall time.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from harness.bench.callgrind import DEFAULT_REPEATS, build_control, tool_version, unavailable, wrapper
from harness.bench.sides import WorkerSide


def count_cases(cases, entries: dict, *, suites=None, cfg=None, repeats: int = DEFAULT_REPEATS, log=print,
                progress=None, definitions: str | None = None, overrides: dict | None = None) -> dict:
    """Count instructions for the CPU ``cases`` into ``entries[case.name]["instructions"]``; returns the
    lane's summary (status, reason, tool, wall seconds) for the record's ``bench.instructions``."""
    t0 = time.monotonic()
    cpu = [c for c in cases if c.device == "cpu" and c.name in entries]
    why = unavailable() if cpu else "no CPU case selected (the lane counts CPU cases only)"
    if why is not None:
        for c in cpu:
            entries[c.name]["instructions"] = {"status": "skipped", "reason": why}
        log(why)
        return {"status": "skipped", "reason": why, "tool": None, "wall_s": 0.0}
    with tempfile.TemporaryDirectory(prefix="torchconform-callgrind-") as tmp:
        control = build_control(Path(tmp))
        env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
        side = WorkerSide(sys.executable, suites=suites, threads=1, config=cfg, env=env,
                          wrapper=wrapper(Path(tmp), control),
                          callgrind={"dir": tmp, "control": str(control) if control else None},
                          definitions=definitions, overrides=overrides)
        try:
            for case in cpu:
                if progress is not None:
                    progress.start(case.name)
                entries[case.name]["instructions"] = res = _count_one(side, case, entries[case.name], repeats)
                if progress is not None:
                    progress.finish(case.name, _summary(res))
        finally:
            side.close()
    wall = time.monotonic() - t0
    return {"status": "ok", "reason": None if control else "client-request library not built (gcc or "
            "valgrind/callgrind.h missing): instrumentation on from the start", "tool": tool_version(),
            "wall_s": round(wall, 2)}


def _count_one(side, case, entry: dict, repeats: int) -> dict:
    if not case.bench.runs_in_process(case.params):
        return {"status": "skipped", "reason": "the work runs in other processes, which this lane does not count"}
    r = side.setup(case.bench.full_name, case.params, case.device)
    if r["status"] != "ok":
        return {"status": r["status"], "reason": r["reason"]}
    try:
        w = side.warmup()
        if w["status"] != "ok":
            return {"status": "error", "reason": w["reason"]}
        return side.instructions(repeats, None)
    finally:
        side.release()


def _summary(res: dict) -> str:
    if res.get("status") != "ok":
        return f"{res.get('status')}: {res.get('reason')}"
    return f"{res['per_call']:.6g} instructions/call (spread {res['spread']:.3%}, {len(res['repeats'])}x{res['calls']})"
