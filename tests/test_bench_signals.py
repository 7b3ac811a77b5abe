"""Benchmark signals of the sequential flow (issue 15): between-run evidence and normalisation
(harness.bench.drift), exact instruction counts and counters (harness.bench.exact), how the two signals
combine into one verdict (harness.bench.significance) and what the gate makes of them, including exit
status 3 when nothing was compared. Synthetic records: no timing, no valgrind."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from harness import gate, merge, policy, record
from harness.bench import drift, exact, significance
from harness.cli import main
from tests.conftest import make_record


def entry(name="tensors.add[cpu]", samples=None, *, rounds=None, ceiling=None, kind="gbps", instructions=None,
          counters=None, group="tensors.add"):
    e = {"name": name, "group": group, "section": name.split(".")[0], "device": "cpu", "samples": list(samples)}
    if rounds:
        e["rounds"] = {"samples": rounds, "ceiling": ceiling or [None] * len(rounds),
                       "ceiling_kind": kind if ceiling else None}
    if instructions is not None:
        e["instructions"] = instructions
    if counters is not None:
        e["counters"] = counters
    return e


def noisy(median, n=20, rel=0.003, seed=0):
    return list(median * np.exp(np.random.default_rng(seed).normal(0, rel, n)))


def rec(*entries, tests=None):
    return make_record(tests=tests if tests is not None else [], benchmarks=list(entries))


def row(base, cand, **kw):
    (r,) = significance.compare_benchmarks(base, cand, n_boot=500, **kw)
    return r


def ins(per_call, spread=0.0005):
    return {"status": "ok", "per_call": per_call, "repeats": [per_call] * 3, "calls": 10, "spread": spread}


# ------------------------------------------------------------------------ between-run evidence


def test_sequential_records_without_evidence_only_advise():
    """A +12% slowdown between two one-block runs is a regression by the numbers, but nothing says how
    much the machine moves between runs: not detectable, and the gate names why (a torch that is 12%
    slower still shows up, as an advisory regression, not as a pass without comment)."""
    base, cand = rec(entry(samples=noisy(1e-3))), rec(entry(samples=noisy(1.12e-3, seed=1)))
    r = row(base, cand)
    assert r["verdict"] == "regression" and r["signal"] == "wall"
    assert r["between_run"] == {"sigma_log": None, "sources": {}} and "no between-run evidence" in r["reason"]
    cmp = gate.evaluate(base, cand, policy.default())
    (g,) = cmp["benchmarks"]
    assert not g["gating"] and not g["detectable"] and g["advisory_reason"] == "no between-run evidence"
    assert cmp["gate"]["verdict"] == "PASS" and any("no between-run evidence" in w for w in cmp["gate"]["warnings"])
    assert any("advisory regression" in w for w in cmp["gate"]["warnings"])


def test_rounds_give_evidence_and_a_slowdown_gates():
    """Both runs measured in 5 rounds whose medians agree to ~0.3%: the 12% slowdown is detectable and
    blocks; the interval is widened by the rounds' spread."""
    base = rec(entry(samples=noisy(1e-3, 25), rounds=[5] * 5))
    cand = rec(entry(samples=noisy(1.12e-3, 25, seed=1), rounds=[5] * 5))
    r = row(base, cand)
    assert r["verdict"] == "regression" and r["detectable"] and set(r["between_run"]["sources"]) == {"rounds"}
    cmp = gate.evaluate(base, cand, policy.default())
    assert cmp["gate"]["verdict"] == "FAIL" and "1 regression: tensors.add[cpu] +12." in cmp["gate"]["line"]
    assert gate.exit_status(cmp, gate=True) == 1


def test_rounds_that_drift_make_a_benchmark_advisory():
    """Per-round medians that wander by ~8% (the machine's state changing during the run): the minimum
    detectable effect is above 5%, so even a real-looking 12% change only advises."""
    drifted = np.concatenate([np.full(5, 1e-3 * f) for f in (1.0, 1.08, 0.95, 1.1, 0.97)])
    base = rec(entry(samples=drifted, rounds=[5] * 5))
    cand = rec(entry(samples=drifted * 1.12, rounds=[5] * 5))
    r = row(base, cand)
    assert not r["detectable"] and r["undetectable"].startswith("minimum detectable effect")
    assert r["between_run"]["sigma_log"] > 0.04 and r["mde"] > 0.05


def test_normalised_figure_cancels_machine_drift():
    """The issue's false alarm: a memory-bound add 83% slower because the machine's copy bandwidth halved
    between the two runs. Normalised by the bandwidth probed beside each round, nothing changed; the raw
    ratio stays visible."""
    ceil = np.array([137.0, 140, 138, 141, 139])  # the machine's bandwidth moves a little between rounds...
    track = np.repeat(139.0 / ceil, 5)            # ...and the memory-bound add's time moves with it
    base = rec(entry(samples=np.asarray(noisy(1e-3, 25)) * track, rounds=[5] * 5, ceiling=list(ceil)))
    slow = np.asarray(noisy(1e-3, 25, seed=1)) * track * 1.83
    cand = rec(entry(samples=slow, rounds=[5] * 5, ceiling=list(ceil / 1.83)))
    r = row(base, cand)
    assert r["normalised_by"] == "gbps" and r["raw_ratio"] == pytest.approx(1.83, rel=0.02)
    assert r["ratio"] == pytest.approx(1.0, abs=0.01) and r["verdict"] == "unchanged" and r["detectable"]


