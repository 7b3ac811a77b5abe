"""§ 4 nn.Module and layers: BatchNorm1d/2d, LayerNorm, InstanceNorm2d, GroupNorm against float64 NumPy,
including the state they keep between calls (running stats, num_batches_tracked, momentum=None).

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from torch import nn

from harness import dtypes
from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.nn._ref import layer_norm, np64


def _bn_ref(x, axes, w, b, eps):
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)  # biased, for normalisation
    y = (x - mu) / np.sqrt(var + eps)
    shape = [1] * x.ndim
    shape[1] = -1
    if w is not None:
        y = y * w.reshape(shape) + b.reshape(shape)
    return y


def _randomise_affine(m):
    with torch.no_grad():
        if getattr(m, "weight", None) is not None:
            m.weight.uniform_(0.5, 1.5)
        if getattr(m, "bias", None) is not None:
            m.bias.uniform_(-0.5, 0.5)


@pytest.mark.smoke
@pytest.mark.dtypes(*dtypes.FLOATING)
@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_batchnorm2d_training_state(device, dtype, momentum):
    """BatchNorm2d train mode over 3 calls: output uses the batch mean and BIASED variance; running_mean
    updates as (1-m)*old + m*mean, running_var with the UNBIASED variance; momentum=None uses the
    cumulative average (factor 1/num_batches_tracked); num_batches_tracked counts calls. Catches
    unbiased/biased swapped, momentum used as (1-m), frozen running stats, a wrong counter."""
    c = 3
    m = nn.BatchNorm2d(c, momentum=momentum, eps=1e-3, device=device, dtype=dtype)
    _randomise_affine(m)
    assert_close("nn.BatchNorm2d", m.running_mean, np.zeros(c), op="exact", args="initial running_mean")
    assert_close("nn.BatchNorm2d", m.running_var, np.ones(c), op="exact", args="initial running_var")
    rm, rv = np.zeros(c), np.ones(c)
    for step in range(1, 4):
        x = torch.randn(4, c, 3, 5, device=device, dtype=dtype) * (step + 1) + step
        y = m(x)
        xn = np64(x)
        assert_close("nn.BatchNorm2d", y, _bn_ref(xn, (0, 2, 3), np64(m.weight), np64(m.bias), 1e-3), op="nn",
                     args=f"train step {step}", check_dtype=dtype)
        mean = xn.mean(axis=(0, 2, 3))
        uvar = xn.var(axis=(0, 2, 3), ddof=1)
        f = 1.0 / step if momentum is None else momentum
        rm, rv = (1 - f) * rm + f * mean, (1 - f) * rv + f * uvar
        assert_close("nn.BatchNorm2d", m.running_mean, rm, op="nn", args=f"momentum={momentum}, running_mean step {step}")
        assert_close("nn.BatchNorm2d", m.running_var, rv, op="nn", args=f"momentum={momentum}, running_var step {step}")
        assert_equal("nn.BatchNorm2d", int(m.num_batches_tracked), step, args="num_batches_tracked")
    assert_equal("nn.BatchNorm2d", m.num_batches_tracked.dtype, torch.long, args="num_batches_tracked dtype")
    # eval: running statistics, and no update.
    m.eval()
    x = torch.randn(2, c, 3, 3, device=device, dtype=dtype)
    ref = (np64(x) - rm.reshape(1, -1, 1, 1)) / np.sqrt(rv.reshape(1, -1, 1, 1) + 1e-3)
    ref = ref * np64(m.weight).reshape(1, -1, 1, 1) + np64(m.bias).reshape(1, -1, 1, 1)
    assert_close("nn.BatchNorm2d", m(x), ref, op="nn", args="eval uses running stats")
    assert_close("nn.BatchNorm2d", m.running_mean, rm, op="nn", args="eval must not update running_mean")
    assert_equal("nn.BatchNorm2d", int(m.num_batches_tracked), 3, args="eval must not count")


@pytest.mark.parametrize("shape", [(8, 4), (5, 4, 6)], ids=["NC", "NCL"])
def test_batchnorm1d(device, dtype, shape):
    """BatchNorm1d normalises over (N) for 2-d input and (N, L) for 3-d input, per channel."""
    m = nn.BatchNorm1d(4, device=device, dtype=dtype)
    _randomise_affine(m)
    x = torch.randn(*shape, device=device, dtype=dtype) * 2 + 1
    axes = (0,) if len(shape) == 2 else (0, 2)
    assert_close("nn.BatchNorm1d", m(x), _bn_ref(np64(x), axes, np64(m.weight), np64(m.bias), 1e-5), op="nn", args=f"x{shape}")
    assert_close("nn.BatchNorm1d", m.running_var, 0.9 + 0.1 * np64(x).var(axis=axes, ddof=1), op="nn", args="running_var")


def test_batchnorm_affine_false_and_no_tracking(device):
    """affine=False: no weight/bias parameters; track_running_stats=False: running_mean/var are None and
    eval mode still uses batch statistics."""
    m = nn.BatchNorm2d(3, affine=False, device=device, dtype=torch.float64)
    assert_true("nn.BatchNorm2d", m.weight is None and m.bias is None, "affine=False must not create weight/bias")
    assert_equal("nn.BatchNorm2d", len(list(m.parameters())), 0, args="affine=False")
    x = torch.randn(4, 3, 2, 2, device=device, dtype=torch.float64) * 3 + 2
    assert_close("nn.BatchNorm2d", m(x), _bn_ref(np64(x), (0, 2, 3), None, None, 1e-5), op="nn", args="affine=False")
    t = nn.BatchNorm2d(3, track_running_stats=False, device=device, dtype=torch.float64).eval()
    assert_true("nn.BatchNorm2d", t.running_mean is None and t.running_var is None and t.num_batches_tracked is None,
                "track_running_stats=False must not keep running stats")
    assert_close("nn.BatchNorm2d", t(x), _bn_ref(np64(x), (0, 2, 3), np64(t.weight), np64(t.bias), 1e-5), op="nn",
                 args="track_running_stats=False, eval uses batch stats")
    keys = set(nn.BatchNorm2d(3).state_dict())
    assert_equal("nn.BatchNorm2d", keys, {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}, args="state_dict keys")


def test_batchnorm_errors_and_reset(device):
    """Training with one value per channel is a ValueError; wrong channel count is a RuntimeError;
    wrong input rank is a ValueError; reset_running_stats() restores 0/1/0."""
    m = nn.BatchNorm1d(3, device=device)
    assert_raises("nn.BatchNorm1d", ValueError, m, torch.randn(1, 3, device=device), args="batch of 1 in train")
    assert_raises("nn.BatchNorm2d", RuntimeError, nn.BatchNorm2d(3, device=device), torch.randn(2, 4, 2, 2, device=device),
                  args="4 channels into C=3")
    assert_raises("nn.BatchNorm2d", ValueError, nn.BatchNorm2d(3, device=device), torch.randn(2, 3, 4, device=device), args="3-d input")
    assert_raises("nn.BatchNorm1d", ValueError, nn.BatchNorm1d(3, device=device), torch.randn(2, 3, 4, 4, device=device), args="4-d input")
    m(torch.randn(5, 3, device=device) + 4)
    m.reset_running_stats()
    assert_close("nn.BatchNorm1d", m.running_mean, np.zeros(3), op="exact", args="reset_running_stats")
    assert_close("nn.BatchNorm1d", m.running_var, np.ones(3), op="exact", args="reset_running_stats")
    assert_equal("nn.BatchNorm1d", int(m.num_batches_tracked), 0, args="reset_running_stats")


def test_batchnorm_gradcheck(device):
    """BatchNorm2d train-mode backward (through the batch statistics) by finite differences."""
    m = nn.BatchNorm2d(2, device=device, dtype=torch.float64)
    _randomise_affine(m)
    x = torch.randn(3, 2, 2, 2, device=device, dtype=torch.float64, requires_grad=True)
    assert_true("nn.BatchNorm2d", torch.autograd.gradcheck(m, (x,)), "gradcheck failed", args="train")
    m.eval()
    assert_true("nn.BatchNorm2d", torch.autograd.gradcheck(m, (x,)), "gradcheck failed", args="eval")


@pytest.mark.dtypes(*dtypes.FLOATING)
@pytest.mark.parametrize("normalized_shape", [6, (6,), (4, 6), [3, 4, 6]])
@pytest.mark.parametrize("affine", ["default", "no_affine", "no_bias"])
def test_layernorm(device, dtype, normalized_shape, affine):
    """LayerNorm normalises over the trailing normalized_shape dims with biased variance and eps inside
    the sqrt; elementwise_affine=False has no parameters; bias=False has weight only. Catches a
    wrong reduction dims, unbiased variance, eps outside sqrt, an ignored affine flag."""
    kw = {"no_affine": {"elementwise_affine": False}, "no_bias": {"bias": False}, "default": {}}[affine]
    if "bias" in kw and "bias" not in inspect.signature(nn.LayerNorm.__init__).parameters:
        pytest.skip("nn.LayerNorm has no bias= in this torch (added in 2.1)")
    m = nn.LayerNorm(normalized_shape, eps=1e-2, device=device, dtype=dtype, **kw)
    _randomise_affine(m)
    shp = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    assert_equal("nn.LayerNorm", m.normalized_shape, shp, args="normalized_shape stored as tuple")
    x = torch.randn(3, 4, 6, device=device, dtype=dtype) * 3 + 1 if len(shp) < 3 else torch.randn(2, 3, 4, 6, device=device, dtype=dtype)
    w = np64(m.weight) if m.weight is not None else None
    b = np64(m.bias) if m.bias is not None else None
    if affine == "no_affine":
        assert_equal("nn.LayerNorm", len(list(m.parameters())), 0, args="elementwise_affine=False")
    if affine == "no_bias":
        assert_true("nn.LayerNorm", m.bias is None and m.weight is not None, "bias=False keeps weight, drops bias")
    assert_close("nn.LayerNorm", m(x), layer_norm(np64(x), len(shp), w, b, 1e-2), op="nn", args=f"{normalized_shape}, {affine}")
    m.eval()
    assert_close("nn.LayerNorm", m(x), layer_norm(np64(x), len(shp), w, b, 1e-2), op="nn", args="eval mode: same (no running stats)")


def test_layernorm_gradcheck_and_errors(device):
    """LayerNorm backward by finite differences; mismatched trailing shape is a RuntimeError; default
    init is weight 1, bias 0."""
    m = nn.LayerNorm((2, 3), device=device, dtype=torch.float64)
    assert_close("nn.LayerNorm", m.weight, np.ones((2, 3)), op="exact", args="default weight")
    assert_close("nn.LayerNorm", m.bias, np.zeros((2, 3)), op="exact", args="default bias")
    _randomise_affine(m)
    x = torch.randn(2, 2, 3, device=device, dtype=torch.float64, requires_grad=True)
    assert_true("nn.LayerNorm", torch.autograd.gradcheck(m, (x,)), "gradcheck failed")
    assert_raises("nn.LayerNorm", RuntimeError, m, torch.randn(2, 3, 2, device=device, dtype=torch.float64), args="trailing (3, 2)")


def _inorm_ref(x, w=None, b=None, eps=1e-5):
    return _bn_ref(x[None].reshape(1, -1, *x.shape[2:]), (0, 2, 3), None, None, eps).reshape(x.shape) * (
        1 if w is None else w.reshape(1, -1, 1, 1)) + (0 if b is None else b.reshape(1, -1, 1, 1))


@pytest.mark.parametrize("affine", [False, True])
def test_instancenorm2d(device, dtype, affine):
    """InstanceNorm2d normalises each (sample, channel) plane over H, W; defaults affine=False,
    track_running_stats=False (so eval also uses instance stats). Catches normalising over the batch."""
    m = nn.InstanceNorm2d(3, affine=affine, device=device, dtype=dtype)
    if not affine:
        assert_equal("nn.InstanceNorm2d", len(list(m.parameters())), 0, args="affine=False default")
    _randomise_affine(m)
    x = torch.randn(2, 3, 4, 5, device=device, dtype=dtype) * torch.arange(1, 4, device=device, dtype=dtype).view(1, 3, 1, 1)
    x = x + torch.tensor([0.0, 5.0], device=device, dtype=dtype).view(2, 1, 1, 1)
    w = np64(m.weight) if affine else None
    b = np64(m.bias) if affine else None
    assert_close("nn.InstanceNorm2d", m(x), _inorm_ref(np64(x), w, b), op="nn", args=f"affine={affine}")
    m.eval()
    assert_close("nn.InstanceNorm2d", m(x), _inorm_ref(np64(x), w, b), op="nn", args=f"affine={affine}, eval")
    xu = torch.randn(3, 4, 4, device=device, dtype=dtype)
    assert_close("nn.InstanceNorm2d", m(xu), _inorm_ref(np64(xu)[None], w, b)[0], op="nn", args="unbatched")


def test_instancenorm2d_track_running_stats(device):
    """track_running_stats=True: train updates running_mean with the batch average of per-instance means
    and running_var with the average of per-instance UNBIASED variances; eval then uses them."""
    m = nn.InstanceNorm2d(2, track_running_stats=True, momentum=0.2, device=device, dtype=torch.float64)
    x = torch.randn(3, 2, 3, 4, device=device, dtype=torch.float64) * 2 + 1
    m(x)
    xn = np64(x)
    rm = 0.8 * 0 + 0.2 * xn.mean(axis=(2, 3)).mean(0)
    rv = 0.8 * 1 + 0.2 * xn.var(axis=(2, 3), ddof=1).mean(0)
    assert_close("nn.InstanceNorm2d", m.running_mean, rm, op="nn", args="running_mean")
    assert_close("nn.InstanceNorm2d", m.running_var, rv, op="nn", args="running_var")
    m.eval()
    xe = torch.randn(2, 2, 3, 3, device=device, dtype=torch.float64)
    ref = (np64(xe) - rm.reshape(1, -1, 1, 1)) / np.sqrt(rv.reshape(1, -1, 1, 1) + 1e-5)
    assert_close("nn.InstanceNorm2d", m(xe), ref, op="nn", args="eval with running stats")


@pytest.mark.parametrize("groups,affine", [(1, True), (2, True), (6, True), (3, False)])
def test_groupnorm(device, dtype, groups, affine):
    """GroupNorm(G, C): normalise over (C/G channels, spatial) per sample, then per-channel affine.
    Catches groups taken over the wrong axis or affine per group instead of per channel."""
    m = nn.GroupNorm(groups, 6, eps=1e-4, affine=affine, device=device, dtype=dtype)
    _randomise_affine(m)
    x = torch.randn(2, 6, 3, 4, device=device, dtype=dtype) * 2 + torch.arange(6, device=device, dtype=dtype).view(1, 6, 1, 1)
    xn = np64(x).reshape(2, groups, -1)
    ref = ((xn - xn.mean(-1, keepdims=True)) / np.sqrt(xn.var(-1, keepdims=True) + 1e-4)).reshape(2, 6, 3, 4)
    if affine:
        ref = ref * np64(m.weight).reshape(1, 6, 1, 1) + np64(m.bias).reshape(1, 6, 1, 1)
    else:
        assert_true("nn.GroupNorm", m.weight is None, "affine=False must not create weight")
    assert_close("nn.GroupNorm", m(x), ref, op="nn", args=f"{groups}, 6, affine={affine}")


def test_groupnorm_errors_and_gradcheck(device):
    """num_channels not divisible by num_groups is a ValueError; backward by finite differences."""
    assert_raises("nn.GroupNorm", ValueError, nn.GroupNorm, 4, 6, args="4 groups, 6 channels")
    m = nn.GroupNorm(2, 4, device=device, dtype=torch.float64)
    _randomise_affine(m)
    x = torch.randn(2, 4, 3, device=device, dtype=torch.float64, requires_grad=True)
    assert_true("nn.GroupNorm", torch.autograd.gradcheck(m, (x,)), "gradcheck failed")


@pytest.mark.parametrize("cls,shape,axes", [(nn.BatchNorm3d, (3, 2, 2, 3, 2), (0, 2, 3, 4)), (nn.BatchNorm1d, (6, 2), (0,))],
                         ids=["BatchNorm3d", "BatchNorm1d-NC"])
def test_batchnorm_other_ranks(device, cls, shape, axes):
    """BatchNorm3d (N, C, D, H, W) normalises over N, D, H, W; running_var uses the unbiased variance."""
    m = cls(2, momentum=0.5, device=device, dtype=torch.float64)
    _randomise_affine(m)
    x = torch.randn(*shape, device=device, dtype=torch.float64) * 2 + 3
    assert_close(f"nn.{cls.__name__}", m(x), _bn_ref(np64(x), axes, np64(m.weight), np64(m.bias), 1e-5), op="nn")
    assert_close(f"nn.{cls.__name__}", m.running_var, 0.5 + 0.5 * np64(x).var(axis=axes, ddof=1), op="nn", args="running_var")
    assert_close(f"nn.{cls.__name__}", m.running_mean, 0.5 * np64(x).mean(axis=axes), op="nn", args="running_mean")


@pytest.mark.parametrize("cls,shape", [(nn.InstanceNorm1d, (2, 3, 7)), (nn.InstanceNorm3d, (2, 3, 2, 3, 4))],
                         ids=["InstanceNorm1d", "InstanceNorm3d"])
def test_instancenorm_other_ranks(device, cls, shape):
    """InstanceNorm1d/3d normalise each (sample, channel) over its spatial dims."""
    m = cls(3, affine=True, device=device, dtype=torch.float64)
    _randomise_affine(m)
    x = torch.randn(*shape, device=device, dtype=torch.float64) * 2 + 1
    a = np64(x)
    axes = tuple(range(2, a.ndim))
    ref = (a - a.mean(axis=axes, keepdims=True)) / np.sqrt(a.var(axis=axes, keepdims=True) + 1e-5)
    bshape = (1, 3) + (1,) * (a.ndim - 2)
    ref = ref * np64(m.weight).reshape(bshape) + np64(m.bias).reshape(bshape)
    assert_close(f"nn.{cls.__name__}", m(x), ref, op="nn")


@pytest.mark.parametrize("eps", [None, 0.1])
def test_rmsnorm(device, dtype, eps):
    """RMSNorm: y = x / sqrt(mean(x^2 over normalized_shape) + eps) * weight, eps default finfo(dtype).eps.
    Catches mean subtraction (LayerNorm instead), eps ignored, wrong reduction dims."""
    if not hasattr(nn, "RMSNorm"):
        pytest.skip("nn.RMSNorm needs torch >= 2.4")
    m = nn.RMSNorm((3, 4), eps=eps, device=device, dtype=dtype)
    _randomise_affine(m)
    x = torch.randn(2, 3, 4, device=device, dtype=dtype) * 0.3 + 0.5
    a = np64(x)
    e = torch.finfo(dtype).eps if eps is None else eps
    ref = a / np.sqrt((a ** 2).mean(axis=(1, 2), keepdims=True) + e) * np64(m.weight)
    assert_close("nn.RMSNorm", m(x), ref, op="nn", args=f"eps={eps}")
