"""§ 4 nn.Module and layers: activation modules (ReLU, Sigmoid, Tanh, LeakyReLU, ELU, GELU, SiLU,
Softplus, Softmax, LogSoftmax, Hardtanh, ReLU6, PReLU, ...) against float64 NumPy formulas.

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
from suites.nn._ref import gelu, log_softmax, np64, sigmoid, softmax

# (module factory, reference, id). References are the documented formulas.
CASES = [
    (lambda: nn.ReLU(), lambda x: np.maximum(x, 0), "ReLU"),
    (lambda: nn.Sigmoid(), sigmoid, "Sigmoid"),
    (lambda: nn.Tanh(), np.tanh, "Tanh"),
    (lambda: nn.LeakyReLU(), lambda x: np.where(x >= 0, x, 0.01 * x), "LeakyReLU-default"),
    (lambda: nn.LeakyReLU(0.2), lambda x: np.where(x >= 0, x, 0.2 * x), "LeakyReLU-0.2"),
    (lambda: nn.ELU(), lambda x: np.where(x > 0, x, np.expm1(x)), "ELU-default"),
    (lambda: nn.ELU(alpha=0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x)), "ELU-0.5"),
    (lambda: nn.GELU(), gelu, "GELU-none"),
    (lambda: nn.GELU(approximate="tanh"), lambda x: gelu(x, "tanh"), "GELU-tanh"),
    (lambda: nn.SiLU(), lambda x: x * sigmoid(x), "SiLU"),
    (lambda: nn.Softplus(), lambda x: np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20)))), "Softplus-default"),
    (lambda: nn.Softplus(beta=2.0, threshold=1.0),
     lambda x: np.where(2 * x > 1.0, x, np.log1p(np.exp(2 * np.minimum(x, 0.5))) / 2), "Softplus-beta2-thr1"),
    (lambda: nn.Hardtanh(), lambda x: np.clip(x, -1, 1), "Hardtanh-default"),
    (lambda: nn.Hardtanh(-0.5, 2.0), lambda x: np.clip(x, -0.5, 2.0), "Hardtanh-(-0.5,2)"),
    (lambda: nn.ReLU6(), lambda x: np.clip(x, 0, 6), "ReLU6"),
    (lambda: nn.Hardsigmoid(), lambda x: np.clip(x / 6 + 0.5, 0, 1), "Hardsigmoid"),
    (lambda: nn.Hardswish(), lambda x: x * np.clip(x + 3, 0, 6) / 6, "Hardswish"),
    (lambda: nn.Mish(), lambda x: x * np.tanh(np.log1p(np.exp(x))), "Mish"),
    (lambda: nn.SELU(), lambda x: 1.0507009873554804934193349852946 * np.where(
        x > 0, x, 1.6732632423543772848170429916717 * np.expm1(x)), "SELU"),
    (lambda: nn.CELU(alpha=2.0), lambda x: np.maximum(x, 0) + np.minimum(0, 2.0 * np.expm1(x / 2.0)), "CELU-2"),
    (lambda: nn.Softsign(), lambda x: x / (1 + np.abs(x)), "Softsign"),
    (lambda: nn.Tanhshrink(), lambda x: x - np.tanh(x), "Tanhshrink"),
    (lambda: nn.Hardshrink(0.65), lambda x: np.where(np.abs(x) > 0.65, x, 0), "Hardshrink-0.65"),
    (lambda: nn.Softshrink(0.65), lambda x: np.where(x > 0.65, x - 0.65, np.where(x < -0.65, x + 0.65, 0)), "Softshrink-0.65"),
    (lambda: nn.Threshold(0.35, -2.0), lambda x: np.where(x > 0.35, x, -2.0), "Threshold"),
    (lambda: nn.LogSigmoid(), lambda x: -np.logaddexp(0, -x), "LogSigmoid"),
]

# GELU is not in the set: its documented form x/2 * (1 + erf(x/sqrt 2)) cancels below x ~ -4 (float32 returns
# 0 where the exact value is ~-6e-8), so only the absolute elementwise bound is a contract for it.
_ULP_CHECKED = {"Sigmoid", "Tanh", "SiLU", "Softplus-default", "Softplus-beta2-thr1", "LogSigmoid", "ELU-default",
                "ELU-0.5", "SELU", "CELU-2", "Mish"}


def _inputs(device, dtype):
    """A spread including 0, exact kink points, large magnitudes (for overflow paths) and both signs."""
    base = torch.linspace(-8, 8, 161, dtype=torch.float64)
    extra = torch.tensor([0.0, -0.0, 0.5, -0.5, 0.7, -0.7, 1.0, -1.0, 3.0, -3.0, 6.0, 25.0, -25.0, 60.0, -60.0,
                          -12.0, -14.0], dtype=torch.float64)  # -12, -14: sigmoid tails still normal in float16
    return torch.cat([base, extra]).to(device=device, dtype=dtype).reshape(2, 89)


@pytest.mark.smoke
@pytest.mark.dtypes(*dtypes.FLOATING)
@pytest.mark.parametrize("make,ref,name", CASES, ids=[c[2] for c in CASES])
def test_activation(device, dtype, make, ref, name):
    """Each activation module's forward equals its documented formula (with every constructor argument
    that changes it). Catches a wrong constant (LeakyReLU slope, ELU alpha, Softplus beta/threshold),
    erf vs tanh GELU swapped, and clamps with wrong bounds."""
    m = make()
    x = _inputs(device, dtype)
    y = m(x)
    # Tanhshrink = x - tanh(x) cancels near 0: in 16-bit dtypes the rounding of tanh(x) (up to eps/2
    # absolute) survives the subtraction, so allow one eps absolute there.
    atol = torch.finfo(dtype).eps if (name == "Tanhshrink" and dtype in dtypes.FLOAT_LOW) else None
    # Saturating transcendental activations reach outputs far below the elementwise absolute floor (the
    # inputs go to -60, where sigmoid is ~1e-26): a flushed tail would pass an absolute check, so these are
    # checked in units in the last place of the result dtype (a relative check at every magnitude).
    op = "transcendental" if name in _ULP_CHECKED and atol is None else "elementwise"
    assert_close(f"nn.{name}", y, ref(np64(x)), op=op, atol=atol, args=repr(m), check_dtype=dtype,
                 check_device=device)
    assert_equal(f"nn.{name}", tuple(y.shape), tuple(x.shape), args="shape")


def test_activation_nan_and_noncontiguous(device):
    """NaN propagates through activations; a transposed input gives the transposed output."""
    x = torch.tensor([[float("nan"), 1.0], [-1.0, 2.0]], device=device, dtype=torch.float64)
    for m, ref in [(nn.ReLU(), lambda a: np.maximum(a, 0)), (nn.Sigmoid(), sigmoid), (nn.GELU(), gelu), (nn.Tanh(), np.tanh)]:
        assert_close(f"nn.{type(m).__name__}", m(x.t()), ref(np64(x).T), op="elementwise", args="NaN, transposed")
        assert_true(f"nn.{type(m).__name__}", torch.isnan(m(x)[0, 0]).item(), "NaN must propagate")


@pytest.mark.parametrize("inplace_mod,out_of_place", [
    (lambda: nn.ReLU(inplace=True), lambda: nn.ReLU()),
    (lambda: nn.LeakyReLU(0.1, inplace=True), lambda: nn.LeakyReLU(0.1)),
    (lambda: nn.ELU(inplace=True), lambda: nn.ELU()),
    (lambda: nn.Hardtanh(inplace=True), lambda: nn.Hardtanh()),
    (lambda: nn.ReLU6(inplace=True), lambda: nn.ReLU6()),
    (lambda: nn.SiLU(inplace=True), lambda: nn.SiLU()),
    (lambda: nn.Threshold(0.1, 20, inplace=True), lambda: nn.Threshold(0.1, 20)),
], ids=["ReLU", "LeakyReLU", "ELU", "Hardtanh", "ReLU6", "SiLU", "Threshold"])
def test_inplace_variants(device, inplace_mod, out_of_place):
    """inplace=True writes the result into the input (same storage) and returns it; inplace=False
    leaves the input untouched. Catches an ignored inplace flag either way."""
    x = torch.randn(4, 5, device=device)
    x0 = x.clone()
    want = out_of_place()(x)
    assert_equal("nn.activation", x, x0, args="inplace=False must not modify input")
    y = inplace_mod()(x)
    name = f"nn.{type(inplace_mod()).__name__}"
    assert_true(name, y.data_ptr() == x.data_ptr(), "inplace=True must return the input's storage", args="inplace=True")
    assert_close(name, x, np64(want), op="elementwise", args="inplace=True modifies input")


@pytest.mark.dtypes(*dtypes.FLOATING)
@pytest.mark.parametrize("dim", [0, 1, -1, 2])
def test_softmax_logsoftmax(device, dtype, dim):
    """Softmax(dim)/LogSoftmax(dim) normalise along `dim` only (stable for large logits). Catches a
    wrong dim, no max-subtraction (overflow to NaN) or log(softmax) precision loss."""
    x = torch.randn(3, 4, 5, device=device, dtype=dtype) * 5
    x[0, 0, 0] = 200.0  # overflow without max-subtraction
    axis = dim % 3
    assert_close("nn.Softmax", nn.Softmax(dim=dim)(x), softmax(np64(x), axis), op="reduction", args=f"dim={dim}")
    assert_close("nn.LogSoftmax", nn.LogSoftmax(dim=dim)(x), log_softmax(np64(x), axis), op="reduction", args=f"dim={dim}")
    x2 = torch.randn(2, 3, device=device, dtype=dtype)
    assert_close("nn.Softmin", nn.Softmin(dim=1)(x2), softmax(-np64(x2), 1), op="reduction", args="dim=1")


def test_softmax_neg_inf_row(device):
    """Softmax over a row with -inf entries gives 0 there; a row of all -inf is NaN (documented maths)."""
    x = torch.tensor([[0.0, float("-inf"), 1.0], [float("-inf")] * 3], device=device, dtype=torch.float64)
    y = nn.Softmax(dim=1)(x)
    e = np.array([[1 / (1 + math.e), 0.0, math.e / (1 + math.e)], [np.nan] * 3])
    assert_close("nn.Softmax", y, e, op="reduction", args="-inf entries")


@pytest.mark.parametrize("num_parameters,init", [(1, 0.25), (3, 0.1)])
def test_prelu(device, dtype, num_parameters, init):
    """PReLU: y = max(0,x) + a*min(0,x) with a learned per-channel (dim 1) weight of size num_parameters,
    initialised to `init`; its gradient is sum(min(0,x)) over non-channel dims. Catches a slope applied to
    the wrong dim, a non-learned weight, wrong init."""
    m = nn.PReLU(num_parameters, init=init, device=device, dtype=dtype)
    assert_equal("nn.PReLU", tuple(m.weight.shape), (num_parameters,), args="weight shape")
    assert_close("nn.PReLU", m.weight, np.full(num_parameters, init), op="elementwise", args=f"init={init}")
    with torch.no_grad():
        m.weight.copy_(torch.linspace(0.1, 0.5, num_parameters))
    x = torch.randn(2, 3, 4, device=device, dtype=dtype)
    a = np64(m.weight).reshape(1, -1, 1)
    xn = np64(x)
    assert_close("nn.PReLU", m(x), np.maximum(xn, 0) + a * np.minimum(xn, 0), op="elementwise", args=f"num_parameters={num_parameters}")
    m(x).sum().backward()
    g = np.minimum(xn, 0).sum(axis=(0, 2))
    assert_close("nn.PReLU", m.weight.grad, g if num_parameters == 3 else g.sum(keepdims=True), op="reduction", args="weight.grad")
    assert_true("nn.PReLU", m.weight.requires_grad, "PReLU weight must be a learned parameter")


def test_activation_gradcheck(device):
    """Backward of smooth activations (and ReLU/LeakyReLU away from 0) by finite differences."""
    x = torch.tensor([-2.0, -0.7, -0.3, 0.4, 1.1, 3.0], device=device, dtype=torch.float64, requires_grad=True)
    for m in [nn.ReLU(), nn.Sigmoid(), nn.Tanh(), nn.LeakyReLU(0.3), nn.ELU(0.7), nn.GELU(), nn.GELU(approximate="tanh"),
              nn.SiLU(), nn.Softplus(beta=1.5, threshold=2.0), nn.Mish(), nn.Hardtanh(-1.0, 1.0), nn.PReLU().double().to(device),
              nn.Softmax(dim=0), nn.LogSoftmax(dim=0), nn.CELU(1.3), nn.SELU()]:
        assert_true(f"nn.{type(m).__name__}", torch.autograd.gradcheck(m, (x,)), "gradcheck failed", args=repr(m))


def test_relu_grad_at_zero(device):
    """ReLU's gradient at exactly 0 is 0 (PyTorch's documented subgradient choice); sigmoid' = s(1-s)."""
    x = torch.tensor([-1.0, 0.0, 2.0], device=device, requires_grad=True)
    nn.ReLU()(x).sum().backward()
    assert_equal("nn.ReLU", x.grad, np.array([0.0, 0.0, 1.0]), args="grad at 0")
    x2 = torch.linspace(-4, 4, 9, device=device, dtype=torch.float64, requires_grad=True)
    nn.Sigmoid()(x2).sum().backward()
    s = sigmoid(np64(x2))
    assert_close("nn.Sigmoid", x2.grad, s * (1 - s), op="gradient", args="closed form")


def test_gelu_bad_approximate_raises():
    """GELU(approximate=...) accepts only 'none' and 'tanh'."""
    assert_raises("nn.GELU", RuntimeError, nn.GELU(approximate="sigmoid"), torch.randn(3), args="approximate='sigmoid'")
