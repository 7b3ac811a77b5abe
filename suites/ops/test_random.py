"""Operator library: random-number state and samplers.

State: torch.get_rng_state/set_rng_state, torch.random.fork_rng, Generator.get_state/set_state,
manual_seed/initial_seed/seed replay the exact stream (bitwise) across every sampler. Samplers:
multinomial with and without replacement, bernoulli, normal (every mean/std form), randperm, randint,
rand/randn and the in-place distributions (uniform_, normal_, exponential_, geometric_, log_normal_,
cauchy_), with sample sizes past 32,768 and random parameters, each statistic compared at 6 standard
errors (or a chi-square test at a stated alpha) from a fixed seed (seeded from the test id), so a run is
reproducible and a correct torch never fails by chance in the suite.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.ops._oracles import place, to_numpy

N = 60_000
ALPHA = 1e-4  # chi-square tests: the false-alarm rate of one (seeded, hence reproducible) test


def _chi2_crit(df):
    st = pytest.importorskip("scipy.stats", reason="SciPy (the ops extra) gives the chi-square critical value")
    return float(st.chi2.ppf(1 - ALPHA, df))


def _gen(device, seed):
    return torch.Generator(device=device).manual_seed(seed)


def _draws(device, g=None):
    """One value of every kind of draw, each past 32,768 elements where it has a vectorised path."""
    kw = {"device": device, "generator": g}
    p = torch.rand(10, device=device, generator=g) + 0.05
    out = [torch.rand(40_000, **kw), torch.randn(40_000, **kw), torch.randint(-5, 1000, (40_000,), **kw),
           torch.randperm(1000, **kw), torch.multinomial(p, 5, replacement=False, generator=g),
           torch.multinomial(p, 50, replacement=True, generator=g),
           torch.bernoulli(torch.full((40_000,), 0.3, device=device), generator=g),
           torch.normal(torch.zeros(40_000, device=device), torch.ones(40_000, device=device), generator=g),
           torch.empty(40_000, device=device).exponential_(2.0, generator=g),
           torch.rand(40_000, dtype=torch.float64, **kw)]
    return out


def _same(api, a, b, args):
    for i, (x, y) in enumerate(zip(a, b)):
        assert_equal(api, x, y, args=f"{args}, draw {i}")


@pytest.mark.smoke
@pytest.mark.devices("cpu")
def test_global_rng_state(device, seed):
    """get_rng_state returns a uint8 copy; set_rng_state makes every sampler (rand, randn, randint, randperm,
    multinomial, bernoulli, normal, exponential_, float64 rand) replay the exact stream, twice; the saved
    state does not change as draws happen; catches a set_rng_state that does not restore (or restores only
    part of the state) and a get_rng_state that aliases the live state."""
    torch.manual_seed(seed)
    state = torch.get_rng_state()
    assert_equal("torch.get_rng_state", state.dtype, torch.uint8, args="")
    saved = state.clone()
    first = _draws(device)
    assert_equal("torch.get_rng_state", state, saved, args="saved state unchanged by later draws")
    assert_true("torch.get_rng_state", not torch.equal(torch.get_rng_state(), saved), "state did not advance", args="")
    torch.set_rng_state(state)
    _same("torch.set_rng_state", _draws(device), first, "replay after set_rng_state")
    torch.set_rng_state(state)
    _same("torch.set_rng_state", _draws(device), first, "second replay")
    torch.manual_seed(seed + 1)
    other = _draws(device)
    assert_true("torch.manual_seed", not torch.equal(other[0], first[0]), "a different seed gave the same stream", args="")


@pytest.mark.devices("cpu")
def test_manual_seed_initial_seed(device, seed):
    """torch.manual_seed(s) returns the default generator, initial_seed() reports s, and reseeding replays;
    torch.seed() picks a fresh seed that initial_seed() then reports; catches initial_seed reporting a stale
    seed and manual_seed not resetting the stream (nor the cached second sample of the scalar normal path)."""
    g = torch.manual_seed(seed)
    assert_true("torch.manual_seed", g is torch.default_generator, "did not return torch.default_generator", args="")
    assert_equal("torch.initial_seed", torch.initial_seed(), seed, args="after manual_seed")
    a = torch.rand(50_000)
    torch.manual_seed(seed)
    assert_equal("torch.manual_seed", torch.rand(50_000), a, args="replay")
    # fewer than 16 normals take the scalar Box-Muller path, which caches its second sample: reseeding
    # must drop that cache: after small draws, a reseeded default generator gives what a fresh generator
    # seeded alike gives
    fresh = torch.randn(5, generator=torch.Generator().manual_seed(seed))
    torch.randn(7)
    torch.manual_seed(seed)
    assert_equal("torch.manual_seed", torch.randn(5), fresh, args="randn(5) after small draws vs a fresh Generator")
    s = torch.seed()
    assert_equal("torch.initial_seed", torch.initial_seed(), s, args="after torch.seed()")
    torch.manual_seed(seed)


def test_fork_rng(device, seed):
    """Draws inside torch.random.fork_rng do not advance the stream outside it (the next draw equals the one
    of a run without the block), for the CPU and the listed accelerator devices; with enabled=False the
    block does advance it; catches fork_rng that forks nothing or restores the wrong state."""
    devs = [] if device == "cpu" else [torch.device(device).index or 0]
    torch.manual_seed(seed)
    if device != "cpu":
        torch.cuda.manual_seed(seed)
    ref = torch.rand(40_000, device=device)
    torch.manual_seed(seed)
    if device != "cpu":
        torch.cuda.manual_seed(seed)
    with torch.random.fork_rng(devices=devs, device_type=device if device != "cpu" else "cuda"):
        inner = torch.rand(40_000, device=device)
        torch.randn(1000, device=device)
    assert_equal("torch.random.fork_rng", inner, ref, args="inside starts from the outer state")
    assert_equal("torch.random.fork_rng", torch.rand(40_000, device=device), ref, args="outside not advanced")
    torch.manual_seed(seed)
    if device != "cpu":
        torch.cuda.manual_seed(seed)
    with torch.random.fork_rng(devices=devs, enabled=False, device_type=device if device != "cpu" else "cuda"):
        torch.rand(40_000, device=device)
    assert_true("torch.random.fork_rng", not torch.equal(torch.rand(40_000, device=device), ref),
                "enabled=False still restored the stream", args="enabled=False")


def test_generator_state(device, seed):
    """Generator.manual_seed returns the generator; initial_seed() reports the seed; get_state/set_state
    replay every sampler exactly; two generators with one seed give one stream; a generator is independent
    of the global stream and of other generators; get_state is a copy; seed() picks a fresh seed reported
    by initial_seed(); catches generator= ignored by a sampler (draws come from the global stream) and a
    set_state that does not restore."""
    g = torch.Generator(device=device)
    assert_true("torch.Generator.manual_seed", g.manual_seed(seed) is g, "manual_seed did not return the generator", args="")
    assert_equal("torch.Generator.initial_seed", g.initial_seed(), seed, args="")
    state = g.get_state()
    saved = state.clone()
    first = _draws(device, g)
    assert_equal("torch.Generator.get_state", state, saved, args="a copy, unchanged by draws")
    torch.manual_seed(seed + 7)  # the global stream moves; g must not care
    torch.rand(1000, device=device)
    g.set_state(state)
    _same("torch.Generator.set_state", _draws(device, g), first, "replay after set_state")
    h = torch.Generator(device=device).manual_seed(seed)
    _same("torch.Generator", _draws(device, h), first, "same seed, second generator")
    g2 = torch.Generator(device=device).manual_seed(seed)
    torch.manual_seed(seed)
    glob = torch.rand(40_000, device=device)
    torch.manual_seed(seed + 1)
    assert_equal("torch.rand", torch.rand(40_000, device=device, generator=g2), glob,
                 args="generator= draws from the generator, not the global stream (seeded alike)")
    s = g.seed()
    assert_equal("torch.Generator.seed", g.initial_seed(), s, args="initial_seed after seed()")


@pytest.mark.smoke
def test_multinomial_with_replacement(device, seed):
    """multinomial(weights, N, replacement=True) for 2 rows of unnormalised random weights with a zero:
    int64 (2, N), every count within 6 sigma of N p, the zero-weight category never drawn, and a
    generator= replay; catches weights used unnormalised, a category off by one and replacement ignored."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.1, 5, (2, 12))
    w[0, 3] = 0.0
    w[1, 11] = 0.0
    wt = place(w, torch.float32, device, "gapped")
    g = _gen(device, seed)
    s = torch.multinomial(wt, N, replacement=True, generator=g)
    assert_equal("torch.multinomial", (s.dtype, tuple(s.shape)), (torch.int64, (2, N)), args="")
    p = to_numpy(wt)
    p = p / p.sum(-1, keepdims=True)
    counts = np.stack([np.bincount(to_numpy(s)[r], minlength=12) for r in range(2)])
    assert_close("torch.multinomial", counts, N * p, rtol=0.0, atol=float(6 * np.sqrt(N * p * (1 - p)).max()) + 1e-9,
                 args="category counts, 6 sigma")
    assert_equal("torch.multinomial", (int(counts[0, 3]), int(counts[1, 11])), (0, 0), args="zero weight never drawn")
    g.manual_seed(seed)
    assert_equal("torch.multinomial", torch.multinomial(wt, N, replacement=True, generator=g), s, args="generator replay")


