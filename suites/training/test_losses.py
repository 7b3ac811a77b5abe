"""§ 6 Model training: loss functions (CrossEntropyLoss, NLLLoss, BCEWithLogitsLoss, BCELoss, MSELoss,
L1Loss, SmoothL1Loss, HuberLoss, MarginRankingLoss, TripletMarginLoss, KLDivLoss, CosineEmbeddingLoss,
a custom loss module) against their documented formulas in NumPy float64, for every ``reduction``
and documented argument, with gradients (gradcheck in float64 and closed forms for the main ones).

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from harness import dtypes
from harness.checks import assert_close, assert_equal, assert_raises, assert_true

REDUCTIONS = ("none", "mean", "sum")


# ---------------------------------------------------------------------------- NumPy references
def _reduce(loss: np.ndarray, reduction: str, denom: float | None = None):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return np.asarray(loss.sum())
    return np.asarray(loss.sum() / (loss.size if denom is None else denom))


def _np_log_softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _np_nll(logp, target, weight, ignore_index, reduction):
    """logp (N, C, *d), target (N, *d): -w[y] logp[y], mean over the weights of non-ignored targets."""
    c = logp.shape[1]
    w = np.ones(c) if weight is None else weight
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    picked = np.take_along_axis(logp, safe[:, None], axis=1)[:, 0]
    wy = np.where(valid, w[safe], 0.0)
    loss = -wy * picked
    return _reduce(loss, reduction, denom=wy.sum())


def _np_cross_entropy(x, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    logp = _np_log_softmax(x, axis=1)
    c = x.shape[1]
    w = np.ones(c) if weight is None else weight
    wshape = (1, c) + (1,) * (x.ndim - 2)
    if target.dtype.kind == "f":  # class probabilities, same shape as input
        t = target * (1 - label_smoothing) + label_smoothing / c
        loss = -(w.reshape(wshape) * t * logp).sum(axis=1)
        return _reduce(loss, reduction, denom=loss.size)
    nll = _np_nll(logp, target, weight, ignore_index, reduction)
    if label_smoothing == 0:
        return nll
    valid = target != ignore_index
    smooth = -(w.reshape(wshape) * logp).sum(axis=1)
    smooth = np.where(valid, smooth, 0.0)
    if reduction == "mean":
        safe = np.where(valid, target, 0)
        smooth_r = smooth.sum() / np.where(valid, w[safe], 0.0).sum()
    else:
        smooth_r = _reduce(smooth, reduction)
    return (1 - label_smoothing) * nll + label_smoothing / c * smooth_r


def _t(a, device, dtype=torch.float64, requires_grad=False):
    return torch.tensor(np.asarray(a), dtype=dtype, device=device, requires_grad=requires_grad)


def _i(a, device):
    return torch.tensor(np.asarray(a), dtype=torch.int64, device=device)


# ---------------------------------------------------------------------------- CrossEntropy / NLL
@pytest.mark.smoke
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_is_log_softmax_plus_nll(device, dtype, reduction, np_rng):
    """CrossEntropyLoss(x, y) equals -log_softmax(x)[y] (NumPy) and equals NLLLoss(LogSoftmax(x), y) in
    torch too; catches a CE whose softmax axis, sign, or reduction is wrong."""
    x = np_rng.standard_normal((6, 5)) * 3
    y = np_rng.integers(0, 5, size=6)
    xt, yt = _t(x, device, dtype), _i(y, device)
    got = nn.CrossEntropyLoss(reduction=reduction)(xt, yt)
    assert_close("nn.CrossEntropyLoss", got, _np_cross_entropy(x, y, reduction=reduction), op="nn",
                 args=f"reduction={reduction!r}", check_dtype=dtype)
    composed = nn.NLLLoss(reduction=reduction)(nn.LogSoftmax(dim=1)(xt), yt)
    assert_close("nn.CrossEntropyLoss", got, composed.detach().double(), op="nn",
                 args=f"vs NLLLoss(LogSoftmax), reduction={reduction!r}")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_weight_ignore_index(device, reduction, np_rng):
    """weight scales each sample's loss by w[y]; ignore_index drops samples; mean divides by the sum of
    the weights of the non-ignored targets (not by N); catches a mean over N or an ignored sample counted."""
    x = np_rng.standard_normal((8, 4))
    y = np.array([0, 1, 2, 3, 1, 2, 0, 3])
    y[[2, 5]] = 2  # the ignored class below appears twice
    w = np.array([0.5, 2.0, 1.0, 3.0])
    for ignore in (-100, 2):
        got = nn.CrossEntropyLoss(weight=_t(w, device), ignore_index=ignore, reduction=reduction)(_t(x, device), _i(y, device))
        exp = _np_cross_entropy(x, y, weight=w, ignore_index=ignore, reduction=reduction)
        assert_close("nn.CrossEntropyLoss", got, exp, op="nn", args=f"weight, ignore_index={ignore}, reduction={reduction!r}")
        if reduction == "none" and ignore == 2:
            assert_equal("nn.CrossEntropyLoss", got[torch.as_tensor(y == 2, device=device)].abs().sum().item(), 0.0,
                         args="ignored entries are 0 with reduction='none'")


def test_cross_entropy_all_ignored_mean_is_nan(device):
    """With every target ignored, the mean has zero weight and is NaN (0/0), as documented for NLLLoss."""
    got = F.cross_entropy(torch.randn(3, 4, device=device, dtype=torch.float64), _i([1, 1, 1], device), ignore_index=1)
    assert_true("nn.CrossEntropyLoss", torch.isnan(got).item(), f"expected NaN for all-ignored mean, got {got.item()}")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.1, 0.4])
def test_cross_entropy_label_smoothing(device, reduction, smoothing, np_rng):
    """label_smoothing=eps mixes the target with the uniform distribution: (1-eps)*nll + eps/C*sum_c(-w_c logp_c),
    with weight and ignore_index; catches smoothing ignored or applied with the wrong C."""
    x = np_rng.standard_normal((7, 5)) * 2
    y = np_rng.integers(0, 5, size=7)
    y[3] = 4
    w = np_rng.uniform(0.5, 2.0, size=5)
    for kw in ({}, {"weight": w, "ignore_index": 4}):
        tkw = {k: (_t(v, device) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
        got = nn.CrossEntropyLoss(label_smoothing=smoothing, reduction=reduction, **tkw)(_t(x, device), _i(y, device))
        exp = _np_cross_entropy(x, y, label_smoothing=smoothing, reduction=reduction, **kw)
        assert_close("nn.CrossEntropyLoss", got, exp, op="nn", args=f"label_smoothing={smoothing}, {sorted(kw)}, reduction={reduction!r}")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_probability_targets(device, dtype, reduction, np_rng):
    """Class-probability targets (float, same shape as input): -sum_c w_c p_c logp_c; 'mean' divides by N
    (not by the weights); with label smoothing too; catches probabilities treated as indices or mis-normalised."""
    x = np_rng.standard_normal((5, 4))
    p = np_rng.uniform(size=(5, 4)); p /= p.sum(1, keepdims=True)
    w = np.array([1.0, 0.5, 2.0, 1.5])
    for kw in ({}, {"weight": w}, {"label_smoothing": 0.2}):
        tkw = {k: (_t(v, device, dtype) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
        got = F.cross_entropy(_t(x, device, dtype), _t(p, device, dtype), reduction=reduction, **tkw)
        exp = _np_cross_entropy(x, p, reduction=reduction, **kw)
        assert_close("nn.CrossEntropyLoss", got, exp, op="nn", args=f"prob targets, {sorted(kw)}, reduction={reduction!r}")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_k_dimensional(device, reduction, np_rng):
    """K-dim input (N, C, d1, d2) with target (N, d1, d2): class axis is dim 1, per-pixel losses, weights
    and ignore_index per pixel; catches a softmax over the wrong axis or a wrong 'none' shape."""
    x = np_rng.standard_normal((2, 3, 4, 5))
    y = np_rng.integers(0, 3, size=(2, 4, 5))
    w = np.array([1.0, 2.0, 0.5])
    got = F.cross_entropy(_t(x, device), _i(y, device), weight=_t(w, device), ignore_index=1, reduction=reduction)
    exp = _np_cross_entropy(x, y, weight=w, ignore_index=1, reduction=reduction)
    assert_close("nn.CrossEntropyLoss", got, exp, op="nn", args=f"(N,C,d1,d2), reduction={reduction!r}")
    if reduction == "none":
        assert_equal("nn.CrossEntropyLoss", tuple(got.shape), (2, 4, 5), args="K-dim reduction='none' shape")


@pytest.mark.dtypes(dtypes.FLOAT_HIGH)
def test_cross_entropy_gradient_closed_form(device, dtype, np_rng):
    """d CE_mean / d logits = (softmax(x) - onehot(y)) * w[y] / sum(w[y]); catches a broken CE backward."""
    x = np_rng.standard_normal((6, 4))
    y = np_rng.integers(0, 4, size=6)
    w = np.array([1.0, 2.0, 0.5, 1.5])
    xt = _t(x, device, dtype, requires_grad=True)
    F.cross_entropy(xt, _i(y, device), weight=_t(w, device, dtype)).backward()
    sm = np.exp(_np_log_softmax(x))
    onehot = np.eye(4)[y]
    exp = (sm - onehot) * w[y][:, None] / w[y].sum()
    assert_close("nn.CrossEntropyLoss.backward", xt.grad, exp, op="gradient", args="weight, mean")


def test_cross_entropy_nll_gradcheck(device):
    """gradcheck (float64 finite differences) of CE (indices, probabilities, smoothing, K-dim) and NLLLoss."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, generator=g, dtype=torch.float64).to(device).requires_grad_()
    xk = torch.randn(2, 3, 2, 2, generator=g, dtype=torch.float64).to(device).requires_grad_()
    y = torch.tensor([0, 2, 1, 2], device=device)
    yk = torch.randint(0, 3, (2, 2, 2), generator=g).to(device)
    p = torch.softmax(torch.randn(4, 3, generator=g, dtype=torch.float64), 1).to(device)
    w = torch.tensor([0.3, 1.0, 2.0], dtype=torch.float64, device=device)
    cases = {
        "CE indices weight": lambda a: F.cross_entropy(a, y, weight=w, ignore_index=1),
        "CE probs smoothing": lambda a: F.cross_entropy(a, p, label_smoothing=0.1, reduction="sum"),
        "CE indices smoothing": lambda a: F.cross_entropy(a, y, weight=w, label_smoothing=0.2, reduction="none"),
        "NLL": lambda a: F.nll_loss(a, y, weight=w),
    }
    for name, fn in cases.items():
        assert_true("torch.autograd.gradcheck", torch.autograd.gradcheck(fn, (x,), raise_exception=False), f"gradcheck failed: {name}")
    assert_true("torch.autograd.gradcheck", torch.autograd.gradcheck(lambda a: F.cross_entropy(a, yk), (xk,), raise_exception=False),
                "gradcheck failed: CE K-dim")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss(device, dtype, reduction, np_rng):
    """NLLLoss picks -w[y] * input[y] (no softmax inside) with weight and ignore_index, also K-dim;
    catches an NLL that re-normalises its input or ignores weight/ignore_index."""
    x = np_rng.standard_normal((6, 4))  # deliberately not log-probabilities
    y = np.array([0, 3, 3, 1, 2, 3])
    w = np.array([2.0, 1.0, 0.5, 0.25])
    for kw in ({}, {"weight": w}, {"weight": w, "ignore_index": 3}, {"ignore_index": 0}):
        tkw = {k: (_t(v, device, dtype) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
        got = nn.NLLLoss(reduction=reduction, **tkw)(_t(x, device, dtype), _i(y, device))
        exp = _np_nll(x, y, kw.get("weight"), kw.get("ignore_index", -100), reduction)
        assert_close("nn.NLLLoss", got, exp, op="nn", args=f"{sorted(kw)}, reduction={reduction!r}")
    xk = np_rng.standard_normal((2, 4, 3))
    yk = np_rng.integers(0, 4, size=(2, 3))
    got = F.nll_loss(_t(xk, device), _i(yk, device), reduction=reduction)
    assert_close("nn.NLLLoss", got, _np_nll(xk, yk, None, -100, reduction), op="nn", args=f"K-dim, reduction={reduction!r}")


def test_nll_cross_entropy_errors(device):
    """Wrong target dtype (float for NLL), batch size mismatch and out-of-range class raise."""
    x = torch.randn(3, 4, device=device)
    assert_raises("nn.NLLLoss", RuntimeError, F.nll_loss, x, torch.tensor([0.0, 1.0, 2.0], device=device), args="float target")
    assert_raises("nn.CrossEntropyLoss", (ValueError, RuntimeError), F.cross_entropy, x, _i([0, 1], device), args="batch 3 vs 2")
    if device == "cpu":  # on CUDA an out-of-range class is a device-side assert that poisons the context
        assert_raises("nn.CrossEntropyLoss", (IndexError, RuntimeError), F.cross_entropy, x, _i([0, 1, 4], device), args="class 4 of 4")
    assert_raises("nn.CrossEntropyLoss", RuntimeError, F.cross_entropy, x, torch.rand(3, 5, device=device), args="prob target shape (3,5) vs (3,4)")


# ---------------------------------------------------------------------------- binary losses
def _np_bce_logits(x, y, weight=None, pos_weight=None):
    pw = 1.0 if pos_weight is None else pos_weight
    w = 1.0 if weight is None else weight
    # -log(sigmoid(x)) = logaddexp(0, -x); -log(1 - sigmoid(x)) = logaddexp(0, x): stable in float64
    return w * (pw * y * np.logaddexp(0, -x) + (1 - y) * np.logaddexp(0, x))


@pytest.mark.smoke
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits(device, dtype, reduction, np_rng):
    """BCEWithLogitsLoss = -w[pos_weight*y*log s(x) + (1-y) log(1-s(x))] with pos_weight broadcast over
    the last (class) dim and weight broadcast over the batch; catches pos_weight applied to negatives,
    broadcast on the wrong axis, or weight ignored."""
    x = np_rng.standard_normal((5, 3)) * 3
    y = (np_rng.uniform(size=(5, 3)) > 0.5).astype(float)
    y[0] = [0.3, 0.7, 0.5]  # soft labels are allowed
    pw = np.array([1.0, 3.0, 0.5])
    w = np_rng.uniform(0.5, 2.0, size=(5, 1))
    for kw in ({}, {"pos_weight": pw}, {"weight": w}, {"weight": w, "pos_weight": pw}):
        tkw = {k: _t(v, device, dtype) for k, v in kw.items()}
        got = nn.BCEWithLogitsLoss(reduction=reduction, **tkw)(_t(x, device, dtype), _t(y, device, dtype))
        exp = _reduce(_np_bce_logits(x, y, **kw), reduction)
        assert_close("nn.BCEWithLogitsLoss", got, exp, op="nn", args=f"{sorted(kw)}, reduction={reduction!r}", check_dtype=dtype)


@pytest.mark.dtypes(dtypes.FLOAT_HIGH)
def test_bce_with_logits_stability(device, dtype):
    """At |logit| = 100 the loss stays finite and exact (log-sum-exp trick): wrong-side logits give 100,
    right-side give ~0, and the gradient is sigmoid(x) - y; catches a naive log(sigmoid(x))."""
    x = torch.tensor([100.0, -100.0, 100.0, -100.0, 0.0], dtype=dtype, device=device, requires_grad=True)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0], dtype=dtype, device=device)
    pw = torch.tensor([2.0], dtype=dtype, device=device)
    loss = F.binary_cross_entropy_with_logits(x, y, pos_weight=pw, reduction="none")
    xn, yn = np.array([100.0, -100.0, 100.0, -100.0, 0.0]), np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    assert_close("nn.BCEWithLogitsLoss", loss, _np_bce_logits(xn, yn, pos_weight=2.0), op="nn", args="|x|=100, pos_weight=2")
    loss.sum().backward()
    sig = 1 / (1 + np.exp(-xn))
    # d/dx of w[p y log1p(exp(-x)) + (1-y) log1p(exp(x))] = (1-y) s - p y (1-s)
    exp_grad = (1 - yn) * sig - 2.0 * yn * (1 - sig)
    assert_close("nn.BCEWithLogitsLoss.backward", x.grad, exp_grad, op="gradient", args="|x|=100")


