"""§ 1 Tensors: reductions (sum, mean, prod, max/min, amax/amin, argmax/argmin, std/var, median,
nan-aware reductions, logsumexp, norms, any/all, count_nonzero, cumsum/cumprod, topk, sort, unique)
against NumPy float64 on the same (dtype-rounded) inputs, with dim/keepdim/dtype arguments, ties,
NaN, empty and non-contiguous inputs.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from harness import dtypes
from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from harness.checks import to_numpy as _ref  # float64/complex128/int copy of a tensor's values
from suites.tensors._tensors import random_tensor

NAN, INF = float("nan"), float("inf")
DIMS = [None, 0, 1, -1, (0, 2), (-1, -3)]


def _rand(np_rng, shape, dtype, device, low=-3.0, high=3.0, noncontig=False):
    return random_tensor(np_rng, shape, dtype, device, low, high, noncontig)


def _np_axis(dim):
    return None if dim is None else dim


def _call(fn, x, dim, **kw):
    return fn(x, **kw) if dim is None else fn(x, dim=dim, **kw)


@pytest.mark.smoke
@pytest.mark.dtypes(dtypes.FLOATING + dtypes.COMPLEX)
def test_sum(device, dtype, np_rng):
    """sum over all, an int dim, negative dims and dim tuples, with keepdim, on contiguous and
    permuted inputs, keeps the float dtype; catches a wrong reduced axis, ignored keepdim and broken
    strided reductions."""
    for noncontig in (False, True):
        x = _rand(np_rng, (4, 5, 6), dtype, device, noncontig=noncontig)
        X = _ref(x)
        for dim in DIMS:
            for keepdim in (False, True):
                got = _call(torch.sum, x, dim, keepdim=keepdim) if dim is not None else torch.sum(x)
                exp = X.sum(axis=_np_axis(dim), keepdims=keepdim if dim is not None else False)
                assert_close("torch.sum", got, exp, op="reduction", check_dtype=dtype,
                             args=f"dim={dim}, keepdim={keepdim}, noncontig={noncontig}")


@pytest.mark.dtypes((torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64, torch.bool))
def test_sum_integer_dtype(device, dtype, np_rng):
    """sum/prod/cumsum of integer and bool tensors default to int64 (no int8 overflow) and honour dtype=;
    catches accumulation in the narrow input type."""
    if dtype == torch.bool:
        x = torch.ones(300, dtype=torch.bool, device=device)
    else:
        x = torch.full((300,), 100, dtype=dtype, device=device)  # 30000 overflows int8/uint8/int16 sums
    X = _ref(x).astype(np.int64)
    s = torch.sum(x)
    assert_equal("torch.sum", s.dtype, torch.int64, args=f"{dtype} input")
    assert_equal("torch.sum", s.item(), int(X.sum()), args=f"{dtype} input")
    assert_equal("torch.sum", torch.sum(x, dtype=torch.float64).dtype, torch.float64, args="dtype=float64")
    assert_close("torch.sum", torch.sum(x, dtype=torch.float64), float(X.sum()), op="reduction", args="dtype=float64")
    c = torch.cumsum(x, 0)
    assert_equal("torch.cumsum", c.dtype, torch.int64, args=f"{dtype} input")
    assert_equal("torch.cumsum", c, np.cumsum(X), args=f"{dtype} input")
    small = x[:5]
    assert_equal("torch.prod", torch.prod(small).dtype, torch.int64, args=f"{dtype} input")
    assert_equal("torch.prod", torch.prod(small).item(), int(np.prod(_ref(small).astype(np.int64))), args=f"{dtype} input")


def test_sum_dtype_argument(device, np_rng):
    """sum(dtype=float64) casts before reducing: float32 values whose float32 sum loses precision give
    the float64 sum; catches a dtype= that only casts the result."""
    x = torch.tensor([1.0, 1e8, 1.0, -1e8] * 3, dtype=torch.float32, device=device)
    s = torch.sum(x, dtype=torch.float64)
    assert_equal("torch.sum", s.dtype, torch.float64, args="dtype=float64")
    assert_close("torch.sum", s, 6.0, op="reduction", args="dtype=float64 on catastrophic float32 input")
    assert_close("torch.mean", torch.mean(x, dtype=torch.float64), 0.5, op="reduction", args="dtype=float64")


def test_empty_reductions(device):
    """Empty inputs: sum 0, prod 1, mean NaN, amax/max/argmax without dim raise, any False, all True,
    logsumexp -inf, norm 0, count_nonzero 0; reducing a non-empty dim of a (0, 3) tensor keeps size 0."""
    e = torch.empty(0, device=device)
    assert_equal("torch.sum", torch.sum(e).item(), 0.0, args="empty")
    assert_equal("torch.prod", torch.prod(e).item(), 1.0, args="empty")
    assert_true("torch.mean", math.isnan(torch.mean(e).item()), "mean of empty is not NaN", args="empty")
    assert_equal("torch.any", torch.any(e).item(), False, args="empty")
    assert_equal("torch.all", torch.all(e).item(), True, args="empty")
    assert_equal("torch.logsumexp", torch.logsumexp(e, 0).item(), -INF, args="empty")
    assert_equal("torch.linalg.vector_norm", torch.linalg.vector_norm(e).item(), 0.0, args="empty")
    assert_equal("torch.count_nonzero", torch.count_nonzero(e).item(), 0, args="empty")
    assert_raises("torch.max", (RuntimeError, IndexError), torch.max, e, args="empty, no dim")
    assert_raises("torch.amax", (RuntimeError, IndexError), torch.amax, e, args="empty, no dim")
    assert_raises("torch.argmax", (RuntimeError, IndexError), torch.argmax, e, args="empty, no dim")
    m = torch.empty(0, 3, device=device)
    assert_equal("torch.sum", torch.sum(m, 0), np.zeros(3), args="(0,3), dim=0")
    assert_equal("torch.sum", tuple(torch.sum(m, 1).shape), (0,), args="(0,3), dim=1")
    assert_equal("torch.max", tuple(torch.max(m, 1).values.shape), (0,), args="(0,3), dim=1")
    assert_raises("torch.max", (RuntimeError, IndexError), torch.max, m, 0, args="(0,3), dim=0")


@pytest.mark.dtypes(dtypes.FLOATING)
def test_mean_prod(device, dtype, np_rng):
    """mean and prod over all/dim/dim-tuple with keepdim; catches a mean divided by the wrong count
    (e.g. total numel instead of the reduced size) and a prod that skips elements."""
    x = _rand(np_rng, (3, 4, 5), dtype, device, 0.5, 1.5, noncontig=True)
    X = _ref(x)
    for dim in DIMS:
        for keepdim in (False, True):
            kd = keepdim if dim is not None else False
            got = _call(torch.mean, x, dim, keepdim=keepdim) if dim is not None else torch.mean(x)
            assert_close("torch.mean", got, X.mean(axis=_np_axis(dim), keepdims=kd), op="reduction",
                         check_dtype=dtype, args=f"dim={dim}, keepdim={keepdim}")
    for dim in [None, 0, -1]:
        got = torch.prod(x) if dim is None else torch.prod(x, dim, keepdim=True)
        exp = X.prod() if dim is None else X.prod(axis=dim, keepdims=True)
        assert_close("torch.prod", got, exp, op="reduction", args=f"dim={dim}")
    n = torch.tensor([1.0, NAN, 2.0], dtype=dtype, device=device)
    assert_true("torch.mean", math.isnan(torch.mean(n).item()), "mean does not propagate NaN")
    assert_true("torch.sum", math.isnan(torch.sum(n).item()), "sum does not propagate NaN")
    z = torch.tensor([2.0, 0.0, INF], dtype=dtype, device=device)
    assert_true("torch.prod", math.isnan(torch.prod(z).item()), "prod(0 * inf) is not NaN")


@pytest.mark.dtypes(dtypes.FLOATING + dtypes.INTEGRAL)
def test_max_min_with_dim(device, dtype, np_rng):
    """max/min(dim) return (values, indices) with indices of the first extreme on ties; keepdim;
    without dim a zero-dim value; catches values/indices mismatch, last-occurrence ties, wrong dim."""
    x = _rand(np_rng, (5, 7), dtype, device, -3, 3)  # integer-ish values: many ties
    if dtype.is_floating_point:
        x = x.round()
    X = _ref(x)
    for dim in (0, 1, -1):
        for keepdim in (False, True):
            r = torch.max(x, dim, keepdim=keepdim)
            assert_true("torch.max", hasattr(r, "values") and hasattr(r, "indices"), "max(dim) is not a (values, indices) namedtuple")
            assert_equal("torch.max", r.values, X.max(axis=dim, keepdims=keepdim), args=f"dim={dim}, keepdim={keepdim}")
            assert_equal("torch.max", r.indices, np.expand_dims(X.argmax(axis=dim), dim) if keepdim else X.argmax(axis=dim),
                         args=f"dim={dim}, keepdim={keepdim} (first of ties)")
            assert_equal("torch.max", r.indices.dtype, torch.int64)
            r = torch.min(x, dim, keepdim=keepdim)
            assert_equal("torch.min", r.values, X.min(axis=dim, keepdims=keepdim), args=f"dim={dim}")
            assert_equal("torch.min", r.indices, np.expand_dims(X.argmin(axis=dim), dim) if keepdim else X.argmin(axis=dim),
                         args=f"dim={dim}, keepdim={keepdim} (first of ties)")
    assert_equal("torch.max", torch.max(x), X.max(), args="no dim")
    assert_equal("torch.min", torch.min(x), X.min(), args="no dim")
    v, i = torch.max(x.t(), 0)
    assert_equal("torch.max", i, X.T.argmax(axis=0), args="transposed input, dim=0")


@pytest.mark.dtypes(dtypes.FLOATING + dtypes.INTEGRAL)
def test_argmax_argmin_ties(device, dtype):
    """argmax/argmin return the first occurrence of tied extremes, over the flattened tensor without dim."""
    x = torch.tensor([[1, 5, 5, 0], [5, 0, 0, 5]], dtype=dtype, device=device)
    X = _ref(x)
    assert_equal("torch.argmax", torch.argmax(x), X.argmax(), args="flattened, ties")
    assert_equal("torch.argmin", torch.argmin(x), X.argmin(), args="flattened, ties")
    assert_equal("torch.argmax", torch.argmax(x, dim=1), X.argmax(axis=1), args="dim=1, ties")
    assert_equal("torch.argmin", torch.argmin(x, dim=0), X.argmin(axis=0), args="dim=0, ties")
    assert_equal("torch.argmax", torch.argmax(x, dim=1, keepdim=True), X.argmax(axis=1)[:, None], args="keepdim=True")
    big = torch.zeros(1000, dtype=dtype, device=device)
    big[[17, 400, 999]] = 3
    assert_equal("torch.argmax", torch.argmax(big).item(), 17, args="1000 elements, ties at 17, 400, 999")


@pytest.mark.dtypes(dtypes.FLOATING)
def test_max_nan_propagation(device, dtype):
    """max/min/amax/amin/argmax propagate NaN (the result is NaN and its index is the NaN's index);
    catches comparisons that silently skip NaN."""
    x = torch.tensor([[1.0, NAN, 3.0], [4.0, 5.0, 6.0]], dtype=dtype, device=device)
    assert_true("torch.max", math.isnan(torch.max(x).item()), "max does not propagate NaN")
    assert_true("torch.min", math.isnan(torch.min(x).item()), "min does not propagate NaN")
    r = torch.max(x, 1)
    assert_close("torch.max", r.values, np.array([NAN, 6.0]), op="exact", args="dim=1")
    assert_equal("torch.max", r.indices[0].item(), 1, args="dim=1: index of the NaN")
    assert_close("torch.amax", torch.amax(x, 1), np.array([NAN, 6.0]), op="exact", args="dim=1")
    assert_close("torch.amin", torch.amin(x, 1), np.array([NAN, 4.0]), op="exact", args="dim=1")
    assert_equal("torch.argmax", torch.argmax(x).item(), 1, args="NaN counts as the maximum")
    assert_equal("torch.argmin", torch.argmin(x).item(), 1, args="NaN counts as the minimum")


@pytest.mark.dtypes(dtypes.FLOATING + dtypes.INTEGRAL)
def test_amax_amin(device, dtype, np_rng):
    """amax/amin over int dims, dim tuples, negative dims, keepdim; catches a dim tuple reduced only
    over its first entry."""
    x = _rand(np_rng, (3, 4, 5), dtype, device, -100, 100, noncontig=True)
    X = _ref(x)
    for dim in [0, -1, (0, 2), (1, -1), (0, 1, 2)]:
        for keepdim in (False, True):
            assert_equal("torch.amax", torch.amax(x, dim, keepdim=keepdim), X.max(axis=dim, keepdims=keepdim), args=f"dim={dim}, keepdim={keepdim}")
            assert_equal("torch.amin", torch.amin(x, dim, keepdim=keepdim), X.min(axis=dim, keepdims=keepdim), args=f"dim={dim}, keepdim={keepdim}")
    ex = torch.aminmax(x, dim=1)
    assert_equal("torch.aminmax", ex.min, X.min(axis=1), args="dim=1")
    assert_equal("torch.aminmax", ex.max, X.max(axis=1), args="dim=1")


@pytest.mark.dtypes(dtypes.FLOATING + dtypes.COMPLEX)
def test_std_var(device, dtype, np_rng):
    """std/var with correction=0/1/2 (ddof), the legacy unbiased flag, dims and keepdim; default is
    correction=1; std_mean/var_mean return (std|var, mean). Catches population vs sample swapped and
    ignored correction."""
    x = _rand(np_rng, (4, 6, 5), dtype, device, noncontig=True)
    X = _ref(x)
    for dim in [None, 1, (0, 2), -1]:
        ax = _np_axis(dim)
        for corr in (0, 1, 2):
            kw = {"correction": corr}
            got = torch.var(x, **kw) if dim is None else torch.var(x, dim, **kw)
            assert_close("torch.var", got, X.var(axis=ax, ddof=corr), op="reduction", args=f"dim={dim}, correction={corr}")
            got = torch.std(x, **kw) if dim is None else torch.std(x, dim, **kw)
            assert_close("torch.std", got, X.std(axis=ax, ddof=corr), op="reduction", args=f"dim={dim}, correction={corr}")
    real = torch.float32 if dtype == torch.complex64 else dtype
    assert_equal("torch.var", torch.var(x).dtype, real, args="result is real")
    assert_close("torch.var", torch.var(x), X.var(ddof=1), op="reduction", args="default correction=1")
    assert_close("torch.var", torch.var(x, unbiased=False), X.var(ddof=0), op="reduction", args="unbiased=False")
    assert_close("torch.std", torch.std(x, 1, keepdim=True), X.std(axis=1, ddof=1, keepdims=True), op="reduction", args="keepdim=True")
    s, m = torch.std_mean(x, dim=1, correction=0)
    assert_close("torch.std_mean", s, X.std(axis=1), op="reduction", args="dim=1, correction=0: std")
    assert_close("torch.std_mean", m, X.mean(axis=1), op="reduction", args="dim=1: mean")
    v, m = torch.var_mean(x, dim=(0, 2))
    assert_close("torch.var_mean", v, X.var(axis=(0, 2), ddof=1), op="reduction", args="dim=(0,2): var")
    assert_close("torch.var_mean", m, X.mean(axis=(0, 2)), op="reduction", args="dim=(0,2): mean")


def test_std_single_element(device):
    """std/var of one element: correction=1 gives NaN (zero degrees of freedom), correction=0 gives 0."""
    one = torch.tensor([3.0], device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_true("torch.std", math.isnan(torch.std(one).item()), "std of one element with correction=1 is not NaN")
        assert_true("torch.var", math.isnan(torch.var(one).item()), "var of one element with correction=1 is not NaN")
    assert_equal("torch.std", torch.std(one, correction=0).item(), 0.0, args="correction=0")
    big = torch.full((1000,), 1e4, device=device) + torch.arange(1000, device=device) % 2
    assert_close("torch.var", torch.var(big, correction=0), 0.25, op="reduction", args="large offset (catastrophic cancellation)")


@pytest.mark.dtypes(dtypes.FLOATING + dtypes.INTEGRAL)
def test_median(device, dtype, np_rng):
    """median returns the lower of the two middle values for an even count (not their mean); median(dim)
    returns (values, indices) where input[indices] == values; NaN propagates, nanmedian ignores it."""
    x = torch.tensor([4, 1, 3, 2], dtype=dtype, device=device)
    assert_equal("torch.median", torch.median(x).item(), 2, args="even count: lower median")
    y = _rand(np_rng, (5, 8), dtype, device, -50, 50)
    Y = _ref(y)
    r = torch.median(y, dim=1)
    lower = np.sort(Y, axis=1)[:, (8 - 1) // 2]
    assert_equal("torch.median", r.values, lower, args="dim=1, even count")
    assert_equal("torch.median", np.take_along_axis(Y, _ref(r.indices)[:, None], 1)[:, 0], lower, args="indices point at values")
    r0 = torch.median(y, dim=0, keepdim=True)
    assert_equal("torch.median", r0.values, np.median(Y, axis=0, keepdims=True), args="dim=0, odd count, keepdim")
    if dtype.is_floating_point:
        n = torch.tensor([1.0, NAN, 3.0, 2.0], dtype=dtype, device=device)
        assert_true("torch.median", math.isnan(torch.median(n).item()), "median does not propagate NaN")
        assert_equal("torch.nanmedian", torch.nanmedian(n).item(), 2.0, args="ignores NaN")


QUANTILE_MODES = ("linear", "lower", "higher", "midpoint", "nearest")
# Dyadic q: q*(n-1) is exact in float32 too, so torch (ranks in the input dtype) and NumPy (float64) pick the
# same order statistics, and the .5 ties (q=0.5 with n-1=3, 0.25 with 6, 0.75 with 6, 0.5 with 5) exercise
# 'nearest' (half to even in both). 'linear' is continuous in q and also gets non-dyadic q.
QUANTILE_Q = (0.0, 0.125, 0.25, 0.5, 0.625, 0.75, 1.0)


@pytest.mark.parametrize("interpolation", QUANTILE_MODES)
@pytest.mark.dtypes(dtypes.FLOAT_HIGH)
def test_quantile(device, dtype, interpolation, np_rng):
    """quantile/nanquantile equal numpy.quantile/nanquantile (same method names) for a scalar and a 1-D q,
    over all elements and along each dim with keepdim (q's dim comes first); quantile propagates NaN, and
    nanquantile skips it (an all-NaN slice gives NaN). Catches a wrong interpolation rule (a 'nearest' that
    rounds half up, 'lower'/'higher' swapped, 'midpoint' as linear), q applied along the wrong dim,
    keepdim ignored, NaN sorted as a value, and q outside [0, 1] accepted."""
    x = _rand(np_rng, (4, 7, 6), dtype, device, noncontig=True)
    x[1, :, 2] = x[1, 0, 2]  # a run of ties along dim 1
    X = _ref(x)
    qs = QUANTILE_Q + ((0.1, 0.7, 0.9) if interpolation == "linear" else ())
    q = torch.tensor(qs, dtype=dtype, device=device)
    Q = _ref(q)
    kw = {"interpolation": interpolation}
    # 'lower'/'higher'/'nearest' pick an element (exact); 'linear'/'midpoint' interpolate (a few roundings)
    op = "exact" if interpolation in ("lower", "higher", "nearest") else "elementwise"
    tag = f"interpolation={interpolation!r}"
    for qv in (0.25, 0.5):
        got = torch.quantile(x, qv, **kw)
        assert_equal("torch.quantile", tuple(got.shape), (), args=f"q={qv}, {tag}: zero-dim")
        assert_close("torch.quantile", got, np.quantile(X, qv, method=interpolation), op=op, check_dtype=dtype, args=f"q={qv}, {tag}")
    assert_close("torch.quantile", torch.quantile(x, q, **kw), np.quantile(X, Q, method=interpolation), op=op,
                 args=f"1-D q, all elements, {tag}")
    for dim in (0, 1, -1):
        for keepdim in (False, True):
            assert_close("torch.quantile", torch.quantile(x, q, dim=dim, keepdim=keepdim, **kw),
                         np.quantile(X, Q, axis=dim, keepdims=keepdim, method=interpolation), op=op,
                         args=f"dim={dim}, keepdim={keepdim}, {tag}")
    assert_close("Tensor.quantile", x.quantile(q, dim=1, **kw), np.quantile(X, Q, axis=1, method=interpolation), op=op,
                 args=f"method form, dim=1, {tag}")
    xn = x.clone()
    xn[0, 3, 1] = NAN  # one NaN in slice (0, :, 1) along dim 1
    xn[2, :, 4] = NAN  # an all-NaN slice along dim 1
    XN = _ref(xn)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exp_q = np.quantile(XN, Q, axis=1, method=interpolation)
        exp_nq = np.nanquantile(XN, Q, axis=1, method=interpolation)
    assert_close("torch.quantile", torch.quantile(xn, q, dim=1, **kw), exp_q, op=op, args=f"NaN propagates, {tag}")
    assert_close("torch.nanquantile", torch.nanquantile(xn, q, dim=1, **kw), exp_nq, op=op, args=f"NaN skipped, {tag}")
    assert_close("torch.nanquantile", torch.nanquantile(x, q, dim=1, **kw), np.quantile(X, Q, axis=1, method=interpolation),
                 op=op, args=f"no NaN: same as quantile, {tag}")
    assert_true("torch.quantile", math.isnan(torch.quantile(xn, 0.5, **kw).item()), "quantile over all elements ignored a NaN",
                args=tag)
    assert_raises("torch.quantile", RuntimeError, torch.quantile, x, 1.5, args="q > 1")
    assert_raises("torch.quantile", RuntimeError, torch.quantile, x, torch.tensor([-0.1, 0.5], dtype=dtype, device=device),
                  args="q < 0")
    assert_raises("torch.quantile", RuntimeError, torch.quantile, x, q.reshape(1, -1), args="2-D q")
    assert_raises("torch.quantile", RuntimeError, torch.quantile, x, 0.5, interpolation="bogus", args="unknown interpolation")


@pytest.mark.dtypes(dtypes.FLOAT_HIGH + dtypes.FLOAT_LOW)
def test_nansum_nanmean(device, dtype, np_rng):
    """nansum/nanmean treat NaN as zero / skip it in the count; all-NaN row: nansum 0, nanmean NaN."""
    x = _rand(np_rng, (4, 6), dtype, device)
    x[np_rng.uniform(size=(4, 6)) < 0.3] = NAN
    x[3] = NAN
    X = _ref(x)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exp_mean = np.nanmean(X, axis=1)
        assert_close("torch.nansum", torch.nansum(x), np.nansum(X), op="reduction")
        assert_close("torch.nansum", torch.nansum(x, dim=1), np.nansum(X, axis=1), op="reduction", args="dim=1")
        assert_close("torch.nanmean", torch.nanmean(x, dim=1), exp_mean, op="reduction", args="dim=1 (last row all NaN)")
        assert_close("torch.nanmean", torch.nanmean(x, dim=0, keepdim=True), np.nanmean(X, axis=0, keepdims=True), op="reduction", args="dim=0, keepdim")


@pytest.mark.parametrize("dim", [0, 1, -1, 2])
@pytest.mark.dtypes(dtypes.FLOATING)
def test_softmax_log_softmax(device, dtype, dim, np_rng):
    """softmax(x, dim) = exp(x - max) / sum(exp(x - max)) along `dim` only, log_softmax its log; the
    `dtype=` argument casts before computing; large logits (±1000) neither overflow nor give NaN; a
    non-contiguous input gives the same. Catches normalising over the wrong dim or an unstable kernel."""
    x = _rand(np_rng, (3, 4, 5), dtype, device, -4, 4, noncontig=True)
    X = _ref(x)
    e = np.exp(X - X.max(axis=dim, keepdims=True))
    sm = e / e.sum(axis=dim, keepdims=True)
    assert_close("torch.softmax", torch.softmax(x, dim), sm, op="reduction", args=f"dim={dim}")
    assert_close("Tensor.softmax", x.softmax(dim), sm, op="reduction", args=f"dim={dim}")
    assert_close("torch.log_softmax", torch.log_softmax(x, dim), np.log(sm), op="reduction", args=f"dim={dim}")
    # dtype= casts the input first, so the result has the accuracy of the REQUESTED dtype (checked with its
    # tolerance): a kernel that computes in the input dtype and casts the result misses by ~eps(input).
    for want in (torch.float64, torch.float32):
        if want == dtype:
            continue
        out = torch.softmax(x, dim, dtype=want)
        assert_equal("torch.softmax", out.dtype, want, args=f"dtype={want}")
        assert_close("torch.softmax", out, sm, op="reduction", args=f"dtype={want} (computed after the cast)")
        lout = torch.log_softmax(x, dim, dtype=want)
        assert_equal("torch.log_softmax", lout.dtype, want, args=f"dtype={want}")
        assert_close("torch.log_softmax", lout, np.log(sm), op="reduction", args=f"dtype={want} (computed after the cast)")
    big = torch.tensor([[1000.0, 0.0, -1000.0]], dtype=dtype, device=device)
    assert_close("torch.softmax", torch.softmax(big, 1), np.array([[1.0, 0.0, 0.0]]), op="reduction", args="[1000, 0, -1000]")


@pytest.mark.dtypes(dtypes.FLOATING)
def test_logsumexp(device, dtype, np_rng):
    """logsumexp = log(sum(exp(x))) computed stably: large inputs (1000) do not overflow; -inf entries
    contribute nothing; an all -inf row gives -inf; catches a naive (overflowing) implementation."""
    x = _rand(np_rng, (3, 7), dtype, device, -5, 5)
    X = _ref(x)
    m = X.max(axis=1, keepdims=True)
    exp = (m + np.log(np.exp(X - m).sum(axis=1, keepdims=True)))
    assert_close("torch.logsumexp", torch.logsumexp(x, 1), exp[:, 0], op="reduction", args="dim=1")
    assert_close("torch.logsumexp", torch.logsumexp(x, 1, keepdim=True), exp, op="reduction", args="keepdim=True")
    if dtype in dtypes.FLOAT_HIGH:
        big = torch.tensor([1000.0, 1000.0, -INF], dtype=dtype, device=device)
        assert_close("torch.logsumexp", torch.logsumexp(big, 0), 1000.0 + math.log(2.0), op="reduction", args="[1000, 1000, -inf]")
    neg = torch.full((2, 3), -INF, dtype=dtype, device=device)
    assert_close("torch.logsumexp", torch.logsumexp(neg, 1), np.array([-INF, -INF]), op="exact", args="all -inf")
    assert_close("torch.logsumexp", torch.logsumexp(x, (0, 1)), np.log(np.exp(X).sum()), op="reduction", args="dim=(0,1)")


@pytest.mark.dtypes(dtypes.FLOATING + dtypes.COMPLEX)
def test_vector_norm(device, dtype, np_rng):
    """linalg.vector_norm and Tensor.norm for ord 2 (default), 1, inf, -inf, 0 (count of nonzeros) and 3,
    over dims with keepdim; complex input gives a real norm of |z|. Catches ignored ord or dim."""
    x = _rand(np_rng, (4, 5), dtype, device, noncontig=True)
    x[0, 0] = 0
    A = np.abs(_ref(x))
    refs = {2: lambda a, ax: np.sqrt((a ** 2).sum(axis=ax)), 1: lambda a, ax: a.sum(axis=ax),
            INF: lambda a, ax: a.max(axis=ax), -INF: lambda a, ax: a.min(axis=ax),
            0: lambda a, ax: (a != 0).sum(axis=ax).astype(np.float64), 3: lambda a, ax: ((a ** 3).sum(axis=ax)) ** (1 / 3)}
    for ord_, ref in refs.items():
        for dim in (None, 1, (0, 1)):
            got = torch.linalg.vector_norm(x, ord=ord_, dim=dim)
            assert_close("torch.linalg.vector_norm", got, ref(A, dim), op="reduction", args=f"ord={ord_}, dim={dim}")
    real = torch.float32 if dtype == torch.complex64 else dtype
    assert_equal("torch.linalg.vector_norm", torch.linalg.vector_norm(x).dtype, real, args="real result dtype")
    assert_close("torch.linalg.vector_norm", torch.linalg.vector_norm(x, dim=0, keepdim=True),
                 np.sqrt((A ** 2).sum(axis=0, keepdims=True)), op="reduction", args="keepdim=True")
    assert_close("Tensor.norm", x.norm(), np.sqrt((A ** 2).sum()), op="reduction", args="default p=2")
    assert_close("Tensor.norm", x.norm(p=1, dim=1), A.sum(axis=1), op="reduction", args="p=1, dim=1")
    tiny = torch.tensor([3e-30, 4e-30], dtype=torch.float64, device=device)
    assert_close("torch.linalg.vector_norm", torch.linalg.vector_norm(tiny), 5e-30, op="reduction", atol=0,
                 args="tiny magnitudes (atol 0: the table's absolute floor would hide a zero result)")


@pytest.mark.dtypes(dtypes.FLOAT_HIGH + dtypes.INTEGRAL + dtypes.BOOL + (torch.uint8,))
def test_any_all_count_nonzero(device, dtype, np_rng):
    """any/all treat nonzero as True over all/dim/keepdim and return bool (uint8 for uint8 input, as
    documented); count_nonzero counts per dim; catches any/all swapped or a wrong reduced axis."""
    x = _rand(np_rng, (4, 5), dtype, device, 0, 2) if dtype != torch.bool else _rand(np_rng, (4, 5), dtype, device)
    x[0] = 1 if dtype != torch.bool else True
    x[1] = 0 if dtype != torch.bool else False
    X = _ref(x) != 0
    out_dtype = torch.uint8 if dtype == torch.uint8 else torch.bool
    assert_equal("torch.any", torch.any(x).dtype, out_dtype, args=f"{dtype} input")
    assert_equal("torch.all", torch.all(x).dtype, out_dtype, args=f"{dtype} input")
    assert_equal("torch.any", torch.any(x).item(), bool(X.any()))
    assert_equal("torch.all", torch.all(x).item(), bool(X.all()))
    for dim in (0, 1, -1):
        assert_equal("torch.any", torch.any(x, dim), X.any(axis=dim), args=f"dim={dim}")
        assert_equal("torch.all", torch.all(x, dim), X.all(axis=dim), args=f"dim={dim}")
        assert_equal("torch.all", torch.all(x, dim, keepdim=True), X.all(axis=dim, keepdims=True), args=f"dim={dim}, keepdim")
    assert_equal("torch.count_nonzero", torch.count_nonzero(x), int(X.sum()))
    assert_equal("torch.count_nonzero", torch.count_nonzero(x, dim=1), X.sum(axis=1), args="dim=1")
    assert_equal("torch.count_nonzero", torch.count_nonzero(x, dim=(0, 1)), int(X.sum()), args="dim=(0,1)")


@pytest.mark.dtypes(dtypes.FLOATING + dtypes.INTEGRAL)
def test_cumsum_cumprod(device, dtype, np_rng):
    """cumsum/cumprod along each dim (negative too), with dtype=; cummax/cummin return running
    extremes with indices. Catches an exclusive scan, wrong dim, or ignored dtype."""
    x = _rand(np_rng, (3, 6), dtype, device, -2, 2, noncontig=True)
    X = _ref(x)
    for dim in (0, 1, -1):
        assert_close("torch.cumsum", torch.cumsum(x, dim), np.cumsum(X, axis=dim), op="reduction", args=f"dim={dim}")
        assert_close("torch.cumprod", torch.cumprod(x, dim), np.cumprod(X, axis=dim), op="reduction", args=f"dim={dim}")
    c = torch.cumsum(x, 1, dtype=torch.float64)
    assert_equal("torch.cumsum", c.dtype, torch.float64, args="dtype=float64")
    assert_close("torch.cumsum", c, np.cumsum(X, axis=1), op="reduction", args="dtype=float64")
    cm = torch.cummax(x, 1)
    assert_equal("torch.cummax", cm.values, np.maximum.accumulate(X, axis=1), args="dim=1")
    idx = _ref(cm.indices)
    assert_equal("torch.cummax", np.take_along_axis(X, idx, 1), np.maximum.accumulate(X, axis=1), args="indices point at values")
    assert_equal("torch.cummin", torch.cummin(x, 0).values, np.minimum.accumulate(X, axis=0), args="dim=0")
    e = torch.cumsum(torch.empty(0, device=device, dtype=dtype), 0)
    assert_equal("torch.cumsum", tuple(e.shape), (0,), args="empty")


@pytest.mark.dtypes(dtypes.FLOATING + dtypes.INTEGRAL)
def test_topk(device, dtype, np_rng):
    """topk(k, dim, largest, sorted) returns the k largest (or smallest) values, sorted when asked, with
    indices that point at them; k larger than the dim raises. Catches largest= ignored and wrong order."""
    perm = np_rng.permutation(40).astype(np.float64) - 20  # distinct values: no tie ambiguity
    x = torch.from_numpy(perm.reshape(4, 10)).to(dtype).to(device)
    X = _ref(x)
    for largest in (True, False):
        r = torch.topk(x, 3, dim=1, largest=largest)
        exp = -np.sort(-X, axis=1)[:, :3] if largest else np.sort(X, axis=1)[:, :3]
        assert_equal("torch.topk", r.values, exp, args=f"k=3, dim=1, largest={largest}")
        assert_equal("torch.topk", np.take_along_axis(X, _ref(r.indices), 1), exp, args="indices point at values")
    r = torch.topk(x, 4, dim=0, sorted=True)
    assert_equal("torch.topk", r.values, -np.sort(-X, axis=0), args="k=size, dim=0")
    u = torch.topk(x.flatten(), 5, sorted=False)
    assert_equal("torch.topk", np.sort(_ref(u.values)), np.sort(X.flatten())[-5:], args="sorted=False: same set")
    assert_raises("torch.topk", RuntimeError, torch.topk, x, 11, dim=1, args="k > size")
    if dtype.is_floating_point:
        n = torch.tensor([1.0, NAN, 3.0], dtype=dtype, device=device)
        assert_true("torch.topk", math.isnan(torch.topk(n, 1).values.item()), "NaN is not treated as the largest value")


@pytest.mark.dtypes(dtypes.FLOATING + dtypes.INTEGRAL + dtypes.BOOL)
def test_sort_stable(device, dtype, np_rng):
    """sort(stable=True) keeps the input order of equal elements (ascending and descending); values are
    ordered; indices gather the values back; argsort agrees. Catches an unstable or reversed sort."""
    if dtype == torch.bool:
        x = torch.from_numpy(np_rng.integers(0, 2, size=(3, 50)).astype(bool)).to(device)
    else:
        x = torch.from_numpy(np_rng.integers(-4, 5, size=(3, 50)).astype(np.float64)).to(dtype).to(device)
    X = _ref(x)
    r = torch.sort(x, dim=1, stable=True)
    exp_idx = np.argsort(X, axis=1, kind="stable")
    assert_equal("torch.sort", r.indices, exp_idx, args="stable=True, ascending")
    assert_equal("torch.sort", r.values, np.take_along_axis(X, exp_idx, 1), args="stable=True")
    rd = torch.sort(x, dim=1, descending=True, stable=True)
    # stable descending: equal keys keep input order, so sort on -key with a stable sort
    key = -X.astype(np.float64)
    exp_d = np.argsort(key, axis=1, kind="stable")
    assert_equal("torch.sort", rd.indices, exp_d, args="stable=True, descending=True")
    assert_equal("torch.argsort", torch.argsort(x, dim=1, stable=True), exp_idx, args="stable=True")
    r0 = torch.sort(x, dim=0)
    assert_equal("torch.sort", r0.values, np.sort(X, axis=0), args="dim=0")


def test_sort_nan(device):
    """NaN sorts as the largest value: last ascending, first descending."""
    x = torch.tensor([3.0, NAN, 1.0, -INF, 2.0], device=device)
    assert_close("torch.sort", torch.sort(x).values, np.array([-INF, 1.0, 2.0, 3.0, NAN]), op="exact", args="ascending")
    assert_close("torch.sort", torch.sort(x, descending=True).values, np.array([NAN, 3.0, 2.0, 1.0, -INF]), op="exact", args="descending")


@pytest.mark.dtypes(dtypes.FLOAT_HIGH + dtypes.INTEGRAL + dtypes.BOOL)
def test_unique(device, dtype, np_rng):
    """unique(sorted=True, return_inverse, return_counts, dim) matches np.unique; unique_consecutive
    collapses only adjacent runs. Catches wrong inverse mapping, miscounted duplicates, ignored dim."""
    if dtype == torch.bool:
        x = torch.from_numpy(np_rng.integers(0, 2, size=30).astype(bool)).to(device)
    else:
        x = torch.from_numpy(np_rng.integers(-5, 6, size=30).astype(np.float64)).to(dtype).to(device)
    X = _ref(x)
    vals, inv, cnt = np.unique(X, return_inverse=True, return_counts=True)
    u, i, c = torch.unique(x, sorted=True, return_inverse=True, return_counts=True)
    assert_equal("torch.unique", u, vals, args="sorted=True")
    assert_equal("torch.unique", i, inv.reshape(X.shape), args="return_inverse=True")
    assert_equal("torch.unique", c, cnt, args="return_counts=True")
    assert_equal("torch.unique", u.dtype, dtype)
    m = torch.from_numpy(np.array([[1, 2], [3, 4], [1, 2], [0, 9]])).to(dtype if dtype != torch.bool else torch.int64).to(device)
    ud, idd = torch.unique(m, dim=0, return_inverse=True)
    vals_d, inv_d = np.unique(_ref(m), axis=0, return_inverse=True)
    assert_equal("torch.unique", ud, vals_d, args="dim=0")
    assert_equal("torch.unique", idd, inv_d.reshape(-1), args="dim=0, return_inverse")
    s = torch.tensor([1, 1, 2, 2, 3, 1, 1, 2], device=device)
    uc, cc = torch.unique_consecutive(s, return_counts=True)
    assert_equal("torch.unique_consecutive", uc, np.array([1, 2, 3, 1, 2]))
    assert_equal("torch.unique_consecutive", cc, np.array([2, 2, 1, 2, 1]), args="return_counts")


@pytest.mark.dtypes(dtypes.FLOAT_HIGH)
def test_kthvalue_mode(device, dtype, np_rng):
    """kthvalue(k) is the k-th smallest (1-based); mode returns the most frequent value (smallest of ties
    is not promised, so inputs have a unique mode)."""
    x = torch.from_numpy(np_rng.permutation(12).astype(np.float64).reshape(2, 6)).to(dtype).to(device)
    X = _ref(x)
    for k in (1, 3, 6):
        r = torch.kthvalue(x, k, dim=1)
        assert_equal("torch.kthvalue", r.values, np.sort(X, axis=1)[:, k - 1], args=f"k={k}")
        assert_equal("torch.kthvalue", np.take_along_axis(X, _ref(r.indices)[:, None], 1)[:, 0], np.sort(X, axis=1)[:, k - 1], args="indices")
    m = torch.tensor([4.0, 2.0, 4.0, 1.0, 4.0, 2.0], dtype=dtype, device=device)
    assert_equal("torch.mode", torch.mode(m).values.item(), 4.0)


@pytest.mark.slow
@pytest.mark.dtypes(dtypes.FLOATING)
def test_sum_large(device, dtype, np_rng):
    """sum/mean over 4M elements (multi-level tree reduction, vector tails) within the K-aware reduction
    allowance (harness.tolerances.for_reduction: ~sqrt(K) rounding units times sum|x|, plus the result's
    rounding); values in [-1, 1) so the float16 sum (~1e3) stays finite. Catches a lost partial sum (one
    chunk of the tree dropped or added twice) and accumulation in the input dtype."""
    x = _rand(np_rng, (2048, 2049), dtype, device, -1.0, 1.0)
    X = _ref(x)
    A = np.abs(X)
    assert_close("torch.sum", torch.sum(x), X.sum(), op="reduction", k=X.size, scale=A.sum(), args="2048x2049")
    assert_close("torch.mean", torch.mean(x, 0), X.mean(axis=0), op="reduction", k=2048, scale=A.mean(axis=0), args="dim=0")
    assert_close("torch.sum", torch.sum(x.t(), 1), X.sum(axis=0), op="reduction", k=2048, scale=A.sum(axis=0),
                 args="transposed, dim=1")


@pytest.mark.dtypes(dtypes.FLOATING)
def test_accumulation_precision(device, dtype):
    """Reductions accumulate in a wider type than half-precision inputs and do not sum float32 naively:
    sum(ones(4096)) is exactly 4096 in float16/bfloat16 (a half accumulator stalls at 2048/256),
    mean(ones(10001)) is 1, and 2^20 copies of float32(0.1) sum within 1e-5 of the exact value (a
    sequential float32 loop is ~1e-3 off). Catches reductions that accumulate in the input dtype."""
    ones = torch.ones(4096, dtype=dtype, device=device)
    assert_equal("torch.sum", torch.sum(ones).item(), 4096.0, args=f"ones(4096), {dtype}")
    assert_equal("torch.mean", torch.mean(torch.ones(10001, dtype=dtype, device=device)).item(), 1.0, args="ones(10001)")
    assert_equal("torch.sum", torch.ones(64, 4096, dtype=dtype, device=device).sum(1), np.full(64, 4096.0), args="dim=1")
    if dtype == torch.float32:
        n = 1 << 20
        x = torch.full((n,), 0.1, dtype=torch.float32, device=device)
        exact = n * float(np.float32(0.1))
        assert_close("torch.sum", torch.sum(x), exact, op="reduction", args="2^20 x 0.1f")
        assert_close("torch.mean", torch.mean(x), float(np.float32(0.1)), op="reduction", args="2^20 x 0.1f")
