"""Statistics for benchmark samples: medians with bootstrap confidence intervals, the
Mann-Whitney rank test, Benjamini-Hochberg q-values and minimum detectable effects.

NumPy and the standard library only. scipy is deliberately not a dependency: it is an optional
extra (``torchconform[bench]``) that a bare torch environment often lacks, and the few pieces
needed here (a rank test with its normal approximation, a normal quantile) are short and are
checked against known answers in tests/test_stats.py. ``statistics.NormalDist`` supplies the
normal CDF and quantile.

Conventions: samples are seconds per call (smaller is faster); a *ratio* is
``median(candidate) / median(baseline)``, so > 1 means the candidate is slower. Confidence
intervals of a ratio are computed on the log scale, where a ratio and its inverse are symmetric.
"""
from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from harness import record

_N01 = NormalDist()


def norm_cdf(x: float) -> float:
    return _N01.cdf(x)


def norm_ppf(p: float) -> float:
    """Quantile of the standard normal distribution (``p`` in (0, 1))."""
    return _N01.inv_cdf(p)


def _arr(x) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def median(x) -> float:
    """:func:`harness.record.median` (the one definition) of the finite values of ``x``; NaN when none."""
    m = record.median(_arr(x).tolist())
    return float("nan") if m is None else m


def _rng(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _boot_medians(a: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """The median of each bootstrap resample (np.median row by row: the same definition as :func:`median`)."""
    idx = rng.integers(0, a.size, size=(n_boot, a.size))
    return np.median(a[idx], axis=1)


def bootstrap_medians(x, n_boot: int = 2000, seed=0) -> np.ndarray:
    """``n_boot`` bootstrap replicates of the median of ``x`` (finite values; x must not be empty)."""
    return _boot_medians(_arr(x), n_boot, _rng(seed))


def bootstrap_median_ci(x, *, conf: float = 0.95, n_boot: int = 2000, seed=0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median of ``x``."""
    a = _arr(x)
    if a.size == 0:
        return float("nan"), float("nan")
    if a.size == 1:
        return float(a[0]), float(a[0])
    meds = _boot_medians(a, n_boot, _rng(seed))
    lo, hi = np.quantile(meds, [(1 - conf) / 2, 1 - (1 - conf) / 2])
    return float(lo), float(hi)


def bootstrap_log_ratio(baseline, candidate, *, n_boot: int = 2000, seed=0) -> np.ndarray:
    """Bootstrap replicates of ``log(median(candidate) / median(baseline))`` (sides resampled independently)."""
    b, c = _arr(baseline), _arr(candidate)
    rng = _rng(seed)
    return np.log(_boot_medians(c, n_boot, rng)) - np.log(_boot_medians(b, n_boot, rng))


def ratio_ci(baseline, candidate, *, conf: float = 0.99, n_boot: int = 2000, seed=0,
             extra_sigma_log: float = 0.0, boot: tuple | None = None) -> tuple[float, float, float]:
    """``(ratio, ci_low, ci_high)`` of the ratio of medians.

    The interval is the percentile bootstrap of the log ratio. ``extra_sigma_log`` is a calibrated
    run-to-run standard deviation of one run's log median (see :func:`mde_from_runs`): comparing two
    separate runs adds that spread twice, so it widens the interval's half-widths in quadrature by
    ``z * sqrt(2) * extra_sigma_log``. Without it the interval only covers within-run sampling noise.
    ``boot``: precomputed ``(baseline, candidate)`` bootstrap medians (:func:`bootstrap_medians`) to reuse.
    """
    b, c = _arr(baseline), _arr(candidate)
    if b.size == 0 or c.size == 0:
        return float("nan"), float("nan"), float("nan")
    center = math.log(median(c)) - math.log(median(b))
    if b.size == 1 and c.size == 1:
        lo = hi = center
    else:
        reps = (np.log(boot[1]) - np.log(boot[0])) if boot is not None else \
            bootstrap_log_ratio(b, c, n_boot=n_boot, seed=seed)
        lo, hi = np.quantile(reps, [(1 - conf) / 2, 1 - (1 - conf) / 2])
        lo, hi = min(float(lo), center), max(float(hi), center)
    if extra_sigma_log > 0:
        z = norm_ppf(1 - (1 - conf) / 2)
        add = z * math.sqrt(2.0) * extra_sigma_log
        lo = center - math.hypot(center - lo, add)
        hi = center + math.hypot(hi - center, add)
    return math.exp(center), math.exp(lo), math.exp(hi)


def rankdata(x) -> np.ndarray:
    """Ranks 1..n, ties given their average rank (as scipy.stats.rankdata's default)."""
    a = np.asarray(x, dtype=np.float64).ravel()
    _, inv, counts = np.unique(a, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    avg = ends - (counts - 1) / 2.0
    return avg[inv.ravel()]


def mann_whitney_u(x, y, *, continuity: bool = True) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test: ``(U_x, p_value)``.

    Normal approximation with the tie correction of the variance,
    ``var(U) = n1 n2 / 12 * ((n + 1) - sum(t^3 - t) / (n (n - 1)))`` over tie groups of size t,
    and a 0.5 continuity correction (what scipy.stats.mannwhitneyu(method='asymptotic') does).
    Benchmark samples have n >= ~10 per side, where the approximation is accurate; the exact
    distribution is not needed. Returns p = 1 when either side is empty or every value ties.
    """
    a, b = _arr(x), _arr(y)
    n1, n2 = a.size, b.size
    if n1 == 0 or n2 == 0:
        return float("nan"), 1.0
    n = n1 + n2
    combined = np.concatenate([a, b])
    ranks = rankdata(combined)
    u1 = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2.0)
    mu = n1 * n2 / 2.0
    _, counts = np.unique(combined, return_counts=True)
    tie = float(np.sum(counts.astype(np.float64) ** 3 - counts))
    var = n1 * n2 / 12.0 * ((n + 1) - tie / (n * (n - 1)))
    if var <= 0:
        return u1, 1.0
    d = abs(u1 - mu) - (0.5 if continuity else 0.0)
    z = max(d, 0.0) / math.sqrt(var)
    p = 2.0 * (1.0 - norm_cdf(z))
    return u1, float(min(max(p, 0.0), 1.0))


def benjamini_hochberg(pvalues) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values): rejecting every q < alpha controls the false
    discovery rate at alpha for independent (or positively dependent) tests. NaN p-values stay NaN
    and do not count as tests."""
    p = np.asarray(pvalues, dtype=np.float64).ravel()
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return q
    pv = p[ok]
    order = np.argsort(pv, kind="mergesort")
    ranked = pv[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    q[ok] = out
    return q


def mde_from_sigma(sigma_log: float, *, alpha: float = 0.01, power: float = 0.9) -> float:
    """Minimum detectable relative effect of comparing two runs whose log medians each scatter with
    standard deviation ``sigma_log``: the slowdown a two-sided test at level ``alpha`` detects with
    probability ``power``, ``exp((z_{1-alpha/2} + z_power) * sqrt(2) * sigma_log) - 1``."""
    if not math.isfinite(sigma_log):
        return float("inf")
    z = norm_ppf(1 - alpha / 2) + norm_ppf(power)
    return math.expm1(z * math.sqrt(2.0) * max(sigma_log, 0.0))


def sigma_log_from_runs(medians) -> float:
    """Run-to-run standard deviation of log medians from repeated runs of one installation."""
    m = _arr(medians)
    m = m[m > 0]
    if m.size < 2:
        return float("nan")
    return float(np.std(np.log(m), ddof=1))


def sigma_log_within(x, *, n_boot: int = 1000, seed=0) -> float:
    """Bootstrap standard error of ``log(median(x))`` from one run's samples."""
    a = _arr(x)
    a = a[a > 0]
    if a.size < 2:
        return float("nan")
    return float(np.std(np.log(_boot_medians(a, n_boot, _rng(seed))), ddof=1))


def wilcoxon_signed_rank(d, *, continuity: bool = True) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test that the differences ``d`` are centred on 0: ``(W_plus, p)``.

    Zeros are dropped (Wilcoxon's convention); normal approximation with the tie correction
    ``var = n(n+1)(2n+1)/24 - sum(t^3 - t)/48`` and a 0.5 continuity correction (scipy.stats.wilcoxon's
    ``method='approx', correction=True``). Used for paired (interleaved) measurements."""
    a = _arr(d)
    a = a[a != 0]
    n = a.size
    if n == 0:
        return float("nan"), 1.0
    ranks = rankdata(np.abs(a))
    w_plus = float(ranks[a > 0].sum())
    mu = n * (n + 1) / 4.0
    _, counts = np.unique(np.abs(a), return_counts=True)
    var = n * (n + 1) * (2 * n + 1) / 24.0 - float(np.sum(counts.astype(np.float64) ** 3 - counts)) / 48.0
    if var <= 0:
        return w_plus, 1.0
    z = max(abs(w_plus - mu) - (0.5 if continuity else 0.0), 0.0) / math.sqrt(var)
    return w_plus, float(min(1.0, 2.0 * (1.0 - norm_cdf(z))))


def paired_log_ratios(baseline, candidate, chunk: int) -> np.ndarray:
    """Per-round ``log(median(candidate chunk) / median(baseline chunk))`` of interleaved measurements
    whose i-th chunk of ``chunk`` samples on each side was taken back to back."""
    b, c = np.asarray(baseline, dtype=np.float64), np.asarray(candidate, dtype=np.float64)
    k = min(b.size, c.size) // chunk
    if k == 0:
        return np.empty(0)
    mb = np.median(b[: k * chunk].reshape(k, chunk), axis=1)
    mc = np.median(c[: k * chunk].reshape(k, chunk), axis=1)
    return np.log(mc) - np.log(mb)


def paired_ratio_ci(d, *, conf: float = 0.99, n_boot: int = 2000, seed=0,
                    extra_sigma_log: float = 0.0) -> tuple[float, float, float]:
    """``(ratio, ci_low, ci_high)`` from per-round log ratios ``d``: exp(median(d)) and the percentile
    bootstrap (over rounds) of the median, optionally widened like :func:`ratio_ci`."""
    a = _arr(d)
    if a.size == 0:
        return float("nan"), float("nan"), float("nan")
    center = median(a)
    if a.size == 1:
        lo = hi = center
    else:
        reps = _boot_medians(a, n_boot, _rng(seed))
        lo, hi = np.quantile(reps, [(1 - conf) / 2, 1 - (1 - conf) / 2])
        lo, hi = min(float(lo), center), max(float(hi), center)
    if extra_sigma_log > 0:
        z = norm_ppf(1 - (1 - conf) / 2)
        add = z * math.sqrt(2.0) * extra_sigma_log
        lo, hi = center - math.hypot(center - lo, add), center + math.hypot(hi - center, add)
    return math.exp(center), math.exp(lo), math.exp(hi)