def test_bce_with_logits_gradient(device, np_rng):
    """Closed form d mean(BCEWithLogits)/dx = (s(x) - y)/n without weights, and gradcheck with weight and
    pos_weight (w.r.t. input and target); catches a wrong BCE backward."""
    x = np_rng.standard_normal((4, 3))
    y = np_rng.uniform(size=(4, 3))
    xt = _t(x, device, requires_grad=True)
    F.binary_cross_entropy_with_logits(xt, _t(y, device)).backward()
    assert_close("nn.BCEWithLogitsLoss.backward", xt.grad, (1 / (1 + np.exp(-x)) - y) / x.size, op="gradient")
    pw, w = _t([1.0, 2.0, 0.5], device), _t(np_rng.uniform(size=(4, 1)), device)
    ok = torch.autograd.gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b, weight=w, pos_weight=pw),
                                  (_t(x, device, requires_grad=True), _t(y, device, requires_grad=True)), raise_exception=False)
    assert_true("torch.autograd.gradcheck", ok, "gradcheck failed: BCEWithLogits(weight, pos_weight)")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_loss(device, dtype, reduction, np_rng):
    """BCELoss = -w[y log x + (1-y) log(1-x)] with each log clamped at >= -100 (so x=0,y=1 gives 100, not
    inf); catches missing clamping or a swapped y/1-y."""
    x = np_rng.uniform(0.01, 0.99, size=(4, 3))
    x[0, 0], x[0, 1], x[1, 0] = 0.0, 1.0, 0.0
    y = (np_rng.uniform(size=(4, 3)) > 0.5).astype(float)
    y[0, 0], y[0, 1], y[1, 0] = 1.0, 0.0, 0.0
    w = np_rng.uniform(0.5, 1.5, size=(3,))
    with np.errstate(divide="ignore"):
        lx, l1x = np.maximum(np.log(x), -100), np.maximum(np.log(1 - x), -100)
    for weight in (None, w):
        got = nn.BCELoss(weight=None if weight is None else _t(weight, device, dtype), reduction=reduction)(_t(x, device, dtype), _t(y, device, dtype))
        exp = _reduce((1.0 if weight is None else weight) * -(y * lx + (1 - y) * l1x), reduction)
        assert_close("nn.BCELoss", got, exp, op="nn", args=f"weight={'yes' if weight is not None else None}, reduction={reduction!r}")


