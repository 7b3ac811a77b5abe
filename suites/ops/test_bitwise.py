"""Operator library: integer arithmetic and bit operations (bitwise and/or/xor/not, left/right shifts on
signed and unsigned types, two's-complement wrap-around of add/sub/mul/neg/abs, gcd/lcm, floor_divide/
remainder/fmod/div rounding modes and their signs, integer division by zero) against NumPy on the same
integer dtypes, with scalar and broadcast operands, operators and in-place forms, gapped (``[..., ::2]`` of
a wider storage, storage offset 1) inputs and sizes past 32,768 elements with random data.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.checks import assert_equal, assert_raises, assert_true
from harness.checks import to_numpy as _ref  # int/bool/float64 copy of a tensor's values

BIG = 40_000  # past 32,768: the size where CPU kernels switch to chunked/parallel/vectorised paths
INTS = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
NP = {torch.int8: np.int8, torch.int16: np.int16, torch.int32: np.int32, torch.int64: np.int64, torch.uint8: np.uint8,
      torch.bool: np.bool_}


def _gapped(values, dtype, device) -> torch.Tensor:
    """``values`` (NumPy, any shape) as ``dtype`` on ``device`` in a view whose last dim has stride 2 and
    whose storage offset is 1 (``big[..., 1::2]``): a real gap between elements, not a permuted dense view."""
    values = np.asarray(values)
    shape = values.shape
    big = torch.zeros(*shape[:-1], 2 * shape[-1] + 1, dtype=dtype, device=device)
    view = big[..., 1::2]
    view.copy_(torch.from_numpy(np.ascontiguousarray(values)))
    return view


def _full_range(np_rng, dtype, shape):
    """Random values over the whole range of ``dtype`` (both extremes included), as NumPy in that dtype."""
    if dtype == torch.bool:
        return np_rng.integers(0, 2, size=shape).astype(bool)
    info = np.iinfo(NP[dtype])
    v = np_rng.integers(info.min, info.max, size=shape, dtype=NP[dtype], endpoint=True)
    flat = v.reshape(-1)
    extremes = [info.min, info.max, 0, info.min + 1]  # the extremes are always present
    flat[:min(4, flat.size)] = extremes[:min(4, flat.size)]
    return v


# ---------------------------------------------------------------- bitwise logic

@pytest.mark.smoke
@pytest.mark.dtypes(*INTS, torch.bool)
def test_bitwise_logic(device, dtype, np_rng):
    """bitwise_and/or/xor/not (functions, operators &, |, ^, ~, methods and in-place &=, |=, ^=) equal
    NumPy's on full-range random values of the same dtype, gapped, 40,000 elements, with broadcast (n,1) x
    (1,m) operands and Python scalar operands; float inputs raise. Catches one op wired to another, ~ on
    bool as integer not (-1/-2), sign-extension bugs in narrow types, vectorised tails wrong."""
    a_np = _full_range(np_rng, dtype, (4, BIG // 4))
    b_np = _full_range(np_rng, dtype, (4, BIG // 4))
    a, b = _gapped(a_np, dtype, device), _gapped(b_np, dtype, device)
    if dtype == torch.bool:
        scalar = True
    else:  # a random in-range Python int with mixed bits (not 0 / -1, which would hide and/or mix-ups)
        info = np.iinfo(NP[dtype])
        scalar = int(np_rng.integers(info.min // 2 + 3, info.max // 2))
        scalar = scalar if scalar not in (0, -1) else 0x35
    for name, tf, op, nf in (("and", torch.bitwise_and, "__and__", np.bitwise_and),
                             ("or", torch.bitwise_or, "__or__", np.bitwise_or),
                             ("xor", torch.bitwise_xor, "__xor__", np.bitwise_xor)):
        exp = nf(a_np, b_np)
        api = f"torch.bitwise_{name}"
        got = tf(a, b)
        assert_equal(api, got.dtype, dtype, args="dtype")
        assert_equal(api, got, exp, args=f"{dtype}, {a.numel()} gapped")
        assert_equal(api, getattr(a, op)(b), exp, args="operator")
        c = a.clone()
        getattr(c, f"bitwise_{name}_")(b)
        assert_equal(f"Tensor.bitwise_{name}_", c, exp, args="in place")
        col, row = a[:, :1], b[:1, :7]
        assert_equal(api, tf(col, row), nf(a_np[:, :1], b_np[:1, :7]), args="broadcast (4,1) x (1,7)")
        assert_equal(api, tf(a, scalar), nf(a_np, np.array(scalar, dtype=NP[dtype])), args=f"scalar {scalar}")
    nexp = np.logical_not(a_np) if dtype == torch.bool else np.invert(a_np)
    assert_equal("torch.bitwise_not", torch.bitwise_not(a), nexp, args=str(dtype))
    assert_equal("torch.bitwise_not", ~a, nexp, args="operator ~")
    f = torch.ones(3, device=device)
    assert_raises("torch.bitwise_and", RuntimeError, torch.bitwise_and, f, f, args="float32 inputs")


@pytest.mark.dtypes(*INTS)
def test_shifts(device, dtype, np_rng):
    """bitwise_left_shift / bitwise_right_shift (and <<, >>, <<=, >>=) equal NumPy's on full-range values
    (negative ones included) and counts 0..width-1: left shifts wrap in the dtype, right shifts of signed
    types are arithmetic (sign-filling: -8 >> 1 = -4, -1 >> k = -1), of uint8 logical; tensor, broadcast and
    scalar counts, a scalar shifted by a tensor. Counts < 0 or >= the bit width are documented as undefined
    and not checked. Catches a logical right shift on negatives, shifts done in a wider type without
    wrapping, operands swapped."""
    width = np.iinfo(NP[dtype]).bits
    x_np = _full_range(np_rng, dtype, (4, BIG // 4))
    k_np = np_rng.integers(0, width, size=(4, BIG // 4)).astype(NP[dtype])
    x, k = _gapped(x_np, dtype, device), _gapped(k_np, dtype, device)
    with np.errstate(over="ignore"):
        left, right = np.left_shift(x_np, k_np), np.right_shift(x_np, k_np)
    assert_equal("torch.bitwise_left_shift", torch.bitwise_left_shift(x, k), left, args=f"{dtype}, wraps")
    assert_equal("torch.bitwise_right_shift", torch.bitwise_right_shift(x, k), right, args=f"{dtype}, arithmetic")
    assert_equal("Tensor.__lshift__", x << k, left, args="operator <<")
    assert_equal("Tensor.__rshift__", x >> k, right, args="operator >>")
    c = x.clone()
    c <<= k
    assert_equal("Tensor.__ilshift__", c, left, args="<<=")
    c = x.clone()
    c >>= k
    assert_equal("Tensor.__irshift__", c, right, args=">>=")
    s = width - 1
    assert_equal("torch.bitwise_right_shift", x >> s, np.right_shift(x_np, NP[dtype](s)), args=f"scalar count {s}")
    with np.errstate(over="ignore"):
        assert_equal("torch.bitwise_left_shift", x << 3, np.left_shift(x_np, NP[dtype](3)), args="scalar count 3")
    kc = k[:, :1]
    assert_equal("torch.bitwise_right_shift", torch.bitwise_right_shift(x, kc), np.right_shift(x_np, k_np[:, :1]),
                 args="broadcast count (4,1)")
    if dtype != torch.uint8:
        neg = torch.tensor([-8, -1, -7, -128 if dtype == torch.int8 else -1024], dtype=dtype, device=device)
        assert_equal("torch.bitwise_right_shift", neg >> 1,
                     np.array([-4, -1, -4, -64 if dtype == torch.int8 else -512]), args="negatives sign-fill")
        assert_equal("torch.bitwise_right_shift", neg >> (width - 1), np.array([-1, -1, -1, -1]), args="by width-1: all -1")
    ks = torch.tensor([0, 1, 2, 5], dtype=dtype, device=device)
    assert_equal("torch.bitwise_left_shift", torch.bitwise_left_shift(3, ks), np.array([3, 6, 12, 96]), args="scalar << tensor")


# ---------------------------------------------------------------- wrap-around arithmetic

@pytest.mark.dtypes(*INTS)
def test_integer_wraparound(device, dtype, np_rng):
    """add (with alpha), sub, mul, neg and abs on full-range values wrap modulo 2**bits exactly like NumPy's
    array arithmetic in the same dtype (INT_MIN + -1 = INT_MAX, -INT_MIN = INT_MIN, abs(INT_MIN) = INT_MIN),
    keep the dtype, on 40,000 gapped elements and with Python scalars; catches saturating arithmetic,
    computation in a wider type without wrapping back, a promoted result dtype."""
    a_np = _full_range(np_rng, dtype, (4, BIG // 4))
    b_np = _full_range(np_rng, dtype, (4, BIG // 4))
    a, b = _gapped(a_np, dtype, device), _gapped(b_np, dtype, device)
    three = NP[dtype](3)
    with np.errstate(over="ignore"):
        cases = [("torch.add", torch.add(a, b), np.add(a_np, b_np)),
                 ("torch.add", torch.add(a, b, alpha=3), np.add(a_np, np.multiply(b_np, three))),
                 ("torch.sub", torch.sub(a, b), np.subtract(a_np, b_np)),
                 ("torch.mul", torch.mul(a, b), np.multiply(a_np, b_np)),
                 ("torch.mul", a * 3, np.multiply(a_np, three)),
                 ("torch.add", a + 100, np.add(a_np, NP[dtype](100))),
                 ("torch.neg", torch.neg(a), np.negative(a_np)),
                 ("torch.abs", torch.abs(a), np.abs(a_np) if dtype != torch.uint8 else a_np)]
    for api, got, exp in cases:
        assert_equal(api, got.dtype, dtype, args="dtype kept")
        assert_equal(api, got, exp, args=f"{dtype}, wrap-around")
    info = np.iinfo(NP[dtype])
    edge = torch.tensor([info.max, info.min], dtype=dtype, device=device)
    with np.errstate(over="ignore"):
        assert_equal("torch.add", edge + 1, np.array([info.max, info.min], dtype=NP[dtype]) + NP[dtype](1), args="max + 1")
    if dtype != torch.uint8:
        assert_equal("torch.neg", -edge[1:], np.array([info.min]), args="-INT_MIN = INT_MIN")
    c = a.clone()
    c.mul_(b)
    with np.errstate(over="ignore"):
        assert_equal("Tensor.mul_", c, np.multiply(a_np, b_np), args="in place")


@pytest.mark.dtypes(torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
def test_gcd_lcm(device, dtype, np_rng):
    """gcd/lcm equal numpy.gcd/lcm on gapped random values with signs (results non-negative) and zeros,
    gcd(0, 0) = 0 and lcm(0, a) = 0 as documented, broadcasting; float inputs raise. Catches a signed
    result, gcd(0, a) = 0, lcm by a*b overflowing before the division."""
    hi = {torch.int8: 10, torch.uint8: 15, torch.int16: 100}.get(dtype, 30_000)
    lo = 0 if dtype == torch.uint8 else -hi
    a_np = np_rng.integers(lo, hi + 1, size=(3, 700)).astype(NP[dtype])
    b_np = np_rng.integers(lo, hi + 1, size=(3, 700)).astype(NP[dtype])
    a_np[0, :5] = 0
    b_np[0, :3] = 0
    a, b = _gapped(a_np, dtype, device), _gapped(b_np, dtype, device)
    assert_equal("torch.gcd", torch.gcd(a, b), np.gcd(a_np, b_np), args=str(dtype))
    assert_equal("torch.lcm", torch.lcm(a, b), np.lcm(a_np, b_np), args=str(dtype))
    assert_equal("torch.gcd", torch.gcd(a, b[:, :1]), np.gcd(a_np, b_np[:, :1]), args="broadcast (3,1)")
    z = torch.zeros(2, dtype=dtype, device=device)
    assert_equal("torch.gcd", torch.gcd(z, z), np.zeros(2), args="gcd(0, 0) = 0")
    assert_equal("torch.lcm", torch.lcm(z, torch.tensor([0, 7], dtype=dtype, device=device)), np.zeros(2), args="lcm(0, a) = 0")
    assert_raises("torch.gcd", RuntimeError, torch.gcd, torch.ones(2, device=device), torch.ones(2, device=device),
                  args="float inputs")


# ---------------------------------------------------------------- division

def _trunc_div(a, b):
    """C-style integer division (rounds towards zero) in the inputs' NumPy dtype, without float."""
    q = np.floor_divide(a, b)
    fix = (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
    return (q + fix.astype(q.dtype)).astype(a.dtype)


@pytest.mark.dtypes(torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
def test_integer_division_signs(device, dtype, np_rng):
    """floor_divide and div(rounding_mode='floor') / '//' round down, div(rounding_mode='trunc') towards
    zero, remainder / '%' take the divisor's sign and fmod the dividend's (|r| < |b| for both), on gapped
    full-range dividends and non-zero divisors of both signs, tensors and Python scalars; div without a
    rounding mode promotes to the default float dtype. Catches floor_divide truncating (the pre-1.13
    behaviour), remainder and fmod swapped, sign rules broken in the vectorised path."""
    a_np = _full_range(np_rng, dtype, (4, 2500))
    b_np = _full_range(np_rng, dtype, (4, 2500))
    b_np[b_np == 0] = 7
    if dtype != torch.uint8:  # INT_MIN / -1 overflows (undefined); keep it out
        b_np[(a_np == np.iinfo(NP[dtype]).min) & (b_np == -1)] = 3
        b_np[1, :50] = np_rng.choice(np.array([-3, -2, 2, 3], dtype=NP[dtype]), size=50)  # small divisors: many non-zero remainders
    a, b = _gapped(a_np, dtype, device), _gapped(b_np, dtype, device)
    floor, rem, fmod = np.floor_divide(a_np, b_np), np.remainder(a_np, b_np), np.fmod(a_np, b_np)
    cases = [("torch.floor_divide", torch.floor_divide(a, b), floor), ("Tensor.__floordiv__", a // b, floor),
             ("torch.div", torch.div(a, b, rounding_mode="floor"), floor),
             ("torch.div", torch.div(a, b, rounding_mode="trunc"), _trunc_div(a_np, b_np)),
             ("torch.remainder", torch.remainder(a, b), rem), ("Tensor.__mod__", a % b, rem),
             ("torch.fmod", torch.fmod(a, b), fmod)]
    for api, got, exp in cases:
        assert_equal(api, got.dtype, dtype, args="dtype kept")
        assert_equal(api, got, exp, args=f"{dtype}, mixed signs")
    if dtype != torch.uint8:
        R, F, B, A = _ref(torch.remainder(a, b)), _ref(torch.fmod(a, b)), b_np.astype(np.int64), a_np.astype(np.int64)

        def mag(v):  # |v| without int64 overflow: abs(INT64_MIN) wraps to INT64_MIN, whose uint64 is 2**63
            return np.abs(v).astype(np.uint64)

        assert_true("torch.remainder", ((R == 0) | (np.sign(R) == np.sign(B))).all() and (mag(R) < mag(B)).all(),
                    "remainder does not take the divisor's sign or |r| >= |b|", args=str(dtype))
        assert_true("torch.fmod", ((F == 0) | (np.sign(F) == np.sign(A))).all() and (mag(F) < mag(B)).all(),
                    "fmod does not take the dividend's sign or |r| >= |b|", args=str(dtype))
        for s in (-3, 5):
            sv = NP[dtype](s)
            assert_equal("torch.floor_divide", torch.floor_divide(a, s), np.floor_divide(a_np, sv), args=f"scalar {s}")
            assert_equal("torch.remainder", torch.remainder(a, s), np.remainder(a_np, sv), args=f"scalar {s}")
            assert_equal("torch.fmod", torch.fmod(a, s), np.fmod(a_np, sv), args=f"scalar {s}")
    t = torch.div(a, b)
    assert_equal("torch.div", t.dtype, torch.get_default_dtype(), args="no rounding_mode: true division")


def test_integer_division_by_zero(device):
    """Integer fmod/remainder by zero raise RuntimeError on the CPU (documented in torch.fmod, referenced by
    torch.remainder; "may return any value" on GPU, so only CPU is checked), while floating fmod/remainder
    by zero return NaN on every device; catches a silent garbage/0 result for integer division by zero on
    CPU, and an exception or inf for the float case."""
    f = torch.tensor([1.0, -2.0, 0.0], device=device)
    fz = torch.zeros(3, device=device)
    assert_true("torch.fmod", torch.isnan(torch.fmod(f, fz)).all().item(), "float fmod by zero is not NaN", args="float")
    assert_true("torch.remainder", torch.isnan(torch.remainder(f, fz)).all().item(), "float remainder by zero is not NaN",
                args="float")
    if device != "cpu":
        pytest.skip("integer division by zero is documented to return any value on GPU (checked on CPU only)")
    for dtype in (torch.int32, torch.int64, torch.int8):
        a = torch.tensor([5, -5, 0], dtype=dtype)
        z = torch.tensor([0, 1, 0], dtype=dtype)
        assert_raises("torch.fmod", RuntimeError, torch.fmod, a, z, args=f"{dtype} by zero")
        assert_raises("torch.remainder", RuntimeError, torch.remainder, a, z, args=f"{dtype} by zero")
        assert_raises("torch.fmod", RuntimeError, torch.fmod, a, 0, args=f"{dtype} by scalar 0")


# ---------------------------------------------------------------- edge sizes

def _check_size(device, dtype, n, np_rng):
    a_np = _full_range(np_rng, dtype, (n,)) if n else np.zeros(0, dtype=NP[dtype])
    b_np = _full_range(np_rng, dtype, (n,)) if n else np.zeros(0, dtype=NP[dtype])
    a = _gapped(a_np, dtype, device) if n else torch.empty(0, dtype=dtype, device=device)
    b = _gapped(b_np, dtype, device) if n else torch.empty(0, dtype=dtype, device=device)
    args = f"{dtype}, n={n}"
    assert_equal("torch.bitwise_xor", a ^ b, np.bitwise_xor(a_np, b_np), args=args)
    k_np = (np.arange(n) % np.iinfo(NP[dtype]).bits).astype(NP[dtype])
    k = torch.from_numpy(k_np).to(device)
    assert_equal("torch.bitwise_right_shift", a >> k, np.right_shift(a_np, k_np), args=args)
    with np.errstate(over="ignore"):
        assert_equal("torch.add", a + b, np.add(a_np, b_np), args=args)
        assert_equal("torch.mul", a * b, np.multiply(a_np, b_np), args=args)


@pytest.mark.dtypes(torch.int8, torch.int64)
def test_edge_sizes(device, dtype, np_rng):
    """xor, arithmetic right shift, wrapping add and mul on empty, 1-, 2-, 3- and 17-element gapped inputs
    (all below one vector register); catches a scalar tail path with different semantics than the vector
    body."""
    for n in (0, 1, 2, 3, 17):
        _check_size(device, dtype, n, np_rng)


@pytest.mark.slow
@pytest.mark.dtypes(*INTS)
def test_size_sweep(device, dtype, np_rng):
    """The same at sizes around vector widths and the parallel grain (31..129, 32,767 / 32,769, 10^6)."""
    for n in (31, 32, 33, 63, 64, 65, 127, 128, 129, 32767, 32769, 1_000_000):
        _check_size(device, dtype, n, np_rng)
