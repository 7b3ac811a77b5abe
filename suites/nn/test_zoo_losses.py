"""§ 4 nn.Module and layers (module zoo): every loss module against its documented formula in float64
NumPy, for each reduction ('none', 'mean', 'sum', and 'batchmean' where documented), with the options
the documentation lists (weight, pos_weight, ignore_index, label_smoothing, margin, p, swap, log_input,
full, eps, log_target, zero_infinity, blank) and gapped (non-contiguous) inputs.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from harness.checks import assert_close, assert_raises, assert_true
from suites.nn._ref import log_softmax, np64

REDUCTIONS = ["none", "mean", "sum"]


def _reduce(loss: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "none":
        return loss
    return np.asarray(loss.mean() if reduction == "mean" else loss.sum())


def _gapped(t: torch.Tensor) -> torch.Tensor:
    """The same values as ``t`` in a non-contiguous view (every other element of the last dim of a
    buffer twice as wide), so the loss kernels' strided paths run."""
    buf = torch.empty(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype, device=t.device).fill_(float("nan"))
    buf[..., ::2] = t
    view = buf[..., ::2]
    assert not view.is_contiguous()
    return view


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


# ------------------------------------------------------------------ elementwise regression losses
def _huber(d, delta):
    a = np.abs(d)
    return np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta))


def _smooth_l1(d, beta):
    a = np.abs(d)
    if beta == 0:
        return a
    return np.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta)


ELEMENTWISE = [
    ("L1Loss", lambda r: nn.L1Loss(reduction=r), lambda x, y: np.abs(x - y)),
    ("MSELoss", lambda r: nn.MSELoss(reduction=r), lambda x, y: (x - y) ** 2),
    ("HuberLoss-delta1", lambda r: nn.HuberLoss(reduction=r), lambda x, y: _huber(x - y, 1.0)),
    ("HuberLoss-delta0.4", lambda r: nn.HuberLoss(reduction=r, delta=0.4), lambda x, y: _huber(x - y, 0.4)),
    ("SmoothL1Loss-beta1", lambda r: nn.SmoothL1Loss(reduction=r), lambda x, y: _smooth_l1(x - y, 1.0)),
    ("SmoothL1Loss-beta0.3", lambda r: nn.SmoothL1Loss(reduction=r, beta=0.3), lambda x, y: _smooth_l1(x - y, 0.3)),
    ("SmoothL1Loss-beta0", lambda r: nn.SmoothL1Loss(reduction=r, beta=0.0), lambda x, y: _smooth_l1(x - y, 0.0)),
    ("SoftMarginLoss", lambda r: nn.SoftMarginLoss(reduction=r), lambda x, y: np.logaddexp(0.0, -np.sign(y) * x)),
]


@pytest.mark.smoke
@pytest.mark.parametrize("name,make,ref", ELEMENTWISE, ids=[c[0] for c in ELEMENTWISE])
def test_elementwise_losses(device, dtype, name, make, ref):
    """L1/MSE/Huber/SmoothL1/SoftMargin follow their formulas on both sides of the delta/beta kink and
    apply the reduction. Catches a loss ignoring `reduction` (mean returned for sum), Huber and SmoothL1
    swapped (they differ by a factor beta), a kink at the wrong side, and a strided-input indexing bug."""
    for reduction in REDUCTIONS:
        x = torch.randn(6, 7, dtype=torch.float64) * 1.5
        y = torch.randn(6, 7, dtype=torch.float64) * 1.5
        if name == "SoftMarginLoss":
            y = torch.where(y > 0, 1.0, -1.0).double()
        x, y = x.to(device=device, dtype=dtype), y.to(device=device, dtype=dtype)
        got = make(reduction)(_gapped(x), _gapped(y))
        assert_close(f"nn.{name.split('-')[0]}", got, _reduce(ref(np64(x), np64(y)), reduction), op="nn",
                     args=f"{name}, reduction={reduction}, gapped", check_dtype=dtype)


# ------------------------------------------------------------------ binary cross entropy
@pytest.mark.parametrize("weighted", [False, True], ids=["noweight", "weight"])
def test_bce_loss(device, dtype, weighted):
    """BCELoss = -w [y log x + (1-y) log(1-x)] with each log clamped at -100 (documented), so x=0, y=1
    gives 100 rather than inf. Catches a dropped weight, y and 1-y swapped, and a missing clamp."""
    for reduction in REDUCTIONS:
        x = torch.rand(4, 5, dtype=torch.float64) * 0.98 + 0.01
        y = torch.rand(4, 5, dtype=torch.float64)
        x[0, 0], y[0, 0] = 0.0, 1.0  # clamped log: loss 100
        x[0, 1], y[0, 1] = 1.0, 0.0
        x[0, 2], y[0, 2] = 0.0, 0.0  # exact: 0
        w = torch.rand(5, dtype=torch.float64) + 0.5 if weighted else None
        xd, yd = x.to(device, dtype), y.to(device, dtype)
        mod = nn.BCELoss(weight=None if w is None else w.to(device, dtype), reduction=reduction)
        xn, yn = np64(xd), np64(yd)
        with np.errstate(divide="ignore"):
            ref = -(yn * np.maximum(np.log(xn), -100) + (1 - yn) * np.maximum(np.log(1 - xn), -100))
        if w is not None:
            ref = ref * np64(w.to(dtype))
        assert_close("nn.BCELoss", mod(xd, yd), _reduce(ref, reduction), op="nn",
                     args=f"reduction={reduction}, weight={weighted}")