def test_bce_errors(device):
    """Input and target of different sizes are an error (ValueError) for both BCE losses, never broadcast."""
    x, t = torch.rand(4, 1, device=device), torch.rand(4, device=device)
    assert_raises("nn.BCELoss", ValueError, F.binary_cross_entropy, x, t, args="(4,1) vs (4,)")
    assert_raises("nn.BCEWithLogitsLoss", ValueError, F.binary_cross_entropy_with_logits, x, t, args="(4,1) vs (4,)")


# ---------------------------------------------------------------------------- regression losses
def _np_smooth_l1(d, beta):
    a = np.abs(d)
    if beta == 0:
        return a
    return np.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta)


def _np_huber(d, delta):
    a = np.abs(d)
    return np.where(a <= delta, 0.5 * d * d, delta * (a - 0.5 * delta))


REGRESSION = {
    "MSELoss": (lambda **kw: nn.MSELoss(**kw), lambda d: d * d, {}),
    "L1Loss": (lambda **kw: nn.L1Loss(**kw), np.abs, {}),
    "SmoothL1Loss(beta=1)": (lambda **kw: nn.SmoothL1Loss(beta=1.0, **kw), lambda d: _np_smooth_l1(d, 1.0), {}),
    "SmoothL1Loss(beta=0.5)": (lambda **kw: nn.SmoothL1Loss(beta=0.5, **kw), lambda d: _np_smooth_l1(d, 0.5), {}),
    "SmoothL1Loss(beta=0)": (lambda **kw: nn.SmoothL1Loss(beta=0.0, **kw), lambda d: _np_smooth_l1(d, 0.0), {}),
    "HuberLoss(delta=1)": (lambda **kw: nn.HuberLoss(delta=1.0, **kw), lambda d: _np_huber(d, 1.0), {}),
    "HuberLoss(delta=2.5)": (lambda **kw: nn.HuberLoss(delta=2.5, **kw), lambda d: _np_huber(d, 2.5), {}),
}


