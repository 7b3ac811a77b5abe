"""§ 4 nn.Module and layers: Linear, Bilinear, Identity, Flatten/Unflatten against float64 NumPy.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from harness import dtypes
from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.nn._ref import np64


@pytest.mark.smoke
@pytest.mark.dtypes(*dtypes.FLOATING)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("in_shape", [(5,), (4, 5), (2, 3, 5)], ids=["unbatched", "batched", "3d"])
def test_linear(device, dtype, bias, in_shape):
    """Linear(in, out, bias): y = x W^T + b with W of shape (out, in), b (out,) or None; works on any
    leading batch dims incl. none. Catches a transposed weight, dropped/doubled bias, bias=False
    still registering a bias, wrong handling of unbatched or 3-d input."""
    m = nn.Linear(5, 3, bias=bias, device=device, dtype=dtype)
    assert_equal("nn.Linear", tuple(m.weight.shape), (3, 5), args="weight shape (out, in)")
    if bias:
        assert_equal("nn.Linear", tuple(m.bias.shape), (3,), args="bias shape")
    else:
        assert_true("nn.Linear", m.bias is None, "bias=False must leave .bias None", args="bias=False")
        assert_equal("nn.Linear", len(list(m.parameters())), 1, args="bias=False parameter count")
    x = torch.randn(*in_shape, device=device, dtype=dtype)
    y = m(x)
    ref = np64(x) @ np64(m.weight).T + (np64(m.bias) if bias else 0)
    assert_close("nn.Linear", y, ref, op="nn", args=f"bias={bias}, x{in_shape}", check_dtype=dtype, check_device=device)


def test_linear_noncontiguous_and_empty(device):
    """Linear on a transposed (non-contiguous) input and on a zero-size batch."""
    m = nn.Linear(4, 6, device=device, dtype=torch.float64)
    x = torch.randn(4, 7, device=device, dtype=torch.float64).t()
    assert_close("nn.Linear", m(x), np64(x) @ np64(m.weight).T + np64(m.bias), op="nn", args="transposed input")
    e = m(torch.empty(0, 4, device=device, dtype=torch.float64))
    assert_equal("nn.Linear", tuple(e.shape), (0, 6), args="empty batch")


def test_lazy_linear(device):
    """LazyLinear(out) infers in_features from the first input, then behaves as (and becomes) a Linear."""
    m = nn.LazyLinear(3, device=device, dtype=torch.float64)
    x = torch.randn(2, 7, device=device, dtype=torch.float64)
    y = m(x)
    assert_equal("nn.LazyLinear", (type(m), m.in_features, tuple(m.weight.shape)), (nn.Linear, 7, (3, 7)), args="after first call")
    assert_close("nn.LazyLinear", y, np64(x) @ np64(m.weight).T + np64(m.bias), op="nn")
    bound = 1 / math.sqrt(7)
    assert_true("nn.LazyLinear", np.abs(np64(m.weight)).max() <= bound, "materialised weight outside U(+-1/sqrt(in))")


def test_linear_wrong_in_features_raises(device):
    """A last dim that isn't in_features is an error, not a silent broadcast."""
    m = nn.Linear(5, 3, device=device)
    assert_raises("nn.Linear", RuntimeError, m, torch.randn(2, 4, device=device), args="x(2, 4) into Linear(5, 3)")


def test_linear_default_init_bounds(device):
    """Default init: weight ~ kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)), bias U(+-1/sqrt(in)).
    Catches a default init with the wrong fan or range (checked by bounds and by the spread)."""
    fan_in = 400
    m = nn.Linear(fan_in, 300, device=device)
    bound = 1 / math.sqrt(fan_in)
    w = np64(m.weight)
    assert_true("nn.Linear", np.abs(w).max() <= bound, f"weight outside U(+-{bound})", args="default init")
    # U(-b, b) has std b/sqrt(3); a wrong formula (e.g. sqrt(6/fan_in)) differs by >2x.
    assert_close("nn.Linear", w.std(), bound / math.sqrt(3), rtol=0.03, args="weight std of default init")  # statistical
    assert_true("nn.Linear", np.abs(np64(m.bias)).max() <= bound, "bias outside U(+-1/sqrt(in))", args="default init")
    assert_true("nn.Linear", np.abs(np64(m.bias)).max() > 0.5 * bound, "bias range far too narrow", args="default init")