@pytest.mark.parametrize("opts", ["plain", "weight", "pos_weight", "both"])
def test_bce_with_logits_loss(device, dtype, opts):
    """BCEWithLogitsLoss = -w [p y log s(x) + (1-y) log(1-s(x))] with pos_weight p broadcast over the
    class (last) dim, stable for logits of +-80. Catches pos_weight applied to the negative term or
    along the wrong dim, and a naive log(sigmoid) that returns inf for large logits."""
    for reduction in REDUCTIONS:
        x = torch.randn(3, 4, 5, dtype=torch.float64) * 3
        x[0, 0, :2] = torch.tensor([80.0, -80.0])
        y = torch.rand(3, 4, 5, dtype=torch.float64)
        w = torch.rand(4, 1, dtype=torch.float64) + 0.5 if opts in ("weight", "both") else None
        pw = torch.rand(5, dtype=torch.float64) * 3 + 0.2 if opts in ("pos_weight", "both") else None
        xd, yd = x.to(device, dtype), y.to(device, dtype)
        mod = nn.BCEWithLogitsLoss(weight=None if w is None else w.to(device, dtype),
                                   pos_weight=None if pw is None else pw.to(device, dtype), reduction=reduction)
        xn, yn = np64(xd), np64(yd)
        p = 1.0 if pw is None else np64(pw.to(dtype))
        ref = -(p * yn * _log_sigmoid(xn) + (1 - yn) * _log_sigmoid(-xn))
        if w is not None:
            ref = ref * np64(w.to(dtype))
        assert_close("nn.BCEWithLogitsLoss", mod(_gapped(xd), yd), _reduce(ref, reduction), op="nn",
                     args=f"reduction={reduction}, {opts}")


# ------------------------------------------------------------------ NLL / cross entropy
def _nll_ref(logp, target, weight, ignore_index, reduction, smoothing=0.0):
    """logp (N, C, *d), target (N, *d). Documented: l_n = -sum_c w_c logp_{n,c} q_{n,c}, q = (1-eps) onehot
    + eps/C, zero where ignored; mean divides by sum_n w_{y_n} over non-ignored n."""
    c = logp.shape[1]
    w = np.ones(c) if weight is None else weight
    lp = np.moveaxis(logp, 1, -1)  # (N, *d, C)
    ign = target == ignore_index
    t = np.where(ign, 0, target)
    onehot = np.eye(c)[t]
    q = (1 - smoothing) * onehot + smoothing / c
    per = -(lp * w * q).sum(-1)
    per = np.where(ign, 0.0, per)
    if reduction == "none":
        return per
    if reduction == "sum":
        return np.asarray(per.sum())
    return np.asarray(per.sum() / np.where(ign, 0.0, w[t]).sum())


@pytest.mark.parametrize("case", ["2d", "2d-weight-ignore", "kdim-weight"])
def test_nll_loss(device, dtype, case):
    """NLLLoss picks -w[y] x[n, y] and its 'mean' divides by the summed weights of the non-ignored targets
    (not by N). Catches mean over N, ignore_index ignored, weights indexed by position instead of class,
    and the K-dimensional (N, C, d1) layout read as channels-last."""
    for reduction in REDUCTIONS:
        n, c = 6, 5
        shape = (n, c) if case.startswith("2d") else (n, c, 3)
        logp = torch.randn(*shape, dtype=torch.float64)
        target = torch.randint(0, c, (shape[0],) + shape[2:])
        weight = torch.rand(c, dtype=torch.float64) + 0.2 if "weight" in case else None
        ignore = -100
        if "ignore" in case:
            ignore = 2
            target[0] = 2
        ld = logp.to(device, dtype)
        mod = nn.NLLLoss(weight=None if weight is None else weight.to(device, dtype), ignore_index=ignore, reduction=reduction)
        ref = _nll_ref(np64(ld), target.numpy(), None if weight is None else np64(weight.to(dtype)), ignore, reduction)
        assert_close("nn.NLLLoss", mod(ld, target.to(device)), ref, op="nn", args=f"{case}, reduction={reduction}")


