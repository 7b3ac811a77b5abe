"""§ 4 nn.Module and layers: torch.nn.init against the documented formulas (Xavier/Glorot, He/Kaiming with
fan modes and gains, constant/zeros/ones/eye/dirac, orthogonal, uniform/normal/trunc_normal, sparse,
calculate_gain, fan computation for conv weights).

Statistical checks use >= 1e5 samples: the sample std has relative error ~ 1/sqrt(2n) < 0.3%, so the
2.5% allowance is > 8 sigma, while any of the plausible formula mistakes (fan_in vs fan_out on these
shapes, missing gain, sqrt(3) vs sqrt(6)) moves the std by more than 10%.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import init

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.nn._ref import np64

STAT_RTOL = 0.025  # statistical: > 8 sigma for the sample sizes used here (see module docstring)


def _std(api, t, want, args):
    a = np64(t)
    assert_close(api, a.std(), want, rtol=STAT_RTOL, atol=0, args=args + " sample std")  # statistical
    assert_true(api, abs(a.mean()) < 6 * want / math.sqrt(a.size), f"sample mean {a.mean():.3g} not ~0", args=args)


def _uniform_bound(api, t, bound, args):
    a = np64(t)
    assert_true(api, np.abs(a).max() <= bound * (1 + 1e-6), f"max |x| {np.abs(a).max():.4g} > bound {bound:.4g}", args=args)
    assert_true(api, np.abs(a).max() > 0.99 * bound, f"max |x| {np.abs(a).max():.4g} well below bound {bound:.4g}", args=args)
    _std(api, t, bound / math.sqrt(3), args)


@pytest.mark.smoke
def test_calculate_gain():
    """calculate_gain table: linear/conv/sigmoid 1, tanh 5/3, relu sqrt(2), leaky_relu sqrt(2/(1+a^2))
    (default a=0.01), selu 3/4; unknown names are a ValueError."""
    table = {"linear": 1.0, "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0, "conv_transpose1d": 1.0, "conv_transpose2d": 1.0,
             "conv_transpose3d": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 0.75}
    for name, want in table.items():
        assert_close("nn.init.calculate_gain", init.calculate_gain(name), want, op="elementwise", dtype=torch.float64, args=repr(name))
    assert_close("nn.init.calculate_gain", init.calculate_gain("leaky_relu"), math.sqrt(2 / (1 + 0.01 ** 2)), op="elementwise",
                 dtype=torch.float64, args="'leaky_relu' default slope")
    assert_close("nn.init.calculate_gain", init.calculate_gain("leaky_relu", 0.2), math.sqrt(2 / 1.04), op="elementwise",
                 dtype=torch.float64, args="'leaky_relu', 0.2")
    assert_raises("nn.init.calculate_gain", ValueError, init.calculate_gain, "swish", args="'swish'")


@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_xavier_uniform(device, gain):
    """xavier_uniform_: U(-a, a), a = gain*sqrt(6/(fan_in+fan_out)); returns the same tensor."""
    t = torch.empty(300, 800, device=device)
    out = init.xavier_uniform_(t, gain=gain)
    assert_true("nn.init.xavier_uniform_", out is t, "must fill in place and return the tensor")
    _uniform_bound("nn.init.xavier_uniform_", t, gain * math.sqrt(6 / 1100), f"(300, 800), gain={gain}")


@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_xavier_normal(device, gain):
    """xavier_normal_: N(0, std^2), std = gain*sqrt(2/(fan_in+fan_out))."""
    t = torch.empty(300, 800, device=device)
    init.xavier_normal_(t, gain=gain)
    _std("nn.init.xavier_normal_", t, gain * math.sqrt(2 / 1100), f"(300, 800), gain={gain}")


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity,a", [("relu", 0), ("leaky_relu", 0), ("leaky_relu", 0.3), ("tanh", 0), ("linear", 0)])
def test_kaiming_uniform(device, mode, nonlinearity, a):
    """kaiming_uniform_(a, mode, nonlinearity): U(-b, b), b = gain*sqrt(3/fan_mode) with gain from
    calculate_gain(nonlinearity, a). Shape (300, 800): fan_in=800, fan_out=300. Catches swapped modes,
    a ignored, sqrt(6) instead of sqrt(3)."""
    t = torch.empty(300, 800, device=device)
    init.kaiming_uniform_(t, a=a, mode=mode, nonlinearity=nonlinearity)
    fan = 800 if mode == "fan_in" else 300
    gain = {"relu": math.sqrt(2), "leaky_relu": math.sqrt(2 / (1 + a * a)), "tanh": 5 / 3, "linear": 1.0}[nonlinearity]
    _uniform_bound("nn.init.kaiming_uniform_", t, gain * math.sqrt(3 / fan), f"mode={mode}, {nonlinearity}, a={a}")


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity,a", [("relu", 0), ("leaky_relu", 0.3), ("leaky_relu", 0)])
def test_kaiming_normal(device, mode, nonlinearity, a):
    """kaiming_normal_: N(0, std^2), std = gain/sqrt(fan_mode); the document's He init
    kaiming_normal_(mode='fan_out') on a conv weight uses out_channels*kH*kW."""
    t = torch.empty(300, 800, device=device)
    init.kaiming_normal_(t, a=a, mode=mode, nonlinearity=nonlinearity)
    fan = 800 if mode == "fan_in" else 300
    gain = math.sqrt(2 / (1 + a * a))
    _std("nn.init.kaiming_normal_", t, gain / math.sqrt(fan), f"mode={mode}, {nonlinearity}, a={a}")


def test_init_defaults(device):
    """Defaults: kaiming_uniform_/kaiming_normal_ use a=0, mode='fan_in', nonlinearity='leaky_relu' (gain
    sqrt(2)); xavier gain 1; uniform_ [0, 1); normal_ N(0, 1); trunc_normal_ [-2, 2]."""
    t = torch.empty(300, 800, device=device)
    _uniform_bound("nn.init.kaiming_uniform_", init.kaiming_uniform_(t), math.sqrt(6 / 800), "defaults")
    _std("nn.init.kaiming_normal_", init.kaiming_normal_(t), math.sqrt(2 / 800), "defaults")
    _std("nn.init.normal_", init.normal_(t), 1.0, "defaults")
    a = np64(init.uniform_(t))
    assert_true("nn.init.uniform_", a.min() >= 0 and a.max() < 1 and a.max() > 0.99 and a.min() < 0.01, "default range [0, 1)")
    b = np64(init.trunc_normal_(t))
    assert_true("nn.init.trunc_normal_", b.min() >= -2 and b.max() <= 2 and b.max() > 1.9, "default bounds [-2, 2]")


def test_conv_weight_fans(device):
    """Fans of a conv weight (out, in, kH, kW) include the receptive field: fan_in = in*kH*kW,
    fan_out = out*kH*kW. Checked through kaiming_normal_(mode='fan_out', relu) and xavier_normal_."""
    w = torch.empty(96, 48, 7, 5, device=device)  # fan_in 1680, fan_out 3360, 161280 samples
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    _std("nn.init.kaiming_normal_", w, math.sqrt(2) / math.sqrt(96 * 35), "conv weight, mode='fan_out'")
    init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu")
    _std("nn.init.kaiming_normal_", w, math.sqrt(2) / math.sqrt(48 * 35), "conv weight, mode='fan_in'")
    init.xavier_normal_(w)
    _std("nn.init.xavier_normal_", w, math.sqrt(2 / (35 * (96 + 48))), "conv weight")
    assert_raises("nn.init.xavier_uniform_", ValueError, init.xavier_uniform_, torch.empty(5, device=device), args="1-d tensor")
    assert_raises("nn.init.kaiming_uniform_", ValueError, init.kaiming_uniform_, torch.empty(3, 3, device=device), mode="fan_avg",
                  args="mode='fan_avg'")


def test_default_layer_init(device):
    """Linear/Conv default init = kaiming_uniform_(a=sqrt(5)), i.e. U(+-1/sqrt(fan_in)) (gain sqrt(2/6)
    times sqrt(3/fan_in)), bias U(+-1/sqrt(fan_in)); reset_parameters() redraws."""
    lin = nn.Linear(500, 400, device=device)
    _uniform_bound("nn.Linear.reset_parameters", lin.weight, 1 / math.sqrt(500), "Linear(500, 400)")
    conv = nn.Conv2d(20, 200, (5, 5), device=device)  # fan_in 500, 100k weights
    _uniform_bound("nn.Conv2d.reset_parameters", conv.weight, 1 / math.sqrt(500), "Conv2d(20, 200, 5)")
    assert_true("nn.Conv2d.reset_parameters", np.abs(np64(conv.bias)).max() <= 1 / math.sqrt(500), "bias outside bound")
    before = np64(lin.weight)
    lin.reset_parameters()
    assert_true("nn.Linear.reset_parameters", not np.array_equal(before, np64(lin.weight)), "reset_parameters did not redraw")


def test_constant_zeros_ones_eye(device, dtype):
    """constant_(val), zeros_, ones_ fill every element; eye_ writes the (rectangular) identity and
    rejects non-2-d tensors."""
    t = torch.empty(3, 4, device=device, dtype=dtype)
    assert_equal("nn.init.constant_", init.constant_(t, 0.3), np.full((3, 4), np.float64(torch.tensor(0.3, dtype=dtype))),
                 args="0.3")
    assert_equal("nn.init.zeros_", init.zeros_(t), np.zeros((3, 4)))
    assert_equal("nn.init.ones_", init.ones_(t), np.ones((3, 4)))
    assert_equal("nn.init.eye_", init.eye_(t), np.eye(3, 4), args="(3, 4)")
    assert_equal("nn.init.eye_", init.eye_(torch.empty(4, 2, device=device)), np.eye(4, 2), args="(4, 2)")
    assert_raises("nn.init.eye_", ValueError, init.eye_, torch.empty(2, 2, 2, device=device), args="3-d")


@pytest.mark.parametrize("shape,groups", [((4, 4, 3, 3), 1), ((6, 3, 3), 1), ((8, 2, 3, 3), 2), ((5, 3, 1, 3, 3), 1)])
def test_dirac(device, shape, groups):
    """dirac_ makes a conv weight that preserves its input channels: w[g*O/g + i, i, centre] = 1 for
    i < min(out/groups, in), zero elsewhere; convolving with it (padding=k//2) is the identity."""
    w = torch.empty(*shape, device=device)
    init.dirac_(w, groups=groups)
    ref = np.zeros(shape)
    og = shape[0] // groups
    centre = tuple(k // 2 for k in shape[2:])
    for g in range(groups):
        for i in range(min(og, shape[1])):
            ref[(g * og + i, i) + centre] = 1
    assert_equal("nn.init.dirac_", w, ref, args=f"{shape}, groups={groups}")
    if len(shape) == 4 and groups == 1:
        conv = nn.Conv2d(shape[1], shape[0], shape[2:], padding=1, bias=False, device=device)
        with torch.no_grad():
            conv.weight.copy_(w)
        x = torch.randn(1, shape[1], 5, 5, device=device)
        assert_close("nn.init.dirac_", conv(x), np64(x), op="matmul", args="conv with dirac weight is identity")
    assert_raises("nn.init.dirac_", ValueError, init.dirac_, torch.empty(3, 3, device=device), args="2-d")


@pytest.mark.parametrize("shape", [(6, 6), (8, 3), (3, 8), (4, 2, 3, 3)])
@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_orthogonal(device, shape, gain):
    """orthogonal_(gain): the (rows, prod(rest)) flattening W has orthonormal rows or columns (whichever
    are fewer), scaled by gain: W W^T = gain^2 I (wide) or W^T W = gain^2 I (tall)."""
    w = torch.empty(*shape, device=device)
    init.orthogonal_(w, gain=gain)
    m = np64(w).reshape(shape[0], -1)
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    assert_close("nn.init.orthogonal_", gram, gain ** 2 * np.eye(gram.shape[0]), op="linalg", dtype=torch.float32,
                 args=f"{shape}, gain={gain}")


def test_uniform_normal_trunc(device):
    """uniform_(a, b): in [a, b) with mean (a+b)/2 and std (b-a)/sqrt(12); normal_(mean, std); trunc_normal_
    (mean, std, a, b): all values in [a, b], with the truncated-normal std. Catches ignored bounds/mean."""
    n = 200_000
    u = init.uniform_(torch.empty(n, device=device), a=-2.0, b=5.0)
    a = np64(u)
    assert_true("nn.init.uniform_", a.min() >= -2.0 and a.max() <= 5.0 and a.min() < -1.99 and a.max() > 4.99, "range [a, b)")
    assert_close("nn.init.uniform_", a.mean(), 1.5, atol=6 * 7 / math.sqrt(12 * n), rtol=0, args="mean (a+b)/2")  # statistical
    assert_close("nn.init.uniform_", a.std(), 7 / math.sqrt(12), rtol=STAT_RTOL, atol=0, args="std (b-a)/sqrt(12)")  # statistical
    g = np64(init.normal_(torch.empty(n, device=device), mean=3.0, std=0.5))
    assert_close("nn.init.normal_", g.mean(), 3.0, atol=6 * 0.5 / math.sqrt(n), rtol=0, args="mean=3")  # statistical
    assert_close("nn.init.normal_", g.std(), 0.5, rtol=STAT_RTOL, atol=0, args="std=0.5")  # statistical
    t = np64(init.trunc_normal_(torch.empty(n, device=device), mean=0.5, std=1.0, a=-0.5, b=1.0))
    assert_true("nn.init.trunc_normal_", t.min() >= -0.5 and t.max() <= 1.0, f"outside [a, b]: [{t.min()}, {t.max()}]")
    # Truncated normal on [alpha, beta] = [-1, 0.5] (standardised): closed-form mean and variance.
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    al, be = -1.0, 0.5
    zz = cdf(be) - cdf(al)
    mu = 0.5 + (phi(al) - phi(be)) / zz
    var = 1 + (al * phi(al) - be * phi(be)) / zz - ((phi(al) - phi(be)) / zz) ** 2
    assert_close("nn.init.trunc_normal_", t.mean(), mu, atol=6 * math.sqrt(var / n), rtol=0, args="mean")  # statistical
    assert_close("nn.init.trunc_normal_", t.std(), math.sqrt(var), rtol=STAT_RTOL, atol=0, args="std")  # statistical


@pytest.mark.parametrize("sparsity", [0.1, 0.5])
def test_sparse(device, sparsity):
    """sparse_(sparsity, std): in every column exactly ceil(sparsity*rows) entries are zero, the rest
    N(0, std^2); non-2-d input is a ValueError."""
    w = torch.empty(400, 500, device=device)
    init.sparse_(w, sparsity, std=0.02)
    a = np64(w)
    zeros_per_col = (a == 0).sum(axis=0)
    assert_equal("nn.init.sparse_", zeros_per_col, np.full(500, math.ceil(sparsity * 400)), args=f"sparsity={sparsity}")
    nz = a[a != 0]
    assert_close("nn.init.sparse_", nz.std(), 0.02, rtol=STAT_RTOL, atol=0, args="std=0.02")  # statistical
    assert_raises("nn.init.sparse_", ValueError, init.sparse_, torch.empty(3, 3, 3, device=device), 0.1, args="3-d")


def test_init_no_grad_and_generator(device):
    """Initialisers work on a leaf Parameter (run under no_grad, no autograd history), and, where the
    build supports generator=, the same seed reproduces the same values."""
    p = nn.Parameter(torch.empty(4, 5, device=device))
    init.kaiming_uniform_(p)
    assert_true("nn.init.kaiming_uniform_", p.grad_fn is None and p.is_leaf and p.requires_grad, "init changed leaf status")
    if "generator" not in inspect.signature(init.normal_).parameters:
        pytest.skip("nn.init.normal_ has no generator= in this torch (added in 2.2)")
    a = init.normal_(torch.empty(50), generator=torch.Generator().manual_seed(3))
    b = init.normal_(torch.empty(50), generator=torch.Generator().manual_seed(3))
    c = init.normal_(torch.empty(50), generator=torch.Generator().manual_seed(4))
    assert_equal("nn.init.normal_", a, b, args="same generator seed")
    assert_true("nn.init.normal_", not torch.equal(a, c), "a different seed gave identical values")
