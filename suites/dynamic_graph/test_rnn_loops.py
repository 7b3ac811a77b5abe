"""§ 3 Dynamic graph: variable-length RNN loops written as Python loops over ``nn.RNNCell``.

The unrolled graph's length follows each sequence's length; outputs and all gradients (weights, biases,
inputs, initial state) are checked against a manual NumPy float64 unrolled forward and back-propagation
through time. Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harness.checks import assert_close, assert_equal, assert_true

IN, HID = 3, 4


def _params(cell):
    return {k: v.detach().cpu().double().numpy() for k, v in cell.named_parameters()}


def _np_rnn(p, xs, h0, v):
    """Forward h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), loss = sum_t v . h_t, and BPTT."""
    hs = [h0]
    for x in xs:
        hs.append(np.tanh(p["weight_ih"] @ x + p["bias_ih"] + p["weight_hh"] @ hs[-1] + p["bias_hh"]))
    loss = sum((v * h).sum() for h in hs[1:])
    g = {k: np.zeros_like(val) for k, val in p.items()}
    gx = [np.zeros(IN) for _ in xs]
    dh = np.zeros(HID)
    for t in range(len(xs), 0, -1):
        dh = dh + v
        da = dh * (1 - hs[t] ** 2)
        g["weight_ih"] += np.outer(da, xs[t - 1])
        g["weight_hh"] += np.outer(da, hs[t - 1])
        g["bias_ih"] += da
        g["bias_hh"] += da
        gx[t - 1] = p["weight_ih"].T @ da
        dh = p["weight_hh"].T @ da
    return hs, loss, g, gx, dh


def _run(cell, xs_t, h0_t, v_t):
    h = h0_t
    loss = h0_t.new_zeros(())
    for x in xs_t:                      # the graph grows one cell per element: define-by-run
        h = cell(x.unsqueeze(0), h.unsqueeze(0)).squeeze(0)
        loss = loss + (h * v_t).sum()
    return h, loss


@pytest.mark.smoke
@pytest.mark.parametrize("length", [1, 3, 7])
@pytest.mark.dtypes(torch.float32, torch.float64)
def test_rnncell_loop_variable_length(device, dtype, np_rng, length):
    """An RNNCell loop over a sequence of `length` steps: final hidden state, loss = sum_t v.h_t, and the
    gradients of all four parameters, every input step and h0 equal a NumPy unrolled BPTT; catches wrong
    gradient accumulation over time steps (shared weights), a truncated or cached graph."""
    torch.manual_seed(length)
    cell = nn.RNNCell(IN, HID).to(device, dtype)
    p = _params(cell)
    xs = [np_rng.standard_normal(IN) for _ in range(length)]
    h0, v = np_rng.standard_normal(HID) * 0.5, np_rng.standard_normal(HID)
    xs_t = [torch.tensor(x, dtype=dtype, device=device, requires_grad=True) for x in xs]
    h0_t = torch.tensor(h0, dtype=dtype, device=device, requires_grad=True)
    h, loss = _run(cell, xs_t, h0_t, torch.tensor(v, dtype=dtype, device=device))
    hs, loss_ref, g, gx, gh0 = _np_rnn(p, xs, h0, v)
    assert_close("nn.RNNCell loop", h, hs[-1], op="nn", args=f"len={length} h_T")
    assert_close("nn.RNNCell loop", loss, loss_ref, op="nn", args=f"len={length} loss")
    loss.backward()
    for name, prm in cell.named_parameters():
        assert_close("nn.RNNCell loop", prm.grad, g[name], op="gradient", args=f"len={length} d/d{name}")
    for t, xt in enumerate(xs_t):
        assert_close("nn.RNNCell loop", xt.grad, gx[t], op="gradient", args=f"len={length} d/dx_{t}")
    assert_close("nn.RNNCell loop", h0_t.grad, gh0, op="gradient", args=f"len={length} d/dh0")


def test_rnncell_graph_length_follows_sequence(device):
    """Each call unrolls exactly as many cell nodes as the sequence has steps (the graph is rebuilt per
    input), and a zero-length sequence builds no graph through the weights (their grads stay None)."""
    cell = nn.RNNCell(IN, HID).to(device, torch.float64)
    v = torch.ones(HID, dtype=torch.float64, device=device)
    h0 = torch.zeros(HID, dtype=torch.float64, device=device, requires_grad=True)
    for length in (2, 5):
        xs = [torch.randn(IN, dtype=torch.float64, device=device) for _ in range(length)]
        h, _ = _run(cell, xs, h0, v)
        n_tanh, seen, stack = 0, set(), [h.grad_fn]
        while stack:
            n = stack.pop()
            if n is None or id(n) in seen:
                continue
            seen.add(id(n))
            n_tanh += "Tanh" in type(n).__name__ or "RnnTanhCell" in type(n).__name__
            stack.extend(m for m, _ in n.next_functions)
        assert_equal("nn.RNNCell loop", n_tanh, length, args="one tanh node per time step")
    h, loss = _run(cell, [], h0, v)
    assert_true("nn.RNNCell loop", h is h0, "empty sequence must return h0 itself")
    loss = loss + h.sum()
    loss.backward()
    assert_true("nn.RNNCell loop", all(p.grad is None for p in cell.parameters()),
                "weights got a gradient from a zero-length sequence")
    assert_close("nn.RNNCell loop", h0.grad, np.ones(HID), op="gradient", args="len=0 d/dh0")


def test_masked_batch_equals_per_sequence(device, np_rng):
    """A padded batch with lengths [1, 4, 2] processed by a loop that freezes finished sequences
    (torch.where on a length mask) gives the same final states and weight gradients as running each
    sequence alone (the NumPy BPTT sum over sequences)."""
    lengths = [1, 4, 2]
    T = max(lengths)
    torch.manual_seed(1)
    cell = nn.RNNCell(IN, HID).to(device, torch.float64)
    p = _params(cell)
    X = np_rng.standard_normal((len(lengths), T, IN))
    v = np_rng.standard_normal(HID)
    Xt = torch.tensor(X, dtype=torch.float64, device=device)
    lens = torch.tensor(lengths, device=device)
    h = torch.zeros(len(lengths), HID, dtype=torch.float64, device=device)
    for t in range(T):
        new = cell(Xt[:, t], h)
        h = torch.where((lens > t).unsqueeze(1), new, h)
    loss = (h * torch.tensor(v, dtype=torch.float64, device=device)).sum()
    loss.backward()
    g_ref = {k: np.zeros_like(val) for k, val in p.items()}
    finals = []
    for b, L in enumerate(lengths):
        xs = list(X[b, :L])
        hs, _, _, _, _ = _np_rnn(p, xs, np.zeros(HID), np.zeros(HID))
        finals.append(hs[-1])
        # gradient of v . h_L only: BPTT with the loss applied at the last step
        dh = v.copy()
        for t in range(L, 0, -1):
            da = dh * (1 - hs[t] ** 2)
            g_ref["weight_ih"] += np.outer(da, xs[t - 1])
            g_ref["weight_hh"] += np.outer(da, hs[t - 1])
            g_ref["bias_ih"] += da
            g_ref["bias_hh"] += da
            dh = p["weight_hh"].T @ da
    assert_close("nn.RNNCell masked loop", h, np.stack(finals), op="nn", args="final states")
    for name, prm in cell.named_parameters():
        assert_close("nn.RNNCell masked loop", prm.grad, g_ref[name], op="gradient", args=f"d/d{name}")
