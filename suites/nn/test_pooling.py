"""§ 4 nn.Module and layers: MaxPool2d/MaxUnpool2d, AvgPool2d, AdaptiveAvgPool2d/AdaptiveMaxPool2d
(and MaxPool1d/AvgPool1d) against float64 NumPy window loops.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.nn._ref import adaptive_bins, adaptive_pool2d, avg_pool2d, max_pool2d, np64


def _distinct(shape, device, dtype):
    """Inputs without ties (a random permutation), so argmax indices are well defined."""
    n = int(np.prod(shape))
    return (torch.randperm(n, device=device).to(dtype) / n - 0.5).reshape(shape)


@pytest.mark.smoke
def test_maxpool2d_default_stride(device, dtype):
    """MaxPool2d(k): stride defaults to kernel_size (non-overlapping windows). Catches stride default 1."""
    x = _distinct((2, 3, 8, 6), device, dtype)
    y = nn.MaxPool2d(2)(x)
    ref, _ = max_pool2d(np64(x), 2)
    assert_equal("nn.MaxPool2d", tuple(y.shape), (2, 3, 4, 3), args="kernel_size=2")
    assert_close("nn.MaxPool2d", y, ref, op="exact", args="kernel_size=2", check_dtype=dtype)


@pytest.mark.parametrize("kw", [
    dict(kernel_size=3, stride=1), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(2, 3), stride=(1, 2)),
    dict(kernel_size=2, dilation=2, stride=1), dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=2, stride=2, padding=1, ceil_mode=True), dict(kernel_size=3, stride=3, padding=1, dilation=(1, 2)),
], ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_maxpool2d_arguments(device, dtype, kw):
    """MaxPool2d honours kernel, stride, padding (implicit -inf), dilation, ceil_mode, and return_indices
    gives flat H*W indices of the maxima into the unpadded input. Catches zero-padding (instead of -inf),
    ignored dilation/ceil_mode, indices into the padded input."""
    x = _distinct((2, 2, 7, 9), device, dtype) - 10  # all negative: zero padding would show up
    y, idx = nn.MaxPool2d(return_indices=True, **kw)(x)
    ref, ref_idx = max_pool2d(np64(x), kw["kernel_size"], kw.get("stride"), kw.get("padding", 0), kw.get("dilation", 1),
                              kw.get("ceil_mode", False))
    assert_close("nn.MaxPool2d", y, ref, op="exact", args=str(kw))
    assert_equal("nn.MaxPool2d", idx.dtype, torch.int64, args="indices dtype")
    assert_equal("nn.MaxPool2d", idx, ref_idx, args=f"{kw}, return_indices=True")


def test_maxpool2d_nan_and_ties(device):
    """A NaN in a window propagates to its output (max is NaN-propagating); an all-zero window gives 0."""
    x = torch.zeros(1, 1, 4, 4, device=device)
    x[0, 0, 0, 1] = float("nan")
    y = nn.MaxPool2d(2)(x)
    assert_true("nn.MaxPool2d", torch.isnan(y[0, 0, 0, 0]).item(), "NaN in window must propagate")
    assert_equal("nn.MaxPool2d", y[0, 0, 1, 1].item(), 0.0, args="all-zero window")


def test_maxunpool2d(device, dtype):
    """MaxUnpool2d places each max back at its index and zeros elsewhere (output_size honoured)."""
    x = _distinct((1, 2, 5, 5), device, dtype)
    y, idx = nn.MaxPool2d(2, return_indices=True)(x)
    up = nn.MaxUnpool2d(2)(y, idx, output_size=x.shape[-2:])
    assert_equal("nn.MaxUnpool2d", tuple(up.shape), (1, 2, 5, 5), args="output_size=(5, 5)")
    ref = np.zeros((1, 2, 25))
    np.put_along_axis(ref, np64(idx).astype(np.int64).reshape(1, 2, -1), np64(y).reshape(1, 2, -1), axis=2)
    assert_close("nn.MaxUnpool2d", up, ref.reshape(1, 2, 5, 5), op="exact")
    x4 = _distinct((1, 2, 4, 6), device, dtype)
    y4, idx4 = nn.MaxPool2d(2, return_indices=True)(x4)
    up2 = nn.MaxUnpool2d(2)(y4, idx4)
    assert_equal("nn.MaxUnpool2d", tuple(up2.shape), (1, 2, 4, 6), args="default output size (H-1)*s + k")
    assert_close("nn.MaxUnpool2d", up2, np.where(np64(nn.MaxPool2d(2)(x4)).repeat(2, 2).repeat(2, 3) == np64(x4), np64(x4), 0.0),
                 op="exact", args="default output size")


def test_maxpool_errors(device):
    """padding larger than half the kernel is an error."""
    assert_raises("nn.MaxPool2d", RuntimeError, nn.MaxPool2d(2, padding=2), torch.randn(1, 1, 6, 6, device=device),
                  args="kernel_size=2, padding=2")
    assert_raises("nn.AvgPool2d", RuntimeError, nn.AvgPool2d(2, padding=2), torch.randn(1, 1, 6, 6, device=device),
                  args="kernel_size=2, padding=2")


@pytest.mark.parametrize("kw", [
    dict(kernel_size=2), dict(kernel_size=3, stride=1), dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, count_include_pad=False), dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1)), dict(kernel_size=2, divisor_override=3),
    dict(kernel_size=3, stride=2, padding=1, divisor_override=5),
], ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_avgpool2d(device, dtype, kw):
    """AvgPool2d with count_include_pad (pad counted in divisor by default), ceil_mode (partial last
    window divides by its clipped size), divisor_override. Catches an ignored count_include_pad or
    divisor_override, and stride default != kernel."""
    x = torch.randn(2, 3, 7, 8, device=device, dtype=dtype)
    y = nn.AvgPool2d(**kw)(x)
    ref = avg_pool2d(np64(x), kw["kernel_size"], kw.get("stride"), kw.get("padding", 0), kw.get("ceil_mode", False),
                     kw.get("count_include_pad", True), kw.get("divisor_override"))
    assert_close("nn.AvgPool2d", y, ref, op="reduction", args=str(kw), check_dtype=dtype)


def test_pool1d_and_unbatched(device):
    """MaxPool1d/AvgPool1d on (N, C, L) and MaxPool2d on unbatched (C, H, W)."""
    x = torch.randn(2, 3, 9, device=device, dtype=torch.float64)
    ref_max, _ = max_pool2d(np64(x)[:, :, None, :], (1, 3), (1, 2), (0, 1))
    assert_close("nn.MaxPool1d", nn.MaxPool1d(3, 2, 1)(x), ref_max[:, :, 0], op="exact", args="3, 2, 1")
    ref_avg = avg_pool2d(np64(x)[:, :, None, :], (1, 3), (1, 2), (0, 1))
    assert_close("nn.AvgPool1d", nn.AvgPool1d(3, 2, 1)(x), ref_avg[:, :, 0], op="reduction", args="3, 2, 1")
    x3 = torch.randn(3, 6, 6, device=device, dtype=torch.float64)
    ref3, _ = max_pool2d(np64(x3)[None], 2)
    assert_close("nn.MaxPool2d", nn.MaxPool2d(2)(x3), ref3[0], op="exact", args="unbatched")


@pytest.mark.parametrize("insize,outsize", [((8, 8), (4, 4)), ((7, 5), (3, 2)), ((5, 7), (5, 7)), ((3, 4), (5, 6)),
                                            ((9, 10), (1, 1)), ((10, 7), (4, None))])
def test_adaptive_avg_pool2d(device, dtype, insize, outsize):
    """AdaptiveAvgPool2d: bin i spans [floor(i*in/out), ceil((i+1)*in/out)); None keeps the input size;
    output larger than input repeats. Catches wrong bin boundaries (e.g. uniform floor bins)."""
    x = torch.randn(2, 3, *insize, device=device, dtype=dtype)
    y = nn.AdaptiveAvgPool2d(outsize)(x)
    assert_close("nn.AdaptiveAvgPool2d", y, adaptive_pool2d(np64(x), outsize, "avg"), op="reduction", args=f"{outsize} from {insize}")


@pytest.mark.parametrize("insize,outsize", [((8, 8), (4, 4)), ((7, 5), (3, 2)), ((3, 4), (5, 6)), ((10, 7), 3)])
def test_adaptive_max_pool2d(device, dtype, insize, outsize):
    """AdaptiveMaxPool2d: same bins, max, and return_indices flat into H*W; an int output size is square."""
    x = _distinct((2, 3, *insize), device, dtype)
    y, idx = nn.AdaptiveMaxPool2d(outsize, return_indices=True)(x)
    osz = (outsize, outsize) if isinstance(outsize, int) else outsize
    assert_close("nn.AdaptiveMaxPool2d", y, adaptive_pool2d(np64(x), osz, "max"), op="exact", args=f"{outsize} from {insize}")
    gathered = np.take_along_axis(np64(x).reshape(2, 3, -1), np64(idx).astype(np.int64).reshape(2, 3, -1), axis=2)
    assert_close("nn.AdaptiveMaxPool2d", gathered.reshape(y.shape), np64(y), op="exact", args="indices point at maxima")


def test_adaptive_pool1d_overlapping_bins(device):
    """7 -> 3 bins are [0, 3), [2, 5), [4, 7) (overlapping): on arange(7) the means are 1, 3, 5 and the
    maxima 2, 4, 6. Catches non-overlapping floor bins (which would give 1, 3.5, 5.5 / 2, 4, 6)."""
    assert_equal("nn.AdaptiveAvgPool2d", adaptive_bins(7, 3), [(0, 3), (2, 5), (4, 7)], args="oracle bins for 7 -> 3")
    x = torch.arange(7.0, device=device).view(1, 1, 7)
    assert_close("nn.AdaptiveAvgPool1d", nn.AdaptiveAvgPool1d(3)(x), np.array([[[1.0, 3.0, 5.0]]]), op="reduction", args="7 -> 3")
    assert_close("nn.AdaptiveMaxPool1d", nn.AdaptiveMaxPool1d(3)(x), np.array([[[2.0, 4.0, 6.0]]]), op="exact", args="7 -> 3")


def test_pooling_gradcheck(device):
    """Backward of MaxPool2d (routes to the argmax), AvgPool2d (count_include_pad=False, ceil_mode)
    and AdaptiveAvgPool2d by finite differences."""
    x = _distinct((1, 1, 5, 4), device, torch.float64).requires_grad_(True)
    for m in [nn.MaxPool2d(2, 1, padding=1), nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
              nn.AdaptiveAvgPool2d((3, 2)), nn.AdaptiveMaxPool2d(2)]:
        assert_true(f"nn.{type(m).__name__}", torch.autograd.gradcheck(m, (x,)), "gradcheck failed", args=repr(m))


_GRID = [(k, s, p, c, i) for k in (1, 2, 3) for s in (1, 2, 3) for p in (0, 1) for c in (False, True)
         for i in (False, True) if p <= k // 2]  # padding > k/2 is a documented error


@pytest.mark.parametrize("k,s,p,ceil,cip", _GRID)
def test_pool_grid(device, k, s, p, ceil, cip):
    """Exhaustive grid of Max/AvgPool2d arguments against the NumPy window loops."""
    x = _distinct((1, 2, 7, 8), device, torch.float64)
    ref, _ = max_pool2d(np64(x), k, s, p, 1, ceil)
    assert_close("nn.MaxPool2d", nn.MaxPool2d(k, s, p, ceil_mode=ceil)(x), ref, op="exact", args=f"{k},{s},{p},{ceil}")
    ref = avg_pool2d(np64(x), k, s, p, ceil, cip)
    assert_close("nn.AvgPool2d", nn.AvgPool2d(k, s, p, ceil, cip)(x), ref, op="reduction", args=f"{k},{s},{p},{ceil},{cip}")
