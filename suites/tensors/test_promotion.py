"""§ 1 Tensors: dtypes and type promotion (promote_types, result_type, can_cast, tensor-tensor,
tensor-scalar and zero-dim rules, true division, bool arithmetic, out=/in-place casting).

The expected tables are written by hand from PyTorch's documented promotion rules
(docs "Tensor Attributes > Type promotion"): categories bool < integer < floating < complex;
a higher-category zero-dim tensor or Python scalar lifts the result's category, otherwise
dimensioned operands decide; Python floats/complex lift to the default float/complex dtype.
Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_raises, assert_true

f16, bf16, f32, f64 = torch.float16, torch.bfloat16, torch.float32, torch.float64
u8, i8, i16, i32, i64, b = torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool
c64, c128 = torch.complex64, torch.complex128

# (a, b, expected) written by hand from the documented lattice.
PROMOTE = [
    (b, b, b), (b, u8, u8), (b, i32, i32), (b, f16, f16), (b, c64, c64),
    (u8, u8, u8), (u8, i8, i16), (u8, i16, i16), (u8, i32, i32), (u8, i64, i64),
    (i8, i16, i16), (i16, i32, i32), (i32, i64, i64), (i8, i64, i64),
    (i64, f16, f16), (i64, bf16, bf16), (i32, f32, f32), (u8, f64, f64),
    (f16, bf16, f32), (f16, f32, f32), (bf16, f32, f32), (bf16, f64, f64), (f32, f64, f64),
    (f32, c64, c64), (f64, c64, c128), (f16, c64, c64), (i64, c64, c64), (c64, c128, c128),
]


@pytest.mark.smoke
def test_promote_types():
    """torch.promote_types follows the documented lattice and is symmetric; catches a build that
    promotes uint8+int8 to int8, float16+bfloat16 to either half type, float64+complex64 to complex64."""
    for a, b_, expected in PROMOTE:
        assert_equal("torch.promote_types", torch.promote_types(a, b_), expected, args=f"{a}, {b_}")
        assert_equal("torch.promote_types", torch.promote_types(b_, a), expected, args=f"{b_}, {a} (symmetry)")


def _t(dtype, zero_dim, device):
    data = 1 if zero_dim else [1, 0]
    return torch.tensor(data, device=device).to(dtype)


# (lhs, rhs, expected): a tuple (dtype, zero_dim) is a tensor; anything else is a Python scalar.
RESULT_TYPE = [
    ((i32, False), 5, i32, "int tensor + int scalar keeps int32"),
    ((i32, False), 5.0, f32, "int tensor + float scalar -> default float"),
    ((u8, False), 1000, u8, "uint8 tensor + large int scalar stays uint8"),
    ((f16, False), 5.0, f16, "float16 tensor + float scalar stays float16"),
    ((bf16, False), 2, bf16, "bfloat16 tensor + int scalar stays bfloat16"),
    ((i64, False), 2j, c64, "int tensor + complex scalar -> complex64"),
    ((f64, False), 1j, c128, "float64 tensor + complex scalar -> complex128"),
    ((b, False), True, b, "bool tensor + bool scalar stays bool"),
    ((b, False), 1, i64, "bool tensor + int scalar -> int64"),
    ((b, False), 1.5, f32, "bool tensor + float scalar -> float32"),
    ((f32, False), (f64, True), f32, "zero-dim of the same category does not widen"),
    ((i8, False), (i64, True), i8, "zero-dim int64 does not widen a dimensioned int8"),
    ((u8, False), (i8, True), u8, "zero-dim int8 does not change a dimensioned uint8"),
    ((i32, False), (f64, True), f64, "zero-dim of a higher category lifts (to its own dtype)"),
    ((i32, False), (f16, True), f16, "zero-dim float16 lifts int32 to float16"),
    ((f32, True), (f64, True), f64, "two zero-dim tensors promote normally"),
    ((i32, False), (i64, False), i64, "dimensioned tensors promote normally"),
    ((f16, False), (bf16, False), f32, "float16 with bfloat16 -> float32"),
    ((u8, False), (i8, False), i16, "uint8 with int8 -> int16"),
]


def test_result_type_and_binary_ops(device):
    """torch.result_type and the dtype of `+`/`*` follow the documented zero-dim and scalar rules;
    catches a build that lets a zero-dim tensor or a Python scalar widen a dimensioned tensor, or that
    ignores a higher-category scalar."""
    for lhs, rhs, expected, why in RESULT_TYPE:
        a = _t(*lhs, device)
        other = _t(*rhs, device) if isinstance(rhs, tuple) else rhs
        assert_equal("torch.result_type", torch.result_type(a, other), expected, args=why)
        assert_equal("torch.add", (a + other).dtype, expected, args=why)
        assert_equal("torch.mul", (other * a).dtype, expected, args=why + " (reflected)")
        if isinstance(rhs, tuple):
            assert_equal("torch.result_type", torch.result_type(other, a), expected, args=why + " (swapped)")


def test_result_type_follows_default_dtype(device):
    """A Python float lifts an integer tensor to torch.get_default_dtype(), not a hard-coded float32."""
    old = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        a = torch.tensor([1, 2], device=device)
        assert_equal("torch.result_type", torch.result_type(a, 1.5), f64, args="default float64")
        assert_equal("torch.result_type", torch.result_type(a, 1j), c128, args="default float64, complex scalar")
        assert_equal("torch.div", (a / a).dtype, f64, args="int/int with default float64")
    finally:
        torch.set_default_dtype(old)


CAN_CAST = [
    (f64, f32, True), (f32, f16, True), (i64, i8, True), (i64, u8, True), (i32, f32, True),
    (b, i32, True), (b, f16, True), (i8, c64, True), (f32, c64, True),
    (f32, i32, False), (f64, i64, False), (c64, f32, False), (c64, i64, False),
    (i64, b, False), (f16, b, False), (c128, f64, False),
]


def test_can_cast():
    """torch.can_cast allows casts within a category or to a higher one and refuses lowering the
    category (float->int, complex->float, int->bool); catches a permissive or inverted can_cast."""
    for src, dst, expected in CAN_CAST:
        assert_equal("torch.can_cast", torch.can_cast(src, dst), expected, args=f"{src}, {dst}")


def test_int_true_division_is_float(device):
    """`/`, torch.div and torch.true_divide of two integer tensors return the default float dtype with
    exact quotients; catches integer (truncating) true division."""
    a = torch.tensor([7, -7, 1, 0], device=device)
    d = torch.tensor([2, 2, 3, 5], device=device)
    expected = [3.5, -3.5, 1 / 3, 0.0]
    for name, fn in [("operator /", lambda: a / d), ("torch.div", lambda: torch.div(a, d)),
                     ("torch.true_divide", lambda: torch.true_divide(a, d))]:
        r = fn()
        assert_equal(name, r.dtype, f32, args="int64 / int64")
        assert_close(name, r, np.array(expected), args="int64 / int64")
    assert_equal("operator //", (a // d).dtype, i64, args="int64 // int64")


def test_bool_arithmetic(device):
    """bool + bool stays bool (logical or), bool + int tensor gives int, bool * float gives float,
    and subtracting or negating bool tensors raises; catches silent bool->uint8 arithmetic."""
    t = torch.tensor([True, False, True, False], device=device)
    u = torch.tensor([True, True, False, False], device=device)
    s = t + u
    assert_equal("torch.add", s.dtype, b, args="bool + bool")
    assert_equal("torch.add", s.cpu().tolist(), [True, True, True, False], args="bool + bool")
    ti = t + torch.tensor([1, 1, 1, 1], dtype=i32, device=device)
    assert_equal("torch.add", ti.dtype, i32, args="bool + int32")
    assert_equal("torch.add", ti.cpu().tolist(), [2, 1, 2, 1], args="bool + int32")
    assert_equal("torch.mul", (t * 2.5).cpu().tolist(), [2.5, 0.0, 2.5, 0.0], args="bool * 2.5")
    assert_equal("torch.sum", t.sum().dtype, i64, args="sum of bool")
    assert_equal("torch.sum", t.sum().item(), 2, args="sum of bool")
    assert_raises("torch.sub", RuntimeError, torch.sub, t, u, args="bool - bool")
    assert_raises("torch.neg", RuntimeError, torch.neg, t, args="-bool")


def test_comparison_result_is_bool(device):
    """Comparisons between mixed dtypes compare promoted values and return bool; catches comparing
    after truncating the float operand (int 2 < 2.5 must be True)."""
    a = torch.tensor([1, 2, 3], device=device)
    r = a < 2.5
    assert_equal("torch.lt", r.dtype, b)
    assert_equal("torch.lt", r.cpu().tolist(), [True, True, False], args="int64 < 2.5")
    r = a == torch.tensor([1.0, 2.5, 3.0], device=device, dtype=f16)
    assert_equal("torch.eq", r.cpu().tolist(), [True, False, True], args="int64 == float16")


def test_out_and_inplace_casting_rules(device):
    """out= may not lower the result's category and in-place ops may not change self's dtype:
    int_tensor.add_(1.5) and add(float, float, out=int) raise, add(int, int, out=float) casts up.
    Catches silent truncation into integer outputs."""
    i = torch.tensor([1, 2], device=device)
    f = torch.tensor([0.5, 0.25], device=device)
    assert_raises("Tensor.add_", RuntimeError, i.add_, 1.5, args="int64.add_(1.5)")
    assert_raises("Tensor.mul_", RuntimeError, i.mul_, f, args="int64.mul_(float32)")
    assert_raises("torch.add", RuntimeError, torch.add, f, f, out=torch.empty(2, dtype=i64, device=device),
                  args="float + float, out=int64")
    out = torch.empty(2, dtype=f64, device=device)
    r = torch.add(i, i, out=out)
    assert_true("torch.add", r is out, "out= did not return the out tensor")
    assert_equal("torch.add", out.cpu().tolist(), [2.0, 4.0], args="int + int, out=float64")
    g = f.clone()
    g.add_(torch.tensor([1, 1], device=device))
    assert_equal("Tensor.add_", g.dtype, f32, args="float32.add_(int64) keeps float32")
    assert_equal("Tensor.add_", g.cpu().tolist(), [1.5, 1.25], args="float32.add_(int64)")


@pytest.mark.parametrize("fn", ["exp", "sqrt", "sin", "log", "sigmoid", "mean"])
def test_int_inputs_to_float_ops(device, fn):
    """Float-only unary ops on an integer tensor return the default float dtype (documented integer to
    float promotion); mean of an integer tensor is an error without dtype=. Catches integer results."""
    a = torch.tensor([1, 4, 9], device=device)
    if fn == "mean":
        assert_raises("torch.mean", RuntimeError, torch.mean, a, args="int64 without dtype")
        assert_equal("torch.mean", torch.mean(a, dtype=f64).item(), 14 / 3, args="dtype=float64")
        return
    r = getattr(torch, fn)(a)
    assert_equal(f"torch.{fn}", r.dtype, f32, args="int64 input")
    x = np.array([1.0, 4.0, 9.0])
    ref = {"exp": np.exp, "sqrt": np.sqrt, "sin": np.sin, "log": np.log, "sigmoid": lambda v: 1 / (1 + np.exp(-v))}[fn](x)
    assert_close(f"torch.{fn}", r, ref, args="int64 input")