@pytest.mark.parametrize("name", list(REGRESSION))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses(device, dtype, name, reduction, np_rng):
    """MSE (d^2), L1 (|d|), SmoothL1 (0.5 d^2/beta below beta, |d|-beta/2 above; L1 at beta=0), Huber
    (0.5 d^2 below delta, delta(|d|-delta/2) above) on differences straddling the thresholds; catches an
    ignored beta/delta, Huber/SmoothL1 confusion (they differ by a factor beta), or a wrong reduction."""
    make, ref, _ = REGRESSION[name]
    x = np_rng.standard_normal((4, 5)) * 2
    y = np_rng.standard_normal((4, 5))
    y[0, :3] = x[0, :3] + np.array([0.25, 1.0, 2.5])  # exactly at/around the thresholds
    got = make(reduction=reduction)(_t(x, device, dtype), _t(y, device, dtype))
    x32, y32 = _t(x, "cpu", dtype).double().numpy(), _t(y, "cpu", dtype).double().numpy()  # oracle on the same rounded inputs
    assert_close(f"nn.{name}", got, _reduce(ref(x32 - y32), reduction), op="nn", args=f"reduction={reduction!r}", check_dtype=dtype)


@pytest.mark.parametrize("name", list(REGRESSION))
def test_regression_losses_gradcheck(device, name, np_rng):
    """gradcheck in float64 (away from the kinks) w.r.t. input and target; plus d MSE_mean/dx = 2(x-y)/n."""
    make, _, _ = REGRESSION[name]
    x = np_rng.standard_normal((3, 4)) * 2
    y = x + np.sign(np_rng.standard_normal((3, 4))) * np_rng.uniform(0.1, 3.0, size=(3, 4))
    y[np.abs(np.abs(x - y) - 1.0) < 0.05] += 0.2  # keep finite differences off the kinks
    y[np.abs(np.abs(x - y) - 0.5) < 0.05] += 0.2
    y[np.abs(np.abs(x - y) - 2.5) < 0.05] += 0.2
    loss = make(reduction="mean")
    ok = torch.autograd.gradcheck(loss, (_t(x, device, requires_grad=True), _t(y, device, requires_grad=True)), raise_exception=False)
    assert_true("torch.autograd.gradcheck", ok, f"gradcheck failed: {name}")
    if name == "MSELoss":
        xt = _t(x, device, requires_grad=True)
        loss(xt, _t(y, device)).backward()
        assert_close("nn.MSELoss.backward", xt.grad, 2 * (x - y) / x.size, op="gradient")


