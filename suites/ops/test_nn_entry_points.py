"""Operator library: the torch-level entry points of nn ops (torch.batch_norm, torch.layer_norm, torch.dropout,
torch.embedding_bag, torch.ctc_loss, torch.max_pool2d, torch.grid_sampler, the SyncBatchNorm building blocks
batch_norm_stats/gather/elemt/backward, ...) and a few nn.functional ops no other suite calls
(gumbel_softmax, fractional_max_pool2d/3d, conv_tbc, native_channel_shuffle), each called directly and
checked against NumPy in float64: normalizations and their running statistics, the dropout family's
documented scaling 1/(1-p) and zero fraction within 6 sigma (alpha dropout: the SELU-preserving affine
map, mean and variance kept), embedding bags per mode with offsets and per-sample weights, losses for every
reduction, a NumPy CTC forward algorithm, max pooling with padding/dilation/ceil_mode, activations, the
affine grid and bilinear/nearest grid sampling, matrix norms, and the Gumbel-softmax argmax distribution.
Inputs are non-contiguous ([..., ::2] of a wider array) where the op takes strided input.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness import tolerances
from harness.checks import assert_close, assert_equal, assert_raises, assert_true


def _nc(a, dtype, device):
    """A non-contiguous tensor holding ``a``: every second element of a twice-as-wide last dim."""
    a = np.asarray(a)
    wide = np.repeat(a, 2, axis=-1)
    t = torch.tensor(wide, dtype=dtype, device=device)[..., ::2]
    assert not t.is_contiguous()
    return t


def _np(t):
    return t.detach().cpu().double().numpy()


# ----------------------------------------------------------------------------------------------- norms

def _ref_norm(x, axes, eps, w=None, b=None, shape=None):
    m = x.mean(axis=axes, keepdims=True)
    v = x.var(axis=axes, keepdims=True)
    y = (x - m) / np.sqrt(v + eps)
    if w is not None:
        y = y * w.reshape(shape)
    if b is not None:
        y = y + b.reshape(shape)
    return y


@pytest.mark.smoke
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm(device, dtype, np_rng, training):
    """torch.batch_norm: training normalizes with the batch's biased variance and moves the running stats by
    momentum (running var with the unbiased variance); eval uses the running stats. Catches the unbiased
    variance used to normalize, momentum applied as 1-momentum, running stats ignored in eval."""
    x64 = np_rng.standard_normal((6, 4, 5)) * 2 + 1
    x = _nc(x64, dtype, device)
    xs = _np(x)
    w, b = np_rng.uniform(0.5, 2, 4), np_rng.standard_normal(4)
    rm64, rv64 = np_rng.standard_normal(4), np_rng.uniform(0.5, 2, 4)
    t = lambda a: torch.tensor(a, dtype=dtype, device=device)
    rm, rv = t(rm64), t(rv64)
    eps, mom = 1e-3, 0.3
    got = torch.batch_norm(x, t(w), t(b), rm, rv, training, mom, eps, False)
    shape = (1, 4, 1)
    if training:
        want = _ref_norm(xs, (0, 2), eps, w, b, shape)
        n = xs.shape[0] * xs.shape[2]
        assert_close("torch.batch_norm", rm, (1 - mom) * rm64 + mom * xs.mean((0, 2)), op="nn", args="running_mean")
        assert_close("torch.batch_norm", rv, (1 - mom) * rv64 + mom * xs.var((0, 2)) * n / (n - 1), op="nn",
                     args="running_var (unbiased)")
    else:
        want = (xs - rm64.reshape(shape)) / np.sqrt(rv64.reshape(shape) + eps) * w.reshape(shape) + b.reshape(shape)
        assert_close("torch.batch_norm", rm, _np(t(rm64)), op="exact", args="eval: running_mean untouched")
    assert_close("torch.batch_norm", got, want, op="nn", args=f"training={training}")


@pytest.mark.dtypes(torch.float32, torch.float64, torch.bfloat16)
def test_layer_group_instance_rms_norm(device, dtype, np_rng):
    """torch.layer_norm / group_norm / instance_norm / rms_norm / _fused_rms_norm against NumPy: the axes each one
    normalizes over, weight and bias, eps, the running stats of instance_norm (mean over the batch of the
    per-instance statistics), rms_norm's default eps (finfo(dtype).eps). Catches a norm over the wrong axes,
    weight/bias swapped, eps inside vs outside the sqrt."""
    x64 = np_rng.standard_normal((3, 6, 4, 5)) * 1.5 + 0.5
    x = _nc(x64, dtype, device)
    xs = _np(x)
    t = lambda a: torch.tensor(a, dtype=dtype, device=device)
    eps = 1e-4
    w2, b2 = np_rng.uniform(0.5, 2, (4, 5)), np_rng.standard_normal((4, 5))
    assert_close("torch.layer_norm", torch.layer_norm(x, [4, 5], t(w2), t(b2), eps),
                 _ref_norm(xs, (2, 3), eps, w2, b2, (1, 1, 4, 5)), op="nn", args="normalized_shape=[4, 5]")
    wc, bc = np_rng.uniform(0.5, 2, 6), np_rng.standard_normal(6)
    g = xs.reshape(3, 3, 2, 4, 5)
    gref = _ref_norm(g, (2, 3, 4), eps).reshape(xs.shape) * wc.reshape(1, 6, 1, 1) + bc.reshape(1, 6, 1, 1)
    assert_close("torch.group_norm", torch.group_norm(x, 3, t(wc), t(bc), eps), gref, op="nn", args="num_groups=3")
    assert_raises("torch.group_norm", RuntimeError, torch.group_norm, x, 4, args="6 channels in 4 groups")
    rm64, rv64 = np.zeros(6), np.ones(6)
    rm, rv = t(rm64), t(rv64)
    got = torch.instance_norm(x, t(wc), t(bc), rm, rv, True, 0.2, eps, False)
    assert_close("torch.instance_norm", got, _ref_norm(xs, (2, 3), eps, wc, bc, (1, 6, 1, 1)), op="nn")
    assert_close("torch.instance_norm", rm, 0.2 * xs.mean((2, 3)).mean(0), op="nn", args="running_mean")
    assert_close("torch.instance_norm", rv, 0.8 + 0.2 * xs.var((2, 3), ddof=1).mean(0), op="nn", args="running_var")
    w5 = np_rng.uniform(0.5, 2, 5)
    ms = (xs ** 2).mean(-1, keepdims=True)
    assert_close("torch.rms_norm", torch.rms_norm(x, [5], t(w5), eps), xs / np.sqrt(ms + eps) * w5, op="nn")
    feps = torch.finfo(dtype).eps
    assert_close("torch.rms_norm", torch.rms_norm(x, [5]), xs / np.sqrt(ms + feps), op="nn", args="eps=None")
    if hasattr(torch, "_fused_rms_norm"):
        y, rstd = torch._fused_rms_norm(x, [5], t(w5), eps)
        assert_close("torch._fused_rms_norm", y, xs / np.sqrt(ms + eps) * w5, op="nn")
        assert_close("torch._fused_rms_norm", rstd, 1 / np.sqrt(ms + eps), op="nn", args="rstd")


# --------------------------------------------------------------------------------------------- dropout

_N = 1 << 16  # past 32,768: the vectorized/chunked kernels


def _six_sigma(frac, p, n, api, args):
    sigma = math.sqrt(p * (1 - p) / n)
    assert_true(api, abs(frac - p) <= 6 * sigma, f"dropped fraction {frac:.4f}, expected {p} +/- {6 * sigma:.4f}", args=args)


@pytest.mark.parametrize("p", [0.2, 0.6])
def test_dropout(device, np_rng, p):
    """torch.dropout / torch.native_dropout: kept elements are x/(1-p), the rest 0, the dropped fraction is p within
    6 sigma, native_dropout's mask marks exactly the kept ones; train=False is the identity. Catches scaling by
    (1-p) or not at all, p read as the keep probability, a mask not matching the output."""
    x64 = np_rng.uniform(0.5, 2, (_N // 512, 1024))
    x = _nc(x64, torch.float32, device)
    xs = _np(x)
    y = _np(torch.dropout(x, p, True))
    kept = y != 0
    _six_sigma(1 - kept.mean(), p, xs.size, "torch.dropout", f"p={p}")
    assert_close("torch.dropout", y[kept], xs[kept] / (1 - p), op="elementwise", dtype=torch.float32, args="kept / (1-p)")
    assert_close("torch.dropout", torch.dropout(x, p, False), xs, op="exact", dtype=torch.float32, args="train=False")
    out, mask = torch.native_dropout(x, p, True)
    m = mask.cpu().numpy()
    assert_true("torch.native_dropout", mask.dtype == torch.bool, f"mask dtype {mask.dtype}")
    _six_sigma(1 - m.mean(), p, xs.size, "torch.native_dropout", f"p={p}")
    assert_close("torch.native_dropout", out, np.where(m, xs / (1 - p), 0.0), op="elementwise", args="out = x*mask/(1-p)")
    out, mask = torch.native_dropout(x, p, False)
    assert_close("torch.native_dropout", out, xs, op="exact", dtype=torch.float32, args="train=False")
    assert_true("torch.native_dropout", bool(mask.all()), "train=False mask not all True")
    assert_raises("torch.dropout", RuntimeError, torch.dropout, x, 1.5, True, args="p=1.5")


def test_feature_dropout(device, np_rng):
    """torch.feature_dropout zeroes whole channels (all of a (n, c) plane or none) with probability p and scales
    the rest by 1/(1-p). Catches element-wise instead of channel-wise masks."""
    p = 0.3
    x64 = np_rng.uniform(0.5, 2, (64, 64, 9))
    x = _nc(x64, torch.float32, device)
    xs = _np(x)
    y = _np(torch.feature_dropout(x, p, True))
    plane_kept = (y != 0).reshape(64, 64, -1)
    assert_true("torch.feature_dropout", np.all(plane_kept.all(-1) | ~plane_kept.any(-1)), "a channel partly dropped")
    kept = plane_kept[..., 0]
    _six_sigma(1 - kept.mean(), p, kept.size, "torch.feature_dropout", f"p={p}")
    assert_close("torch.feature_dropout", y, np.where(kept[..., None], xs / (1 - p), 0.0), op="elementwise",
                 dtype=torch.float32)
    assert_close("torch.feature_dropout", torch.feature_dropout(x, p, False), xs, op="exact", dtype=torch.float32,
                 args="train=False")


_SELU_ALPHA_P = 1.7580993408473766  # -selu_scale * selu_alpha, the value SELU saturates to


@pytest.mark.parametrize("feature", [False, True], ids=["alpha_dropout", "feature_alpha_dropout"])
def test_alpha_dropout(device, np_rng, feature):
    """torch.alpha_dropout / feature_alpha_dropout: kept elements map to a*x + alpha'*a*p, dropped ones to the
    constant -alpha'*a*(1-p), with a = ((1-p)(1 + p*alpha'^2))^-1/2, so a standard normal input keeps mean 0
    and variance 1 (within 6 sigma); the feature variant drops whole channels; train=False is the identity.
    Catches the affine correction missing (mean shifted), dropped values set to 0, element-wise masks."""
    p = 0.25
    a = 1 / math.sqrt((1 - p) * (1 + p * _SELU_ALPHA_P ** 2))
    shape = (128, 64, 8) if feature else (_N // 1024, 1024)
    x = _nc(np_rng.standard_normal(shape), torch.float32, device)
    xs = _np(x)
    fn = torch.feature_alpha_dropout if feature else torch.alpha_dropout
    api = "torch." + fn.__name__
    y = _np(fn(x, p, True))
    kept_val = a * xs + _SELU_ALPHA_P * a * p
    drop_val = -_SELU_ALPHA_P * a * (1 - p)
    is_kept = np.abs(y - kept_val) <= 1e-5 * (1 + np.abs(kept_val))
    is_drop = np.abs(y - drop_val) <= 1e-5
    assert_true(api, np.all(is_kept | is_drop), "an output is neither a*x + b nor the dropped constant", args=f"p={p}")
    if feature:
        planes = is_kept.reshape(shape[0], shape[1], -1)
        assert_true(api, np.all(planes.all(-1) | (~planes).all(-1) | (np.abs(kept_val - drop_val) < 1e-5).reshape(planes.shape).any(-1)),
                    "a channel partly dropped")
        frac, n = 1 - planes.mean(-1).round().mean(), shape[0] * shape[1]
    else:
        frac, n = 1 - is_kept.mean(), xs.size
    _six_sigma(frac, p, n, api, f"p={p}")
    # mean 0 and variance 1 preserved: 6 sigma of the sample mean/variance of ~unit-variance values
    sd_mean = 6 * math.sqrt(1.0 / xs.size) * (8 if feature else 1)  # channel masks correlate 8 values
    assert_true(api, abs(y.mean()) <= sd_mean, f"mean {y.mean():.4f} not 0 +/- {sd_mean:.4f}")
    assert_true(api, abs(y.var() - 1) <= 6 * math.sqrt(3.0 / xs.size) * (8 if feature else 1) + 0.01,
                f"variance {y.var():.4f} not 1")
    assert_close(api, fn(x, p, False), xs, op="exact", dtype=torch.float32, args="train=False")


# ------------------------------------------------------------------------------------------- embedding

def test_embedding(device, dtype, np_rng):
    """torch.embedding(weight, indices, padding_idx): rows of weight gathered by a 2-D index tensor; the padding
    row gets no gradient. Catches off-by-one rows, padding_idx ignored in backward, out-of-range indices
    accepted."""
    w64 = np_rng.standard_normal((10, 6))
    idx64 = np_rng.integers(0, 10, (3, 7))
    idx64[0, :2] = 4
    w = torch.tensor(w64, dtype=dtype, device=device, requires_grad=True)
    idx = torch.tensor(idx64, device=device)
    out = torch.embedding(w, idx, 4)
    assert_close("torch.embedding", out, _np(w)[idx64], op="exact")
    out.sum().backward()
    counts = np.bincount(idx64.ravel(), minlength=10).astype(np.float64)
    counts[4] = 0
    assert_close("torch.embedding", w.grad, np.repeat(counts[:, None], 6, 1), op="exact", dtype=dtype,
                 args="grad, padding_idx=4 gets none")
    assert_raises("torch.embedding", (IndexError, RuntimeError), lambda: torch.embedding(w, idx + 10).cpu(),
                  args="index out of range")


_BAG_MODES = {0: "sum", 1: "mean", 2: "max"}


@pytest.mark.parametrize("mode", [0, 1, 2], ids=lambda m: _BAG_MODES[m])
@pytest.mark.parametrize("include_last_offset", [False, True])
def test_embedding_bag(device, dtype, np_rng, mode, include_last_offset):
    """torch.embedding_bag over 1-D indices + offsets (an empty bag included): sum / mean / max of each bag's rows,
    per_sample_weights (sum mode), include_last_offset, the padding_idx overload (padding entries left out of
    the bag), max_indices of mode max. Catches a bag boundary off by one, mean over the wrong count, the last
    offset treated as a bag, per_sample_weights ignored."""
    w64 = np_rng.standard_normal((12, 5))
    idx64 = np_rng.integers(0, 12, 14)
    bounds = [0, 3, 3, 9, 14]  # bag 1 is empty
    offs = bounds[:-1] + ([14] if include_last_offset else [])
    w = torch.tensor(w64, dtype=dtype, device=device)
    idx = torch.tensor(idx64, device=device)
    offsets = torch.tensor(offs, device=device)
    psw64 = np_rng.uniform(0.5, 2, 14)
    psw = torch.tensor(psw64, dtype=dtype, device=device) if mode == 0 else None
    out, _, _, max_idx = torch.embedding_bag(w, idx, offsets, False, mode, False, psw, include_last_offset)
    want = np.zeros((4, 5))
    want_arg = np.zeros((4, 5), dtype=np.int64)
    for bag in range(4):
        rows = idx64[bounds[bag]:bounds[bag + 1]]
        if len(rows) == 0:
            continue
        vals = w64[rows]
        if mode == 0:
            want[bag] = (vals * psw64[bounds[bag]:bounds[bag + 1], None]).sum(0)
        elif mode == 1:
            want[bag] = vals.mean(0)
        else:
            want[bag] = vals.max(0)
            want_arg[bag] = rows[vals.argmax(0)]
    api = "torch.embedding_bag"
    args = f"mode={_BAG_MODES[mode]}, include_last_offset={include_last_offset}"
    assert_close(api, out, want, op="reduction", args=args)
    if mode == 2:
        assert_equal(api, max_idx, want_arg, args=args + ": max_indices")
    # padding_idx overload: entries equal to padding_idx are not part of any bag
    pad = int(idx64[4])
    out_p = torch.embedding_bag(w, idx, offsets, False, mode, False, psw, include_last_offset, pad)[0]
    want_p = np.zeros((4, 5))
    for bag in range(4):
        sel = slice(bounds[bag], bounds[bag + 1])
        keep = idx64[sel] != pad
        rows = idx64[sel][keep]
        if len(rows) == 0:
            continue
        vals = w64[rows]
        want_p[bag] = ((vals * psw64[sel][keep][:, None]).sum(0) if mode == 0 else vals.mean(0) if mode == 1
                       else vals.max(0))
    assert_close(api, out_p, want_p, op="reduction", args=args + f", padding_idx={pad}")
    if mode != 0:
        assert_raises(api, (RuntimeError, NotImplementedError), torch.embedding_bag, w, idx, offsets, False, mode, False,
                      torch.ones(14, dtype=dtype, device=device), include_last_offset, args="per_sample_weights in mode != sum")


# ---------------------------------------------------------------------------------------------- losses

def _reduce(l, reduction):
    return l if reduction == 0 else (l.mean() if reduction == 1 else l.sum())


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def _loss_cases(np_rng):
    n = 40
    a, b = np_rng.standard_normal((n, 6)), np_rng.standard_normal((n, 6))
    c = np_rng.standard_normal((n, 6))
    y = np.where(np_rng.random(n) < 0.5, 1.0, -1.0)
    x1, x2 = np_rng.standard_normal(n), np_rng.standard_normal(n)
    logp = np.log(np_rng.dirichlet(np.ones(6), n))
    tgt = np_rng.dirichlet(np.ones(6), n)
    cnt = np_rng.poisson(3.0, (n, 6)).astype(np.float64)
    logits = np_rng.standard_normal((n, 6)) * 4
    logits[0, :3] = [40.0, -40.0, 0.0]  # saturated logits: the log-sum-exp form must not overflow
    lab = (np_rng.random((n, 6)) < 0.4).astype(np.float64)
    pw = np_rng.uniform(0.5, 3, 6)
    wt = np_rng.uniform(0.5, 2, (n, 6))

    def cos(u, v):
        return (u * v).sum(1) / np.sqrt((u * u).sum(1) * (v * v).sum(1))

    def pdist(u, v, p, eps=1e-6):
        return (np.abs(u - v + eps) ** p).sum(1) ** (1 / p)

    def stirling(t):
        return np.where(t > 1, t * np.log(np.where(t > 1, t, 1)) - t + 0.5 * np.log(2 * np.pi * np.where(t > 1, t, 1)), 0)

    return [
        ("kl_div", lambda t, r: torch.kl_div(t(logp), t(tgt), r), lambda r: _reduce(tgt * (np.log(tgt) - logp), r)),
        ("kl_div", lambda t, r: torch.kl_div(t(logp), t(np.log(tgt)), r, log_target=True),
         lambda r: _reduce(tgt * (np.log(tgt) - logp), r)),
        ("hinge_embedding_loss", lambda t, r: torch.hinge_embedding_loss(t(a), t(np.sign(b)), 0.7, r),
         lambda r: _reduce(np.where(np.sign(b) > 0, a, np.maximum(0, 0.7 - a)), r)),
        ("margin_ranking_loss", lambda t, r: torch.margin_ranking_loss(t(x1), t(x2), t(y), 0.3, r),
         lambda r: _reduce(np.maximum(0, -y * (x1 - x2) + 0.3), r)),
        ("cosine_embedding_loss", lambda t, r: torch.cosine_embedding_loss(t(a), t(b), t(y), 0.2, r),
         lambda r: _reduce(np.where(y > 0, 1 - cos(a, b), np.maximum(0, cos(a, b) - 0.2)), r)),
        ("triplet_margin_loss", lambda t, r: torch.triplet_margin_loss(t(a), t(b), t(c), 1.5, 2.0, 1e-6, False, r),
         lambda r: _reduce(np.maximum(pdist(a, b, 2) - pdist(a, c, 2) + 1.5, 0), r)),
        ("triplet_margin_loss", lambda t, r: torch.triplet_margin_loss(t(a), t(b), t(c), 1.0, 1.0, 1e-6, True, r),
         lambda r: _reduce(np.maximum(pdist(a, b, 1) - np.minimum(pdist(a, c, 1), pdist(b, c, 1)) + 1.0, 0), r)),
        ("poisson_nll_loss", lambda t, r: torch.poisson_nll_loss(t(a), t(cnt), True, False, 1e-8, r),
         lambda r: _reduce(np.exp(a) - cnt * a, r)),
        ("poisson_nll_loss", lambda t, r: torch.poisson_nll_loss(t(np.exp(a)), t(cnt), False, True, 1e-8, r),
         lambda r: _reduce(np.exp(a) - cnt * np.log(np.exp(a) + 1e-8) + stirling(cnt), r)),
        ("binary_cross_entropy_with_logits",
         lambda t, r: torch.binary_cross_entropy_with_logits(t(logits), t(lab), t(wt), t(pw), r),
         lambda r: _reduce(-wt * (pw * lab * _log_sigmoid(logits) + (1 - lab) * _log_sigmoid(-logits)), r)),
    ]


_LOSS_IDS = ["kl_div", "kl_div-log_target", "hinge_embedding", "margin_ranking", "cosine_embedding", "triplet-p2",
             "triplet-p1-swap", "poisson_nll-log_input", "poisson_nll-full", "bce_with_logits-pos_weight"]


@pytest.mark.parametrize("case", range(len(_LOSS_IDS)), ids=_LOSS_IDS)
def test_losses(device, dtype, np_rng, case):
    """torch.kl_div, hinge_embedding_loss, margin_ranking_loss, cosine_embedding_loss, triplet_margin_loss (p, swap),
    poisson_nll_loss (log_input, full: Stirling term), binary_cross_entropy_with_logits (weight, pos_weight,
    saturated logits) for reductions none/mean/sum against NumPy. Catches margins ignored, the swap not taken,
    pos_weight applied to the negative term, log(sigmoid) overflowing, mean over the wrong count."""
    name, call, ref = _loss_cases(np_rng)[case]
    t = lambda a: torch.tensor(a, dtype=dtype, device=device)
    terms = ref(0)
    k = terms.size
    row = tolerances.lookup("nn", dtype)
    for r in (0, 1, 2):
        kw = {}
        if r:
            # Each term is within the nn row (checked by reduction='none'); a sum of k of them adds their errors
            # (k*atol + rtol*sum|terms|) plus the summation's own (for_reduction's srtol); a mean is that / k.
            s_abs = np.abs(terms).sum()
            atol = k * row.atol + (row.rtol + tolerances.for_reduction(dtype, k).srtol) * s_abs
            kw = {"rtol": row.rtol, "atol": atol / k if r == 1 else atol}
        assert_close("torch." + name, call(t, r), ref(r), op="nn",
                     args=f"{_LOSS_IDS[case]}, reduction={['none', 'mean', 'sum'][r]}", **kw)


def _np_ctc(logp, target, blank):
    """-log p(target | logp) by the CTC forward algorithm in log space (logp: T x C)."""
    ext = [blank]
    for c in target:
        ext += [c, blank]
    s_len, t_len = len(ext), logp.shape[0]
    alpha = np.full(s_len, -np.inf)
    alpha[0] = logp[0, blank]
    if s_len > 1:
        alpha[1] = logp[0, ext[1]]
    for t in range(1, t_len):
        new = np.full(s_len, -np.inf)
        for s in range(s_len):
            terms = [alpha[s]]
            if s >= 1:
                terms.append(alpha[s - 1])
            if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                terms.append(alpha[s - 2])
            new[s] = np.logaddexp.reduce(terms) + logp[t, ext[s]]
        alpha = new
    tail = [alpha[-1]] + ([alpha[-2]] if s_len > 1 else [])
    return -np.logaddexp.reduce(tail)


def test_ctc_loss(device, dtype, np_rng):
    """torch.ctc_loss (both overloads) against a NumPy forward algorithm: reduction none (per sample -log p), mean
    (divided by target lengths, then averaged), sum; blank other than 0; repeated labels (which need a blank
    between them); an impossible alignment is inf, zero_infinity=True makes it 0. Catches repeated labels
    merged, the length normalization of mean missing, zero_infinity ignored."""
    t_len, c, blank = 7, 5, 2
    logp64 = np.log(np_rng.dirichlet(np.ones(c), (t_len, 3)))  # T x N x C
    targets = [[1, 1, 3], [4, 0], [3, 1, 3, 4, 1, 1, 0]]  # the last needs > 7 frames: impossible
    in_lens, tg_lens = [7, 6, 7], [3, 2, 7]
    flat = np.array([lab for tg in targets for lab in tg])
    lp = torch.tensor(logp64, dtype=dtype, device=device)
    per = np.array([_np_ctc(logp64[:in_lens[i], i], targets[i], blank) for i in range(3)])
    assert_true("torch.ctc_loss", np.isinf(per[2]), "oracle: sample 2 is impossible")
    got = torch.ctc_loss(lp, torch.tensor(flat, device=device), in_lens, tg_lens, blank, 0, False)
    assert_close("torch.ctc_loss", got, per, op="nn", args="reduction=none")
    got = torch.ctc_loss(lp, torch.tensor(flat, device=device), torch.tensor(in_lens, device=device),
                         torch.tensor(tg_lens, device=device), blank, 0, True)
    assert_close("torch.ctc_loss", got, np.where(np.isinf(per), 0.0, per), op="nn", args="zero_infinity=True (Tensor lengths)")
    ok = slice(0, 2)
    lp2 = lp[:, ok]
    fl2 = torch.tensor(np.array([lab for tg in targets[:2] for lab in tg]), device=device)
    got = torch.ctc_loss(lp2, fl2, in_lens[:2], tg_lens[:2], blank, 1, False)
    assert_close("torch.ctc_loss", got, (per[ok] / np.array(tg_lens[:2])).mean(), op="nn", args="reduction=mean")
    got = torch.ctc_loss(lp2, fl2, in_lens[:2], tg_lens[:2], blank, 2, False)
    assert_close("torch.ctc_loss", got, per[ok].sum(), op="nn", args="reduction=sum")


# -------------------------------------------------------------------------------------------- pooling

def _np_pool_max(x, kernel, stride, padding, dilation, ceil_mode):
    """Max pooling over the trailing dims with -inf padding; returns values and flat argmax indices."""
    nd = len(kernel)
    sp = x.shape[-nd:]
    outs = []
    for L, k, s, p, d in zip(sp, kernel, stride, padding, dilation):
        span = (L + 2 * p - d * (k - 1) - 1)
        o = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= L + p:
            o -= 1
        outs.append(o)
    lead = x.shape[:-nd]
    val = np.full(lead + tuple(outs), -np.inf)
    arg = np.zeros(lead + tuple(outs), dtype=np.int64)
    for o_idx in np.ndindex(*outs):
        ranges = []
        for i, (oi, k, s, p, d, L) in enumerate(zip(o_idx, kernel, stride, padding, dilation, sp)):
            pos = oi * s - p + d * np.arange(k)
            ranges.append(pos[(pos >= 0) & (pos < L)])
        grid = np.stack(np.meshgrid(*ranges, indexing="ij"), -1).reshape(-1, nd)
        flat = np.ravel_multi_index(tuple(grid.T), sp)
        vals = x.reshape(lead + (-1,))[..., flat]
        sel = (Ellipsis,) + o_idx
        val[sel] = vals.max(-1)
        arg[sel] = flat[vals.argmax(-1)]
    return val, arg


_POOLS = [  # (nd, spatial, kernel, stride, padding, dilation, ceil_mode)
    (1, (17,), (3,), (2,), (1,), (2,), False),
    (1, (16,), (4,), (3,), (2,), (1,), True),
    (2, (9, 10), (3, 2), (2, 2), (1, 0), (1, 2), False),
    (2, (8, 7), (2, 3), (2, 2), (0, 1), (1, 1), True),
    (3, (6, 5, 7), (2, 3, 2), (2, 1, 2), (1, 1, 0), (1, 1, 2), False),
]


@pytest.mark.dtypes(torch.float32, torch.float64, torch.bfloat16)
@pytest.mark.parametrize("case", range(len(_POOLS)), ids=lambda i: f"{_POOLS[i][0]}d-{'ceil' if _POOLS[i][6] else 'floor'}")
def test_max_pool(device, dtype, np_rng, case):
    """torch.max_pool1d/2d/3d and torch.max_pool1d_with_indices with kernel, stride, padding (as -inf), dilation
    and ceil_mode against NumPy; the indices point at the maxima. Catches padding as 0 instead of -inf,
    dilation ignored, ceil_mode windows dropped or starting in the right padding."""
    nd, sp, k, s, p, d, ceil = _POOLS[case]
    x64 = np_rng.standard_normal((2, 3, *sp)) - 3  # mostly negative: padding with 0 would win
    x = _nc(x64, dtype, device)
    xs = _np(x)
    want, _ = _np_pool_max(xs, k, s, p, d, ceil)
    fn = getattr(torch, f"max_pool{nd}d")
    got = fn(x, list(k), list(s), list(p), list(d), ceil)
    args = f"kernel={k}, stride={s}, padding={p}, dilation={d}, ceil_mode={ceil}"
    assert_close(fn.__name__ and f"torch.max_pool{nd}d", got, want, op="exact", dtype=dtype, args=args)
    if nd == 1:
        v, i = torch.max_pool1d_with_indices(x, list(k), list(s), list(p), list(d), ceil)
        assert_close("torch.max_pool1d_with_indices", v, want, op="exact", dtype=dtype, args=args)
        assert_equal("torch.max_pool1d_with_indices", np.take_along_axis(xs, i.cpu().numpy(), -1), want,
                     args=args + ": x[indices] == max")
    assert_raises(f"torch.max_pool{nd}d", RuntimeError, fn, x, [sp[0] + 5] * nd, args="kernel larger than input")


def test_adaptive_max_pool1d(device, dtype, np_rng):
    """torch.adaptive_max_pool1d(x, out): bin i covers [floor(i*L/out), ceil((i+1)*L/out)); values and indices.
    Catches bins not overlapping when L % out != 0, indices relative to the bin instead of the input."""
    x64 = np_rng.standard_normal((2, 3, 11))
    x = _nc(x64, dtype, device)
    xs = _np(x)
    out = 4
    want = np.stack([xs[..., (i * 11) // out:-(-((i + 1) * 11) // out)].max(-1) for i in range(out)], -1)
    warg = np.stack([(i * 11) // out + xs[..., (i * 11) // out:-(-((i + 1) * 11) // out)].argmax(-1) for i in range(out)], -1)
    v, idx = torch.adaptive_max_pool1d(x, [out])
    assert_close("torch.adaptive_max_pool1d", v, want, op="exact", dtype=dtype, args="output_size=4 of 11")
    assert_equal("torch.adaptive_max_pool1d", idx, warg, args="indices")


def _check_fractional(api, x, out, idx, kernel):
    """Each output is x at its index, and is the max of some kernel window containing that index."""
    nd = len(kernel)
    sp = x.shape[-nd:]
    xf = x.reshape(x.shape[:-nd] + (-1,))
    assert_equal(api, np.take_along_axis(xf, idx.reshape(idx.shape[:-nd] + (-1,)), -1).reshape(out.shape), out,
                 args="out == x[indices]")
    bad = 0
    for lead in np.ndindex(*x.shape[:-nd]):
        for o in np.ndindex(*out.shape[-nd:]):
            pos = np.unravel_index(idx[lead + o], sp)
            starts = [range(max(0, p - k + 1), min(p, L - k) + 1) for p, k, L in zip(pos, kernel, sp)]
            ok = any(x[lead + tuple(slice(s, s + k) for s, k in zip(st, kernel))].max() == out[lead + o]
                     for st in np.ndindex(*[len(r) for r in starts]) for st in [tuple(r[j] for r, j in zip(starts, st))])
            bad += not ok
    assert_true(api, bad == 0, f"{bad} outputs are not the max of any {kernel} window around their index")


@pytest.mark.parametrize("nd", [2, 3])
def test_fractional_max_pool(device, np_rng, nd):
    """F.fractional_max_pool2d/3d with output_size and output_ratio, return_indices: the output shape, every
    output equals x at its index and is the max of a kernel window containing it. Catches the kernel size
    ignored (a max over a smaller window), output_ratio rounding, indices not matching values."""
    fn = getattr(F, f"fractional_max_pool{nd}d")
    sp = (9, 10) if nd == 2 else (7, 6, 7)
    kernel = (3,) * nd if nd == 2 else (2,) * nd
    x = _nc(np_rng.standard_normal((2, 2, *sp)), torch.float32, device)
    xs = _np(x)
    out_size = (4, 5) if nd == 2 else (3, 3, 4)
    v, i = fn(x, kernel, output_size=out_size, return_indices=True)
    assert_equal(f"F.fractional_max_pool{nd}d", tuple(v.shape), (2, 2, *out_size), args="output_size")
    _check_fractional(f"F.fractional_max_pool{nd}d", xs, _np(v), i.cpu().numpy(), kernel)
    v2, i2 = fn(x, kernel, output_ratio=(0.5,) * nd, return_indices=True)
    assert_equal(f"F.fractional_max_pool{nd}d", tuple(v2.shape), (2, 2, *[int(L * 0.5) for L in sp]), args="output_ratio=(0.5, ...)")
    _check_fractional(f"F.fractional_max_pool{nd}d", xs, _np(v2), i2.cpu().numpy(), kernel)
    v3 = fn(x, kernel, output_size=out_size)
    assert_true(f"F.fractional_max_pool{nd}d", isinstance(v3, torch.Tensor), "return_indices=False returned a tuple")


@pytest.mark.parametrize("nd", [2, 3])
def test_fractional_max_pool_output_ratio_number(device, np_rng, nd):
    """F.fractional_max_pool2d/3d document output_ratio as "a number or tuple in the range (0, 1)": a single
    number means that ratio on every spatial dim. Catches the number form rejected (torch 2.13's 2d version
    raises TypeError from len(output_ratio): a real finding) or applied to one dim only."""
    fn = getattr(F, f"fractional_max_pool{nd}d")
    sp = (9, 10) if nd == 2 else (7, 6, 7)
    x = torch.tensor(np_rng.standard_normal((1, 2, *sp)), dtype=torch.float32, device=device)
    v = fn(x, 2, output_ratio=0.5)
    assert_equal(f"F.fractional_max_pool{nd}d", tuple(v.shape), (1, 2, *[int(L * 0.5) for L in sp]), args="output_ratio=0.5")


# ---------------------------------------------------------------------------------------- activations

_ACTS = [  # (name, torch call, in-place call or None, numpy oracle)
    ("celu", lambda x: torch.celu(x, 0.7), lambda x: torch.celu_(x, 0.7),
     lambda x: np.maximum(0, x) + np.minimum(0, 0.7 * np.expm1(x / 0.7))),
    ("selu", torch.selu, torch.selu_,
     lambda x: 1.0507009873554804934193349852946 * np.where(x > 0, x, 1.6732632423543772848170429916717 * np.expm1(x))),
    ("threshold", lambda x: torch.threshold(x, 0.5, -2.0), lambda x: torch.threshold_(x, 0.5, -2.0),
     lambda x: np.where(np.isnan(x) | (x > 0.5), x, -2.0)),  # NaN propagates (not replaced by value)
    ("rrelu", lambda x: torch.rrelu(x, 0.1, 0.3, False), lambda x: torch.rrelu_(x, 0.1, 0.3, False),
     lambda x: np.where(x >= 0, x, x * 0.2)),
]


@pytest.mark.dtypes(torch.float32, torch.float64, torch.bfloat16)
@pytest.mark.parametrize("case", range(len(_ACTS)), ids=[a[0] for a in _ACTS])
def test_activations(device, dtype, np_rng, case):
    """torch.celu(alpha) / selu / threshold(threshold, value; ties at the threshold take value) / rrelu in eval
    (slope (lower+upper)/2) and their in-place variants, on a non-contiguous input with NaN and infinities.
    Catches alpha ignored, SELU's constants off, x == threshold kept, a random slope in eval mode."""
    name, fn, fn_, ref = _ACTS[case]
    x64 = np_rng.standard_normal(64) * 3
    x64[:5] = [0.5, 0.0, np.nan, np.inf, -np.inf]  # 0.5: the threshold itself (exact in every dtype)
    x = _nc(x64, dtype, device)
    xs = _np(x)
    want = ref(xs)
    assert_close("torch." + name, fn(x), want, op="elementwise")
    y = x.clone()
    r = fn_(y)
    assert_true(f"torch.{name}_", r.data_ptr() == y.data_ptr(), "in-place variant returned a new tensor")
    assert_close(f"torch.{name}_", y, want, op="elementwise")


