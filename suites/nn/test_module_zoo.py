"""§ 4 nn.Module and layers (module zoo): the torch.nn module classes no other nn module runs under a
check (found with harness.coverage; see scripts/coverage-measure), each against an independent float64
NumPy reference or, where the output is random, a documented invariant: GLU, RReLU, Softmax2d,
ChannelShuffle, UpsamplingNearest2d/UpsamplingBilinear2d, FeatureAlphaDropout, LocalResponseNorm,
CrossMapLRN2d, DataParallel, SyncBatchNorm and the lazy modules (LazyConv*, LazyConvTranspose*,
LazyBatchNorm*, LazyInstanceNorm*). Losses, pooling/padding and the Transformer family are in the
sibling test_zoo_*.py modules.

Rule for "a torch.nn class": every public name in torch.nn that is an nn.Module subclass with a forward of
its own (harness.coverage.universe); torch.ao.nn quantized/intrinsic/qat classes are not torch.nn names
and are out of scope.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.nn._ref import batch_norm, conv_nd, conv_transpose_nd, group_norm, np64, sigmoid, softmax


def _gapped(t: torch.Tensor) -> torch.Tensor:
    """``t``'s values in a view with a gap after every element of the last dim (not contiguous)."""
    buf = torch.full((*t.shape[:-1], 2 * t.shape[-1]), float("nan"), dtype=t.dtype, device=t.device)
    buf[..., ::2] = t
    return buf[..., ::2]


# ------------------------------------------------------------------ activations
@pytest.mark.smoke
@pytest.mark.parametrize("dim", [-1, 1])
def test_glu(device, dtype, dim):
    """GLU(a, b) = a * sigmoid(b), halves split along `dim` (first half is a); an odd size is an error.
    Catches the halves swapped (sigmoid on the first half) and the split along the wrong dim."""
    x = torch.randn(3, 6, 8, dtype=torch.float64).to(device, dtype)
    a, b = np.split(np64(x), 2, axis=dim)
    assert_close("nn.GLU", nn.GLU(dim)(_gapped(x)), a * sigmoid(b), op="elementwise", args=f"dim={dim}", check_dtype=dtype)
    assert_raises("nn.GLU", RuntimeError, nn.GLU(-1), torch.randn(2, 5, device=device), args="odd size 5")


def test_rrelu(device):
    """RReLU: eval uses the fixed slope (lower + upper) / 2; train draws one slope per element from
    U(lower, upper): every negative output / input ratio lies in [lower, upper], positives pass, and the
    slopes' mean and variance match the uniform's ((l+u)/2, (u-l)^2/12) within 6 sigma over 40,000
    elements. Catches train mode using the fixed slope, slopes outside the range, one slope for all."""
    lo, hi = 0.1, 0.4
    x = torch.randn(200, 200, dtype=torch.float32, device=device)
    xn = np64(x)
    ev = nn.RReLU(lo, hi).eval()(x)
    assert_close("nn.RReLU", ev, np.where(xn >= 0, xn, xn * (lo + hi) / 2), op="elementwise", args="eval")
    tr = np64(nn.RReLU(lo, hi).train()(x))
    neg = xn < 0
    assert_close("nn.RReLU", tr[~neg], xn[~neg], op="exact", args="train, positives")
    slope = tr[neg] / xn[neg]
    eps = 1e-6
    assert_true("nn.RReLU", (slope >= lo - eps).all() and (slope <= hi + eps).all(),
                f"slopes in [{slope.min():.4f}, {slope.max():.4f}], expected within [{lo}, {hi}]")
    n = slope.size
    mean, var = (lo + hi) / 2, (hi - lo) ** 2 / 12
    assert_true("nn.RReLU", abs(slope.mean() - mean) < 6 * math.sqrt(var / n), f"slope mean {slope.mean():.5f} vs {mean}")
    # variance of the sample variance of a uniform: (mu4 - var^2)/n with mu4 = (u-l)^4/80
    sd_var = math.sqrt(((hi - lo) ** 4 / 80 - var ** 2) / n)
    assert_true("nn.RReLU", abs(slope.var() - var) < 6 * sd_var, f"slope variance {slope.var():.6f} vs {var:.6f}")


