"""§ 1 Tensors: elementwise arithmetic, math functions, comparisons and operators, against NumPy in
float64 on the same (dtype-rounded) inputs.

Covers add/sub (alpha), mul, div (rounding_mode), floor_divide, remainder/fmod, pow, the unary math
functions, abs/neg/sign, clamp, where, maximum/minimum/fmax/fmin, comparisons, isclose/allclose,
isnan/isinf/isfinite, round (half to even, decimals) and the Python operators with reflected forms.
Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness import dtypes
from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from harness.checks import to_numpy as _ref  # float64/complex128/int copy of a tensor's values
from suites.tensors._tensors import random_tensor as _make

NAN, INF = float("nan"), float("inf")


def _cancel(dtype, *operands) -> dict:
    """Tolerance override for a + alpha*b in half precision: the kernel may round alpha*b before the
    sum (two roundings), so the error scales with the operands, not with the (cancelled) result."""
    if dtype not in dtypes.FLOAT_LOW:
        return {}
    eps = torch.finfo(dtype).eps
    return {"atol": 2 * eps * max(float(np.abs(o).max()) for o in operands)}


ARITH = dtypes.FLOATING + dtypes.INTEGRAL + dtypes.COMPLEX


@pytest.mark.smoke
@pytest.mark.dtypes(ARITH)
def test_add_sub_alpha(device, dtype, np_rng):
    """add(a, b, alpha) = a + alpha*b and sub(a, b, alpha) = a - alpha*b; catches an ignored or
    misapplied alpha, a swapped sub, and wrong results on transposed (non-contiguous) operands."""
    for noncontig in (False, True):
        a = _make(np_rng, (7, 5), dtype, device, noncontig=noncontig)
        bb = _make(np_rng, (7, 5), dtype, device)
        A, B = _ref(a), _ref(bb)
        tag = f"noncontig={noncontig}"
        assert_close("torch.add", torch.add(a, bb), A + B, args=tag, check_dtype=dtype)
        assert_close("torch.sub", torch.sub(a, bb), A - B, args=tag, check_dtype=dtype)
        assert_close("torch.add", torch.add(a, bb, alpha=3), A + 3 * B, args="alpha=3, " + tag, **_cancel(dtype, A, 3 * B))
        assert_close("torch.sub", torch.sub(a, bb, alpha=2), A - 2 * B, args="alpha=2, " + tag, **_cancel(dtype, A, 2 * B))
        assert_close("torch.subtract", torch.subtract(a, bb), A - B, args=tag)
        assert_close("torch.add", torch.add(a, 2), A + 2, args="scalar other")
    if dtype.is_floating_point or dtype.is_complex:
        assert_close("torch.add", torch.add(a, bb, alpha=0.5), A + 0.5 * B, args="alpha=0.5", **_cancel(dtype, A, B))
    else:
        assert_raises("torch.add", RuntimeError, torch.add, a, bb, alpha=0.5, args="integer tensors, float alpha")


@pytest.mark.dtypes(ARITH + dtypes.BOOL)
def test_mul(device, dtype, np_rng):
    """mul/multiply and `*` (and the reflected scalar form) equal NumPy's product; bool*bool is logical and."""
    a = _make(np_rng, (6, 4), dtype, device, noncontig=True)
    bb = _make(np_rng, (6, 4), dtype, device)
    A, B = _ref(a), _ref(bb)
    expected = (A & B) if dtype == torch.bool else A * B
    assert_close("torch.mul", torch.mul(a, bb), expected, check_dtype=dtype)
    assert_close("torch.multiply", torch.multiply(a, bb), expected)
    if dtype != torch.bool:
        assert_close("Tensor.__rmul__", 3 * a, 3 * A)


