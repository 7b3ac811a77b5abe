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


# ---------------------------------------------------------------- N-d references for the production-kernel grids
# (suites/nn/test_kernels_*.py). Plain NumPy in float64, vectorised over kernel/window offsets so that
# realistic shapes stay affordable; none of them calls torch, so none shares a kernel with what it checks.
def conv_transpose_nd(x, w, b=None, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """ConvTranspose{1,2,3}d of x (N, C_in, *S) with w (C_in, C_out/groups, *K) by scattering: for every
    kernel offset, input position i adds x[i] * w[:, :, offset] at i*stride + offset*dilation of the
    uncropped output (size (S-1)*stride + dilation*(K-1) + 1 + output_padding), which is then cropped by
    ``padding`` at both ends. This is the documented adjoint of convolution computed directly (a
    tensordot per offset), independent of torch's col2im / oneDNN deconvolution lowering."""
    nd = x.ndim - 2
    k = w.shape[2:]
    s, p, op, d = (tup(v, nd) for v in (stride, padding, output_padding, dilation))
    n, cin = x.shape[:2]
    sp = x.shape[2:]
    cig, cog = cin // groups, w.shape[1]
    full = [(sp[i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 + op[i] for i in range(nd)]
    out = np.zeros((n, cog * groups, *full))
    for g in range(groups):
        xs = x[:, g * cig:(g + 1) * cig]
        for off in itertools.product(*[range(kk) for kk in k]):
            wk = w[(slice(g * cig, (g + 1) * cig), slice(None)) + off]  # (cig, cog)
            contrib = np.moveaxis(np.tensordot(xs, wk, axes=([1], [0])), -1, 1)  # (N, cog, *S)
            sl = tuple(slice(off[i] * d[i], off[i] * d[i] + s[i] * (sp[i] - 1) + 1, s[i]) for i in range(nd))
            out[(slice(None), slice(g * cog, (g + 1) * cog)) + sl] += contrib
    out = out[(slice(None), slice(None)) + tuple(slice(p[i], full[i] - p[i]) for i in range(nd))]
    if b is not None:
        out = out + b.reshape((1, -1) + (1,) * nd)
    return out


def pool_nd(x, kind, kernel, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=True,
            divisor_override=None):
    """Max or average pooling over the trailing x.ndim - 2 dims, vectorised over window offsets.

    ``kind='max'`` returns (values, indices flat into the unpadded spatial volume): padding acts as
    -inf and the first maximum in window order wins (strict >). ``kind='avg'`` returns the sum of the
    window's in-bounds elements divided by ``divisor_override``, else by the window size clipped to the
    padded input (``count_include_pad``), else by the number of in-bounds elements. Output sizes follow
    the documented formula; with ``ceil_mode`` the last window must start inside the input or the left
    padding (:func:`_pool_out`)."""
    nd = x.ndim - 2
    k = tup(kernel, nd)
    s = tup(stride if stride not in (None, ()) else kernel, nd)
    p, d = tup(padding, nd), tup(dilation, nd)
    sp = x.shape[2:]
    outs = [_pool_out(sp[i], k[i], s[i], p[i], d[i], ceil_mode) for i in range(nd)]
    right = [max(0, (outs[i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 - (sp[i] + p[i])) for i in range(nd)]
    pads = [(0, 0), (0, 0)] + [(p[i], right[i]) for i in range(nd)]
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, pads, constant_values=fill)
    lead = x.shape[:2]
    if kind == "max":
        val = np.full(lead + tuple(outs), -np.inf)
        idx = np.zeros(lead + tuple(outs), dtype=np.int64)
    else:
        val = np.zeros(lead + tuple(outs))
        inb = np.zeros(tuple(outs))  # in-bounds element count per window
        clip = np.zeros(tuple(outs))  # window size clipped to the padded input
    grids = np.meshgrid(*[np.arange(o) for o in outs], indexing="ij")
    for off in itertools.product(*[range(kk) for kk in k]):
        sl = tuple(slice(off[i] * d[i], off[i] * d[i] + s[i] * (outs[i] - 1) + 1, s[i]) for i in range(nd))
        v = xp[(slice(None), slice(None)) + sl]
        pos = [grids[i] * s[i] - p[i] + off[i] * d[i] for i in range(nd)]  # unpadded coordinates
        inside = np.ones(tuple(outs), dtype=bool)
        for i in range(nd):
            inside &= (pos[i] >= 0) & (pos[i] < sp[i])
        if kind == "max":
            flat = np.zeros(tuple(outs), dtype=np.int64)
            for i in range(nd):
                flat = flat * sp[i] + np.clip(pos[i], 0, sp[i] - 1)
            better = (v > val) & inside
            val = np.where(better, v, val)
            idx = np.where(better, flat, idx)
        else:
            val = val + np.where(inside, v, 0.0)
            inb += inside
            in_padded = np.ones(tuple(outs), dtype=bool)
            for i in range(nd):
                in_padded &= pos[i] < sp[i] + p[i]
            clip += in_padded
    if kind == "max":
        return val, idx
    if divisor_override:
        return val / divisor_override
    return val / (clip if count_include_pad else inb)


def adaptive_pool_nd(x, out_size, kind):
    """AdaptiveAvg/MaxPool over the trailing dims: output bin i of a dim spans
    [floor(i*in/out), ceil((i+1)*in/out)) (:func:`adaptive_bins`). ``kind='avg'`` returns the means;
    ``kind='max'`` returns (values, indices flat into the spatial volume, first maximum in row-major
    window order)."""
    nd = x.ndim - 2
    sp = x.shape[2:]
    outs = tuple(sp[i] if o is None else o for i, o in enumerate(tup(out_size, nd)))
    val = np.zeros(x.shape[:2] + outs)
    idx = np.zeros(x.shape[:2] + outs, dtype=np.int64)
    bins = [adaptive_bins(sp[i], outs[i]) for i in range(nd)]
    for o in itertools.product(*[range(n) for n in outs]):
        lo = [bins[i][o[i]][0] for i in range(nd)]
        hi = [bins[i][o[i]][1] for i in range(nd)]
        win = x[(slice(None), slice(None)) + tuple(slice(lo[i], hi[i]) for i in range(nd))]
        flatwin = win.reshape(x.shape[:2] + (-1,))
        at = (slice(None), slice(None)) + o
        if kind == "avg":
            val[at] = flatwin.mean(axis=-1)
            continue
        j = np.argmax(flatwin, axis=-1)
        val[at] = np.take_along_axis(flatwin, j[..., None], axis=-1)[..., 0]
        local = np.unravel_index(j, [hi[i] - lo[i] for i in range(nd)])
        flat = np.zeros(j.shape, dtype=np.int64)
        for i in range(nd):
            flat = flat * sp[i] + lo[i] + local[i]
        idx[at] = flat
    return val if kind == "avg" else (val, idx)


def batch_norm(x, weight=None, bias=None, eps=1e-5, running_mean=None, running_var=None, training=True,
               momentum=0.1):
    """BatchNorm{1,2,3}d on (N, C, *S) per the documentation. Training: normalise with the per-channel
    mean and *biased* variance over (N, *S); running stats become (1 - momentum) * r + momentum * stat
    with the *unbiased* variance. Eval (training=False): normalise with the running stats.
    Returns (y, new_running_mean, new_running_var) (the running ones None when not given)."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    rm, rv = running_mean, running_var
    if training:
        mu = x.mean(axis=axes)
        var = x.var(axis=axes)
        cnt = x.size // x.shape[1]
        if rm is not None:
            rm = (1 - momentum) * rm + momentum * mu
            rv = (1 - momentum) * rv + momentum * var * cnt / (cnt - 1)
    else:
        mu, var = running_mean, running_var
    y = (x - mu.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y, rm, rv


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """GroupNorm on (N, C, *S): mean and biased variance over (C/num_groups, *S) per sample and group,
    then a per-channel affine. InstanceNorm without running stats is group_norm with num_groups = C."""
    n, c = x.shape[:2]
    xg = x.reshape(n, num_groups, -1)
    mu = xg.mean(axis=-1, keepdims=True)
    var = xg.var(axis=-1, keepdims=True)
    y = ((xg - mu) / np.sqrt(var + eps)).reshape(x.shape)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y