@pytest.mark.parametrize("batched", [True, False], ids=["NCHW", "CHW"])
def test_softmax2d(device, dtype, batched):
    """Softmax2d is a softmax over the channel dim (-3) at every spatial location, for (N, C, H, W) and
    (C, H, W). Catches a softmax over W (the last dim) or over dim 1 of a 3-d input."""
    shape = (2, 5, 3, 4) if batched else (5, 3, 4)
    x = (torch.randn(*shape, dtype=torch.float64) * 3).to(device, dtype)
    assert_close("nn.Softmax2d", nn.Softmax2d()(_gapped(x)), softmax(np64(x), -3), op="reduction", args=str(shape),
                 check_dtype=dtype)


# ------------------------------------------------------------------ shape / resampling layers
@pytest.mark.parametrize("groups,channels", [(2, 6), (3, 12), (4, 4)])
def test_channel_shuffle(device, dtype, groups, channels):
    """ChannelShuffle(g): view channels as (g, C/g), transpose, flatten, i.e. output channel c is input
    channel (c % g) * (C/g) + c // g; shuffling by g then by C/g is the identity. Catches the transpose
    missing (identity), g and C/g confused (the inverse permutation) and spatial data moved."""
    x = torch.randn(2, channels, 3, 4, dtype=torch.float64).to(device, dtype)
    got = nn.ChannelShuffle(groups)(x)
    cg = channels // groups
    perm = [(c % groups) * cg + c // groups for c in range(channels)]
    assert_close("nn.ChannelShuffle", got, np64(x)[:, perm], op="exact", args=f"groups={groups}, index formula", check_dtype=dtype)
    ref = np64(x).reshape(2, groups, cg, 3, 4).transpose(0, 2, 1, 3, 4).reshape(2, channels, 3, 4)
    assert_close("nn.ChannelShuffle", got, ref, op="exact", args=f"groups={groups}, reshape-transpose")
    assert_close("nn.ChannelShuffle", nn.ChannelShuffle(cg)(got), np64(x), op="exact", args=f"groups={cg} inverts {groups}")


def _axis_nearest(x, axis, out):
    n = x.shape[axis]
    return np.take(x, [min(int(math.floor(i * n / out)), n - 1) for i in range(out)], axis)


def _axis_linear_align(x, axis, out):
    """Linear interpolation with align_corners=True: source = i * (n - 1) / (out - 1)."""
    n = x.shape[axis]
    rows = []
    for i in range(out):
        src = i * (n - 1) / (out - 1) if out > 1 else 0.0
        i0 = min(int(math.floor(src)), n - 1)
        i1 = min(i0 + 1, n - 1)
        lam = src - i0
        rows.append(np.take(x, i0, axis) * (1 - lam) + np.take(x, i1, axis) * lam)
    return np.stack(rows, axis)


@pytest.mark.parametrize("kw", [dict(size=(5, 7)), dict(scale_factor=2), dict(size=(2, 3))], ids=str)
def test_upsampling_nearest_and_bilinear(device, dtype, kw):
    """UpsamplingNearest2d picks source index floor(i * in / out); UpsamplingBilinear2d interpolates with
    align_corners=True (corners map to corners), for size and scale_factor, upsampling and downsampling.
    Catches bilinear without align_corners (the default of interpolate), nearest rounding instead of
    flooring, and H and W sizes swapped."""
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64).to(device, dtype)
    out = kw.get("size") or (4 * kw["scale_factor"], 5 * kw["scale_factor"])
    xn = np64(x)
    near = _axis_nearest(_axis_nearest(xn, 2, out[0]), 3, out[1])
    assert_close("nn.UpsamplingNearest2d", nn.UpsamplingNearest2d(**kw)(_gapped(x)), near, op="exact", args=str(kw),
                 check_dtype=dtype)
    bil = _axis_linear_align(_axis_linear_align(xn, 2, out[0]), 3, out[1])
    assert_close("nn.UpsamplingBilinear2d", nn.UpsamplingBilinear2d(**kw)(_gapped(x)), bil, op="nn", args=str(kw),
                 check_dtype=dtype)