def test_linear_gradcheck(device):
    """Linear backward (input, weight, bias) against finite differences in float64."""
    m = nn.Linear(3, 2, device=device, dtype=torch.float64)
    x = torch.randn(4, 3, device=device, dtype=torch.float64, requires_grad=True)
    w = m.weight.detach().clone().requires_grad_(True)
    b = m.bias.detach().clone().requires_grad_(True)

    def f(x, w, b):
        return torch.func.functional_call(m, {"weight": w, "bias": b}, (x,))

    assert_true("nn.Linear", torch.autograd.gradcheck(f, (x, w, b)), "gradcheck failed", args="backward")
    # Closed form: d sum(y) / dW = ones^T x, d/db = N.
    y = m(x.detach())
    y.sum().backward()
    assert_close("nn.Linear", m.weight.grad, np.ones((2, 1)) * np64(x).sum(0)[None, :], op="gradient", args="dL/dW")
    assert_close("nn.Linear", m.bias.grad, np.full(2, 4.0), op="gradient", args="dL/db")


@pytest.mark.parametrize("bias", [True, False])
def test_bilinear(device, dtype, bias):
    """Bilinear: y_k = x1^T A_k x2 + b_k with weight (out, in1, in2). Catches swapped inputs, a
    transposed A, or an ignored bias flag."""
    m = nn.Bilinear(3, 4, 2, bias=bias, device=device, dtype=dtype)
    assert_equal("nn.Bilinear", tuple(m.weight.shape), (2, 3, 4))
    x1 = torch.randn(5, 3, device=device, dtype=dtype)
    x2 = torch.randn(5, 4, device=device, dtype=dtype)
    ref = np.einsum("ni,kij,nj->nk", np64(x1), np64(m.weight), np64(x2))
    if bias:
        ref = ref + np64(m.bias)
    else:
        assert_true("nn.Bilinear", m.bias is None, "bias=False must leave .bias None")
    assert_close("nn.Bilinear", m(x1, x2), ref, op="nn", args=f"bias={bias}")
    bound = 1 / math.sqrt(3)
    assert_true("nn.Bilinear", np.abs(np64(m.weight)).max() <= bound, "default init outside U(+-1/sqrt(in1))")


def test_bilinear_gradcheck(device):
    """Bilinear backward w.r.t. both inputs by finite differences."""
    m = nn.Bilinear(2, 3, 2, device=device, dtype=torch.float64)
    x1 = torch.randn(3, 2, device=device, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(3, 3, device=device, dtype=torch.float64, requires_grad=True)
    assert_true("nn.Bilinear", torch.autograd.gradcheck(m, (x1, x2)), "gradcheck failed")


def test_identity(device):
    """Identity returns its input unchanged (the same tensor) and ignores constructor args."""
    m = nn.Identity(54, unused="x")
    x = torch.randn(3, 4, device=device)
    y = m(x)
    assert_true("nn.Identity", y is x, "Identity must return the very input object")
    assert_equal("nn.Identity", len(list(m.parameters())), 0)


@pytest.mark.parametrize("start,end,shape", [(1, -1, (2, 3, 4, 5)), (0, -1, (2, 3, 4)), (2, 3, (2, 3, 4, 5)), (1, 1, (2, 3))])
def test_flatten(device, start, end, shape):
    """Flatten(start_dim=1, end_dim=-1) merges dims start..end, like NumPy reshape. Catches an
    off-by-one in end_dim or a default start_dim of 0."""
    x = torch.randn(*shape, device=device)
    y = nn.Flatten(start, end)(x)
    e = end % len(shape)
    new_shape = shape[:start] + (int(np.prod(shape[start:e + 1])),) + shape[e + 1:]
    assert_equal("nn.Flatten", tuple(y.shape), new_shape, args=f"{start}, {end}")
    assert_equal("nn.Flatten", y, np64(x).reshape(new_shape), args=f"{start}, {end}")
    d = nn.Flatten()(torch.zeros(2, 3, 4, device=device))
    assert_equal("nn.Flatten", tuple(d.shape), (2, 12), args="defaults start_dim=1, end_dim=-1")


def test_unflatten(device):
    """Unflatten(dim, sizes) splits one dim, the inverse of Flatten."""
    x = torch.randn(2, 12, device=device)
    y = nn.Unflatten(1, (3, 4))(x)
    assert_equal("nn.Unflatten", y, np64(x).reshape(2, 3, 4), args="1, (3, 4)")