def test_mse_size_mismatch_warns_and_broadcasts(device):
    """MSELoss with a target of a different (broadcastable) size warns (UserWarning) and broadcasts; a
    non-broadcastable target raises; catches a silently broadcasting loss (a classic training bug)."""
    x, y = torch.randn(4, 1, device=device, dtype=torch.float64), torch.randn(4, device=device, dtype=torch.float64)
    with pytest.warns(UserWarning, match="size"):
        got = F.mse_loss(x, y)
    xn, yn = x.cpu().numpy(), y.cpu().numpy()
    assert_close("nn.MSELoss", got, np.mean((xn - yn[None, :]) ** 2), op="nn", args="(4,1) vs (4,) broadcast to (4,4)")
    with pytest.warns(UserWarning):
        assert_raises("nn.MSELoss", RuntimeError, F.mse_loss, torch.randn(3, device=device), torch.randn(4, device=device), args="(3,) vs (4,)")


def test_huber_smooth_l1_invalid_args(device):
    """Negative beta / non-positive delta are rejected."""
    x = torch.randn(3, device=device)
    assert_raises("nn.SmoothL1Loss", RuntimeError, F.smooth_l1_loss, x, x, beta=-1.0, args="beta=-1")
    assert_raises("nn.HuberLoss", RuntimeError, F.huber_loss, x, x, delta=0.0, args="delta=0")