# ------------------------------------------------------------------ dropout / normalisation
def test_feature_alpha_dropout(device):
    """FeatureAlphaDropout drops whole channels to the SELU saturation value and applies the affine map
    that keeps mean 0 / variance 1: kept channels a*x + a*alpha'*p, dropped channels the constant
    a*alpha'*(p - 1), a = ((1 - p)(1 + p alpha'^2))^(-1/2), alpha' = 1.7580993408473766; about p of the
    channels are dropped (6 sigma); eval is the identity. Catches elementwise (not per-channel) dropping,
    dropped units set to 0 (plain dropout) and the affine correction missing."""
    p, alpha = 0.3, 1.7580993408473766
    a = 1.0 / math.sqrt((1 - p) * (1 + p * alpha ** 2))
    x = torch.randn(64, 40, 3, 4, dtype=torch.float64, device=device)
    y = np64(nn.FeatureAlphaDropout(p).train()(x))
    xn = np64(x)
    kept_val = a * xn + a * alpha * p
    drop_val = a * alpha * (p - 1)
    kept = np.isclose(y, kept_val, rtol=1e-12, atol=1e-12).all(axis=(2, 3))
    dropped = np.isclose(y, drop_val, rtol=1e-12, atol=1e-12).all(axis=(2, 3))
    assert_true("nn.FeatureAlphaDropout", (kept ^ dropped).all(),
                f"{int((~(kept ^ dropped)).sum())} channels are neither wholly kept (a*x+b) nor wholly dropped (constant)")
    n = kept.size
    frac = dropped.mean()
    assert_true("nn.FeatureAlphaDropout", abs(frac - p) < 6 * math.sqrt(p * (1 - p) / n), f"dropped fraction {frac:.4f} vs {p}")
    assert_equal("nn.FeatureAlphaDropout", nn.FeatureAlphaDropout(p).eval()(x), x, args="eval")


def _lrn_ref(x: np.ndarray, size: int, alpha: float, beta: float, k: float) -> np.ndarray:
    """Documented LocalResponseNorm: b_c = a_c (k + alpha/n sum_{c'=c-(n-1)/2}^{c+(n-1)/2} a_{c'}^2)^(-beta),
    the channel window clipped at the borders (odd n)."""
    half = (size - 1) // 2
    sq = x ** 2
    c = x.shape[1]
    s = np.stack([sq[:, max(0, i - half):min(c, i + half + 1)].sum(1) for i in range(c)], 1)
    return x / (k + alpha / size * s) ** beta


@pytest.mark.parametrize("shape", [(2, 7, 9), (2, 6, 3, 4), (1, 5, 2, 3, 2)], ids=["3d", "4d", "5d"])
@pytest.mark.parametrize("size,alpha,beta,k", [(3, 1e-1, 0.75, 1.0), (5, 0.5, 0.5, 2.0)], ids=["n3", "n5"])
def test_local_response_norm(device, dtype, shape, size, alpha, beta, k):
    """LocalResponseNorm normalises each channel by its neighbours' squares across channels, for 3-d,
    4-d and 5-d inputs. Catches the window along a spatial dim, alpha not divided by n, and the border
    windows not clipped."""
    x = (torch.randn(*shape, dtype=torch.float64) * 2).to(device, dtype)
    got = nn.LocalResponseNorm(size, alpha=alpha, beta=beta, k=k)(x)
    assert_close("nn.LocalResponseNorm", got, _lrn_ref(np64(x), size, alpha, beta, k), op="nn", args=f"n={size}, {shape}",
                 check_dtype=dtype)


def test_cross_map_lrn2d_all_channel_window(device):
    """CrossMapLRN2d (the legacy cross-channel LRN) with a window covering every channel (n=5, C=3) equals
    the LocalResponseNorm formula, and rejects non-4-d input. Catches alpha/size, beta or k misapplied."""
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, device=device) * 2
    got = nn.CrossMapLRN2d(5, alpha=0.3, beta=0.6, k=1.5)(x)
    assert_close("nn.CrossMapLRN2d", got, _lrn_ref(np64(x), 5, 0.3, 0.6, 1.5), op="nn", args="n=5, C=3")
    assert_raises("nn.CrossMapLRN2d", ValueError, nn.CrossMapLRN2d(3), torch.randn(2, 3, 4, device=device), args="3-d input")