@pytest.mark.dtypes(dtypes.FLOATING + dtypes.COMPLEX)
def test_div_float(device, dtype, np_rng):
    """div with rounding_mode None/'trunc'/'floor' equals a/b, trunc(a/b), floor(a/b) (floats); division
    by zero gives +-inf and 0/0 NaN; catches a swapped trunc/floor or an ignored rounding_mode."""
    a = _make(np_rng, (5, 8), dtype, device, -20, 20)
    bb = _make(np_rng, (5, 8), dtype, device, 0.5, 4) * torch.tensor([1, -1] * 4, device=device).to(dtype)
    A, B = _ref(a), _ref(bb)
    assert_close("torch.div", torch.div(a, bb), A / B, check_dtype=dtype)
    assert_close("torch.divide", a / bb, A / B)
    if dtype.is_complex:
        return
    # trunc/floor of an exactly-representable quotient; compare the rounded results exactly where the
    # quotient is not within one ulp of an integer boundary.
    q = A / B
    safe = np.abs(q - np.round(q)) > 1e-2
    for mode, fn in [("trunc", np.trunc), ("floor", np.floor)]:
        got = _ref(torch.div(a, bb, rounding_mode=mode))
        assert_equal("torch.div", got[safe], fn(q)[safe], args=f"rounding_mode={mode!r}")
        assert_equal("torch.div", torch.div(a, bb, rounding_mode=mode).dtype, dtype, args=f"rounding_mode={mode!r}")
    z = torch.tensor([1.0, -1.0, 0.0, INF], dtype=dtype, device=device)
    assert_close("torch.div", z / torch.zeros(4, dtype=dtype, device=device), np.array([INF, -INF, NAN, INF]),
                 args="x / 0")
    assert_close("torch.div", torch.tensor([1.0], dtype=dtype, device=device) / torch.tensor([-0.0], dtype=dtype, device=device),
                 np.array([-INF]), args="1 / -0.0")


