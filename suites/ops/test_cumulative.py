"""Operator library: cumulative and pairwise numeric ops (cumsum, cumprod, cummax/cummin, logcumsumexp, diff,
trapezoid/cumulative_trapezoid, cdist, lerp, atan2, nan_to_num, isclose/allclose, hypot, logaddexp/logaddexp2,
copysign, nextafter, frexp/ldexp) against NumPy/SciPy in float64 (bit-level functions against NumPy in the
same dtype), with every documented argument, signed zeros, infinities and NaN, gapped (``[..., ::2]`` of a
wider storage, storage offset 1) inputs and sizes past 32,768 elements with random data.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from harness.checks import to_numpy as _ref  # float64/int copy of a tensor's values

NAN, INF = float("nan"), float("inf")
_np_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # NumPy 2 renamed trapz to trapezoid
BIG = 40_000  # past 32,768: the size where CPU kernels switch to chunked/parallel/vectorised paths


def _gapped(values, dtype, device) -> torch.Tensor:
    """``values`` (NumPy, any shape) as ``dtype`` on ``device`` in a view whose last dim has stride 2 and
    whose storage offset is 1 (``big[..., 1::2]``): a real gap between elements, not a permuted dense view."""
    values = np.asarray(values)
    shape = values.shape
    big = torch.zeros(*shape[:-1], 2 * shape[-1] + 1, dtype=dtype, device=device)
    view = big[..., 1::2]
    view.copy_(torch.from_numpy(np.ascontiguousarray(values)).to(dtype))
    return view


def _uniform(np_rng, lo, hi, shape, dtype, device):
    return _gapped(np_rng.uniform(lo, hi, size=shape), dtype, device)


# ---------------------------------------------------------------- scans

@pytest.mark.smoke
@pytest.mark.dtypes(torch.float32, torch.float64)
def test_cumsum(device, dtype, np_rng):
    """cumsum along each dim of a gapped 3-D input, a 40,000-element scan of small integers stored as floats
    (every prefix sum is exact in any summation order, so any dropped/duplicated element or chunk-border
    slip is an exact mismatch), dtype= (float32 -> float64, int32 -> float32, ints default to int64), out=
    and empty inputs; catches a wrong scan dim, chunked scans that lose carries, dtype= only casting the
    result."""
    x = _uniform(np_rng, -3, 3, (4, 6, 37), dtype, device)
    X = _ref(x)
    for dim in (0, 1, 2, -1):
        assert_close("torch.cumsum", torch.cumsum(x, dim), np.cumsum(X, axis=dim), op="reduction", check_dtype=dtype,
                     args=f"dim={dim}")
    ints = _gapped(np_rng.integers(-8, 9, size=BIG), dtype, device)
    assert_equal("torch.cumsum", torch.cumsum(ints, 0), np.cumsum(_ref(ints)), args=f"{BIG} integer-valued floats")
    if dtype == torch.float32:
        fine = torch.tensor([1.0, 2.0 ** -24, 2.0 ** -24, 2.0 ** -24, 2.0 ** -24], device=device)
        d = torch.cumsum(fine, 0, dtype=torch.float64)
        assert_equal("torch.cumsum", d.dtype, torch.float64, args="dtype=float64")
        assert_equal("torch.cumsum", d, np.cumsum(_ref(fine)), args="dtype=float64 accumulates in float64")
    i32 = _gapped(np_rng.integers(-1000, 1000, size=(3, 50)), torch.int32, device)
    I = _ref(i32).astype(np.int64)
    c = torch.cumsum(i32, 1)
    assert_equal("torch.cumsum", c.dtype, torch.int64, args="int32 input: default int64")
    assert_equal("torch.cumsum", c, np.cumsum(I, axis=1), args="int32 input")
    cf = torch.cumsum(i32, 1, dtype=torch.float32)
    assert_equal("torch.cumsum", cf.dtype, torch.float32, args="dtype=float32")
    assert_equal("torch.cumsum", cf, np.cumsum(I, axis=1).astype(np.float64), args="int32 -> dtype=float32")
    out = torch.empty(0, dtype=dtype, device=device)
    torch.cumsum(x, 2, out=out)
    assert_close("torch.cumsum", out, np.cumsum(X, axis=2), op="reduction", args="out=")
    assert_equal("torch.cumsum", tuple(torch.cumsum(torch.empty(3, 0, device=device), 1).shape), (3, 0), args="empty dim")


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_cumprod(device, dtype, np_rng):
    """cumprod along each dim of a gapped input (factors in [0.5, 1.5]), with exact zeros (every later
    product exactly 0), dtype=float64, and integer inputs (int64 result); its gradient with one and two
    zeros in the row matches finite differences (gradcheck, float64). Catches a wrong scan dim, zeros
    handled by division (NaN/inf), the zero-aware backward path being wrong."""
    x = _uniform(np_rng, 0.5, 1.5, (3, 5, 33), dtype, device)
    X = _ref(x)
    for dim in (0, 1, -1):
        assert_close("torch.cumprod", torch.cumprod(x, dim), np.cumprod(X, axis=dim), op="reduction", check_dtype=dtype,
                     args=f"dim={dim}")
    z = x.clone()
    z[:, :, 7] = 0
    Z = _ref(z)
    got = torch.cumprod(z, -1)
    assert_close("torch.cumprod", got, np.cumprod(Z, axis=-1), op="reduction", args="zeros at position 7")
    assert_equal("torch.cumprod", _ref(got)[..., 7:], np.zeros(Z[..., 7:].shape), args="exactly 0 after a zero")
    d = torch.cumprod(x, -1, dtype=torch.float64)
    assert_equal("torch.cumprod", d.dtype, torch.float64, args="dtype=float64")
    assert_close("torch.cumprod", d, np.cumprod(X, axis=-1), op="reduction", dtype=torch.float64, args="dtype=float64")
    i = torch.from_numpy(np_rng.integers(-3, 4, size=20)).to(torch.int32).to(device)
    ci = torch.cumprod(i, 0)
    assert_equal("torch.cumprod", ci.dtype, torch.int64, args="int32 input: default int64")
    assert_equal("torch.cumprod", ci, np.cumprod(_ref(i).astype(np.int64)), args="int32 input")
    for zeros in ([2], [1, 4]) if dtype == torch.float64 else ():  # float64 gradcheck, once per device
        g = torch.tensor(np_rng.uniform(0.5, 1.5, size=6), dtype=torch.float64, device=device)
        g[zeros] = 0
        g.requires_grad_(True)
        ok = torch.autograd.gradcheck(lambda t: torch.cumprod(t, 0), (g,), raise_exception=False)
        assert_true("torch.cumprod", ok, "backward differs from finite differences", args=f"zeros at {zeros}")


@pytest.mark.dtypes(torch.float32, torch.int64)
@pytest.mark.parametrize("op", ["cummax", "cummin"])
def test_cummax_cummin(device, dtype, op, np_rng):
    """cummax/cummin values equal NumPy's maximum/minimum.accumulate along each dim of a gapped tied input
    and of a 40,000-element row, and each index points at an element equal to the value at or before its
    position (torch documents no rule among ties, so any tied index passes); NaN propagates from its
    position on with an index pointing at a NaN; the gradient goes to the indexed elements. Catches
    max/min swapped, a stale index after an update, an index past the current position, NaN skipped."""
    fn = getattr(torch, op)
    acc = np.maximum.accumulate if op == "cummax" else np.minimum.accumulate
    x = _gapped(np_rng.integers(-6, 7, size=(5, 7, 19)), dtype, device)
    X = _ref(x)
    for dim in (0, 1, -1):
        v, i = fn(x, dim)
        ev = acc(X, axis=dim)
        assert_equal(f"torch.{op}", v, ev, args=f"dim={dim}")
        I = _ref(i)
        assert_equal(f"torch.{op}", np.take_along_axis(X, I, axis=dim), ev, args=f"dim={dim}: input[indices] == values")
        pos = np.moveaxis(np.broadcast_to(np.arange(X.shape[dim]).reshape([-1] + [1] * (X.ndim - 1)),
                                          np.moveaxis(X, dim, 0).shape), 0, dim)
        assert_true(f"torch.{op}", (I <= pos).all() and (I >= 0).all(), "an index after its position", args=f"dim={dim}")
    # a random walk drifting towards new extremes: the running max/min keeps moving past 32,768 (random data
    # settles on its extreme early, so a chunk-relative index past the grain would go unseen)
    walk = np.cumsum(np_rng.integers(-3, 5, size=BIG)) * (1 if op == "cummax" else -1)
    big = _gapped(walk, dtype, device)
    B = _ref(big)
    v, i = fn(big, 0)
    assert_equal(f"torch.{op}", v, acc(B), args=f"{BIG} elements")
    assert_equal(f"torch.{op}", B[_ref(i)], acc(B), args=f"{BIG} elements: indices")
    if dtype.is_floating_point:
        n = torch.tensor([1.0, 3.0, NAN, 5.0, -2.0, NAN, 0.0], dtype=dtype, device=device)
        v, i = fn(n, 0)
        assert_equal(f"torch.{op}", v, acc(_ref(n)), args="NaN propagates")
        assert_true(f"torch.{op}", np.isnan(_ref(n)[_ref(i)[2:]]).all(), "index of a NaN result not at a NaN", args="NaN")
        g = torch.tensor(np_rng.permutation(12).astype(np.float64), device=device, requires_grad=True)
        v, i = fn(g, 0)
        v.backward(torch.ones_like(v))
        assert_equal(f"torch.{op}", g.grad, np.bincount(_ref(i), minlength=12).astype(np.float64),
                     args="grad goes to the indexed elements")


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_logcumsumexp(device, dtype, np_rng):
    """logcumsumexp equals NumPy's logaddexp.accumulate (float64) on gapped inputs along each dim with
    values up to +-1000 (where exp overflows), a 40,000-element row, leading -inf (stays -inf until a finite
    value), +inf (inf from then on), an all -inf row and NaN; catches the naive log(cumsum(exp)), -inf
    turning into NaN, a wrong scan dim."""
    x = _uniform(np_rng, -1000, 1000, (3, 4, 41), dtype, device)
    X = _ref(x)
    for dim in (0, 1, -1):
        assert_close("torch.logcumsumexp", torch.logcumsumexp(x, dim), np.logaddexp.accumulate(X, axis=dim),
                     op="reduction", check_dtype=dtype, args=f"dim={dim}, values in [-1000, 1000]")
    big = _gapped(np_rng.standard_normal(BIG) * 3, dtype, device)
    assert_close("torch.logcumsumexp", torch.logcumsumexp(big, 0), np.logaddexp.accumulate(_ref(big)), op="reduction",
                 args=f"{BIG} elements")
    special = torch.tensor([[-INF, -INF, 0.0, -INF, 1.0, INF, 2.0],
                            [-INF] * 7,
                            [1e3, 1e3, -1e3, NAN, 0.0, 0.0, 0.0]], dtype=dtype, device=device)
    with np.errstate(invalid="ignore"):
        exp = np.logaddexp.accumulate(_ref(special), axis=1)
    assert_close("torch.logcumsumexp", torch.logcumsumexp(special, 1), exp, op="reduction", args="-inf, +inf, NaN")


def test_diff(device, np_rng):
    """diff(n, dim, prepend, append) equals numpy.diff for n = 1, 2, 3, both dims, prepend/append tensors,
    n past the size (empty), uint8 (wrapping) and bool (xor) inputs, on gapped inputs; catches n ignored,
    prepend and append swapped, a wrong dim, bool subtraction."""
    x = _uniform(np_rng, -5, 5, (6, 23), torch.float64, device)
    X = _ref(x)
    pre = torch.tensor(np_rng.uniform(-5, 5, size=(6, 2)), device=device)
    app = torch.tensor(np_rng.uniform(-5, 5, size=(6, 3)), device=device)
    for n in (1, 2, 3):
        for dim in (0, 1, -1):
            assert_close("torch.diff", torch.diff(x, n=n, dim=dim), np.diff(X, n=n, axis=dim), op="elementwise",
                         args=f"n={n}, dim={dim}")
        got = torch.diff(x, n=n, dim=1, prepend=pre, append=app)
        assert_close("torch.diff", got, np.diff(X, n=n, axis=1, prepend=_ref(pre), append=_ref(app)), op="elementwise",
                     args=f"n={n}, prepend (6,2), append (6,3)")
    assert_equal("torch.diff", tuple(torch.diff(x, n=30, dim=1).shape), (6, 0), args="n > size")
    u = _gapped(np_rng.integers(0, 256, size=40), torch.uint8, device)
    assert_equal("torch.diff", torch.diff(u), np.diff(_ref(u)), args="uint8 wraps")
    b = torch.from_numpy(np_rng.integers(0, 2, size=30).astype(bool)).to(device)
    assert_equal("torch.diff", torch.diff(b), np.diff(_ref(b)), args="bool: xor")


def test_trapezoid(device, np_rng):
    """trapezoid and cumulative_trapezoid with x= (a non-uniform 1-D grid, and a grid of y's shape), dx=,
    the default spacing 1 and dim=, equal numpy.trapezoid / scipy.integrate.cumulative_trapezoid on gapped
    inputs; a length-1 dim integrates to 0. Catches x ignored in favour of unit spacing, dx ignored, the
    wrong dim integrated, an off-by-one cumulative result."""
    scipy_integrate = pytest.importorskip("scipy.integrate", reason="SciPy (the ops extra) is the cumulative_trapezoid oracle")
    y = _uniform(np_rng, -2, 2, (3, 4, 50), torch.float64, device)
    Y = _ref(y)
    xs = np.cumsum(np_rng.uniform(0.1, 1.0, size=50))
    xt = torch.tensor(xs, device=device)
    xfull = _gapped(np.cumsum(np_rng.uniform(0.1, 1.0, size=(3, 4, 50)), axis=-1), torch.float64, device)
    XF = _ref(xfull)
    cases = [("default dx=1", {}, dict(), dict()),
             ("dx=0.37", dict(dx=0.37), dict(dx=0.37), dict(dx=0.37)),
             ("x 1-D", dict(x=xt), dict(x=xs), dict(x=xs)),
             ("x full", dict(x=xfull), dict(x=XF), dict(x=XF))]
    for name, tkw, nkw, skw in cases:
        assert_close("torch.trapezoid", torch.trapezoid(y, **tkw), _np_trapezoid(Y, axis=-1, **nkw), op="reduction", args=name)
        assert_close("torch.cumulative_trapezoid", torch.cumulative_trapezoid(y, **tkw),
                     scipy_integrate.cumulative_trapezoid(Y, axis=-1, **skw), op="reduction", args=name)
    for dim in (0, 1):
        assert_close("torch.trapezoid", torch.trapezoid(y, dx=0.5, dim=dim), _np_trapezoid(Y, dx=0.5, axis=dim),
                     op="reduction", args=f"dx=0.5, dim={dim}")
        assert_close("torch.cumulative_trapezoid", torch.cumulative_trapezoid(y, dx=0.5, dim=dim),
                     scipy_integrate.cumulative_trapezoid(Y, dx=0.5, axis=dim), op="reduction", args=f"dx=0.5, dim={dim}")
    assert_close("torch.trapezoid", torch.trapezoid(y[..., :1]), np.zeros((3, 4)), op="exact", args="length 1")
    assert_equal("torch.cumulative_trapezoid", tuple(torch.cumulative_trapezoid(y[..., :1]).shape), (3, 4, 0), args="length 1")


@pytest.mark.parametrize("p", [0.0, 1.0, 1.5, 2.0, INF])
def test_cdist(device, p, np_rng):
    """cdist(x1, x2, p) on batched gapped float32 inputs equals scipy.spatial.distance.cdist (p=0: count of
    differing coordinates; 1: cityblock; 1.5: minkowski; 2: euclidean under every compute_mode, 30 rows so
    the default mode takes the matmul path; inf: chebyshev); the p=1.5/2 gradient matches finite
    differences. Catches p ignored (always euclidean), the matmul path's formula wrong, batch rows mixed."""
    distance = pytest.importorskip("scipy.spatial.distance", reason="SciPy (the ops extra) is the cdist oracle")
    x1 = _uniform(np_rng, -1, 1, (2, 30, 7), torch.float32, device)
    x2 = _uniform(np_rng, -1, 1, (2, 27, 7), torch.float32, device)
    if p == 0.0:  # exact ties in some coordinates so the count is not always 7
        x2 = x2.clone()
        x2[:, :5, :3] = x1[:, :5, :3]
    A, B = _ref(x1), _ref(x2)
    if p == 0.0:
        ref = np.stack([distance.cdist(A[b], B[b], "hamming") * 7 for b in range(2)])
    else:
        ref = np.stack([distance.cdist(A[b], B[b], "minkowski", p=p) for b in range(2)])
    modes = ["use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist"] if p == 2.0 else [None]
    for mode in modes:
        kw = {} if mode is None else dict(compute_mode=mode)
        got = torch.cdist(x1, x2, p=p, **kw)
        # The matmul path computes |a|^2 + |b|^2 - 2 a.b (cancellation over 7 coordinates): the matmul class.
        assert_close("torch.cdist", got, ref, op="matmul" if p == 2.0 else "reduction", check_dtype=torch.float32,
                     args=f"p={p}, compute_mode={mode}")
    if p in (1.5, 2.0):
        a = torch.tensor(np_rng.uniform(-1, 1, (4, 3)), device=device, requires_grad=True)
        b = torch.tensor(np_rng.uniform(-1, 1, (5, 3)), device=device, requires_grad=True)
        ok = torch.autograd.gradcheck(lambda s, t: torch.cdist(s, t, p=p), (a, b), raise_exception=False)
        assert_true("torch.cdist", ok, "backward differs from finite differences", args=f"p={p}")
    assert_raises("torch.cdist", RuntimeError, torch.cdist, x1, x2[..., :5], p=p, args="feature sizes 7 vs 5")


@pytest.mark.dtypes(torch.float32, torch.bfloat16)
def test_lerp(device, dtype, np_rng):
    """lerp(start, end, weight) = start + weight * (end - start) for scalar weights inside and outside
    [0, 1] and a broadcast tensor weight, on gapped inputs of 40,000 elements, with out= and in-place
    Tensor.lerp_; catches weight applied to the wrong end, the >= 0.5 branch of the kernel using the wrong
    formula, tensor weight not broadcast."""
    s = _uniform(np_rng, -5, 5, (4, BIG // 4), dtype, device)
    e = _uniform(np_rng, -5, 5, (4, BIG // 4), dtype, device)
    S, E = _ref(s), _ref(e)
    for w in (0.0, 0.3, 0.5, 0.7, 1.0, -0.5, 1.5):  # both kernel branches (weight < 0.5 and >= 0.5), extrapolation
        n = None if w in (0.3, 0.7) else 500  # every weight on a prefix, the two branches on all 40,000
        assert_close("torch.lerp", torch.lerp(s[:, :n], e[:, :n], w), (S + w * (E - S))[:, :n], op="elementwise",
                     check_dtype=dtype, args=f"weight={w}")
    wt = _uniform(np_rng, -0.2, 1.2, (1, BIG // 4), dtype, device)
    W = _ref(wt)
    assert_close("torch.lerp", torch.lerp(s, e, wt), S + W * (E - S), op="elementwise", args="tensor weight (1, n)")
    out = torch.empty(0, dtype=dtype, device=device)
    torch.lerp(s, e, wt, out=out)
    assert_close("torch.lerp", out, S + W * (E - S), op="elementwise", args="out=")
    c = s.clone()
    c.lerp_(e, 0.25)
    assert_close("Tensor.lerp_", c, S + 0.25 * (E - S), op="elementwise", args="in place, weight=0.25")


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_atan2(device, dtype, np_rng):
    """atan2(y, x) equals numpy.arctan2 over all four quadrants (40,000 gapped random points), broadcast
    operands, and the IEEE special cases: signed zeros (atan2(+-0, -0) = +-pi, atan2(+-0, +0) = +-0, sign of
    a zero result kept), infinities; catches atan(y/x) without the quadrant fix, swapped arguments, lost
    signed zeros."""
    y = _uniform(np_rng, -5, 5, (2, BIG // 2), dtype, device)
    x = _uniform(np_rng, -5, 5, (2, BIG // 2), dtype, device)
    assert_close("torch.atan2", torch.atan2(y, x), np.arctan2(_ref(y), _ref(x)), op="elementwise", check_dtype=dtype,
                 args=f"{BIG} random points")
    col = torch.tensor([[-2.0], [3.0]], dtype=dtype, device=device)
    assert_close("torch.atan2", torch.atan2(y[:, :50], col), np.arctan2(_ref(y[:, :50]), _ref(col)), op="elementwise",
                 args="broadcast x (2,1)")
    ys = [0.0, -0.0, 0.0, -0.0, 1.0, -1.0, 0.0, -0.0, INF, -INF, INF, -INF, INF, 2.0, -2.0, NAN]
    xs = [0.0, 0.0, -0.0, -0.0, 0.0, -0.0, 3.0, -3.0, INF, INF, -INF, -INF, 1.0, -INF, INF, 1.0]
    yt = torch.tensor(ys, dtype=dtype, device=device)
    xt = torch.tensor(xs, dtype=dtype, device=device)
    got = torch.atan2(yt, xt)
    exp = np.arctan2(np.array(ys), np.array(xs))
    assert_close("torch.atan2", got, exp, op="elementwise", args="signed zeros and infinities")
    zero = exp == 0
    assert_equal("torch.atan2", np.signbit(_ref(got)[zero]), np.signbit(exp[zero]), args="sign of zero results")


@pytest.mark.dtypes(torch.float32, torch.float64, torch.bfloat16, torch.float16)
def test_nan_to_num(device, dtype, np_rng):
    """nan_to_num replaces NaN with nan= (default 0), +inf with posinf= (default the dtype's largest finite
    value) and -inf with neginf= (default the lowest), leaves finite values alone, passes integer and bool
    tensors through unchanged (same dtype); out= and in-place nan_to_num_ agree. Catches defaults taken from
    float32 for other dtypes, posinf/neginf swapped, finite values altered, integer inputs converted."""
    big_finite = {torch.float32: float(np.finfo(np.float32).max), torch.float64: float(np.finfo(np.float64).max),
                  torch.float16: 65504.0, torch.bfloat16: (2 - 2.0 ** -7) * 2.0 ** 127}[dtype]  # closed forms
    vals = np_rng.uniform(-3, 3, size=(3, 64))
    vals[0, ::5], vals[1, ::7], vals[2, ::3] = np.nan, np.inf, -np.inf
    x = _gapped(vals, dtype, device)
    X = _ref(x)
    for kw in (dict(), dict(nan=2.5), dict(posinf=1.0), dict(neginf=-7.0), dict(nan=-1.0, posinf=9.0, neginf=-9.0)):
        exp = X.copy()
        exp[np.isnan(X)] = kw.get("nan", 0.0)
        exp[np.isposinf(X)] = kw.get("posinf", big_finite)
        exp[np.isneginf(X)] = kw.get("neginf", -big_finite)
        got = torch.nan_to_num(x, **kw)
        assert_close("torch.nan_to_num", got, exp, op="exact", check_dtype=dtype, args=str(kw))
        out = torch.empty(0, dtype=dtype, device=device)
        torch.nan_to_num(x, **kw, out=out)
        assert_close("torch.nan_to_num", out, exp, op="exact", args=f"{kw}, out=")
        c = x.clone()
        c.nan_to_num_(**kw)
        assert_close("Tensor.nan_to_num_", c, exp, op="exact", args=f"{kw}, in place")
    for idt in (torch.int8, torch.int32, torch.int64, torch.uint8, torch.bool):
        src = np_rng.integers(0, 2, size=20).astype(bool) if idt == torch.bool else np_rng.integers(0, 100, size=20)
        it = torch.from_numpy(src).to(idt).to(device)
        got = torch.nan_to_num(it, nan=5.0, posinf=6.0, neginf=-6.0)
        assert_equal("torch.nan_to_num", got.dtype, idt, args=f"{idt} passthrough dtype")
        assert_equal("torch.nan_to_num", got, src, args=f"{idt} passthrough values")


def test_isclose_allclose(device, np_rng):
    """isclose/allclose use |a - b| <= atol + rtol * |b| (asymmetric in b, like NumPy), with the defaults
    rtol=1e-5, atol=1e-8; inf equals only the same inf; NaN equals NaN only with equal_nan; integer inputs
    compare exactly through the same rule; on hand-placed boundary cases (float64) and 40,000 random pairs
    (float32, away from the float32-vs-float64 ambiguity); a negative rtol raises. Catches rtol/atol
    swapped, |a| used instead of |b|, inf - inf = NaN making inf unequal, equal_nan ignored."""
    # 10 vs 9.05 with rtol=0.1: |a-b| = 0.95 lies between rtol*|b| = 0.905 and rtol*|a| = 1.0 (asymmetry)
    a = torch.tensor([1.0, 1.0 + 9e-6, 1.0 + 1.1e-5, 100.0, 100.0 + 9e-4, 1e-9, 0.0, INF, INF, -INF, NAN, NAN, 1e308, 5.0,
                      10.0, 9.05], dtype=torch.float64, device=device)
    b = torch.tensor([1.0, 1.0, 1.0, 100.0 + 9e-4, 100.0, 0.0, 2e-8, INF, -INF, -INF, NAN, 1.0, INF, 5.0 + 1e-6,
                      9.05, 10.0], dtype=torch.float64, device=device)
    A, B = _ref(a), _ref(b)
    for kw in (dict(), dict(rtol=0.0, atol=1e-6), dict(rtol=1e-3, atol=0.0), dict(equal_nan=True),
               dict(rtol=1e-5, atol=1e-8, equal_nan=True), dict(rtol=0.0, atol=0.0), dict(rtol=0.1, atol=0.0)):
        exp = np.isclose(A, B, **kw)
        assert_equal("torch.isclose", torch.isclose(a, b, **kw), exp, args=f"boundary cases, {kw}")
        assert_equal("torch.isclose", torch.isclose(b, a, **kw), np.isclose(B, A, **kw), args=f"swapped, {kw}")
        assert_equal("torch.allclose", torch.allclose(a, b, **kw), bool(np.allclose(A, B, **kw)), args=str(kw))
    fin = slice(0, 6)
    assert_equal("torch.allclose", torch.allclose(a[fin][:1], b[fin][:1]), True, args="equal tensors")
    x = _uniform(np_rng, -10, 10, (BIG,), torch.float32, device)
    y = (x * (1 + torch.tensor(np_rng.uniform(-3e-5, 3e-5, size=BIG), dtype=torch.float32, device=device))).contiguous()
    X, Y = _ref(x), _ref(y)
    margin = np.abs(np.abs(X - Y) - (1e-8 + 1e-5 * np.abs(Y)))
    keep = margin > 1e-3 * (1e-8 + 1e-5 * np.abs(Y))  # float32 |a-b| rounding cannot flip these
    keep_t = torch.from_numpy(keep).to(device)
    assert_equal("torch.isclose", torch.isclose(x, y)[keep_t], np.isclose(X, Y)[keep], args=f"{int(keep.sum())} random float32 pairs")
    i = torch.tensor([5, 7, -3, 100], device=device)
    j = torch.tensor([6, 7, -1, 99], device=device)
    assert_equal("torch.isclose", torch.isclose(i, j, rtol=0, atol=1), np.array([True, True, False, True]), args="int64, atol=1")
    assert_equal("torch.isclose", torch.isclose(i, j), np.array([False, True, False, False]), args="int64, defaults")
    assert_raises("torch.isclose", RuntimeError, torch.isclose, a, b, rtol=-1.0, args="rtol=-1")


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_hypot(device, dtype, np_rng):
    """hypot equals numpy.hypot on 40,000 gapped random pairs, on values whose squares overflow or underflow
    the dtype (1e30 / 1e-30 in float32, 1e300 / 1e-300 in float64), with broadcasting, and hypot(inf, NaN)
    = inf (C99); catches the naive sqrt(x*x + y*y)."""
    x = _uniform(np_rng, -5, 5, (4, BIG // 4), dtype, device)
    y = _uniform(np_rng, -5, 5, (4, BIG // 4), dtype, device)
    assert_close("torch.hypot", torch.hypot(x, y), np.hypot(_ref(x), _ref(y)), op="elementwise", check_dtype=dtype, args="random")
    e = 30 if dtype == torch.float32 else 300
    big = torch.tensor([3 * 10.0 ** e, 10.0 ** -e, 3 * 10.0 ** -e, INF, NAN, 0.0], dtype=dtype, device=device)
    big2 = torch.tensor([4 * 10.0 ** e, 10.0 ** -e, 4 * 10.0 ** -e, NAN, INF, -0.0], dtype=dtype, device=device)
    assert_close("torch.hypot", torch.hypot(big, big2), np.hypot(_ref(big), _ref(big2)), op="elementwise",
                 args="overflowing/underflowing squares, inf with NaN")
    assert_close("torch.hypot", torch.hypot(x[:, :3], torch.tensor(2.0, dtype=dtype, device=device)),
                 np.hypot(_ref(x[:, :3]), 2.0), op="elementwise", args="broadcast scalar tensor")


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_logaddexp(device, dtype, np_rng):
    """logaddexp / logaddexp2 equal numpy.logaddexp / logaddexp2 on 40,000 gapped random pairs in
    [-1000, 1000] (exp overflows), equal arguments, and infinities: (-inf, -inf) = -inf, (inf, inf) = inf,
    (inf, -inf) = inf, (x, -inf) = x; catches the naive log(exp(a) + exp(b)), NaN from inf - inf, base e
    used for logaddexp2."""
    a = _uniform(np_rng, -1000, 1000, (2, BIG // 2), dtype, device)
    b = _uniform(np_rng, -1000, 1000, (2, BIG // 2), dtype, device)
    A, B = _ref(a), _ref(b)
    special_a = torch.tensor([-INF, INF, INF, 3.0, 700.0, -5.0, NAN], dtype=dtype, device=device)
    special_b = torch.tensor([-INF, INF, -INF, -INF, 700.0, -5.0, 1.0], dtype=dtype, device=device)
    for name, tf, nf in (("logaddexp", torch.logaddexp, np.logaddexp), ("logaddexp2", torch.logaddexp2, np.logaddexp2)):
        assert_close(f"torch.{name}", tf(a, b), nf(A, B), op="elementwise", check_dtype=dtype, args="values in [-1000, 1000]")
        small_a, small_b = a[:, :500] / 500, b[:, :500] / 500
        assert_close(f"torch.{name}", tf(small_a, small_b), nf(_ref(small_a), _ref(small_b)), op="elementwise",
                     args="values in [-2, 2]")
        with np.errstate(invalid="ignore"):  # NumPy warns on its own inf - inf; the result is what we compare
            exp = nf(_ref(special_a), _ref(special_b))
        assert_close(f"torch.{name}", tf(special_a, special_b), exp, op="elementwise", args="infinities, equal arguments, NaN")


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_copysign(device, dtype, np_rng):
    """copysign(input, other) takes the magnitude of input and the sign bit of other, including -0.0 in other
    (negative) and signed zeros and NaN in input; integer input promotes to the default float dtype;
    broadcasting; against numpy.copysign. Catches sign taken from other > 0 (so -0.0 counts as positive),
    magnitude lost, integer input kept integral."""
    x = _uniform(np_rng, -5, 5, (3, 1000), dtype, device)
    o = _uniform(np_rng, -5, 5, (3, 1000), dtype, device)
    got = torch.copysign(x, o)
    exp = np.copysign(_ref(x), _ref(o))
    assert_close("torch.copysign", got, exp, op="exact", check_dtype=dtype, args="random")
    mag = torch.tensor([1.0, 2.0, 0.0, -0.0, NAN, INF, -3.0, 4.0], dtype=dtype, device=device)
    sgn = torch.tensor([-0.0, 0.0, -1.0, 1.0, -1.0, -0.0, INF, -INF], dtype=dtype, device=device)
    got = torch.copysign(mag, sgn)
    exp = np.copysign(_ref(mag), _ref(sgn))
    assert_close("torch.copysign", got, exp, op="exact", args="signed zeros, inf, NaN")
    assert_equal("torch.copysign", np.signbit(_ref(got)), np.signbit(exp), args="sign bits")
    i = torch.tensor([1, -2, 3], device=device)
    gi = torch.copysign(i, torch.tensor([-0.0], dtype=dtype, device=device))
    assert_equal("torch.copysign", gi.dtype, dtype, args="int input promotes to the float operand's dtype")
    assert_equal("torch.copysign", gi, np.array([-1.0, -2.0, -3.0]), args="int input, other=-0.0")
    gd = torch.copysign(i, torch.tensor([-1, 1, -1], device=device))
    assert_equal("torch.copysign", gd.dtype, torch.get_default_dtype(), args="int, int -> default float dtype")


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_nextafter(device, dtype, np_rng):
    """nextafter(input, other) is the next representable value of input's dtype towards other: equal to
    numpy.nextafter in the same dtype bit for bit, for random pairs, towards +-inf, equal operands (returns
    other), from 0 (smallest subnormal), from the largest finite value and NaN; catches a step computed in
    float64 for float32 (or a fixed epsilon), direction ignored, subnormals flushed."""
    npdt = np.float32 if dtype == torch.float32 else np.float64
    a = np_rng.uniform(-5, 5, size=500).astype(npdt)
    b = np_rng.uniform(-5, 5, size=500).astype(npdt)
    fmax = np.finfo(npdt).max
    a = np.concatenate([a, np.array([0.0, 0.0, -0.0, 1.0, 1.0, fmax, fmax, np.nan, 2.0, -1.0], dtype=npdt)])
    b = np.concatenate([b, np.array([1.0, -1.0, 0.0, 1.0, np.inf, np.inf, 0.0, 1.0, np.nan, -np.inf], dtype=npdt)])
    at = _gapped(a, dtype, device)
    bt = _gapped(b, dtype, device)
    got = torch.nextafter(at, bt)
    with np.errstate(over="ignore"):  # the largest finite value stepped towards inf
        exp = np.nextafter(a, b)
    assert_equal("torch.nextafter", got.dtype, dtype, args="dtype")
    assert_equal("torch.nextafter", got.cpu().numpy().view(np.uint32 if dtype == torch.float32 else np.uint64)[:-2],
                 exp.view(np.uint32 if dtype == torch.float32 else np.uint64)[:-2], args="bit patterns (non-NaN)")
    assert_true("torch.nextafter", np.isnan(_ref(got)[-2:-1]).all() and np.isnan(_ref(got)[-3]), "NaN not propagated", args="NaN")


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_frexp_ldexp(device, dtype, np_rng):
    """frexp(x) = (mantissa in [0.5, 1) with x's sign, int32 exponent) with x = mantissa * 2**exponent,
    equal to numpy.frexp in the same dtype for random values over many magnitudes, zeros, subnormals and
    +-inf/NaN; ldexp(m, e) = m * 2**e equals numpy.ldexp, inverts frexp exactly, and promotes integer
    inputs to the default float dtype. Catches an exponent off by one (mantissa in [1, 2)), a float
    exponent tensor, subnormals mis-scaled, ldexp computed via pow with rounding."""
    npdt = np.float32 if dtype == torch.float32 else np.float64
    lo, hi = (-140, 120) if dtype == torch.float32 else (-1060, 1000)
    vals = (np_rng.uniform(-1, 1, size=600) * 2.0 ** np_rng.integers(lo, hi, size=600)).astype(npdt)
    vals = np.concatenate([vals, np.array([0.0, -0.0, np.inf, -np.inf, np.nan, np.finfo(npdt).tiny / 8], dtype=npdt)])
    x = _gapped(vals, dtype, device)
    m, e = torch.frexp(x)
    em, ee = np.frexp(vals)
    assert_equal("torch.frexp", e.dtype, torch.int32, args="exponent dtype")
    assert_equal("torch.frexp", m.dtype, dtype, args="mantissa dtype")
    assert_equal("torch.frexp", m, em.astype(np.float64), args="mantissa")
    assert_equal("torch.frexp", e, ee, args="exponent")
    finite = np.isfinite(vals)
    assert_equal("torch.ldexp", torch.ldexp(m, e)[torch.from_numpy(finite).to(device)], vals[finite].astype(np.float64),
                 args="ldexp(frexp(x)) == x")
    mant = _gapped(np_rng.uniform(-2, 2, size=200).astype(npdt), dtype, device)
    ex = torch.from_numpy(np_rng.integers(-20, 20, size=200)).to(device)
    assert_close("torch.ldexp", torch.ldexp(mant, ex), np.ldexp(_ref(mant), _ref(ex)), op="exact", check_dtype=dtype,
                 args="random mantissas and exponents")
    gi = torch.ldexp(torch.tensor([1, 3], device=device), torch.tensor([4, -1], device=device))
    assert_equal("torch.ldexp", gi.dtype, torch.get_default_dtype(), args="int inputs -> default float dtype")
    assert_equal("torch.ldexp", gi, np.array([16.0, 1.5]), args="int inputs")


# ---------------------------------------------------------------- edge sizes

def _check_scans(device, n, np_rng, dtype=torch.float32):
    """cumsum (small integers: exact), cumprod, cummax/cummin, logcumsumexp, diff, trapezoid and
    cumulative_trapezoid on one length-n gapped input, against NumPy/SciPy."""
    ints = np_rng.integers(-8, 9, size=n)
    x = _gapped(ints, dtype, device) if n else torch.empty(0, dtype=dtype, device=device)
    X = _ref(x)
    args = f"n={n}"
    assert_equal("torch.cumsum", torch.cumsum(x, 0), np.cumsum(X), args=args)
    assert_close("torch.cumprod", torch.cumprod(x[:40] / 8 + 1, 0), np.cumprod(X[:40] / 8 + 1), op="reduction", args=args)
    if n:
        for op, acc in (("cummax", np.maximum.accumulate), ("cummin", np.minimum.accumulate)):
            v, i = getattr(torch, op)(x, 0)
            assert_equal(f"torch.{op}", v, acc(X), args=args)
            assert_equal(f"torch.{op}", X[_ref(i)], acc(X), args=args + ": indices")
    assert_close("torch.logcumsumexp", torch.logcumsumexp(x, 0), np.logaddexp.accumulate(X) if n else X, op="reduction", args=args)
    assert_close("torch.diff", torch.diff(x), np.diff(X), op="exact", args=args)
    if n:
        assert_close("torch.trapezoid", torch.trapezoid(x), _np_trapezoid(X), op="reduction", args=args)
        assert_close("torch.cumulative_trapezoid", torch.cumulative_trapezoid(x),
                     np.cumsum((X[1:] + X[:-1]) / 2), op="reduction", args=args)  # unit spacing, closed form


def test_edge_sizes(device, np_rng):
    """Empty, single-element and short inputs (0, 1, 2, 3, 17) through the scans and differences, and cdist
    with zero rows; catches scans that read past the end, a trapezoid of one point not 0, cdist failing on
    empty sets."""
    for n in (0, 1, 2, 3, 17):
        _check_scans(device, n, np_rng)
    a = torch.empty(0, 3, device=device)
    b = torch.randn(4, 3, device=device)
    assert_equal("torch.cdist", tuple(torch.cdist(a, b).shape), (0, 4), args="0 rows")
    assert_equal("torch.cdist", tuple(torch.cdist(b, a).shape), (4, 0), args="0 columns")


@pytest.mark.slow
@pytest.mark.dtypes(torch.float32, torch.float64)
def test_size_sweep(device, dtype, np_rng):
    """The scans at the sizes where kernels switch strategy (vector tails 31..65, the 32,768 grain,
    2^16 + 1, 10^6): catches carries lost at chunk borders and tail handling."""
    for n in (31, 32, 33, 63, 64, 65, 1023, 1025, 32767, 32769, 65537, 1_000_000):
        _check_scans(device, n, np_rng, dtype)