def test_cross_map_lrn2d_sliding_window(device):
    """CrossMapLRN2d's channel window must slide: channel c sees channels c-(n-1)/2 .. c+(n-1)/2 only (the
    LocalResponseNorm formula; CrossMapLRN2d itself has no formula in its docs). On torch 2.13 the running
    window never removes channel 0 (the removal starts one step late: `if c > pre_pad` where the windowed
    sum needs `c >= pre_pad`), so with n=3 and 7 channels every channel's scale includes a_0^2: a
    known-failure candidate for the expectation manifest."""
    x = torch.randn(2, 7, 3, 3, dtype=torch.float64, device=device) * 2
    got = nn.CrossMapLRN2d(3, alpha=0.3, beta=0.75, k=1.0)(x)
    assert_close("nn.CrossMapLRN2d", got, _lrn_ref(np64(x), 3, 0.3, 0.75, 1.0), op="nn", args="n=3, C=7")


def test_sync_batch_norm_without_process_group(device, dtype):
    """SyncBatchNorm outside a distributed run (no process group) is BatchNorm: training normalises by the
    batch statistics and updates the running mean and the unbiased running variance with momentum; eval
    uses the running statistics; convert_sync_batchnorm swaps BatchNorm layers keeping their parameters
    and buffers; input with fewer than 2 dims is an error. Catches the running variance updated with the
    biased estimate and convert_sync_batchnorm dropping the affine parameters."""
    torch.manual_seed(0)
    bn = nn.SyncBatchNorm(4, momentum=0.2).to(device, dtype)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    x = (torch.randn(3, 4, 5, 2, dtype=torch.float64) * 2 + 1).to(device, dtype)
    rm, rv = np64(bn.running_mean), np64(bn.running_var)
    y = bn.train()(x)
    ref, rm2, rv2 = batch_norm(np64(x), np64(bn.weight), np64(bn.bias), bn.eps, rm, rv, training=True, momentum=0.2)
    assert_close("nn.SyncBatchNorm", y, ref, op="nn", args="train", check_dtype=dtype)
    assert_close("nn.SyncBatchNorm", bn.running_mean, rm2, op="nn", args="running_mean")
    assert_close("nn.SyncBatchNorm", bn.running_var, rv2, op="nn", args="running_var (unbiased)")
    z = torch.randn(2, 4, 3, dtype=torch.float64).to(device, dtype)
    ref_eval, _, _ = batch_norm(np64(z), np64(bn.weight), np64(bn.bias), bn.eps, rm2, rv2, training=False)
    assert_close("nn.SyncBatchNorm", bn.eval()(z), ref_eval, op="nn", args="eval")
    net = nn.Sequential(nn.Conv2d(2, 4, 1), nn.BatchNorm2d(4)).to(device, dtype)
    with torch.no_grad():
        net[1].weight.uniform_(0.5, 1.5)
        net[1].running_mean.uniform_(-1, 1)
    conv = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    assert_true("nn.SyncBatchNorm.convert_sync_batchnorm", type(conv[1]) is nn.SyncBatchNorm, "BatchNorm2d not converted")
    assert_equal("nn.SyncBatchNorm.convert_sync_batchnorm", conv[1].weight, net[1].weight, args="weight kept")
    assert_equal("nn.SyncBatchNorm.convert_sync_batchnorm", conv[1].running_mean, net[1].running_mean, args="running_mean kept")
    assert_raises("nn.SyncBatchNorm", ValueError, bn, torch.randn(4, device=device, dtype=dtype), args="1-d input")