def test_nll_loss2d(device):
    """NLLLoss2d (deprecated alias kept for old code) is NLLLoss on (N, C, H, W) with per-pixel targets.
    Catches the alias diverging from NLLLoss (e.g. reading the target as (N, W, H))."""
    logp = torch.randn(2, 4, 3, 5, dtype=torch.float64, device=device)
    target = torch.randint(0, 4, (2, 3, 5), device=device)
    w = torch.rand(4, dtype=torch.float64, device=device) + 0.3
    with warnings.catch_warnings():  # NLLLoss2d may warn about its deprecation (not part of this check)
        warnings.simplefilter("ignore")
        mod = nn.NLLLoss2d(weight=w)
    ref = _nll_ref(np64(logp), target.cpu().numpy(), np64(w), -100, "mean")
    assert_close("nn.NLLLoss2d", mod(logp, target), ref, op="nn", args="(2,4,3,5), weight")


@pytest.mark.smoke
@pytest.mark.parametrize("case", ["indices", "indices-weight-ignore", "indices-smoothing", "indices-all-kdim",
                                  "probs", "probs-weight-smoothing"])
def test_cross_entropy_loss(device, dtype, case):
    """CrossEntropyLoss = NLL of log_softmax over dim 1 with class-index targets (weights, ignore_index,
    label_smoothing mixing the one-hot with the uniform distribution) or class-probability targets
    (weighted sum, 'mean' over N). Catches softmax over the wrong dim, smoothing applied to ignored
    targets or not divided by C, probability targets averaged by the weight sum."""
    for reduction in REDUCTIONS:
        n, c = 5, 7
        kdim = "kdim" in case
        logits = torch.randn(n, c, *((3, 2) if kdim else ()), dtype=torch.float64) * 2
        weight = torch.rand(c, dtype=torch.float64) + 0.2 if ("weight" in case or "all" in case) else None
        smoothing = 0.15 if ("smoothing" in case or "all" in case) else 0.0
        ld = logits.to(device, dtype)
        wd = None if weight is None else weight.to(device, dtype)
        wn = None if weight is None else np64(weight.to(dtype))
        lp = log_softmax(np64(ld), 1)
        if case.startswith("indices"):
            target = torch.randint(0, c, (n, *((3, 2) if kdim else ())))
            ignore = -100
            if "ignore" in case or "all" in case:
                ignore = 3
                target.view(-1)[:2] = 3
            mod = nn.CrossEntropyLoss(weight=wd, ignore_index=ignore, reduction=reduction, label_smoothing=smoothing)
            ref = _nll_ref(lp, target.numpy(), wn, ignore, reduction, smoothing)
            got = mod(ld, target.to(device))
        else:
            probs = torch.softmax(torch.randn(n, c, dtype=torch.float64), 1)
            pn = np64(probs.to(dtype))
            q = (1 - smoothing) * pn + smoothing / c
            per = -(lp * (1.0 if wn is None else wn) * q).sum(1)
            ref = _reduce(per, reduction)
            mod = nn.CrossEntropyLoss(weight=wd, reduction=reduction, label_smoothing=smoothing)
            got = mod(_gapped(ld), probs.to(device, dtype))
        assert_close("nn.CrossEntropyLoss", got, ref, op="nn", args=f"{case}, reduction={reduction}")


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")
@pytest.mark.parametrize("log_target", [False, True], ids=["prob-target", "log-target"])
def test_kl_div_loss(device, dtype, log_target):
    """KLDivLoss = y (log y - x) (or e^y (y - x) with log_target), 0 where y = 0; 'batchmean' divides the
    sum by N, 'mean' by the element count. Catches batchmean dividing by numel, a NaN for y = 0 (0 * log 0),
    and log_target ignored."""
    for reduction in REDUCTIONS + ["batchmean"]:
        x = torch.log_softmax(torch.randn(4, 6, dtype=torch.float64), 1)
        y = torch.softmax(torch.randn(4, 6, dtype=torch.float64) * 2, 1)
        y[0, :3] = 0.0
        if log_target:
            y = torch.log(y.clamp_min(1e-30))
        xd, yd = x.to(device, dtype), y.to(device, dtype)
        xn, yn = np64(xd), np64(yd)
        if log_target:
            per = np.exp(yn) * (yn - xn)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                per = np.where(yn > 0, yn * (np.log(np.where(yn > 0, yn, 1)) - xn), 0.0)
        ref = np.asarray(per.sum() / x.shape[0]) if reduction == "batchmean" else _reduce(per, reduction)
        got = nn.KLDivLoss(reduction=reduction, log_target=log_target)(xd, yd)
        assert_close("nn.KLDivLoss", got, ref, op="nn", args=f"reduction={reduction}, log_target={log_target}")


@pytest.mark.parametrize("log_input,full", [(True, False), (False, False), (True, True), (False, True)],
                         ids=["log", "lin", "log-full", "lin-full"])
