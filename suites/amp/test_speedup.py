"""§ 9.2 Mixed precision: the paths the AMP speed-up benchmarks time compute the right thing.

The speed-up figures are benchmarks, not tests: ``suites/amp/bench_amp.py`` defines each case once with
a ``precision`` parameter (float32, bfloat16, float16), so the speed-up is the ratio of two cases of
one definition, measured by ``torchconform bench`` / pytest-benchmark and compared across builds by
``torchconform compare``. Nothing here is timed. What a test can say about those cases is that a
speed-up is not bought with wrong results: each benchmarked shape (matmul n = 128, 256; 3x3 conv2d
with 16 and 32 channels; one training step of the 256-256-10 MLP) is run once under autocast and
checked against a float64 oracle with a derived bound.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness import tolerances
from harness.checks import assert_close, assert_equal, assert_true, to_numpy
from suites.amp import bench_amp
from suites.amp._amp import grad_scaler, low_dtypes, require_autocast


def _rounded64(t: torch.Tensor, low) -> torch.Tensor:
    """The values autocast feeds the kernel (``t`` rounded to ``low``), as float64 on the CPU."""
    return t.detach().to(low).to(torch.float64).cpu()


@pytest.mark.parametrize("n", bench_amp.BENCHMARKS[0].params["n"])
def test_benchmarked_autocast_matmul(device, n):
    """torch.mm of float32 (n, n) inputs under autocast returns the low-precision dtype and, per element,
    the float64 product of the low-precision-rounded inputs within the K-aware bound (k = n): eps(low) of
    the result (one rounding after float32 accumulation) + ~sqrt(n) float32 units of sum|a||b|
    (harness.tolerances.for_matmul). Catches an autocast that leaves the benchmarked matmul in float32 (its
    speed-up figure would be meaningless) and a fast low-precision GEMM with a wrong edge tile or a dropped
    K block at the benchmarked sizes."""
    require_autocast(device)
    g = torch.Generator().manual_seed(n)
    a = torch.randn(n, n, generator=g).to(device)
    b = torch.randn(n, n, generator=g).to(device)
    for low in low_dtypes(device):
        with torch.autocast(device, dtype=low):
            c = torch.mm(a, b)
        assert_equal("torch.autocast", c.dtype, low, args=f"mm result dtype, {low}")
        A, B = to_numpy(_rounded64(a, low)), to_numpy(_rounded64(b, low))
        assert_close("torch.mm", c, A @ B, op="matmul", k=n, scale=np.abs(A) @ np.abs(B), args=f"autocast {low}, n={n}")


@pytest.mark.parametrize("channels", bench_amp.BENCHMARKS[1].params["channels"])
def test_benchmarked_autocast_conv2d(device, channels):
    """The benchmarked 3x3 conv2d (batch 4, 16x16, padding 1) under autocast returns the low-precision dtype
    and the float64 convolution of the rounded inputs within the K-aware bound, k = C_in * 9 terms per
    output, scale = the same convolution of |x| and |w|. Catches a low-precision conv kernel (oneDNN/cuDNN)
    that is fast because it is wrong (edge taps lost at the padding, channels mis-blocked)."""
    require_autocast(device)
    g = torch.Generator().manual_seed(channels)
    x = torch.randn(4, channels, 16, 16, generator=g).to(device)
    w = torch.randn(channels, channels, 3, 3, generator=g).to(device)
    for low in low_dtypes(device):
        with torch.autocast(device, dtype=low):
            y = F.conv2d(x, w, padding=1)
        assert_equal("torch.autocast", y.dtype, low, args=f"conv2d result dtype, {low}")
        xl, wl = _rounded64(x, low), _rounded64(w, low)
        ref = F.conv2d(xl, wl, padding=1)  # float64 CPU reference path (not the low-precision kernel)
        scale = F.conv2d(xl.abs(), wl.abs(), padding=1)
        assert_close("torch.nn.functional.conv2d", y, to_numpy(ref), op="matmul", k=channels * 9, scale=to_numpy(scale),
                     args=f"autocast {low}, C={channels}")


# The reference is the float64 gradient of the same network with the ReLU pattern the low-precision forward
# chose (a pre-activation within rounding of 0 may land on either side, which changes that unit's whole
# gradient row: a legitimate difference, not a rounding error). Then each parameter's gradient passes
# through at most four low-precision matmuls (x@W1, h@W2 forward; g@W2, x^T@g backward), each rounding two
# operands and its result: 12 u(low) normwise to first order, doubled for the conditioning of the products.
# Measured on CPU torch 2.13: <= 1 u (bfloat16 and float16).
TRAIN_STEP_NORMWISE_ULPS = 24


def _reference_grads(init: nn.Sequential, x, y, mask) -> list:
    """float64 gradients of cross_entropy(W2 relu_mask(W1 x + b1) + b2) with the given ReLU mask."""
    w1, b1, w2, b2 = (p.detach().double().cpu().clone().requires_grad_(True) for p in init.parameters())
    h = x.double() @ w1.T + b1
    logits = torch.where(mask, h, torch.zeros_like(h)) @ w2.T + b2
    F.cross_entropy(logits, y).backward()
    return [to_numpy(p.grad) for p in (w1, b1, w2, b2)]


def test_benchmarked_autocast_train_step(device):
    """One step of the benchmarked training case (the bench_amp 256-256-10 MLP, batch 64, cross-entropy,
    SGD; GradScaler for float16 as the docs prescribe): every parameter's gradient under autocast is float32
    and within a normwise 24 u(low) of the float64 gradient (derivation above), and the SGD step moves each
    parameter by -lr * grad. Catches an autocast that leaves the step in float32, a wrong low-precision
    backward (a transposed weight, a lost ReLU mask), a GradScaler that does not unscale, and a step that
    skips or double-applies the update."""
    require_autocast(device)
    d_in, d_hid, d_out = bench_amp.TRAIN_DIMS
    g = torch.Generator().manual_seed(7)
    x = torch.randn(bench_amp.TRAIN_BATCH, d_in, generator=g)
    y = torch.randint(0, d_out, (bench_amp.TRAIN_BATCH,), generator=g)
    torch.manual_seed(0)
    init = nn.Sequential(nn.Linear(d_in, d_hid), nn.ReLU(), nn.Linear(d_hid, d_out))
    lr = 1e-3
    for low in low_dtypes(device):
        model = nn.Sequential(nn.Linear(d_in, d_hid), nn.ReLU(), nn.Linear(d_hid, d_out)).to(device)
        model.load_state_dict(init.state_dict())
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        scaler = grad_scaler(device) if low == torch.float16 else None
        seen = {}
        model[1].register_forward_hook(lambda mod, inp, out: seen.update(mask=(out > 0).cpu(), dtype=out.dtype))
        with torch.autocast(device, dtype=low):
            loss = F.cross_entropy(model(x.to(device)), y.to(device))
        assert_equal("torch.autocast", seen["dtype"], low, args=f"hidden activations run in {low}")
        assert_equal("torch.autocast", loss.dtype, torch.float32, args=f"cross_entropy autocasts to float32, {low}")
        if scaler is None:
            loss.backward()
        else:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
        ref_grads = _reference_grads(init, x, y, seen["mask"])
        before = [to_numpy(p) for p in model.parameters()]
        bound = TRAIN_STEP_NORMWISE_ULPS * tolerances.unit_roundoff(low)
        for (name, p), r in zip(model.named_parameters(), ref_grads):
            assert_equal("torch.autocast", p.grad.dtype, torch.float32, args=f"{name}.grad dtype, {low}")
            rel = float(np.linalg.norm(to_numpy(p.grad) - r) / np.linalg.norm(r))
            assert_true("torch.autocast", rel <= bound,
                        f"{name}.grad is {rel:.3g} off the float64 gradient (normwise), bound {bound:.3g}", args=str(low))
        grads = [to_numpy(p.grad) for p in model.parameters()]
        if scaler is None:
            opt.step()
        else:
            scaler.step(opt)
            scaler.update()
        for (name, p), p0, gr in zip(model.named_parameters(), before, grads):
            assert_close("torch.optim.SGD.step", p, p0 - lr * gr, op="elementwise", args=f"{name} after an autocast {low} step")