def test_multinomial_without_replacement(device, seed):
    """Without replacement: no repeated category in any row (num_samples = k gives a permutation), the
    first draw distributed as p and the second as sum_i p_i p_j / (1 - p_i), both over 40,000 rows at 6
    sigma; a zero-weight category is never drawn while others remain; num_samples > k raises RuntimeError;
    catches sampling with replacement and successive draws that ignore the removal of earlier picks.
    (num_samples above the number of non-zero weights is documented as the caller's obligation, not an
    error, and is not tested.)"""
    rng = np.random.default_rng(seed)
    k = 6
    w = rng.uniform(0.2, 3, k)
    p = w / w.sum()
    rows = 40_000
    wt = torch.tensor(w, dtype=torch.float64, device=device).expand(rows, k)
    g = _gen(device, seed)
    s = to_numpy(torch.multinomial(wt, 3, replacement=False, generator=g))
    assert_true("torch.multinomial", np.all((s[:, 0] != s[:, 1]) & (s[:, 0] != s[:, 2]) & (s[:, 1] != s[:, 2])),
                "a category repeated without replacement", args="3 of 6")
    first = np.bincount(s[:, 0], minlength=k) / rows
    assert_close("torch.multinomial", first, p, rtol=0.0, atol=float(6 * np.sqrt(p * (1 - p) / rows).max()),
                 args="first draw ~ p, 6 sigma")
    second_p = np.array([sum(p[i] * p[j] / (1 - p[i]) for i in range(k) if i != j) for j in range(k)])
    second = np.bincount(s[:, 1], minlength=k) / rows
    assert_close("torch.multinomial", second, second_p, rtol=0.0,
                 atol=float(6 * np.sqrt(second_p * (1 - second_p) / rows).max()), args="second draw, 6 sigma")
    full = to_numpy(torch.multinomial(wt[:100], k, replacement=False, generator=g))
    assert_equal("torch.multinomial", np.sort(full, -1), np.tile(np.arange(k), (100, 1)), args="num_samples = k is a permutation")
    wz = torch.tensor([1.0, 0.0, 2.0, 3.0], device=device)
    z = to_numpy(torch.multinomial(wz.expand(5000, 4), 3, replacement=False, generator=g))
    assert_true("torch.multinomial", not np.any(z == 1), "zero-weight category drawn", args="3 of 3 non-zero")
    assert_raises("torch.multinomial", RuntimeError, torch.multinomial, wz, 5, replacement=False,
                  args="num_samples > categories")


