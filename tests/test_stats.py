"""harness/stats.py, harness/bench/significance.py and harness/bench/noise.py on synthetic samples with known answers (seeded, fast)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from harness import stats
from harness.bench.noise import noise_from_records
from harness.bench.significance import compare_benchmarks


def _rec(samples_by_name: dict, **extra) -> dict:
    return {"benchmarks": [{"name": n, "group": n.split("[")[0], "section": "syn", "device": "cpu", "samples": list(s),
                            **extra} for n, s in samples_by_name.items()], "ceilings": {}}


def _lognormal(rng, n, scale=1e-3, sigma=0.03):
    return scale * np.exp(rng.normal(0.0, sigma, n))


# ----------------------------------------------------------------------- rank test, known answers

def test_rankdata_ties_average():
    assert stats.rankdata([10, 20, 20, 30]).tolist() == [1.0, 2.5, 2.5, 4.0]
    assert stats.rankdata([3, 3, 3]).tolist() == [2.0, 2.0, 2.0]


def test_mann_whitney_known_values():
    # complete separation, n1 = n2 = 5: U = 0, mu = 12.5, var = 25*11/12 -> z = (12.5 - 0.5)/sqrt(22.9167)
    u, p = stats.mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    z = 12.0 / math.sqrt(25 * 11 / 12)
    assert u == 0.0
    assert p == pytest.approx(2 * (1 - stats.norm_cdf(z)), rel=1e-12)
    assert p == pytest.approx(0.01219, abs=5e-5)  # scipy.stats.mannwhitneyu(..., method="asymptotic") gives 0.01219
    # ties: x = [1, 2, 2], y = [2, 3, 3]; ranks 1, 3, 3 | 3, 5.5, 5.5 -> U_x = 7 - 6 = 1
    # tie groups of 3 and 2: var = 9/12 * (7 - (24 + 6)/30) = 4.5
    u, p = stats.mann_whitney_u([1, 2, 2], [2, 3, 3])
    assert u == 1.0
    assert p == pytest.approx(2 * (1 - stats.norm_cdf((3.5 - 0.5) / math.sqrt(4.5))), rel=1e-12)
    # all tied: no evidence
    assert stats.mann_whitney_u([1, 1, 1], [1, 1])[1] == 1.0
    assert stats.mann_whitney_u([], [1.0])[1] == 1.0


def test_mann_whitney_uniform_pvalues_under_null():
    """Under identical distributions the p-values are ~uniform: P(p < 0.05) close to 0.05."""
    rng = np.random.default_rng(1)
    ps = np.array([stats.mann_whitney_u(rng.normal(size=30), rng.normal(size=30))[1] for _ in range(2000)])
    assert 0.03 < np.mean(ps < 0.05) < 0.07
    assert np.mean(ps < 0.01) < 0.02


def test_benjamini_hochberg_known_values():
    q = stats.benjamini_hochberg([0.01, 0.04, 0.03, 0.5])
    # sorted p: .01 .03 .04 .5 -> p*m/rank: .04 .06 .0533 .5 -> monotone from the top: .04 .0533 .0533 .5
    assert q.tolist() == pytest.approx([0.04, 0.05333333, 0.05333333, 0.5])
    assert np.isnan(stats.benjamini_hochberg([np.nan, 0.2])[0])
    assert stats.benjamini_hochberg([0.2, np.nan])[0] == pytest.approx(0.2)


def test_norm_ppf_and_mde():
    assert stats.norm_ppf(0.975) == pytest.approx(1.959964, abs=1e-6)
    # sigma_log = 1%: (2.5758 + 1.2816) * sqrt(2) * 0.01 = 0.05455 in log -> 5.61%
    assert stats.mde_from_sigma(0.01, alpha=0.01, power=0.9) == pytest.approx(math.expm1(0.054553), rel=1e-3)
    assert stats.mde_from_sigma(0.0) == 0.0
    assert stats.sigma_log_from_runs([1.0, math.e]) == pytest.approx(1 / math.sqrt(2))


def test_bootstrap_ci_covers_true_median():
    """The 95% CI of the median covers the true median in roughly 95% of seeded repetitions."""
    rng = np.random.default_rng(2)
    hits = 0
    for i in range(200):
        x = rng.exponential(1.0, 60)
        lo, hi = stats.bootstrap_median_ci(x, conf=0.95, n_boot=500, seed=i)
        hits += lo <= math.log(2) <= hi
    assert 0.88 <= hits / 200 <= 0.99


def test_ratio_ci_widens_with_run_noise():
    rng = np.random.default_rng(3)
    b, c = _lognormal(rng, 100), _lognormal(rng, 100)
    r, lo, hi = stats.ratio_ci(b, c, conf=0.99)
    r2, lo2, hi2 = stats.ratio_ci(b, c, conf=0.99, extra_sigma_log=0.05)
    assert r == r2 and lo2 < lo <= r <= hi < hi2


# ------------------------------------------------------------------------- compare, known answers

def test_known_shift_is_a_regression():
    rng = np.random.default_rng(4)
    rows = compare_benchmarks(_rec({"a": _lognormal(rng, 100)}), _rec({"a": _lognormal(rng, 100) * 1.10}))
    (row,) = rows
    assert row["verdict"] == "regression", row
    assert row["ratio"] == pytest.approx(1.10, rel=0.02)
    assert row["ci_low"] > 1.0 and row["q_value"] < 0.01 and row["detectable"]


def test_known_speedup_is_an_improvement():
    rng = np.random.default_rng(5)
    (row,) = compare_benchmarks(_rec({"a": _lognormal(rng, 100)}), _rec({"a": _lognormal(rng, 100) / 1.2}))
    assert row["verdict"] == "improvement" and row["ratio"] < 0.9


def test_identical_distributions_unchanged():
    rng = np.random.default_rng(6)
    (row,) = compare_benchmarks(_rec({"a": _lognormal(rng, 100)}), _rec({"a": _lognormal(rng, 100)}))
    assert row["verdict"] == "unchanged" and row["detectable"]


def test_small_significant_shift_below_threshold_is_unchanged():
    """A real 2% shift measured very precisely is significant, but under the 5% threshold."""
    rng = np.random.default_rng(7)
    b, c = _lognormal(rng, 400, sigma=0.005), _lognormal(rng, 400, sigma=0.005) * 1.02
    (row,) = compare_benchmarks(_rec({"a": b}), _rec({"a": c}))
    assert row["q_value"] < 0.01 and row["verdict"] == "unchanged"


def test_noisy_and_missing_verdicts():
    rng = np.random.default_rng(8)
    base = _rec({"wide": _lognormal(rng, 8, sigma=0.5), "few": [1e-3, 1e-3], "gone": _lognormal(rng, 20)})
    cand = _rec({"wide": _lognormal(rng, 8, sigma=0.5), "few": [2e-3, 2e-3], "new": _lognormal(rng, 20)})
    rows = {r["name"]: r for r in compare_benchmarks(base, cand)}
    assert rows["wide"]["verdict"] == "noisy" and not rows["wide"]["detectable"]
    assert rows["few"]["verdict"] == "noisy" and "too few samples" in rows["few"]["reason"]
    assert rows["gone"]["verdict"] == "missing_in_candidate"
    assert rows["new"]["verdict"] == "missing_in_baseline"
    assert set(rows["gone"]) >= {"name", "group", "section", "device", "n_baseline", "n_candidate", "median_baseline",
                                 "median_candidate", "ratio", "ci_low", "ci_high", "p_value", "q_value", "verdict",
                                 "detectable", "mde", "roofline_fraction_baseline", "roofline_fraction_candidate", "reason"}


def test_skipped_entries_count_as_missing():
    base = {"benchmarks": [{"name": "s", "samples": [], "status": "skipped"}]}
    cand = {"benchmarks": [{"name": "s", "samples": [], "status": "skipped"}]}
    assert compare_benchmarks(base, cand) == []


def test_noise_file_makes_noisy_benchmark_advisory():
    """Calibrated run-to-run noise: a benchmark whose runs scatter by ~5% cannot gate a 5% threshold."""
    rng = np.random.default_rng(9)
    runs = []
    for k in range(5):
        drift_quiet, drift_loud = np.exp(rng.normal(0, 0.002)), np.exp(rng.normal(0, 0.05))
        runs.append(_rec({"quiet": _lognormal(rng, 100, sigma=0.01) * drift_quiet,
                          "loud": _lognormal(rng, 100, sigma=0.01) * drift_loud}))
    noise = noise_from_records(runs)
    assert noise["benchmarks"]["quiet"]["detectable"] and not noise["benchmarks"]["loud"]["detectable"]
    rows = {r["name"]: r for r in compare_benchmarks(runs[0], _rec({"quiet": _lognormal(rng, 100, sigma=0.01) * 1.1,
                                                                    "loud": _lognormal(rng, 100, sigma=0.01) * 1.1}),
                                                     noise=noise)}
    assert rows["quiet"]["verdict"] == "regression" and rows["quiet"]["detectable"]
    assert not rows["loud"]["detectable"] and "not detectable" in rows["loud"]["reason"]
    assert rows["loud"]["mde"] == pytest.approx(noise["benchmarks"]["loud"]["mde"])


def test_unconfirmed_regression_is_downgraded():
    rng = np.random.default_rng(10)
    base = _rec({"a": _lognormal(rng, 100)})
    cand = _rec({"a": _lognormal(rng, 100) * 1.1}, confirmation={"verdict": "unchanged", "ratio": 1.0})
    (row,) = compare_benchmarks(base, cand)
    assert row["verdict"] == "unchanged" and "not confirmed" in row["reason"]


def test_power_and_fdr_over_simulated_suites():
    """Seeded simulation of 60 suites of 8 benchmarks with interleaving-like iid noise (3% per sample):
    A/A suites raise any false alarm in <= 1% (alpha = 0.01, FDR across the suite), and one benchmark
    planted 10% slower is flagged in >= 90% of the suites. (The self-benchmark
    ``python -m harness.bench.sensitivity`` measures the same on real timings.)"""
    rng = np.random.default_rng(11)
    n_suites, n_bench, n = 60, 8, 40
    false_alarm_suites = 0
    detected = 0
    for _ in range(n_suites):
        base = {f"b{i}": _lognormal(rng, n, scale=1e-3 * (i + 1)) for i in range(n_bench)}
        same = {f"b{i}": _lognormal(rng, n, scale=1e-3 * (i + 1)) for i in range(n_bench)}
        rows = compare_benchmarks(_rec(base), _rec(same), n_boot=200)
        false_alarm_suites += any(r["verdict"] in ("regression", "improvement") for r in rows)
        planted = dict(same)
        planted["b0"] = planted["b0"] * 1.10
        rows = {r["name"]: r for r in compare_benchmarks(_rec(base), _rec(planted), n_boot=200)}
        detected += rows["b0"]["verdict"] == "regression"
    assert false_alarm_suites / n_suites <= 0.01
    assert detected / n_suites >= 0.90


def test_wilcoxon_signed_rank_known_values():
    # d = 1..10, all positive: W+ = 55, mu = 27.5, var = 10*11*21/24 = 96.25
    w, p = stats.wilcoxon_signed_rank(np.arange(1, 11))
    assert w == 55.0
    assert p == pytest.approx(2 * (1 - stats.norm_cdf((27.5 - 0.5) / math.sqrt(96.25))), rel=1e-12)
    assert p == pytest.approx(0.005934, abs=2e-5)  # scipy.stats.wilcoxon(range(1, 11), method="approx", correction=True)
    assert stats.wilcoxon_signed_rank([0, 0])[1] == 1.0


def test_paired_rounds_cancel_shared_drift():
    """Interleaved pair records: load bursts shared by both sides of a round cancel in the paired analysis,
    so a 10% slowdown under +-30% drift is still a regression and A/A under the same drift is not."""
    rng = np.random.default_rng(12)
    rounds, chunk = 40, 4
    drift = np.repeat(np.exp(rng.normal(0, 0.3, rounds)), chunk)
    b = drift * _lognormal(rng, rounds * chunk, sigma=0.02)
    c = drift * _lognormal(rng, rounds * chunk, sigma=0.02)
    (row,) = compare_benchmarks(_rec({"a": b}, pair_chunk=chunk), _rec({"a": c * 1.1}, pair_chunk=chunk))
    assert row["verdict"] == "regression" and row["paired_rounds"] == rounds
    assert row["ratio"] == pytest.approx(1.1, rel=0.02)
    (row,) = compare_benchmarks(_rec({"a": b}, pair_chunk=chunk), _rec({"a": c}, pair_chunk=chunk))
    assert row["verdict"] == "unchanged"
