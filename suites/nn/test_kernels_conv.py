"""§ 4 nn.Module and layers: Conv1d/2d/3d, ConvTranspose1d/2d/3d and Linear on the production kernels.

float64 convolution dispatches to torch's slow reference kernels; float32 and bfloat16 run the kernels
users run (oneDNN/mkldnn or the ATen CPU GEMM kernels, cuDNN on CUDA), which pick code paths by memory
layout. These grids run float32 and bfloat16 forward and backward on contiguous, channels_last
(input and weight, either alone), gapped (``x[..., ::2]``), storage-offset slices and gapped
channels_last inputs, batch 0, groups/depthwise and stride/padding/dilation variety, against the
float64 NumPy references of ``suites/nn/_ref.py`` (``conv_nd``, ``conv_transpose_nd``: sums over kernel
offsets, no torch) for the forward, and float64 autograd on the same values (the slow float64 kernels,
not the ones under test) for the backward. Every comparison is per element against a K-aware bound
derived from the computation (``suites/nn/_kernels.py``: ``bound``). Realistic shapes (ResNet 3x3 on
8x64x56x56, ...) run at ``--tier full``.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.checks import assert_equal, assert_true
from suites.nn._kernels import (DTYPES, LAYOUTS, LAYOUTS_1D, abs64, assert_bounded, bound, cl_format, grads,
                                place, rand, seq, to64)
from suites.nn._ref import conv_nd, conv_transpose_nd, np64

SPATIAL = {1: (19,), 2: (9, 10), 3: (5, 6, 7)}
N = 2

# name: (C_in, C_out, kernel, kwargs, bias); per-dimension tuples are cut to the spatial rank by seq().
CONV = {
    "k3_p1": (8, 8, 3, dict(padding=1), True),
    "s2_d2_p2": (8, 8, 3, dict(stride=2, dilation=2, padding=2), True),
    "asym": (6, 8, (3, 2, 3), dict(stride=(2, 1, 1), padding=(1, 0, 1), dilation=(1, 2, 1)), True),
    "groups2_s2": (8, 12, 3, dict(groups=2, stride=2, padding=1), True),
    "depthwise": (8, 16, 3, dict(groups=8, padding=1), True),
    "k1_s2_nobias": (8, 8, 1, dict(stride=2), False),
    "same_d2": (4, 8, 3, dict(padding="same", dilation=2), True),
    "wide_k": (32, 4, 3, dict(), True),
}
TRANSPOSED = {
    "k3_p1": (8, 8, 3, dict(padding=1), True),
    "s2_p1_op1": (8, 8, 3, dict(stride=2, padding=1, output_padding=1), True),
    "asym": (6, 8, (3, 2, 3), dict(stride=(2, 1, 3), padding=(1, 0, 1), output_padding=(1, 0, 2),
                                   dilation=(1, 2, 1)), True),
    "groups2_d2": (8, 12, 3, dict(groups=2, dilation=2, stride=2, output_padding=1), True),
    "depthwise": (8, 8, 3, dict(groups=8, padding=1), True),
    "k1_s2_nobias": (8, 8, 1, dict(stride=2, output_padding=1), False),
}
# input layout, weight layout
_PAIRS = {
    "contiguous": ("contiguous", "contiguous"),
    "channels_last": ("channels_last", "channels_last"),
    "channels_last_x": ("channels_last", "contiguous"),
    "channels_last_w": ("contiguous", "channels_last"),
    "gapped": ("gapped", "gapped"),
    "offset": ("offset", "offset"),
    "channels_last_gapped": ("channels_last_gapped", "channels_last"),
}


def _config(table, name, nd):
    cin, cout, k, kw, bias = table[name]
    k = seq(k, nd) if isinstance(k, tuple) else (k,) * nd
    kw = {a: (seq(v, nd) if isinstance(v, tuple) else v) for a, v in kw.items()}
    return cin, cout, k, kw, bias


def _cases(table, fast):
    """(nd, config, layout) params over the whole cross product; those ``fast(nd, config, layout)``
    accepts run at the default tier, the others at --tier full."""
    out = []
    for nd in (1, 2, 3):
        for name in table:
            for layout in (LAYOUTS_1D if nd == 1 else LAYOUTS):
                out.append(pytest.param(nd, name, layout, id=f"{nd}d-{name}-{layout}",
                                        marks=() if fast(nd, name, layout) else pytest.mark.slow))
    return out


def _fwd_fast(nd, name, layout):
    """Default tier (forward): every config contiguous and channels_last, every layout for two configs."""
    return layout in ("contiguous", "channels_last") or name in ("k3_p1", "asym")


def _bwd_fast(nd, name, layout):
    """Default tier (backward): three configs on contiguous, channels_last and gapped inputs."""
    return name in ("k3_p1", "asym", "depthwise") and layout in ("contiguous", "channels_last", "gapped")


def _fn(nd, transposed, kw):
    f = getattr(F, f"conv_transpose{nd}d" if transposed else f"conv{nd}d")
    return lambda x, w, b: f(x, w, b, **kw)


def _api(nd, transposed):
    return f"nn.ConvTranspose{nd}d" if transposed else f"nn.Conv{nd}d"


def _build(device, dtype, nd, table, name, layout, transposed, n=N, spatial=None):
    cin, cout, k, kw, bias = _config(table, name, nd)
    g = kw.get("groups", 1)
    x = rand((n, cin, *(spatial or SPATIAL[nd])), dtype, device)
    wshape = (cin, cout // g, *k) if transposed else (cout, cin // g, *k)
    w = rand(wshape, dtype, device, scale=1 / math.sqrt(cin // g * math.prod(k)))
    b = rand((cout,), dtype, device) if bias else None
    xl, wl = _PAIRS[layout]
    return place(x, xl, nd), place(w, wl, nd), b, kw, (cin // g) * math.prod(k)


def _reference(transposed, x, w, b, kw):
    if transposed:
        return conv_transpose_nd(x, w, b, **kw)
    return conv_nd(x, w, b, **kw)


def _check_forward(device, dtype, nd, table, name, layout, transposed, n=N, spatial=None):
    x, w, b, kw, k_terms = _build(device, dtype, nd, table, name, layout, transposed, n, spatial)
    y = _fn(nd, transposed, kw)(x, w, b)
    X, W, B = np64(x), np64(w), np64(b)
    ref = _reference(transposed, X, W, B, kw)
    mag = _reference(transposed, np.abs(X), np.abs(W), None if B is None else np.abs(B), kw)
    # bfloat16 ConvTranspose may round one column per kernel tap (GEMM + col2im in bfloat16).
    rtol, atol = bound(dtype, k_terms, roundings=math.prod(w.shape[2:]) if transposed else 0)
    args = f"{name}, {layout}, x{tuple(x.shape)} strides {x.stride()}, w{tuple(w.shape)}, {kw}"
    assert_bounded(_api(nd, transposed), y, ref, mag, rtol=rtol, atol=atol, dtype=dtype, args=args)
    fmt = cl_format(nd)
    if nd == 2 and _PAIRS[layout][0] == "channels_last":  # documented: channels_last in -> channels_last out
        assert_true(_api(nd, transposed), y.is_contiguous(memory_format=fmt),
                    f"channels_last input gave output strides {y.stride()}", args=args)
    return x, w, b, kw


@pytest.mark.smoke
@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("nd,config,layout", _cases(CONV, _fwd_fast))
def test_conv_forward(device, dtype, nd, config, layout):
    """Conv1d/2d/3d forward in float32/bfloat16 on every layout. Catches a kernel that ignores
    dilation/stride/padding/groups on one layout only (channels_last, strided input), reads the gaps
    of a strided or offset input (NaN there), swaps spatial axes, computes bfloat16 with a halved or
    truncated weight, or returns contiguous output for a channels_last input."""
    _check_forward(device, dtype, nd, CONV, config, layout, transposed=False)


@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("nd,config,layout", _cases(TRANSPOSED, _fwd_fast))
def test_conv_transpose_forward(device, dtype, nd, config, layout):
    """ConvTranspose1d/2d/3d forward in float32/bfloat16 on every layout against the scatter
    reference (weight (C_in, C_out/groups, *K), output cropped by padding, extended by
    output_padding). Catches an ignored output_padding or dilation on one path, a flipped kernel,
    wrong group slicing, gaps read from a strided input."""
    _check_forward(device, dtype, nd, TRANSPOSED, config, layout, transposed=True)


def _check_backward(device, dtype, nd, table, name, layout, transposed, n=N, spatial=None):
    x, w, b, kw, _ = _build(device, dtype, nd, table, name, layout, transposed, n, spatial)
    f = _fn(nd, transposed, kw)
    api = _api(nd, transposed)
    y = f(x, w, b)
    gout = place(rand(tuple(y.shape), dtype, device), "channels_last" if _PAIRS[layout][0] == "channels_last" else
                 "contiguous", nd)
    _, got = grads(f, (x, w, b), gout)
    _, ref = grads(f, (to64(x), to64(w), to64(b)), to64(gout))
    _, mag = grads(f, (abs64(x), abs64(w), abs64(b)), abs64(gout))
    cout = y.shape[1]
    groups = kw.get("groups", 1)
    kvol = math.prod(w.shape[2:])
    per_sample = max(math.prod(y.shape[2:]), math.prod(x.shape[2:]))
    # terms per gradient element: grad_input sums C_out/groups x kernel taps; grad_weight and grad_bias
    # sum over the batch and the positions. bfloat16 kernels may round one column per kernel tap
    # (col2im) for the input gradient of a convolution, and accumulate weight/bias gradients one
    # sample at a time in a bfloat16 buffer.
    terms = {"input": (cout // groups * kvol, 0 if transposed else kvol),
             "weight": (n * per_sample, n), "bias": (n * per_sample, n)}
    args = f"{name}, {layout}, x{tuple(x.shape)} strides {x.stride()}, {kw}"
    for what, leaf, g, r, m in zip(("input", "weight", "bias"), (x, w, b), got, ref, mag):
        if leaf is None:
            continue
        rtol, atol = bound(dtype, *terms[what])
        assert_bounded(api, g, np64(r), np64(m), rtol=rtol, atol=atol, dtype=dtype, args=f"grad {what}: {args}")


@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("nd,config,layout", _cases(CONV, _bwd_fast))
def test_conv_backward(device, dtype, nd, config, layout):
    """Conv1d/2d/3d backward (input, weight and bias gradients) in float32/bfloat16 against float64
    autograd on the same values (a different kernel), per element within the K-aware bound. Catches a
    weight gradient that ignores dilation or groups on one path, an input gradient that drops the
    stride phase, a bias gradient not summed over the batch, a halved bfloat16 gradient."""
    _check_backward(device, dtype, nd, CONV, config, layout, transposed=False)


@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("nd,config,layout", _cases(TRANSPOSED, _bwd_fast))
def test_conv_transpose_backward(device, dtype, nd, config, layout):
    """ConvTranspose1d/2d/3d backward in float32/bfloat16 against float64 autograd on the same values.
    Catches a transposed-conv weight gradient with swapped (C_in, C_out) roles, a grad that ignores
    output_padding or dilation."""
    _check_backward(device, dtype, nd, TRANSPOSED, config, layout, transposed=True)
