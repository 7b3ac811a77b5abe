"""§ 4 nn.Module and layers (module zoo): the 1-d and 3-d padding layers, 3-d pooling, LPPool,
FractionalMaxPool, MaxUnpool and ConvTranspose1d/3d against float64 NumPy (numpy.pad, window
reductions, scatter) and their documented shape formulas, on gapped (non-contiguous) inputs.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.nn._ref import adaptive_pool_nd, conv_transpose_nd, np64, pool_nd


def _gapped(t: torch.Tensor) -> torch.Tensor:
    """``t``'s values in a view with a gap after every element of the last dim (not contiguous)."""
    buf = torch.full((*t.shape[:-1], 2 * t.shape[-1]), float("nan"), dtype=t.dtype, device=t.device)
    buf[..., ::2] = t
    return buf[..., ::2]


# ------------------------------------------------------------------ padding 1d / 3d
_NP_MODE = {"Zero": "constant", "Constant": "constant", "Reflection": "reflect", "Replication": "edge", "Circular": "wrap"}
PADS = [f"{kind}Pad{nd}d" for kind in ("Zero", "Constant", "Reflection", "Replication", "Circular") for nd in (1, 3)]


def _make_pad(name: str, padding):
    cls = getattr(nn, name)
    return cls(padding, -2.5) if name.startswith("Constant") else cls(padding)


@pytest.mark.smoke
@pytest.mark.parametrize("name", PADS)
@pytest.mark.parametrize("form", ["int", "tuple", "unbatched"])
def test_padding_layers_1d_3d(device, dtype, name, form):
    """1-d and 3-d padding layers pad like numpy.pad (constant/reflect/edge/wrap) with the tuple read
    last dim first: (left, right) and (left, right, top, bottom, front, back). Catches reflect behaving
    like replicate (or circular), the tuple order reversed, the constant value ignored and an unbatched
    input padded along the channel dim."""
    if not hasattr(nn, name):
        pytest.skip(f"nn.{name} is not in torch {torch.__version__}")
    nd = int(name[-2])
    spatial = (5,) if nd == 1 else (3, 4, 5)
    pad = 2 if form == "int" else ((1, 3) if nd == 1 else (1, 2, 2, 0, 0, 1))
    shape = ((2,) if form != "unbatched" else ()) + (3,) + spatial
    x = torch.randn(*shape, dtype=torch.float64).to(device, dtype)
    widths = [(pad, pad)] * nd if isinstance(pad, int) else [(pad[2 * i], pad[2 * i + 1]) for i in range(nd)][::-1]
    kw = {"constant_values": -2.5} if name.startswith("Constant") else {}
    ref = np.pad(np64(x), [(0, 0)] * (x.ndim - nd) + widths, mode=_NP_MODE[name.split("Pad")[0]], **kw)
    got = _make_pad(name, pad)(_gapped(x))
    assert_close(f"nn.{name}", got, ref, op="exact", args=f"{pad}, {form}", check_dtype=dtype)


def test_padding_negative_crops_and_invalid_reflection(device):
    """Negative ZeroPad3d/ConstantPad1d widths crop (documented for constant padding); ReflectionPad1d
    wider than the input minus one is an error. Catches negative widths treated as positive."""
    x = torch.randn(1, 2, 4, 5, 6, dtype=torch.float64, device=device)
    got = nn.ZeroPad3d((-1, 2, 0, -1, 1, 0))(x)
    ref = np.pad(np64(x)[:, :, :, :4, 1:], [(0, 0), (0, 0), (1, 0), (0, 0), (0, 2)])
    assert_close("nn.ZeroPad3d", got, ref, op="exact", args="(-1, 2, 0, -1, 1, 0)")
    y = torch.randn(2, 7, dtype=torch.float64, device=device)
    assert_close("nn.ConstantPad1d", nn.ConstantPad1d((-2, 1), 9.0)(y), np.pad(np64(y)[:, 2:], [(0, 0), (0, 1)], constant_values=9.0),
                 op="exact", args="(-2, 1)")
    assert_raises("nn.ReflectionPad1d", RuntimeError, nn.ReflectionPad1d(4), torch.randn(1, 2, 4, device=device),
                  args="pad 4 >= size 4")


