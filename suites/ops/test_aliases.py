"""Operator library: documented aliases and less-used spellings of torch ops, checked against NumPy in
float64 like the original op, in every spelling the running torch documents: the torch.* function, the
Tensor method and the in-place Tensor method (absolute, arccos/arccosh/arcsin/arcsinh/arctan/arctanh/arctan2,
clip, divide, multiply, subtract, greater/greater_equal/less/less_equal/not_equal, negative, fix,
swapaxes/swapdims/moveaxis, concat/concatenate/row_stack, ger/addr, det/slogdet/inverse/matrix_power,
adjoint, ndimension/nelement/numel, logical_not_/relu_/unsqueeze_, hardshrink/prelu, addbmm/addcdiv,
bernoulli/multinomial methods, orgqr, linalg.matmul, chain_matmul, detach, Tensor.index (first-class dims)).

An alias is a separate binding (a Python name, a method table entry, a native function with its own
schema); each can drift from the original on its own: a method bound to the wrong kernel, an in-place variant
that returns a copy, an argument (alpha=, rounding_mode=, wrap=) dropped by one spelling only. Inputs are
gapped (every other column of a larger buffer) and carry NaN/inf where the function defines them; binary ops
broadcast a row against a matrix.
"""
from __future__ import annotations

import importlib.util
import math
import warnings

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_raises, assert_true


def _gapped(np_rng, shape, dtype, device, low=-3.0, high=3.0, specials=()):
    """Uniform values in [low, high) as every other column of a twice-as-wide buffer (not contiguous), the
    first entries replaced by ``specials``; returns the tensor and its float64 NumPy twin (the values as the
    dtype holds them)."""
    v = np_rng.uniform(low, high, shape[:-1] + (2 * shape[-1],))
    big = torch.from_numpy(v).to(dtype).to(device)
    t = big[..., ::2]
    for i, s in enumerate(specials):  # written through the gapped view, element by element
        t[np.unravel_index(i, t.shape)] = s
    return t, t.cpu().double().numpy().copy()


def _spellings(name):
    """The torch.* function, the method and the in-place method of an alias, where this torch has them."""
    out = []
    if hasattr(torch, name):
        out.append((f"torch.{name}", getattr(torch, name)))
    if hasattr(torch.Tensor, name):
        out.append((f"torch.Tensor.{name}", getattr(torch.Tensor, name)))
    return out


NAN, INF = math.nan, math.inf