def test_rrelu_training(device, np_rng):
    """torch.rrelu(training=True): negative inputs get a slope drawn from U[lower, upper] (slopes spread over
    the interval: min/max within 2% of the bounds over 65,536 draws), non-negative ones pass unchanged.
    Catches a fixed slope in training, slopes outside [lower, upper]."""
    x64 = -np_rng.uniform(0.5, 2, _N)
    x64[::7] *= -1
    x = torch.tensor(x64, dtype=torch.float32, device=device)
    y = _np(torch.rrelu(x, 0.1, 0.3, True))
    xs = _np(x)
    neg = xs < 0
    assert_close("torch.rrelu", y[~neg], xs[~neg], op="exact", dtype=torch.float32, args="x >= 0 unchanged")
    slopes = y[neg] / xs[neg]
    assert_true("torch.rrelu", slopes.min() >= 0.1 - 1e-6 and slopes.max() <= 0.3 + 1e-6,
                f"slopes in [{slopes.min()}, {slopes.max()}], not in [0.1, 0.3]", args="training=True")
    assert_true("torch.rrelu", slopes.min() < 0.104 and slopes.max() > 0.296 and abs(slopes.mean() - 0.2) < 0.005,
                f"slopes not uniform on [0.1, 0.3]: min {slopes.min()}, max {slopes.max()}, mean {slopes.mean()}")