# ---------------------------------------------------------------------------- ranking / metric losses
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_margin_ranking_loss(device, dtype, reduction, margin, np_rng):
    """MarginRankingLoss = max(0, -y (x1 - x2) + margin) with y in {1,-1}; catches a sign flip or ignored margin."""
    x1, x2 = np_rng.standard_normal(8), np_rng.standard_normal(8)
    y = np.where(np_rng.uniform(size=8) > 0.5, 1.0, -1.0)
    got = nn.MarginRankingLoss(margin=margin, reduction=reduction)(_t(x1, device, dtype), _t(x2, device, dtype), _t(y, device, dtype))
    exp = _reduce(np.maximum(0, -y * (x1 - x2) + margin), reduction)
    assert_close("nn.MarginRankingLoss", got, exp, op="nn", args=f"margin={margin}, reduction={reduction!r}")
    a = _t(x1, device, requires_grad=True)
    ok = torch.autograd.gradcheck(lambda u: F.margin_ranking_loss(u, _t(x2, device), _t(y, device), margin=margin + 0.0123), (a,), raise_exception=False)
    assert_true("torch.autograd.gradcheck", ok, "gradcheck failed: MarginRankingLoss")


def _np_pdist(a, b, p, eps):
    return (np.abs(a - b + eps) ** p).sum(-1) ** (1.0 / p)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p,margin,swap", [(2.0, 1.0, False), (1.0, 0.5, False), (2.0, 2.0, True), (3.0, 1.0, True)])
