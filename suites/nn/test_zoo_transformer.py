"""§ 4 nn.Module and layers (module zoo): Transformer, TransformerDecoder and TransformerDecoderLayer
against a float64 NumPy re-implementation built from each module's own weights (multi-head attention,
layer norm, feed-forward, post-norm and pre-norm orders, masks), in eval mode (where the encoder may
take its fused fast path) and train mode with dropout 0.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harness.checks import assert_close, assert_true
from suites.nn._ref import gelu, layer_norm, mha, np64

E, HEADS, FF = 16, 4, 32
ACT = {"relu": lambda x: np.maximum(x, 0.0), "gelu": gelu}


def _attn(mod: nn.MultiheadAttention, q, kv, key_padding_mask=None, attn_mask=None):
    """Seq-first float64 multi-head attention from the module's packed in-projection and out_proj."""
    w, b = np64(mod.in_proj_weight), np64(mod.in_proj_bias)
    out, _ = mha(q, kv, kv, mod.num_heads, w[:E], w[E:2 * E], w[2 * E:], b[:E], b[E:2 * E], b[2 * E:],
                 np64(mod.out_proj.weight), np64(mod.out_proj.bias), key_padding_mask=key_padding_mask, attn_mask=attn_mask)
    return out


def _ln(x, norm):
    return layer_norm(x, 1, np64(norm.weight), np64(norm.bias), norm.eps)


def _ff(layer, x, act):
    h = ACT[act](x @ np64(layer.linear1.weight).T + np64(layer.linear1.bias))
    return h @ np64(layer.linear2.weight).T + np64(layer.linear2.bias)


def ref_encoder_layer(layer, x, act, norm_first, src_mask=None, kpm=None):
    """TransformerEncoderLayer (documented): post-norm x = LN1(x + SA(x)); x = LN2(x + FF(x)); pre-norm
    x = x + SA(LN1(x)); x = x + FF(LN2(x)). x seq-first (S, N, E). The order comes from the test's
    ``norm_first``, never from the module's attribute, so a module ignoring its flag cannot steer it."""
    if norm_first:
        x = x + _attn(layer.self_attn, _ln(x, layer.norm1), _ln(x, layer.norm1), kpm, src_mask)
        return x + _ff(layer, _ln(x, layer.norm2), act)
    x = _ln(x + _attn(layer.self_attn, x, x, kpm, src_mask), layer.norm1)
    return _ln(x + _ff(layer, x, act), layer.norm2)


def ref_decoder_layer(layer, x, mem, act, norm_first, tgt_mask=None, tgt_kpm=None, mem_mask=None, mem_kpm=None):
    """TransformerDecoderLayer (documented): self-attention over the target, cross-attention to the memory,
    feed-forward, each with a residual and LayerNorm after (post-norm) or before (norm_first)."""
    if norm_first:
        h = _ln(x, layer.norm1)
        x = x + _attn(layer.self_attn, h, h, tgt_kpm, tgt_mask)
        x = x + _attn(layer.multihead_attn, _ln(x, layer.norm2), mem, mem_kpm, mem_mask)
        return x + _ff(layer, _ln(x, layer.norm3), act)
    x = _ln(x + _attn(layer.self_attn, x, x, tgt_kpm, tgt_mask), layer.norm1)
    x = _ln(x + _attn(layer.multihead_attn, x, mem, mem_kpm, mem_mask), layer.norm2)
    return _ln(x + _ff(layer, x, act), layer.norm3)


def _causal(n: int) -> np.ndarray:
    return np.triu(np.full((n, n), -np.inf), 1)


def _perturb(mod: nn.Module, scale: float = 0.2) -> None:
    """Make every parameter distinct (the stacks deep-copy one layer, so a bug reusing layer 0 for every
    layer would otherwise go unseen; LayerNorm weights would otherwise be exactly 1)."""
    with torch.no_grad():
        for p in mod.parameters():
            p.add_(torch.randn_like(p) * scale)


def _seq_first(x: torch.Tensor, batch_first: bool) -> np.ndarray:
    a = np64(x)
    return a.transpose(1, 0, 2) if batch_first else a


LAYER_CASES = [(False, "relu", False), (True, "gelu", True), (False, "gelu", True), (True, "relu", False)]


@pytest.mark.smoke
@pytest.mark.parametrize("norm_first,act,batch_first", LAYER_CASES,
                         ids=[f"{'prenorm' if a else 'postnorm'}-{b}-{'bf' if c else 'sf'}" for a, b, c in LAYER_CASES])
