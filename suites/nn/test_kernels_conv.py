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


_SMOKE = (2, "asym", "channels_last")


def _cases(table, fast, smoke=False):
    """(nd, config, layout) params over the whole cross product; those ``fast(nd, config, layout)``
    accepts run at the default tier, the others at --tier full; with ``smoke``, 2-d asym
    channels_last is also in the smoke tier."""
    out = []
    for nd in (1, 2, 3):
        for name in table:
            for layout in (LAYOUTS_1D if nd == 1 else LAYOUTS):
                marks = [] if fast(nd, name, layout) else [pytest.mark.slow]
                if smoke and (nd, name, layout) == _SMOKE:
                    marks.append(pytest.mark.smoke)
                out.append(pytest.param(nd, name, layout, id=f"{nd}d-{name}-{layout}", marks=marks))
    return out


def _fwd_fast(nd, name, layout):
    """Default tier (forward): every config contiguous and channels_last, every layout for two configs."""
    return layout in ("contiguous", "channels_last") or name in ("k3_p1", "asym")


def _bwd_cases(table):
    """Backward: three configs on contiguous, channels_last and gapped inputs at the default tier; at
    --tier full also on the other layouts, and the other configs on contiguous inputs."""
    out = []
    for p in _cases(table, lambda nd, name, layout: True):
        nd, name, layout = p.values
        main = name in ("k3_p1", "asym", "depthwise")
        if main and layout in ("contiguous", "channels_last", "gapped"):
            out.append(p)
        elif main or layout == "contiguous":
            out.append(pytest.param(*p.values, id=p.id, marks=pytest.mark.slow))
    return out


def _fn(nd, transposed, kw):
    f = getattr(F, f"conv_transpose{nd}d" if transposed else f"conv{nd}d")
    return lambda x, w, b: f(x, w, b, **kw)


def _api(nd, transposed):
    return f"nn.ConvTranspose{nd}d" if transposed else f"nn.Conv{nd}d"