def test_poisson_nll_loss(device, dtype, log_input, full):
    """PoissonNLLLoss: exp(x) - y x (log_input) or x - y log(x + eps); full adds Stirling's
    y log y - y + log(2 pi y)/2 where y > 1 only. Catches eps dropped (log 0 = -inf at x = 0), the
    Stirling term added for y <= 1, log_input ignored."""
    for reduction in REDUCTIONS:
        y = torch.poisson(torch.rand(5, 6, dtype=torch.float64) * 4)
        x = torch.randn(5, 6, dtype=torch.float64) if log_input else torch.rand(5, 6, dtype=torch.float64) * 3
        if not log_input:
            x[0, 0] = 0.0  # eps keeps log finite
        xd, yd = x.to(device, dtype), y.to(device, dtype)
        xn, yn = np64(xd), np64(yd)
        eps = 1e-8
        per = np.exp(xn) - yn * xn if log_input else xn - yn * np.log(xn + eps)
        if full:
            with np.errstate(divide="ignore", invalid="ignore"):
                st = yn * np.log(np.where(yn > 0, yn, 1)) - yn + 0.5 * np.log(2 * math.pi * np.where(yn > 0, yn, 1))
            per = per + np.where(yn > 1, st, 0.0)
        got = nn.PoissonNLLLoss(log_input=log_input, full=full, eps=eps, reduction=reduction)(xd, yd)
        assert_close("nn.PoissonNLLLoss", got, _reduce(per, reduction), op="nn",
                     args=f"log_input={log_input}, full={full}, reduction={reduction}")


@pytest.mark.parametrize("var_shape", ["full", "homoscedastic", "squeezed"])
def test_gaussian_nll_loss(device, dtype, var_shape):
    """GaussianNLLLoss = (log max(var, eps) + (x - y)^2 / max(var, eps)) / 2 (+ log(2 pi)/2 with full),
    var either per element, (N, 1) or (N,) (one variance per sample). Catches the eps clamp missing,
    the 1/2 dropped, the (N,) variance broadcast along the wrong dim, and negative variance accepted."""
    for reduction in REDUCTIONS:
        n, d = 5, 4
        x = torch.randn(n, d, dtype=torch.float64)
        y = torch.randn(n, d, dtype=torch.float64)
        if var_shape == "full":
            var = torch.rand(n, d, dtype=torch.float64) + 0.1
            var[0, 0] = 1e-9  # clamped to eps
        elif var_shape == "homoscedastic":
            var = torch.rand(n, 1, dtype=torch.float64) + 0.1
        else:
            var = torch.rand(n, dtype=torch.float64) + 0.1
        xd, yd, vd = x.to(device, dtype), y.to(device, dtype), var.to(device, dtype)
        vn = np64(vd)
        if var_shape == "squeezed":
            vn = vn[:, None]
        for full in (False, True):
            v = np.maximum(vn, 1e-6)
            per = 0.5 * (np.log(v) + (np64(xd) - np64(yd)) ** 2 / v) + (0.5 * math.log(2 * math.pi) if full else 0.0)
            got = nn.GaussianNLLLoss(full=full, eps=1e-6, reduction=reduction)(xd, yd, vd)
            assert_close("nn.GaussianNLLLoss", got, _reduce(per, reduction), op="nn",
                         args=f"var {var_shape}, full={full}, reduction={reduction}")
        assert_raises("nn.GaussianNLLLoss", ValueError, nn.GaussianNLLLoss(), xd, yd, -vd.abs() - 0.1, args="negative var")


# ------------------------------------------------------------------ margin / embedding losses
def test_margin_ranking_loss(device, dtype):
    """MarginRankingLoss = max(0, -y (x1 - x2) + margin). Catches the sign of y or of the difference
    flipped and the margin ignored."""
    for reduction in REDUCTIONS:
        x1, x2 = torch.randn(2, 9, dtype=torch.float64).to(device, dtype)
        y = torch.tensor([1, -1, 1, -1, 1, -1, 1, 1, -1], dtype=dtype, device=device)
        for margin in (0.0, 0.7):
            per = np.maximum(0.0, -np64(y) * (np64(x1) - np64(x2)) + margin)
            got = nn.MarginRankingLoss(margin=margin, reduction=reduction)(x1, x2, y)
            assert_close("nn.MarginRankingLoss", got, _reduce(per, reduction), op="nn", args=f"margin={margin}, {reduction}")


def test_hinge_embedding_loss(device, dtype):
    """HingeEmbeddingLoss = x where y = 1 and max(0, margin - x) where y = -1. Catches the two branches
    swapped and the margin ignored."""
    for reduction in REDUCTIONS:
        x = (torch.randn(4, 6, dtype=torch.float64) * 2).to(device, dtype)
        y = torch.where(torch.rand(4, 6) > 0.5, 1.0, -1.0).to(device, dtype)
        for margin in (1.0, 2.5):
            xn, yn = np64(x), np64(y)
            per = np.where(yn == 1, xn, np.maximum(0.0, margin - xn))
            got = nn.HingeEmbeddingLoss(margin=margin, reduction=reduction)(x, y)
            assert_close("nn.HingeEmbeddingLoss", got, _reduce(per, reduction), op="nn", args=f"margin={margin}, {reduction}")