# ------------------------------------------------------------------------------------------ grids

def _base_grid(n, align):
    if align:
        return np.linspace(-1, 1, n)
    return (2 * np.arange(n) + 1) / n - 1


@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_grid_generator(device, dtype, np_rng, align_corners):
    """torch.affine_grid_generator(theta, size, align_corners): grid[n, h, w] = theta[n] @ (x_w, y_h, 1) with
    the pixel-centre or corner base grid. Catches x/y swapped, align_corners ignored, theta transposed."""
    theta64 = np_rng.standard_normal((2, 2, 3))
    h, w = 4, 5
    got = torch.affine_grid_generator(torch.tensor(theta64, dtype=dtype, device=device), [2, 3, h, w], align_corners)
    xs, ys = _base_grid(w, align_corners), _base_grid(h, align_corners)
    base = np.stack(list(np.meshgrid(xs, ys, indexing="xy")) + [np.ones((h, w))], -1)  # h x w x 3
    want = np.einsum("hwk,njk->nhwj", base, theta64)
    assert_close("torch.affine_grid_generator", got, want, op="nn", args=f"align_corners={align_corners}")


def _np_grid_sample(img, grid, mode, padding, align):
    n, c, h, w = img.shape
    out = np.zeros((n, c) + grid.shape[1:3])

    def unnorm(v, size):
        return (v + 1) / 2 * (size - 1) if align else ((v + 1) * size - 1) / 2

    for b in range(n):
        gx, gy = unnorm(grid[b, ..., 0], w), unnorm(grid[b, ..., 1], h)
        if padding == 1:
            gx, gy = np.clip(gx, 0, w - 1), np.clip(gy, 0, h - 1)

        def tap(yy, xx, b=b):
            inside = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
            v = img[b][:, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]
            return np.where(inside, v, 0.0)

        if mode == 1:
            out[b] = tap(np.rint(gy).astype(int), np.rint(gx).astype(int))
            continue
        x0, y0 = np.floor(gx).astype(int), np.floor(gy).astype(int)
        fx, fy = gx - x0, gy - y0
        out[b] = (tap(y0, x0) * (1 - fx) * (1 - fy) + tap(y0, x0 + 1) * fx * (1 - fy)
                  + tap(y0 + 1, x0) * (1 - fx) * fy + tap(y0 + 1, x0 + 1) * fx * fy)
    return out


