"""§ 4 nn.Module and layers: LSTM, GRU, RNN (multi-layer, bidirectional, batch_first, proj_size,
PackedSequence) and RNNCell/LSTMCell/GRUCell against an unrolled float64 NumPy reference with the
documented gate equations.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pack_sequence, pad_packed_sequence, pad_sequence

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.nn._ref import gru_cell, lstm_cell, np64, rnn_cell, run_recurrent

KINDS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def _make(kind, device, dtype, **kw):
    m = KINDS[kind](device=device, dtype=dtype, **kw)
    with torch.no_grad():  # wider than the default init so gates saturate differently
        for p in m.parameters():
            p.uniform_(-0.6, 0.6)
    return m


def _check(kind, m, x, hx, batch_first, args):
    """Compare output, h_n (and c_n) of module m against the reference for input x."""
    out = m(x, hx) if hx is not None else m(x)
    y, h = out
    xs = np64(x).swapaxes(0, 1) if (batch_first and x.dim() == 3) else np64(x)
    unbatched = x.dim() == 2
    if unbatched:
        xs = xs[:, None]
    ref_hx = None
    if hx is not None:
        ref_hx = tuple(np64(t)[:, None] if unbatched else np64(t) for t in hx) if kind == "lstm" else (
            np64(hx)[:, None] if unbatched else np64(hx))
    ry, rh, rc = run_recurrent(m, xs, ref_hx, kind)
    if unbatched:
        ry, rh, rc = ry[:, 0], rh[:, 0], (None if rc is None else rc[:, 0])
    elif batch_first:
        ry = ry.swapaxes(0, 1)
    api = f"nn.{type(m).__name__}"
    if kind == "lstm":
        h, c = h
        assert_close(api, c, rc, op="nn", args=args + " c_n")
    assert_close(api, y, ry, op="nn", args=args + " output", check_dtype=x.dtype)
    assert_close(api, h, rh, op="nn", args=args + " h_n")


@pytest.mark.smoke
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_single_layer(device, dtype, kind):
    """One-layer LSTM (gates i,f,g,o; c' = f*c + i*g; h' = o*tanh(c')) and GRU (gates r,z,n with
    n = tanh(W_in x + b_in + r*(W_hn h + b_hn)); h' = (1-z)*n + z*h), zero initial state. Catches
    permuted gate order, r applied outside (W_hn h + b_hn), z and 1-z swapped, a dropped bias."""
    m = _make(kind, device, dtype, input_size=3, hidden_size=4)
    x = torch.randn(5, 2, 3, device=device, dtype=dtype)
    _check(kind, m, x, None, False, "T=5, B=2")


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("num_layers,bidirectional", [(2, False), (1, True), (2, True)])
def test_layers_bidirectional(device, dtype, kind, num_layers, bidirectional):
    """num_layers=2 feeds layer 0's output into layer 1; bidirectional runs a reversed pass whose outputs
    are concatenated after the forward ones; h_n is (num_layers*2, B, H) ordered l0-fwd, l0-bwd, l1-fwd...
    Catches a reversed direction that isn't re-reversed, wrong h_n order, layer 1 fed the raw input."""
    m = _make(kind, device, dtype, input_size=3, hidden_size=4, num_layers=num_layers, bidirectional=bidirectional)
    d = 2 if bidirectional else 1
    assert_equal(f"nn.{type(m).__name__}", tuple(m.weight_ih_l1.shape if num_layers == 2 else m.weight_ih_l0.shape),
                 ({"lstm": 4, "gru": 3, "rnn": 1}[kind] * 4, 4 * d if num_layers == 2 else 3), args="weight_ih shape")
    x = torch.randn(4, 2, 3, device=device, dtype=dtype)
    y, _ = m(x)
    assert_equal(f"nn.{type(m).__name__}", tuple(y.shape), (4, 2, 4 * d), args="output shape")
    _check(kind, m, x, None, False, f"num_layers={num_layers}, bidirectional={bidirectional}")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_batch_first_and_initial_state(device, kind):
    """batch_first=True takes/returns (B, T, *) but h_n/c_n stay (L*D, B, H); given (h0, c0) are used.
    Catches batch_first also permuting h_n, or ignoring hx."""
    m = _make(kind, device, torch.float64, input_size=3, hidden_size=4, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(2, 5, 3, device=device, dtype=torch.float64)
    h0 = torch.randn(4, 2, 4, device=device, dtype=torch.float64)
    hx = (h0, torch.randn(4, 2, 4, device=device, dtype=torch.float64)) if kind == "lstm" else h0
    _check(kind, m, x, hx, True, "batch_first=True, hx given")
    y, _ = m(x, hx)
    assert_equal(f"nn.{type(m).__name__}", tuple(y.shape), (2, 5, 8), args="batch_first output shape")


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_unbatched(device, kind):
    """Unbatched (T, I) input with (L*D, H) state."""
    m = _make(kind, device, torch.float64, input_size=3, hidden_size=2, num_layers=2)
    x = torch.randn(4, 3, device=device, dtype=torch.float64)
    h0 = torch.randn(2, 2, device=device, dtype=torch.float64)
    hx = (h0, torch.randn(2, 2, device=device, dtype=torch.float64)) if kind == "lstm" else h0
    _check(kind, m, x, hx, False, "unbatched")


def test_rnn_relu_and_no_bias(device):
    """RNN(nonlinearity='relu') uses ReLU; bias=False registers no bias_* parameters."""
    m = _make("rnn", device, torch.float64, input_size=3, hidden_size=4, nonlinearity="relu", bias=False)
    assert_true("nn.RNN", not any("bias" in n for n, _ in m.named_parameters()), "bias=False must register no bias")
    _check("rnn", m, torch.randn(5, 2, 3, device=device, dtype=torch.float64), None, False, "relu, bias=False")
    g = _make("gru", device, torch.float64, input_size=3, hidden_size=4, bias=False)
    _check("gru", g, torch.randn(5, 2, 3, device=device, dtype=torch.float64), None, False, "GRU bias=False")


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_proj_size(device, bidirectional):
    """LSTM(proj_size=P): h_t = W_hr (o * tanh(c_t)), h has size P (output (T,B,D*P), h_n (L*D,B,P),
    c_n keeps H), weight_hh is (4H, P). Catches a projection applied to c or not fed back."""
    m = _make("lstm", device, torch.float64, input_size=3, hidden_size=5, proj_size=2, num_layers=2, bidirectional=bidirectional)
    assert_equal("nn.LSTM", tuple(m.weight_hr_l0.shape), (2, 5), args="weight_hr shape")
    assert_equal("nn.LSTM", tuple(m.weight_hh_l0.shape), (20, 2), args="weight_hh shape with proj_size")
    x = torch.randn(4, 2, 3, device=device, dtype=torch.float64)
    y, (h, c) = m(x)
    d = 2 if bidirectional else 1
    assert_equal("nn.LSTM", (tuple(y.shape), tuple(h.shape), tuple(c.shape)), ((4, 2, 2 * d), (2 * d, 2, 2), (2 * d, 2, 5)),
                 args="proj_size shapes")
    _check("lstm", m, x, None, False, f"proj_size=2, bidirectional={bidirectional}")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_dropout_between_layers(device, kind):
    """dropout applies to the outputs of every layer except the last, in train mode only: eval equals the
    reference; train with dropout=1 zeroes layer 1's input. Catches dropout in eval or on the last layer."""
    m = _make(kind, device, torch.float64, input_size=3, hidden_size=4, num_layers=2, dropout=1.0)
    x = torch.randn(4, 2, 3, device=device, dtype=torch.float64)
    m.eval()
    _check(kind, m, x, None, False, "dropout=1.0, eval")
    m.train()
    with torch.backends.cudnn.flags(enabled=False):  # cuDNN's own dropout descriptor is not part of this contract
        y, _ = m(x)
    ry, _, _ = run_recurrent(m, np64(x), None, kind, between_layers=lambda a: a * 0)
    assert_close(f"nn.{type(m).__name__}", y, ry, op="nn", args="dropout=1.0, train: layer-1 input zeroed")
    one = _make(kind, device, torch.float64, input_size=3, hidden_size=4, num_layers=1)
    one.dropout = 1.0  # no layer after the last one: must have no effect
    _check(kind, one.train(), x, None, False, "dropout on single layer, train")


@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_packed_sequence(device, kind, enforce_sorted):
    """A PackedSequence from pack_padded_sequence gives, per sequence, the same outputs and h_n as running
    that sequence alone (the backward direction starts at the sequence's last valid step); padded output
    positions are 0; enforce_sorted=False restores the caller's order. Catches states taken from padding,
    reversal over the padded length, or a lost permutation."""
    m = _make(kind, device, torch.float64, input_size=3, hidden_size=4, num_layers=2, bidirectional=True)
    lengths = [5, 3, 2] if enforce_sorted else [2, 5, 3]
    x = torch.randn(5, 3, 3, device=device, dtype=torch.float64)
    packed = pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=enforce_sorted)
    out, h = m(packed)
    y, ylen = pad_packed_sequence(out)
    assert_equal("nn.utils.rnn.pad_packed_sequence", ylen, np.array(lengths), args="lengths")
    hn = h[0] if kind == "lstm" else h
    api = f"nn.{type(m).__name__}"
    for i, n in enumerate(lengths):
        ry, rh, rc = run_recurrent(m, np64(x)[:n, i:i + 1], None, kind)
        assert_close(api, y[:n, i:i + 1], ry, op="nn", args=f"packed seq {i} (len {n}), enforce_sorted={enforce_sorted}")
        assert_close(api, hn[:, i:i + 1], rh, op="nn", args=f"packed seq {i} h_n")
        if kind == "lstm":
            assert_close(api, h[1][:, i:i + 1], rc, op="nn", args=f"packed seq {i} c_n")
        assert_close(api, y[n:, i], np.zeros((5 - n, 8)), op="exact", args=f"padding of seq {i}")


def test_pack_unsorted_enforce_raises():
    """pack_padded_sequence(enforce_sorted=True) with unsorted lengths is a RuntimeError."""
    assert_raises("nn.utils.rnn.pack_padded_sequence", RuntimeError, pack_padded_sequence, torch.randn(4, 2, 1),
                  torch.tensor([2, 4]), args="lengths [2, 4], enforce_sorted=True")


def test_pack_pad_utilities(device):
    """pack_padded_sequence(batch_first=True) / pad_packed_sequence(batch_first, padding_value, total_length),
    pack_sequence(enforce_sorted=False) and pad_sequence round-trip the data; batch_sizes count the
    sequences still running at each step. Catches a lost batch_first, ignored padding_value/total_length."""
    seqs = [torch.randn(n, 2, device=device, dtype=torch.float64) for n in (2, 4, 3)]
    padded = pad_sequence(seqs, batch_first=True, padding_value=-7.0)
    ref = np.full((3, 4, 2), -7.0)
    for i, s in enumerate(seqs):
        ref[i, :len(s)] = np64(s)
    assert_equal("nn.utils.rnn.pad_sequence", padded, ref, args="batch_first=True, padding_value=-7")
    assert_equal("nn.utils.rnn.pad_sequence", pad_sequence(seqs), ref.swapaxes(0, 1) * (ref.swapaxes(0, 1) != -7.0),
                 args="default seq-first, padding 0")
    packed = pack_padded_sequence(padded, torch.tensor([2, 4, 3]), batch_first=True, enforce_sorted=False)
    assert_equal("nn.utils.rnn.pack_padded_sequence", packed.batch_sizes, np.array([3, 3, 2, 1]), args="batch_sizes")
    out, lens = pad_packed_sequence(packed, batch_first=True, padding_value=5.0, total_length=6)
    want = np.full((3, 6, 2), 5.0)
    for i, s in enumerate(seqs):
        want[i, :len(s)] = np64(s)
    assert_equal("nn.utils.rnn.pad_packed_sequence", out, want, args="batch_first, padding_value=5, total_length=6")
    assert_equal("nn.utils.rnn.pad_packed_sequence", lens, np.array([2, 4, 3]), args="lengths in input order")
    ps = pack_sequence(seqs, enforce_sorted=False)
    assert_equal("nn.utils.rnn.pack_sequence", ps.data, np64(packed.data), args="same packing as pack_padded_sequence")


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
def test_cells(device, dtype, kind):
    """RNNCell/LSTMCell/GRUCell: one step of the same equations; hx=None means zeros; unbatched input.
    Catches a cell whose gate order differs from its layer counterpart."""
    if kind == "lstm":
        m = nn.LSTMCell(3, 4, device=device, dtype=dtype)
    elif kind == "gru":
        m = nn.GRUCell(3, 4, device=device, dtype=dtype)
    else:
        m = nn.RNNCell(3, 4, nonlinearity=kind[4:], device=device, dtype=dtype)
    api = f"nn.{type(m).__name__}"
    w = [np64(p) for p in (m.weight_ih, m.weight_hh, m.bias_ih, m.bias_hh)]
    x = torch.randn(2, 3, device=device, dtype=dtype)
    h0 = torch.randn(2, 4, device=device, dtype=dtype)
    z = np.zeros((2, 4))
    if kind == "lstm":
        c0 = torch.randn(2, 4, device=device, dtype=dtype)
        h, c = m(x, (h0, c0))
        rh, rc = lstm_cell(np64(x), np64(h0), np64(c0), *w)
        assert_close(api, c, rc, op="nn", args="c'")
        h_none, _ = m(x)
        rz, _ = lstm_cell(np64(x), z, z, *w)
        hu, cu = m(x[0], (h0[0], c0[0]))
        assert_close(api, hu, rh[0], op="nn", args="unbatched")
    elif kind == "gru":
        h = m(x, h0)
        rh = gru_cell(np64(x), np64(h0), *w)
        h_none, rz = m(x), gru_cell(np64(x), z, *w)
        assert_close(api, m(x[1], h0[1]), rh[1], op="nn", args="unbatched")
    else:
        h = m(x, h0)
        rh = rnn_cell(np64(x), np64(h0), *w, kind[4:])
        h_none, rz = m(x), rnn_cell(np64(x), z, *w, kind[4:])
    assert_close(api, h, rh, op="nn", args="h'", check_dtype=dtype)
    assert_close(api, h_none, rz, op="nn", args="hx=None")


def test_recurrent_default_init_and_errors(device):
    """Every LSTM/GRU weight and bias is initialised U(-1/sqrt(H), 1/sqrt(H)); wrong input size is a
    RuntimeError; proj_size >= hidden_size is a ValueError; a wrong-shaped h0 is a RuntimeError."""
    m = nn.LSTM(10, 64, num_layers=2, device=device)
    bound = 1 / math.sqrt(64)
    allw = np.concatenate([np64(p).ravel() for p in m.parameters()])
    assert_true("nn.LSTM", np.abs(allw).max() <= bound, "default init outside U(+-1/sqrt(hidden))")
    assert_close("nn.LSTM", allw.std(), bound / math.sqrt(3), rtol=0.05, args="default init std")  # statistical
    assert_raises("nn.LSTM", RuntimeError, m, torch.randn(3, 2, 9, device=device), args="input_size 9 into 10")
    assert_raises("nn.LSTM", ValueError, nn.LSTM, 3, 4, proj_size=4, args="proj_size=hidden_size")
    g = nn.GRU(3, 4, device=device)
    assert_raises("nn.GRU", RuntimeError, g, torch.randn(2, 1, 3, device=device), torch.randn(1, 2, 4, device=device),
                  args="h0 batch 2 for input batch 1")


def test_recurrent_gradcheck(device):
    """LSTM and GRU backward through time (2 layers, bidirectional) by finite differences, tiny sizes."""
    for kind in ("lstm", "gru"):
        m = _make(kind, device, torch.float64, input_size=2, hidden_size=2, num_layers=2, bidirectional=True)
        x = torch.randn(2, 1, 2, device=device, dtype=torch.float64, requires_grad=True)
        assert_true(f"nn.{type(m).__name__}", torch.autograd.gradcheck(lambda x: m(x)[0], (x,)), "gradcheck failed")


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_recurrent_grid(device, kind, num_layers, bidirectional, batch_first, bias):
    """Exhaustive grid of recurrent constructor arguments against the unrolled reference."""
    m = _make(kind, device, torch.float64, input_size=3, hidden_size=5, num_layers=num_layers,
              bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    x = torch.randn(3, 6, 3, device=device, dtype=torch.float64)
    _check(kind, m, x, None, batch_first, f"L={num_layers}, bi={bidirectional}, bf={batch_first}, bias={bias}")