def test_cosine_embedding_loss(device, dtype):
    """CosineEmbeddingLoss = 1 - cos(x1, x2) for y = 1 and max(0, cos - margin) for y = -1 (cosine along
    dim 1). Catches the cosine taken along dim 0, the margin ignored, branches swapped."""
    for reduction in REDUCTIONS:
        x1 = torch.randn(6, 5, dtype=torch.float64).to(device, dtype)
        x2 = torch.randn(6, 5, dtype=torch.float64).to(device, dtype)
        x2[0] = x1[0] * 2  # cos = 1 exactly
        y = torch.tensor([1, 1, -1, -1, 1, -1], dtype=dtype, device=device)
        a, b = np64(x1), np64(x2)
        cos = (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))
        for margin in (0.0, 0.3):
            per = np.where(np64(y) == 1, 1 - cos, np.maximum(0.0, cos - margin))
            got = nn.CosineEmbeddingLoss(margin=margin, reduction=reduction)(x1, x2, y)
            assert_close("nn.CosineEmbeddingLoss", got, _reduce(per, reduction), op="nn", args=f"margin={margin}, {reduction}")


def test_multilabel_margin_loss(device, dtype):
    """MultiLabelMarginLoss: targets are class indices up to the first -1; loss = sum over target j and
    non-target i of max(0, 1 - (x[y_j] - x[i])) / C. Catches indices after the -1 used, targets counted
    as non-targets, the 1/C missing."""
    for reduction in REDUCTIONS:
        x = torch.randn(3, 5, dtype=torch.float64).to(device, dtype)
        y = torch.tensor([[3, 0, -1, 1, 1], [1, 2, 4, -1, 0], [-1, 2, 2, 2, 2]], device=device)
        xn = np64(x)
        per = np.zeros(3)
        for n in range(3):
            tg = []
            for v in y[n].tolist():
                if v < 0:
                    break
                tg.append(v)
            others = [i for i in range(5) if i not in tg]
            per[n] = sum(max(0.0, 1 - (xn[n, j] - xn[n, i])) for j in tg for i in others) / 5
        got = nn.MultiLabelMarginLoss(reduction=reduction)(x, y)
        assert_close("nn.MultiLabelMarginLoss", got, _reduce(per, reduction), op="nn", args=reduction)


@pytest.mark.parametrize("weighted", [False, True], ids=["noweight", "weight"])
def test_multilabel_soft_margin_loss(device, dtype, weighted):
    """MultiLabelSoftMarginLoss = -(1/C) sum_i w_i [y_i log s(x_i) + (1 - y_i) log s(-x_i)] per sample.
    Catches the mean taken over N*C before weighting, the class weight ignored."""
    for reduction in REDUCTIONS:
        x = (torch.randn(4, 6, dtype=torch.float64) * 2).to(device, dtype)
        y = (torch.rand(4, 6) > 0.5).to(device, dtype)
        w = (torch.rand(6, dtype=torch.float64) + 0.5).to(device, dtype) if weighted else None
        xn, yn = np64(x), np64(y)
        per = -(yn * _log_sigmoid(xn) + (1 - yn) * _log_sigmoid(-xn)) * (1.0 if w is None else np64(w))
        got = nn.MultiLabelSoftMarginLoss(weight=w, reduction=reduction)(x, y)
        assert_close("nn.MultiLabelSoftMarginLoss", got, _reduce(per.mean(1), reduction), op="nn",
                     args=f"{reduction}, weight={weighted}")


@pytest.mark.parametrize("p,margin,weighted", [(1, 1.0, False), (2, 1.0, False), (1, 0.5, True), (2, 0.7, True)],
                         ids=["p1", "p2", "p1-margin-weight", "p2-margin-weight"])
def test_multi_margin_loss(device, dtype, p, margin, weighted):
    """MultiMarginLoss = sum_{i != y} w[y] max(0, margin - x[y] + x[i])^p / C (documented form with
    weight). Catches i = y included, p ignored, w indexed by i instead of y."""
    for reduction in REDUCTIONS:
        x = torch.randn(5, 4, dtype=torch.float64).to(device, dtype)
        y = torch.tensor([0, 3, 1, 2, 3], device=device)
        w = (torch.rand(4, dtype=torch.float64) + 0.5).to(device, dtype) if weighted else None
        xn = np64(x)
        per = np.zeros(5)
        for n, t in enumerate(y.tolist()):
            s = sum(max(0.0, margin - xn[n, t] + xn[n, i]) ** p for i in range(4) if i != t)
            per[n] = s * (1.0 if w is None else np64(w)[t]) / 4
        got = nn.MultiMarginLoss(p=p, margin=margin, weight=w, reduction=reduction)(x, y)
        assert_close("nn.MultiMarginLoss", got, _reduce(per, reduction), op="nn", args=f"p={p}, margin={margin}, {reduction}")