def test_triplet_margin_loss(device, reduction, p, margin, swap, np_rng):
    """TripletMarginLoss = max(d(a,p) - d(a,n) + margin, 0), d(x,y) = ||x - y + eps||_p; swap=True uses
    min(d(a,n), d(p,n)); catches ignored p/swap/margin/eps or a swapped positive/negative."""
    a, pos, neg = (np_rng.standard_normal((6, 4)) for _ in range(3))
    neg[0] = pos[0] + 0.1  # makes the swap distance the smaller one for some rows
    eps = 1e-6
    got = nn.TripletMarginLoss(margin=margin, p=p, swap=swap, eps=eps, reduction=reduction)(
        _t(a, device), _t(pos, device), _t(neg, device))
    dap, dan = _np_pdist(a, pos, p, eps), _np_pdist(a, neg, p, eps)
    if swap:
        dan = np.minimum(dan, _np_pdist(pos, neg, p, eps))
    exp = _reduce(np.maximum(dap - dan + margin, 0), reduction)
    assert_close("nn.TripletMarginLoss", got, exp, op="nn", args=f"p={p}, margin={margin}, swap={swap}, reduction={reduction!r}")
    # eps is part of the distance: a large eps changes the value as the formula says
    got_eps = F.triplet_margin_loss(_t(a, device), _t(pos, device), _t(neg, device), margin=margin, p=p, eps=0.3, swap=swap, reduction="none")
    dap, dan = _np_pdist(a, pos, p, 0.3), _np_pdist(a, neg, p, 0.3)
    if swap:
        dan = np.minimum(dan, _np_pdist(pos, neg, p, 0.3))
    assert_close("nn.TripletMarginLoss", got_eps, np.maximum(dap - dan + margin, 0), op="nn", args=f"eps=0.3, p={p}, swap={swap}")
    ok = torch.autograd.gradcheck(lambda u, v, w: F.triplet_margin_loss(u, v, w, margin=margin, p=p, swap=swap),
                                  (_t(a, device, requires_grad=True), _t(pos, device, requires_grad=True), _t(neg, device, requires_grad=True)),
                                  raise_exception=False)
    assert_true("torch.autograd.gradcheck", ok, f"gradcheck failed: TripletMarginLoss(p={p}, swap={swap})")


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")
@pytest.mark.parametrize("reduction", ["none", "mean", "sum", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_loss(device, dtype, reduction, log_target, np_rng):
    """KLDivLoss(input=log q, target=p) = p (log p - log q) pointwise (0 where p = 0), or with log_target
    exp(t)(t - input); 'batchmean' divides the sum by the batch size, 'mean' by the element count;
    catches swapped arguments, log_target ignored, batchmean confused with mean."""
    q = np_rng.uniform(size=(4, 5)); q /= q.sum(1, keepdims=True)
    p = np_rng.uniform(size=(4, 5)); p[0, 1] = 0.0; p /= p.sum(1, keepdims=True)
    logq = np.log(q)
    if log_target:
        target = np.log(p + 0.05)  # log-probabilities (unnormalised is fine: the formula is pointwise)
        pointwise = np.exp(target) * (target - logq)
    else:
        target = p
        with np.errstate(divide="ignore", invalid="ignore"):
            pointwise = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1)) - logq), 0.0)
    got = nn.KLDivLoss(reduction=reduction, log_target=log_target)(_t(logq, device, dtype), _t(target, device, dtype))
    exp = pointwise.sum() / 4 if reduction == "batchmean" else _reduce(pointwise, reduction)
    assert_close("nn.KLDivLoss", got, exp, op="nn", args=f"reduction={reduction!r}, log_target={log_target}")
    x = _t(logq, device, requires_grad=True)
    ok = torch.autograd.gradcheck(lambda u: F.kl_div(u, _t(target, device), reduction=reduction, log_target=log_target), (x,), raise_exception=False)
    assert_true("torch.autograd.gradcheck", ok, f"gradcheck failed: KLDivLoss({reduction}, log_target={log_target})")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.3])