def test_data_parallel_single_device(device):
    """DataParallel on one device (CPU: no device ids; CUDA: device 0) returns exactly the wrapped module's
    output, exposes it as .module, and prefixes its state_dict keys with 'module.'. Catches a wrapper
    that changes results or loses parameters."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3)).to(device)
    dp = nn.DataParallel(net, device_ids=[0] if device == "cuda" else None)
    x = torch.randn(8, 6, device=device)
    with torch.no_grad():
        ref = net(x)
        got = dp(x)
    assert_equal("nn.DataParallel", got, ref, args="forward")
    assert_true("nn.DataParallel", dp.module is net, ".module is not the wrapped module")
    assert_equal("nn.DataParallel", sorted(dp.state_dict()), sorted("module." + k for k in net.state_dict()), args="state_dict keys")


# ------------------------------------------------------------------ lazy modules
LAZY_CONV = [("LazyConv1d", "Conv1d", 1, False), ("LazyConv2d", "Conv2d", 2, False), ("LazyConv3d", "Conv3d", 3, False),
             ("LazyConvTranspose1d", "ConvTranspose1d", 1, True), ("LazyConvTranspose2d", "ConvTranspose2d", 2, True),
             ("LazyConvTranspose3d", "ConvTranspose3d", 3, True)]


@pytest.mark.parametrize("name,becomes,nd,transposed", LAZY_CONV, ids=[c[0] for c in LAZY_CONV])
def test_lazy_conv(device, dtype, name, becomes, nd, transposed):
    """A lazy convolution has uninitialised parameters until the first forward, then infers in_channels
    from the input, becomes the eager class (cls_to_become), and computes the convolution with its
    materialised weight ((out, in, *k), transposed: (in, out, *k)). Catches in_channels inferred from the
    wrong dim, the class not switching, and a result that differs from the materialised module's."""
    if not hasattr(nn, name):
        pytest.skip(f"nn.{name} is not in torch {torch.__version__}")
    torch.manual_seed(0)
    cin, cout, k = 3, 4, 2
    mod = getattr(nn, name)(cout, k, stride=2, padding=1).to(device, dtype)
    assert_true(f"nn.{name}", mod.has_uninitialized_params(), "parameters initialised before the first forward")
    x = torch.randn(2, cin, *(5, 4, 3)[:nd], dtype=torch.float64).to(device, dtype)
    got = mod(x)
    assert_true(f"nn.{name}", type(mod) is getattr(nn, becomes), f"became {type(mod).__name__}, expected {becomes}")
    want = (cin, cout) if transposed else (cout, cin)
    assert_equal(f"nn.{name}", tuple(mod.weight.shape), want + (k,) * nd, args="materialised weight shape")
    if transposed:
        ref = conv_transpose_nd(np64(x), np64(mod.weight), np64(mod.bias), stride=2, padding=1)
    else:
        ref = conv_nd(np64(x), np64(mod.weight), np64(mod.bias), stride=2, padding=1)
    assert_close(f"nn.{name}", got, ref, op="matmul", args="first forward", check_dtype=dtype)


LAZY_NORM = [(f"Lazy{kind}Norm{nd}d", f"{kind}Norm{nd}d", kind, nd) for kind in ("Batch", "Instance") for nd in (1, 2, 3)]


@pytest.mark.parametrize("name,becomes,kind,nd", LAZY_NORM, ids=[c[0] for c in LAZY_NORM])
def test_lazy_norm(device, dtype, name, becomes, kind, nd):
    """LazyBatchNorm/LazyInstanceNorm infer num_features from dim 1 at the first forward, become the eager
    class, and normalise: batch norm over (N, *S) with the running statistics updated; instance norm per
    sample and channel (affine=True). Catches num_features inferred from the last dim, running buffers
    left uninitialised, and instance statistics pooled over the batch."""
    if not hasattr(nn, name):
        pytest.skip(f"nn.{name} is not in torch {torch.__version__}")
    c = 5
    kw = {"affine": True} if kind == "Instance" else {}
    mod = getattr(nn, name)(**kw).to(device, dtype)
    assert_true(f"nn.{name}", mod.has_uninitialized_params(), "parameters initialised before the first forward")
    x = (torch.randn(3, c, *(6, 4, 3)[:nd], dtype=torch.float64) * 2 + 0.5).to(device, dtype)
    got = mod.train()(x)
    assert_true(f"nn.{name}", type(mod) is getattr(nn, becomes), f"became {type(mod).__name__}, expected {becomes}")
    assert_equal(f"nn.{name}", (mod.num_features, tuple(mod.weight.shape)), (c, (c,)), args="num_features, weight shape")
    if kind == "Batch":
        ref, rm, rv = batch_norm(np64(x), np64(mod.weight), np64(mod.bias), mod.eps, np.zeros(c), np.ones(c), training=True)
        assert_close(f"nn.{name}", mod.running_mean, rm, op="nn", args="running_mean")
        assert_close(f"nn.{name}", mod.running_var, rv, op="nn", args="running_var")
    else:
        ref = group_norm(np64(x), c, np64(mod.weight), np64(mod.bias), mod.eps)
    assert_close(f"nn.{name}", got, ref, op="nn", args="first forward", check_dtype=dtype)