@pytest.mark.dtypes(dtypes.INTEGRAL)
def test_div_integer(device, dtype):
    """Integer div: rounding_mode None gives float true division, 'trunc' rounds toward zero, 'floor'
    toward -inf (Python //), both keep the integer dtype; integer division by zero raises on CPU."""
    a = torch.tensor([7, -7, 7, -7, 0, 9], dtype=dtype, device=device)
    d = torch.tensor([2, 2, -2, -2, 3, 3], dtype=dtype, device=device)
    assert_close("torch.div", torch.div(a, d), np.array([3.5, -3.5, -3.5, 3.5, 0.0, 3.0]), check_dtype=torch.float32)
    t = torch.div(a, d, rounding_mode="trunc")
    assert_equal("torch.div", t.dtype, dtype, args="rounding_mode='trunc'")
    assert_equal("torch.div", t, np.array([3, -3, -3, 3, 0, 3]), args="rounding_mode='trunc'")
    f = torch.div(a, d, rounding_mode="floor")
    assert_equal("torch.div", f, np.array([3, -4, -4, 3, 0, 3]), args="rounding_mode='floor'")
    assert_equal("torch.floor_divide", torch.floor_divide(a, d), np.array([3, -4, -4, 3, 0, 3]))
    assert_equal("operator //", a // d, np.array([3, -4, -4, 3, 0, 3]))
    assert_raises("torch.div", (ValueError, RuntimeError), torch.div, a, d, rounding_mode="round", args="rounding_mode='round'")
    if device == "cpu":
        zero = torch.zeros_like(d)
        assert_raises("torch.div", RuntimeError, torch.div, a, zero, rounding_mode="floor", args="int / 0, floor")
        assert_raises("torch.remainder", RuntimeError, torch.remainder, a, zero, args="int % 0")


@pytest.mark.dtypes(dtypes.FLOAT_HIGH + dtypes.INTEGRAL + (torch.bfloat16,))
def test_remainder_fmod(device, dtype, np_rng):
    """remainder takes the sign of the divisor (Python %), fmod the sign of the dividend (C fmod);
    catches the two swapped, and `%` not mapping to remainder."""
    a = torch.from_numpy(np_rng.integers(-20, 21, size=(4, 6)).astype(np.float64)).to(dtype).to(device)
    divs = [-7, -3, 3, 7] if not dtype.is_floating_point else [-7, -2.5, -3, 2.5, 3, 7]
    for dv in divs:
        A = _ref(a)
        assert_close("torch.remainder", torch.remainder(a, dv), np.remainder(A, dv), args=f"other={dv}")
        assert_close("operator %", a % dv, np.remainder(A, dv), args=f"other={dv}")
        assert_close("torch.fmod", torch.fmod(a, dv), np.fmod(A, dv), args=f"other={dv}")
        other = torch.full_like(a, dv) if isinstance(dv, int) or dtype.is_floating_point else None
        if other is not None:
            assert_close("torch.remainder", torch.remainder(a, other), np.remainder(A, dv), args="tensor other")
    if dtype.is_floating_point:
        z = torch.tensor([5.0, -5.0], dtype=dtype, device=device)
        assert_close("torch.fmod", torch.fmod(z, 0.0), np.array([NAN, NAN]), args="x fmod 0")
        assert_close("torch.remainder", torch.remainder(z, 0.0), np.array([NAN, NAN]), args="x % 0")
    assert_close("torch.remainder", torch.remainder(-3, torch.tensor([5], device=device)), np.array([2]),
                 args="scalar self")


@pytest.mark.dtypes(dtypes.FLOATING + dtypes.COMPLEX)
def test_pow(device, dtype, np_rng):
    """pow(tensor, tensor|scalar) and pow(scalar, tensor): x**y for positive bases, integer powers of
    negative bases, 0**0 = 1, negative**fraction = NaN; catches swapped base/exponent."""
    base = _make(np_rng, (4, 5), dtype, device, 0.5, 3)
    ex = _make(np_rng, (4, 5), dtype, device, -2, 2)
    B, E = _ref(base), _ref(ex)
    # real results in ULP (pow's outputs span magnitudes; measured <= 1 ulp on CPU); complex pow is
    # exp(y*log z), whose error is relative to |z**y|: rtol 5e-6 at complex64 (torch's own OpInfo allows this)
    tol = {"op": "transcendental"} if not dtype.is_complex else \
        {"op": "elementwise", **({"rtol": 5e-6} if dtype == torch.complex64 else {})}
    assert_close("torch.pow", torch.pow(base, ex), B ** E, check_dtype=dtype, **tol)
    assert_close("operator **", base ** 2, B ** 2)
    assert_close("operator **", 2 ** ex, 2.0 ** E, **tol, args="reflected scalar base")
    assert_close("torch.pow", torch.pow(3, ex), 3.0 ** E, **tol, args="scalar self")
    assert_close("torch.pow", base ** 0.5, np.sqrt(B), **tol, args="exponent=0.5")
    if not dtype.is_complex:
        s = torch.tensor([-2.0, -2.0, 0.0, -8.0], dtype=dtype, device=device)
        e = torch.tensor([3.0, 2.0, 0.0, 1 / 3], dtype=dtype, device=device)
        assert_close("torch.pow", torch.pow(s, e), np.array([-8.0, 4.0, 1.0, NAN]), args="negative bases, 0**0")


@pytest.mark.dtypes(dtypes.INTEGRAL)
def test_pow_integer(device, dtype):
    """Integer pow stays integer and exact; a negative integer exponent is an error."""
    a = torch.tensor([2, -3, 0, 1, 5], dtype=dtype, device=device)
    assert_equal("torch.pow", torch.pow(a, 3), np.array([8, -27, 0, 1, 125]), args="exponent=3")
    assert_equal("torch.pow", torch.pow(a, 3).dtype, dtype)
    assert_equal("torch.pow", torch.pow(a, 0), np.ones(5, dtype=np.int64), args="exponent=0")
    assert_raises("torch.pow", RuntimeError, torch.pow, a, -1, args="negative integer exponent")
    assert_equal("torch.pow", (a ** 2.0).dtype, torch.float32, args="int ** float -> float")


# name -> (torch function, NumPy float64 oracle, input range)
UNARY = {
    "exp": (torch.exp, np.exp, (-8, 8)),
    "log": (torch.log, np.log, (0.01, 50)),
    "log1p": (torch.log1p, np.log1p, (-0.9, 50)),
    "expm1": (torch.expm1, np.expm1, (-5, 5)),
    "sqrt": (torch.sqrt, np.sqrt, (0, 50)),
    "rsqrt": (torch.rsqrt, lambda x: 1 / np.sqrt(x), (0.01, 50)),
    "sin": (torch.sin, np.sin, (-6, 6)),
    "cos": (torch.cos, np.cos, (-6, 6)),
    "tanh": (torch.tanh, np.tanh, (-6, 6)),
    "sigmoid": (torch.sigmoid, lambda x: 1 / (1 + np.exp(-x)), (-20, 20)),  # outputs down to 2e-9
    "abs": (torch.abs, np.abs, (-5, 5)),
    "neg": (torch.neg, np.negative, (-5, 5)),
    "sign": (torch.sign, np.sign, (-5, 5)),
    "floor": (torch.floor, np.floor, (-5, 5)),
    "ceil": (torch.ceil, np.ceil, (-5, 5)),
    "trunc": (torch.trunc, np.trunc, (-5, 5)),
    "reciprocal": (torch.reciprocal, lambda x: 1 / x, (0.1, 5)),
    "square": (torch.square, np.square, (-5, 5)),
    "log2": (torch.log2, np.log2, (0.01, 50)),
    "exp2": (torch.exp2, np.exp2, (-8, 8)),
    "atan": (torch.atan, np.arctan, (-5, 5)),
}
# IEEE special values each oracle handles; the op must agree (log(0) = -inf, sqrt(-1) = nan, ...)
SPECIALS = [0.0, -0.0, INF, -INF, NAN, -1.0, 1.0]


@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.dtypes(dtypes.FLOATING)
def test_unary_math(device, dtype, name, np_rng):
    """Each unary math function equals its float64 oracle on random contiguous and transposed inputs
    and on the IEEE special values (0, -0, +-inf, NaN, -1), keeps the input dtype; catches wrong
    kernels, wrong special-value handling and broken non-contiguous (strided) paths. Compared in ULP of
    the result dtype (class ``transcendental``), so tiny outputs count as much as large ones: catches a
    sigmoid/exp flushed to 0 in its tail and a float32 function computed in half precision."""
    fn, ref, (lo, hi) = UNARY[name]
    api = f"torch.{name}"
    for noncontig in (False, True):
        x = _make(np_rng, (9, 17), dtype, device, lo, hi, noncontig=noncontig)
        with np.errstate(all="ignore"):
            expected = ref(_ref(x))
        assert_close(api, fn(x), expected, op="transcendental", check_dtype=dtype, args=f"noncontig={noncontig}")
    specials = [v for v in SPECIALS if not (name == "sign" and v != v)]  # sign(NaN) is undocumented
    sp = torch.tensor(specials, dtype=dtype, device=device)
    with np.errstate(all="ignore"):
        expected = ref(np.array(specials))
    got = fn(sp)
    assert_close(api, got, expected, op="transcendental", args="special values")
    empty = fn(torch.empty(0, 3, dtype=dtype, device=device))
    assert_equal(api, tuple(empty.shape), (0, 3), args="empty input")
    assert_close(api, fn(torch.tensor(0.5, dtype=dtype, device=device)), ref(np.float64(0.5)), op="transcendental",
                 args="zero-dim")
    method = getattr(x, name, None)
    if method is not None:
        assert_close(f"Tensor.{name}", method(), fn(x).cpu(), op="exact", args="method form")


def test_signed_zero_and_sign_special(device):
    """sign(+-0) is 0, sign(-inf) is -1, abs(-0.0) is +0.0, neg(0.0) is -0.0 (checked via copysign)."""
    x = torch.tensor([-0.0, 0.0, INF, -INF], device=device)
    assert_close("torch.sign", torch.sign(x), np.array([0.0, 0.0, 1.0, -1.0]))
    ab = torch.abs(torch.tensor([-0.0], device=device))
    assert_equal("torch.abs", math.copysign(1.0, ab.item()), 1.0, args="-0.0: sign bit cleared")
    ng = torch.neg(torch.tensor([0.0], device=device))
    assert_equal("torch.neg", math.copysign(1.0, ng.item()), -1.0, args="0.0: sign bit set")


@pytest.mark.dtypes(dtypes.INTEGRAL + (torch.int8,))
def test_abs_neg_sign_int(device, dtype):
    """abs/neg/sign on integer tensors stay integer and exact."""
    a = torch.tensor([-5, 0, 3, -1], dtype=dtype, device=device)
    assert_equal("torch.abs", torch.abs(a), np.array([5, 0, 3, 1]))
    assert_equal("torch.abs", torch.abs(a).dtype, dtype)
    assert_equal("torch.neg", -a, np.array([5, 0, -3, 1]))
    assert_equal("torch.sign", torch.sign(a), np.array([-1, 0, 1, -1]))
    assert_equal("torch.sign", torch.sign(a).dtype, dtype)


def test_complex_abs_sgn_angle(device):
    """abs of complex64 is the float32 modulus; sgn is z/|z| (0 at 0); angle is atan2(imag, real)."""
    z = torch.tensor([3 + 4j, -1j, 0j, -2 + 0j], dtype=torch.complex64, device=device)
    Z = np.array([3 + 4j, -1j, 0j, -2 + 0j])
    assert_close("torch.abs", torch.abs(z), np.abs(Z), check_dtype=torch.float32)
    assert_close("torch.sgn", torch.sgn(z), np.array([0.6 + 0.8j, -1j, 0j, -1 + 0j]))
    assert_close("torch.angle", torch.angle(z), np.angle(Z), check_dtype=torch.float32)
    assert_close("torch.conj", torch.conj(z), np.conj(Z))


@pytest.mark.dtypes(dtypes.FLOATING + dtypes.INTEGRAL)
def test_clamp(device, dtype, np_rng):
    """clamp(min), clamp(max), clamp(min, max) with scalar and broadcast tensor bounds; min > max sets
    every element to max; NaN input stays NaN; both None raises. Catches swapped or ignored bounds."""
    x = _make(np_rng, (5, 6), dtype, device, -10, 10, noncontig=True)
    X = _ref(x)
    assert_close("torch.clamp", torch.clamp(x, min=-2), np.maximum(X, -2), args="min=-2", check_dtype=dtype)
    assert_close("torch.clamp", torch.clamp(x, max=3), np.minimum(X, 3), args="max=3")
    assert_close("torch.clamp", torch.clamp(x, -2, 3), np.clip(X, -2, 3), args="-2, 3")
    assert_close("torch.clip", torch.clip(x, -2, 3), np.clip(X, -2, 3), args="-2, 3")
    assert_close("torch.clamp", torch.clamp(x, 4, 1), np.full(X.shape, 1.0), args="min > max -> max")
    lo = torch.arange(6, device=device).to(dtype) - 3  # broadcasts over rows
    hi = lo + 2
    L, H = _ref(lo), _ref(hi)
    assert_close("torch.clamp", torch.clamp(x, lo, hi), np.minimum(np.maximum(X, L), H), args="tensor bounds (broadcast)")
    assert_close("torch.clamp", torch.clamp(x, min=lo), np.maximum(X, L), args="tensor min only")
    assert_raises("torch.clamp", (RuntimeError, ValueError), torch.clamp, x, args="min=None, max=None")
    if dtype.is_floating_point:
        n = torch.tensor([NAN, -INF, INF, 0.5], dtype=dtype, device=device)
        assert_close("torch.clamp", torch.clamp(n, -1, 1), np.array([NAN, -1, 1, 0.5]), args="NaN and inf input")


@pytest.mark.dtypes(dtypes.FLOAT_HIGH + dtypes.INTEGRAL + dtypes.BOOL)
def test_where(device, dtype, np_rng):
    """where(cond, x, y) picks x where cond else y, broadcasting all three; scalar x/y; the one-argument
    form equals nonzero(as_tuple=True). Catches inverted conditions and broken broadcast."""
    cond = torch.from_numpy(np_rng.integers(0, 2, size=(4, 1, 5)).astype(bool)).to(device)
    x = _make(np_rng, (3, 5), dtype, device)
    y = _make(np_rng, (4, 3, 1), dtype, device)
    C, X, Y = _ref(cond), _ref(x), _ref(y)
    r = torch.where(cond, x, y)
    assert_equal("torch.where", r, np.where(C, X, Y), args="broadcast (4,1,5),(3,5),(4,3,1)")
    assert_equal("torch.where", r.dtype, dtype)
    if dtype != torch.bool:
        assert_equal("torch.where", torch.where(cond, x, 0), np.where(C, X, 0), args="scalar other")
        assert_equal("Tensor.where", x.where(x > 0, -x), np.where(X > 0, X, -X), args="method form")
    nz = torch.where(cond)
    nz_ref = np.nonzero(C)
    assert_equal("torch.where", len(nz), 3, args="one-argument form")
    for got, exp in zip(nz, nz_ref):
        assert_equal("torch.where", got, exp, args="one-argument form")


def test_where_promotes(device):
    """where promotes x and y like a binary op (int64 tensor with a float scalar gives float32)."""
    c = torch.tensor([True, False], device=device)
    r = torch.where(c, torch.tensor([1, 2], device=device), 1.5)
    assert_equal("torch.where", r.dtype, torch.float32, args="int64, 1.5")
    assert_close("torch.where", r, np.array([1.0, 1.5]))
    r = torch.where(c, torch.tensor([1.0, 2.0], dtype=torch.float64, device=device), torch.tensor([3, 4], device=device))
    assert_equal("torch.where", r.dtype, torch.float64, args="float64, int64")


@pytest.mark.dtypes(dtypes.FLOATING)
def test_maximum_minimum_fmax_fmin(device, dtype):
    """maximum/minimum propagate NaN; fmax/fmin return the non-NaN operand (NaN only if both are NaN)."""
    a = torch.tensor([1.0, NAN, 3.0, NAN, -INF, 2.0], dtype=dtype, device=device)
    bb = torch.tensor([2.0, 1.0, NAN, NAN, 0.0, 2.0], dtype=dtype, device=device)
    A, B = _ref(a), _ref(bb)
    assert_close("torch.maximum", torch.maximum(a, bb), np.maximum(A, B), check_dtype=dtype)
    assert_close("torch.minimum", torch.minimum(a, bb), np.minimum(A, B))
    assert_close("torch.fmax", torch.fmax(a, bb), np.fmax(A, B))
    assert_close("torch.fmin", torch.fmin(a, bb), np.fmin(A, B))
    assert_close("torch.max", torch.max(a, bb), np.maximum(A, B), args="binary form")
    col = torch.tensor([[0.0], [5.0]], dtype=dtype, device=device)
    assert_close("torch.maximum", torch.maximum(a, col), np.maximum(A, _ref(col)), args="broadcast (6,) with (2,1)")


@pytest.mark.dtypes(dtypes.FLOATING + dtypes.INTEGRAL)
def test_comparisons(device, dtype, np_rng):
    """eq/ne/lt/le/gt/ge (functions, methods and operators) equal NumPy, return bool, broadcast; NaN
    compares unequal to everything (ne True); catches swapped lt/gt or le/lt and NaN == NaN."""
    a = torch.from_numpy(np_rng.integers(-3, 4, size=(5, 6)).astype(np.float64)).to(dtype).to(device)
    bb = torch.from_numpy(np_rng.integers(-3, 4, size=(6,)).astype(np.float64)).to(dtype).to(device)
    A, B = _ref(a), _ref(bb)
    cases = [("eq", np.equal, "=="), ("ne", np.not_equal, "!="), ("lt", np.less, "<"),
             ("le", np.less_equal, "<="), ("gt", np.greater, ">"), ("ge", np.greater_equal, ">=")]
    for name, ref, op in cases:
        got = getattr(torch, name)(a, bb)
        assert_equal(f"torch.{name}", got.dtype, torch.bool)
        assert_equal(f"torch.{name}", got, ref(A, B), args="broadcast (5,6) vs (6,)")
        assert_equal(f"operator {op}", eval(f"a {op} bb"), ref(A, B))
        assert_equal(f"torch.{name}", getattr(torch, name)(a, 1), ref(A, 1), args="scalar other")
    if dtype.is_floating_point:
        n = torch.tensor([NAN, 1.0], dtype=dtype, device=device)
        assert_equal("torch.eq", n == n, np.array([False, True]), args="NaN == NaN")
        assert_equal("torch.ne", n != n, np.array([True, False]), args="NaN != NaN")
        assert_equal("torch.lt", n < INF, np.array([False, True]), args="NaN < inf")
    assert_equal("torch.equal", torch.equal(a, a.clone()), True)
    assert_equal("torch.equal", torch.equal(a, a + 1), False)


def test_isclose_allclose(device):
    """isclose uses |a-b| <= atol + rtol*|b| with defaults rtol=1e-5, atol=1e-8; inf equals inf of the
    same sign; equal_nan controls NaN; allclose returns a Python bool. Catches ignored rtol/atol/equal_nan."""
    a = torch.tensor([1.0, 1.0, 1e-9, INF, INF, NAN, 100.0], dtype=torch.float64, device=device)
    bb = torch.tensor([1.0 + 5e-6, 1.0 + 5e-5, 0.0, INF, -INF, NAN, 100.0005], dtype=torch.float64, device=device)
    A, B = _ref(a), _ref(bb)
    assert_equal("torch.isclose", torch.isclose(a, bb), np.isclose(A, B), args="defaults")
    assert_equal("torch.isclose", torch.isclose(a, bb, equal_nan=True), np.isclose(A, B, equal_nan=True), args="equal_nan=True")
    assert_equal("torch.isclose", torch.isclose(a, bb, rtol=1e-3, atol=0.0), np.isclose(A, B, rtol=1e-3, atol=0.0), args="rtol=1e-3, atol=0")
    assert_equal("torch.isclose", torch.isclose(a, bb, rtol=0.0, atol=1e-3), np.isclose(A, B, rtol=0.0, atol=1e-3), args="rtol=0, atol=1e-3")
    r = torch.allclose(a[:3], bb[:3], rtol=1e-4)
    assert_true("torch.allclose", r is True or r is False, f"allclose returned {type(r).__name__}, not bool")
    assert_equal("torch.allclose", r, True, args="rtol=1e-4")
    assert_equal("torch.allclose", torch.allclose(a[:3], bb[:3]), False, args="defaults")
    assert_equal("torch.allclose", torch.allclose(a[5:6], bb[5:6]), False, args="NaN, equal_nan=False")
    assert_equal("torch.allclose", torch.allclose(a[5:6], bb[5:6], equal_nan=True), True, args="NaN, equal_nan=True")


@pytest.mark.dtypes(dtypes.FLOATING + dtypes.INTEGRAL + dtypes.COMPLEX)
def test_isnan_isinf_isfinite(device, dtype):
    """isnan/isinf/isfinite/isposinf/isneginf flag exactly the IEEE specials; integers are always finite."""
    if dtype.is_floating_point:
        vals = [0.0, -1.5, NAN, INF, -INF, 3.0]
        t = torch.tensor(vals, dtype=dtype, device=device)
        V = np.array(vals)
        assert_equal("torch.isnan", torch.isnan(t), np.isnan(V))
        assert_equal("torch.isinf", torch.isinf(t), np.isinf(V))
        assert_equal("torch.isfinite", torch.isfinite(t), np.isfinite(V))
        assert_equal("torch.isposinf", torch.isposinf(t), np.isposinf(V))
        assert_equal("torch.isneginf", torch.isneginf(t), np.isneginf(V))
        assert_equal("torch.nan_to_num", torch.nan_to_num(t, nan=0.0, posinf=7.0, neginf=-7.0),
                     np.nan_to_num(V, nan=0.0, posinf=7.0, neginf=-7.0))
    elif dtype.is_complex:
        t = torch.tensor([complex(NAN, 0), complex(0, INF), 1 + 1j], dtype=dtype, device=device)
        assert_equal("torch.isnan", torch.isnan(t), np.array([True, False, False]), args="complex")
        assert_equal("torch.isinf", torch.isinf(t), np.array([False, True, False]), args="complex")
        assert_equal("torch.isfinite", torch.isfinite(t), np.array([False, False, True]), args="complex")
    else:
        t = torch.tensor([0, -3, 7], dtype=dtype, device=device)
        assert_equal("torch.isnan", torch.isnan(t), np.zeros(3, bool), args="integer")
        assert_equal("torch.isfinite", torch.isfinite(t), np.ones(3, bool), args="integer")
        assert_equal("torch.isinf", torch.isinf(t), np.zeros(3, bool), args="integer")


@pytest.mark.dtypes(dtypes.FLOAT_HIGH + (torch.float16,))
def test_round(device, dtype):
    """round is half-to-even (0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0); decimals=d rounds to d places
    (negative d to tens/hundreds); catches half-away-from-zero rounding or an ignored decimals."""
    vals = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49, 3.7, -3.7, 1e6 + 0.5]
    if dtype == torch.float16:
        vals = vals[:-1]
    t = torch.tensor(vals, dtype=dtype, device=device)
    assert_close("torch.round", torch.round(t), np.round(_ref(t)), op="exact", check_dtype=dtype)
    if dtype == torch.float16:
        return
    d = torch.tensor([0.125, 0.375, -0.125, 1.25, 2.5], dtype=dtype, device=device)
    assert_close("torch.round", torch.round(d, decimals=2), np.round(_ref(d), 2), args="decimals=2")
    big = torch.tensor([1250.0, 1350.0, -1250.0, 149.0], dtype=dtype, device=device)
    assert_close("torch.round", torch.round(big, decimals=-2), np.array([1200.0, 1400.0, -1200.0, 100.0]), args="decimals=-2")
    i = torch.tensor([1, 2, 3], device=device)
    assert_equal("torch.round", torch.round(i), np.array([1, 2, 3]), args="integer input unchanged")


