"""§ 4 nn.Module and layers: F.scaled_dot_product_attention on the production kernels.

float32 and bfloat16 run the fused CPU flash-attention kernel (or cuDNN/flash/memory-efficient
kernels on CUDA) whenever the inputs allow it, the unfused "math" path otherwise (and under
``torch.nn.attention.sdpa_kernel(SDPBackend.MATH)``). These grids run both, with no mask, boolean and
additive masks (broadcast and full), ``is_causal`` (square and L != S), ``scale``, ``dropout_p=0``,
``enable_gqa``, a value dim different from the query dim, sequence lengths that cross the kernels'
block sizes, on contiguous, head-transposed (B, L, H, E) views, packed-QKV slices (real gaps), gapped
(``x[..., ::2]``) and storage-offset inputs, and batch 0; forward against the float64 NumPy reference
``suites/nn/_ref.py: sdpa`` (softmax(q k^T scale + mask) v), backward against float64 autograd on
the same values (the float64 math path). Each comparison is per element within a bound derived from
the computation (logit error times the spread of v, plus summation and bfloat16 rounding terms).
Realistic shapes (12 heads x 512 tokens x 64, GQA 16/4 heads x 128) run at ``--tier full``.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from packaging.version import Version

from harness.checks import assert_equal
from suites.nn._kernels import DTYPES, U32, UBF16, assert_bounded, grads, place, rand, to64
from suites.nn._ref import np64, softmax

_TORCH = Version(torch.__version__.split("+")[0])
_HAS_GQA = _TORCH >= Version("2.5")  # enable_gqa= appeared in torch 2.5

# name: dict(B, H (query heads), Hkv, L, S, E, Ev, mask kind, is_causal, scale, gqa)
CASES = {
    "plain": dict(),
    "causal": dict(is_causal=True),
    "causal_square": dict(is_causal=True, L=9),
    "bool_mask_2d": dict(mask="bool_2d"),
    "bool_mask_4d": dict(mask="bool_4d"),
    "float_mask": dict(mask="float_4d"),
    "float_mask_broadcast": dict(mask="float_2d"),
    "scale": dict(scale=0.3),
    "gqa": dict(H=8, Hkv=2, gqa=True),
    "value_dim": dict(Ev=12),
    "blocks": dict(L=67, S=133, E=32),
    "blocks_causal_mask": dict(L=130, S=130, E=32, mask="bool_2d"),
}
_DEFAULTS = dict(B=2, H=4, Hkv=None, L=7, S=9, E=16, Ev=None, mask=None, is_causal=False, scale=None, gqa=False)
LAYOUTS = ("contiguous", "heads_transposed", "packed", "gapped", "offset")
DEFAULT_CASES = ("plain", "causal", "bool_mask_2d", "float_mask", "scale", "gqa", "blocks")


def _cfg(name):
    cfg = {**_DEFAULTS, **CASES.get(name, {}), **REALISTIC.get(name, {})}
    cfg["Hkv"] = cfg["Hkv"] or cfg["H"]
    cfg["Ev"] = cfg["Ev"] or cfg["E"]
    return cfg


def _layout(t, layout):
    """(B, H, T, E) values in ``layout``: heads_transposed = a (B, T, H, E) tensor viewed as (B, H, T, E)
    (the layout multi-head attention produces); packed = a slice of a (B, T, 3, H, E) projection
    (stride between tokens 3*H*E: gaps); gapped / offset as in suites/nn/_kernels.place."""
    if layout in ("contiguous", "gapped", "offset"):
        return place(t, layout)
    b, h, n, e = t.shape
    if layout == "heads_transposed":
        out = torch.empty((b, n, h, e), dtype=t.dtype, device=t.device).transpose(1, 2)
    elif layout == "packed":
        out = torch.full((b, n, 3, h, e), math.nan, dtype=t.dtype, device=t.device)[:, :, 1].transpose(1, 2)
    else:
        raise ValueError(layout)
    out.copy_(t)
    return out


def _inputs(device, dtype, cfg):
    b, h, hkv, l_, s_, e, ev = (cfg[k] for k in ("B", "H", "Hkv", "L", "S", "E", "Ev"))
    q = rand((b, h, l_, e), dtype, device)
    k = rand((b, hkv, s_, e), dtype, device)
    v = rand((b, hkv, s_, ev), dtype, device)
    mask = None
    if cfg["mask"] is not None:
        kind, rank = cfg["mask"].split("_")
        shape = {"2d": (l_, s_), "4d": (b, 1 if kind == "bool" else h, l_, s_)}[rank]
        if kind == "bool":
            mask = torch.rand(shape, device=device) < 0.7  # True = take part in attention
            mask[..., 0] = True  # every query keeps at least one key (an all-masked row is undefined)
            if cfg["L"] == cfg["S"]:
                mask &= torch.ones(l_, s_, dtype=torch.bool, device=device).tril()  # causal padding-style mask
        else:
            mask = rand(shape, dtype, device)
            mask.view(-1)[::7] = -math.inf  # masked positions as -inf in an additive mask
            mask[..., 0] = 0.0
    return q, k, v, mask


def _call(cfg, backend):
    kw = dict(dropout_p=0.0, is_causal=cfg["is_causal"])
    if cfg["scale"] is not None:
        kw["scale"] = cfg["scale"]
    if cfg["gqa"]:
        kw["enable_gqa"] = True

    def f(q, k, v, mask=None):
        if backend == "math":
            from torch.nn.attention import SDPBackend, sdpa_kernel

            with sdpa_kernel([SDPBackend.MATH]):
                return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, **kw)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, **kw)
    return f


def _reference(cfg, Q, K, V, Mk):
    """float64 NumPy: repeat_interleave the key/value heads for GQA (documented), then
    softmax(q k^T * scale + mask) v with a top-left causal triangle. Returns (out, P, logits magnitude A)."""
    rep = cfg["H"] // cfg["Hkv"]
    K, V = np.repeat(K, rep, axis=1), np.repeat(V, rep, axis=1)
    scale = cfg["scale"] if cfg["scale"] is not None else 1 / math.sqrt(Q.shape[-1])
    logits = Q @ np.swapaxes(K, -1, -2) * scale
    l_, s_ = logits.shape[-2:]
    allowed = np.ones((l_, s_), dtype=bool)
    if cfg["is_causal"]:
        allowed = np.tril(allowed)
    add = np.zeros(logits.shape)
    if Mk is not None:
        if Mk.dtype == bool:
            allowed = allowed & Mk
        else:
            add = add + Mk
    logits = np.where(allowed, logits + add, -np.inf)
    P = softmax(logits, -1)
    A = np.abs(Q) @ np.swapaxes(np.abs(K), -1, -2) * scale  # sum of |q_e k_e| * scale per logit
    return P @ V, P, A, K, V, np.abs(np.where(np.isfinite(add), add, 0.0))


def _logit_error(cfg, dtype, A, Madd):
    """Bound on the error of each logit: a float32 dot product of E terms (gamma_(E+2) of sum |q||k|);
    for bfloat16 also up to three roundings of q*scale, k*scale / the logits and the mask sum (the
    unfused math path rounds each to bfloat16)."""
    e = cfg["E"]
    d = (e + 2) * U32 * A + U32 * Madd
    if dtype == torch.bfloat16:
        d = d + 3 * UBF16 * (A + Madd)
    return d


def _out_bound(cfg, dtype, P, V, O, dl):
    """|delta o_i| <= sum_j p_ij dl_ij |v_j - o_i| (first-order change of softmax-weighted means; bounded
    by (P dl) |V| + (sum_j p_ij dl_ij) |o_i| to stay two GEMMs) + (S + 10) u sum_j p_ij |v_j| (softmax
    normalisation, online rescaling, the P@V sum) and, in bfloat16, P rounded before P@V
    (2^-8 sum p|v|); the final bfloat16 rounding is the rtol."""
    s_ = V.shape[-2]
    pdl = P * dl
    spread = pdl @ np.abs(V) + pdl.sum(-1, keepdims=True) * np.abs(O)
    pv = P @ np.abs(V)
    c1 = (s_ + 10) * U32 + (2 * UBF16 if dtype == torch.bfloat16 else 0.0)
    return spread + c1 * pv


def _check_forward(device, dtype, name, layout, backend="default", batch=None):
    cfg = _cfg(name)
    if batch is not None:
        cfg["B"] = batch
    if cfg["gqa"] and not _HAS_GQA:
        pytest.skip(f"enable_gqa needs torch >= 2.5 (running {torch.__version__})")
    q0, k0, v0, mask = _inputs(device, dtype, cfg)
    q, k, v = (_layout(t, layout) for t in (q0, k0, v0))
    y = _call(cfg, backend)(q, k, v, mask)
    Mk = None if mask is None else (mask.cpu().numpy() if mask.dtype == torch.bool else np64(mask))
    O, P, A, _, Vr, Madd = _reference(cfg, np64(q0), np64(k0), np64(v0), Mk)
    allow = _out_bound(cfg, dtype, P, Vr, O, _logit_error(cfg, dtype, A, Madd))
    args = f"{name}, {layout}, {backend}, q{tuple(q.shape)} strides {q.stride()}, k{tuple(k.shape)}, v{tuple(v.shape)}"
    assert_bounded("F.scaled_dot_product_attention", y, O, allow, rtol=UBF16 if dtype == torch.bfloat16 else 0.0,
                   atol=1.0, dtype=dtype, args=args + " (allowance: derived per-element bound)")


def _fwd_cases():
    out = []
    for name in CASES:
        for layout in LAYOUTS:
            for backend in ("default", "math"):
                fast = name in DEFAULT_CASES and layout in ("contiguous", "packed", "gapped") and (
                    backend == "default" or layout == "contiguous")
                marks = [] if fast else [pytest.mark.slow]
                if (name, layout, backend) == ("causal", "packed", "default"):
                    marks.append(pytest.mark.smoke)
                out.append(pytest.param(name, layout, backend, id=f"{name}-{layout}-{backend}", marks=marks))
    return out


@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("name,layout,backend", _fwd_cases())
def test_sdpa_forward(device, dtype, name, layout, backend):
    """scaled_dot_product_attention forward in float32/bfloat16 on the fused and the math path. Catches
    a causal mask aligned bottom-right instead of top-left for L != S, a boolean mask read inverted, an
    additive mask ignored on one path, scale= ignored (1/sqrt(E) used), key/value heads repeated
    tiled instead of interleaved for GQA, the value dim confused with the query dim, a block boundary
    (67/133 tokens) that loses the online-softmax rescaling, strided (packed QKV) inputs read as dense."""
    _check_forward(device, dtype, name, layout, backend)


@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("name", ["plain", "causal", "bool_mask_2d", "gqa"])
def test_sdpa_zero_batch(device, dtype, name):
    """Batch 0: the output is (0, H, L, Ev) in the input dtype, and the backward gives empty gradients.
    Catches a crash or a wrong shape on an empty batch."""
    cfg = _cfg(name)
    cfg["B"] = 0
    if cfg["gqa"] and not _HAS_GQA:
        pytest.skip(f"enable_gqa needs torch >= 2.5 (running {torch.__version__})")
    q, k, v, mask = _inputs(device, dtype, cfg)
    if mask is not None and mask.ndim == 4:
        mask = mask[:0]
    f = _call(cfg, "default")
    y, (gq, gk, gv) = grads(lambda q, k, v: f(q, k, v, mask), (q, k, v),
                            torch.zeros((0, cfg["H"], cfg["L"], cfg["Ev"]), dtype=dtype, device=device))
    api = "F.scaled_dot_product_attention"
    assert_equal(api, tuple(y.shape), (0, cfg["H"], cfg["L"], cfg["Ev"]), args=f"batch 0, {name}")
    assert_equal(api, y.dtype, dtype, args="batch 0: result dtype")
    for t, g in ((q, gq), (k, gk), (v, gv)):
        assert_equal(api, tuple(g.shape), tuple(t.shape), args="batch 0: gradient shape")


def _grad_bounds(cfg, dtype, P, Kr, Q, G, Vr, dl):
    """Per-element allowances for dq, dk, dv, first order, from dS = P * (dP - rowsum(P * dP)),
    dP = g v^T, dq = scale dS k, dk = scale dS^T q, dv = P^T g. Each dS term is off (relatively) by its
    logit error, its row's mean logit error, the E- and S-term sums that form it and, in bfloat16,
    three roundings (P, dP, dS before the GEMMs); each GEMM adds its own sum error. With GQA the
    gradients of a shared key/value head sum the per-query-head ones (rounded to bfloat16 each, on
    the unfused path)."""
    e, s_, l_ = Q.shape[-1], Kr.shape[-2], Q.shape[-2]
    scale = cfg["scale"] if cfg["scale"] is not None else 1 / math.sqrt(e)
    bf = dtype == torch.bfloat16
    r = 3 * UBF16 if bf else 0.0
    Gv = np.abs(G) @ np.swapaxes(np.abs(Vr), -1, -2)  # magnitudes of the dP terms
    W = P * (Gv + (P * Gv).sum(-1, keepdims=True))  # magnitudes of the dS terms
    D = (P * dl).sum(-1, keepdims=True)
    eps = dl + D + (e + s_ + 10) * U32 + r
    Wt = np.swapaxes(W, -1, -2)
    mag_q, mag_k, mag_v = scale * W @ np.abs(Kr), scale * Wt @ np.abs(Q), np.swapaxes(P, -1, -2) @ np.abs(G)
    dq = scale * (W * eps) @ np.abs(Kr) + (s_ + 2) * U32 * mag_q
    dk = scale * np.swapaxes(W * eps, -1, -2) @ np.abs(Q) + (l_ + 2) * U32 * mag_k
    dv = np.swapaxes(P * (dl + D + r), -1, -2) @ np.abs(G) + (l_ + 2) * U32 * mag_v
    rep = cfg["H"] // cfg["Hkv"]
    if rep > 1:
        per_head = rep * U32 + (rep * UBF16 if bf else 0.0)

        def fold(t):
            return t.reshape(t.shape[0], -1, rep, *t.shape[2:]).sum(2)
        dk = fold(dk) + per_head * fold(mag_k)
        dv = fold(dv) + per_head * fold(mag_v)
    return dq, dk, dv


def _check_backward(device, dtype, name, layout, backend="default"):
    cfg = _cfg(name)
    if cfg["gqa"] and not _HAS_GQA:
        pytest.skip(f"enable_gqa needs torch >= 2.5 (running {torch.__version__})")
    q0, k0, v0, mask = _inputs(device, dtype, cfg)
    q, k, v = (_layout(t, layout) for t in (q0, k0, v0))
    f = _call(cfg, backend)
    g = rand((cfg["B"], cfg["H"], cfg["L"], cfg["Ev"]), dtype, device)
    _, got = grads(lambda q, k, v: f(q, k, v, mask), (q, k, v), g)
    m64 = None if mask is None else (mask if mask.dtype == torch.bool else to64(mask))
    f64 = _call(cfg, "default")
    _, ref = grads(lambda q, k, v: f64(q, k, v, m64), (to64(q0), to64(k0), to64(v0)), to64(g))
    Mk = None if mask is None else (mask.cpu().numpy() if mask.dtype == torch.bool else np64(mask))
    Q = np64(q0)
    O, P, A, Kr, Vr, Madd = _reference(cfg, Q, np64(k0), np64(v0), Mk)
    dl = _logit_error(cfg, dtype, A, Madd)
    bounds = _grad_bounds(cfg, dtype, P, Kr, Q, np64(g), Vr, dl)
    args = f"{name}, {layout}, {backend}, q{tuple(q.shape)} strides {q.stride()}"
    for what, gg, rr, bb in zip(("query", "key", "value"), got, ref, bounds):
        assert_bounded("F.scaled_dot_product_attention", gg, np64(rr), bb, rtol=UBF16 if dtype == torch.bfloat16 else 0.0,
                       atol=1.0, dtype=dtype, args=f"grad {what}: {args} (allowance: derived per-element bound)")


def _bwd_cases():
    out = []
    for name in CASES:
        for layout in ("contiguous", "packed", "gapped"):
            for backend in ("default", "math"):
                fast = name in ("plain", "causal", "float_mask", "gqa", "blocks") and backend == "default" and (
                    layout in ("contiguous", "packed"))
                full = layout == "contiguous" or backend == "default"
                if fast or full:
                    out.append(pytest.param(name, layout, backend, id=f"{name}-{layout}-{backend}",
                                            marks=() if fast else pytest.mark.slow))
    return out


@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("name,layout,backend", _bwd_cases())
def test_sdpa_backward(device, dtype, name, layout, backend):
    """scaled_dot_product_attention backward (query, key, value gradients) in float32/bfloat16 on the
    fused and the math path against float64 autograd on the same values. Catches a dS that drops the
    rowsum(P * dP) term, dK/dV not summed over the query heads sharing a GQA key/value head, a causal
    or additive mask ignored in the backward only, a scale applied to dq but not dk."""
    _check_backward(device, dtype, name, layout, backend)


REALISTIC = {
    "bert_base_causal": dict(B=1, H=12, L=512, S=512, E=64, is_causal=True),
    "gqa_llama": dict(B=1, H=16, Hkv=4, L=256, S=256, E=128, is_causal=True, gqa=True),
    "padding_mask": dict(B=4, H=8, L=128, S=384, E=64, mask="bool_4d"),
}


@pytest.mark.slow
@pytest.mark.dtypes(*DTYPES)
@pytest.mark.parametrize("name", list(REALISTIC))
def test_sdpa_realistic(device, dtype, name):
    """Realistic attention shapes (BERT-base 12 heads x 512 tokens causal, Llama-style GQA 16/4 heads x
    128 dims, a padding mask over 384 keys) in float32/bfloat16, forward and backward: many kernel
    blocks per row, threads split over batch x heads."""
    _check_forward(device, dtype, name, "heads_transposed")
    _check_backward(device, dtype, name, "contiguous")