def test_cosine_embedding_loss(device, dtype, reduction, margin, np_rng):
    """CosineEmbeddingLoss: 1 - cos(x1, x2) for y = 1, max(0, cos - margin) for y = -1; catches a sign error
    or a margin applied to the positive pairs."""
    x1, x2 = np_rng.standard_normal((6, 5)), np_rng.standard_normal((6, 5))
    x2[1] = x1[1] * 2 + 0.1  # a near-parallel pair
    y = np.array([1, -1, 1, -1, -1, 1], dtype=float)
    cos = (x1 * x2).sum(1) / np.sqrt((x1 * x1).sum(1) * (x2 * x2).sum(1))
    exp = _reduce(np.where(y > 0, 1 - cos, np.maximum(0, cos - margin)), reduction)
    got = nn.CosineEmbeddingLoss(margin=margin, reduction=reduction)(_t(x1, device, dtype), _t(x2, device, dtype), _t(y, device, dtype))
    assert_close("nn.CosineEmbeddingLoss", got, exp, op="nn", args=f"margin={margin}, reduction={reduction!r}")
    ok = torch.autograd.gradcheck(lambda a, b: F.cosine_embedding_loss(a, b, _t(y, device), margin=margin),
                                  (_t(x1, device, requires_grad=True), _t(x2, device, requires_grad=True)), raise_exception=False)
    assert_true("torch.autograd.gradcheck", ok, "gradcheck failed: CosineEmbeddingLoss")


def test_invalid_reduction_raises(device):
    """An unknown reduction string is rejected (ValueError), never silently treated as 'mean'."""
    x = torch.randn(3, device=device)
    assert_raises("nn.MSELoss", ValueError, F.mse_loss, x, x, reduction="avg", args="reduction='avg'")
    assert_raises("nn.L1Loss", ValueError, F.l1_loss, x, x, reduction="median", args="reduction='median'")


def test_empty_batch_mean_is_nan_sum_zero(device):
    """On an empty batch 'sum' is 0 and 'mean' is NaN (0/0) for MSE/L1; catches a mean that returns 0."""
    x = torch.zeros(0, 3, device=device)
    assert_equal("nn.MSELoss", F.mse_loss(x, x, reduction="sum").item(), 0.0, args="empty, sum")
    assert_true("nn.MSELoss", torch.isnan(F.mse_loss(x, x)).item(), "mean over an empty batch must be NaN")
    assert_equal("nn.L1Loss", tuple(F.l1_loss(x, x, reduction="none").shape), (0, 3), args="empty, none")


# ---------------------------------------------------------------------------- custom loss
class WeightedMSELoss(nn.Module):
    """The document's custom-loss pattern: an nn.Module whose forward computes the loss from tensor ops."""

    def __init__(self, weight):
        super().__init__()
        self.register_buffer("weight", weight)

    def forward(self, pred, target):
        return torch.mean(self.weight * (pred - target) ** 2)


def test_custom_loss_module_backpropagates(device, np_rng):
    """A loss written as an nn.Module from tensor ops backpropagates through autograd: value and gradient
    w.r.t. a Linear layer's weight match the closed form; its buffer moves with .to(device)."""
    xw = np_rng.standard_normal((3, 2))
    xb = np_rng.standard_normal(3)
    x = np_rng.standard_normal((5, 2))
    t = np_rng.standard_normal((5, 3))
    w = np_rng.uniform(0.5, 2.0, size=(3,))
    lin = nn.Linear(2, 3).double()
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(xw)); lin.bias.copy_(torch.from_numpy(xb))
    lin = lin.to(device)
    crit = WeightedMSELoss(torch.from_numpy(w)).to(device)
    assert_equal("nn.Module.to", crit.weight.device.type, device, args="custom loss buffer")
    loss = crit(lin(_t(x, device)), _t(t, device))
    loss.backward()
    pred = x @ xw.T + xb
    r = pred - t
    assert_close("custom loss", loss, np.mean(w * r * r), op="nn")
    grad_w = (2 * w * r / r.size).T @ x
    assert_close("custom loss.backward", lin.weight.grad, grad_w, op="gradient", args="dL/dW")
    assert_close("custom loss.backward", lin.bias.grad, (2 * w * r / r.size).sum(0), op="gradient", args="dL/db")
