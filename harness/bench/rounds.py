"""One side's benchmark run, interleaved in rounds: the sequential flow's measurement.

``bench run`` (and each ``bench calibrate`` run) measures every selected case once per round, for
``rounds`` rounds spread over the whole run, instead of each case once in one block. Before each round
the machine's ceilings are probed (:class:`harness.bench.timer.CeilingProbe`, NumPy, ~20 ms), so every
case's samples sit beside a measurement of the machine's state at that moment:

* the spread of a case's per-round medians is the run's own evidence of its between-run noise (the
  drift a single block cannot see); :mod:`harness.bench.drift` turns it into a minimum detectable
  effect;
* a memory-bound case's samples can be normalised by the copy bandwidth probed beside them, a
  compute-bound case's by the matmul rate, so a machine that got slower for everyone cancels out.

Each round measures ``1/rounds`` of the time and sample budget (at least 3 samples), with the inner loop
count fixed in the first round so every sample times the same number of calls. The first round also
records the exact counters (:mod:`harness.bench.counters`). The record is saved after every case of every
round (``complete: false`` until the end): an interrupted run keeps what it measured.
"""
from __future__ import annotations

import time
from pathlib import Path

from harness import record as _record
from harness.bench.progress import Progress
from harness.bench.runner import (ERROR_EXIT, _close_record, _measure_ceilings, _new_record, _summary, make_entry,
                                  measure_case)

DEFAULT_ROUNDS = 5


def ceiling_kind(case, ceilings: dict | None) -> str | None:
    """'gbps' for a memory-bound case, 'gflops' for a compute-bound one, None when its definition gives
    neither FLOPs nor bytes (the bound is the roofline's, at the case's own operating point)."""
    counts = case.bench.counts(case.params)
    if not (counts.get("flops") or counts.get("bytes")) or not ceilings:
        return None
    t_f = counts["flops"] / (ceilings["gflops"] * 1e9) if counts.get("flops") and ceilings.get("gflops") else 0.0
    t_b = counts["bytes"] / (ceilings["gbps"] * 1e9) if counts.get("bytes") and ceilings.get("gbps") else 0.0
    if t_f <= 0 and t_b <= 0:
        return None
    return "gflops" if t_f >= t_b else "gbps"


def _accumulate(state: dict, res: dict, round_: int, probe: dict | None, kind: str | None) -> None:
    state.setdefault("samples", [])
    if state.get("status", "ok") != "ok" or res["status"] != "ok":
        if res["status"] != "ok":
            state.update(status=res["status"], reason=res["reason"])
        return
    for key in ("status", "reason", "timer", "l2", "warmup_calls", "inner_loops", "counters"):
        if key in res and (key not in state or round_ == 0):
            state[key] = res[key]
    state["samples"] = state["samples"] + list(res["samples"])
    state["wall_s"] = state.get("wall_s", 0.0) + res.get("wall_s", 0.0)
    rounds = state.setdefault("rounds", {"samples": [], "ceiling": [], "ceiling_kind": kind})
    rounds["samples"].append(len(res["samples"]))
    rounds["ceiling"].append((probe or {}).get(kind) if kind else None)


def run_cases(cases, side, out_path: Path, *, args, devices, cfg, label=None, ceilings=True, log=print,
              progress=True, rounds: int = DEFAULT_ROUNDS, counters: bool = True) -> dict:
    """Measure ``cases`` on one side in ``rounds`` interleaved rounds, saving the record at ``out_path``
    after every case of every round; returns the closed record."""
    rounds = max(int(rounds), 1)
    hello = side.hello()
    rec = _new_record(hello, args, devices, cfg, "single", label)
    rec["bench"]["rounds"] = rounds
    rec["bench"]["probes"] = {d: [] for d in devices}
    _record.save(rec, out_path)
    _measure_ceilings(side, rec, devices, ceilings, log)
    prog = Progress(len(cases), enabled=progress, rounds=rounds)
    states: dict[str, dict] = {}
    slots: dict[str, int] = {}
    for r in range(rounds):
        probes = {}
        for d in devices:
            try:
                probes[d] = side.probe(d)
            except Exception as exc:  # a probe is best effort: that round's cases are then not normalised
                log(f"probe {d} failed in round {r + 1}: {type(exc).__name__}: {exc}")
                probes[d] = {}
            rec["bench"]["probes"][d].append({"round": r, "gflops": probes[d].get("gflops"),
                                              "gbps": probes[d].get("gbps")})
        for case in cases:
            state = states.setdefault(case.name, {})
            if state.get("status", "ok") != "ok":
                continue
            prog.start(case.name, r)
            t0 = time.monotonic()
            res = measure_case([side], case, cfg, inner_loops=state.get("inner_loops"), share=1.0 / rounds,
                               counters=counters and r == 0)[0]
            res["wall_s"] = time.monotonic() - t0
            kind = state.get("rounds", {}).get("ceiling_kind") if r else \
                ceiling_kind(case, rec["ceilings"].get(case.device) or probes.get(case.device))
            _accumulate(state, res, r, probes.get(case.device), kind)
            entry = make_entry(case, state, threads=hello["threads"], ceilings=rec["ceilings"].get(case.device))
            if case.name in slots:
                rec["benchmarks"][slots[case.name]] = entry
            else:
                slots[case.name] = len(rec["benchmarks"])
                rec["benchmarks"].append(entry)
            _record.save(rec, out_path)
            if r == rounds - 1 or entry["status"] != "ok":
                prog.finish(case.name, _summary(entry))
                if entry["status"] != "ok" and r < rounds - 1:
                    prog.chunks += rounds - 1 - r
            else:
                prog.tick()
    errors = sum(e["status"] == "error" for e in rec["benchmarks"])
    _close_record(rec, out_path, ERROR_EXIT if errors else 0)
    return rec