def test_bernoulli(device, seed):
    """bernoulli(p) with 60,000 random probabilities (gapped): sum(x - p) within 6 sigma of 0 overall and in
    each of 5 probability bins, exact 0/1 for p = 0/1, the input dtype kept; Tensor.bernoulli_(0.3) and
    bernoulli(p=...) frequencies within 6 sigma; catches a comparison with the wrong direction (1 - p)
    and a probability ignored for a strided input."""
    rng = np.random.default_rng(seed)
    pr = rng.uniform(0, 1, N)
    pr[:50] = 0.0
    pr[50:100] = 1.0
    p = place(pr, torch.float32, device, "gapped")
    P = to_numpy(p)
    g = _gen(device, seed)
    x = torch.bernoulli(p, generator=g)
    assert_equal("torch.bernoulli", x.dtype, torch.float32, args="dtype kept")
    X = to_numpy(x)
    assert_equal("torch.bernoulli", X[:100], np.concatenate([np.zeros(50), np.ones(50)]), args="p = 0 and p = 1")
    for lo in np.linspace(0, 0.8, 5):
        m = (P >= lo) & (P < lo + 0.2)
        sd = math.sqrt(float((P[m] * (1 - P[m])).sum()))
        assert_close("torch.bernoulli", float((X[m] - P[m]).sum()), 0.0, rtol=0.0, atol=6 * sd,
                     args=f"p in [{lo:.1f}, {lo + 0.2:.1f}): sum(x - p), 6 sigma")
    y = to_numpy(torch.empty(N, device=device).bernoulli_(0.3, generator=g))
    assert_close("torch.Tensor.bernoulli_", y.mean(), 0.3, rtol=0.0, atol=6 * math.sqrt(0.21 / N), args="p=0.3")
    z = to_numpy(torch.bernoulli(torch.empty(N, device=device), p=0.7, generator=g))
    assert_close("torch.bernoulli", z.mean(), 0.7, rtol=0.0, atol=6 * math.sqrt(0.21 / N), args="p=0.7 (float)")


