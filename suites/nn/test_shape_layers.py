"""§ 4 nn.Module and layers (close family): padding layers, Upsample, PixelShuffle/PixelUnshuffle,
Unfold/Fold, CosineSimilarity, PairwiseDistance against float64 NumPy.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from harness.checks import assert_close, assert_equal, assert_raises
from suites.nn._ref import np64

PAD_CASES = [
    ("ZeroPad2d", lambda p: nn.ZeroPad2d(p), "constant", {}),
    ("ConstantPad2d", lambda p: nn.ConstantPad2d(p, 3.5), "constant", {"constant_values": 3.5}),
    ("ReflectionPad2d", lambda p: nn.ReflectionPad2d(p), "reflect", {}),
    ("ReplicationPad2d", lambda p: nn.ReplicationPad2d(p), "edge", {}),
    ("CircularPad2d", lambda p: nn.CircularPad2d(p), "wrap", {}),
]


@pytest.mark.smoke
@pytest.mark.parametrize("name,make,mode,kw", PAD_CASES, ids=[c[0] for c in PAD_CASES])
@pytest.mark.parametrize("padding", [1, (1, 2, 0, 3)], ids=["int", "ltrb"])
def test_padding_layers(device, dtype, name, make, mode, kw, padding):
    """Padding layers take (left, right, top, bottom) (last dim first) and pad like NumPy's
    constant/reflect/edge/wrap modes. Catches the tuple order read as (top, bottom, left, right)."""
    if not hasattr(nn, name):
        pytest.skip(f"nn.{name} is not in this torch build")
    x = torch.randn(2, 3, 4, 5, device=device, dtype=dtype)
    l, r, t, b = (padding,) * 4 if isinstance(padding, int) else padding
    ref = np.pad(np64(x), [(0, 0), (0, 0), (t, b), (l, r)], mode=mode, **kw)
    assert_close(f"nn.{name}", make(padding)(x), ref, op="exact", args=str(padding), check_dtype=dtype)


def test_padding_negative_and_1d(device):
    """Negative ZeroPad2d padding crops; ConstantPad1d pads the last dim only; ReflectionPad beyond the
    input size is an error."""
    x = torch.randn(1, 2, 5, 6, device=device, dtype=torch.float64)
    assert_close("nn.ZeroPad2d", nn.ZeroPad2d((-1, 2, 0, -2))(x), np.pad(np64(x)[:, :, :3, 1:], [(0, 0), (0, 0), (0, 0), (0, 2)]),
                 op="exact", args="(-1, 2, 0, -2)")
    y = torch.randn(2, 3, device=device, dtype=torch.float64)
    assert_close("nn.ConstantPad1d", nn.ConstantPad1d((2, 1), -1.0)(y), np.pad(np64(y), [(0, 0), (2, 1)], constant_values=-1.0),
                 op="exact", args="(2, 1), -1")
    assert_raises("nn.ReflectionPad2d", RuntimeError, nn.ReflectionPad2d(5), torch.randn(1, 1, 3, 3, device=device), args="pad 5 >= size 3")


def _lin_axis(x, axis, out, align_corners, scale=None):
    """1-d linear interpolation along axis with PyTorch's source-index rules."""
    n = x.shape[axis]
    res = []
    for i in range(out):
        if align_corners:
            src = i * (n - 1) / (out - 1) if out > 1 else 0.0
        else:
            s = (1.0 / scale) if scale else n / out
            src = max((i + 0.5) * s - 0.5, 0.0)
        i0 = min(int(math.floor(src)), n - 1)
        i1 = min(i0 + 1, n - 1)
        lam = src - i0
        res.append(np.take(x, i0, axis) * (1 - lam) + np.take(x, i1, axis) * lam)
    return np.stack(res, axis=axis)


def _nearest_axis(x, axis, out, exact=False, scale=None):
    n = x.shape[axis]
    s = (1.0 / scale) if scale else n / out
    idx = [min(int(math.floor((i + 0.5) * s if exact else i * s)), n - 1) for i in range(out)]
    return np.take(x, idx, axis)


