"""§ 4 nn.Module and layers: pooling and normalization layers on the production kernels.

MaxPool/AvgPool 1d/2d/3d (ceil_mode, padding, dilation, count_include_pad, divisor_override),
AdaptiveAvg/MaxPool 1d/2d/3d, BatchNorm/InstanceNorm 1d/2d/3d (train and eval, running statistics),
LayerNorm and GroupNorm, in float32 and bfloat16 on contiguous, channels_last, gapped
(``x[..., ::2]``), storage-offset and gapped channels_last inputs, batch 0, and realistic shapes at
``--tier full``. Forward results are compared per element with the float64 NumPy references of
``suites/nn/_ref.py`` (``pool_nd``, ``adaptive_pool_nd``, ``batch_norm``, ``group_norm``,
``layer_norm``: window loops and plain formulas, no torch), backward with float64 autograd on the
same values (the float64 kernels, not the ones under test), both within bounds derived from the
computation (``suites/nn/_kernels.py``). Channel counts are odd (19) so vectorised channels_last
kernels run their tails. Max pooling is exact, indices included.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.checks import assert_close, assert_equal, assert_true
from suites.nn._kernels import DTYPES, abs64, assert_bounded, bound, grads, place, rand, seq, to64
from suites.nn._ref import adaptive_bins, adaptive_pool_nd, batch_norm, group_norm, layer_norm, np64, pool_nd, tup

C = 19
SPATIAL = {1: (23,), 2: (11, 12), 3: (7, 8, 9)}
LAYOUTS = {1: ("contiguous", "gapped", "offset"),
           2: ("contiguous", "channels_last", "gapped", "offset", "channels_last_gapped"),
           3: ("contiguous", "channels_last", "gapped", "offset", "channels_last_gapped")}
DEFAULT_LAYOUTS = ("contiguous", "channels_last", "gapped")

# name: kwargs (per-dimension tuples cut to the spatial rank); "max_only" entries use dilation.
POOL = {
    "k2": dict(kernel_size=2),
    "k3_s2_p1_ceil": dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    "k3_s1_p1": dict(kernel_size=3, stride=1, padding=1),
    "asym_ceil": dict(kernel_size=(3, 2, 3), stride=(2, 1, 2), padding=(1, 0, 1), ceil_mode=True),
    "k2_s3_ceil": dict(kernel_size=2, stride=3, ceil_mode=True),
}
MAX_ONLY = {"dil2": dict(kernel_size=3, stride=1, padding=1, dilation=2),
            "asym_dil": dict(kernel_size=(2, 3, 2), stride=(1, 2, 1), padding=(1, 1, 0), dilation=(2, 1, 3))}
AVG_ONLY = {"k3_s2_p1_nopad": dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
            "ceil_nopad": dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
            "divisor5": dict(kernel_size=3, stride=2, padding=1, divisor_override=5)}
DEFAULT_POOL = ("k3_s2_p1_ceil", "asym_ceil", "asym_dil", "ceil_nopad")


def _kw(kw, nd):
    return {a: (seq(v, nd) if isinstance(v, tuple) else v) for a, v in kw.items()}


def _grid(op, names, skip=lambda nd, name: False):
    """(nd, config, layout) params with ids '<op><nd>d-<config>-<layout>' (so an expectation entry can
    name one op at one rank: '*[cpu-bfloat16-avg_pool3d-*'); 2-d k3_s2_p1_ceil channels_last is smoke."""
    out = []
    for nd in (1, 2, 3):
        for name in names:
            if skip(nd, name):
                continue
            for layout in LAYOUTS[nd]:
                fast = name in DEFAULT_POOL and layout in DEFAULT_LAYOUTS
                marks = [] if fast else [pytest.mark.slow]
                if (nd, name, layout) == (2, "k3_s2_p1_ceil", "channels_last"):
                    marks.append(pytest.mark.smoke)
                out.append(pytest.param(nd, name, layout, id=f"{op}{nd}d-{name}-{layout}", marks=marks))
    return out


def _window_check(api, idx, out_pos_fn, nd, spatial, args):
    """Every returned index lies inside its own window: decoded per dimension, it is one of the
    positions ``out_pos_fn(dim, o)`` = (first, end, step) allows for output index o."""
    coords = np.unravel_index(idx.astype(np.int64), spatial)  # each: idx shape (N, C, *out)
    ok = np.ones(idx.shape, dtype=bool)
    for d in range(nd):
        o = np.arange(idx.shape[2 + d]).reshape((-1,) + (1,) * (nd - 1 - d))
        lo, hi, step = out_pos_fn(d, o)
        c = coords[d]
        ok &= (c >= lo) & (c < hi) & ((c - lo) % step == 0)
    assert_true(api, ok.all(), f"{int((~ok).sum())} indices outside their window", args=args)


def _pool_input(device, dtype, nd, layout, n=2, spatial=None, distinct=False, c=C):
    shape = (n, c, *(spatial or SPATIAL[nd]))
    if distinct:  # no ties anywhere (a permutation), so the first-maximum index is unique
        numel = math.prod(shape)
        x = (torch.randperm(numel, device=device).to(torch.float64) / max(numel, 1) * 8 - 6).reshape(shape).to(dtype)
    else:  # mostly negative: a kernel that pads with 0 instead of -inf shows
        x = rand(shape, dtype, device, offset=-2.0)
    return x, place(x, layout, nd)


def _cl_check(api, y, nd, layout, args):
    if nd == 2 and layout == "channels_last" and math.prod(y.shape[2:]) > 1:  # documented for 2-d pooling
        assert_true(api, y.is_contiguous(memory_format=torch.channels_last),
                    f"channels_last input gave output strides {y.stride()}", args=args)


def _check_max_pool(device, dtype, nd, kw, layout, n=2, spatial=None, c=C):
    api = f"nn.MaxPool{nd}d"
    distinct = dtype == torch.float32
    x0, x = _pool_input(device, dtype, nd, layout, n, spatial, distinct, c)
    y, idx = getattr(F, f"max_pool{nd}d")(x, return_indices=True, **kw)
    X = np64(x0)
    k = tup(kw["kernel_size"], nd)
    s = tup(kw.get("stride") or kw["kernel_size"], nd)
    p, d = tup(kw.get("padding", 0), nd), tup(kw.get("dilation", 1), nd)
    ref, ref_idx = pool_nd(X, "max", k, s, p, d, kw.get("ceil_mode", False))
    args = f"{kw}, {layout}, x{tuple(x.shape)} strides {x.stride()}"
    assert_close(api, y, ref, op="exact", args=args, check_dtype=dtype)
    assert_equal(api, idx.dtype, torch.int64, args="indices dtype")
    if distinct:
        assert_equal(api, idx, ref_idx, args=f"{args}, return_indices")
    elif X.size:  # ties possible in bfloat16: the index must point at a maximum inside its own window
        sp = X.shape[2:]
        flat_idx = np64(idx).astype(np.int64).reshape(*X.shape[:2], -1)
        gathered = np.take_along_axis(X.reshape(*X.shape[:2], -1), flat_idx, axis=2).reshape(ref.shape)
        assert_close(api, gathered, ref, op="exact", args=f"{args}: x[indices] == output")
        _window_check(api, np64(idx), lambda dd, o: (o * s[dd] - p[dd], o * s[dd] - p[dd] + d[dd] * (k[dd] - 1) + 1,
                                                      d[dd]), nd, sp, args)
    _cl_check(api, y, nd, layout, args)


def _check_avg_pool(device, dtype, nd, kw, layout, n=2, spatial=None, c=C):
    api = f"nn.AvgPool{nd}d"
    x0, x = _pool_input(device, dtype, nd, layout, n, spatial, c=c)
    y = getattr(F, f"avg_pool{nd}d")(x, **kw)
    X = np64(x0)
    k = tup(kw["kernel_size"], nd)
    s = tup(kw.get("stride") or kw["kernel_size"], nd)
    a = (k, s, tup(kw.get("padding", 0), nd), 1, kw.get("ceil_mode", False), kw.get("count_include_pad", True),
         kw.get("divisor_override"))
    ref, mag = pool_nd(X, "avg", *a), pool_nd(np.abs(X), "avg", *a)
    rtol, atol = bound(dtype, math.prod(k))  # a sum of at most kernel-volume terms and one division
    args = f"{kw}, {layout}, x{tuple(x.shape)} strides {x.stride()}"
    assert_bounded(api, y, ref, mag, rtol=rtol, atol=atol, dtype=dtype, args=args)
    _cl_check(api, y, nd, layout, args)


@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("nd,config,layout", _grid("max_pool", list(POOL) + list(MAX_ONLY)))
def test_max_pool(device, dtype, nd, config, layout):
    """MaxPool1d/2d/3d in float32/bfloat16 on every layout: values exact, indices flat into the
    unpadded input (the first maximum for tie-free float32 data; inside its own window and at a
    maximum for bfloat16). Catches ignored ceil_mode/dilation/padding on the channels_last or
    strided path, zero instead of -inf padding, indices into the padded input, a wrong vector tail
    (19 channels), contiguous output for a channels_last input."""
    _check_max_pool(device, dtype, nd, _kw({**POOL, **MAX_ONLY}[config], nd), layout)


@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("nd,config,layout", _grid("avg_pool", list(POOL) + list(AVG_ONLY),
                                                   skip=lambda nd, name: nd == 1 and name == "divisor5"))
def test_avg_pool(device, dtype, nd, config, layout):
    """AvgPool1d/2d/3d in float32/bfloat16 on every layout, within the K-aware bound of a
    kernel-volume sum. Catches count_include_pad or divisor_override ignored on one path, ceil_mode
    windows divided by the full instead of the clipped size, a sum accumulated in bfloat16."""
    _check_avg_pool(device, dtype, nd, _kw({**POOL, **AVG_ONLY}[config], nd), layout)


ADAPTIVE = {1: [(5,), (1,), (31,)], 2: [(4, 5), (1, 1), (3, None), (13, 7)], 3: [(3, 4, 5), (1, 1, 1), (7, 2, 10)]}


def _adaptive_cases(op):
    out = []
    for nd, sizes in ADAPTIVE.items():
        for i, size in enumerate(sizes):
            for layout in LAYOUTS[nd]:
                fast = i == 0 and layout in DEFAULT_LAYOUTS
                sid = "global" if all(o == 1 for o in size) else "x".join(map(str, size))
                out.append(pytest.param(nd, size, layout, id=f"{op}{nd}d-{sid}-{layout}",
                                        marks=() if fast else pytest.mark.slow))
    return out


def _outs(sp, size):
    return tuple(sp[i] if o is None else o for i, o in enumerate(size))


@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("nd,size,layout", _adaptive_cases("adaptive_avg_pool"))
def test_adaptive_avg_pool(device, dtype, nd, size, layout):
    """AdaptiveAvgPool1d/2d/3d in float32/bfloat16 on every layout: bins [floor(i*in/out),
    ceil((i+1)*in/out)) (overlapping when out does not divide in), None keeps the size, an output
    larger than the input repeats, within the bound of a bin-sized sum. Catches uniform floor bins,
    a channels_last kernel that mixes channels in its vector tail, a bfloat16 running sum."""
    _check_adaptive_avg(device, dtype, nd, size, layout)


def _check_adaptive_avg(device, dtype, nd, size, layout, n=2, spatial=None, c=C):
    x0, x = _pool_input(device, dtype, nd, layout, n, spatial, c=c)
    X = np64(x0)
    sp = X.shape[2:]
    args = f"output_size={size}, {layout}, x{tuple(x.shape)} strides {x.stride()}"
    api = f"nn.AdaptiveAvgPool{nd}d"
    y = getattr(F, f"adaptive_avg_pool{nd}d")(x, size)
    outs = _outs(sp, size)
    longest = math.prod(max(b - a for a, b in adaptive_bins(sp[i], outs[i])) for i in range(nd))
    rtol, atol = bound(dtype, longest)
    assert_bounded(api, y, adaptive_pool_nd(X, size, "avg"), adaptive_pool_nd(np.abs(X), size, "avg"), rtol=rtol,
                   atol=atol, dtype=dtype, args=args)
    _cl_check(api, y, nd, layout, args)


@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("nd,size,layout", _adaptive_cases("adaptive_max_pool"))
def test_adaptive_max_pool(device, dtype, nd, size, layout):
    """AdaptiveMaxPool1d/2d/3d in float32/bfloat16 on every layout: values exact, indices flat into
    the input and inside their own bin (the first maximum for tie-free float32 data). Catches wrong
    bin boundaries, indices relative to the bin instead of the input."""
    _check_adaptive_max(device, dtype, nd, size, layout)


def _check_adaptive_max(device, dtype, nd, size, layout, n=2, spatial=None, c=C):
    x0, x = _pool_input(device, dtype, nd, layout, n, spatial, distinct=dtype == torch.float32, c=c)
    X = np64(x0)
    sp = X.shape[2:]
    outs = _outs(sp, size)
    args = f"output_size={size}, {layout}, x{tuple(x.shape)} strides {x.stride()}"
    api = f"nn.AdaptiveMaxPool{nd}d"
    y, idx = getattr(F, f"adaptive_max_pool{nd}d")(x, size, return_indices=True)
    ref, ref_idx = adaptive_pool_nd(X, size, "max")
    assert_close(api, y, ref, op="exact", args=args, check_dtype=dtype)
    if dtype == torch.float32:
        assert_equal(api, idx, ref_idx, args=f"{args}, return_indices")
    bins = [np.array(adaptive_bins(sp[i], outs[i])) for i in range(nd)]
    _window_check(api, np64(idx), lambda d, o: (bins[d][o, 0], bins[d][o, 1], 1), nd, sp, args)
    _cl_check(api, y, nd, layout, args)


_LARGE = {1: ((4096,), (2,)), 2: ((64, 64), (1, 2)), 3: ((16, 16, 16), (1, 1, 2))}


@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("nd,op", [pytest.param(nd, op, id=f"{op}{nd}d") for nd in (1, 2, 3)
                                   for op in ("avg_pool", "adaptive_avg_pool")])
def test_avg_pool_large_window(device, dtype, nd, op):
    """Average pooling over windows of 2048 positive elements (mean ~1). A sum kept in bfloat16 stops
    growing at 256 (256 + 1 rounds back to 256) and returns a fraction of the mean; the bound of a
    2048-term float32 sum rounded once to bfloat16 catches it, and a sum over the wrong window."""
    sp, out = _LARGE[nd]
    x = rand((2, 3, *sp), dtype, device, scale=0.25, offset=1.0)
    X = np64(x)
    if op == "avg_pool":
        y = getattr(F, f"avg_pool{nd}d")(x, tuple(s // o for s, o in zip(sp, out)))
        api = f"nn.AvgPool{nd}d"
    else:
        y = getattr(F, f"adaptive_avg_pool{nd}d")(x, out)
        api = f"nn.AdaptiveAvgPool{nd}d"
    # out divides the input size, so the adaptive bins are exactly the avg_pool windows
    ref, mag = adaptive_pool_nd(X, out, "avg"), adaptive_pool_nd(np.abs(X), out, "avg")
    rtol, atol = bound(dtype, math.prod(sp) // math.prod(out))
    assert_bounded(api, y, ref, mag, rtol=rtol, atol=atol, dtype=dtype, args=f"x{tuple(x.shape)} -> {tuple(y.shape)}")


def _pool_fn(op, nd, kw):
    f = getattr(F, f"{op}{nd}d")
    if op.startswith("adaptive"):
        return lambda t: f(t, kw["output_size"])
    return lambda t: f(t, **kw)


def _pool_backward(device, dtype, nd, op, kw, layout, n=2, spatial=None, c=C):
    x0, x = _pool_input(device, dtype, nd, layout, n, spatial, distinct=True, c=c)
    f = _pool_fn(op, nd, kw)
    # each input position sums the gradients of the windows that contain it: at most kernel-volume
    # of them (adaptive bins overlap by at most one position per dim: at most 2**nd)
    overlap = 2 ** nd if op.startswith("adaptive") else math.prod(tup(kw["kernel_size"], nd))
    y = f(x)
    g = place(rand(tuple(y.shape), dtype, device), "channels_last" if layout == "channels_last" else "contiguous", nd)
    _, (gx,) = grads(f, (x,), g)
    _, (rx,) = grads(f, (to64(x),), to64(g))
    _, (mx,) = grads(f, (to64(x),), abs64(g))  # the backward is linear in the output gradient
    rtol, atol = bound(dtype, overlap, roundings=overlap)  # bfloat16 may round after each addition
    api = "nn." + "".join(w.title() for w in op.split("_")) + f"{nd}d"
    args = f"backward, {kw}, {layout}, x{tuple(x.shape)} strides {x.stride()}"
    assert_bounded(api, gx, np64(rx), np64(mx), rtol=rtol, atol=atol, dtype=dtype, args=args)


_POOL_BWD = [("max_pool", "k3_s2_p1_ceil"), ("max_pool", "asym_dil"), ("avg_pool", "k3_s2_p1_ceil"),
             ("avg_pool", "ceil_nopad"), ("avg_pool", "divisor5"), ("adaptive_avg_pool", (3, 4, 5)),
             ("adaptive_max_pool", (3, 4, 5))]


def _pool_bwd_cases():
    out = []
    for nd in (1, 2, 3):
        for op, cfg in _POOL_BWD:
            if nd == 1 and cfg == "divisor5":
                continue
            for layout in LAYOUTS[nd]:
                main = cfg not in ("divisor5", "ceil_nopad")
                fast = layout in ("contiguous", "channels_last") and main
                if not (fast or main or layout == "contiguous"):
                    continue  # full tier: the main configs on every layout, the others contiguous
                name = cfg if isinstance(cfg, str) else "x".join(map(str, cfg[:nd]))
                out.append(pytest.param(nd, op, cfg, layout, id=f"{op}{nd}d-{name}-{layout}",
                                        marks=() if fast else pytest.mark.slow))
    return out


@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("nd,op,cfg,layout", _pool_bwd_cases())
def test_pool_backward(device, dtype, nd, op, cfg, layout):
    """Max/Avg/AdaptiveAvg/AdaptiveMax pooling backward in float32/bfloat16 against float64 autograd
    on the same values. Catches a max-pool gradient routed to the wrong element of a window (or into
    the padding), an avg-pool gradient that ignores count_include_pad/divisor_override/ceil_mode, and
    overlapping windows whose gradients overwrite instead of add."""
    if op.startswith("adaptive"):
        kw = {"output_size": cfg[:nd]}
    else:
        kw = _kw({**POOL, **MAX_ONLY, **AVG_ONLY}[cfg], nd)
    _pool_backward(device, dtype, nd, op, kw, layout)


_ZERO_POOL = {"max_pool": dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
              "avg_pool": dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
              "adaptive_avg_pool": dict(output_size=(3, 4, 5)), "adaptive_max_pool": dict(output_size=(3, 4, 5))}


@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("nd,op", [pytest.param(nd, op, id=f"{op}{nd}d") for nd in (1, 2, 3) for op in _ZERO_POOL])
def test_pool_zero_batch(device, dtype, nd, op):
    """Batch 0: every pooling layer returns (0, C, *out) with the documented output size and the
    input dtype, and its backward an empty gradient of the input's shape. Catches a crash or a
    wrong shape on zero-size input."""
    kw = dict(_ZERO_POOL[op])
    if "output_size" in kw:
        kw["output_size"] = kw["output_size"][:nd]
    layout = "channels_last" if nd > 1 else "contiguous"
    x = place(rand((0, C, *SPATIAL[nd]), dtype, device), layout, nd).requires_grad_(True)
    f = _pool_fn(op, nd, kw)
    y = f(x)
    if "kernel_size" in kw:  # the documented output size, from the reference on one sample
        ref_shape = pool_nd(np.zeros((1, 1, *SPATIAL[nd])), "avg", kw["kernel_size"], kw["stride"], kw["padding"], 1,
                            kw["ceil_mode"]).shape[2:]
    else:
        ref_shape = tuple(kw["output_size"])
    api = "nn." + "".join(w.title() for w in op.split("_")) + f"{nd}d"
    assert_equal(api, tuple(y.shape), (0, C, *ref_shape), args=f"batch 0, {kw}")
    assert_equal(api, y.dtype, dtype, args="batch 0: result dtype")
    y.backward(torch.zeros_like(y))
    assert_equal(api, tuple(x.grad.shape), tuple(x.shape), args="batch 0: grad shape")


# Realistic shapes (--tier full): name -> (op, nd, shape, kwargs, layout)
REALISTIC_POOL = {
    "resnet_stem_maxpool": ("max_pool", 2, (2, 64, 112, 112), dict(kernel_size=3, stride=2, padding=1), "channels_last"),
    "resnet_head_avgpool": ("adaptive_avg_pool", 2, (8, 512, 7, 7), dict(output_size=(1, 1)), "channels_last"),
    "inception_avgpool": ("avg_pool", 2, (4, 192, 35, 35), dict(kernel_size=3, stride=1, padding=1,
                                                                 count_include_pad=False), "contiguous"),
    "vgg_maxpool_ceil": ("max_pool", 2, (2, 128, 57, 57), dict(kernel_size=2, stride=2, ceil_mode=True), "contiguous"),
    "video_maxpool3d": ("max_pool", 3, (1, 64, 8, 56, 56), dict(kernel_size=(1, 3, 3), stride=(1, 2, 2),
                                                                padding=(0, 1, 1)), "channels_last"),
    "audio_avgpool1d": ("avg_pool", 1, (4, 64, 4000), dict(kernel_size=4, stride=4), "contiguous"),
    "adaptive_max_7x7": ("adaptive_max_pool", 2, (4, 256, 30, 30), dict(output_size=(7, 7)), "channels_last"),
}


@pytest.mark.slow
@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("name", list(REALISTIC_POOL))
def test_pool_realistic(device, dtype, name):
    """Realistic pooling shapes (ResNet stem max pool and head average pool, Inception 3x3 average
    pool, VGG ceil_mode pool, a video 3-d pool, an audio 1-d pool) in float32/bfloat16, forward and
    backward: the multi-threaded paths over many channels and planes."""
    op, nd, shape, kw, layout = REALISTIC_POOL[name]
    n, c, spatial = shape[0], shape[1], shape[2:]
    if op == "max_pool":
        _check_max_pool(device, dtype, nd, kw, layout, n=n, spatial=spatial, c=c)
    elif op == "avg_pool":
        _check_avg_pool(device, dtype, nd, kw, layout, n=n, spatial=spatial, c=c)
    elif op == "adaptive_avg_pool":
        _check_adaptive_avg(device, dtype, nd, kw["output_size"], layout, n=n, spatial=spatial, c=c)
    else:
        _check_adaptive_max(device, dtype, nd, kw["output_size"], layout, n=n, spatial=spatial, c=c)
    _pool_backward(device, dtype, nd, op, kw, layout, n=n, spatial=spatial, c=c)


# ---------------------------------------------------------------- normalization
def _norm_bound(X, axes, w, b, gout=None):
    """Per-element magnitudes of a normalization's terms, for the forward and the gradients.

    With x_hat = (x - mu) * rstd over ``axes`` and S = rstd * mean|x| (large when the mean is far
    from 0 relative to the spread): a float32 mean over n elements is off by gamma_n * mean|x|, which
    moves x_hat by gamma_n * S; a variance summed from the deviations (two-pass or Welford) is off by
    gamma_n relative (the first-order effect of the mean error cancels), which scales x_hat by
    gamma_n. So y = x_hat * w + b is off by gamma_n * |w| * (S + |x_hat|): the forward magnitude. A
    one-pass E[x^2] - E[x]^2 variance is off by gamma_n * S^2 relative and exceeds it once S is large.
    The input gradient rstd * w * (g - mean(g) - x_hat * mean(g * x_hat)) sums terms of size
    (1 + S)(S + |x_hat|) |g w| rstd. Returns a dict of magnitude arrays."""
    mu = X.mean(axis=axes, keepdims=True)
    rstd = 1 / np.sqrt(X.var(axis=axes, keepdims=True) + 1e-5)
    xh = np.abs((X - mu) * rstd)
    s = rstd * np.abs(X).mean(axis=axes, keepdims=True)
    aw = 1.0 if w is None else np.abs(w)
    ab = 0.0 if b is None else np.abs(b)
    out = {"y": aw * (s + xh) + ab}
    if gout is not None:
        gw = np.abs(gout) * aw
        red = (1 + s) * (s + xh)
        out["x"] = rstd * (1 + s) * (gw + gw.mean(axis=axes, keepdims=True) + red * (gw * red).mean(axis=axes, keepdims=True))
        out["g_red"] = np.abs(gout) * red  # summed over the parameter's reduction axes by the caller
        out["g_abs"] = np.abs(gout)
    return out


def _grouped(X, groups):
    """(N, C, *S) -> (N, G, C/G, *S): the statistics of GroupNorm/InstanceNorm are over axes 2..."""
    return X.reshape(X.shape[0], groups, X.shape[1] // groups, *X.shape[2:])


class _Norm:
    """One normalization case: the module, how to view its input for statistics, its reference."""

    def __init__(self, kind, nd, dtype, device, c, affine=True, groups=None, normalized=None, track=True,
                 momentum=0.1):
        self.kind, self.nd, self.affine, self.groups, self.normalized = kind, nd, affine, groups, normalized
        self.momentum = momentum
        self.c = c
        if kind == "batch":
            cls = {0: nn.BatchNorm1d, 1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[nd]
            self.m = cls(c, affine=affine, track_running_stats=track, momentum=momentum, device=device, dtype=dtype)
        elif kind == "instance":
            cls = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[nd]
            self.m = cls(c, affine=affine, track_running_stats=track, momentum=momentum, device=device, dtype=dtype)
        elif kind == "group":
            self.m = nn.GroupNorm(groups, c, affine=affine, device=device, dtype=dtype)
        else:
            self.m = nn.LayerNorm(normalized, elementwise_affine=affine, device=device, dtype=dtype)
        with torch.no_grad():  # non-trivial parameters and running statistics
            for p in self.m.parameters():
                p.copy_(rand(tuple(p.shape), dtype, device, scale=0.5, offset=1.0))
            if getattr(self.m, "running_mean", None) is not None:
                self.m.running_mean.copy_(rand((c,), dtype, device, scale=0.5))
                self.m.running_var.copy_(torch.rand(c, device=device).add(0.5).to(dtype))

    def api(self):
        return f"nn.{type(self.m).__name__}"

    def params(self):
        w = np64(self.m.weight) if self.affine else None
        b = np64(self.m.bias) if self.affine else None
        return w, b

    def view(self, X):
        """(array whose stats axes are ``axes``, axes, parameter broadcast shape)."""
        if self.kind == "batch":
            return X, (0,) + tuple(range(2, X.ndim)), (1, -1) + (1,) * (X.ndim - 2)
        if self.kind in ("group", "instance"):
            g = self.groups if self.kind == "group" else X.shape[1]
            xg = _grouped(X, g)
            return xg, tuple(range(2, xg.ndim)), (1, g, -1) + (1,) * (X.ndim - 2)
        k = len(self.normalized)
        return X, tuple(range(X.ndim - k, X.ndim)), tuple(self.normalized)

    def reference(self, X, training):
        w, b = self.params()
        if self.kind == "batch":
            rm, rv = np64(self.m.running_mean), np64(self.m.running_var)
            use_batch = training or rm is None
            mom = self.momentum
            if mom is None:  # momentum=None: cumulative average, factor 1 / (batches seen + 1)
                mom = 1.0 / (int(self.m.num_batches_tracked) + 1)
            return batch_norm(X, w, b, self.m.eps, rm, rv, use_batch, mom)
        if self.kind == "instance":
            if not training and self.m.track_running_stats:
                y, _, _ = batch_norm(X, w, b, self.m.eps, np64(self.m.running_mean), np64(self.m.running_var), False)
                return y, None, None
            y = group_norm(X, X.shape[1], w, b, self.m.eps)
            if self.m.track_running_stats:  # running stats: momentum update with the batch mean of instance stats
                xs = X.reshape(X.shape[0], X.shape[1], -1)
                cnt = xs.shape[-1]
                mu, var = xs.mean(-1).mean(0), (xs.var(-1) * cnt / (cnt - 1)).mean(0)
                m = self.momentum
                return y, (1 - m) * np64(self.m.running_mean) + m * mu, (1 - m) * np64(self.m.running_var) + m * var
            return y, None, None
        if self.kind == "group":
            return group_norm(X, self.groups, w, b, self.m.eps), None, None
        return layer_norm(X, len(self.normalized), w, b, self.m.eps), None, None

    def magnitudes(self, X, training, gout=None):
        w, b = self.params()
        xv, axes, pshape = self.view(X)
        wv = None if w is None else w.reshape(pshape)
        bv = None if b is None else b.reshape(pshape)
        use_running = not training and getattr(self.m, "running_mean", None) is not None and (
            self.kind == "batch" or self.m.track_running_stats)
        if use_running:  # eval with running stats: y = (x - rm) * rstd * w + b, one fused multiply-add
            rs = (1, -1) + (1,) * (X.ndim - 2)
            rstd = 1 / np.sqrt(np64(self.m.running_var).reshape(rs) + self.m.eps)
            aw = 1.0 if w is None else np.abs(w.reshape(rs))
            ab = 0.0 if b is None else np.abs(b.reshape(rs))
            out = {"y": aw * rstd * (np.abs(X) + np.abs(np64(self.m.running_mean).reshape(rs))) + ab, "n": 4}
            if gout is not None:
                out["x"] = np.abs(gout) * aw * rstd
                xh = np.abs((X - np64(self.m.running_mean).reshape(rs)) * rstd)
                out["g_red"], out["g_abs"] = np.abs(gout) * xh, np.abs(gout)
            return out
        gv = None if gout is None else gout.reshape(xv.shape)
        out = _norm_bound(xv, axes, wv, bv, gv)
        out = {k: v.reshape(X.shape) for k, v in out.items()}
        out["n"] = math.prod(xv.shape[a] for a in axes)
        return out

    def param_axes(self, ndim):
        """Axes a parameter gradient sums over (everything but the parameter's own dims)."""
        if self.kind == "layer":
            return tuple(range(ndim - len(self.normalized)))
        return (0,) + tuple(range(2, ndim))


def _norm_input(device, dtype, shape, layout, offset=0.0):
    x0 = rand(shape, dtype, device, scale=2.0, offset=offset)
    return x0, place(x0, layout)


# name: (kind, shape, kwargs); C = 19 (24 for GroupNorm)
NORMS = {
    "batch1d_2d": ("batch", (8, C), dict()),
    "batch1d": ("batch", (4, C, 23), dict()),
    "batch2d": ("batch", (4, C, 11, 12), dict(momentum=0.3)),
    "batch3d": ("batch", (2, C, 5, 6, 7), dict()),
    "batch2d_noaffine": ("batch", (4, C, 11, 12), dict(affine=False)),
    "batch2d_momentum_none": ("batch", (4, C, 11, 12), dict(momentum=None)),
    "batch2d_no_running": ("batch", (4, C, 11, 12), dict(track=False)),
    "instance1d": ("instance", (4, C, 23), dict(affine=True, track=False)),
    "instance2d": ("instance", (4, C, 11, 12), dict(affine=True, track=False)),
    "instance3d_tracked": ("instance", (2, C, 5, 6, 7), dict(affine=False, track=True)),
    "group2d": ("group", (4, 24, 11, 12), dict(groups=6)),
    "group1d": ("group", (4, 24, 23), dict(groups=4)),
    "group3d": ("group", (2, 24, 5, 6, 7), dict(groups=8)),
    "group2d_g1": ("group", (4, 24, 11, 12), dict(groups=1)),
    "group2d_gc_noaffine": ("group", (4, 24, 11, 12), dict(groups=24, affine=False)),
    "layer_seq": ("layer", (4, 7, 40), dict(normalized=(40,))),
    "layer_2dims": ("layer", (4, 7, 5, 8), dict(normalized=(5, 8))),
    "layer_image": ("layer", (4, C, 11, 12), dict(normalized=(C, 11, 12))),
}
# Realistic shapes (--tier full), same format, with the layout they run in.
REALISTIC_NORMS = {
    "bn2d_resnet": ("batch", (8, 64, 56, 56), dict()),
    "bn1d_mlp": ("batch", (256, 1024), dict()),
    "ln_transformer": ("layer", (4, 512, 768), dict(normalized=(768,))),
    "gn_32x256": ("group", (4, 256, 28, 28), dict(groups=32)),
    "in2d_style": ("instance", (4, 64, 64, 64), dict(affine=True, track=False)),
}
REALISTIC_NORM_LAYOUT = {"bn2d_resnet": "channels_last", "gn_32x256": "channels_last"}
DEFAULT_NORMS = ("batch1d_2d", "batch2d", "batch3d", "batch2d_momentum_none", "instance2d", "instance3d_tracked",
                 "group2d", "group3d", "layer_seq", "layer_image")


def _norm_layouts(shape):
    nd = len(shape) - 2
    if nd <= 0:
        return ("contiguous", "offset")
    return LAYOUTS[nd]


def _norm_cases():
    """Default tier: the main configs on four layouts in train mode and contiguous in eval mode. Full
    tier adds every config contiguous and channels_last (train and eval) and the main configs on
    every layout in train mode."""
    out = []
    for name, (kind, shape, kw) in NORMS.items():
        for layout in _norm_layouts(shape):
            for mode in ("train", "eval"):
                main = name in DEFAULT_NORMS
                fast = main and layout in ("contiguous", "channels_last", "gapped", "offset") and (
                    mode == "train" or layout == "contiguous")
                full = layout in ("contiguous", "channels_last") or (main and mode == "train")
                if fast or full:
                    marks = [] if fast else [pytest.mark.slow]
                    if (name, layout, mode) == ("batch2d", "channels_last", "train"):
                        marks.append(pytest.mark.smoke)
                    out.append(pytest.param(name, layout, mode, id=f"{name}-{layout}-{mode}", marks=marks))
    return out


def _make_norm(device, dtype, name):
    kind, shape, kw = {**NORMS, **REALISTIC_NORMS}[name]
    nd = len(shape) - 2
    return _Norm(kind, nd, dtype, device, shape[1], **kw), shape


def _check_norm(device, dtype, name, layout, mode, shape=None, backward=True):
    norm, default_shape = _make_norm(device, dtype, name)
    shape = shape or default_shape
    m = norm.m
    m.train(mode == "train")
    x0, x = _norm_input(device, dtype, shape, layout, offset=1.5)
    X = np64(x0)
    ref, rm, rv = norm.reference(X, mode == "train")
    old = {k: getattr(m, k).detach().clone() for k in ("running_mean", "running_var") if getattr(m, k, None) is not None}
    y = m(x)
    mags = norm.magnitudes(X, mode == "train")
    api = norm.api()
    args = f"{name}, {mode}, {layout}, x{tuple(x.shape)} strides {x.stride()}"
    # bfloat16 kernels may round the statistics (mean, rstd) and the per-channel scale and shift
    # (w * rstd, b - mean * w * rstd) to bfloat16 when the parameters are bfloat16: four roundings.
    rtol, atol = bound(dtype, mags["n"] + 4, roundings=4)
    assert_bounded(api, y, ref, mags["y"], rtol=rtol, atol=atol, dtype=dtype, args=args)
    if norm.kind == "batch" and len(shape) == 4 and layout == "channels_last":  # documented
        assert_true(api, y.is_contiguous(memory_format=torch.channels_last),
                    f"channels_last input gave output strides {y.stride()}", args=args)
    if rm is not None and mode == "train":
        n = mags["n"] if norm.kind == "batch" else math.prod(shape[2:])
        mom = 1.0 if norm.momentum is None else norm.momentum  # momentum=None on a fresh module: factor 1
        xs = np.moveaxis(X, 1, 0).reshape(X.shape[1], -1)
        s = np.abs(xs).mean(1) / xs.std(1)
        mag_m = (1 - mom) * np.abs(np64(old["running_mean"])) + mom * np.abs(xs).mean(1)
        mag_v = (1 - mom) * np.abs(np64(old["running_var"])) + mom * xs.var(1) * (1 + s) ** 2 * 2
        # a running statistic is a mean/variance of n terms, then a momentum update (two more roundings)
        # (bfloat16 buffers: the batch statistic and (1 - momentum) * running may each be rounded)
        rtol_r, atol_r = bound(dtype, n + 3, roundings=2)
        assert_bounded(api, m.running_mean, rm, mag_m, rtol=rtol_r, atol=atol_r, args=f"running_mean: {args}")
        assert_bounded(api, m.running_var, rv, mag_v, rtol=rtol_r, atol=atol_r, args=f"running_var (unbiased): {args}")
    elif old:
        for k, v in old.items():
            assert_equal(api, getattr(m, k), v, args=f"{k} unchanged in {mode} mode")
    if not backward:
        return
    # float64 autograd of a float64 copy (running stats as before this forward; eval reads them, train
    # does not) on the same values: the float64 kernels, not the ones under test.
    m64 = copy.deepcopy(m).to(torch.float64)
    with torch.no_grad():
        for k, v in old.items():
            getattr(m64, k).copy_(v)
            getattr(m, k).copy_(v)
    names = [k for k, _ in m.named_parameters()]

    def call(mod):
        return lambda inp, *params: torch.func.functional_call(mod, dict(zip(names, params)), (inp,))

    p32 = [p.detach() for _, p in m.named_parameters()]
    g = rand(tuple(y.shape), dtype, device)
    _, got = grads(call(m), (x, *p32), g)
    _, ref_g = grads(call(m64), (to64(x0), *[to64(p) for p in p32]), to64(g))
    mags = norm.magnitudes(X, mode == "train", np64(g))
    n = mags["n"]
    # bfloat16: rstd * w, mean(g), x_hat and mean(g * x_hat) may each be rounded (four roundings)
    rtol, atol = bound(dtype, 2 * n + 6, roundings=4)
    assert_bounded(api, got[0], np64(ref_g[0]), mags["x"], rtol=rtol, atol=atol, dtype=dtype,
                   args=f"grad input: {args}")
    axes = norm.param_axes(X.ndim)
    n_p = math.prod(X.shape[a] for a in axes)
    # parameter gradients sum n_p terms of g * x_hat (x_hat itself off by gamma_n); bfloat16 kernels
    # may keep per-thread or per-sample partial sums in bfloat16
    rtol, atol = bound(dtype, n_p + n + 4, roundings=4)
    for (pname, _), gp, rp in zip(m.named_parameters(), got[1:], ref_g[1:]):
        key = "g_red" if pname == "weight" else "g_abs"
        mag = mags[key].sum(axis=axes)
        assert_bounded(api, gp, np64(rp), mag.reshape(tuple(gp.shape)), rtol=rtol, atol=atol, dtype=dtype,
                       args=f"grad {pname}: {args}")


@pytest.mark.dtypes(torch.float32)  # bfloat16 cannot hold a spread of 1 around 1000 (its spacing there is 4)
@pytest.mark.parametrize("name,layout", [("batch2d", "channels_last"), ("batch1d_2d", "contiguous"),
                                         ("layer_seq", "gapped"), ("group2d", "contiguous"),
                                         ("instance2d", "channels_last")], ids=lambda v: str(v))
def test_norm_large_mean(device, dtype, name, layout):
    """Normalization of data with mean 1000 and spread 1 (S = mean|x| / std ~ 1000) in float32: a
    two-pass or Welford variance keeps x_hat within gamma_n (S + |x_hat|); the one-pass
    E[x^2] - E[x]^2 formula loses ~S^2 u of the variance (6% here) and fails. Catches a kernel that
    switched to the one-pass variance for speed."""
    norm, shape = _make_norm(device, dtype, name)
    norm.m.train(True)
    x0 = rand(shape, dtype, device, scale=1.0, offset=1000.0)
    x = place(x0, layout)
    X = np64(x0)
    ref, _, _ = norm.reference(X, True)
    y = norm.m(x)
    mags = norm.magnitudes(X, True)
    rtol, atol = bound(dtype, mags["n"] + 4)
    assert_bounded(norm.api(), y, ref, mags["y"], rtol=rtol, atol=atol, dtype=dtype,
                   args=f"{name}, mean 1000 std 1, {layout}, x{tuple(x.shape)}")


@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("name,layout,mode", _norm_cases())
def test_norm(device, dtype, name, layout, mode):
    """BatchNorm/InstanceNorm 1d/2d/3d, GroupNorm and LayerNorm in float32/bfloat16, train and eval,
    on every layout (inputs with mean 1.5 and std 2), forward, running statistics and backward.
    Catches statistics over the wrong axes on the channels_last path, biased/unbiased variance
    swapped, momentum (or momentum=None's cumulative average) ignored, eval mode that still uses batch
    statistics or updates running stats, a naive E[x^2]-E[x]^2 variance, a gradient that drops the
    mean terms, channels mixed in a vector tail (19 channels)."""
    _check_norm(device, dtype, name, layout, mode)


@pytest.mark.slow
@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("name", list(REALISTIC_NORMS))
def test_norm_realistic(device, dtype, name):
    """Realistic normalization shapes in float32/bfloat16, train mode, forward, running statistics
    and backward: BatchNorm2d on a ResNet 8x64x56x56 channels_last activation, BatchNorm1d on a
    256x1024 MLP batch, LayerNorm(768) on 4x512 tokens, GroupNorm(32, 256), InstanceNorm2d on 64x64
    images. Catches statistics reduced across threads or blocks that drop or double a block."""
    _check_norm(device, dtype, name, REALISTIC_NORM_LAYOUT.get(name, "contiguous"), "train")