def _pdist(a, b, p, eps=1e-6):
    """pairwise_distance: ||a - b + eps||_p along the last dim (documented eps inside the norm)."""
    return (np.abs(a - b + eps) ** p).sum(-1) ** (1.0 / p)


@pytest.mark.parametrize("p,swap", [(2.0, False), (1.0, False), (2.0, True), (3.0, True)], ids=["p2", "p1", "p2-swap", "p3-swap"])
def test_triplet_margin_loss(device, dtype, p, swap):
    """TripletMarginLoss = max(d(a, p) - d(a, n) + margin, 0) with d the p-norm distance (eps inside),
    swap: d(a, n) replaced by min(d(a, n), d(p, n)). Catches swap ignored, p ignored, anchor/positive
    roles swapped."""
    for reduction in REDUCTIONS:
        a, pos, neg = (torch.randn(3, 6, 5, dtype=torch.float64)).to(device, dtype)
        neg[0] = pos[0] + 0.01  # positive close to negative: swap changes the result
        an, pn, nn_ = np64(a), np64(pos), np64(neg)
        dn = _pdist(an, nn_, p)
        if swap:
            dn = np.minimum(dn, _pdist(pn, nn_, p))
        per = np.maximum(_pdist(an, pn, p) - dn + 1.0, 0.0)
        got = nn.TripletMarginLoss(margin=1.0, p=p, swap=swap, reduction=reduction)(a, pos, neg)
        assert_close("nn.TripletMarginLoss", got, _reduce(per, reduction), op="nn", args=f"p={p}, swap={swap}, {reduction}")


@pytest.mark.parametrize("dist", ["default", "cosine"])
def test_triplet_margin_with_distance_loss(device, dtype, dist):
    """TripletMarginWithDistanceLoss uses pairwise_distance by default and any callable otherwise
    (here 1 - cosine similarity), with margin and swap. Catches the custom distance ignored and the
    margin not applied."""
    for reduction in REDUCTIONS:
        a, pos, neg = (torch.randn(3, 6, 5, dtype=torch.float64)).to(device, dtype)
        an, pn, nn_ = np64(a), np64(pos), np64(neg)
        if dist == "default":
            fn, ref = None, lambda u, v: _pdist(u, v, 2.0)
        else:
            def fn(u, v):
                return 1.0 - torch.nn.functional.cosine_similarity(u, v)

            def ref(u, v):
                return 1.0 - (u * v).sum(-1) / np.sqrt((u * u).sum(-1) * (v * v).sum(-1))
        for margin, swap in ((1.0, False), (0.3, True)):
            dn = ref(an, nn_)
            if swap:
                dn = np.minimum(dn, ref(pn, nn_))
            per = np.maximum(ref(an, pn) - dn + margin, 0.0)
            mod = nn.TripletMarginWithDistanceLoss(distance_function=fn, margin=margin, swap=swap, reduction=reduction)
            got = mod(a, pos, neg)
            assert_close("nn.TripletMarginWithDistanceLoss", got, _reduce(per, reduction), op="nn",
                         args=f"{dist}, margin={margin}, swap={swap}, {reduction}")


# ------------------------------------------------------------------ CTC
def _ctc_nll(lp: np.ndarray, target: list[int], blank: int) -> float:
    """-log p(target | lp) by the CTC forward recursion (Graves et al. 2006) in log space; lp (T, C)."""
    ext = [blank]
    for t in target:
        ext += [t, blank]
    n_s, n_t = len(ext), lp.shape[0]
    alpha = np.full((n_t, n_s), -np.inf)
    alpha[0, 0] = lp[0, ext[0]]
    if n_s > 1:
        alpha[0, 1] = lp[0, ext[1]]
    for t in range(1, n_t):
        for s in range(n_s):
            a = alpha[t - 1, s]
            if s >= 1:
                a = np.logaddexp(a, alpha[t - 1, s - 1])
            if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                a = np.logaddexp(a, alpha[t - 1, s - 2])
            alpha[t, s] = a + lp[t, ext[s]]
    ll = alpha[-1, -1] if n_s == 1 else np.logaddexp(alpha[-1, -1], alpha[-1, -2])
    return -ll


