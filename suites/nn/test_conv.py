"""§ 4 nn.Module and layers: Conv1d/2d/3d and ConvTranspose2d against a float64 NumPy
sum-over-kernel-offsets (im2col) reference, every constructor argument, output size, errors.

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
from suites.nn._ref import conv_nd, conv_transpose2d, np64, tup

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def _check_conv(device, dtype, nd, cin, cout, k, spatial, n=2, **kw):
    m = CONV[nd](cin, cout, k, device=device, dtype=dtype, **kw)
    x = torch.randn(n, cin, *spatial, device=device, dtype=dtype)
    y = m(x)
    ref = conv_nd(np64(x), np64(m.weight), np64(m.bias), stride=kw.get("stride", 1), padding=kw.get("padding", 0),
                  dilation=kw.get("dilation", 1), groups=kw.get("groups", 1), padding_mode=kw.get("padding_mode", "zeros"))
    args = f"{cin}, {cout}, {k}, x{tuple(x.shape)}, " + ", ".join(f"{a}={v!r}" for a, v in kw.items())
    assert_close(f"nn.Conv{nd}d", y, ref, op="matmul", args=args, check_dtype=dtype)
    return m, x, y


@pytest.mark.smoke
@pytest.mark.dtypes(*dtypes.FLOATING)
def test_conv2d_basic(device, dtype):
    """Conv2d defaults (stride 1, no padding, bias) = cross-correlation (not flipped convolution)
    with weight (out, in, kH, kW). Catches a flipped kernel, transposed weight, missing bias."""
    m, _, y = _check_conv(device, dtype, 2, 3, 4, 3, (7, 6))
    assert_equal("nn.Conv2d", tuple(m.weight.shape), (4, 3, 3, 3), args="weight shape")
    assert_equal("nn.Conv2d", tuple(y.shape), (2, 4, 5, 4), args="output shape")


@pytest.mark.parametrize("kw", [
    dict(stride=2), dict(stride=(2, 1)), dict(padding=1), dict(padding=(2, 0)), dict(padding="same"),
    dict(padding="valid"), dict(dilation=2), dict(dilation=(1, 2), padding="same"), dict(groups=2),
    dict(bias=False), dict(stride=2, padding=1, dilation=2),
], ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_conv2d_arguments(device, dtype, kw):
    """Conv2d honours stride, padding (int, tuple, 'same', 'valid'), dilation, groups and bias=False;
    catches an ignored or swapped (H/W) argument or wrong 'same' padding split."""
    m, x, y = _check_conv(device, dtype, 2, 4, 6, 3, (9, 8), **kw)
    if kw.get("padding") == "same":
        assert_equal("nn.Conv2d", tuple(y.shape[2:]), (9, 8), args="padding='same' keeps size")
    if kw.get("bias") is False:
        assert_true("nn.Conv2d", m.bias is None, "bias=False must leave .bias None")


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize("k", [2, 4, (2, 3)])
def test_conv2d_same_even_kernel(device, k):
    """padding='same' with an even kernel pads asymmetrically (extra on the right/bottom)."""
    _check_conv(device, torch.float64, 2, 2, 3, k, (6, 7), padding="same")


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("nd", [1, 2])
def test_conv_padding_mode(device, nd, mode):
    """padding_mode zeros/reflect/replicate/circular pads as NumPy's constant/reflect/edge/wrap.
    Catches a padding_mode silently treated as zeros."""
    spatial = (7,) if nd == 1 else (6, 5)
    _check_conv(device, torch.float64, nd, 2, 3, 3, spatial, padding=2, padding_mode=mode)


def test_conv2d_depthwise(device, dtype):
    """groups == in_channels (depthwise, channel multiplier 2): each output channel sees one input channel."""
    m, _, _ = _check_conv(device, dtype, 2, 3, 6, 3, (6, 6), groups=3, padding=1)
    assert_equal("nn.Conv2d", tuple(m.weight.shape), (6, 1, 3, 3), args="depthwise weight shape")


@pytest.mark.parametrize("kw", [dict(), dict(stride=3, padding=2), dict(dilation=3), dict(groups=2, bias=False),
                                dict(padding="same", padding_mode="circular")],
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default")
def test_conv1d(device, dtype, kw):
    """Conv1d against the NumPy reference with each argument."""
    _check_conv(device, dtype, 1, 4, 6, 3, (15,), **kw)


@pytest.mark.parametrize("kw", [dict(), dict(stride=(1, 2, 2), padding=1), dict(dilation=(2, 1, 1), groups=2),
                                dict(padding="same", padding_mode="replicate")],
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default")
def test_conv3d(device, dtype, kw):
    """Conv3d against the NumPy reference; catches a swapped depth axis or ignored 3-tuple entry."""
    _check_conv(device, dtype, 3, 2, 4, (3, 2, 2), (5, 4, 5), **kw)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_conv_unbatched(device, nd):
    """An unbatched (C, *S) input gives the batched result without the batch dim."""
    m = CONV[nd](2, 3, 2, device=device, dtype=torch.float64)
    x = torch.randn(2, *([4] * nd), device=device, dtype=torch.float64)
    y = m(x)
    ref = conv_nd(np64(x)[None], np64(m.weight), np64(m.bias))[0]
    assert_close(f"nn.Conv{nd}d", y, ref, op="matmul", args="unbatched input")


@pytest.mark.parametrize("h,k,s,p,d", [(10, 3, 1, 0, 1), (10, 3, 2, 1, 1), (11, 4, 3, 2, 2), (7, 7, 1, 3, 1), (5, 2, 4, 0, 1)])
def test_conv_output_size_formula(device, h, k, s, p, d):
    """H_out = floor((H + 2p - d(k-1) - 1)/s) + 1 (the documented formula)."""
    m = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d, device=device)
    y = m(torch.zeros(1, 1, h, h + 1, device=device))
    want = ((h + 2 * p - d * (k - 1) - 1) // s + 1, (h + 1 + 2 * p - d * (k - 1) - 1) // s + 1)
    assert_equal("nn.Conv2d", tuple(y.shape[2:]), want, args=f"H={h}, k={k}, s={s}, p={p}, d={d}")


def test_conv_errors(device):
    """Documented errors: wrong input channel count, groups not dividing channels, 'same' with
    stride > 1, unknown padding_mode / padding string."""
    m = nn.Conv2d(3, 4, 3, device=device)
    assert_raises("nn.Conv2d", RuntimeError, m, torch.randn(1, 2, 5, 5, device=device), args="2 channels into in=3")
    assert_raises("nn.Conv2d", ValueError, nn.Conv2d, 3, 4, 3, groups=2, args="in_channels=3, groups=2")
    assert_raises("nn.Conv2d", ValueError, nn.Conv2d, 4, 3, 3, groups=2, args="out_channels=3, groups=2")
    assert_raises("nn.Conv2d", ValueError, nn.Conv2d, 2, 2, 3, stride=2, padding="same", args="padding='same', stride=2")
    assert_raises("nn.Conv2d", ValueError, nn.Conv2d, 2, 2, 3, padding_mode="mirror", args="padding_mode='mirror'")
    assert_raises("nn.Conv2d", ValueError, nn.Conv2d, 2, 2, 3, padding="full", args="padding='full'")
    small = nn.Conv2d(1, 1, 5, device=device)
    assert_raises("nn.Conv2d", RuntimeError, small, torch.randn(1, 1, 3, 3, device=device), args="kernel larger than input")


def test_conv_default_init(device):
    """Default init: weight U(+-1/sqrt(fan_in)), fan_in = in/groups * prod(kernel); bias likewise."""
    m = nn.Conv2d(16, 64, (3, 5), groups=2, device=device)
    fan_in = 8 * 15
    bound = 1 / math.sqrt(fan_in)
    w = np64(m.weight)
    assert_true("nn.Conv2d", np.abs(w).max() <= bound, "weight outside U(+-1/sqrt(fan_in))")
    assert_close("nn.Conv2d", w.std(), bound / math.sqrt(3), rtol=0.05, args="default init weight std")  # statistical
    assert_true("nn.Conv2d", np.abs(np64(m.bias)).max() <= bound, "bias outside U(+-1/sqrt(fan_in))")


def test_conv_gradcheck(device):
    """Conv2d backward (input, weight, bias) with stride/padding/dilation/groups by finite differences."""
    m = nn.Conv2d(2, 2, 2, stride=2, padding=1, dilation=1, groups=2, device=device, dtype=torch.float64)
    x = torch.randn(1, 2, 4, 3, device=device, dtype=torch.float64, requires_grad=True)
    w = m.weight.detach().clone().requires_grad_(True)
    b = m.bias.detach().clone().requires_grad_(True)
    f = lambda x, w, b: torch.func.functional_call(m, {"weight": w, "bias": b}, (x,))  # noqa: E731
    assert_true("nn.Conv2d", torch.autograd.gradcheck(f, (x, w, b)), "gradcheck failed")
    m1 = nn.Conv1d(1, 2, 3, padding=1, padding_mode="reflect", device=device, dtype=torch.float64)
    x1 = torch.randn(1, 1, 5, device=device, dtype=torch.float64, requires_grad=True)
    assert_true("nn.Conv1d", torch.autograd.gradcheck(m1, (x1,)), "gradcheck failed", args="padding_mode='reflect'")


@pytest.mark.parametrize("kw", [dict(), dict(stride=2), dict(stride=2, padding=1), dict(stride=2, output_padding=1),
                                dict(stride=3, padding=1, output_padding=2), dict(dilation=2), dict(groups=2),
                                dict(bias=False, stride=(2, 1), padding=(0, 1))],
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default")
def test_conv_transpose2d(device, dtype, kw):
    """ConvTranspose2d against a NumPy scatter reference (each input pixel adds x*w to the output),
    weight (in, out/groups, kH, kW); output size (H-1)s - 2p + d(k-1) + output_padding + 1.
    Catches ignored output_padding, wrong cropping by padding, a flipped kernel."""
    m = nn.ConvTranspose2d(4, 6, 3, device=device, dtype=dtype, **kw)
    assert_equal("nn.ConvTranspose2d", tuple(m.weight.shape), (4, 6 // kw.get("groups", 1), 3, 3), args="weight shape")
    x = torch.randn(2, 4, 4, 5, device=device, dtype=dtype)
    y = m(x)
    ref = conv_transpose2d(np64(x), np64(m.weight), np64(m.bias), stride=kw.get("stride", 1), padding=kw.get("padding", 0),
                           output_padding=kw.get("output_padding", 0), dilation=kw.get("dilation", 1), groups=kw.get("groups", 1))
    s, p, op, d = (tup(kw.get(a, dflt), 2) for a, dflt in [("stride", 1), ("padding", 0), ("output_padding", 0), ("dilation", 1)])
    want = tuple((n - 1) * s[i] - 2 * p[i] + d[i] * 2 + op[i] + 1 for i, n in enumerate((4, 5)))
    assert_equal("nn.ConvTranspose2d", tuple(y.shape[2:]), want, args=f"output size {kw}")
    assert_close("nn.ConvTranspose2d", y, ref, op="matmul", args=str(kw))


def test_conv_transpose2d_output_size_arg_and_errors(device):
    """forward(x, output_size=...) picks the output_padding; output_padding >= stride is an error."""
    m = nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, device=device, dtype=torch.float64)
    x = torch.randn(1, 1, 4, 4, device=device, dtype=torch.float64)
    y = m(x, output_size=[8, 8])
    assert_equal("nn.ConvTranspose2d", tuple(y.shape[2:]), (8, 8), args="output_size=[8, 8]")
    ref = conv_transpose2d(np64(x), np64(m.weight), np64(m.bias), stride=2, padding=1, output_padding=1)
    assert_close("nn.ConvTranspose2d", y, ref, op="matmul", args="output_size=[8, 8]")
    bad = nn.ConvTranspose2d(1, 1, 3, stride=2, output_padding=2, device=device)
    assert_raises("nn.ConvTranspose2d", RuntimeError, bad, torch.randn(1, 1, 3, 3, device=device), args="output_padding=2, stride=2")


def test_conv_transpose_gradcheck(device):
    """ConvTranspose2d backward by finite differences."""
    m = nn.ConvTranspose2d(2, 2, 2, stride=2, output_padding=1, device=device, dtype=torch.float64)
    x = torch.randn(1, 2, 2, 2, device=device, dtype=torch.float64, requires_grad=True)
    assert_true("nn.ConvTranspose2d", torch.autograd.gradcheck(m, (x,)), "gradcheck failed")


_GRID = [(nd, g, s, d, p, m) for nd in (1, 2, 3) for g in (1, 2) for s in (1, 2) for d in (1, 2)
         for p in (0, 1, "same", "valid") for m in ("zeros", "reflect", "replicate", "circular")
         if not (p == "same" and s != 1) and not (p in (0, "valid") and m != "zeros")]


@pytest.mark.parametrize("nd,groups,stride,dilation,padding,mode", _GRID)
def test_conv_grid(device, nd, groups, stride, dilation, padding, mode):
    """Exhaustive grid of Conv1d/2d/3d arguments (valid combinations) against the NumPy reference."""
    _check_conv(device, torch.float64, nd, 4, 4, 3, (7,) * nd, stride=stride, padding=padding, dilation=dilation,
                groups=groups, padding_mode=mode)