def test_normalisation_needs_both_sides():
    """A baseline without probes (an older record) is compared in raw seconds."""
    base = rec(entry(samples=noisy(1e-3, 25), rounds=[5] * 5))
    cand = rec(entry(samples=noisy(1e-3, 25, seed=1), rounds=[5] * 5, ceiling=[100.0] * 5))
    r = row(base, cand)
    assert r["normalised_by"] is None and r["ratio"] == pytest.approx(r["raw_ratio"])


def test_history_is_evidence_and_its_spread_is_robust_to_a_step():
    """Earlier records of the same machine: the spread of consecutive differences, which one step in the
    history does not inflate (a median of absolute differences)."""
    values = [1e-3 * f for f in (1.0, 1.01, 0.99, 1.0, 1.3, 1.31, 1.29, 1.3)]
    assert drift.history_sigma(values) < 0.02
    assert drift.history_sigma(values[:3]) is None  # too few records
    hist = [rec(entry(samples=noisy(v, seed=i))) for i, v in enumerate(values)]
    base, cand = rec(entry(samples=noisy(1e-3))), rec(entry(samples=noisy(1.12e-3, seed=1)))
    r = row(base, cand, history=hist)
    assert set(r["between_run"]["sources"]) == {"history"} and r["detectable"] and r["verdict"] == "regression"
    other = copy.deepcopy(hist)
    for h in other:
        h["fingerprint"]["cpu"]["model"] = "Another CPU"  # another machine's history says nothing about this one
    assert row(base, cand, history=other)["between_run"]["sigma_log"] is None


def test_noise_document_is_evidence():
    base, cand = rec(entry(samples=noisy(1e-3))), rec(entry(samples=noisy(1.12e-3, seed=1)))
    noise = {"benchmarks": {"tensors.add[cpu]": {"sigma_log": 0.004, "mde": 0.02, "runs": 3}}}
    r = row(base, cand, noise=noise)
    assert r["detectable"] and r["between_run"]["sources"] == {"noise": 0.004} and r["mde"] >= 0.02


def test_pair_records_keep_their_within_run_analysis():
    """Interleaved pair records need no between-run evidence: drift cancels within a round."""
    b = entry(samples=noisy(1e-3, 40))
    c = entry(samples=noisy(1.12e-3, 40, seed=1))
    b["pair_chunk"] = c["pair_chunk"] = 4
    r = row(rec(b), rec(c))
    assert r["detectable"] and r["between_run"] is None and r["verdict"] == "regression" and r["paired_rounds"] == 10


# ------------------------------------------------------------------------ exact signals


def test_instruction_count_decides_a_two_percent_regression():
    """2% more executed work: far below what wall time can gate on (no evidence here at all), but the
    instruction count is exact, so it decides and blocks."""
    base = rec(entry(samples=noisy(1e-3), instructions=ins(1_000_000)))
    cand = rec(entry(samples=noisy(1.02e-3, seed=1), instructions=ins(1_020_000)))
    r = row(base, cand)
    assert r["signal"] == "instructions" and r["verdict"] == "regression" and r["detectable"]
    assert r["instructions"]["ratio"] == pytest.approx(1.02) and r["instructions"]["margin"] == exact.MIN_MARGIN
    assert r["wall_verdict"] in ("unchanged", "regression", "noisy")
    cmp = gate.evaluate(base, cand, policy.default())
    assert cmp["gate"]["verdict"] == "FAIL" and "instructions +2.0% (margin 1.0%)" in cmp["gate"]["line"]


@pytest.mark.parametrize("change,verdict", [(1.009, "unchanged"), (1.011, "regression"), (0.985, "improvement")])
def test_instruction_margin(change, verdict):
    got = exact.instructions({"instructions": ins(1e6)}, {"instructions": ins(1e6 * change)})
    assert got["verdict"] == verdict


def test_margin_grows_with_the_repeats_spread():
    """A case whose repeated counts differ by 0.5% gets a 1.5% margin: a 1.2% change is not a regression."""
    got = exact.instructions({"instructions": ins(1e6, spread=0.005)}, {"instructions": ins(1.012e6)})
    assert got["margin"] == pytest.approx(0.015) and got["verdict"] == "unchanged"


def test_wall_time_still_sees_what_instructions_cannot():
    """Same instructions (a memory-bound slowdown: cache misses are not instructions), wall time 12% slower
    with between-run evidence: the wall-time regression decides."""
    base = rec(entry(samples=noisy(1e-3, 25), rounds=[5] * 5, instructions=ins(1e6)))
    cand = rec(entry(samples=noisy(1.12e-3, 25, seed=1), rounds=[5] * 5, instructions=ins(1e6)))
    r = row(base, cand)
    assert r["signal"] == "wall" and r["verdict"] == "regression" and r["detectable"]
    assert r["instructions"]["verdict"] == "unchanged"