def _std_moments(api, z, args):
    n = z.size
    assert_close(api, float(z.mean()), 0.0, rtol=0.0, atol=6 / math.sqrt(n), args=args + ": mean of z, 6 sigma")
    assert_close(api, float(z.var()), 1.0, rtol=0.0, atol=6 * math.sqrt(2 / n), args=args + ": variance of z, 6 sigma")


def test_normal_forms(device, seed):
    """torch.normal(mean Tensor, std Tensor), (float, Tensor), (Tensor, float) and (float, float, size) with
    60,000 random means/stds: z = (x - mean) / std has mean 0 and variance 1 within 6 sigma and is
    uncorrelated with mean and std (catches mean and std swapped or broadcast wrongly); std = 0 returns the
    mean exactly; a negative std raises RuntimeError."""
    rng = np.random.default_rng(seed)
    mean = place(rng.uniform(-5, 5, N), torch.float32, device, "gapped")
    std = place(rng.uniform(0.1, 3, N), torch.float32, device, "offset")
    M, S = to_numpy(mean), to_numpy(std)
    g = _gen(device, seed)
    x = to_numpy(torch.normal(mean, std, generator=g))
    z = (x - M) / S
    _std_moments("torch.normal", z, "Tensor mean, Tensor std")
    for what, v in (("mean", M), ("std", S)):
        corr = float(np.corrcoef(z, v)[0, 1])
        assert_close("torch.normal", corr, 0.0, rtol=0.0, atol=6 / math.sqrt(N), args=f"corr(z, {what}), 6 sigma")
    x = to_numpy(torch.normal(1.5, std, generator=g))
    _std_moments("torch.normal", (x - 1.5) / S, "float mean, Tensor std")
    x = to_numpy(torch.normal(mean, 2.0, generator=g))
    _std_moments("torch.normal", (x - M) / 2.0, "Tensor mean, float std")
    x = torch.normal(-1.0, 0.5, (300, 200), generator=g, device=device)
    assert_equal("torch.normal", tuple(x.shape), (300, 200), args="size=")
    _std_moments("torch.normal", (to_numpy(x).ravel() + 1.0) / 0.5, "float, float, size")
    zero = torch.zeros(N, device=device)
    assert_equal("torch.normal", torch.normal(mean, zero, generator=g), M, args="std = 0 gives the mean")
    assert_raises("torch.normal", RuntimeError, torch.normal, mean, -std, args="negative std")