def _values(device, dtype, nd, table, name, transposed, n=N, spatial=None):
    cin, cout, k, kw, bias = _config(table, name, nd)
    g = kw.get("groups", 1)
    x = rand((n, cin, *(spatial or SPATIAL[nd])), dtype, device)
    wshape = (cin, cout // g, *k) if transposed else (cout, cin // g, *k)
    w = rand(wshape, dtype, device, scale=1 / math.sqrt(cin // g * math.prod(k)))
    b = rand((cout,), dtype, device) if bias else None
    return x, w, b, kw, (cin // g) * math.prod(k)


def _build(device, dtype, nd, table, name, layout, transposed, n=N, spatial=None):
    x, w, b, kw, k_terms = _values(device, dtype, nd, table, name, transposed, n, spatial)
    xl, wl = _PAIRS[layout]
    return place(x, xl, nd), place(w, wl, nd), b, kw, k_terms


def _reference(transposed, x, w, b, kw):
    if transposed:
        return conv_transpose_nd(x, w, b, **kw)
    return conv_nd(x, w, b, **kw)


def _check_forward(device, dtype, nd, table, name, layouts, transposed, n=N, spatial=None):
    """The forward on the same values in each of ``layouts``, against one float64 reference."""
    x0, w0, b, kw, k_terms = _values(device, dtype, nd, table, name, transposed, n, spatial)
    X, W, B = np64(x0), np64(w0), np64(b)
    ref = _reference(transposed, X, W, B, kw)
    mag = _reference(transposed, np.abs(X), np.abs(W), None if B is None else np.abs(B), kw)
    # bfloat16 ConvTranspose may round one column per kernel tap (GEMM + col2im in bfloat16), and a
    # backend may round the convolution before adding the bias (cuDNN adds it in a second kernel).
    taps = math.prod(w0.shape[2:]) if transposed else 0
    rtol, atol = bound(dtype, k_terms, roundings=taps + (b is not None))
    for layout in layouts:
        xl, wl = _PAIRS[layout]
        x, w = place(x0, xl, nd), place(w0, wl, nd)
        y = _fn(nd, transposed, kw)(x, w, b)
        args = f"{name}, {layout}, x{tuple(x.shape)} strides {x.stride()}, w{tuple(w.shape)}, {kw}"
        assert_bounded(_api(nd, transposed), y, ref, mag, rtol=rtol, atol=atol, dtype=dtype, args=args)
        if nd == 2 and xl == "channels_last":  # documented: channels_last in -> channels_last out
            assert_true(_api(nd, transposed), y.is_contiguous(memory_format=cl_format(nd)),
                        f"channels_last input gave output strides {y.stride()}", args=args)


@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("nd,config,layout", _cases(CONV, _fwd_fast, smoke=True))
def test_conv_forward(device, dtype, nd, config, layout):
    """Conv1d/2d/3d forward in float32/bfloat16 on every layout. Catches a kernel that ignores
    dilation/stride/padding/groups on one layout only (channels_last, strided input), reads the gaps
    of a strided or offset input (NaN there), swaps spatial axes, computes bfloat16 with a halved or
    truncated weight, or returns contiguous output for a channels_last input."""
    _check_forward(device, dtype, nd, CONV, config, [layout], transposed=False)


@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("nd,config,layout", _cases(TRANSPOSED, _fwd_fast))
def test_conv_transpose_forward(device, dtype, nd, config, layout):
    """ConvTranspose1d/2d/3d forward in float32/bfloat16 on every layout against the scatter
    reference (weight (C_in, C_out/groups, *K), output cropped by padding, extended by
    output_padding). Catches an ignored output_padding or dilation on one path, a flipped kernel,
    wrong group slicing, gaps read from a strided input."""
    _check_forward(device, dtype, nd, TRANSPOSED, config, [layout], transposed=True)


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
@pytest.mark.parametrize("nd,config,layout", _bwd_cases(CONV))
def test_conv_backward(device, dtype, nd, config, layout):
    """Conv1d/2d/3d backward (input, weight and bias gradients) in float32/bfloat16 against float64
    autograd on the same values (a different kernel), per element within the K-aware bound. Catches a
    weight gradient that ignores dilation or groups on one path, an input gradient that drops the
    stride phase, a bias gradient not summed over the batch, a halved bfloat16 gradient."""
    _check_backward(device, dtype, nd, CONV, config, layout, transposed=False)


@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("nd,config,layout", _bwd_cases(TRANSPOSED))
def test_conv_transpose_backward(device, dtype, nd, config, layout):
    """ConvTranspose1d/2d/3d backward in float32/bfloat16 against float64 autograd on the same values.
    Catches a transposed-conv weight gradient with swapped (C_in, C_out) roles, a grad that ignores
    output_padding or dilation."""
    _check_backward(device, dtype, nd, TRANSPOSED, config, layout, transposed=True)


@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "transpose"])
@pytest.mark.parametrize("nd,layout", [(1, "contiguous"), (2, "contiguous"), (2, "channels_last"), (3, "contiguous"),
                                       (3, "channels_last")], ids=lambda v: str(v))
def test_conv_zero_batch(device, dtype, nd, layout, transposed):
    """Batch 0: the output is (0, C_out, *spatial) with the documented spatial size and the input
    dtype; backward gives an empty input gradient and exactly zero weight and bias gradients. Catches
    a crash or a wrong shape on a zero-size batch, and weight gradients left uninitialised."""
    table, name = (TRANSPOSED, "s2_p1_op1") if transposed else (CONV, "s2_d2_p2")
    x, w, b, kw, _ = _build(device, dtype, nd, table, name, layout, transposed, n=0)
    f = _fn(nd, transposed, kw)
    api = _api(nd, transposed)
    y = f(x, w, b)
    ref = _reference(transposed, np64(x), np64(w), np64(b), kw)
    assert_equal(api, tuple(y.shape), ref.shape, args=f"batch 0, {layout}, {kw}")
    assert_equal(api, y.dtype, dtype, args="batch 0: result dtype")
    _, (gx, gw, gb) = grads(f, (x, w, b), torch.zeros(y.shape, dtype=dtype, device=device))
    assert_equal(api, tuple(gx.shape), tuple(x.shape), args="batch 0: grad input shape")
    assert_equal(api, gw, np.zeros(tuple(w.shape)), args="batch 0: grad weight is zero")
    assert_equal(api, gb, np.zeros(tuple(b.shape)), args="batch 0: grad bias is zero")


def _linear_inputs(device, dtype, layout, n=4, t=6, fin=40, fout=24):
    x = place(rand((n, t, fin), dtype, device), {"weight_transposed": "contiguous"}.get(layout, layout), nd=1)
    w = rand((fout, fin), dtype, device, scale=1 / math.sqrt(fin))
    if layout == "weight_transposed":  # the (in, out) storage of tied/transposed weights, seen as (out, in)
        w = w.t().contiguous().t()
    elif layout != "contiguous":
        w = place(w[None], layout, nd=1)[0]
    return x, w, rand((fout,), dtype, device)


@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("layout", ["contiguous", "gapped", "offset", "weight_transposed"])
def test_linear_forward_backward(device, dtype, layout):
    """F.linear (nn.Linear) forward and backward in float32/bfloat16 on a 3-d input, gapped and
    offset inputs/weights and a transposed weight view, against x @ W^T + b in float64 (NumPy) and
    float64 autograd. Catches a GEMM that ignores the transpose flag or the leading dimension of a
    strided operand, a weight gradient not summed over all leading dims, a halved bfloat16 GEMM."""
    x, w, b = _linear_inputs(device, dtype, layout)
    n, t, fin = x.shape
    fout = w.shape[0]
    f = F.linear
    y = f(x, w, b)
    X, W, B = np64(x), np64(w), np64(b)
    args = f"{layout}, x{tuple(x.shape)} strides {x.stride()}, w strides {w.stride()}"
    # One intermediate rounding: an input that cannot be folded into one GEMM (gapped, offset) runs
    # matmul, rounds to bfloat16, then adds the bias in a second op.
    rtol, atol = bound(dtype, fin, roundings=1)
    assert_bounded("nn.Linear", y, X @ W.T + B, np.abs(X) @ np.abs(W).T + np.abs(B), rtol=rtol, atol=atol,
                   dtype=dtype, args=args)
    g = rand(tuple(y.shape), dtype, device)
    _, got = grads(f, (x, w, b), g)
    _, ref = grads(f, (to64(x), to64(w), to64(b)), to64(g))
    _, mag = grads(f, (abs64(x), abs64(w), abs64(b)), abs64(g))
    for what, terms, gg, r, m in zip(("input", "weight", "bias"), (fout, n * t, n * t), got, ref, mag):
        rtol, atol = bound(dtype, terms)
        assert_bounded("nn.Linear", gg, np64(r), np64(m), rtol=rtol, atol=atol, dtype=dtype,
                       args=f"grad {what}: {args}")


# Realistic shapes (--tier full): name -> (nd, transposed, batch, spatial, (C_in, C_out, kernel, kwargs, bias), layouts)
REALISTIC = {
    "conv2d_resnet3x3": (2, False, 8, (56, 56), (64, 64, 3, dict(padding=1), False), ("contiguous", "channels_last")),
    "conv2d_stem7x7s2": (2, False, 2, (224, 224), (3, 64, 7, dict(stride=2, padding=3), False), ("channels_last",)),
    "conv2d_depthwise": (2, False, 4, (56, 56), (96, 96, 3, dict(groups=96, padding=1), True), ("channels_last",)),
    "conv1d_dilated": (1, False, 8, (512,), (128, 128, 3, dict(padding=2, dilation=2), True), ("contiguous",)),
    "conv3d_video": (3, False, 2, (8, 28, 28), (32, 32, 3, dict(padding=1), True), ("channels_last",)),
    "convT2d_dcgan": (2, True, 8, (16, 16), (128, 64, 4, dict(stride=2, padding=1), False), ("channels_last",)),
    "convT1d_upsample": (1, True, 8, (256,), (64, 32, 4, dict(stride=2, padding=1), True), ("contiguous",)),
    "convT3d": (3, True, 2, (4, 14, 14), (32, 16, 3, dict(stride=2, padding=1, output_padding=1), True),
                ("channels_last",)),
}


@pytest.mark.slow
@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("name", list(REALISTIC))
def test_conv_realistic_forward(device, dtype, name):
    """Realistic layer shapes (ResNet 3x3 on 8x64x56x56 contiguous and channels_last, the 7x7/2 stem,
    MobileNet depthwise, a dilated 1-d conv, a video 3-d conv, DCGAN-style transposed convs) in
    float32/bfloat16: the blocked, multi-threaded kernel paths that tiny grids never reach."""
    nd, transposed, n, spatial, cfg, layouts = REALISTIC[name]
    _check_forward(device, dtype, nd, {name: cfg}, name, layouts, transposed, n=n, spatial=spatial)


@pytest.mark.slow
@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("name", ["conv2d_resnet3x3", "convT2d_dcgan"])
def test_conv_realistic_backward(device, dtype, name):
    """Backward at realistic shapes in float32/bfloat16 against float64 autograd on the same values.
    Catches weight-gradient reductions split across threads or batch blocks that drop or double a
    block, and input gradients wrong at tile borders."""
    nd, transposed, n, spatial, cfg, layouts = REALISTIC[name]
    _check_backward(device, dtype, nd, {name: cfg}, name, layouts[-1], transposed, n=n, spatial=spatial)