@pytest.mark.parametrize("blank,concat", [(0, False), (4, True)], ids=["blank0-padded", "blank4-concat"])
def test_ctc_loss(device, dtype, blank, concat):
    """CTCLoss = -log sum over alignments (forward recursion) per sample, with per-sample input and
    target lengths, repeated labels (which need a blank between them), a custom blank, padded (N, S) or
    concatenated targets; 'mean' divides each loss by its target length, then averages. Catches the
    repeat rule missing, lengths ignored (padding read as labels), mean over N only."""
    for reduction in REDUCTIONS:
        t_len, n, c = 12, 3, 5
        logits = torch.randn(t_len, n, c, dtype=torch.float64)
        lp = torch.log_softmax(logits, 2).to(device, dtype)
        labels = [l for l in range(c) if l != blank]
        targets = [[labels[0], labels[1], labels[1]], [labels[2]], [labels[3], labels[0], labels[2], labels[3]]]
        in_lens = [12, 7, 10]
        tl = [len(t) for t in targets]
        if concat:
            tg = torch.tensor([v for t in targets for v in t], device=device)
        else:
            tg = torch.full((n, max(tl)), labels[0], dtype=torch.long)
            for i, t in enumerate(targets):
                tg[i, :len(t)] = torch.tensor(t)
            tg = tg.to(device)
        lpn = np64(lp)
        per = np.array([_ctc_nll(lpn[:in_lens[i], i], targets[i], blank) for i in range(n)])
        ref = per if reduction == "none" else np.asarray((per / np.array(tl)).mean() if reduction == "mean" else per.sum())
        got = nn.CTCLoss(blank=blank, reduction=reduction)(lp, tg, torch.tensor(in_lens), torch.tensor(tl))
        assert_close("nn.CTCLoss", got, ref, op="nn", args=f"blank={blank}, concat={concat}, {reduction}")


def test_ctc_loss_impossible_alignment_and_zero_infinity(device):
    """An input shorter than the target (plus the blanks its repeats need) has probability 0: loss inf,
    or 0 with zero_infinity=True, while a feasible sample in the same batch keeps its value. Catches
    zero_infinity ignored or zeroing every sample."""
    lp = torch.log_softmax(torch.randn(4, 2, 3, dtype=torch.float64), 2).to(device)
    tg = torch.tensor([[1, 1, 2], [1, 2, 0]], device=device)  # sample 0 needs 4 steps (1, blank, 1, 2): T=3 too short
    in_lens, tl = torch.tensor([3, 4]), torch.tensor([3, 2])
    feasible = _ctc_nll(np64(lp)[:4, 1], [1, 2], 0)
    got = nn.CTCLoss(reduction="none")(lp, tg, in_lens, tl)
    assert_close("nn.CTCLoss", got, np.array([np.inf, feasible]), op="nn", args="infeasible sample")
    got = nn.CTCLoss(reduction="none", zero_infinity=True)(lp, tg, in_lens, tl)
    assert_close("nn.CTCLoss", got, np.array([0.0, feasible]), op="nn", args="zero_infinity=True")


# ------------------------------------------------------------------ adaptive softmax and linear CE
def test_adaptive_log_softmax_with_loss(device, dtype):
    """AdaptiveLogSoftmaxWithLoss from its own weights: head = shortlist classes + one logit per cluster;
    a class in cluster i has log p = head_logp[shortlist + i] + tail_i_logp[class - cutoff_i], the tail
    being Linear(in, in/div^(i+1)) then Linear(., cluster size). forward returns (log p(target), -mean);
    log_prob rows are normalised; predict is their argmax. Catches cluster logits at the wrong head
    column, div_value ignored, and the loss not the negated mean."""
    torch.manual_seed(0)
    n_in, n_classes, cutoffs = 16, 20, [5, 12]
    m = nn.AdaptiveLogSoftmaxWithLoss(n_in, n_classes, cutoffs, div_value=2.0, head_bias=True).to(device, dtype)
    assert_true("nn.AdaptiveLogSoftmaxWithLoss", m.tail[0][0].out_features == 8 and m.tail[1][0].out_features == 4,
                "tail projections are in_features / div_value^(i+1)")
    x = torch.randn(7, n_in, dtype=torch.float64).to(device, dtype)
    target = torch.tensor([0, 4, 5, 11, 12, 19, 7], device=device)
    xn = np64(x)
    head = log_softmax(xn @ np64(m.head.weight).T + np64(m.head.bias), 1)
    full = np.zeros((7, n_classes))
    full[:, :cutoffs[0]] = head[:, :cutoffs[0]]
    bounds = cutoffs + [n_classes]
    for i in range(len(cutoffs)):
        proj, out = m.tail[i][0], m.tail[i][1]
        tail = log_softmax((xn @ np64(proj.weight).T) @ np64(out.weight).T, 1)
        full[:, bounds[i]:bounds[i + 1]] = head[:, cutoffs[0] + i:cutoffs[0] + i + 1] + tail
    ref_out = full[np.arange(7), target.cpu().numpy()]
    out, loss = m(x, target)
    assert_close("nn.AdaptiveLogSoftmaxWithLoss", out, ref_out, op="nn", args="output")
    assert_close("nn.AdaptiveLogSoftmaxWithLoss", loss, -ref_out.mean(), op="nn", args="loss")
    assert_close("nn.AdaptiveLogSoftmaxWithLoss.log_prob", m.log_prob(x), full, op="nn")
    assert_close("nn.AdaptiveLogSoftmaxWithLoss.predict", m.predict(x), full.argmax(1), op="exact")


