"""§ 1 Tensors: Hypothesis property tests where a documented rule applies to a whole space of inputs:
elementwise ops, reductions, sort/argsort, permute/reshape and matmul against NumPy float64 over random
shapes (including empty and size-1 dims), dtypes, dims, keepdim and memory layouts.

The plugin sets the per-tier example budget and derandomizes; each test `note()`s what is needed to
reproduce a failing example. Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from harness.checks import assert_close, assert_equal
from suites.tensors._tensors import gapped_view

# `device` is a plain string parameter, safe to share between examples.
_SETTINGS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                            HealthCheck.data_too_large])

_FLOATS = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16, "float16": torch.float16}
_ALL = dict(_FLOATS, int32=torch.int32, int64=torch.int64)

shapes = st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple)
nonempty_shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple)
seeds = st.integers(0, 2**31 - 1)


def _make(shape, dt_name, seed, device, layout, low=-4.0, high=4.0):
    """Values drawn with NumPy, cast to the dtype; layout 'contig', 'transposed' (same values, reversed
    strides with gaps: the transpose of a strided view, so not a dense permutation that TensorIterator
    would run as one flat loop) or 'strided' (every other element of a larger buffer)."""
    rng = np.random.default_rng(seed)
    dt = _ALL[dt_name]
    if dt.is_floating_point:
        base = rng.uniform(low, high, size=shape)
    else:
        base = rng.integers(int(low), int(high) + 1, size=shape).astype(np.float64)
    t = torch.from_numpy(base).to(dt)
    if layout == "transposed" and t.dim() >= 2 and max(shape) > 1:
        rev = tuple(reversed(range(t.dim())))
        t = gapped_view(t.permute(*rev)).permute(*rev)
    elif layout == "strided" and t.dim() >= 1:
        big = torch.zeros(shape[:-1] + (2 * shape[-1],), dtype=dt)
        big[..., ::2] = t
        t = big[..., ::2]
    t = t.to(device)
    ref = t.cpu().to(torch.float64).numpy().copy() if dt.is_floating_point else t.cpu().numpy().astype(np.int64)
    return t, ref


layouts = st.sampled_from(["contig", "transposed", "strided"])

UNARY = {
    "exp": (torch.exp, np.exp, (-5, 5)), "tanh": (torch.tanh, np.tanh, (-4, 4)),
    "sigmoid": (torch.sigmoid, lambda x: 1 / (1 + np.exp(-x)), (-8, 8)), "sqrt": (torch.sqrt, np.sqrt, (0, 9)),
    "log1p": (torch.log1p, np.log1p, (-0.5, 9)), "abs": (torch.abs, np.abs, (-4, 4)), "sin": (torch.sin, np.sin, (-4, 4)),
    "neg": (torch.neg, np.negative, (-4, 4)), "floor": (torch.floor, np.floor, (-4, 4)),
}
BINARY = {
    "add": (torch.add, np.add), "sub": (torch.sub, np.subtract), "mul": (torch.mul, np.multiply),
    "maximum": (torch.maximum, np.maximum), "minimum": (torch.minimum, np.minimum),
}


@_SETTINGS
@given(shape=shapes, op=st.sampled_from(sorted(UNARY)), dt=st.sampled_from(sorted(_FLOATS)), seed=seeds, layout=layouts)
def test_unary_property(device, shape, op, dt, seed, layout):
    """Property: a unary math function equals its float64 oracle elementwise for any shape, float dtype
    and memory layout (contiguous, transposed, strided); catches vectorized-tail and stride bugs."""
    fn, ref, (lo, hi) = UNARY[op]
    x, X = _make(shape, dt, seed, device, layout, lo, hi)
    note(f"op={op} shape={shape} dtype={dt} seed={seed} layout={layout} strides={x.stride()}")
    got = fn(x)
    assert_equal(f"torch.{op}", got.dtype, _ALL[dt])
    assert_close(f"torch.{op}", got, ref(X), args=f"shape={shape}, {dt}, {layout}")


@pytest.mark.smoke
@_SETTINGS
@given(shape=shapes, op=st.sampled_from(sorted(BINARY)), dt=st.sampled_from(sorted(_ALL)), seed=seeds, layout=layouts,
       scalar=st.booleans())
def test_binary_property(device, shape, op, dt, seed, layout, scalar):
    """Property: add/sub/mul/maximum/minimum equal NumPy for any shape, dtype (float and int), layout,
    tensor or Python-scalar other; half-precision results within one rounding of the exact result."""
    fn, ref = BINARY[op]
    a, A = _make(shape, dt, seed, device, layout)
    if scalar and op in ("add", "sub", "mul"):  # maximum/minimum take tensors only
        bb, B = 3, 3
    else:
        bb, B = _make(shape, dt, seed + 1, device, "contig")
    note(f"op={op} shape={shape} dtype={dt} seed={seed} layout={layout} scalar={scalar}")
    got = fn(a, bb)
    assert_equal(f"torch.{op}", got.dtype, _ALL[dt], args="dtype")
    assert_close(f"torch.{op}", got, ref(A, B), args=f"shape={shape}, {dt}, {layout}")


RED = {
    "sum": (torch.sum, np.sum), "mean": (torch.mean, np.mean), "amax": (torch.amax, np.max),
    "amin": (torch.amin, np.min), "prod": (torch.prod, np.prod),
}


@_SETTINGS
@given(shape=nonempty_shapes, op=st.sampled_from(sorted(RED)), dt=st.sampled_from(sorted(_FLOATS)), seed=seeds,
       layout=layouts, keepdim=st.booleans(), data=st.data())
def test_reduction_property(device, shape, op, dt, seed, layout, keepdim, data):
    """Property: sum/mean/amax/amin/prod over a random subset of dims (as a tuple, with negative dims)
    and keepdim equal NumPy; catches reductions over the wrong axes for rarely used dim combinations."""
    ndim = len(shape)
    dims = data.draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True), label="dims")
    neg = data.draw(st.booleans(), label="negative dims")
    tdims = tuple(d - ndim if neg else d for d in dims)
    x, X = _make(shape, dt, seed, device, layout, 0.5, 1.5)
    note(f"op={op} shape={shape} dtype={dt} seed={seed} layout={layout} dim={tdims} keepdim={keepdim}")
    fn, ref = RED[op]
    got = fn(x, dim=tdims, keepdim=keepdim) if op != "prod" else fn(x, dim=tdims[0], keepdim=keepdim)
    exp = ref(X, axis=tuple(dims) if op != "prod" else dims[0], keepdims=keepdim)
    assert_close(f"torch.{op}", got, exp, op="reduction", args=f"dim={tdims}, keepdim={keepdim}, {dt}, {layout}")


@_SETTINGS
@given(shape=nonempty_shapes, dt=st.sampled_from(["float32", "float64", "int32", "int64"]), seed=seeds, data=st.data(),
       layout=layouts)
def test_argmax_sort_property(device, shape, dt, seed, data, layout):
    """Property: argmax/argmin (first of ties) and stable sort/argsort along a random dim equal NumPy on
    inputs with many ties; catches non-first tie breaking and unstable sorts."""
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    x, X = _make(shape, dt, seed, device, layout, -2, 2)
    if x.is_floating_point():
        x = x.round()
        X = np.round(X)
    note(f"shape={shape} dtype={dt} seed={seed} dim={dim} layout={layout}")
    assert_equal("torch.argmax", torch.argmax(x, dim=dim), np.argmax(X, axis=dim), args=f"dim={dim}")
    assert_equal("torch.argmin", torch.argmin(x, dim=dim), np.argmin(X, axis=dim), args=f"dim={dim}")
    s = torch.sort(x, dim=dim, stable=True)
    order = np.argsort(X, axis=dim, kind="stable")
    assert_equal("torch.sort", s.indices, order, args=f"dim={dim}, stable=True")
    assert_equal("torch.sort", s.values, np.take_along_axis(X, order, dim), args=f"dim={dim}")


@_SETTINGS
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=5).map(tuple), seed=seeds, data=st.data())
def test_permute_reshape_property(device, shape, seed, data):
    """Property: permute then reshape (any permutation, any factorisation via -1) equals NumPy's
    transpose + reshape in row-major order; catches stride arithmetic errors in rare rank/shape mixes."""
    perm = data.draw(st.permutations(range(len(shape))), label="perm")
    x, X = _make(shape, "float64", seed, device, "contig")
    p = x.permute(*perm)
    P = np.transpose(X, perm)
    note(f"shape={shape} perm={perm} seed={seed}")
    assert_equal("torch.permute", p, P, args=f"perm={perm}")
    n = int(np.prod(shape))
    first = data.draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]), label="first dim")
    assert_equal("torch.reshape", p.reshape(first, -1), P.reshape(first, -1), args=f"({first}, -1)")
    assert_equal("Tensor.contiguous", p.contiguous().view(-1), P.reshape(-1), args="contiguous().view(-1)")


@_SETTINGS
@given(b=st.integers(0, 3), n=st.integers(0, 6), k=st.integers(0, 6), m=st.integers(0, 6), seed=seeds,
       dt=st.sampled_from(["float32", "float64"]), ta=st.booleans(), tb=st.booleans())
def test_matmul_property(device, b, n, k, m, seed, dt, ta, tb):
    """Property: batched matmul of (b, n, k) @ (k, m) (b=0 means no batch) with optionally transposed
    operands equals NumPy for all small sizes including zeros; catches edge-size and layout bugs."""
    sa = (b, n, k) if b else (n, k)
    A_t, A = _make(sa[:-2] + (sa[-1], sa[-2]) if ta else sa, dt, seed, device, "contig")
    B_t, B = _make((m, k) if tb else (k, m), dt, seed + 7, device, "contig")
    if ta:
        A_t, A = A_t.transpose(-1, -2), np.swapaxes(A, -1, -2)
    if tb:
        B_t, B = B_t.t(), B.T
    note(f"a={tuple(A_t.shape)} b={tuple(B_t.shape)} dtype={dt} seed={seed} ta={ta} tb={tb}")
    got = A_t @ B_t
    assert_close("torch.matmul", got, np.matmul(A, B), op="matmul", args=f"{tuple(A_t.shape)} @ {tuple(B_t.shape)}")