def test_transformer_decoder_layer(device, dtype, norm_first, act, batch_first):
    """TransformerDecoderLayer with a causal target mask, target and memory key-padding masks, post-norm and
    pre-norm, relu/gelu, batch_first or not. Catches the cross-attention attending to the target instead
    of the memory, norm_first ignored, the memory padding mask dropped, a causal mask applied to the
    memory, and batch_first read as seq-first."""
    torch.manual_seed(0)
    layer = nn.TransformerDecoderLayer(E, HEADS, FF, dropout=0.0, activation=act, batch_first=batch_first,
                                       norm_first=norm_first)
    _perturb(layer)
    layer = layer.to(device, dtype).eval()
    n, t, s = 3, 5, 6
    shape = (lambda L: (n, L, E)) if batch_first else (lambda L: (L, n, E))
    tgt = torch.randn(*shape(t), dtype=torch.float64).to(device, dtype)
    mem = torch.randn(*shape(s), dtype=torch.float64).to(device, dtype)
    tgt_kpm = torch.zeros(n, t, dtype=torch.bool)
    tgt_kpm[1, 3:] = True
    mem_kpm = torch.zeros(n, s, dtype=torch.bool)
    mem_kpm[0, 4:] = True
    mem_kpm[2, :2] = True
    tgt_mask = torch.from_numpy(np.triu(np.ones((t, t), dtype=bool), 1)).to(device)  # bool: True = may not attend
    with torch.no_grad():
        got = layer(tgt, mem, tgt_mask=tgt_mask, tgt_key_padding_mask=tgt_kpm.to(device),
                    memory_key_padding_mask=mem_kpm.to(device))
    ref = ref_decoder_layer(layer, _seq_first(tgt, batch_first), _seq_first(mem, batch_first), act, norm_first,
                            tgt_mask=np64(tgt_mask) > 0,
                            tgt_kpm=tgt_kpm.numpy(), mem_kpm=mem_kpm.numpy())
    ref = ref.transpose(1, 0, 2) if batch_first else ref
    assert_close("nn.TransformerDecoderLayer", got, ref, op="nn",
                 args=f"norm_first={norm_first}, {act}, batch_first={batch_first}", check_dtype=dtype)


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train-dropout0"])
def test_transformer_decoder_stack(device, dtype, train):
    """TransformerDecoder runs num_layers independent copies of the layer in order, then the final norm;
    tgt_is_causal with the square subsequent mask. Catches one layer reused for all (copies sharing
    parameters), layers run in reverse, the final norm skipped."""
    torch.manual_seed(1)
    layer = nn.TransformerDecoderLayer(E, HEADS, FF, dropout=0.0)
    dec = nn.TransformerDecoder(layer, num_layers=3, norm=nn.LayerNorm(E))
    assert_true("nn.TransformerDecoder", dec.layers[0].linear1.weight is not dec.layers[1].linear1.weight,
                "layers must be independent copies")
    _perturb(dec)
    dec = dec.to(device, dtype).train(train)
    t, s, n = 6, 4, 2
    tgt = torch.randn(t, n, E, dtype=torch.float64).to(device, dtype)
    mem = torch.randn(s, n, E, dtype=torch.float64).to(device, dtype)
    mask = nn.Transformer.generate_square_subsequent_mask(t, device=device, dtype=dtype)
    with torch.set_grad_enabled(train):
        got = dec(tgt, mem, tgt_mask=mask, tgt_is_causal=True)
    x = np64(tgt)
    for lyr in dec.layers:
        x = ref_decoder_layer(lyr, x, np64(mem), "relu", False, tgt_mask=_causal(t))
    ref = _ln(x, dec.norm)
    assert_close("nn.TransformerDecoder", got, ref, op="nn", args=f"3 layers + norm, train={train}", check_dtype=dtype)


def test_generate_square_subsequent_mask(device):
    """generate_square_subsequent_mask(n) is -inf strictly above the diagonal and 0 elsewhere. Catches an
    off-by-one diagonal (a token hidden from itself) and a bool mask returned instead of a float one."""
    got = nn.Transformer.generate_square_subsequent_mask(5, device=device)
    assert_close("nn.Transformer.generate_square_subsequent_mask", got, _causal(5), op="exact", check_dtype=torch.float32)


@pytest.mark.parametrize("train,batch_first,norm_first", [(False, True, False), (True, False, False), (False, True, True)],
                         ids=["eval-bf-postnorm", "train-sf-postnorm", "eval-bf-prenorm"])
def test_transformer(device, dtype, train, batch_first, norm_first):
    """nn.Transformer = encoder stack + final LayerNorm, decoder stack + final LayerNorm, with source and
    memory key-padding masks and a causal target mask, in eval mode (the encoder's fused fast path may
    run and return padded positions as zeros, which the memory padding mask must then hide) and train
    mode with dropout 0. Catches the memory padding mask not applied, the encoder's final norm skipped,
    src and tgt swapped, and the fast path differing from the documented layer math."""
    torch.manual_seed(2)
    model = nn.Transformer(E, HEADS, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=FF, dropout=0.0,
                           batch_first=batch_first, norm_first=norm_first)
    _perturb(model)
    model = model.to(device, dtype).train(train)
    n, s, t = 3, 7, 5
    shape = (lambda L: (n, L, E)) if batch_first else (lambda L: (L, n, E))
    src = torch.randn(*shape(s), dtype=torch.float64).to(device, dtype)
    tgt = torch.randn(*shape(t), dtype=torch.float64).to(device, dtype)
    src_kpm = torch.zeros(n, s, dtype=torch.bool)
    src_kpm[0, 5:] = True
    src_kpm[2, 3:] = True
    tgt_mask = model.generate_square_subsequent_mask(t, device=device, dtype=dtype)
    with torch.set_grad_enabled(train):
        got = model(src, tgt, tgt_mask=tgt_mask, src_key_padding_mask=src_kpm.to(device),
                    memory_key_padding_mask=src_kpm.to(device))
    x = _seq_first(src, batch_first)
    for lyr in model.encoder.layers:
        x = ref_encoder_layer(lyr, x, "relu", norm_first, kpm=src_kpm.numpy())
    mem = _ln(x, model.encoder.norm)
    y = _seq_first(tgt, batch_first)
    for lyr in model.decoder.layers:
        y = ref_decoder_layer(lyr, y, mem, "relu", norm_first, tgt_mask=_causal(t), mem_kpm=src_kpm.numpy())
    ref = _ln(y, model.decoder.norm)
    ref = ref.transpose(1, 0, 2) if batch_first else ref
    assert_close("nn.Transformer", got, ref, op="nn", args=f"train={train}, batch_first={batch_first}, norm_first={norm_first}",
                 check_dtype=dtype)