def test_randperm(device, seed):
    """randperm(n) is a permutation of 0..n-1 for n in (0, 1, 2, 5, 40,000) with dtype int64 (default) and
    int32; the 24 orders of randperm(4) over 12,000 calls pass a chi-square uniformity test at alpha =
    1e-4 (fixed seed); each value lands in each position of randperm(10) at 1/10 within 6 sigma; a
    40,000-element permutation is uncorrelated with its index; catches a shuffle that is not uniform
    (e.g. the naive swap-with-any) and a large-n path that only partly shuffles."""
    g = _gen(device, seed)
    for n in (0, 1, 2, 5, 40_000):
        for dt in (torch.int64, torch.int32):
            p = torch.randperm(n, generator=g, dtype=dt, device=device)
            assert_equal("torch.randperm", p.dtype, dt, args=f"n={n}")
            assert_equal("torch.randperm", np.sort(to_numpy(p)), np.arange(n), args=f"n={n}, {dt}: a permutation")
    big = to_numpy(torch.randperm(40_000, generator=g, device=device)).astype(np.float64)
    corr = float(np.corrcoef(big, np.arange(40_000))[0, 1])
    assert_close("torch.randperm", corr, 0.0, rtol=0.0, atol=6 / math.sqrt(40_000), args="n=40000: corr(perm, index)")
    M = 12_000
    perms = torch.stack([torch.randperm(4, generator=g, device=device) for _ in range(M)])
    code = to_numpy(perms) @ np.array([64, 16, 4, 1])
    _, counts = np.unique(code, return_counts=True)
    assert_equal("torch.randperm", counts.size, 24, args="n=4: every order appears")
    chi2 = float(((counts - M / 24) ** 2 / (M / 24)).sum())
    assert_true("torch.randperm", chi2 < _chi2_crit(23), f"chi-square {chi2:.1f} over 24 orders exceeds the "
                f"alpha={ALPHA} critical value {_chi2_crit(23):.1f}", args=f"n=4, {M} draws")
    M10 = 6_000
    P = to_numpy(torch.stack([torch.randperm(10, generator=g, device=device) for _ in range(M10)]))
    table = np.stack([(P == v).sum(0) for v in range(10)])
    assert_close("torch.randperm", table, np.full((10, 10), M10 / 10), rtol=0.0, atol=6 * math.sqrt(M10 * 0.09),
                 args="n=10: value x position counts, 6 sigma")


def test_randint(device, seed):
    """randint(low, high) stays in [low, high) and reaches both ends for small ranges (incl. negative low and
    high - low = 1), passes a chi-square uniformity test at alpha = 1e-4 over 7 values, covers a 2^40 range
    and int64 bounds near +-2^62 without overflow, honours dtype=, and raises for high <= low; catches an
    inclusive high, a modulo bias visible at 6 sigma and an overflow in the range computation."""
    g = _gen(device, seed)
    for low, high in ((0, 1), (-3, 4), (-1000, -990), (5, 6)):
        x = to_numpy(torch.randint(low, high, (N,), generator=g, device=device))
        assert_true("torch.randint", x.min() >= low and x.max() < high, f"values outside [{low}, {high})", args="")
        assert_equal("torch.randint", (int(x.min()), int(x.max())), (low, high - 1), args=f"[{low}, {high}) both ends")
    x = to_numpy(torch.randint(-3, 4, (70_000,), generator=g, device=device))
    counts = np.bincount(x + 3, minlength=7)
    chi2 = float(((counts - 10_000) ** 2 / 10_000).sum())
    assert_true("torch.randint", chi2 < _chi2_crit(6), f"chi-square {chi2:.1f} over 7 values exceeds "
                f"{_chi2_crit(6):.1f} (alpha={ALPHA})", args="[-3, 4)")
    big = to_numpy(torch.randint(0, 2 ** 40, (N,), generator=g, device=device)).astype(np.float64)
    assert_true("torch.randint", big.min() >= 0 and big.max() < 2 ** 40, "outside [0, 2^40)", args="")
    assert_close("torch.randint", big.mean() / 2 ** 40, 0.5, rtol=0.0, atol=6 * math.sqrt(1 / 12 / N), args="2^40 range: mean")
    lo, hi = -(2 ** 62), 2 ** 62
    x = torch.randint(lo, hi, (N,), generator=g, device=device)
    X = to_numpy(x)
    assert_true("torch.randint", X.min() >= lo and X.max() < hi, "outside [-2^62, 2^62)", args="")
    assert_close("torch.randint", X.astype(np.float64).mean() / 2 ** 62, 0.0, rtol=0.0, atol=6 * math.sqrt(1 / 3 / N),
                 args="[-2^62, 2^62): mean")
    for dt in (torch.int8, torch.int16, torch.int32, torch.float32):
        y = torch.randint(-5, 6, (1000,), dtype=dt, generator=g, device=device)
        assert_equal("torch.randint", y.dtype, dt, args=f"dtype={dt}")
        Y = to_numpy(y)
        assert_true("torch.randint", Y.min() >= -5 and Y.max() <= 5, "out of range", args=f"dtype={dt}")
    assert_raises("torch.randint", RuntimeError, torch.randint, 5, 5, (3,), args="high == low")


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_rand_randn(device, dtype, seed):
    """rand: values in [0, 1) (never 1), mean 1/2 and variance 1/12 within 6 sigma, the CDF at 0.1/0.5/0.9
    within 6 sigma; randn: mean 0, variance 1 within 6 sigma and the 4th moment 3 within 6 sigma; rand_like
    keeps dtype/shape; float16/bfloat16 rand stays in [0, 1); randn of 7 values (the scalar path) has the same
    moments; catches a uniform on [0, 1], a halved
    variance and a Box-Muller with a wrong constant."""
    g = _gen(device, seed)
    n = 100_000
    u = to_numpy(torch.rand(n, dtype=dtype, generator=g, device=device))
    assert_true("torch.rand", u.min() >= 0 and u.max() < 1, f"values outside [0, 1): {u.min()}, {u.max()}", args="")
    assert_close("torch.rand", u.mean(), 0.5, rtol=0.0, atol=6 * math.sqrt(1 / 12 / n), args="mean, 6 sigma")
    assert_close("torch.rand", u.var(), 1 / 12, rtol=0.0, atol=6 * math.sqrt((1 / 80 - 1 / 144) / n), args="variance, 6 sigma")
    for q in (0.1, 0.5, 0.9):
        assert_close("torch.rand", (u < q).mean(), q, rtol=0.0, atol=6 * math.sqrt(q * (1 - q) / n), args=f"CDF at {q}")
    z = to_numpy(torch.randn(n, dtype=dtype, generator=g, device=device))
    _std_moments("torch.randn", z, "")
    assert_close("torch.randn", float((z ** 4).mean()), 3.0, rtol=0.0, atol=6 * math.sqrt(96 / n), args="4th moment, 6 sigma")
    # Fewer than 16 values take the CPU's scalar Box-Muller loop (16 and more the vectorised one): many small draws.
    small = np.concatenate([to_numpy(torch.randn(7, dtype=dtype, generator=g, device=device)) for _ in range(1500)])
    _std_moments("torch.randn", small, "1500 draws of 7 values")
    like = torch.rand_like(torch.empty(3, 4, dtype=dtype, device=device))
    assert_equal("torch.rand_like", (like.dtype, tuple(like.shape)), (dtype, (3, 4)), args="")
    for low in (torch.float16, torch.bfloat16):
        h = torch.rand(n, dtype=low, generator=g, device=device).float()
        assert_true("torch.rand", bool((h >= 0).all() and (h < 1).all()), f"{low} values outside [0, 1)", args=str(low))


