"""Operator library: search, histogram, counting and selection ops (searchsorted, bucketize, histc,
histogram, histogramdd, bincount, unique_consecutive, kthvalue, topk, mode, msort, sort/argsort stable)
against NumPy in float64 (or on the same integers), with every documented argument, ties, NaN, values at
the boundaries, batched inputs, gapped (``[..., ::2]`` of a wider storage, storage offset 1) inputs and
sizes past 32,768 elements with random data.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from harness.checks import to_numpy as _ref  # float64/int copy of a tensor's values

NAN, INF = float("nan"), float("inf")
BIG = 40_000  # past 32,768: the size where CPU kernels switch to chunked/parallel/vectorised paths


def _gapped(values, dtype, device) -> torch.Tensor:
    """``values`` (NumPy, any shape) as ``dtype`` on ``device`` in a view whose last dim has stride 2 and
    whose storage offset is 1 (``big[..., 1::2]``): a real gap between elements, not a permuted dense view."""
    values = np.asarray(values)
    shape = values.shape
    big = torch.zeros(*shape[:-1], 2 * shape[-1] + 1, dtype=dtype, device=device)
    view = big[..., 1::2]
    view.copy_(torch.from_numpy(np.ascontiguousarray(values)).to(dtype))
    assert not view.is_contiguous() or view.numel() <= 1
    return view


def _ints_as(np_rng, low, high, shape, dtype, device, gapped=False):
    """Random integers in [low, high] (many ties) as ``dtype``."""
    v = np_rng.integers(low, high + 1, size=shape)
    if gapped:
        return _gapped(v, dtype, device)
    return torch.from_numpy(v).to(dtype).to(device)


# ---------------------------------------------------------------- searchsorted / bucketize

@pytest.mark.smoke
@pytest.mark.dtypes(torch.float32, torch.int64)
@pytest.mark.parametrize("side", ["left", "right"])
def test_searchsorted(device, dtype, side, np_rng):
    """searchsorted on a 1-D sequence with ties, values below/at/above every boundary (and NaN/inf for
    floats), gapped N-D values, side= and right= spellings, out_int32, out=, a scalar value; catches right=
    or side= ignored, an off-by-one at ties, NaN not sent past the end, a wrong index dtype."""
    right = side == "right"
    seq = torch.from_numpy(np.sort(np_rng.integers(-50, 51, size=40))).to(dtype).to(device)
    S = _ref(seq)
    vals = _ints_as(np_rng, -60, 60, (3, 7, 11), dtype, device, gapped=True)
    edge = [S[0], S[-1], S[0] - 1, S[-1] + 1, S[17]]
    if dtype.is_floating_point:
        edge += [NAN, INF, -INF]
    edges = torch.tensor(edge, dtype=dtype, device=device)
    for v in (vals, edges):
        V = _ref(v)
        exp = np.searchsorted(S, V, side=side)  # NumPy sorts NaN last, so NaN -> len(seq)
        got = torch.searchsorted(seq, v, right=right)
        assert_equal("torch.searchsorted", got.dtype, torch.int64, args=f"right={right}")
        assert_equal("torch.searchsorted", got, exp, args=f"right={right}, values {tuple(v.shape)}")
        assert_equal("torch.searchsorted", torch.searchsorted(seq, v, side=side), exp, args=f"side={side!r}")
        assert_equal("torch.searchsorted", torch.searchsorted(seq, v, side=side, right=right), exp,
                     args=f"side={side!r}, right={right}")
        g32 = torch.searchsorted(seq, v, side=side, out_int32=True)
        assert_equal("torch.searchsorted", g32.dtype, torch.int32, args="out_int32=True")
        assert_equal("torch.searchsorted", g32, exp, args=f"out_int32=True, side={side!r}")
        out = torch.full(v.shape, -7, dtype=torch.int64, device=device)
        torch.searchsorted(seq, v, side=side, out=out)
        assert_equal("torch.searchsorted", out, exp, args="out=")
    scalar = torch.searchsorted(seq, S[17].item(), side=side)
    assert_equal("torch.searchsorted", scalar.item(), int(np.searchsorted(S, S[17], side=side)), args="scalar value")
    assert_raises("torch.searchsorted", RuntimeError, torch.searchsorted, seq, vals, side="left", right=True,
                  args="side='left' with right=True")


@pytest.mark.parametrize("side", ["left", "right"])
def test_searchsorted_large_and_gapped_sequence(device, side, np_rng):
    """40,000 random float32 values against a 1,000-long sorted random sequence (float compare on the vector
    path), and a gapped sorted_sequence (converted to contiguous internally); catches chunking bugs on large
    inputs and a non-contiguous boundary read with the wrong stride."""
    seq = torch.from_numpy(np.sort(np_rng.standard_normal(1000))).float().to(device)
    vals = _gapped(np_rng.standard_normal(BIG) * 1.2, torch.float32, device)
    S, V = _ref(seq), _ref(vals)
    assert_equal("torch.searchsorted", torch.searchsorted(seq, vals, side=side), np.searchsorted(S, V, side=side),
                 args=f"{BIG} random values, side={side!r}")
    gseq = _gapped(np.sort(np_rng.integers(-20, 21, size=(4, 30)), axis=-1), torch.float32, device)
    gv = _ints_as(np_rng, -25, 25, (4, 9), torch.float32, device)
    GS, GV = _ref(gseq), _ref(gv)
    exp = np.stack([np.searchsorted(GS[i], GV[i], side=side) for i in range(4)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # documented performance warning for a non-contiguous boundary
        got = torch.searchsorted(gseq, gv, side=side)
    assert_equal("torch.searchsorted", got, exp, args="gapped batched sorted_sequence")


@pytest.mark.parametrize("side", ["left", "right"])
def test_searchsorted_batched_and_sorter(device, side, np_rng):
    """N-D sorted_sequence searched row by row (leading dims matched to values), and sorter= on an unsorted
    sequence (1-D and batched) equals NumPy's sorter; catches rows mixed up, sorter ignored (searching the
    unsorted sequence), leading-dim mismatch accepted."""
    seq = torch.from_numpy(np.sort(np_rng.integers(-30, 31, size=(2, 3, 25)), axis=-1)).float().to(device)
    vals = _ints_as(np_rng, -35, 35, (2, 3, 8), torch.float32, device, gapped=True)
    S, V = _ref(seq), _ref(vals)
    exp = np.empty(V.shape, dtype=np.int64)
    for i in range(2):
        for j in range(3):
            exp[i, j] = np.searchsorted(S[i, j], V[i, j], side=side)
    assert_equal("torch.searchsorted", torch.searchsorted(seq, vals, side=side), exp, args="batched (2,3,25)")
    unsorted = np_rng.integers(-30, 31, size=40)
    order = np.argsort(unsorted, kind="stable")
    u = torch.from_numpy(unsorted).float().to(device)
    srt = torch.from_numpy(order).to(device)
    v1 = _ints_as(np_rng, -35, 35, (17,), torch.float32, device)
    exp1 = np.searchsorted(unsorted.astype(np.float64), _ref(v1), side=side, sorter=order)
    assert_equal("torch.searchsorted", torch.searchsorted(u, v1, side=side, sorter=srt), exp1, args="sorter=, 1-D")
    ub = np_rng.integers(-30, 31, size=(3, 20))
    ob = np.argsort(ub, axis=-1, kind="stable")
    vb = _ints_as(np_rng, -35, 35, (3, 6), torch.float32, device)
    VB = _ref(vb)
    expb = np.stack([np.searchsorted(ub[i].astype(np.float64), VB[i], side=side, sorter=ob[i]) for i in range(3)])
    gotb = torch.searchsorted(torch.from_numpy(ub).float().to(device), vb, side=side,
                              sorter=torch.from_numpy(ob).to(device), out_int32=True)
    assert_equal("torch.searchsorted", gotb, expb, args="sorter=, batched, out_int32")
    assert_raises("torch.searchsorted", RuntimeError, torch.searchsorted, seq, torch.zeros(3, 2, 8, device=device),
                  args="leading dims (2,3) vs (3,2)")
    assert_raises("torch.searchsorted", RuntimeError, torch.searchsorted, u, v1, sorter=srt[:10],
                  args="sorter shorter than the sequence")
    empty = torch.searchsorted(seq[0, 0], torch.empty(0, device=device))
    assert_equal("torch.searchsorted", tuple(empty.shape), (0,), args="empty values")


@pytest.mark.parametrize("right", [False, True])
def test_bucketize(device, right, np_rng):
    """bucketize(input, boundaries, right) returns i with boundaries[i-1] < x <= boundaries[i] (right=False)
    or boundaries[i-1] <= x < boundaries[i] (right=True), i.e. the count of boundaries below x (resp. not
    above x), checked by direct counting on a gapped N-D input, a 40,000-element input, NaN/inf, a scalar and
    out_int32; catches right= inverted and a boundary value put in the wrong bucket."""
    bounds = torch.from_numpy(np.sort(np_rng.integers(-10, 11, size=12))).float().to(device)
    B = _ref(bounds)
    inputs = [_ints_as(np_rng, -12, 12, (4, 5, 6), torch.float32, device, gapped=True),
              _gapped(np_rng.uniform(-12, 12, size=BIG), torch.float32, device),
              torch.tensor([NAN, INF, -INF, B[0], B[-1]], device=device)]
    for x in inputs:
        X = _ref(x)
        below = (B <= X[..., None]) if right else (B < X[..., None])
        exp = below.sum(-1)
        exp = np.where(np.isnan(X), len(B), exp)  # NaN compares false: NumPy/searchsorted rule, past the end
        got = torch.bucketize(x, bounds, right=right)
        assert_equal("torch.bucketize", got, exp, args=f"right={right}, input {tuple(x.shape)}")
        g32 = torch.bucketize(x, bounds, right=right, out_int32=True)
        assert_equal("torch.bucketize", g32.dtype, torch.int32, args="out_int32=True")
        assert_equal("torch.bucketize", g32, exp, args=f"out_int32=True, right={right}")
    s = torch.bucketize(float(B[3]), bounds, right=right)
    assert_equal("torch.bucketize", s.item(), int((B <= B[3]).sum() if right else (B < B[3]).sum()), args="scalar")


# ---------------------------------------------------------------- histograms and counting

def _off_edges(X, lo, hi, bins, margin=1e-4):
    """Drop values whose bin position is within ``margin`` of an edge, where float32 vs float64 rounding of
    the position could legitimately move them; exact-edge behaviour is checked on exact values elsewhere."""
    pos = (X - lo) * bins / (hi - lo)
    return X[np.abs(pos - np.round(pos)) > margin]


@pytest.mark.dtypes(torch.float32, torch.float64, torch.bfloat16)
def test_histc(device, dtype, np_rng):
    """histc(input, bins, min, max): equal-width bins, the last bin closed at max, values outside [min, max]
    and NaN/inf ignored, min = max = 0 meaning the data range; against numpy.histogram on a 40,000-element
    gapped input (power-of-two widths, exact in every dtype), explicit edge values, a non-power-of-two range
    (float32/64), and empty input. Catches a last bin that drops max, out-of-range values clamped into the
    end bins, NaN counted, min=max=0 not reading the data range, chunked counting losing elements."""
    # bfloat16 holds integers exactly only up to 256, so keep its per-bin counts below that here (the
    # large-count case is test_histc_low_precision_counts)
    n = 2 * 1000 if dtype == torch.bfloat16 else BIG
    x = _gapped(np_rng.uniform(-1, 9, size=(2, n // 2)), dtype, device)
    X = _ref(x).ravel()
    h = torch.histc(x, bins=16, min=0, max=8)
    assert_equal("torch.histc", h.dtype, dtype, args="result dtype")
    exp, _ = np.histogram(X[(X >= 0) & (X <= 8)], bins=16, range=(0, 8))
    assert_close("torch.histc", h, exp, op="exact", args=f"bins=16, min=0, max=8, {x.numel()} gapped values")
    e = torch.tensor([0.0, 0.5, 0.49, 7.99, 8.0, 8.01, -0.01, NAN, INF, -INF, 4.0], dtype=dtype, device=device)
    E = _ref(e)
    finite = E[np.isfinite(E)]
    exp_e, _ = np.histogram(finite[(finite >= 0) & (finite <= 8)], bins=16, range=(0, 8))
    assert_close("torch.histc", torch.histc(e, bins=16, min=0, max=8), exp_e, op="exact", args="values at edges, NaN, inf")
    ints = _ints_as(np_rng, 3, 23, (500,), dtype, device)
    I = _ref(ints)
    exp_d, _ = np.histogram(I, bins=20, range=(I.min(), I.max()))
    assert_close("torch.histc", torch.histc(ints, bins=20), exp_d, op="exact", args="min=max=0: data range")
    if dtype != torch.bfloat16:  # bfloat16 rounding of (x - min) moves values by more than the margin below
        y = _gapped(np_rng.uniform(-2, 4, size=3000), dtype, device)
        Y = _ref(y)
        Y = _off_edges(Y[(Y >= -1.3) & (Y <= 2.9)], -1.3, 2.9, 7)
        yk = torch.tensor(Y, dtype=dtype, device=device)
        exp_y, _ = np.histogram(Y, bins=7, range=(-1.3, 2.9))
        assert_close("torch.histc", torch.histc(yk, bins=7, min=-1.3, max=2.9), exp_y, op="exact",
                     args="bins=7, min=-1.3, max=2.9")
    assert_close("torch.histc", torch.histc(torch.empty(0, dtype=dtype, device=device), bins=4, min=0, max=1),
                 np.zeros(4), op="exact", args="empty")
    assert_raises("torch.histc", RuntimeError, torch.histc, x, bins=4, min=3, max=1, args="min > max")


@pytest.mark.dtypes(torch.bfloat16, torch.float16)
def test_histc_low_precision_counts(device, dtype, np_rng):
    """histc of a 40,000-element bfloat16/float16 input: the result has the input's dtype, so each count can
    at best be the true count rounded to that dtype (relative error <= 2^-8 for bfloat16, 2^-11 for float16).
    Catches counts accumulated in the low-precision dtype, which stop growing at 256 (bfloat16) / 2048
    (float16) per bin (known upstream: pytorch/pytorch#174668)."""
    x = _gapped(np_rng.uniform(-1, 9, size=BIG), dtype, device)
    X = _ref(x)
    exp, _ = np.histogram(X[(X >= 0) & (X <= 8)], bins=16, range=(0, 8))
    # Allowed: one rounding of the exact count to the result dtype (unit roundoff: 2^-8 / 2^-11 relative).
    rtol = 2.0 ** -8 if dtype == torch.bfloat16 else 2.0 ** -11
    assert_close("torch.histc", torch.histc(x, bins=16, min=0, max=8), exp, op="exact", rtol=rtol, atol=0.0,
                 args=f"{BIG} values, ~2,000 per bin, {dtype}")


def test_histogram(device, np_rng):
    """torch.histogram(input, bins=int|edges, range=, weight=, density=) returns (hist, bin_edges) equal to
    numpy.histogram: uniform edges from range, non-uniform edge tensors (exact float compares), weights,
    density = count / (total * width); plus histogramdd against numpy.histogramdd. Catches range= ignored,
    weights ignored or applied twice, density normalised by count instead of width, right edge open."""
    if device != "cpu":
        pytest.skip("torch.histogram/histogramdd have CPU kernels only (no CUDA dispatch in torch <= 2.13)")
    x = _gapped(np_rng.uniform(-1, 9, size=BIG), torch.float32, device)
    w = _gapped(np_rng.uniform(0, 2, size=BIG), torch.float32, device)
    X, W = _ref(x), _ref(w)
    for density in (False, True):
        hist, edges = torch.histogram(x, bins=16, range=(0.0, 8.0), density=density)
        eh, ee = np.histogram(X, bins=16, range=(0, 8), density=density)
        assert_close("torch.histogram", edges, ee, op="elementwise", args="bins=16, range=(0,8): edges")
        assert_close("torch.histogram", hist, eh, op="reduction" if density else "exact",
                     args=f"bins=16, range=(0,8), density={density}")
        hw, _ = torch.histogram(x, bins=16, range=(0.0, 8.0), weight=w, density=density)
        ehw, _ = np.histogram(X, bins=16, range=(0, 8), weights=W, density=density)
        assert_close("torch.histogram", hw, ehw, op="reduction", args=f"weight=, density={density}")
    edges_t = torch.tensor([-0.5, 0.0, 0.25, 1.0, 2.5, 7.0, 8.5], device=device)
    for density in (False, True):
        hist, edges = torch.histogram(x, bins=edges_t, weight=w, density=density)
        eh, _ = np.histogram(X, bins=_ref(edges_t), weights=W, density=density)
        assert_close("torch.histogram", edges, _ref(edges_t), op="exact", args="bins=tensor: edges returned")
        assert_close("torch.histogram", hist, eh, op="reduction", args=f"non-uniform edges, weight=, density={density}")
    at_edges = torch.tensor([-0.5, 0.0, 0.25, 8.5, 8.6, -0.6], device=device)
    eh, _ = np.histogram(_ref(at_edges), bins=_ref(edges_t))
    assert_close("torch.histogram", torch.histogram(at_edges, bins=edges_t).hist, eh, op="exact",
                 args="values on edges; last edge closed")
    hist, _ = torch.histogram(_ints_as(np_rng, 2, 9, (300,), torch.float32, device), bins=7)
    assert_close("torch.histogram", hist.sum(), 300.0, op="exact", args="no range: data range, every value counted")
    pts = torch.from_numpy(np_rng.uniform(0, 1, size=(5000, 2))).float()
    P = _ref(pts)
    hd = torch.histogramdd(pts, bins=[4, 3], range=[0.0, 1.0, 0.0, 1.0], density=False)
    ehd, eed = np.histogramdd(P, bins=[4, 3], range=[(0, 1), (0, 1)])
    assert_close("torch.histogramdd", hd.hist, ehd, op="exact", args="bins=[4,3]")
    for i in range(2):
        assert_close("torch.histogramdd", hd.bin_edges[i], eed[i], op="elementwise", args=f"edges dim {i}")


def test_bincount(device, np_rng):
    """bincount(input, weights, minlength) on 40,000 gapped non-negative ints equals numpy.bincount (counts
    int64, weighted sums, length max(max+1, minlength)); empty input gives minlength zeros; negative values,
    2-D input and a weights length mismatch raise. Catches minlength ignored, weights ignored, the last value
    dropped from the length, chunked counting losing elements, negatives wrapping silently."""
    x = _ints_as(np_rng, 0, 60, (BIG,), torch.int64, device, gapped=True)
    w = _gapped(np_rng.uniform(-1, 1, size=BIG), torch.float64, device)
    X, Wt = _ref(x), _ref(w)
    c = torch.bincount(x)
    assert_equal("torch.bincount", c.dtype, torch.int64, args="no weights")
    assert_equal("torch.bincount", c, np.bincount(X), args=f"{BIG} gapped ints")
    for minlength in (0, 10, 100):
        assert_equal("torch.bincount", torch.bincount(x, minlength=minlength), np.bincount(X, minlength=minlength),
                     args=f"minlength={minlength}")
        assert_close("torch.bincount", torch.bincount(x, weights=w, minlength=minlength),
                     np.bincount(X, weights=Wt, minlength=minlength), op="reduction", args=f"weights=float64, minlength={minlength}")
    wf = w.float()
    assert_close("torch.bincount", torch.bincount(x, weights=wf), np.bincount(X, weights=_ref(wf)), op="reduction",
                 dtype=torch.float32, args="weights=float32")
    small = torch.tensor([4, 3, 6, 3, 4], device=device)
    assert_equal("torch.bincount", torch.bincount(small), np.array([0, 0, 0, 2, 2, 0, 1]), args="docs example")
    e = torch.empty(0, dtype=torch.int64, device=device)
    assert_equal("torch.bincount", tuple(torch.bincount(e).shape), (0,), args="empty input")
    assert_equal("torch.bincount", torch.bincount(e, minlength=5), np.zeros(5, dtype=np.int64), args="empty, minlength=5")
    if device == "cpu":  # on CUDA a negative value is a device-side check that poisons the context
        assert_raises("torch.bincount", RuntimeError, torch.bincount, torch.tensor([1, -1, 2]), args="negative value")
    assert_raises("torch.bincount", RuntimeError, torch.bincount, x[:10].reshape(2, 5), args="2-D input")
    assert_raises("torch.bincount", RuntimeError, torch.bincount, x, weights=w[:5], args="weights length mismatch")
    assert_raises("torch.bincount", RuntimeError, torch.bincount, x, minlength=-1, args="negative minlength")


def _unique_consecutive_ref(X, axis=None):
    if axis is None:
        X = X.ravel()
        axis = 0
    Xm = np.moveaxis(X, axis, 0)
    n = Xm.shape[0]
    if n == 0:
        return np.moveaxis(Xm, 0, axis), np.zeros(0, np.int64), np.zeros(0, np.int64)
    change = np.ones(n, dtype=bool)
    if n > 1:
        change[1:] = (Xm[1:] != Xm[:-1]).reshape(n - 1, -1).any(axis=1)
    starts = np.flatnonzero(change)
    counts = np.diff(np.append(starts, n))
    inverse = np.cumsum(change) - 1
    return np.moveaxis(Xm[starts], 0, axis), inverse, counts


def test_unique_consecutive(device, np_rng):
    """unique_consecutive collapses runs of equal values (not global duplicates), with return_inverse
    (run id of each element, input's shape) and return_counts (run lengths), over the flattened input and
    along dim=0/1 of a 2-D input (whole slices compared), on gapped inputs with ~40,000 elements; catches a
    global unique, runs split at chunk borders, counts off by one, dim ignored."""
    runs = np.repeat(np_rng.integers(0, 4, size=9000), np_rng.integers(1, 8, size=9000))[:BIG]
    x = _gapped(runs, torch.float32, device)
    X = _ref(x)
    v, inv, cnt = torch.unique_consecutive(x, return_inverse=True, return_counts=True)
    ev, einv, ecnt = _unique_consecutive_ref(X)
    assert_equal("torch.unique_consecutive", v, ev, args="values")
    assert_equal("torch.unique_consecutive", inv, einv, args="return_inverse")
    assert_equal("torch.unique_consecutive", cnt, ecnt, args="return_counts")
    assert_equal("torch.unique_consecutive", torch.unique_consecutive(x), ev, args="values only")
    m = np.repeat(np_rng.integers(0, 2, size=(6, 4)), np_rng.integers(1, 3, size=6), axis=0)
    m = np.concatenate([m, m[-1:]], axis=0)
    mt = _gapped(m, torch.int64, device)
    for dim in (0, 1):
        ev, einv, ecnt = _unique_consecutive_ref(m, axis=dim)
        v, inv, cnt = torch.unique_consecutive(mt, return_inverse=True, return_counts=True, dim=dim)
        assert_equal("torch.unique_consecutive", v, ev, args=f"dim={dim}")
        assert_equal("torch.unique_consecutive", inv, einv, args=f"dim={dim}, return_inverse")
        assert_equal("torch.unique_consecutive", cnt, ecnt, args=f"dim={dim}, return_counts")
    e = torch.unique_consecutive(torch.empty(0, device=device))
    assert_equal("torch.unique_consecutive", tuple(e.shape), (0,), args="empty")


# ---------------------------------------------------------------- selection

def _check_indices(api, X, idx, values, axis, args):
    """The returned indices must point at elements equal to the returned values (ties: any of them)."""
    __tracebackhide__ = True
    picked = np.take_along_axis(X, np.asarray(idx), axis=axis)
    assert_equal(api, picked, values, args=f"{args}: input[indices] == values")


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_kthvalue(device, dtype, np_rng):
    """kthvalue(k, dim, keepdim) value equals the k-th smallest of NumPy's sort (ties, NaN sorted last as the
    largest) and its index points at an equal element, on a gapped tied input over every dim and k in
    {1, middle, n}, and on 40,000 random values; catches k counted from 0 or from the top, keepdim ignored,
    an index of a different tied element's neighbour, selection bugs on large inputs."""
    x = _ints_as(np_rng, -5, 5, (6, 9, 13), dtype, device, gapped=True)
    X = _ref(x)
    for dim in (0, 1, -1):
        n = X.shape[dim]
        for k in (1, (n + 1) // 2, n):
            for keepdim in (False, True):
                v, i = torch.kthvalue(x, k, dim=dim, keepdim=keepdim)
                ev = np.take(np.sort(X, axis=dim), [k - 1], axis=dim)
                if not keepdim:
                    ev = np.squeeze(ev, axis=dim)
                args = f"k={k}, dim={dim}, keepdim={keepdim}"
                assert_equal("torch.kthvalue", v, ev, args=args)
                ii = i if keepdim else i.unsqueeze(dim)
                _check_indices("torch.kthvalue", X, _ref(ii), np.take(np.sort(X, axis=dim), [k - 1], axis=dim), dim, args)
    big = _gapped(np_rng.standard_normal(BIG), dtype, device)
    B = _ref(big)
    v, i = torch.kthvalue(big, 12345)
    assert_equal("torch.kthvalue", v.item(), float(np.partition(B, 12344)[12344]), args=f"k=12345 of {BIG}")
    assert_equal("torch.kthvalue", float(B[i.item()]), v.item(), args="index of the k-th value")
    nanrow = torch.tensor([3.0, NAN, 1.0, 2.0], dtype=dtype, device=device)
    assert_true("torch.kthvalue", np.isnan(torch.kthvalue(nanrow, 4).values.item()), "k=n with a NaN is not NaN", args="NaN largest")
    assert_equal("torch.kthvalue", torch.kthvalue(nanrow, 3).values.item(), 3.0, args="NaN sorted last")
    assert_raises("torch.kthvalue", (RuntimeError, IndexError), torch.kthvalue, x, 0, args="k=0")
    assert_raises("torch.kthvalue", (RuntimeError, IndexError), torch.kthvalue, x, 14, args="k > size")


@pytest.mark.dtypes(torch.float32, torch.bfloat16, torch.int32)
def test_topk(device, dtype, np_rng):
    """topk(k, dim, largest, sorted): values are exactly the k largest (smallest) in order, with sorted=False
    the same multiset, indices point at equal elements and are distinct within a row (ties), on a gapped
    tied input over dims and k in {1, 5, n, 0}, and on rows of 40,000 random values; catches largest=
    ignored, sorted order broken, one tied element returned twice, wrong dim, radix-select bugs on large rows."""
    x = _ints_as(np_rng, -6, 6, (5, 8, 17), dtype, device, gapped=True)
    X = _ref(x)
    for dim in (0, 1, -1):
        n = X.shape[dim]
        for largest in (True, False):
            srt = np.sort(X, axis=dim)
            if largest:
                srt = np.flip(srt, axis=dim)
            for k in (1, min(5, n), n):
                ev = np.take(srt, range(k), axis=dim)
                args = f"k={k}, dim={dim}, largest={largest}"
                v, i = torch.topk(x, k, dim=dim, largest=largest, sorted=True)
                assert_equal("torch.topk", v, ev, args=args)
                I = _ref(i)
                _check_indices("torch.topk", X, I, ev, dim, args)
                si = np.sort(I, axis=dim)
                assert_true("torch.topk", (np.diff(si, axis=dim) != 0).all(), "an index returned twice in one row", args=args)
                vu, iu = torch.topk(x, k, dim=dim, largest=largest, sorted=False)
                assert_equal("torch.topk", np.sort(_ref(vu), axis=dim), np.sort(ev, axis=dim), args=args + ", sorted=False")
                _check_indices("torch.topk", X, _ref(iu), _ref(vu), dim, args + ", sorted=False")
    v0, i0 = torch.topk(x, 0, dim=-1)
    assert_equal("torch.topk", tuple(v0.shape), (5, 8, 0), args="k=0")
    if dtype.is_floating_point:
        big = _gapped(np_rng.standard_normal((2, BIG)), dtype, device)
    else:
        big = _ints_as(np_rng, -10**6, 10**6, (2, BIG), dtype, device, gapped=True)
    B = _ref(big)
    for largest in (True, False):
        v, i = torch.topk(big, 100, largest=largest)
        ev = np.sort(B, axis=-1)[:, ::-1][:, :100] if largest else np.sort(B, axis=-1)[:, :100]
        assert_equal("torch.topk", v, ev, args=f"k=100 of {BIG}, largest={largest}")
        _check_indices("torch.topk", B, _ref(i), ev, -1, f"k=100 of {BIG}")
    ov, oi = torch.empty(0, dtype=dtype, device=device), torch.empty(0, dtype=torch.int64, device=device)
    torch.topk(x, 3, out=(ov, oi))
    assert_equal("torch.topk", ov, np.flip(np.sort(X, -1), -1)[..., :3], args="out=")
    assert_raises("torch.topk", (RuntimeError, IndexError), torch.topk, x, 18, args="k > size")


def test_mode(device, np_rng):
    """mode(dim, keepdim) returns a value that occurs most often in its row (torch documents no rule among
    tied modes, so any most-frequent value passes) and an index pointing at that value, on a gapped input
    over every dim and a 3 x 20,000 input; catches the least frequent or first value returned, keepdim
    ignored, wrong dim, an index not pointing at the mode."""
    x = _ints_as(np_rng, 0, 5, (4, 7, 23), torch.int64, device, gapped=True)
    X = _ref(x)
    for dim in (0, 1, 2, -1):
        for keepdim in (False, True):
            v, i = torch.mode(x, dim=dim, keepdim=keepdim)
            V = _ref(v if keepdim else v.unsqueeze(dim))
            counts = (np.moveaxis(X, dim, -1)[..., None] == np.arange(6)).sum(-2)  # (..., 6) occurrences
            vc = np.take_along_axis(counts, np.moveaxis(V, dim, -1).astype(np.int64), axis=-1)[..., 0]
            assert_equal("torch.mode", vc, counts.max(-1), args=f"dim={dim}, keepdim={keepdim}: count of the mode")
            _check_indices("torch.mode", X, _ref(i if keepdim else i.unsqueeze(dim)), V, dim, f"dim={dim}")
    big = _ints_as(np_rng, 0, 50, (3, 20_000), torch.float32, device)
    B = _ref(big).astype(np.int64)
    v, i = torch.mode(big, -1)
    counts = np.stack([np.bincount(r, minlength=51) for r in B])
    assert_equal("torch.mode", counts[np.arange(3), _ref(v).astype(np.int64)], counts.max(-1), args="3 x 20000")


@pytest.mark.dtypes(torch.float32, torch.int32)
def test_sort_stable(device, dtype, np_rng):
    """sort/argsort(stable=True) equal NumPy's stable argsort (equal elements keep input order) ascending and
    descending, on a gapped 2-D tied input along both dims and a 40,000-element row; msort(x) = sort along
    dim 0; NaN sorts last ascending (first descending). Catches an unstable sort passed off as stable,
    descending reversing tied runs, msort on the wrong dim."""
    x = _ints_as(np_rng, -20, 20, (37, 29), dtype, device, gapped=True)
    big = _ints_as(np_rng, -300, 300, (BIG,), dtype, device, gapped=True)
    for t in (x, big):
        T = _ref(t)
        for dim in range(t.dim()):
            for descending in (False, True):
                ei = np.argsort(-T if descending else T, axis=dim, kind="stable")
                args = f"shape {tuple(t.shape)}, dim={dim}, descending={descending}"
                assert_equal("torch.argsort", torch.argsort(t, dim=dim, descending=descending, stable=True), ei, args=args)
                v, i = torch.sort(t, dim=dim, descending=descending, stable=True)
                assert_equal("torch.sort", i, ei, args=args + ", stable=True")
                assert_equal("torch.sort", v, np.take_along_axis(T, ei, axis=dim), args=args)
    assert_equal("torch.msort", torch.msort(x), np.sort(_ref(x), axis=0), args="dim 0")
    if dtype.is_floating_point:
        n = torch.tensor([2.0, NAN, -1.0, NAN, 0.5], dtype=dtype, device=device)
        assert_equal("torch.sort", torch.sort(n, stable=True).indices, np.argsort(_ref(n), kind="stable"), args="NaN last")
        assert_equal("torch.sort", torch.sort(n, descending=True, stable=True).indices, np.array([1, 3, 0, 4, 2]),
                     args="descending: NaN first, in input order")
        assert_equal("torch.msort", torch.msort(n.view(5, 1)), np.sort(_ref(n)).reshape(5, 1), args="NaN last")


# ---------------------------------------------------------------- edge sizes

def _check_size(device, n, np_rng, dtype=torch.float32):
    """searchsorted, bucketize, histc, bincount, unique_consecutive, topk, kthvalue, sort(stable) on one
    random length-n input (ties included), each against NumPy."""
    vals = np_rng.integers(-20, 21, size=n)
    x = _gapped(vals, dtype, device) if n else torch.empty(0, dtype=dtype, device=device)
    X = _ref(x)
    seq = torch.from_numpy(np.sort(np_rng.integers(-20, 21, size=max(n // 3, 1)))).to(dtype).to(device)
    S = _ref(seq)
    args = f"n={n}"
    assert_equal("torch.searchsorted", torch.searchsorted(seq, x, right=True), np.searchsorted(S, X, side="right"), args=args)
    assert_equal("torch.bucketize", torch.bucketize(x, seq), np.searchsorted(S, X, side="left"), args=args)
    exp_h, _ = np.histogram(X, bins=8, range=(-20, 20))
    xf = x if x.is_floating_point() else x.float()  # histc has no integer CPU kernel
    assert_close("torch.histc", torch.histc(xf, bins=8, min=-20, max=20), exp_h, op="exact", args=args)
    xi = x.to(torch.int64) + 20
    assert_equal("torch.bincount", torch.bincount(xi, minlength=3), np.bincount(_ref(xi), minlength=3), args=args)
    assert_equal("torch.unique_consecutive", torch.unique_consecutive(x), _unique_consecutive_ref(X)[0], args=args)
    if n:
        k = max(1, n // 2)
        v, i = torch.topk(x, k)
        assert_equal("torch.topk", v, np.sort(X)[::-1][:k], args=args)
        assert_equal("torch.topk", X[_ref(i)], np.sort(X)[::-1][:k], args=args + ": indices")
        assert_equal("torch.kthvalue", torch.kthvalue(x, k).values.item(), float(np.sort(X)[k - 1]), args=args)
    assert_equal("torch.sort", torch.sort(x, stable=True).indices, np.argsort(X, kind="stable"), args=args)


def test_edge_sizes(device, np_rng):
    """Empty, single-element and short inputs (0, 1, 2, 3, 17 elements: below every vector width) through
    searchsorted, bucketize, histc, bincount, unique_consecutive, topk, kthvalue and stable sort; catches
    kernels that read past the end or mishandle the scalar tail."""
    for n in (0, 1, 2, 3, 17):
        _check_size(device, n, np_rng)


@pytest.mark.slow
@pytest.mark.dtypes(torch.float32, torch.int32)
def test_size_sweep(device, dtype, np_rng):
    """The same checks at the sizes where kernels switch strategy: vector tails (31..33, 63..65), the
    32,768-element parallel grain (32,767 / 32,769), 2^16 + 1 and 10^6 elements; catches off-by-one chunk
    borders and large-input selection/sort paths (radix select, parallel sort)."""
    for n in (31, 32, 33, 63, 64, 65, 1023, 1025, 32767, 32769, 65537, 1_000_000):
        _check_size(device, n, np_rng, dtype)
