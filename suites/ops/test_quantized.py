"""Operator library: quantization entry points of torch against their closed forms in NumPy float64.

Affine quantization: q = clamp(round_half_even(x / scale + zero_point), qmin, qmax) (the quantization docs'
formula; fake quantization documents round(x / scale) + zero_point), x' = (q - zp) * scale.
Checked: per-tensor and per-channel quantization and their accessors (q_scale, q_zero_point,
q_per_channel_scales/zero_points/axis, int_repr, dequantize: torch.* and Tensor.*), the dynamic qparams
of quantize_per_tensor_dynamic (min/max including 0 over the full or reduced range), fake quantization
(per tensor and per channel), the moving-average observer + fake quant step (fused_moving_avg_obs_fake_quant:
running min/max update, scale/zero point, output), choose_qparams_optimized (a range inside the data whose
quantization loss is not worse than the full range's), quantized max pooling (= max pool of int_repr) and
batch norm, the legacy fbgemm int8/fp16 linear kernels and the quantized RNN/LSTM/GRU cells built on them
(emulated exactly: dynamic uint8 activation qparams, int8 weight, integer products), the wrapped
prepacked linear, and _rowwise_prune.

fbgemm's int8 kernels multiply uint8 activations by int8 weights in pairs with int16 saturation (the reason
observers use reduce_range on x86); inputs here are non-negative with every second feature zero, so no pair
saturates and the integer emulation is exact up to float32 rounding.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_raises, assert_true

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning", "ignore::FutureWarning")

_RANGES = {torch.quint8: (0, 255), torch.qint8: (-128, 127), torch.qint32: (-(2 ** 31), 2 ** 31 - 1)}


def _q(x, scale, zp, qmin, qmax):
    return np.clip(np.round(np.asarray(x, dtype=np.float64) / scale) + zp, qmin, qmax)


def _fbgemm():
    if "fbgemm" not in torch.backends.quantized.supported_engines:
        pytest.skip("this build has no fbgemm quantized engine (torch.backends.quantized.supported_engines: "
                    f"{torch.backends.quantized.supported_engines})")


@pytest.mark.smoke
@pytest.mark.parametrize("qdtype", [torch.quint8, torch.qint8, torch.qint32], ids=str)
def test_quantize_per_tensor_accessors(device, np_rng, qdtype):
    """torch.q_scale/q_zero_point/int_repr/dequantize (and the Tensor methods) of quantize_per_tensor on a
    non-contiguous input with saturating values. Catches truncation instead of round-half-even, a missing
    clamp, a zero point added twice or ignored, dequantize not subtracting the zero point."""
    qmin, qmax = _RANGES[qdtype]
    scale, zp = 0.0625, {torch.quint8: 100, torch.qint8: -7, torch.qint32: 12}[qdtype]
    x64 = np_rng.standard_normal((6, 20)) * 4
    x64[0, :12:2] = np.array([0.03125, 0.09375, -0.03125, 1e4, -1e4, 0.0])  # exact ties (half-even), saturation
    x = torch.tensor(x64, dtype=torch.float32, device=device)[:, ::2]
    xs = x.cpu().double().numpy()
    q = torch.quantize_per_tensor(x, scale, zp, qdtype)
    assert_close("torch.q_scale", torch.q_scale(q), scale, op="exact", dtype=torch.float64)
    assert_equal("torch.q_zero_point", torch.q_zero_point(q), zp)
    assert_equal("Tensor.q_zero_point", q.q_zero_point(), zp)
    # torch.ao.quantization's documented Q(x) = round(x / scale + zero_point): ties are broken after adding zp
    want = np.clip(np.round(xs / scale + zp), qmin, qmax)
    ir = torch.int_repr(q)
    assert_true("torch.int_repr", ir.dtype == {torch.quint8: torch.uint8, torch.qint8: torch.int8,
                                                torch.qint32: torch.int32}[qdtype], f"dtype {ir.dtype}")
    assert_equal("torch.int_repr", ir, want.astype(np.int64))
    assert_equal("Tensor.int_repr", q.int_repr(), want.astype(np.int64))
    deq = (want - zp) * scale
    assert_close("torch.dequantize", torch.dequantize(q), deq, op="elementwise", check_dtype=torch.float32)
    assert_close("Tensor.dequantize", q.dequantize(), deq, op="elementwise")
    # the list overload of torch.dequantize
    outs = torch.dequantize([q, q])
    assert_close("torch.dequantize", outs[1], deq, op="elementwise", args="list of tensors")


@pytest.mark.parametrize("qdtype", [torch.quint8, torch.qint8], ids=str)
@pytest.mark.parametrize("reduce_range", [False, True])
def test_quantize_per_tensor_dynamic(np_rng, qdtype, reduce_range):
    """quantize_per_tensor_dynamic picks scale = (max(x,0) - min(x,0)) / (qmax - qmin) and zero point
    round(qmin - min/scale) over the full range, or half of it with reduce_range. Catches reduce_range
    ignored, the range not including 0, a zero point not clamped or off by one."""
    x64 = np_rng.standard_normal(64) * 2 + 0.7
    x = torch.tensor(x64, dtype=torch.float32)
    qmin, qmax = _RANGES[qdtype]
    if reduce_range:
        qmin, qmax = (0, 127) if qdtype == torch.quint8 else (-64, 63)
    xs = x.double().numpy()
    lo, hi = min(xs.min(), 0.0), max(xs.max(), 0.0)
    scale = (hi - lo) / (qmax - qmin)
    zp = int(np.clip(np.round(qmin - lo / scale), qmin, qmax))
    q = torch.quantize_per_tensor_dynamic(x, qdtype, reduce_range)
    assert_close("torch.quantize_per_tensor_dynamic", q.q_scale(), scale, op="elementwise", dtype=torch.float32,
                 args=f"reduce_range={reduce_range}: scale")
    assert_equal("torch.quantize_per_tensor_dynamic", q.q_zero_point(), zp, args=f"reduce_range={reduce_range}: zp")
    ir = q.int_repr().numpy().astype(np.int64)
    assert_true("torch.quantize_per_tensor_dynamic", ir.min() >= qmin and ir.max() <= qmax and
                (ir.min() == qmin or ir.max() == qmax), f"int_repr range [{ir.min()}, {ir.max()}] vs [{qmin}, {qmax}]")
    assert_close("torch.quantize_per_tensor_dynamic", q.dequantize(), xs, op="elementwise", rtol=0,
                 atol=scale / 2 * 1.001, args="within half a step")  # the rounding of one quantization step


@pytest.mark.parametrize("axis", [0, 1])
def test_quantize_per_channel(device, np_rng, axis):
    """quantize_per_channel along ``axis`` and its accessors torch./Tensor.q_per_channel_scales,
    q_per_channel_zero_points, q_per_channel_axis. Catches the scales applied along the wrong axis, the
    axis not recorded, zero points of another channel, a length mismatch accepted."""
    x64 = np_rng.standard_normal((5, 7)) * 3
    n = x64.shape[axis]
    scales64 = np_rng.uniform(0.01, 0.2, n)
    zps = np_rng.integers(-20, 20, n)
    x = torch.tensor(x64, dtype=torch.float32, device=device)
    q = torch.quantize_per_channel(x, torch.tensor(scales64, device=device), torch.tensor(zps, device=device), axis, torch.qint8)
    shape = [1, 1]
    shape[axis] = n
    s = scales64.reshape(shape)
    z = zps.reshape(shape)
    want = np.clip(np.round(x.cpu().double().numpy() / s) + z, -128, 127)
    assert_equal("Tensor.int_repr", q.int_repr(), want.astype(np.int64), args=f"axis={axis}")
    assert_close("torch.dequantize", torch.dequantize(q), (want - z) * s, op="elementwise", args=f"per channel axis={axis}")
    for api, got in (("torch.q_per_channel_scales", torch.q_per_channel_scales(q)),
                     ("Tensor.q_per_channel_scales", q.q_per_channel_scales())):
        assert_close(api, got, scales64, op="exact")
    for api, got in (("torch.q_per_channel_zero_points", torch.q_per_channel_zero_points(q)),
                     ("Tensor.q_per_channel_zero_points", q.q_per_channel_zero_points())):
        assert_equal(api, got, zps)
    assert_equal("torch.q_per_channel_axis", torch.q_per_channel_axis(q), axis)
    assert_equal("Tensor.q_per_channel_axis", q.q_per_channel_axis(), axis)
    assert_raises("torch.quantize_per_channel", RuntimeError, torch.quantize_per_channel, x,
                  torch.tensor(scales64[:-1], device=device), torch.tensor(zps[:-1], device=device), axis, torch.qint8,
                  args="scales too short")


@pytest.mark.parametrize("tensor_qparams", [False, True])
def test_fake_quantize_per_tensor_affine(device, np_rng, tensor_qparams):
    """fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax) = (clamp(round(x/s)+zp, qmin, qmax) - zp)*s
    (float and tensor qparams overloads). Catches qmin/qmax ignored, truncation, zp dropped."""
    x64 = np_rng.standard_normal((4, 30)) * 3
    x = torch.tensor(x64, dtype=torch.float32, device=device)[:, ::2]
    xs = x.cpu().double().numpy()
    scale, zp, qmin, qmax = 0.07, 3, -20, 50
    want = (_q(xs, np.float32(scale), zp, qmin, qmax) - zp) * np.float32(scale)
    if tensor_qparams:
        got = torch.fake_quantize_per_tensor_affine(x, torch.tensor(scale, device=device),
                                                    torch.tensor(zp, dtype=torch.int32, device=device), qmin, qmax)
    else:
        got = torch.fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax)
    assert_close("torch.fake_quantize_per_tensor_affine", got, want, op="elementwise", args=f"tensor qparams={tensor_qparams}")
    assert_raises("torch.fake_quantize_per_tensor_affine", RuntimeError, torch.fake_quantize_per_tensor_affine,
                  x, scale, zp, 10, 5, args="quant_min > quant_max")


def test_fake_quantize_per_channel_affine(device, np_rng):
    """fake_quantize_per_channel_affine along axis 1: each channel with its own scale and zero point.
    Catches the axis ignored (channel 0's qparams for all), zero points of another channel."""
    x64 = np_rng.standard_normal((3, 6, 4)) * 2
    x = torch.tensor(x64, dtype=torch.float32, device=device)
    s64 = np_rng.uniform(0.02, 0.3, 6).astype(np.float32)
    z = np_rng.integers(-5, 5, 6)
    got = torch.fake_quantize_per_channel_affine(x, torch.tensor(s64, device=device),
                                                 torch.tensor(z, dtype=torch.int32, device=device), 1, -128, 127)
    s = s64.astype(np.float64).reshape(1, 6, 1)
    zz = z.reshape(1, 6, 1)
    want = (np.clip(np.round(x64.astype(np.float32) / s) + zz, -128, 127) - zz) * s
    assert_close("torch.fake_quantize_per_channel_affine", got, want, op="elementwise", args="axis=1")


def test_fused_moving_avg_obs_fake_quant(device, np_rng):
    """fused_moving_avg_obs_fake_quant: first call sets running min/max to the batch's (running values start
    at +/-inf), later calls move them by averaging_const; scale/zero point follow the running range over
    [qmin, qmax]; the output is the fake-quantized input; observer_on=0 freezes the statistics and
    fake_quant_on=0 returns the input. Catches a wrong averaging constant, statistics updated while the
    observer is off, stale scale/zero point."""
    c = 0.01
    x1 = np_rng.standard_normal(64) * 2 + 0.5
    x2 = np_rng.standard_normal(64) * 6
    f32 = lambda a: torch.tensor(a, dtype=torch.float32, device=device)
    rmin, rmax = f32(np.inf), f32(-np.inf)
    scale, zp = f32([1.0]), torch.tensor([0], dtype=torch.int32, device=device)
    on = torch.tensor([1], device=device)
    off = torch.tensor([0], device=device)
    exp_min, exp_max = None, None
    for step, x64 in enumerate((x1, x2)):
        xs = x64.astype(np.float32).astype(np.float64)
        y = torch.fused_moving_avg_obs_fake_quant(f32(x64), on, on, rmin, rmax, scale, zp, c, 0, 255, 0)
        exp_min = xs.min() if exp_min is None else exp_min + c * (xs.min() - exp_min)
        exp_max = xs.max() if exp_max is None else exp_max + c * (xs.max() - exp_max)
        assert_close("torch.fused_moving_avg_obs_fake_quant", rmin, exp_min, op="elementwise", args=f"step {step}: running_min")
        assert_close("torch.fused_moving_avg_obs_fake_quant", rmax, exp_max, op="elementwise", args=f"step {step}: running_max")
        lo, hi = min(exp_min, 0.0), max(exp_max, 0.0)
        s = (hi - lo) / 255
        z = int(np.clip(np.round(0 - lo / s), 0, 255))
        assert_close("torch.fused_moving_avg_obs_fake_quant", scale, [s], op="elementwise", args=f"step {step}: scale")
        assert_equal("torch.fused_moving_avg_obs_fake_quant", zp, np.array([z]), args=f"step {step}: zero_point")
        s32 = float(scale.cpu()[0])
        assert_close("torch.fused_moving_avg_obs_fake_quant", y, (_q(xs, s32, z, 0, 255) - z) * s32, op="elementwise",
                     args=f"step {step}: output")
    before = (rmin.clone(), rmax.clone())
    y = torch.fused_moving_avg_obs_fake_quant(f32(x1 * 10), off, off, rmin, rmax, scale, zp, c, 0, 255, 0)
    assert_close("torch.fused_moving_avg_obs_fake_quant", rmin, before[0], op="exact", args="observer_on=0: min frozen")
    assert_close("torch.fused_moving_avg_obs_fake_quant", rmax, before[1], op="exact", args="observer_on=0: max frozen")
    assert_close("torch.fused_moving_avg_obs_fake_quant", y, (x1 * 10).astype(np.float32), op="exact",
                 args="fake_quant_on=0: identity")


def _quant_loss(x, lo, hi, bits):
    levels = 2 ** bits - 1
    s = (hi - lo) / levels
    q = np.clip(np.round((x - lo) / s), 0, levels)
    return float(np.sum((x - (q * s + lo)) ** 2))


@pytest.mark.parametrize("bits", [8, 4])
def test_choose_qparams_optimized(np_rng, bits):
    """choose_qparams_optimized(x, numel, n_bins, ratio, bit_width) returns (xmax, xmin): a range inside
    [min(x), max(x)] (it only shrinks the data range) whose quantization loss is no worse than the full
    range's. Catches min/max swapped, a range outside the data, a search that makes the loss worse."""
    x64 = np_rng.standard_normal(2000)
    x64[:3] = [25.0, -18.0, 12.0]  # outliers: clipping them lowers the loss
    x = torch.tensor(x64, dtype=torch.float32)
    xs = x.double().numpy()
    hi_t, lo_t = torch.choose_qparams_optimized(x, x.numel(), 200, 0.16, bits)
    hi, lo = float(hi_t.reshape(-1)[0]), float(lo_t.reshape(-1)[0])
    assert_true("torch.choose_qparams_optimized", xs.min() - 1e-6 <= lo < hi <= xs.max() + 1e-6,
                f"range [{lo}, {hi}] not inside the data [{xs.min()}, {xs.max()}]", args=f"bit_width={bits}")
    full = _quant_loss(xs, xs.min(), xs.max(), bits)
    got = _quant_loss(xs, lo, hi, bits)
    assert_true("torch.choose_qparams_optimized", got <= full * (1 + 1e-4),
                f"loss {got:.6g} of the chosen range > loss {full:.6g} of the full range", args=f"bit_width={bits}")


def _np_max_pool(x, kernel, stride, dilation=None):
    """Max pool over the trailing len(kernel) dims (no padding) with NumPy."""
    nd = len(kernel)
    dilation = dilation or (1,) * nd
    eff = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    win = np.lib.stride_tricks.sliding_window_view(x, eff, axis=tuple(range(x.ndim - nd, x.ndim)))
    sl = tuple(slice(None, None, s) for s in stride) + tuple(slice(None, None, d) for d in dilation)
    win = win[(slice(None),) * (x.ndim - nd) + sl]
    return win.reshape(*win.shape[:x.ndim], -1).max(axis=-1)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_quantized_max_pool(np_rng, nd):
    """torch.quantized_max_pool1d/2d/3d: a quantized tensor with the input's scale and zero point whose
    int_repr is the max pool of the input's int_repr (kernel, stride, dilation). Catches a stride or
    dilation ignored, qparams not carried over, a min instead of a max."""
    fn = getattr(torch, f"quantized_max_pool{nd}d", None)
    if fn is None:
        pytest.skip(f"this torch has no torch.quantized_max_pool{nd}d")
    spatial = {1: (13,), 2: (9, 10), 3: (5, 6, 7)}[nd]
    x64 = np_rng.standard_normal((2, 3, *spatial)) * 2
    q = torch.quantize_per_tensor(torch.tensor(x64, dtype=torch.float32), 0.03, 120, torch.quint8)
    if nd == 1:
        q = q[0]  # (C, L): the documented unbatched form
    kernel, stride, dil = (3,) * nd, (2,) * nd, (2,) + (1,) * (nd - 1)
    got = fn(q, list(kernel), list(stride), [0] * nd, list(dil))
    ir = q.int_repr().numpy().astype(np.int64)
    want = _np_max_pool(ir, kernel, stride, dil)
    assert_equal(f"torch.quantized_max_pool{nd}d", got.int_repr(), want, args=f"kernel={kernel}, stride={stride}, dilation={dil}")
    assert_true(f"torch.quantized_max_pool{nd}d", got.q_scale() == q.q_scale() and got.q_zero_point() == 120,
                f"qparams ({got.q_scale()}, {got.q_zero_point()}) not the input's")


def test_quantized_batch_norm(np_rng):
    """torch.quantized_batch_norm(x, weight, bias, mean, var, eps, out_scale, out_zp): the float64 batch norm of
    the dequantized input, requantized; within one output step. Catches eps/var/weight ignored and the
    output qparams not applied."""
    x64 = np_rng.standard_normal((2, 4, 3, 3)) * 2 + 1
    q = torch.quantize_per_tensor(torch.tensor(x64, dtype=torch.float32), 0.02, 100, torch.quint8)
    w, b = np_rng.uniform(0.5, 2, 4), np_rng.standard_normal(4)
    mean, var = np_rng.standard_normal(4), np_rng.uniform(0.5, 3, 4)
    eps, os_, oz = 1e-3, 0.03, 128
    t = lambda a: torch.tensor(a, dtype=torch.float32)
    got = torch.quantized_batch_norm(q, t(w), t(b), t(mean), t(var), eps, os_, oz)
    xd = q.dequantize().double().numpy()
    r = lambda a: a.reshape(1, 4, 1, 1)
    y = (xd - r(mean)) / np.sqrt(r(var) + eps) * r(w) + r(b)
    want = (np.clip(np.round(y / os_) + oz, 0, 255) - oz) * os_
    assert_true("torch.quantized_batch_norm", abs(got.q_scale() - os_) < 1e-12 and got.q_zero_point() == oz,
                f"output qparams ({got.q_scale()}, {got.q_zero_point()})")
    assert_close("torch.quantized_batch_norm", got.dequantize(), want, op="elementwise", rtol=0, atol=os_ * 1.001,
                 args="within one output step")  # float32 vs float64 may round across one step


def _emul_int8_linear(x32, qw, sw, zw, bias):
    """fbgemm's dynamic int8 linear: uint8 activation qparams from [min(x,0), max(x,0)], integer products."""
    xs = x32.astype(np.float64)
    lo, hi = min(float(x32.min()), 0.0), max(float(x32.max()), 0.0)
    sx = float(np.float32(np.float32(hi - lo) / np.float32(255)))
    zx = float(np.clip(np.round(-lo / sx), 0, 255))
    qx = np.clip(np.round(xs / sx) + zx, 0, 255)
    return sx * sw * ((qx - zx) @ (qw.astype(np.float64) - zw).T) + bias


def _sparse_pos(np_rng, shape):
    """Non-negative inputs with every second feature zero: no uint8*int8 pair saturates int16."""
    a = np_rng.uniform(0, 3, shape)
    a[..., 1::2] = 0.0
    return a.astype(np.float32)


@pytest.mark.parametrize("variant", ["int8_weight", "int8_weight_fp32_activation"])
def test_fbgemm_linear_int8(np_rng, variant):
    """fbgemm_linear_quantize_weight (int8 weight, col_offsets = row sums - K*zp, scale/zp of the weight's range),
    fbgemm_pack_quantized_matrix and fbgemm_linear_int8_weight[_fp32_activation] against the exact integer
    emulation. Catches a wrong weight scale/zero point, col_offsets not matching, bias dropped."""
    _fbgemm()
    m, k, n = 4, 16, 6
    x = _sparse_pos(np_rng, (m, k))
    w64 = np_rng.standard_normal((n, k)) * 0.3
    w = torch.tensor(w64, dtype=torch.float32)
    b64 = np_rng.standard_normal(n)
    qw, col_off, sw, zw = torch.fbgemm_linear_quantize_weight(w)
    ws = w.double().numpy()
    lo, hi = min(ws.min(), 0.0), max(ws.max(), 0.0)
    assert_close("torch.fbgemm_linear_quantize_weight", sw, (hi - lo) / 255, op="elementwise", dtype=torch.float32,
                 args="scale")
    assert_equal("torch.fbgemm_linear_quantize_weight", zw, int(np.round(-128 - lo / ((hi - lo) / 255))), args="zero point")
    assert_equal("torch.fbgemm_linear_quantize_weight", qw, _q(ws, sw, zw, -128, 127).astype(np.int64), args="int8 weight")
    assert_equal("torch.fbgemm_linear_quantize_weight", col_off,
                 qw.numpy().astype(np.int64).sum(1) - k * zw, args="col_offsets")
    packed = torch.fbgemm_pack_quantized_matrix(qw)
    fn = getattr(torch, f"fbgemm_linear_{variant}")
    got = fn(torch.tensor(x), qw, packed, col_off, sw, zw, torch.tensor(b64, dtype=torch.float32))
    want = _emul_int8_linear(x, qw.numpy(), sw, zw, b64.astype(np.float32))
    assert_close(f"torch.fbgemm_linear_{variant}", got, want, op="matmul", k=k, scale=np.abs(x) @ np.abs(ws).T)
    packed_kn = torch.fbgemm_pack_quantized_matrix(qw, k, n)
    got2 = fn(torch.tensor(x), qw, packed_kn, col_off, sw, zw, torch.tensor(b64, dtype=torch.float32))
    assert_close(f"torch.fbgemm_linear_{variant}", got2, want, op="matmul", k=k, scale=np.abs(x) @ np.abs(ws).T,
                 args="packed with (K, N)")


@pytest.mark.parametrize("variant", ["fp16_weight", "fp16_weight_fp32_activation"])
def test_fbgemm_linear_fp16(np_rng, variant):
    """fbgemm_pack_gemm_matrix_fp16 + fbgemm_linear_fp16_weight[_fp32_activation] = x @ fp16(W)^T + b with fp32
    activations. Catches the weight not rounded to fp16 or rounded to bf16, bias dropped, a transposed weight."""
    _fbgemm()
    m, k, n = 5, 24, 7
    x64 = np_rng.standard_normal((m, k))
    w64 = np_rng.standard_normal((n, k))
    w64[0, :3] = [1.0 + 2 ** -12, 3.0e-8, 6.0e4]  # fp16 rounding / subnormal / near the fp16 max matter
    b64 = np_rng.standard_normal(n)
    x = torch.tensor(x64, dtype=torch.float32)
    packed = torch.fbgemm_pack_gemm_matrix_fp16(torch.tensor(w64, dtype=torch.float32))
    got = getattr(torch, f"fbgemm_linear_{variant}")(x, packed, torch.tensor(b64, dtype=torch.float32))
    w16 = w64.astype(np.float32).astype(np.float16).astype(np.float64)
    xs = x.double().numpy()
    want = xs @ w16.T + b64.astype(np.float32)
    assert_close(f"torch.fbgemm_linear_{variant}", got, want, op="matmul", k=k, scale=np.abs(xs) @ np.abs(w16).T + np.abs(b64))


def _cell_weights(np_rng, rows, cols):
    w = torch.tensor(np_rng.standard_normal((rows, cols)) * 0.3, dtype=torch.float32)
    qw, co, s, z = torch.fbgemm_linear_quantize_weight(w)
    return qw, torch.fbgemm_pack_quantized_matrix(qw), co, s, z


def _sig(a):
    return 1 / (1 + np.exp(-a))


@pytest.mark.parametrize("cell", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_quantized_rnn_cells(np_rng, cell):
    """torch.quantized_rnn_tanh_cell / rnn_relu_cell / lstm_cell / gru_cell (fbgemm int8 weights, dynamic uint8
    activations) against the float64 cell on the exactly emulated int8 linears. Catches the gate order
    wrong (i, f, g, o / r, z, n), biases dropped, the hidden-hidden weights used for the input."""
    _fbgemm()
    b, i, h = 3, 8, 6
    gates = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}[cell]
    x = _sparse_pos(np_rng, (b, i))
    hx = _sparse_pos(np_rng, (b, h))
    cx = np_rng.standard_normal((b, h)).astype(np.float32)
    wi = _cell_weights(np_rng, gates * h, i)
    wh = _cell_weights(np_rng, gates * h, h)
    bi = np_rng.standard_normal(gates * h).astype(np.float32)
    bh = np_rng.standard_normal(gates * h).astype(np.float32)
    t = torch.tensor
    args = (wi[0], wh[0], t(bi), t(bh), wi[1], wh[1], wi[2], wh[2], wi[3], wh[3], wi[4], wh[4])
    gi = _emul_int8_linear(x, wi[0].numpy(), wi[3], wi[4], bi)
    gh = _emul_int8_linear(hx, wh[0].numpy(), wh[3], wh[4], bh)
    h64 = hx.astype(np.float64)
    if cell == "lstm":
        hy, cy = torch.quantized_lstm_cell(t(x), [t(hx), t(cx)], *args)
        g = gi + gh
        ig, fg, cg, og = _sig(g[:, :h]), _sig(g[:, h:2 * h]), np.tanh(g[:, 2 * h:3 * h]), _sig(g[:, 3 * h:])
        c_ref = fg * cx + ig * cg
        assert_close("torch.quantized_lstm_cell", cy, c_ref, op="nn", args="c'")
        assert_close("torch.quantized_lstm_cell", hy, og * np.tanh(c_ref), op="nn", args="h'")
        return
    if cell == "gru":
        got = torch.quantized_gru_cell(t(x), t(hx), *args)
        r = _sig(gi[:, :h] + gh[:, :h])
        z = _sig(gi[:, h:2 * h] + gh[:, h:2 * h])
        nn_ = np.tanh(gi[:, 2 * h:] + r * gh[:, 2 * h:])
        want = (1 - z) * nn_ + z * h64
    else:
        got = getattr(torch, f"quantized_{cell}_cell")(t(x), t(hx), *args)
        want = np.tanh(gi + gh) if cell == "rnn_tanh" else np.maximum(gi + gh, 0)
    assert_close(f"torch.quantized_{cell}_cell", got, want, op="nn")


def test_wrapped_quantized_linear(np_rng):
    """torch._wrapped_linear_prepack + _wrapped_quantized_linear_prepacked: input quantized (uint8, given
    qparams), weight qint8 per tensor, int32 accumulation plus bias, output requantized to the output qparams
    and returned dequantized (float32). Catches the output qparams ignored or the weight's zero point dropped."""
    _fbgemm()
    if not hasattr(torch, "_wrapped_quantized_linear_prepacked"):
        pytest.skip("this torch has no torch._wrapped_quantized_linear_prepacked")
    m, k, n = 3, 10, 4
    x64 = np_rng.standard_normal((m, k))
    w64 = np_rng.standard_normal((n, k)) * 0.5
    b64 = np_rng.standard_normal(n)
    ws, wz, xs_, xz, os_, oz = 0.02, 0, 0.05, 128, 0.1, 128
    t = lambda a, dt=torch.float32: torch.tensor(a, dtype=dt)
    packed = torch._wrapped_linear_prepack(t(w64), t(ws), t(wz, torch.int32), t(b64))
    got = torch._wrapped_quantized_linear_prepacked(t(x64), t(xs_), t(xz, torch.int32), packed, t(os_),
                                                    t(oz, torch.int32), n)
    qx = _q(x64.astype(np.float32), np.float32(xs_), xz, 0, 255)
    qw = _q(w64.astype(np.float32), np.float32(ws), wz, -128, 127)
    acc = np.float32(xs_) * np.float32(ws) * ((qx - xz) @ (qw - wz).T) + b64.astype(np.float32)
    want = (np.clip(np.round(acc / np.float32(os_)) + oz, 0, 255) - oz) * np.float32(os_)
    assert_close("torch._wrapped_quantized_linear_prepacked", got, want, op="elementwise", rtol=0, atol=os_ * 1.001,
                 args="within one output step")  # requantization of a float32 accumulation may round across a step


def test_rowwise_prune(np_rng):
    """torch._rowwise_prune(weight, mask, dtype): the rows where mask is True, and per row its index among the
    kept rows (-1 for pruned rows) in the requested index dtype. Catches the mask inverted, indices off by one."""
    w64 = np_rng.standard_normal((7, 5))
    mask = np.array([True, False, True, True, False, False, True])
    for dt, np_dt in ((torch.int32, np.int32), (torch.int64, np.int64)):
        pruned, idx = torch._rowwise_prune(torch.tensor(w64, dtype=torch.float32), torch.tensor(mask), dt)
        assert_close("torch._rowwise_prune", pruned, w64[mask].astype(np.float32), op="exact")
        want = np.where(mask, np.cumsum(mask) - 1, -1).astype(np_dt)
        assert_true("torch._rowwise_prune", idx.dtype == dt, f"index dtype {idx.dtype}, expected {dt}")
        assert_equal("torch._rowwise_prune", idx, want, args=f"compressed indices {dt}")