@pytest.mark.parametrize("case", ["plain", "bias-weight-ignore-smoothing", "kdim", "chunked"])
def test_linear_cross_entropy_loss(device, dtype, case):
    """LinearCrossEntropyLoss = CrossEntropyLoss of input @ W^T (+ b) with W viewed as (C, *out_features,
    in): values and the input/weight gradients against float64 NumPy, for the reference path and the
    chunked path (LinearCrossEntropyOptions, N >= in_features, C > in_features so chunking applies).
    Catches the chunked path dropping a chunk or mis-accumulating the weight gradient, out_features
    reshaped in the wrong order, and options silently changing the result."""
    for reduction in REDUCTIONS:
        if not hasattr(nn, "LinearCrossEntropyLoss"):
            pytest.skip(f"nn.LinearCrossEntropyLoss is not in torch {torch.__version__}")
        n_in, c = 8, 11
        n = 24 if case == "chunked" else 6
        kw = {}
        out_features = (3,) if case == "kdim" else ()
        if case == "bias-weight-ignore-smoothing":
            kw = dict(bias=True, weight=(torch.rand(c, dtype=torch.float64) + 0.3).to(device, dtype), ignore_index=2,
                      label_smoothing=0.1)
        if case == "chunked":
            from torch.nn.modules.linear_cross_entropy_options import LinearCrossEntropyOptions

            kw = dict(options=LinearCrossEntropyOptions())
        m = nn.LinearCrossEntropyLoss(n_in, c, out_features=out_features, reduction=reduction, **kw).to(device, dtype)
        x = torch.randn(n, n_in, dtype=torch.float64).to(device, dtype).requires_grad_(True)
        target = torch.randint(0, c, (n, *out_features), device=device)
        if case == "bias-weight-ignore-smoothing":
            target[0] = 2
        got = m(x, target)
        # float64 reference with autograd-free NumPy values, gradients by torch autograd in float64 from the
        # same formula written out explicitly (log_softmax + gather), never through linear_cross_entropy
        w64 = np64(m.linear.weight).reshape(c, *out_features, n_in)
        logits = np.einsum("ni,c...i->nc...", np64(x), w64)
        if m.linear.bias is not None:
            logits = logits + np64(m.linear.bias).reshape((1, c) + out_features)
        wn = None if kw.get("weight") is None else np64(kw["weight"])
        ignore = kw.get("ignore_index", -100)
        ref = _nll_ref(log_softmax(logits, 1), target.cpu().numpy(), wn, ignore, reduction, kw.get("label_smoothing", 0.0))
        assert_close("nn.LinearCrossEntropyLoss", got, ref, op="nn", args=f"{case}, reduction={reduction}")
        # gradients: torch float64 autograd of the explicit formula as the oracle
        xr = x.detach().double().requires_grad_(True)
        wr = m.linear.weight.detach().double().requires_grad_(True)
        lg = torch.einsum("ni,c...i->nc...", xr, wr.reshape(c, *out_features, n_in))
        if m.linear.bias is not None:
            lg = lg + m.linear.bias.detach().double().reshape((1, c) + out_features)
        lr = torch.log_softmax(lg, 1)
        refl = _explicit_ce(lr, target, None if wn is None else torch.from_numpy(wn).to(device), ignore, reduction,
                            kw.get("label_smoothing", 0.0))
        gout = torch.randn_like(refl)
        gx, gw = torch.autograd.grad(refl, (xr, wr), gout)
        ax, aw = torch.autograd.grad(got, (x, m.linear.weight), gout.to(dtype))
        gop = "gradient" if dtype == torch.float64 else "nn"
        assert_close("nn.LinearCrossEntropyLoss", ax, gx, op=gop, args=f"{case}, {reduction} d/dinput")
        assert_close("nn.LinearCrossEntropyLoss", aw, gw, op=gop, args=f"{case}, {reduction} d/dweight")


def _explicit_ce(logp, target, weight, ignore, reduction, smoothing):
    """The documented cross entropy written out in torch float64 ops (gather, sums), for autograd."""
    c = logp.shape[1]
    w = torch.ones(c, dtype=logp.dtype, device=logp.device) if weight is None else weight
    lp = logp.movedim(1, -1)
    ign = target == ignore
    t = torch.where(ign, 0, target)
    q = (1 - smoothing) * torch.nn.functional.one_hot(t, c).to(lp.dtype) + smoothing / c
    per = -(lp * w * q).sum(-1)
    per = torch.where(ign, 0.0, per)
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    return per.sum() / torch.where(ign, 0.0, w[t]).sum()