def test_frac_and_trunc_relations(device):
    """frac(x) = x - trunc(x) keeps the sign of x."""
    x = torch.tensor([2.75, -2.75, 0.0, 5.0], device=device)
    assert_close("torch.frac", torch.frac(x), np.array([0.75, -0.75, 0.0, 0.0]))


def test_operators_and_reflected(device, np_rng):
    """The Python operators map to the documented ops, including reflected scalar forms
    (2 - t, 2 / t, 2 // t, 2 % t, 2 ** t), unary -, abs(), ~, &, |, ^, <<, >> and `@`; catches a
    reflected op that forgets to swap its operands."""
    t = torch.tensor([1.0, 2.0, -4.0, 8.0], dtype=torch.float64, device=device)
    T = _ref(t)
    cases = [("t + 2", t + 2, T + 2), ("2 + t", 2 + t, 2 + T), ("t - 2", t - 2, T - 2), ("2 - t", 2 - t, 2 - T),
             ("t * 3", t * 3, T * 3), ("t / 2", t / 2, T / 2), ("2 / t", 2 / t, 2 / T), ("t // 3", t // 3, T // 3),
             ("7 // t", 7 // t, 7 // T), ("t % 3", t % 3, T % 3), ("7 % t", 7 % t, 7 % T),
             ("t ** 2", t ** 2, T ** 2), ("2 ** t", 2 ** t, 2.0 ** T), ("-t", -t, -T), ("abs(t)", abs(t), np.abs(T)),
             ("+t", +t, T)]
    for expr, got, exp in cases:
        assert_close(f"operator {expr}", got, exp)
    i = torch.tensor([12, 10, 7, -8], device=device)
    I = _ref(i)
    for expr, got, exp in [("i & 6", i & 6, I & 6), ("i | 1", i | 1, I | 1), ("i ^ 5", i ^ 5, I ^ 5),
                           ("~i", ~i, ~I), ("i << 2", i << 2, I << 2), ("i >> 1", i >> 1, I >> 1)]:
        assert_equal(f"operator {expr}", got, exp)
    bm = torch.tensor([True, False, True], device=device)
    assert_equal("operator ~", ~bm, np.array([False, True, False]), args="bool: logical not")
    m = torch.from_numpy(np_rng.standard_normal((3, 4))).to(device)
    v = torch.from_numpy(np_rng.standard_normal(4)).to(device)
    assert_close("operator @", m @ v, _ref(m) @ _ref(v), op="matmul")


def test_logical_ops(device):
    """logical_and/or/xor/not treat nonzero as True for any dtype and return bool."""
    a = torch.tensor([0.0, 1.5, -2.0, 0.0], device=device)
    bb = torch.tensor([0, 0, 3, 4], device=device)
    A, B = _ref(a) != 0, _ref(bb) != 0
    assert_equal("torch.logical_and", torch.logical_and(a, bb), A & B)
    assert_equal("torch.logical_or", torch.logical_or(a, bb), A | B)
    assert_equal("torch.logical_xor", torch.logical_xor(a, bb), A ^ B)
    assert_equal("torch.logical_not", torch.logical_not(a), ~A)
    assert_equal("torch.logical_not", torch.logical_not(a).dtype, torch.bool)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.dtypes(dtypes.FLOAT_HIGH)
def test_unary_math_large(device, dtype, name, np_rng):
    """The unary functions on 1M elements (vectorised main loop and tail) equal the float64 oracle."""
    fn, ref, (lo, hi) = UNARY[name]
    x = _make(np_rng, (1000, 1001), dtype, device, lo, hi)
    assert_close(f"torch.{name}", fn(x), ref(_ref(x)), op="transcendental", args="1000x1001")


@pytest.mark.dtypes(dtypes.FLOATING)
def test_binary_math_argument_order(device, dtype, np_rng):
    """Order-sensitive binary math (atan2(y, x), copysign, hypot, logaddexp, xlogy, float_power) and the
    fused forms addcmul/addcdiv (value=) and lerp (scalar and tensor weight) equal their float64 formulas;
    catches swapped operands and an ignored value/weight argument."""
    y = _make(np_rng, (4, 6), dtype, device, -3, 3)
    x = _make(np_rng, (4, 6), dtype, device, 0.5, 3) * torch.tensor([1.0, -1.0] * 3, device=device).to(dtype)
    t = _make(np_rng, (4, 6), dtype, device, 0.5, 2)
    Y, X, T = _ref(y), _ref(x), _ref(t)
    assert_close("torch.atan2", torch.atan2(y, x), np.arctan2(Y, X), op="transcendental", args="(y, x)")
    assert_close("torch.copysign", torch.copysign(t, x), np.copysign(T, X), args="magnitude of t, sign of x")
    assert_close("torch.hypot", torch.hypot(y, x), np.hypot(Y, X), op="transcendental")
    # elementwise, not ULP: max + log1p(exp(-|x-y|)) cancels where the result is near 0
    assert_close("torch.logaddexp", torch.logaddexp(y, x), np.logaddexp(Y, X))
    with np.errstate(all="ignore"):
        assert_close("torch.xlogy", torch.xlogy(y, t), Y * np.log(T), op="transcendental", args="x * log(y)")
    fp = torch.float_power(t, 2)
    assert_equal("torch.float_power", fp.dtype, torch.float64, args="always double")
    assert_close("torch.float_power", fp, T ** 2)
    assert_close("torch.addcmul", torch.addcmul(y, x, t, value=0.5), Y + 0.5 * X * T, args="value=0.5", **_cancel(dtype, Y, X * T))
    assert_close("torch.addcdiv", torch.addcdiv(y, x, t, value=-2), Y - 2 * X / T, args="value=-2", **_cancel(dtype, Y, 2 * X / T))
    assert_close("torch.lerp", torch.lerp(y, x, 0.25), Y + 0.25 * (X - Y), args="weight=0.25", **_cancel(dtype, Y, X))
    w = _make(np_rng, (6,), dtype, device, 0, 1)
    assert_close("torch.lerp", torch.lerp(y, x, w), Y + _ref(w) * (X - Y), args="tensor weight (broadcast)", **_cancel(dtype, Y, X))
