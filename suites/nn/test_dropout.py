"""§ 4 nn.Module and layers: Dropout, Dropout1d/2d/3d, AlphaDropout in train and eval mode, with
statistical tests sized so that a wrong rate or scale fails by a wide margin.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.nn._ref import np64

N = 200_000


@pytest.mark.smoke
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_train(device, dtype, p):
    """Dropout(p) in train mode zeroes each element with probability p (fraction within 6 sigma of p,
    sigma = sqrt(p(1-p)/n)) and scales survivors by exactly 1/(1-p). Catches keep-probability used as
    drop-probability, no rescaling, scaling by (1-p)."""
    x = torch.rand(N, device=device, dtype=dtype) + 0.5
    y = nn.Dropout(p)(x)
    zero = np64(y) == 0
    frac = zero.mean()
    sigma = math.sqrt(p * (1 - p) / N)
    assert_true("nn.Dropout", abs(frac - p) < 6 * sigma, f"zero fraction {frac:.4f}, expected {p} +- {6 * sigma:.4f}",
                args=f"p={p}")
    assert_close("nn.Dropout", np64(y)[~zero], np64(x)[~zero] / (1 - p), op="elementwise", dtype=dtype,
                 args=f"p={p} survivors scaled by 1/(1-p)")
    assert_equal("nn.Dropout", y.dtype, dtype, args="dtype kept")


def test_dropout_eval_and_extremes(device):
    """eval(): identity (same values); p=0 is the identity in train; p=1 zeroes everything; p outside [0, 1]
    is a ValueError; a fresh mask is drawn every call."""
    x = torch.randn(1000, device=device)
    m = nn.Dropout(0.5)
    y1, y2 = m(x), m(x)
    assert_true("nn.Dropout", not torch.equal(y1, y2), "two train calls drew the same mask")
    m.eval()
    assert_equal("nn.Dropout", m(x), x, args="eval")
    assert_equal("nn.Dropout", nn.Dropout(0.0)(x), x, args="p=0, train")
    assert_equal("nn.Dropout", nn.Dropout(1.0)(x), np.zeros(1000), args="p=1, train")
    assert_raises("nn.Dropout", ValueError, nn.Dropout, 1.5, args="p=1.5")
    assert_raises("nn.Dropout", ValueError, nn.Dropout, -0.1, args="p=-0.1")


def test_dropout_inplace_and_grad(device):
    """inplace=True writes into the input; the gradient is the same mask times 1/(1-p)."""
    x = torch.ones(10_000, device=device)
    y = nn.Dropout(0.3, inplace=True)(x)
    assert_true("nn.Dropout", y.data_ptr() == x.data_ptr(), "inplace=True must return the input storage")
    assert_true("nn.Dropout", (x == 0).any().item(), "inplace=True did not modify the input")
    a = torch.ones(10_000, device=device, requires_grad=True)
    out = nn.Dropout(0.3)(a)
    out.sum().backward()
    assert_close("nn.Dropout", a.grad, np64(out), op="elementwise", args="grad = mask/(1-p)")


@pytest.mark.parametrize("cls,shape", [(nn.Dropout1d, (100, 50, 7)), (nn.Dropout2d, (100, 50, 3, 4)),
                                       (nn.Dropout3d, (50, 40, 2, 3, 2))], ids=["1d", "2d", "3d"])
def test_channel_dropout(device, cls, shape):
    """Dropout1d/2d/3d zero whole channels (all of a (n, c) plane or none) with probability p and scale the
    rest by 1/(1-p); eval is the identity. Catches element-wise masks instead of channel masks."""
    p = 0.4
    x = torch.rand(*shape, device=device) + 0.5
    y = np64(cls(p)(x))
    flat = y.reshape(shape[0] * shape[1], -1)
    zero_ch = (flat == 0).all(axis=1)
    any_zero = (flat == 0).any(axis=1)
    assert_equal(f"nn.{cls.__name__}", any_zero, zero_ch, args="channels are zeroed whole")
    n = zero_ch.size
    sigma = math.sqrt(p * (1 - p) / n)
    assert_true(f"nn.{cls.__name__}", abs(zero_ch.mean() - p) < 6 * sigma, f"channel zero fraction {zero_ch.mean():.3f} vs {p}")
    xs = np64(x).reshape(n, -1)
    assert_close(f"nn.{cls.__name__}", flat[~zero_ch], xs[~zero_ch] / (1 - p), op="elementwise", dtype=torch.float32,
                 args="survivors scaled")
    assert_equal(f"nn.{cls.__name__}", cls(p).eval()(x), x, args="eval")


def test_alpha_dropout(device):
    """AlphaDropout keeps a standard normal input at mean 0, std 1 (within 6 sigma), sets dropped units
    to alpha*a*(p-1) and kept ones to a*x + alpha*a*p with alpha = 1.7580993408473766,
    a = ((alpha^2 p + 1)(1 - p))^-1/2; eval is the identity."""
    p = 0.3
    alpha = 1.7580993408473766
    a = 1 / math.sqrt((alpha ** 2 * p + 1) * (1 - p))
    x = torch.randn(N, device=device, dtype=torch.float64)
    y = np64(nn.AlphaDropout(p)(x))
    dropped_val = alpha * a * (p - 1)
    dropped = np.isclose(y, dropped_val, rtol=0, atol=1e-12)
    sigma = math.sqrt(p * (1 - p) / N)
    assert_true("nn.AlphaDropout", abs(dropped.mean() - p) < 6 * sigma, f"dropped fraction {dropped.mean():.4f} vs {p}")
    assert_close("nn.AlphaDropout", y[~dropped], a * np64(x)[~dropped] + alpha * a * p, op="elementwise", args="kept units")
    assert_true("nn.AlphaDropout", abs(y.mean()) < 6 / math.sqrt(N) * 1.5, f"mean {y.mean():.4f} not ~0")
    assert_true("nn.AlphaDropout", abs(y.std() - 1) < 0.02, f"std {y.std():.4f} not ~1")
    assert_equal("nn.AlphaDropout", nn.AlphaDropout(p).eval()(x), x, args="eval")
