"""§ 4 nn.Module and layers: MultiheadAttention, F.scaled_dot_product_attention and
TransformerEncoderLayer against float64 NumPy references composed from plain matrix math.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.nn._ref import gelu, layer_norm, mha, np64, sdpa


def _randomise(m):
    with torch.no_grad():
        for p in m.parameters():
            p.uniform_(-0.5, 0.5)


def _mha_ref(m, q, k, v, **kw):
    """Reference for module m on seq-first float64 arrays."""
    e = m.embed_dim
    if m._qkv_same_embed_dim:
        w = np64(m.in_proj_weight)
        w_q, w_k, w_v = w[:e], w[e:2 * e], w[2 * e:]
    else:
        w_q, w_k, w_v = np64(m.q_proj_weight), np64(m.k_proj_weight), np64(m.v_proj_weight)
    b = np64(m.in_proj_bias) if m.in_proj_bias is not None else None
    b_q, b_k, b_v = (None, None, None) if b is None else (b[:e], b[e:2 * e], b[2 * e:])
    return mha(q, k, v, m.num_heads, w_q, w_k, w_v, b_q, b_k, b_v, np64(m.out_proj.weight),
               np64(m.out_proj.bias) if m.out_proj.bias is not None else None,
               bias_k=np64(m.bias_k) if m.bias_k is not None else None,
               bias_v=np64(m.bias_v) if m.bias_v is not None else None, add_zero_attn=m.add_zero_attn, **kw)


@pytest.mark.smoke
@pytest.mark.parametrize("num_heads", [1, 2, 4])
def test_mha_basic(device, dtype, num_heads):
    """MultiheadAttention (seq-first): in_proj rows split q,k,v; per-head scale 1/sqrt(head_dim); out_proj;
    need_weights returns head-averaged weights (N, L, S). Catches q/k/v rows permuted, scale by
    1/sqrt(embed_dim), heads split along the wrong axis, weights not averaged."""
    m = nn.MultiheadAttention(8, num_heads, device=device, dtype=dtype)
    _randomise(m)
    assert_equal("nn.MultiheadAttention", tuple(m.in_proj_weight.shape), (24, 8), args="in_proj_weight shape")
    q = torch.randn(3, 2, 8, device=device, dtype=dtype)
    kv = torch.randn(5, 2, 8, device=device, dtype=dtype)
    v = torch.randn(5, 2, 8, device=device, dtype=dtype)
    out, w = m(q, kv, v)
    ro, rw = _mha_ref(m, np64(q), np64(kv), np64(v))
    assert_close("nn.MultiheadAttention", out, ro, op="nn", args=f"num_heads={num_heads}", check_dtype=dtype)
    assert_close("nn.MultiheadAttention", w, rw.mean(1), op="nn", args="averaged weights (N, L, S)")


def test_mha_batch_first_unbatched_and_weights(device):
    """batch_first=True takes (N, L, E); unbatched (L, E) input works; average_attn_weights=False gives
    per-head (N, h, L, S); need_weights=False returns None."""
    m = nn.MultiheadAttention(6, 3, batch_first=True, device=device, dtype=torch.float64)
    _randomise(m)
    q = torch.randn(2, 4, 6, device=device, dtype=torch.float64)
    k = torch.randn(2, 3, 6, device=device, dtype=torch.float64)
    out, w = m(q, k, k, average_attn_weights=False)
    ro, rw = _mha_ref(m, np64(q).swapaxes(0, 1), np64(k).swapaxes(0, 1), np64(k).swapaxes(0, 1))
    assert_close("nn.MultiheadAttention", out, ro.swapaxes(0, 1), op="nn", args="batch_first=True")
    assert_close("nn.MultiheadAttention", w, rw, op="nn", args="average_attn_weights=False (N, h, L, S)")
    out2, w2 = m(q, k, k, need_weights=False)
    assert_true("nn.MultiheadAttention", w2 is None, "need_weights=False must return None weights")
    assert_close("nn.MultiheadAttention", out2, ro.swapaxes(0, 1), op="nn", args="need_weights=False")
    ou, wu = m(q[0], k[0], k[0])
    assert_close("nn.MultiheadAttention", ou, ro[:, 0], op="nn", args="unbatched (L, E)")
    assert_close("nn.MultiheadAttention", wu, rw[0].mean(0), op="nn", args="unbatched weights (L, S)")


@pytest.mark.parametrize("mask_kind", ["kpm_bool", "attn_bool", "attn_float", "attn_3d", "both"])
def test_mha_masks(device, mask_kind):
    """key_padding_mask (N, S) bool True = ignore that key; attn_mask (L, S) bool True = not allowed, float
    = added to the logits; 3-d attn_mask (N*h, L, S) per head. Catches inverted bool masks, masks applied
    to queries instead of keys, a float mask treated as bool, per-head masks applied to the wrong head."""
    m = nn.MultiheadAttention(8, 2, device=device, dtype=torch.float64)
    _randomise(m)
    L, S, N = 3, 5, 2
    q = torch.randn(L, N, 8, device=device, dtype=torch.float64)
    k = torch.randn(S, N, 8, device=device, dtype=torch.float64)
    kpm = torch.tensor([[False, False, True, False, True], [True, False, False, False, False]], device=device)
    am_bool = torch.tensor([[False, True, False, False, False], [False, False, False, True, True],
                            [True, False, False, False, False]], device=device)
    am_float = torch.randn(L, S, device=device, dtype=torch.float64)
    am3 = torch.randn(N * 2, L, S, device=device, dtype=torch.float64)
    kw = {"kpm_bool": dict(key_padding_mask=kpm), "attn_bool": dict(attn_mask=am_bool),
          "attn_float": dict(attn_mask=am_float), "attn_3d": dict(attn_mask=am3),
          "both": dict(key_padding_mask=kpm, attn_mask=am_bool)}[mask_kind]
    out, w = m(q, k, k, average_attn_weights=False, **kw)
    ro, rw = _mha_ref(m, np64(q), np64(k), np64(k), **{a: to_np(t) for a, t in kw.items()})
    assert_close("nn.MultiheadAttention", out, ro, op="nn", args=mask_kind)
    assert_close("nn.MultiheadAttention", w, rw, op="nn", args=f"{mask_kind} weights")
    if "key_padding_mask" in kw:
        assert_true("nn.MultiheadAttention", (w[0, :, :, 2] == 0).all().item(), "a padded key must get weight 0")


def to_np(t):
    return t.cpu().numpy() if t.dtype == torch.bool else np64(t)


def test_mha_kdim_vdim_and_bias_kv(device):
    """kdim/vdim != embed_dim use separate q/k/v_proj_weight (in_proj_weight None); add_bias_kv appends
    learned bias_k/bias_v to the key/value sequence; add_zero_attn appends a zero key/value per head;
    bias=False has no in_proj_bias or out_proj.bias."""
    m = nn.MultiheadAttention(6, 2, kdim=4, vdim=3, device=device, dtype=torch.float64)
    _randomise(m)
    assert_true("nn.MultiheadAttention", m.in_proj_weight is None, "kdim/vdim must not use the packed in_proj_weight")
    assert_equal("nn.MultiheadAttention", tuple(m.k_proj_weight.shape), (6, 4), args="k_proj_weight shape")
    assert_equal("nn.MultiheadAttention", tuple(m.v_proj_weight.shape), (6, 3), args="v_proj_weight shape")
    q = torch.randn(3, 2, 6, device=device, dtype=torch.float64)
    k = torch.randn(4, 2, 4, device=device, dtype=torch.float64)
    v = torch.randn(4, 2, 3, device=device, dtype=torch.float64)
    out, _ = m(q, k, v)
    assert_close("nn.MultiheadAttention", out, _mha_ref(m, np64(q), np64(k), np64(v))[0], op="nn", args="kdim=4, vdim=3")
    kpm = torch.tensor([[False, True, False, False], [False, False, False, True]], device=device)
    for kw in [dict(add_bias_kv=True), dict(add_zero_attn=True), dict(add_bias_kv=True, add_zero_attn=True), dict(bias=False)]:
        m2 = nn.MultiheadAttention(6, 3, device=device, dtype=torch.float64, **kw)
        _randomise(m2)
        kk = torch.randn(4, 2, 6, device=device, dtype=torch.float64)
        out, w = m2(q, kk, kk, key_padding_mask=kpm)
        ro, rw = _mha_ref(m2, np64(q), np64(kk), np64(kk), key_padding_mask=kpm.cpu().numpy())
        assert_close("nn.MultiheadAttention", out, ro, op="nn", args=str(kw))
        assert_close("nn.MultiheadAttention", w, rw.mean(1), op="nn", args=f"{kw} weights")
        if kw.get("bias") is False:
            assert_true("nn.MultiheadAttention", m2.in_proj_bias is None and m2.out_proj.bias is None, "bias=False keeps biases")


def test_mha_errors_and_dropout(device):
    """embed_dim not divisible by num_heads is an error; dropout is applied to weights in train only."""
    assert_raises("nn.MultiheadAttention", (AssertionError, ValueError), nn.MultiheadAttention, 10, 3, args="10, 3")
    m = nn.MultiheadAttention(4, 2, dropout=0.9, device=device, dtype=torch.float64)
    q = torch.randn(6, 1, 4, device=device, dtype=torch.float64)
    m.eval()
    out, w = m(q, q, q)
    ro, rw = _mha_ref(m, np64(q), np64(q), np64(q))
    assert_close("nn.MultiheadAttention", out, ro, op="nn", args="dropout=0.9, eval: no dropout")
    m.train()
    _, wt = m(q, q, q)
    assert_true("nn.MultiheadAttention", not np.allclose(np64(wt), rw.mean(1)), "dropout=0.9 in train must change weights")


def test_mha_gradcheck(device):
    """MultiheadAttention backward w.r.t. query/key/value by finite differences."""
    m = nn.MultiheadAttention(4, 2, device=device, dtype=torch.float64)
    q = torch.randn(2, 1, 4, device=device, dtype=torch.float64, requires_grad=True)
    k = torch.randn(3, 1, 4, device=device, dtype=torch.float64, requires_grad=True)
    assert_true("nn.MultiheadAttention", torch.autograd.gradcheck(lambda q, k: m(q, k, k)[0], (q, k)), "gradcheck failed")


@pytest.mark.parametrize("case", ["plain", "causal", "causal_rect", "bool_mask", "float_mask", "scale", "broadcast_mask"])
def test_sdpa(device, dtype, case):
    """F.scaled_dot_product_attention: softmax(QK^T*scale + mask)V with scale default 1/sqrt(E), bool mask
    True = take part (opposite of MHA's attn_mask), is_causal = top-left lower triangle (also for L != S).
    Catches a default scale of 1/E, inverted bool masks, a bottom-right causal mask."""
    if not hasattr(F, "scaled_dot_product_attention"):
        pytest.skip("F.scaled_dot_product_attention needs torch >= 2.0")
    L, S = (4, 6) if case == "causal_rect" else (5, 5) if case.startswith("causal") else (3, 6)
    q = torch.randn(2, 3, L, 8, device=device, dtype=dtype)
    k = torch.randn(2, 3, S, 8, device=device, dtype=dtype)
    v = torch.randn(2, 3, S, 5, device=device, dtype=dtype)
    kw, rk = {}, {}
    if case.startswith("causal"):
        kw, rk = dict(is_causal=True), dict(is_causal=True)
    elif case == "bool_mask":
        mask = torch.rand(L, S, device=device) > 0.4
        mask[:, 0] = True  # every query keeps at least one key
        kw, rk = dict(attn_mask=mask), dict(mask=mask.cpu().numpy())
    elif case == "float_mask":
        mask = torch.randn(2, 3, L, S, device=device, dtype=dtype)
        kw, rk = dict(attn_mask=mask), dict(mask=np64(mask))
    elif case == "broadcast_mask":
        mask = torch.randn(1, 3, 1, S, device=device, dtype=dtype)
        kw, rk = dict(attn_mask=mask), dict(mask=np64(mask))
    elif case == "scale":
        kw, rk = dict(scale=0.7), dict(scale=0.7)
    out = F.scaled_dot_product_attention(q, k, v, **kw)
    ref, _ = sdpa(np64(q), np64(k), np64(v), **rk)
    assert_close("F.scaled_dot_product_attention", out, ref, op="nn", args=case, check_dtype=dtype)


def test_sdpa_dropout_and_gradcheck(device):
    """dropout_p=0 is deterministic; dropout_p>0 changes the result; backward by finite differences."""
    q = torch.randn(1, 2, 3, 4, device=device, dtype=torch.float64, requires_grad=True)
    ref, _ = sdpa(np64(q), np64(q), np64(q))
    assert_close("F.scaled_dot_product_attention", F.scaled_dot_product_attention(q, q, q, dropout_p=0.0), ref, op="nn",
                 args="dropout_p=0")
    d = F.scaled_dot_product_attention(q, q, q, dropout_p=0.9)
    assert_true("F.scaled_dot_product_attention", not np.allclose(np64(d), ref), "dropout_p=0.9 had no effect")
    f = lambda q: F.scaled_dot_product_attention(q, q * 0.5, q, is_causal=True)  # noqa: E731
    assert_true("F.scaled_dot_product_attention", torch.autograd.gradcheck(f, (q,)), "gradcheck failed")


def _encoder_ref(m, x, norm_first, activation, src_mask=None, kpm=None):
    """TransformerEncoderLayer composed from float64 math (seq-first x)."""
    sa = lambda h: _mha_ref(m.self_attn, h, h, h, attn_mask=src_mask, key_padding_mask=kpm)[0]  # noqa: E731
    act = (lambda a: np.maximum(a, 0)) if activation == "relu" else gelu
    ff = lambda h: act(h @ np64(m.linear1.weight).T + np64(m.linear1.bias)) @ np64(m.linear2.weight).T + np64(m.linear2.bias)  # noqa: E731
    n1 = lambda h: layer_norm(h, 1, np64(m.norm1.weight), np64(m.norm1.bias), m.norm1.eps)  # noqa: E731
    n2 = lambda h: layer_norm(h, 1, np64(m.norm2.weight), np64(m.norm2.bias), m.norm2.eps)  # noqa: E731
    if norm_first:
        x = x + sa(n1(x))
        return x + ff(n2(x))
    x = n1(x + sa(x))
    return n2(x + ff(x))


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer_encoder_layer(device, dtype, norm_first, activation, batch_first):
    """TransformerEncoderLayer in eval mode (dropout off): post-norm x = LN1(x + SA(x)), LN2(x + FF(x));
    norm_first: x + SA(LN1 x), then x + FF(LN2 x); FF = linear2(act(linear1 x)). Catches norm_first
    ignored, activation ignored, residual dropped, dropout active in eval."""
    m = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.3, activation=activation, norm_first=norm_first,
                                   batch_first=batch_first, layer_norm_eps=1e-3, device=device, dtype=dtype)
    _randomise(m)
    m.eval()
    x = torch.randn(4, 3, 8, device=device, dtype=dtype)
    ref = _encoder_ref(m, np64(x), norm_first, activation)
    with torch.no_grad():
        out = m(x.transpose(0, 1) if batch_first else x)
    out = out.transpose(0, 1) if batch_first else out
    assert_close("nn.TransformerEncoderLayer", out, ref, op="nn",
                 args=f"norm_first={norm_first}, activation={activation}, batch_first={batch_first}", check_dtype=dtype)


def test_transformer_encoder_layer_masks_and_train(device):
    """src_mask and src_key_padding_mask reach the self-attention; train mode with dropout differs from
    eval, and with dropout=0 train equals eval."""
    m = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, device=device, dtype=torch.float64)
    _randomise(m)
    x = torch.randn(5, 2, 8, device=device, dtype=torch.float64)
    src_mask = torch.triu(torch.ones(5, 5, dtype=torch.bool, device=device), diagonal=1)
    kpm = torch.tensor([[False] * 4 + [True], [False] * 5], device=device)
    out = m(x, src_mask=src_mask, src_key_padding_mask=kpm)
    ref = _encoder_ref(m, np64(x), False, "relu", src_mask.cpu().numpy(), kpm.cpu().numpy())
    assert_close("nn.TransformerEncoderLayer", out, ref, op="nn", args="src_mask causal, key padding, train, dropout=0")
    m.dropout.p = m.dropout1.p = m.dropout2.p = 0.5
    m.train()
    assert_true("nn.TransformerEncoderLayer", not np.allclose(np64(m(x)), _encoder_ref(m, np64(x), False, "relu")),
                "dropout=0.5 in train mode had no effect")
    enc = nn.TransformerEncoder(m, num_layers=2, enable_nested_tensor=False)
    enc.eval()
    h = np64(x)
    for layer in enc.layers:
        h = _encoder_ref(layer, h, False, "relu")
    assert_close("nn.TransformerEncoder", enc(x), h, op="nn", args="2 stacked layers (deep copies)")
    assert_true("nn.TransformerEncoder", enc.layers[0].linear1.weight is not enc.layers[1].linear1.weight,
                "layers must be independent copies")