def test_inplace_distributions(device, seed):
    """Tensor.uniform_(a, b), normal_(m, s), exponential_(l), geometric_(p), log_normal_(m, s), cauchy_(m, s) on
    60,000-element gapped tensors: the empirical CDF at the oracle's 10/50/90 % quantiles within 6 sigma
    (scipy.stats); only the viewed elements are written (the gaps keep their NaN); catches a parameter
    ignored or swapped (rate as scale), a geometric counting from 0, and writes through the gaps."""
    st = pytest.importorskip("scipy.stats", reason="SciPy (the ops extra) is the oracle of the in-place samplers")
    g = _gen(device, seed)
    cases = [("uniform_", (-2.0, 3.0), st.uniform(-2.0, 5.0), False),
             ("normal_", (1.5, 0.5), st.norm(1.5, 0.5), False),
             ("exponential_", (2.5,), st.expon(scale=1 / 2.5), False),
             ("geometric_", (0.3,), st.geom(0.3), True),
             ("log_normal_", (0.2, 0.6), st.lognorm(0.6, scale=math.exp(0.2)), False),
             ("cauchy_", (-1.0, 2.0), st.cauchy(-1.0, 2.0), False)]
    for name, args, frozen, discrete in cases:
        buf = torch.full((2 * N + 1,), float("nan"), device=device)
        view = buf[1::2]
        getattr(view, name)(*args, generator=g)
        assert_true(f"torch.Tensor.{name}", bool(torch.isnan(buf[0::2]).all()), "wrote into the gaps of a strided view",
                    args=str(args))
        x = to_numpy(view)
        for q in (0.1, 0.5, 0.9):
            xq = frozen.ppf(q)
            target = frozen.cdf(xq)
            frac = float((x <= xq + (1e-9 if discrete else 0)).mean())
            assert_close(f"torch.Tensor.{name}", frac, float(target), rtol=0.0,
                         atol=6 * math.sqrt(target * (1 - target) / N), args=f"{args}: CDF at the {q:.0%} quantile")