# ------------------------------------------------------------------ 3-d pooling
POOL3D = [
    dict(kernel=2),
    dict(kernel=(2, 3, 2), stride=(1, 2, 2), padding=(1, 1, 0)),
    dict(kernel=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel=2, stride=1, dilation=(1, 2, 2)),
]


@pytest.mark.parametrize("cfg", POOL3D, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_max_pool3d(device, dtype, cfg):
    """MaxPool3d values and (return_indices) flat D*H*W indices of the first maximum, with stride,
    padding, dilation and ceil_mode. Catches dilation ignored, padding counted as a value, indices
    flattened in the wrong order and the ceil_mode extra window dropped."""
    x = torch.randn(2, 3, 5, 6, 7, dtype=torch.float64).to(device, dtype)
    kw = dict(stride=cfg.get("stride"), padding=cfg.get("padding", 0), dilation=cfg.get("dilation", 1),
              ceil_mode=cfg.get("ceil_mode", False))
    val, idx = pool_nd(np64(x), "max", cfg["kernel"], **kw)
    got, gidx = nn.MaxPool3d(cfg["kernel"], return_indices=True, **kw)(_gapped(x))
    assert_close("nn.MaxPool3d", got, val, op="exact", args=str(cfg), check_dtype=dtype)
    assert_equal("nn.MaxPool3d", gidx, idx, args=f"{cfg} indices")


@pytest.mark.parametrize("cfg", [dict(kernel=2), dict(kernel=3, stride=2, padding=1),
                                 dict(kernel=3, stride=2, padding=1, count_include_pad=False),
                                 dict(kernel=(2, 3, 3), stride=2, padding=(0, 1, 1), ceil_mode=True),
                                 dict(kernel=2, divisor_override=3)],
                         ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_avg_pool3d(device, dtype, cfg):
    """AvgPool3d divides by the window clipped to the padded input (count_include_pad=True), by the
    in-bounds count (False) or by divisor_override. Catches count_include_pad ignored, divisor_override
    ignored, and a ceil_mode border window divided by the full kernel volume."""
    x = torch.randn(2, 3, 5, 6, 7, dtype=torch.float64).to(device, dtype)
    kw = dict(stride=cfg.get("stride"), padding=cfg.get("padding", 0), ceil_mode=cfg.get("ceil_mode", False),
              count_include_pad=cfg.get("count_include_pad", True), divisor_override=cfg.get("divisor_override"))
    ref = pool_nd(np64(x), "avg", cfg["kernel"], **kw)
    got = nn.AvgPool3d(cfg["kernel"], **kw)(_gapped(x))
    assert_close("nn.AvgPool3d", got, ref, op="nn", args=str(cfg), check_dtype=dtype)


@pytest.mark.parametrize("out", [(2, 3, 4), (1, 1, 1), (None, 2, 5), 3], ids=str)
def test_adaptive_pool3d(device, dtype, out):
    """AdaptiveAvgPool3d / AdaptiveMaxPool3d bins [floor(i*in/out), ceil((i+1)*in/out)) per dim (None keeps
    the size), max with flat indices. Catches bins computed with floor at both ends (windows that miss
    elements) and None read as 1."""
    x = torch.randn(2, 3, 5, 6, 7, dtype=torch.float64).to(device, dtype)
    assert_close("nn.AdaptiveAvgPool3d", nn.AdaptiveAvgPool3d(out)(_gapped(x)), adaptive_pool_nd(np64(x), out, "avg"),
                 op="nn", args=str(out), check_dtype=dtype)
    val, idx = adaptive_pool_nd(np64(x), out, "max")
    got, gidx = nn.AdaptiveMaxPool3d(out, return_indices=True)(_gapped(x))
    assert_close("nn.AdaptiveMaxPool3d", got, val, op="exact", args=str(out))
    assert_equal("nn.AdaptiveMaxPool3d", gidx, idx, args=f"{out} indices")


# ------------------------------------------------------------------ LPPool
def _lp_ref(x: np.ndarray, p: float, kernel, stride) -> np.ndarray:
    """(sum over the window of x^p)^(1/p), floor-mode windows (documented formula)."""
    s = pool_nd(x ** p, "avg", kernel, stride=stride, divisor_override=1)
    return s ** (1.0 / p)


LP = [("LPPool1d", 1, 3, 2), ("LPPool1d", 2.0, 2, None), ("LPPool2d", 2.0, (2, 3), (1, 2)), ("LPPool2d", 3.0, 2, None),
      ("LPPool3d", 2.0, 2, (1, 2, 2)), ("LPPool3d", 1.5, (1, 2, 2), None)]


@pytest.mark.parametrize("name,p,kernel,stride", LP, ids=[f"{c[0]}-p{c[1]}-k{c[2]}-s{c[3]}" for c in LP])
def test_lp_pool(device, dtype, name, p, kernel, stride):
    """LPPool computes (sum_window x^p)^(1/p): p = 1 is sum pooling, p = 2 the window's 2-norm; stride
    defaults to the kernel. Catches the 1/p root missing, the mean taken instead of the sum (a factor
    kernel^(1/p)) and the stride default wrong."""
    if not hasattr(nn, name):
        pytest.skip(f"nn.{name} is not in torch {torch.__version__}")
    nd = int(name[-2])
    shape = (2, 3) + (9, 8, 7)[:nd]
    x = torch.rand(*shape, dtype=torch.float64) + 0.1  # positive: x^p defined for fractional p
    if p == 2.0:
        x = x * torch.where(torch.rand(*shape) > 0.5, 1.0, -1.0).double()  # signs do not matter for even p
    x = x.to(device, dtype)
    got = getattr(nn, name)(p, kernel, stride=stride)(_gapped(x))
    assert_close(f"nn.{name}", got, _lp_ref(np64(x), p, kernel, stride), op="nn", args=f"p={p}, k={kernel}, s={stride}",
                 check_dtype=dtype)


def test_lp_pool_ceil_mode_partial_window(device):
    """With ceil_mode=True the last window may hang over the end of the input; the documented formula
    f(X) = (sum_{x in X} x^p)^(1/p) is over the window's elements. On torch 2.13 LPPool computes it as
    avg_pool(x^p) * kernel_size, which scales a partial window's sum by kernel/elements (here sqrt(3/2)
    too large for the last output): a known-failure candidate for the expectation manifest."""
    x = torch.rand(2, 3, 8, dtype=torch.float64, device=device) + 0.5
    xn = np64(x)
    ref = np.stack([np.sqrt((xn[..., i:i + 3] ** 2).sum(-1)) for i in range(0, 8, 2)], -1)  # 4 windows, last [6, 8)
    got = nn.LPPool1d(2, 3, stride=2, ceil_mode=True)(x)
    assert_equal("nn.LPPool1d", tuple(got.shape), (2, 3, 4), args="ceil_mode output length")
    assert_close("nn.LPPool1d", got, ref, op="nn", args="p=2, k=3, s=2, ceil_mode=True, L=8")


# ------------------------------------------------------------------ FractionalMaxPool
def _intervals(u: float, size: int, out: int, k: int) -> list[int]:
    """Window starts of fractional max pooling (Graham 2014, pseudo-random sequence): with
    alpha = (size - k) / (out - 1), start_i = floor((i + u) alpha) - floor(u alpha), the last at size - k."""
    if out == 1:
        return [size - k]
    alpha = (size - k) / (out - 1)
    return [int(math.floor((i + u) * alpha)) - int(math.floor(u * alpha)) for i in range(out - 1)] + [size - k]


@pytest.mark.parametrize("nd", [2, 3])
@pytest.mark.parametrize("spec", ["output_size", "output_ratio"])
def test_fractional_max_pool_windows(device, nd, spec):
    """FractionalMaxPool2d/3d with given samples (one u per plane, the same in every dim): output size
    from output_size or floor(in * output_ratio), each output the max of the kernel window starting at
    the pseudo-random sequence, indices flat into the plane. Catches the sequence's last window not
    ending at the border, output_ratio ignored, and indices not matching the values."""
    k = 2
    sizes = (9, 11) if nd == 2 else (7, 8, 9)
    x = torch.randn(2, 3, *sizes, dtype=torch.float64, device=device)
    outs = (4, 6) if nd == 2 else (3, 4, 5)
    u = torch.rand(2, 3, dtype=torch.float64) * 0.98 + 0.01
    samples = u[..., None].expand(2, 3, nd).contiguous().to(device)
    cls = nn.FractionalMaxPool2d if nd == 2 else nn.FractionalMaxPool3d
    if spec == "output_size":
        mod = cls(k, output_size=outs, return_indices=True, _random_samples=samples)
    else:
        ratio = (0.5, 0.6) if nd == 2 else (0.5, 0.5, 0.6)
        outs = tuple(int(s * r) for s, r in zip(sizes, ratio))
        mod = cls(k, output_ratio=ratio, return_indices=True, _random_samples=samples)
    got, idx = mod(x)
    xn = np64(x)
    ref = np.zeros((2, 3) + outs)
    ref_idx = np.zeros((2, 3) + outs, dtype=np.int64)
    for b, c in itertools.product(range(2), range(3)):
        starts = [_intervals(float(u[b, c]), sizes[d], outs[d], k) for d in range(nd)]
        for o in itertools.product(*[range(n) for n in outs]):
            lo = [starts[d][o[d]] for d in range(nd)]
            win = xn[(b, c) + tuple(slice(lo[d], lo[d] + k) for d in range(nd))]
            j = np.unravel_index(int(np.argmax(win)), win.shape)
            ref[(b, c) + o] = win[j]
            ref_idx[(b, c) + o] = np.ravel_multi_index(tuple(lo[d] + j[d] for d in range(nd)), sizes)
    assert_close(f"nn.{cls.__name__}", got, ref, op="exact", args=f"{spec}, {outs}")
    assert_equal(f"nn.{cls.__name__}", idx, ref_idx, args=f"{spec} indices")


def test_fractional_max_pool_random_samples_invariants(device):
    """Without given samples (float32, fresh randomness): every output equals the input at its index, the
    indexed positions increase along each output row and column, and every output is the max of some
    kernel window containing its index. Catches indices pointing at non-maxima and windows overlapping
    out of order."""
    x = torch.randn(2, 3, 12, 10, device=device)
    got, idx = nn.FractionalMaxPool2d(3, output_size=(5, 4), return_indices=True)(x)
    at = np.take_along_axis(np64(x).reshape(2, 3, -1), np64(idx).reshape(2, 3, -1).astype(np.int64), 2)
    assert_close("nn.FractionalMaxPool2d", got, at.reshape(got.shape), op="exact", args="value at index")
    rows, cols = np64(idx) // 10, np64(idx) % 10
    assert_true("nn.FractionalMaxPool2d", (np.diff(rows, axis=2) >= 0).all() and (np.diff(cols, axis=3) >= 0).all(),
                "indices must be non-decreasing along output rows and columns")
    xn, gn = np64(x), np64(got)
    ok = True
    for b, c, i, j in itertools.product(range(2), range(3), range(5), range(4)):
        r, q = int(rows[b, c, i, j]), int(cols[b, c, i, j])
        windows = [xn[b, c, r0:r0 + 3, q0:q0 + 3].max() for r0 in range(max(0, r - 2), min(r, 9) + 1)
                   for q0 in range(max(0, q - 2), min(q, 7) + 1)]
        ok &= any(w == gn[b, c, i, j] for w in windows)
    assert_true("nn.FractionalMaxPool2d", ok, "an output is not the max of any 3x3 window containing its index")


# ------------------------------------------------------------------ MaxUnpool
@pytest.mark.parametrize("nd", [1, 3])
def test_max_unpool(device, dtype, nd):
    """MaxUnpool1d/3d scatter each value to its MaxPool index in a zero tensor of the documented size
    (in - 1) * stride - 2 * padding + kernel, or output_size when given. Catches indices read in a
    different flattening, the default size formula wrong and output_size ignored."""
    pool = (nn.MaxPool1d if nd == 1 else nn.MaxPool3d)(2, stride=2, return_indices=True)
    unpool = (nn.MaxUnpool1d if nd == 1 else nn.MaxUnpool3d)(2, stride=2)
    # even sizes: the default output size restores the input's; odd sizes need output_size (indices are
    # flat positions in the original volume)
    for sizes, out_size in (((8,) if nd == 1 else (4, 6, 6), None), ((9,) if nd == 1 else (5, 6, 7), "input")):
        x = torch.randn(2, 3, *sizes, dtype=torch.float64).to(device, dtype)
        val, idx = pool(x)
        target = tuple((s - 1) * 2 + 2 for s in val.shape[2:]) if out_size is None else sizes
        got = unpool(_gapped(val), idx, output_size=None if out_size is None else sizes)
        ref = np.zeros((2, 3, int(np.prod(target))))
        ref[np.arange(2)[:, None, None], np.arange(3)[None, :, None], np64(idx).reshape(2, 3, -1).astype(np.int64)] = \
            np64(val).reshape(2, 3, -1)
        assert_close(f"nn.MaxUnpool{nd}d", got, ref.reshape((2, 3) + target), op="exact", args=f"output_size={out_size}",
                     check_dtype=dtype)


# ------------------------------------------------------------------ ConvTranspose1d / 3d
CT = [
    (1, dict(stride=1)), (1, dict(stride=3, padding=2, output_padding=1, dilation=2)), (1, dict(stride=2, groups=2)),
    (3, dict(stride=1)), (3, dict(stride=(2, 1, 2), padding=(1, 0, 1), output_padding=(1, 0, 0))),
    (3, dict(stride=2, dilation=(1, 2, 1), groups=2)),
]


@pytest.mark.parametrize("nd,cfg", CT, ids=[f"{n}d-" + ",".join(f"{k}={v}" for k, v in c.items()) for n, c in CT])
def test_conv_transpose_1d_3d(device, dtype, nd, cfg):
    """ConvTranspose1d/3d as the scatter-add adjoint of convolution, cropped by padding, extended by
    output_padding, with dilation, groups and bias; the output size is (in-1)*stride - 2*padding +
    dilation*(k-1) + output_padding + 1. Catches output_padding ignored, the weight's in/out dims read
    swapped (they are (C_in, C_out/groups, *k)) and groups mixing channels."""
    torch.manual_seed(0)
    cin, cout = 4, 6
    k = 3 if nd == 1 else (2, 3, 2)
    mod = (nn.ConvTranspose1d if nd == 1 else nn.ConvTranspose3d)(cin, cout, k, bias=True, **cfg).to(device, dtype)
    sizes = (7,) if nd == 1 else (3, 4, 3)
    x = torch.randn(2, cin, *sizes, dtype=torch.float64).to(device, dtype)
    ref = conv_transpose_nd(np64(x), np64(mod.weight), np64(mod.bias), **cfg)
    got = mod(_gapped(x))
    assert_close(f"nn.ConvTranspose{nd}d", got, ref, op="matmul", args=str(cfg), check_dtype=dtype)
