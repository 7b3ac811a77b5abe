"""The conformance comparison: outcome changes, appeared/vanished tests, precision drift, and how
benchmark rows get their policy threshold and (from the gate) whether they gate."""
from __future__ import annotations

import copy
import json

import pytest

from harness import compare, fingerprint, gate, merge, policy
from harness.bench import significance
from tests.conftest import GOLDEN, make_record


def golden(name):
    return json.loads((GOLDEN / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def golden_cmp():
    return gate.evaluate(golden("baseline"), golden("candidate"), policy.load(GOLDEN / "policy.toml"))


@pytest.mark.parametrize("b,c,change", [
    ("passed", "failed", "new_failure"), ("passed", "error", "new_failure"), ("skipped", "failed", "new_failure"),
    ("xfailed", "xpassed", "new_failure"), ("failed", "failed", "still_failing"), ("failed", "passed", "fixed"),
    ("error", "skipped", "newly_skipped"), ("passed", "skipped", "newly_skipped"), ("skipped", "passed", "unskipped"),
    ("passed", "passed", None), ("skipped", "skipped", None), ("xfailed", "xfailed", None),
    (None, "passed", "appeared"), ("passed", None, "vanished"),
])
def test_classify(b, c, change):
    assert compare.classify(b, c) == change


def test_golden_changes(golden_cmp):
    by = {}
    for r in golden_cmp["tests"]:
        by.setdefault(r["change"], []).append(r["nodeid"].split("::")[1])
    assert by == {
        "new_failure": ["test_linear_bias[cpu-float32]", "test_matmul[cpu-float32]"],
        "improved": ["test_linear_bf16[cpu-bfloat16]"],
        "fixed": ["test_baddbmm[cpu-float32]"],
        "expected": ["test_allreduce_sum[cpu]"],
        "appeared": ["test_linear_new[cpu]"],
        "vanished": ["test_linear_old[cpu]"],
    }
    assert golden_cmp["counts"]["new_failure"] == 2
    exp = next(r for r in golden_cmp["tests"] if r["change"] == "expected")
    assert exp["expectation"]["reason"] == "gloo times out on the shared runner"


def test_new_test_that_fails_is_a_new_failure():
    base = make_record()
    cand = make_record()
    cand["tests"].append({"nodeid": "suites/nn/test_b.py::test_new", "section": "nn", "status": "failed",
                          "message": "boom"})
    rows = compare.compare(base, cand, policy.default())["tests"]
    row = next(r for r in rows if r["nodeid"].endswith("test_new"))
    assert row["change"] == "new_failure" and row["new_test"] and row["baseline"] is None


def _with_ratio(rec, ratio, status="passed"):
    rec["tests"][0]["checks"]["worst_ratio"] = ratio
    rec["tests"][0]["status"] = status
    return rec


@pytest.mark.parametrize("rb,rc,flagged", [
    (0.02, 0.5, True),      # 25x and well above 0.1: flagged although passing
    (0.02, 0.06, False),    # 3x but still tiny
    (0.3, 0.31, False),     # no growth
    (0.1, 0.299, False),    # just under 3x
    (0.1, 0.3, True),
    (0.0, 0.2, True),       # from exact to measurable error
    (0.02, "inf", True),    # record stores non-finite as strings
    ("nan", 0.5, True),
    (0.02, "nan", False),
    (None, 0.5, False),
])
def test_precision_drift(rb, rc, flagged):
    base, cand = _with_ratio(make_record(), rb), _with_ratio(make_record(), rc)
    rows = compare.precision_drift(base, cand, policy.default())
    assert bool(rows) is flagged


def test_precision_drift_policy_and_order():
    base, cand = make_record(), make_record()
    p = policy.default()
    p.drift_factor, p.drift_min_ratio = 10.0, 0.5
    base["tests"][0]["checks"]["worst_ratio"] = 0.02
    cand["tests"][0]["checks"]["worst_ratio"] = 0.4
    assert compare.precision_drift(base, cand, p) == []
    cand["tests"][0]["checks"]["worst_ratio"] = 0.6
    (row,) = compare.precision_drift(base, cand, p)
    assert row["growth"] == pytest.approx(30) and not row["failing"]


def test_golden_drift_passing_first(golden_cmp):
    rows = golden_cmp["drift"]
    assert rows[0]["nodeid"].endswith("test_matmul[cpu-float64]") and rows[0]["status"] == "passed"
    assert {r["nodeid"].split("::")[1] for r in rows[1:]} == {"test_linear_bias[cpu-float32]", "test_matmul[cpu-float32]"}


def test_golden_benchmarks(golden_cmp):
    rows = {r["name"]: r for r in golden_cmp["benchmarks"]}
    mm = rows["tensors.matmul[cpu,n=512]"]
    assert mm["verdict"] == "regression" and mm["gating"] and mm["threshold"] == 0.05
    assert 1.10 < mm["ratio"] < 1.15 and mm["ci_low"] > 1.05
    lin = rows["nn.linear[cpu,batch=64]"]
    assert lin["verdict"] == "improvement" and lin["rule"] == "nn.*" and lin["threshold"] == 0.10
    assert not lin["gating"] and "advisory rule" in lin["advisory_reason"]
    assert rows["tensors.add[cpu,n=1000000]"]["verdict"] == "unchanged"
    assert golden_cmp["benchmarks"][0]["name"] == "tensors.matmul[cpu,n=512]"  # regressions first


def test_rules_pass_their_threshold(monkeypatch):
    """Each policy rule's threshold and alpha reach the statistics; every call sees all benchmarks; the
    gate then lets a row block only where its rule is gating."""
    calls = []

    def fake(baseline, candidate, *, alpha=0.01, threshold=0.05, noise=None):
        calls.append((alpha, threshold, sorted(b["name"] for b in candidate["benchmarks"])))
        return [{"name": b["name"], "group": b["group"], "verdict": "regression", "ratio": 1.5, "ci_low": 1.4,
                 "ci_high": 1.6, "detectable": True} for b in candidate["benchmarks"]]

    monkeypatch.setattr(significance, "compare_benchmarks", fake)
    bench = lambda name, group: {"name": name, "group": group, "samples": [1.0]}
    base = make_record(benchmarks=[bench("a.x", "a.x"), bench("slow.y", "slow.y")])
    cand = copy.deepcopy(base)
    p = policy.default()
    p.bench_rules = [policy.BenchRule("slow.*", 0.3, 0.05, "advisory")]
    rows, impl = compare.benchmark_rows(base, cand, p)
    assert impl == "harness.bench.significance"
    assert sorted(calls) == [(0.01, 0.05, ["a.x", "slow.y"]), (0.05, 0.3, ["a.x", "slow.y"])]
    assert all(r["gating"] is None and r["detectable"] for r in rows)  # the gate decides
    by = {r["name"]: r for r in gate.evaluate(base, cand, p)["benchmarks"]}
    assert by["a.x"]["gating"] and by["a.x"]["threshold"] == 0.05
    assert not by["slow.y"]["gating"] and by["slow.y"]["threshold"] == 0.3
    assert by["slow.y"]["advisory_reason"] == "advisory rule slow.*"


def test_different_hardware_makes_benchmarks_advisory(monkeypatch):
    base, cand = golden("baseline"), golden("candidate")
    cand["fingerprint"]["cpu"]["model"] = "AMD EPYC 7763"
    cmp = gate.evaluate(base, cand, policy.load(GOLDEN / "policy.toml"))
    mm = next(r for r in cmp["benchmarks"] if r["name"].startswith("tensors.matmul"))
    assert mm["verdict"] == "regression" and not mm["gating"] and "machines differ" in mm["advisory_reason"]
    assert cmp["hardware_differences"] == ["cpu_model"]
    assert not any("regression" in r for r in cmp["gate"]["reasons"])
    assert any("different hardware" in w for w in cmp["gate"]["warnings"])


def test_mixed_fingerprints():
    """A record merged across machines says which keys differed; its benchmarks then count as run on
    different hardware."""
    a, b = make_record(), make_record()
    b["fingerprint"]["cpu"]["model"] = "Other CPU"
    assert fingerprint.mixed_keys([a["fingerprint"], b["fingerprint"]]) == {"cpu_model": ["Test CPU", "Other CPU"]}
    merged = merge.merge([a, b], allow_mixed=True)
    assert merged["fingerprint"]["mixed"] == {"cpu_model": ["Test CPU", "Other CPU"]}
    assert fingerprint.hardware_differences(a["fingerprint"], merged["fingerprint"]) == ["cpu_model within the candidate"]
    assert "mixed" not in merge.merge([a, copy.deepcopy(a)])["fingerprint"]


def test_missing_benchmarks():
    base = golden("baseline")
    cand = golden("candidate")
    cand["benchmarks"] = cand["benchmarks"][:1]
    cmp = gate.evaluate(base, cand, policy.load(GOLDEN / "policy.toml"))
    verdicts = {r["name"]: r["verdict"] for r in cmp["benchmarks"]}
    assert verdicts["nn.linear[cpu,batch=64]"] == "missing_in_candidate"
    assert any("not run by the candidate" in w for w in cmp["gate"]["warnings"])


def test_no_benchmarks_no_rows():
    rows, impl = compare.benchmark_rows(make_record(), make_record(), policy.default())
    assert rows == [] and impl == "none"


def test_the_gate_decides_not_the_comparison():
    """compare.compare says what changed; only harness.gate says PASS or FAIL."""
    cmp = compare.compare(golden("baseline"), golden("candidate"), policy.load(GOLDEN / "policy.toml"))
    assert "gate" not in cmp and all(r["gating"] is None for r in cmp["benchmarks"])
    assert cmp["sections"]["baseline"]["nn"]["total"] == 5
