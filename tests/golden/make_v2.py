"""Write the issue-15 golden input records (``python -m tests.golden.make_v2``): deterministic (seeded)
schema-version-2 records that exercise both benchmark signals.

* ``signals-baseline.json`` / ``signals-candidate.json``: two sequential ``bench run`` records of the
  same machine, measured in 5 rounds with ceilings probed beside them, with instruction counts and
  counters. In the candidate the machine's copy bandwidth dropped to 55% (every memory-bound case looks
  ~80% slower in raw seconds, the issue's false alarm), ``tensors.softmax`` executes 2.5% more
  instructions (exact regression: blocks) and allocates one more buffer (a counter change: warns),
  ``tensors.matmul`` is compute-bound and 12% slower in wall time with unchanged instructions (a
  wall-time regression with between-run evidence: blocks), and ``data.direct`` has no instruction
  counts (its rule is advisory).
* ``empty.json``: a record with nothing in it (``gate`` exits 3).
* ``history/night-NN.json``: 8 nightly records of one benchmark, 10% slower from night 5 on.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).resolve().parent


def _base_record(run_id: str, created: str, label: str) -> dict:
    rec = json.loads((GOLDEN / "baseline.json").read_text())
    rec.update(run_id=run_id, created=created, finished=created, label=label, tests=[], exit_status=0, manifest=None)
    del rec["manifest"]
    rec["bench"] = {"mode": "single", "threads": 8, "rounds": 5, "probes": {"cpu": []},
                    "instructions": {"status": "ok", "reason": None, "tool": "valgrind-3.19.0", "wall_s": 171.5}}
    rec["benchmarks"] = []
    return rec


def _entry(name, group, kind, median, ceilings, rng, *, ref=None, instructions=None, counters=None, flops=None,
           nbytes=None):
    """``median``: seconds at the reference machine state ``ref`` (a ceiling value); each round's samples
    scale with ref / the ceiling probed beside them (a slower machine, a slower case)."""
    samples = []
    for c in ceilings:
        samples += list(median * (ref / c if c and ref else 1.0) * np.exp(rng.normal(0, 0.004, 5)))
    e = {"name": name, "group": group, "section": group.split(".")[0], "device": "cpu", "params": {},
         "unit": "s", "samples": [round(float(x), 9) for x in samples], "inner_loops": 10, "flops": flops,
         "bytes": nbytes, "items": None, "throughput_unit": None, "threads": 8, "status": "ok", "reason": None,
         "rounds": {"samples": [5] * len(ceilings), "ceiling": [round(c, 3) if c else None for c in ceilings],
                    "ceiling_kind": kind}}
    if instructions is not None:
        e["instructions"] = {"status": "ok", "reason": None, "per_call": instructions,
                             "repeats": [instructions, instructions * 1.0001, instructions], "calls": 20,
                             "spread": 0.0001, "threads": 1, "tool": "callgrind"}
    if counters is not None:
        e["counters"] = counters
    return e


def signals() -> tuple[dict, dict]:
    rng = np.random.default_rng(15)
    out = []
    for side, (bw, fl) in enumerate([((137.0, 140.0, 138.0, 141.0, 139.0), (51.0, 52.0, 51.5, 50.5, 51.0)),
                                      ((76.0, 77.0, 75.5, 76.5, 77.5), (50.0, 51.0, 50.5, 51.5, 50.5))]):
        rec = _base_record(f"signals-{side}", f"2026-05-0{2 + side}T02:00:00+00:00", ("baseline", "candidate")[side])
        rec["bench"]["probes"]["cpu"] = [{"round": i, "gflops": f, "gbps": b} for i, (b, f) in enumerate(zip(bw, fl))]
        softmax_counters = {"dispatcher_calls": 1, "ops": {"aten._softmax.default": 1}, "bytes_allocated": 16777216,
                            "allocations": 1, "graph_nodes": None, "reasons": {}}
        if side:
            softmax_counters = dict(softmax_counters, bytes_allocated=33554432, allocations=2)
        rec["benchmarks"] = [
            _entry("tensors.add[cpu,numel=16777216]", "tensors.elementwise", "gbps", 1.5e-3, bw, rng, ref=137.0,
                   instructions=4.2e6, nbytes=201326592,
                   counters={"dispatcher_calls": 1, "ops": {"aten.add.out": 1}, "bytes_allocated": 0,
                             "allocations": 0, "graph_nodes": None, "reasons": {}}),
            _entry("tensors.softmax[cpu,rows=4096,cols=1024]", "tensors.softmax", "gbps", 4.0e-3, bw, rng, ref=137.0,
                   instructions=3.55e7 * (1.025 if side else 1.0), nbytes=33554432, counters=softmax_counters),
            _entry("tensors.matmul[cpu,n=512]", "tensors.matmul", "gflops", 1.0e-3 * (1.12 if side else 1.0), fl, rng,
                   ref=51.0, instructions=2.9e7, flops=268435456.0),
            _entry("data.direct[cpu,batch=32]", "data.throughput", None, 2.0e-4, [None] * 5, rng),
        ]
        out.append(rec)
    return out[0], out[1]


def nightly() -> list[dict]:
    rng = np.random.default_rng(8)
    recs = []
    for i in range(8):
        rec = _base_record(f"night-{i:02d}", f"2026-05-{10 + i:02d}T02:00:00+00:00", f"night-{i:02d}")
        rec["fingerprint"] = copy.deepcopy(rec["fingerprint"])
        rec["fingerprint"]["torch"]["version"] = f"2.13.0.dev202605{10 + i:02d}"
        level = 1.0e-3 * (1.10 if i >= 5 else 1.0) * float(np.exp(rng.normal(0, 0.01)))
        rec["benchmarks"] = [_entry("tensors.add[cpu,numel=16777216]", "tensors.elementwise", None, level,
                                    [None] * 5, rng)]
        recs.append(rec)
    return recs


def main() -> int:
    base, cand = signals()
    for name, rec in (("signals-baseline", base), ("signals-candidate", cand)):
        (GOLDEN / f"{name}.json").write_text(json.dumps(rec, indent=1) + "\n")
    empty = _base_record("empty-run", "2026-05-04T02:00:00+00:00", "empty")
    (GOLDEN / "empty.json").write_text(json.dumps(empty, indent=1) + "\n")
    (GOLDEN / "history").mkdir(exist_ok=True)
    for rec in nightly():
        (GOLDEN / "history" / f"{rec['run_id']}.json").write_text(json.dumps(rec, indent=1) + "\n")
    print(f"wrote the issue-15 golden records into {GOLDEN}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