@pytest.mark.parametrize("kw", [dict(scale_factor=2, mode="nearest"), dict(size=(5, 7), mode="nearest"),
                                dict(size=(5, 7), mode="nearest-exact"), dict(scale_factor=2, mode="bilinear"),
                                dict(size=(5, 7), mode="bilinear", align_corners=True),
                                dict(size=(5, 7), mode="bilinear", align_corners=False),
                                dict(size=(2, 3), mode="bilinear"), dict(scale_factor=1.5, mode="bilinear")],
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_upsample(device, dtype, kw):
    """Upsample nearest (src = floor(dst*in/out)), nearest-exact (floor((dst+0.5)*in/out)), bilinear with
    align_corners True (corner pixels aligned) / False (half-pixel centres, clamped at 0). Catches the
    align_corners flag ignored or inverted, size ignored in favour of scale_factor."""
    x = torch.randn(2, 3, 4, 5, device=device, dtype=dtype)
    y = nn.Upsample(**kw)(x)
    sf = kw.get("scale_factor")
    out = kw.get("size") or (int(4 * sf), int(5 * sf))
    a = np64(x)
    if kw["mode"].startswith("nearest"):
        ex = kw["mode"] == "nearest-exact"
        ref = _nearest_axis(_nearest_axis(a, 2, out[0], ex, sf), 3, out[1], ex, sf)
    else:
        ac = kw.get("align_corners", False)
        ref = _lin_axis(_lin_axis(a, 2, out[0], ac, sf), 3, out[1], ac, sf)
    assert_equal("nn.Upsample", tuple(y.shape), (2, 3) + tuple(out), args=str(kw))
    assert_close("nn.Upsample", y, ref, op="nn", args=str(kw), check_dtype=dtype)


def test_pixel_shuffle(device):
    """PixelShuffle(r): out[n, c, h*r+i, w*r+j] = in[n, c*r*r + i*r + j, h, w]; PixelUnshuffle inverts it;
    channels not divisible by r^2 is an error."""
    r = 2
    x = torch.randn(2, 12, 3, 4, device=device, dtype=torch.float64)
    a = np64(x)
    ref = np.zeros((2, 3, 6, 8))
    for c in range(3):
        for i in range(r):
            for j in range(r):
                ref[:, c, i::r, j::r] = a[:, c * r * r + i * r + j]
    y = nn.PixelShuffle(r)(x)
    assert_equal("nn.PixelShuffle", y, ref, args="upscale_factor=2")
    assert_equal("nn.PixelUnshuffle", nn.PixelUnshuffle(r)(y), a, args="downscale_factor=2 inverts")
    assert_raises("nn.PixelShuffle", RuntimeError, nn.PixelShuffle(2), torch.randn(1, 6, 2, 2, device=device), args="6 channels, r=2")


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=(2, 3), stride=2, padding=1), dict(kernel_size=2, dilation=2)],
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_unfold_fold(device, kw):
    """Unfold extracts sliding blocks as (N, C*kH*kW, L) (channel-major, then kernel row, then column,
    blocks in row-major order); Fold sums blocks back, so Fold(Unfold(x)) = x * (block count per pixel)."""
    x = torch.randn(2, 3, 5, 6, device=device, dtype=torch.float64)
    k = kw["kernel_size"] if isinstance(kw["kernel_size"], tuple) else (kw["kernel_size"],) * 2
    s, p, d = kw.get("stride", 1), kw.get("padding", 0), kw.get("dilation", 1)
    a = np.pad(np64(x), [(0, 0), (0, 0), (p, p), (p, p)])
    oh = (5 + 2 * p - d * (k[0] - 1) - 1) // s + 1
    ow = (6 + 2 * p - d * (k[1] - 1) - 1) // s + 1
    ref = np.zeros((2, 3 * k[0] * k[1], oh * ow))
    count = np.zeros(a.shape[2:])
    for bi in range(oh):
        for bj in range(ow):
            for c in range(3):
                for ki in range(k[0]):
                    for kj in range(k[1]):
                        ref[:, c * k[0] * k[1] + ki * k[1] + kj, bi * ow + bj] = a[:, c, bi * s + ki * d, bj * s + kj * d]
            for ki in range(k[0]):
                for kj in range(k[1]):
                    count[bi * s + ki * d, bj * s + kj * d] += 1
    u = nn.Unfold(**kw)(x)
    assert_close("nn.Unfold", u, ref, op="exact", args=str(kw))
    f = nn.Fold(output_size=(5, 6), **kw)(u)
    assert_close("nn.Fold", f, np64(x) * count[p:p + 5, p:p + 6], op="reduction", args=str(kw))


def test_cosine_similarity_pairwise_distance(device, dtype):
    """CosineSimilarity(dim, eps) = x1.x2 / max(|x1||x2|, eps); PairwiseDistance(p, eps, keepdim) =
    ||x1 - x2 + eps||_p over the last dim. Catches a wrong dim, eps in the wrong place, keepdim ignored."""
    x1 = torch.randn(4, 5, device=device, dtype=dtype)
    x2 = torch.randn(4, 5, device=device, dtype=dtype)
    a, b = np64(x1), np64(x2)
    cs0 = (a * b).sum(0) / np.maximum(np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0), 1e-8)
    assert_close("nn.CosineSimilarity", nn.CosineSimilarity(dim=0)(x1, x2), cs0, op="reduction", args="dim=0")
    cs1 = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-8)
    assert_close("nn.CosineSimilarity", nn.CosineSimilarity()(x1, x2), cs1, op="reduction", args="default dim=1")
    z = torch.zeros(1, 5, device=device, dtype=dtype)
    assert_close("nn.CosineSimilarity", nn.CosineSimilarity()(z, x2[:1]), np.zeros(1), op="reduction", args="zero vector: eps guard")
    for p in (2.0, 1.0, 3.0):
        ref = (np.abs(a - b + 1e-6) ** p).sum(1) ** (1 / p)
        assert_close("nn.PairwiseDistance", nn.PairwiseDistance(p=p)(x1, x2), ref, op="reduction", args=f"p={p}")
    ref = np.abs(a - b + 0.1).max(1, keepdims=True)
    assert_close("nn.PairwiseDistance", nn.PairwiseDistance(p=float("inf"), eps=0.1, keepdim=True)(x1, x2), ref, op="reduction",
                 args="p=inf, eps=0.1, keepdim=True")