def test_unchanged_instructions_settle_a_noisy_wall_time():
    base = rec(entry(samples=noisy(1e-3, rel=0.3), instructions=ins(1e6)))
    cand = rec(entry(samples=noisy(1e-3, rel=0.3, seed=1), instructions=ins(1e6)))
    r = row(base, cand)
    assert r["signal"] == "instructions" and r["verdict"] == "unchanged" and r["detectable"]


def test_instructions_on_one_side_only_do_not_decide():
    base = rec(entry(samples=noisy(1e-3), instructions=ins(1e6)))
    cand = rec(entry(samples=noisy(1e-3, seed=1)))
    r = row(base, cand)
    assert r["signal"] == "wall" and r["instructions"]["verdict"] is None
    assert "only in the baseline" in r["instructions"]["reason"]


def test_counter_changes_are_reported_exactly_and_warn():
    cb = {"dispatcher_calls": 2, "ops": {"aten.add.Tensor": 2}, "bytes_allocated": 4096, "allocations": 1}
    cc = {"dispatcher_calls": 3, "ops": {"aten.add.Tensor": 2, "aten.clone.default": 1}, "bytes_allocated": 8192,
          "allocations": 2}
    base = rec(entry(samples=noisy(1e-3), counters=cb))
    cand = rec(entry(samples=noisy(1e-3, seed=1), counters=cc))
    r = row(base, cand)
    assert r["counters"]["changed"] == ["dispatcher_calls", "bytes_allocated", "allocations"]
    assert r["counters"]["ops"] == [{"op": "aten.clone.default", "baseline": 0, "candidate": 1}]
    assert exact.describe_counters(r["counters"]).startswith("dispatcher calls 2 -> 3, bytes allocated 4096 -> 8192")
    cmp = gate.evaluate(base, cand, policy.default())
    assert cmp["gate"]["verdict"] == "PASS"  # counters explain; they do not gate
    assert any("changed exact counters (e.g. tensors.add[cpu]: dispatcher calls 2 → 3)" in w
               for w in cmp["gate"]["warnings"])
    assert row(base, copy.deepcopy(base))["counters"]["changed"] == []


# ------------------------------------------------------------------------ nothing compared: exit 3


TEST = {"nodeid": "suites/t/test_x.py::test_a", "section": "t", "status": "passed"}


@pytest.mark.parametrize("base,cand,why", [
    (rec(tests=[TEST]), rec(), "the candidate record is empty"),
    (rec(), rec(tests=[TEST]), "the baseline record is empty"),
    (rec(tests=[TEST]), rec(tests=[dict(TEST, nodeid="suites/t/test_y.py::test_b")]), "no test or benchmark is in both"),
])
def test_nothing_compared_never_passes(base, cand, why, tmp_path, capsys):
    cmp = gate.evaluate(base, cand, policy.default())
    assert cmp["gate"]["verdict"] == "FAIL" and why in cmp["gate"]["line"]
    assert gate.exit_status(cmp, gate=True) == gate.EXIT_NOTHING_COMPARED == 3
    assert gate.exit_status(cmp, gate=False) == 3
    b, c = record.save(base, tmp_path / "b.json"), record.save(cand, tmp_path / "c.json")
    assert main(["gate", str(b), str(c)]) == 3
    assert why in capsys.readouterr().out


def test_a_real_comparison_is_not_empty():
    base = rec(entry(samples=noisy(1e-3)))
    cmp = gate.evaluate(base, copy.deepcopy(base), policy.default())
    assert cmp["compared"]["benchmarks"] == 1 and not cmp["gate"]["nothing_compared"]
    assert gate.exit_status(cmp, gate=True) == 0


# ------------------------------------------------------------------------ record v2


def test_version_1_records_are_read_as_version_2(tmp_path):
    old = make_record(benchmarks=[entry(samples=[1e-3] * 5)])
    old["schema_version"] = 1
    path = tmp_path / "old.json"
    path.write_text(record.dumps(old))
    assert record.load(path)["schema_version"] == record.SCHEMA_VERSION == 2


def test_version_2_fields_are_validated(tmp_path):
    bad = make_record(benchmarks=[entry(samples=[1e-3] * 5, instructions={"status": "maybe"})])
    with pytest.raises(record.RecordError, match=r"benchmarks/0/instructions/status.*\(schema version 2\)"):
        record.validate(bad)
    good = make_record(benchmarks=[entry(samples=[1e-3] * 5, rounds=[5], ceiling=[10.0], instructions=ins(1e6),
                                         counters={"dispatcher_calls": 1, "ops": {"aten.add.out": 1}})])
    assert record.validate(good)["benchmarks"][0]["instructions"]["per_call"] == 1e6


def test_merge_joins_an_instruction_run_with_a_wall_time_run():
    wall = rec(entry(samples=noisy(1e-3)))
    counted = rec(dict(entry(samples=[]), instructions=ins(1e6)))
    (e,) = merge.merge([wall, counted])["benchmarks"]
    assert e["samples"] and e["instructions"]["per_call"] == 1e6