@pytest.mark.parametrize("mode,padding", [(0, 0), (0, 1), (1, 0)], ids=["bilinear-zeros", "bilinear-border", "nearest-zeros"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sampler(device, dtype, np_rng, mode, padding, align_corners):
    """torch.grid_sampler(input, grid, interpolation_mode, padding_mode, align_corners) for 4-D input: bilinear
    and nearest, zeros and border padding, sample points outside [-1, 1], against NumPy. Catches x/y swapped,
    align_corners' unnormalization wrong, border padding treated as zeros."""
    img64 = np_rng.standard_normal((2, 3, 5, 6))
    grid64 = np_rng.uniform(-1.3, 1.3, (2, 4, 7, 2))
    img = _nc(img64, dtype, device)
    grid = torch.tensor(grid64, dtype=dtype, device=device)
    want = _np_grid_sample(_np(img), _np(grid), mode, padding, align_corners)
    got = torch.grid_sampler(img, grid, mode, padding, align_corners)
    assert_close("torch.grid_sampler", got, want, op="nn",
                 args=f"mode={['bilinear', 'nearest'][mode]}, padding={['zeros', 'border'][padding]}, align_corners={align_corners}")


# ------------------------------------------------------------------------------- SyncBatchNorm pieces

def test_batch_norm_update_stats(device, dtype, np_rng):
    """torch.batch_norm_update_stats(x, running_mean, running_var, momentum) returns the batch mean and biased
    variance and moves the running stats (running var with the unbiased variance). Catches the biased variance
    in the running stats, momentum as 1-momentum, a copy updated instead of the given tensors."""
    c, mom = 4, 0.1
    x64 = np_rng.standard_normal((5, c, 3)) * 2 + 1
    x = _nc(x64, dtype, device)
    xs = _np(x)
    t = lambda a: torch.tensor(a, dtype=dtype, device=device)
    rm2, rv2 = t(np.zeros(c)), t(np.ones(c))
    m_u, v_u = torch.batch_norm_update_stats(x, rm2, rv2, mom)
    n1 = xs.shape[0] * xs.shape[2]
    assert_close("torch.batch_norm_update_stats", m_u, xs.mean((0, 2)), op="nn", args="mean")
    assert_close("torch.batch_norm_update_stats", v_u, xs.var((0, 2)), op="nn", args="biased var")
    assert_close("torch.batch_norm_update_stats", rv2, (1 - mom) + mom * xs.var((0, 2)) * n1 / (n1 - 1), op="nn",
                 args="running_var (unbiased)")
    assert_close("torch.batch_norm_update_stats", rm2, mom * xs.mean((0, 2)), op="nn", args="running_mean")


@pytest.mark.requires_cuda  # torch registers batch_norm_stats/gather/elemt/backward_* for CUDA only (no CPU kernel)
def test_sync_batch_norm_building_blocks(device, dtype, np_rng):
    """The SyncBatchNorm building blocks on three 'ranks' (chunks of one batch with unequal sizes):
    batch_norm_stats (per-rank mean and invstd = 1/sqrt(biased var + eps)), batch_norm_gather_stats_with_counts
    and batch_norm_gather_stats (the combined mean/invstd equal the whole batch's; running stats moved with the
    unbiased variance), batch_norm_elemt, batch_norm_backward_reduce (sum dy, sum dy*(x-mean), grad weight and
    bias), batch_norm_backward_elemt (the input gradient of the whole batch). Catches
    counts ignored when combining, biased/unbiased variances swapped, the 1/N terms of the backward off."""
    c, eps, mom = 4, 1e-5, 0.1
    chunks64 = [np_rng.standard_normal((n, c, 3)) * s + m for n, s, m in ((2, 1.0, 0.5), (5, 2.0, -1.0), (3, 0.5, 2.0))]
    full = np.concatenate(chunks64, 0)
    chunks = [_nc(a, dtype, device) for a in chunks64]
    t = lambda a: torch.tensor(a, dtype=dtype, device=device)
    mean_f, var_f = full.mean((0, 2)), full.var((0, 2))
    n_tot = full.shape[0] * full.shape[2]
    stats = [torch.batch_norm_stats(ch, eps) for ch in chunks]
    for i, (m, inv) in enumerate(stats):
        assert_close("torch.batch_norm_stats", m, chunks64[i].mean((0, 2)), op="nn", args=f"rank {i} mean")
        assert_close("torch.batch_norm_stats", inv, 1 / np.sqrt(chunks64[i].var((0, 2)) + eps), op="nn", args=f"rank {i} invstd")
    means = torch.stack([s[0] for s in stats])
    invs = torch.stack([s[1] for s in stats])
    counts = t([a.shape[0] * a.shape[2] for a in chunks64])
    rm, rv = t(np.zeros(c)), t(np.ones(c))
    gm, gi = torch.batch_norm_gather_stats_with_counts(chunks[0], means, invs, rm, rv, mom, eps, counts)
    assert_close("torch.batch_norm_gather_stats_with_counts", gm, mean_f, op="nn", args="combined mean")
    assert_close("torch.batch_norm_gather_stats_with_counts", gi, 1 / np.sqrt(var_f + eps), op="nn", args="combined invstd")
    assert_close("torch.batch_norm_gather_stats_with_counts", rm, mom * mean_f, op="nn", args="running_mean")
    assert_close("torch.batch_norm_gather_stats_with_counts", rv, (1 - mom) + mom * var_f * n_tot / (n_tot - 1), op="nn",
                 args="running_var (unbiased)")
    # equal counts: batch_norm_gather_stats(count=...)
    eq = [np_rng.standard_normal((2, c, 3)) for _ in range(3)]
    eqt = [t(a) for a in eq]
    st = [torch.batch_norm_stats(a, eps) for a in eqt]
    allv = np.concatenate(eq, 0)
    gm2, gi2 = torch.batch_norm_gather_stats(eqt[0], torch.stack([s[0] for s in st]), torch.stack([s[1] for s in st]),
                                             None, None, mom, eps, 6)
    assert_close("torch.batch_norm_gather_stats", gm2, allv.mean((0, 2)), op="nn", args="count=6")
    assert_close("torch.batch_norm_gather_stats", gi2, 1 / np.sqrt(allv.var((0, 2)) + eps), op="nn", args="count=6")
    w, b = np_rng.uniform(0.5, 2, c), np_rng.standard_normal(c)
    r = lambda a: a.reshape(1, c, 1)
    inv_f = 1 / np.sqrt(var_f + eps)
    y = torch.batch_norm_elemt(chunks[1], t(w), t(b), gm, gi, eps)
    assert_close("torch.batch_norm_elemt", y, (chunks64[1] - r(mean_f)) * r(inv_f) * r(w) + r(b), op="nn")
    # backward: per-rank reductions, summed, then the element-wise input gradient equals the full batch's
    dys64 = [np_rng.standard_normal(a.shape) for a in chunks64]
    sum_dy, sum_dy_xmu = np.zeros(c), np.zeros(c)
    parts = []
    for i, ch in enumerate(chunks):
        sdy, sdx, gw, gb = torch.batch_norm_backward_reduce(t(dys64[i]), ch, gm, gi, t(w), True, True, True)
        want_sdy = dys64[i].sum((0, 2))
        want_sdx = (dys64[i] * (chunks64[i] - r(mean_f))).sum((0, 2))
        assert_close("torch.batch_norm_backward_reduce", sdy, want_sdy, op="nn", args=f"rank {i} sum_dy")
        assert_close("torch.batch_norm_backward_reduce", sdx, want_sdx, op="nn", args=f"rank {i} sum_dy_xmu")
        assert_close("torch.batch_norm_backward_reduce", gw, want_sdx * inv_f, op="nn", args=f"rank {i} grad_weight")
        assert_close("torch.batch_norm_backward_reduce", gb, want_sdy, op="nn", args=f"rank {i} grad_bias")
        sum_dy += want_sdy
        sum_dy_xmu += want_sdx
        parts.append(sdy)
    dy_f = np.concatenate(dys64, 0)
    x_hat = (full - r(mean_f)) * r(inv_f)
    dx_full = r(w) * r(inv_f) * (dy_f - r(sum_dy) / n_tot - x_hat * r(sum_dy_xmu * inv_f) / n_tot)
    cnt = torch.tensor([a.shape[0] * a.shape[2] for a in chunks64], dtype=torch.int32, device=device)
    dx1 = torch.batch_norm_backward_elemt(t(dys64[1]), chunks[1], gm, gi, t(w), t(sum_dy), t(sum_dy_xmu), cnt)
    assert_close("torch.batch_norm_backward_elemt", dx1, dx_full[2:7], op="nn", args="rank 1 of 3")


# ---------------------------------------------------------------------------------------------- norms

@pytest.mark.dtypes(torch.float32, torch.float64)
@pytest.mark.filterwarnings("ignore:.*deprecated.*:UserWarning", "ignore:.*[Ss]parse.*:UserWarning")
def test_matrix_and_vector_norms(device, dtype, np_rng):
    """torch.native_norm (sparse input: p, and the full-reduction dim overload), torch.frobenius_norm(dim, keepdim) and
    torch.nuclear_norm (2-D and dim overload on a batch) against NumPy. Catches p ignored, the square root
    missing, keepdim ignored, the nuclear norm taking the largest singular value only."""
    a64 = np_rng.standard_normal((4, 5, 6))
    a = _nc(a64, dtype, device)
    xs = _np(a)
    # native_norm is the sparse tensors' norm kernel (no dense kernel): the p-norm of the stored values
    sp64 = np.where(np_rng.random((6, 7)) < 0.5, np_rng.standard_normal((6, 7)), 0.0)
    sp_t = torch.tensor(sp64, dtype=dtype, device=device).to_sparse()
    spv = _np(sp_t.to_dense())
    for p in (1, 2, 3):
        assert_close("torch.native_norm", torch.native_norm(sp_t, p), (np.abs(spv) ** p).sum() ** (1 / p), op="reduction",
                     k=spv.size, scale=(np.abs(spv) ** p).sum() ** (1 / p), args=f"sparse, p={p}")
    got = torch.native_norm(sp_t, 2, [0, 1], False, None)
    assert_close("torch.native_norm", got, np.sqrt((spv ** 2).sum()), op="reduction", args="sparse, dim=(0, 1)")
    assert_close("torch.frobenius_norm", torch.frobenius_norm(a, [1, 2]), np.sqrt((xs ** 2).sum((1, 2))), op="reduction",
                 args="dim=(1, 2)")
    assert_close("torch.frobenius_norm", torch.frobenius_norm(a, [0, 2], True), np.sqrt((xs ** 2).sum((0, 2), keepdims=True)),
                 op="reduction", args="dim=(0, 2), keepdim")
    assert_close("torch.nuclear_norm", torch.nuclear_norm(a[0]), np.linalg.svd(xs[0], compute_uv=False).sum(), op="linalg")
    assert_close("torch.nuclear_norm", torch.nuclear_norm(a, [1, 2], True),
                 np.linalg.svd(xs, compute_uv=False).sum(-1)[:, None, None], op="linalg", args="dim=(1, 2), keepdim")
    assert_close("torch.nuclear_norm", torch.nuclear_norm(a), np.linalg.svd(xs, compute_uv=False).sum(-1), op="linalg",
                 args="3-D: batched over the last two dims")


# ------------------------------------------------------------------------------- nn.functional extras

@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_softmax(device, np_rng, hard):
    """F.gumbel_softmax(logits, tau, hard): soft samples are positive and sum to 1 along dim; hard samples are
    one-hot; the argmax over 20,000 samples is distributed as softmax(logits) within 6 sigma, for tau 0.5
    and 2 (tau does not change the argmax law). Catches noise of the wrong sign (-log(-log u) mistaken),
    logits divided the wrong way, hard not one-hot, dim ignored."""
    logits64 = np.array([1.0, -0.5, 0.3, 2.0, -2.0])
    p = np.exp(logits64) / np.exp(logits64).sum()
    n = 20000
    for tau in (0.5, 2.0):
        lg = torch.tensor(np.tile(logits64, (n, 1)).T.copy(), dtype=torch.float32, device=device)  # dim 0 = classes
        y = F.gumbel_softmax(lg, tau=tau, hard=hard, dim=0)
        ys = _np(y)
        assert_close("F.gumbel_softmax", ys.sum(0), np.ones(n), op="reduction", dtype=torch.float32, args=f"tau={tau}: sums to 1")
        if hard:
            assert_true("F.gumbel_softmax", np.all((np.abs(ys) < 1e-6) | (np.abs(ys - 1) < 1e-6)), "hard sample not one-hot")
        else:
            assert_true("F.gumbel_softmax", np.all(ys > 0), "a soft probability <= 0")
            # tau sets how peaked a soft sample is: E[y] = E[softmax((logits + g) / tau)], g ~ Gumbel(0, 1), by a NumPy
            # Monte Carlo of the same size; 6 sigma of the difference of two sample means
            g = np_rng.gumbel(size=(n, 5))
            z = (logits64 + g) / tau
            ref = np.exp(z - z.max(1, keepdims=True))
            ref /= ref.sum(1, keepdims=True)
            sig = np.sqrt(ys.var(1) / n + ref.var(0) / n)
            assert_true("F.gumbel_softmax", np.all(np.abs(ys.mean(1) - ref.mean(0)) <= 6 * sig),
                        f"E[y] {np.round(ys.mean(1), 4)} vs Monte Carlo {np.round(ref.mean(0), 4)}", args=f"tau={tau}")
        freq = np.bincount(ys.argmax(0), minlength=5) / n
        sigma = np.sqrt(p * (1 - p) / n)
        assert_true("F.gumbel_softmax", np.all(np.abs(freq - p) <= 6 * sigma),
                    f"argmax frequencies {np.round(freq, 4)} vs softmax {np.round(p, 4)}", args=f"tau={tau}, hard={hard}")


@pytest.mark.parametrize("pad", [0, 2])
def test_conv_tbc(device, dtype, np_rng, pad):
    """F.conv_tbc(input (T, B, C_in), weight (K, C_in, C_out), bias, pad): a 1-D convolution over time with
    zero padding of ``pad`` frames, against a NumPy loop. Catches the kernel flipped (convolution vs
    correlation), pad ignored, time and batch swapped."""
    t_len, b, ci, co, k = 9, 2, 3, 4, 3
    x64 = np_rng.standard_normal((t_len, b, ci))
    w64 = np_rng.standard_normal((k, ci, co))
    b64 = np_rng.standard_normal(co)
    x = _nc(x64, dtype, device)
    got = F.conv_tbc(x, torch.tensor(w64, dtype=dtype, device=device), torch.tensor(b64, dtype=dtype, device=device), pad)
    xp = np.pad(_np(x), ((pad, pad), (0, 0), (0, 0)))
    t_out = t_len + 2 * pad - k + 1
    want = np.stack([np.einsum("kbc,kco->bo", xp[t:t + k], w64) for t in range(t_out)]) + b64
    sc = np.stack([np.einsum("kbc,kco->bo", np.abs(xp[t:t + k]), np.abs(w64)) for t in range(t_out)]) + np.abs(b64)
    assert_close("F.conv_tbc", got, want, op="nn", k=k * ci + 1, scale=sc, args=f"pad={pad}")


@pytest.mark.parametrize("groups", [2, 3])
def test_native_channel_shuffle(device, np_rng, groups):
    """F.native_channel_shuffle(x, groups) = x.reshape(N, g, C/g, ...).transpose(1, 2).reshape(N, C, ...) in NumPy.
    Catches the transpose missing (identity) or the groups read as the group size; a channel count not divisible
    by groups is an error."""
    fn = getattr(F, "native_channel_shuffle", None)
    if fn is None:
        pytest.skip("this torch has no torch.nn.functional.native_channel_shuffle")
    x64 = np_rng.standard_normal((2, 6, 3, 4))
    x = _nc(x64, torch.float32, device)
    xs = _np(x)
    want = xs.reshape(2, groups, 6 // groups, 3, 4).transpose(0, 2, 1, 3, 4).reshape(2, 6, 3, 4)
    assert_close("F.native_channel_shuffle", fn(x, groups), want, op="exact", dtype=torch.float32, args=f"groups={groups}")
    assert_raises("F.native_channel_shuffle", RuntimeError, fn, x, 4, args="6 channels, groups=4")


_EMPTY = [  # (api, call on an empty input, expected shape)
    ("torch.layer_norm", lambda d: torch.layer_norm(torch.empty(0, 5, device=d), [5]), (0, 5)),
    ("torch.rms_norm", lambda d: torch.rms_norm(torch.empty(0, 5, device=d), [5]), (0, 5)),
    ("torch.dropout", lambda d: torch.dropout(torch.empty(0, 3, device=d), 0.5, True), (0, 3)),
    ("torch.native_dropout", lambda d: torch.native_dropout(torch.empty(4, 0, device=d), 0.5, True)[0], (4, 0)),
    ("torch.max_pool1d", lambda d: torch.max_pool1d(torch.empty(0, 2, 8, device=d), [2]), (0, 2, 4)),
    ("torch.max_pool2d", lambda d: torch.max_pool2d(torch.empty(0, 2, 4, 4, device=d), [2]), (0, 2, 2, 2)),
    ("torch.embedding", lambda d: torch.embedding(torch.ones(5, 3, device=d), torch.empty(0, dtype=torch.long, device=d)), (0, 3)),
    ("torch.embedding_bag", lambda d: torch.embedding_bag(torch.ones(5, 3, device=d), torch.empty(0, dtype=torch.long, device=d),
                                                          torch.zeros(2, dtype=torch.long, device=d))[0], (2, 3)),
    ("torch.celu", lambda d: torch.celu(torch.empty(0, device=d)), (0,)),
    ("torch.threshold", lambda d: torch.threshold(torch.empty(2, 0, device=d), 0.1, 2.0), (2, 0)),
    ("torch.kl_div", lambda d: torch.kl_div(torch.empty(0, device=d), torch.empty(0, device=d), 2), ()),
]


@pytest.mark.parametrize("case", range(len(_EMPTY)), ids=[e[0].split(".")[-1] for e in _EMPTY])
def test_empty_inputs(device, case):
    """Zero-size inputs give the documented zero-size (or reduced) result: empty outputs of the right shape; an
    embedding bag of empty bags is zeros; a sum over nothing is 0. Catches kernels that crash, read out of
    bounds or return the wrong shape on empty inputs."""
    api, call, shape = _EMPTY[case]
    out = call(device)
    assert_equal(api, tuple(out.shape), shape, args="empty input: shape")
    assert_close(api, out, np.zeros(shape), op="exact", dtype=out.dtype, args="empty input: values")