# alias -> (NumPy oracle, input domain, specials that must come out as NumPy's, op class)
UNARY = {
    "absolute": (np.abs, (-4, 4), (NAN, -INF, -0.0), "exact"),
    "negative": (np.negative, (-4, 4), (NAN, INF, 0.0), "exact"),
    "fix": (np.trunc, (-6, 6), (NAN, -INF, -0.5, 2.5), "exact"),
    "arccos": (np.arccos, (-1, 1), (NAN, 1.0, -1.0, 1.5), "transcendental"),
    "arccosh": (np.arccosh, (1, 20), (NAN, 1.0, INF, 0.5), "transcendental"),
    "arcsin": (np.arcsin, (-1, 1), (NAN, 1.0, -0.0, -2.0), "transcendental"),
    "arcsinh": (np.arcsinh, (-30, 30), (NAN, INF, -INF, -0.0), "transcendental"),
    "arctan": (np.arctan, (-30, 30), (NAN, INF, -INF, 1e30), "transcendental"),
    "arctanh": (np.arctanh, (-0.999, 0.999), (NAN, 1.0, -1.0, 2.0), "transcendental"),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_alias(device, dtype, np_rng, name):
    """torch.<alias>(x), x.<alias>() and x.<alias>_() equal NumPy on gapped float input with NaN/inf and
    domain edges (arccosh(1) = 0, arctanh(1) = inf, NaN outside the domain), and on an empty tensor; the
    in-place spelling returns self and writes through a gapped view: catches an alias bound to another kernel
    (arcsin -> asinh), an in-place variant that returns a copy, and a flushed or clamped edge."""
    ref, (lo, hi), specials, op = UNARY[name]
    spellings = _spellings(name)
    assert_true(f"torch.{name}", len(spellings) == 2, f"missing spelling: only {[s for s, _ in spellings]}")
    x, a = _gapped(np_rng, (6, 40), dtype, device, lo, hi, specials)
    with np.errstate(all="ignore"):
        exp = ref(a)
    for api, fn in spellings:
        assert_close(api, fn(x), exp, op=op, check_dtype=dtype, check_device=device)
        assert_close(api, fn(x[:0]), exp[:0], op=op, args="empty")
    inplace = getattr(torch.Tensor, name + "_")
    y = x.clone()[:, ::2]  # gapped again: the in-place kernel writes through strides
    with np.errstate(all="ignore"):
        exp_y = ref(a[:, ::2])
    r = inplace(y)
    assert_true(f"torch.Tensor.{name}_", r is y, "in-place variant did not return self")
    assert_close(f"torch.Tensor.{name}_", y, exp_y, op=op)


# alias -> (NumPy oracle, result is bool)
BINARY = {
    "arctan2": (np.arctan2, False),
    "multiply": (np.multiply, False),
    "subtract": (np.subtract, False),
    "divide": (np.divide, False),
    "greater": (np.greater, True),
    "greater_equal": (np.greater_equal, True),
    "less": (np.less, True),
    "less_equal": (np.less_equal, True),
    "not_equal": (np.not_equal, True),
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_alias(device, dtype, np_rng, name):
    """torch.<alias>(x, y), x.<alias>(y) and x.<alias>_(y) equal NumPy with y a row broadcast against a gapped
    matrix, ties (equal elements) and NaN/inf included; comparisons return bool out of place and 1/0 in x's
    dtype in place: catches greater bound to greater_equal (ties), swapped operands (arctan2, subtract,
    divide), a broadcast that repeats the first row, and an in-place comparison that keeps x's values."""
    ref, is_cmp = BINARY[name]
    x, a = _gapped(np_rng, (5, 12), dtype, device, specials=(NAN, INF, -INF, 0.0))
    y, b = _gapped(np_rng, (1, 12), dtype, device, specials=(1.0, INF, 2.0, 0.0))
    x[1, :6] = y[0, :6]  # ties
    a[1, :6] = b[0, :6]
    with np.errstate(all="ignore"):
        exp = ref(a, b)
    op = "exact" if is_cmp else ("transcendental" if name == "arctan2" else "elementwise")
    for api, fn in _spellings(name):
        got = fn(x, y)
        if is_cmp:
            assert_equal(api, got.dtype, torch.bool, args="result dtype")
        assert_close(api, got, exp, op=op, check_device=device)
    z = x.clone()
    r = getattr(torch.Tensor, name + "_")(z, y)
    assert_true(f"torch.Tensor.{name}_", r is z, "in-place variant did not return self")
    assert_equal(f"torch.Tensor.{name}_", z.dtype, dtype, args="in-place keeps self's dtype")
    assert_close(f"torch.Tensor.{name}_", z, exp.astype(np.float64), op=op)


@pytest.mark.smoke
def test_binary_alias_arguments(device, np_rng):
    """The aliases' own arguments: subtract(alpha=), divide(rounding_mode='trunc'/'floor') in all three
    spellings against NumPy, multiply/subtract with a Python scalar, and divide's documented ValueError-free
    RuntimeError for an unknown rounding mode: catches an alias that drops alpha= or rounding_mode=."""
    x = torch.tensor([[7.0, -7.0, 5.5, -5.5, 0.0, 9.0]], dtype=torch.float64, device=device).expand(2, 6)[:, ::1]
    y = torch.tensor([2.0, 2.0, -2.0, 2.0, 3.0, -4.0], dtype=torch.float64, device=device)
    a, b = x.cpu().numpy(), y.cpu().numpy()
    for api, fn in _spellings("subtract"):
        assert_close(api, fn(x, y, alpha=3), a - 3 * b, op="exact", args="alpha=3")
        assert_close(api, fn(x, 2.5), a - 2.5, op="exact", args="scalar")
    for api, fn in _spellings("multiply"):
        assert_close(api, fn(x, -1.5), a * -1.5, op="exact", args="scalar")
    for mode, ref in (("trunc", np.trunc(a / b)), ("floor", np.floor(a / b)), (None, a / b)):
        for api, fn in _spellings("divide"):
            assert_close(api, fn(x, y, rounding_mode=mode), ref, op="exact", args=f"rounding_mode={mode}")
        z = x.clone()
        z.divide_(y, rounding_mode=mode)
        assert_close("torch.Tensor.divide_", z, ref, op="exact", args=f"rounding_mode={mode}")
    zs = x.clone()
    zs.subtract_(y, alpha=-2)
    assert_close("torch.Tensor.subtract_", zs, a + 2 * b, op="exact", args="alpha=-2")
    zm = x.clone()
    zm.multiply_(y)
    assert_close("torch.Tensor.multiply_", zm, a * b, op="exact")
    assert_raises("torch.divide", RuntimeError, torch.divide, x, y, rounding_mode="round", args="rounding_mode='round'")


@pytest.mark.parametrize("form", ("scalars", "tensors", "min_only", "max_only"))
def test_clip(device, dtype, np_rng, form):
    """torch.clip / Tensor.clip / Tensor.clip_ equal np.clip with scalar bounds, broadcast tensor bounds, and
    one bound only; NaN propagates; clip with no bound raises RuntimeError: catches min and max swapped, a
    dropped bound, and NaN clamped to a bound."""
    x, a = _gapped(np_rng, (4, 16), dtype, device, -5, 5, specials=(NAN, INF, -INF))
    if form == "scalars":
        lo, hi, args = -1.5, 2.0, {"min": -1.5, "max": 2.0}
    elif form == "tensors":
        lo_t, lo = _gapped(np_rng, (1, 16), dtype, device, -3, 0)
        hi_t, hi = _gapped(np_rng, (1, 16), dtype, device, 0, 3)
        args = {"min": lo_t, "max": hi_t}
    elif form == "min_only":
        lo, hi, args = 0.5, None, {"min": 0.5}
    else:
        lo, hi, args = None, -0.25, {"max": -0.25}
    exp = np.clip(a, lo, hi)
    for api, fn in _spellings("clip"):
        assert_close(api, fn(x, **args), exp, op="exact", check_dtype=dtype, args=form)
    z = x.clone()
    assert_true("torch.Tensor.clip_", z.clip_(**args) is z, "in-place variant did not return self")
    assert_close("torch.Tensor.clip_", z, exp, op="exact", args=form)
    assert_raises("torch.clip", RuntimeError, torch.clip, x, args="no bound")


@pytest.mark.smoke
def test_swap_move_axes(device, np_rng):
    """swapaxes/swapdims (torch, method, in-place) equal np.swapaxes and moveaxis (torch, method) equals
    np.moveaxis, including negative dims and lists of dims; the out-of-place results are views (share
    storage); an out-of-range dim raises IndexError: catches a swap that permutes the wrong pair and an
    in-place swap that leaves the shape unchanged."""
    x, a = _gapped(np_rng, (2, 3, 4, 6), torch.float32, device)
    for name in ("swapaxes", "swapdims"):
        for api, fn in _spellings(name):
            for d0, d1 in ((0, 2), (-1, 1), (3, 3)):
                got = fn(x, d0, d1)
                assert_close(api, got, np.swapaxes(a, d0, d1), op="exact", args=f"{d0}, {d1}")
                assert_true(api, got.data_ptr() == x.data_ptr(), "result is not a view")
        z = x.clone()
        r = getattr(z, name + "_")(0, -1)
        assert_true(f"torch.Tensor.{name}_", r is z, "in-place variant did not return self")
        assert_close(f"torch.Tensor.{name}_", z, np.swapaxes(a, 0, -1), op="exact", args="0, -1")
        assert_raises(f"torch.{name}", IndexError, getattr(torch, name), x, 0, 4, args="dim 4 of 4-d")
    for api, fn in _spellings("moveaxis"):
        for src, dst in ((0, -1), (-1, 0), ([0, 1], [-1, -2]), ((1, 3), (0, 1))):
            assert_close(api, fn(x, src, dst), np.moveaxis(a, src, dst), op="exact", args=f"{src}, {dst}")
        assert_raises(api, RuntimeError, fn, x, [0, 0], [1, 2], args="repeated source dim")


def test_concat_aliases(device, np_rng):
    """torch.concat / torch.concatenate equal np.concatenate (dim=0, negative dim, with an empty piece) and
    torch.row_stack equals np.vstack (1-d rows become 2-d): catches an alias that ignores dim= or drops the
    empty piece's neighbours; mismatched shapes raise RuntimeError."""
    p, a = _gapped(np_rng, (2, 5), torch.float64, device)
    q, b = _gapped(np_rng, (3, 5), torch.float64, device)
    e = torch.empty(0, 5, dtype=torch.float64, device=device)
    for name in ("concat", "concatenate"):
        fn = getattr(torch, name)
        assert_close(f"torch.{name}", fn([p, e, q]), np.concatenate([a, b]), op="exact", args="dim=0")
        assert_close(f"torch.{name}", fn((p, p), dim=-1), np.concatenate([a, a], axis=-1), op="exact", args="dim=-1")
        assert_raises(f"torch.{name}", RuntimeError, fn, [p, q], dim=1, args="(2,5),(3,5) dim=1")
    r1, v = _gapped(np_rng, (5,), torch.float64, device)
    assert_close("torch.row_stack", torch.row_stack([r1, q, r1]), np.vstack([v, b, v]), op="exact")


def test_outer_products(device, dtype, np_rng):
    """Tensor.ger equals np.outer, and addr (Tensor.addr, Tensor.addr_) is beta*M + alpha*outer(u, v) with
    M broadcast, beta=0 ignoring NaN in M as documented: catches ger transposed, addr dropping beta/alpha, and
    beta=0 multiplying NaN into the result."""
    u, ua = _gapped(np_rng, (7,), dtype, device)
    v, va = _gapped(np_rng, (5,), dtype, device)
    m, ma = _gapped(np_rng, (7, 5), dtype, device)
    assert_close("torch.Tensor.ger", u.ger(v), np.outer(ua, va), op="matmul", check_dtype=dtype)
    for beta, alpha in ((1, 1), (0.5, -2.0)):
        exp = beta * ma + alpha * np.outer(ua, va)
        assert_close("torch.Tensor.addr", m.addr(u, v, beta=beta, alpha=alpha), exp, op="matmul",
                     args=f"beta={beta}, alpha={alpha}")
        z = m.clone()
        assert_true("torch.Tensor.addr_", z.addr_(u, v, beta=beta, alpha=alpha) is z, "did not return self")
        assert_close("torch.Tensor.addr_", z, exp, op="matmul", args=f"beta={beta}, alpha={alpha}")
    mn = m.clone()
    mn[0, 0] = NAN
    assert_close("torch.Tensor.addr", mn.addr(u, v, beta=0), np.outer(ua, va), op="matmul", args="beta=0, NaN in M")
    row = m[:1]  # broadcast input
    assert_close("torch.Tensor.addr", row.addr(u, v), ma[:1] + np.outer(ua, va), op="matmul", args="M (1,5)")


@pytest.mark.dtypes(torch.float32, torch.float64, torch.complex64)
def test_linalg_aliases(device, dtype, np_rng):
    """det/slogdet/inverse/matrix_power (torch.* and method) and adjoint equal NumPy's on a batch of
    well-conditioned matrices: catches a method bound to another decomposition, slogdet's sign dropped,
    matrix_power(n) computing n-1 products or ignoring a negative n, adjoint without the conjugate; a
    singular matrix's det is 0 and its inverse raises."""
    n = 4
    v = np_rng.standard_normal((3, n, n)) + (1j * np_rng.standard_normal((3, n, n)) if dtype.is_complex else 0)
    v = v + 3 * np.eye(n)  # condition number ~ a few
    x = torch.from_numpy(v).to(dtype).to(device)
    a = x.cpu().numpy().astype(np.complex128 if dtype.is_complex else np.float64)
    for api, fn in _spellings("det"):
        assert_close(api, fn(x), np.linalg.det(a), op="linalg")
    for api, fn in _spellings("slogdet"):
        sign, logabs = fn(x)
        s_ref, l_ref = np.linalg.slogdet(a)
        assert_close(api, sign, s_ref, op="linalg", args="sign")
        assert_close(api, logabs, l_ref, op="linalg", args="logabsdet")
    for api, fn in _spellings("inverse"):
        assert_close(api, fn(x), np.linalg.inv(a), op="linalg")
    for api, fn in _spellings("matrix_power"):
        for k in (0, 1, 3, -2):
            assert_close(api, fn(x, k), np.linalg.matrix_power(a, k), op="linalg", args=f"n={k}")
    for api, fn in _spellings("adjoint"):
        got = fn(x)
        assert_close(api, got, np.conj(np.swapaxes(a, -1, -2)), op="exact")
    sing = torch.ones(3, 3, dtype=dtype, device=device)
    assert_close("torch.Tensor.det", sing.det(), 0.0, op="linalg", args="singular")
    assert_raises("torch.inverse", RuntimeError, torch.inverse, sing, args="singular")
    assert_raises("torch.Tensor.det", RuntimeError, torch.Tensor.det, torch.ones(2, 3, dtype=dtype, device=device),
                  args="non-square")


def test_size_queries(device):
    """Tensor.ndimension, Tensor.nelement and torch.numel equal NumPy's ndim/size, for a 0-d, an empty and a
    gapped tensor: catches nelement counting storage (the gapped view's base) instead of elements."""
    base = torch.zeros(4, 10, device=device)
    for t in (torch.tensor(3.0, device=device), torch.empty(2, 0, 5, device=device), base[:, ::2], base):
        ref = np.empty(tuple(t.shape))
        assert_equal("torch.Tensor.ndimension", t.ndimension(), ref.ndim, args=str(tuple(t.shape)))
        assert_equal("torch.Tensor.nelement", t.nelement(), ref.size, args=str(tuple(t.shape)))
        assert_equal("torch.numel", torch.numel(t), ref.size, args=str(tuple(t.shape)))


def test_inplace_unary_variants(device, np_rng):
    """logical_not_, relu_ and unsqueeze_ work in place (return self; values/shape through a gapped view):
    logical_not_ writes 1/0 in the tensor's own dtype, relu_ is max(x, 0) with NaN kept, unsqueeze_ inserts a
    size-1 dim at (negative) positions: catches in-place variants that return a new tensor."""
    x, a = _gapped(np_rng, (4, 10), torch.float32, device, specials=(NAN, 0.0, -0.0))
    z = x.clone()[:, ::2]
    za = a[:, ::2]
    r = z.logical_not_()
    assert_true("torch.Tensor.logical_not_", r is z, "did not return self")
    assert_close("torch.Tensor.logical_not_", z, np.logical_not(za).astype(np.float64), op="exact")
    z = x.clone()
    r = z.relu_()
    assert_true("torch.Tensor.relu_", r is z, "did not return self")
    assert_close("torch.Tensor.relu_", z, np.where(np.isnan(a), a, np.maximum(a, 0)), op="exact")
    for dim, shape in ((0, (1, 4, 10)), (-1, (4, 10, 1)), (1, (4, 1, 10))):
        z = x.clone()
        r = z.unsqueeze_(dim)
        assert_true("torch.Tensor.unsqueeze_", r is z, "did not return self")
        assert_close("torch.Tensor.unsqueeze_", z, np.expand_dims(a, dim), op="exact", args=f"dim={dim}")
        assert_equal("torch.Tensor.unsqueeze_", tuple(z.shape), shape, args=f"dim={dim}")
    assert_raises("torch.Tensor.unsqueeze_", IndexError, x.clone().unsqueeze_, 4, args="dim=4 of 2-d")


def test_activation_methods(device, dtype, np_rng):
    """Tensor.hardshrink(lambd) is x where |x| > lambd else 0 (default 0.5) and Tensor.prelu(w) is
    max(0,x) + w*min(0,x) with one weight per channel (dim 1): catches a default lambd of 0, >= instead of >,
    and prelu applying the weight to the positive side or to the wrong dim."""
    x, a = _gapped(np_rng, (3, 4, 6), dtype, device)
    x[0, 0, :3] = torch.tensor([0.5, -0.5, 0.7])
    a[0, 0, :3] = x[0, 0, :3].cpu().double().numpy()
    for lambd in (None, 0.5, 1.25):
        got = x.hardshrink() if lambd is None else x.hardshrink(lambd)
        lam = 0.5 if lambd is None else lambd
        assert_close("torch.Tensor.hardshrink", got, np.where(np.abs(a) > lam, a, 0.0), op="exact", args=f"lambd={lambd}")
    w, wa = _gapped(np_rng, (4,), dtype, device, 0.05, 0.5)
    exp = np.maximum(a, 0) + wa[None, :, None] * np.minimum(a, 0)
    assert_close("torch.Tensor.prelu", x.prelu(w), exp, op="elementwise", check_dtype=dtype)
    w1 = torch.tensor([0.25], dtype=dtype, device=device)
    assert_close("torch.Tensor.prelu", x.prelu(w1), np.maximum(a, 0) + 0.25 * np.minimum(a, 0), op="elementwise",
                 args="single weight")


def test_addbmm_addcdiv(device, dtype, np_rng):
    """Tensor.addbmm / addbmm_ is beta*M + alpha*sum_b(B1[b] @ B2[b]) (a batch-reduced product) and
    Tensor.addcdiv is x + value*t1/t2 with broadcasting: catches addbmm returning the last batch only, beta or
    alpha dropped, and addcdiv dividing the wrong way or ignoring value."""
    b1, a1 = _gapped(np_rng, (5, 3, 4), dtype, device)
    b2, a2 = _gapped(np_rng, (5, 4, 6), dtype, device)
    m, ma = _gapped(np_rng, (3, 6), dtype, device)
    k = 5 * 4
    prod = np.einsum("bij,bjk->ik", a1, a2)
    scale = np.einsum("bij,bjk->ik", np.abs(a1), np.abs(a2))
    for beta, alpha in ((1, 1), (0.5, 2.0), (0, -1.0)):
        exp = beta * ma + alpha * prod
        s = abs(beta) * np.abs(ma) + abs(alpha) * scale
        assert_close("torch.Tensor.addbmm", m.addbmm(b1, b2, beta=beta, alpha=alpha), exp, op="matmul", k=k,
                     scale=s, args=f"beta={beta}, alpha={alpha}")
        z = m.clone()
        assert_true("torch.Tensor.addbmm_", z.addbmm_(b1, b2, beta=beta, alpha=alpha) is z, "did not return self")
        assert_close("torch.Tensor.addbmm_", z, exp, op="matmul", k=k, scale=s, args=f"beta={beta}, alpha={alpha}")
    t1, c1 = _gapped(np_rng, (3, 6), dtype, device)
    t2, c2 = _gapped(np_rng, (1, 6), dtype, device, 0.5, 2.0)
    for value in (1, -0.5):
        assert_close("torch.Tensor.addcdiv", m.addcdiv(t1, t2, value=value), ma + value * c1 / c2, op="elementwise",
                     args=f"value={value}")


def test_bernoulli_method(device, np_rng):
    """Tensor.bernoulli() draws 0/1 with P(1) = the tensor's own value per element: p = 0 and 1 are exact,
    and the mean of 20,000 draws at p = 0.2 / 0.7 lies within 6 sigma of p: catches the method drawing with
    p = 0.5 or 1 - p, and values other than 0/1."""
    n = 20000
    p = torch.tensor([0.0, 1.0, 0.2, 0.7], device=device).repeat(n, 1)
    got = p.bernoulli()
    vals = got.cpu().numpy()
    assert_true("torch.Tensor.bernoulli", np.isin(vals, [0.0, 1.0]).all(), "values other than 0 and 1")
    assert_equal("torch.Tensor.bernoulli", got.dtype, p.dtype, args="dtype")
    assert_close("torch.Tensor.bernoulli", vals[:, 0], np.zeros(n), op="exact", args="p=0")
    assert_close("torch.Tensor.bernoulli", vals[:, 1], np.ones(n), op="exact", args="p=1")
    for col, q in ((2, 0.2), (3, 0.7)):
        sigma = math.sqrt(q * (1 - q) / n)
        assert_close("torch.Tensor.bernoulli", vals[:, col].mean(), q, atol=6 * sigma, rtol=0,  # 6-sigma sampling bound
                     args=f"mean of {n} draws, p={q}")


def test_multinomial_method(device):
    """Tensor.multinomial(n, replacement=True) draws category i with probability w_i / sum(w) (counts within
    6 sigma, zero weight never drawn); without replacement the draws are distinct; too many draws without
    replacement and negative weights raise RuntimeError: catches unnormalized weights, an off-by-one category,
    and repeated categories without replacement."""
    w = torch.tensor([1.0, 0.0, 3.0, 6.0], device=device)
    n = 40000
    draws = w.multinomial(n, replacement=True).cpu().numpy()
    p = np.array([0.1, 0.0, 0.3, 0.6])
    counts = np.bincount(draws, minlength=4)
    sigma = np.sqrt(n * p * (1 - p))
    assert_close("torch.Tensor.multinomial", counts, n * p, atol=float(6 * sigma.max()), rtol=0,  # 6-sigma bound
                 args=f"{n} draws with replacement")
    assert_equal("torch.Tensor.multinomial", int(counts[1]), 0, args="zero-weight category")
    rows = torch.rand(50, 8, device=device).multinomial(8, replacement=False).cpu().numpy()
    assert_equal("torch.Tensor.multinomial", np.sort(rows, axis=1), np.tile(np.arange(8), (50, 1)),
                 args="8 of 8 without replacement is a permutation")
    assert_raises("torch.Tensor.multinomial", RuntimeError, w.multinomial, 5, replacement=False,
                  args="5 draws from 4 categories without replacement")
    # negative weights: a host-side RuntimeError on CPU (a device-side assert on CUDA, which would poison the context)
    assert_raises("torch.Tensor.multinomial", RuntimeError, torch.tensor([1.0, -1.0]).multinomial, 1,
                  args="negative weight")


def _householder_np(a, tau):
    """Q = H_1 H_2 ... H_k with H_i = I - tau_i v_i v_i^H, v_i = (0,...,0, 1, a[i+1:, i]) (LAPACK's orgqr)."""
    m, n = a.shape
    q = np.eye(m, dtype=a.dtype)
    for i in range(len(tau)):
        v = np.zeros(m, dtype=a.dtype)
        v[i] = 1
        v[i + 1:] = a[i + 1:, i]
        q = q @ (np.eye(m, dtype=a.dtype) - tau[i] * np.outer(v, v.conj()))
    return q[:, :n]


@pytest.mark.dtypes(torch.float64, torch.float32)
def test_orgqr(device, dtype, np_rng):
    """torch.orgqr / Tensor.orgqr(tau) is the product of Householder reflectors (LAPACK orgqr), computed
    here in NumPy, for a tall matrix and a batch; fed with geqrf's output it gives QR's Q: catches reflectors
    applied in the wrong order, tau ignored, and the unit diagonal of v read from A."""
    a, aa = _gapped(np_rng, (6, 4), dtype, device)
    tau, ta = _gapped(np_rng, (3,), dtype, device, 0.2, 1.5)
    exp = _householder_np(aa, ta)
    for api, fn in _spellings("orgqr"):
        assert_close(api, fn(a, tau), exp, op="linalg", check_dtype=dtype)
    ab, aba = _gapped(np_rng, (2, 5, 3), dtype, device)
    tb, tba = _gapped(np_rng, (2, 2), dtype, device, 0.2, 1.5)
    got = torch.orgqr(ab, tb)
    assert_close("torch.orgqr", got, np.stack([_householder_np(aba[i], tba[i]) for i in range(2)]), op="linalg",
                 args="batched")
    raw, tau2 = torch.geqrf(a)
    q = raw.orgqr(tau2)
    q_np, _ = np.linalg.qr(aa)
    sign = np.sign(np.diag(np.linalg.qr(aa)[1])) * np.sign(np.diag(raw.cpu().double().numpy()))
    assert_close("torch.Tensor.orgqr", q, q_np * sign, op="linalg", args="of geqrf")
    assert_raises("torch.orgqr", RuntimeError, torch.orgqr, a, torch.ones(5, dtype=dtype, device=device),
                  args="more reflectors than columns")


def test_matmul_aliases(device, dtype, np_rng):
    """torch.linalg.matmul equals np.matmul (broadcast batch, 1-d operands) and torch.functional.chain_matmul
    equals np.linalg.multi_dot: catches a dropped operand in the chain, a transposed batch broadcast, and a
    1-d operand not squeezed back."""
    x, a = _gapped(np_rng, (2, 1, 3, 5), dtype, device)
    y, b = _gapped(np_rng, (4, 5, 2), dtype, device)
    v, va = _gapped(np_rng, (5,), dtype, device)
    assert_close("torch.linalg.matmul", torch.linalg.matmul(x, y), np.matmul(a, b), op="matmul")
    assert_close("torch.linalg.matmul", torch.linalg.matmul(x, v), np.matmul(a, va), op="matmul", args="1-d right")
    mats = [_gapped(np_rng, s, dtype, device) for s in ((3, 4), (4, 6), (6, 2), (2, 5))]
    with warnings.catch_warnings():  # chain_matmul is deprecated (a once-per-process UserWarning)
        warnings.simplefilter("ignore", UserWarning)
        got = torch.functional.chain_matmul(*[m for m, _ in mats])
    exp = np.linalg.multi_dot([r for _, r in mats])
    s = np.linalg.multi_dot([np.abs(r) for _, r in mats])
    assert_close("torch.functional.chain_matmul", got, exp, op="matmul", k=4 * 6 * 2, scale=s)
    assert_raises("torch.linalg.matmul", RuntimeError, torch.linalg.matmul, x, x, args="(3,5)@(3,5)")


def test_detach_function(device):
    """torch.detach(x) shares x's storage and values, does not require grad, and (a documented view)
    sees a later in-place change of x: catches a detach that copies or keeps the graph."""
    x = torch.randn(3, 4, device=device, requires_grad=True)
    d = torch.detach(x)
    assert_close("torch.detach", d, x.detach().cpu().double().numpy(), op="exact")
    assert_equal("torch.detach", d.requires_grad, False)
    assert_true("torch.detach", d.data_ptr() == x.data_ptr(), "result does not share storage")
    with torch.no_grad():
        x.mul_(2)
    assert_close("torch.detach", d, x.detach().cpu().double().numpy(), op="exact", args="after x *= 2")


def test_tensor_index_first_class_dims(np_rng):
    """Tensor.index(positions, dims) binds positional dims to first-class Dim objects (functorch.dim);
    reordering the bound dims is the transpose computed with NumPy: catches positions bound to the wrong dims."""
    if importlib.util.find_spec("functorch.dim") is None:
        pytest.skip(f"torch {torch.__version__} ships no functorch.dim (first-class dims)")
    from functorch.dim import dims

    a = np_rng.standard_normal((3, 4, 5))
    x = torch.from_numpy(a)
    i, j = dims(2)
    y = x.index((0, 2), (i, j))
    assert_close("torch.Tensor.index", y.order(j, i), np.transpose(a, (2, 0, 1)), op="exact", args="(0, 2) -> (i, j)")
    k = dims(1)
    z = x.index(1, k)
    assert_close("torch.Tensor.index", z.order(k), np.transpose(a, (1, 0, 2)), op="exact", args="1 -> k")
