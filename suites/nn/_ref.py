"""§ 4 nn: independent float64 NumPy references for layers (never calls torch.nn or torch.nn.functional).

Every function takes and returns float64 ``numpy.ndarray``; :func:`np64` converts a tensor or
parameter. The formulas follow the PyTorch documentation of each layer.
"""
from __future__ import annotations

import itertools
import math

import numpy as np


def np64(t) -> np.ndarray:
    """A float64 NumPy copy of a tensor/parameter (or None)."""
    if t is None:
        return None
    if hasattr(t, "detach"):
        return t.detach().cpu().double().numpy().copy()
    return np.asarray(t, dtype=np.float64)


def tup(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


# ---------------------------------------------------------------- convolution
_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def conv_nd(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """N-d cross-correlation of x (N, C, *S) with w (O, C/groups, *K), batched input only.

    ``padding`` is an int, a tuple (symmetric per dim), 'valid' or 'same'. Computed as a sum over
    kernel offsets of strided slices (an im2col without the matrix), so it is independent of how
    torch lowers convolution.
    """
    nd = x.ndim - 2
    k = w.shape[2:]
    stride, dilation = tup(stride, nd), tup(dilation, nd)
    if padding == "valid":
        pads = [(0, 0)] * nd
    elif padding == "same":
        pads = []
        for d in range(nd):
            total = dilation[d] * (k[d] - 1)
            pads.append((total // 2, total - total // 2))
    else:
        p = tup(padding, nd)
        pads = [(pi, pi) for pi in p]
    xp = np.pad(x, [(0, 0), (0, 0)] + pads, mode=_PAD_MODE[padding_mode])
    n, c = x.shape[:2]
    o = w.shape[0]
    out_sp = [(xp.shape[2 + d] - dilation[d] * (k[d] - 1) - 1) // stride[d] + 1 for d in range(nd)]
    out = np.zeros((n, o, *out_sp))
    cg, og = c // groups, o // groups
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        ws = w[g * og:(g + 1) * og]
        for off in itertools.product(*[range(kk) for kk in k]):
            sl = tuple(slice(off[d] * dilation[d], off[d] * dilation[d] + stride[d] * (out_sp[d] - 1) + 1, stride[d])
                       for d in range(nd))
            patch = xs[(slice(None), slice(None)) + sl]  # (N, cg, *out)
            wk = ws[(slice(None), slice(None)) + off]  # (og, cg)
            out[:, g * og:(g + 1) * og] += np.einsum("nc...,oc->no...", patch, wk)
    if b is not None:
        out += b.reshape((1, o) + (1,) * nd)
    return out


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """ConvTranspose2d by scattering: every input pixel adds x * w into the full output, which is
    then cropped by ``padding`` (and extended by ``output_padding`` on the bottom/right).
    w has shape (C_in, C_out/groups, kH, kW)."""
    s, p, op, d = tup(stride, 2), tup(padding, 2), tup(output_padding, 2), tup(dilation, 2)
    n, cin, h, wd = x.shape
    kh, kw = w.shape[2:]
    cog = w.shape[1]
    cout = cog * groups
    cig = cin // groups
    full_h = (h - 1) * s[0] + d[0] * (kh - 1) + 1 + op[0]
    full_w = (wd - 1) * s[1] + d[1] * (kw - 1) + 1 + op[1]
    full = np.zeros((n, cout, full_h, full_w))
    for ci in range(cin):
        g = ci // cig
        for i in range(h):
            for j in range(wd):
                for a in range(kh):
                    for bb in range(kw):
                        full[:, g * cog:(g + 1) * cog, i * s[0] + a * d[0], j * s[1] + bb * d[1]] += (
                            x[:, ci, i, j][:, None] * w[ci, :, a, bb][None, :])
    oh = (h - 1) * s[0] - 2 * p[0] + d[0] * (kh - 1) + op[0] + 1
    ow = (wd - 1) * s[1] - 2 * p[1] + d[1] * (kw - 1) + op[1] + 1
    out = full[:, :, p[0]:p[0] + oh, p[1]:p[1] + ow]
    if b is not None:
        out = out + b.reshape(1, -1, 1, 1)
    return out


# ---------------------------------------------------------------- pooling
def _pool_out(size, k, s, p, d, ceil):
    num = size + 2 * p - d * (k - 1) - 1
    out = (-(-num // s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= size + p:  # last window must start inside the input or left padding
        out -= 1
    return out


def max_pool2d(x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Returns (values, flat indices into H*W of the unpadded input)."""
    k = tup(kernel, 2)
    s = tup(stride if stride is not None else kernel, 2)
    p, d = tup(padding, 2), tup(dilation, 2)
    n, c, h, w = x.shape
    oh = _pool_out(h, k[0], s[0], p[0], d[0], ceil_mode)
    ow = _pool_out(w, k[1], s[1], p[1], d[1], ceil_mode)
    out = np.full((n, c, oh, ow), -np.inf)
    idx = np.zeros((n, c, oh, ow), dtype=np.int64)
    for i in range(oh):
        for j in range(ow):
            for a in range(k[0]):
                for b in range(k[1]):
                    r = i * s[0] - p[0] + a * d[0]
                    q = j * s[1] - p[1] + b * d[1]
                    if 0 <= r < h and 0 <= q < w:
                        v = x[:, :, r, q]
                        better = v > out[:, :, i, j]  # strict: the first maximum wins
                        out[:, :, i, j] = np.where(better, v, out[:, :, i, j])
                        idx[:, :, i, j] = np.where(better, r * w + q, idx[:, :, i, j])
    return out, idx


def avg_pool2d(x, kernel, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    k = tup(kernel, 2)
    s = tup(stride if stride is not None else kernel, 2)
    p = tup(padding, 2)
    n, c, h, w = x.shape
    oh = _pool_out(h, k[0], s[0], p[0], 1, ceil_mode)
    ow = _pool_out(w, k[1], s[1], p[1], 1, ceil_mode)
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, q0 = i * s[0] - p[0], j * s[1] - p[1]
            r1, q1 = min(r0 + k[0], h + p[0]), min(q0 + k[1], w + p[1])  # window clipped to padded input
            pool_size = (r1 - r0) * (q1 - q0)
            rr0, qq0, rr1, qq1 = max(r0, 0), max(q0, 0), min(r1, h), min(q1, w)
            tot = x[:, :, rr0:rr1, qq0:qq1].sum(axis=(2, 3))
            if divisor_override:
                div = divisor_override
            elif count_include_pad:
                div = pool_size
            else:
                div = (rr1 - rr0) * (qq1 - qq0)
            out[:, :, i, j] = tot / div
    return out


def adaptive_bins(insize, outsize):
    """Bin i covers [floor(i*in/out), ceil((i+1)*in/out))."""
    return [(math.floor(i * insize / outsize), math.ceil((i + 1) * insize / outsize)) for i in range(outsize)]


def adaptive_pool2d(x, out_hw, kind):
    n, c, h, w = x.shape
    oh, ow = out_hw
    oh = h if oh is None else oh
    ow = w if ow is None else ow
    out = np.zeros((n, c, oh, ow))
    for i, (r0, r1) in enumerate(adaptive_bins(h, oh)):
        for j, (q0, q1) in enumerate(adaptive_bins(w, ow)):
            win = x[:, :, r0:r1, q0:q1]
            out[:, :, i, j] = win.mean(axis=(2, 3)) if kind == "avg" else win.max(axis=(2, 3))
    return out


# ---------------------------------------------------------------- activations
_erf = np.vectorize(math.erf)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def gelu(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


# ---------------------------------------------------------------- recurrent
def lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh, w_hr=None):
    """Gate order i, f, g, o (documented). x (B, I), h (B, H or proj), c (B, H)."""
    gates = x @ w_ih.T + h @ w_hh.T
    if b_ih is not None:
        gates = gates + b_ih + b_hh
    hs = c.shape[1]
    i, f, g, o = (gates[:, k * hs:(k + 1) * hs] for k in range(4))
    i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
    c2 = f * c + i * g
    h2 = o * np.tanh(c2)
    if w_hr is not None:
        h2 = h2 @ w_hr.T
    return h2, c2


def gru_cell(x, h, w_ih, w_hh, b_ih, b_hh):
    """Gate order r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h' = (1-z)*n + z*h."""
    hs = h.shape[1]
    gi = x @ w_ih.T + (b_ih if b_ih is not None else 0)
    gh = h @ w_hh.T + (b_hh if b_hh is not None else 0)
    r = sigmoid(gi[:, :hs] + gh[:, :hs])
    z = sigmoid(gi[:, hs:2 * hs] + gh[:, hs:2 * hs])
    n = np.tanh(gi[:, 2 * hs:] + r * gh[:, 2 * hs:])
    return (1 - z) * n + z * h


def rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh"):
    a = x @ w_ih.T + h @ w_hh.T
    if b_ih is not None:
        a = a + b_ih + b_hh
    return np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)


def run_recurrent(mod, x, hx=None, kind="lstm", between_layers=None):
    """Unrolled reference for nn.LSTM / nn.GRU / nn.RNN (kind 'lstm', 'gru', 'rnn') with seq-first x (T, B, I) in float64.

    Returns (output (T, B, D*H_out), h_n, c_n or None) with the documented layouts: output
    concatenates forward then backward direction; h_n is (num_layers*D, B, H_out) ordered
    layer0-fwd, layer0-bwd, layer1-fwd, ...
    """
    nl, bidir = mod.num_layers, mod.bidirectional
    dirs = 2 if bidir else 1
    hsz = mod.hidden_size
    proj = getattr(mod, "proj_size", 0) or 0
    hout = proj if proj > 0 else hsz
    t_len, bsz = x.shape[:2]
    if hx is None:
        h0 = np.zeros((nl * dirs, bsz, hout))
        c0 = np.zeros((nl * dirs, bsz, hsz))
    elif kind == "lstm":
        h0, c0 = hx
    else:
        h0, c0 = hx, None
    layer_in = x
    hn, cn = [], []
    nonlin = getattr(mod, "nonlinearity", "tanh")
    for layer in range(nl):
        outs = []
        for dr in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if dr == 1 else "")
            w_ih = np64(getattr(mod, "weight_ih" + sfx))
            w_hh = np64(getattr(mod, "weight_hh" + sfx))
            b_ih = np64(getattr(mod, "bias_ih" + sfx)) if mod.bias else None
            b_hh = np64(getattr(mod, "bias_hh" + sfx)) if mod.bias else None
            w_hr = np64(getattr(mod, "weight_hr" + sfx)) if proj > 0 else None
            h = h0[layer * dirs + dr]
            c = c0[layer * dirs + dr] if kind == "lstm" else None
            steps = range(t_len) if dr == 0 else range(t_len - 1, -1, -1)
            out = np.zeros((t_len, bsz, hout))
            for t in steps:
                if kind == "lstm":
                    h, c = lstm_cell(layer_in[t], h, c, w_ih, w_hh, b_ih, b_hh, w_hr)
                elif kind == "gru":
                    h = gru_cell(layer_in[t], h, w_ih, w_hh, b_ih, b_hh)
                else:
                    h = rnn_cell(layer_in[t], h, w_ih, w_hh, b_ih, b_hh, nonlin)
                out[t] = h
            outs.append(out)
            hn.append(h)
            cn.append(c)
        layer_in = np.concatenate(outs, axis=2)
        if between_layers is not None and layer < nl - 1:
            layer_in = between_layers(layer_in)
    return layer_in, np.stack(hn), (np.stack(cn) if kind == "lstm" else None)


# ---------------------------------------------------------------- attention
def sdpa(q, k, v, mask=None, is_causal=False, scale=None):
    """softmax(q k^T * scale + mask) v; bool mask True = attend; causal = lower triangle."""
    l, s = q.shape[-2], k.shape[-2]
    sc = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    logits = q @ np.swapaxes(k, -1, -2) * sc
    if is_causal:
        logits = np.where(np.tril(np.ones((l, s), dtype=bool)), logits, -np.inf)
    if mask is not None:
        if mask.dtype == bool:
            logits = np.where(mask, logits, -np.inf)
        else:
            logits = logits + mask
    w = softmax(logits, -1)
    return w @ v, w


def layer_norm(x, shape_len, weight=None, bias=None, eps=1e-5):
    axes = tuple(range(x.ndim - shape_len, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def mha(query, key, value, num_heads, w_q, w_k, w_v, b_q, b_k, b_v, w_o, b_o, key_padding_mask=None,
        attn_mask=None, bias_k=None, bias_v=None, add_zero_attn=False):
    """nn.MultiheadAttention on seq-first inputs (L, N, E), (S, N, kdim), (S, N, vdim).

    q/k/v projections, optional bias_k/bias_v rows appended to the key/value sequence, optional zero
    row appended per head, scale 1/sqrt(head_dim), masks (bool True = NOT allowed, float = added),
    softmax, head concat, out_proj. Returns (output (L, N, E), weights per head (N, h, L, S')).
    """
    l, n, e = query.shape
    hd = e // num_heads
    q = query @ w_q.T + (0 if b_q is None else b_q)
    k = key @ w_k.T + (0 if b_k is None else b_k)
    v = value @ w_v.T + (0 if b_v is None else b_v)
    if bias_k is not None:
        k = np.concatenate([k, np.broadcast_to(bias_k.reshape(1, 1, e), (1, n, e))], axis=0)
        v = np.concatenate([v, np.broadcast_to(bias_v.reshape(1, 1, e), (1, n, e))], axis=0)
    s = k.shape[0]
    qh = q.reshape(l, n, num_heads, hd).transpose(1, 2, 0, 3)  # (N, h, L, hd)
    kh = k.reshape(s, n, num_heads, hd).transpose(1, 2, 0, 3)
    vh = v.reshape(s, n, num_heads, hd).transpose(1, 2, 0, 3)
    extra = s - key.shape[0]
    if add_zero_attn:
        kh = np.concatenate([kh, np.zeros((n, num_heads, 1, hd))], axis=2)
        vh = np.concatenate([vh, np.zeros((n, num_heads, 1, hd))], axis=2)
        extra += 1
    logits = qh @ kh.transpose(0, 1, 3, 2) / math.sqrt(hd)  # (N, h, L, S')
    add = np.zeros(logits.shape)
    if attn_mask is not None:
        am = attn_mask
        if am.ndim == 3:
            am = am.reshape(n, num_heads, l, -1)
        am = np.pad(am, [(0, 0)] * (am.ndim - 1) + [(0, extra)])  # padded columns: allowed / +0
        add = add + (np.where(am, -np.inf, 0.0) if am.dtype == bool else am)
    if key_padding_mask is not None:
        kpm = np.pad(key_padding_mask, [(0, 0), (0, extra)])
        add = add + (np.where(kpm, -np.inf, 0.0) if kpm.dtype == bool else kpm)[:, None, None, :]
    w = softmax(logits + add, -1)
    o = (w @ vh).transpose(2, 0, 1, 3).reshape(l, n, e)
    return o @ w_o.T + (0 if b_o is None else b_o), w
