"""§ 2 Autograd: activation checkpointing (torch.utils.checkpoint.checkpoint with use_reentrant=False and True,
checkpoint_sequential): outputs and the gradient of every input and parameter equal the un-checkpointed run
and a hand-derived float64 closed form; the function really is recomputed in backward; dropout inside the
checkpoint sees the same RNG stream in the recomputation (preserve_rng_state) and the global RNG state after
backward is as if no recomputation happened; the documented differences of the two variants
(torch.autograd.grad and keyword arguments only without reentrancy; parameters reached only through a
closure get gradients without reentrancy).

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint, checkpoint_sequential

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from harness.checks import to_numpy as _ref

REENTRANT = [pytest.param(False, id="nonreentrant"), pytest.param(True, id="reentrant")]


class _Counted:
    """f(x, w, b, c, scale) = (h * c + sin(h), sum(h^2, -1)) with h = tanh(x @ w + b) * scale; counts calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x, w, b, c, scale=1.0):
        self.calls += 1
        h = torch.tanh(x @ w + b) * scale
        return h * c + torch.sin(h), (h ** 2).sum(-1)


def _closed_form(X, W, B, C, s, R1, R2):
    """Values and gradients of L = sum(R1 * o1) + sum(R2 * o2) for _Counted, in float64 NumPy."""
    z = X @ W + B
    t = np.tanh(z)
    h = t * s
    o1, o2 = h * C + np.sin(h), (h ** 2).sum(-1)
    dh = R1 * (C + np.cos(h)) + R2[..., None] * 2 * h
    dz = dh * s * (1 - t ** 2)
    return o1, o2, dz @ W.T, X.T @ dz, dz.sum(0)


def _inputs(np_rng, device, dtype):
    x = torch.tensor(np_rng.standard_normal((6, 5)), dtype=dtype, device=device, requires_grad=True)
    w = torch.tensor(np_rng.standard_normal((5, 4)) * 0.5, dtype=dtype, device=device, requires_grad=True)
    b = torch.tensor(np_rng.standard_normal(4), dtype=dtype, device=device, requires_grad=True)
    c = torch.tensor(np_rng.standard_normal((6, 4)), dtype=dtype, device=device)  # needs no grad
    return x, w, b, c


@pytest.mark.parametrize("use_reentrant", [pytest.param(False, id="nonreentrant", marks=pytest.mark.smoke),
                                           pytest.param(True, id="reentrant")])
@pytest.mark.dtypes(torch.float32)
def test_checkpoint_values_and_grads(device, dtype, use_reentrant, np_rng):
    """checkpoint(fn, x, w, b, c, scale) with two outputs: the outputs, and after backward the gradient of
    every input that requires grad (x, w, b), equal the plain run and the float64 closed form; c (no grad)
    gets none; fn runs twice (forward + recomputation in backward). Catches a checkpoint that drops one
    input's gradient, detaches one output, skips recomputation by keeping activations (memory not saved)
    or recomputes with the wrong non-tensor argument."""
    x, w, b, c = _inputs(np_rng, device, dtype)
    R1 = np_rng.standard_normal((6, 4))
    R2 = np_rng.standard_normal(6)
    r1, r2 = torch.tensor(R1, dtype=dtype, device=device), torch.tensor(R2, dtype=dtype, device=device)
    plain_fn = _Counted()
    o1, o2 = plain_fn(x, w, b, c, 0.7)
    ((o1 * r1).sum() + (o2 * r2).sum()).backward()
    plain = [t.grad.clone() for t in (x, w, b)]
    for t in (x, w, b):
        t.grad = None
    fn = _Counted()
    with _full_recompute(use_reentrant):
        p1, p2 = checkpoint(fn, x, w, b, c, 0.7, use_reentrant=use_reentrant)
        assert_equal("torch.utils.checkpoint.checkpoint", fn.calls, 1, args="forward runs fn once")
        ((p1 * r1).sum() + (p2 * r2).sum()).backward()
    assert_equal("torch.utils.checkpoint.checkpoint", fn.calls, 2, args=f"use_reentrant={use_reentrant}: recomputed in backward")
    e1, e2, gx, gw, gb = _closed_form(*(_ref(t) for t in (x, w, b, c)), 0.7, R1, R2)
    args = f"use_reentrant={use_reentrant}"
    assert_close("torch.utils.checkpoint.checkpoint", p1, _ref(o1), op="exact", args=args + ": output 0 vs plain")
    assert_close("torch.utils.checkpoint.checkpoint", p2, _ref(o2), op="exact", args=args + ": output 1 vs plain")
    assert_close("torch.utils.checkpoint.checkpoint", p1, e1, op="nn", args=args + ": output 0 vs closed form")
    assert_close("torch.utils.checkpoint.checkpoint", p2, e2, op="nn", args=args + ": output 1 vs closed form")
    for name, t, pg, eg in (("x", x, plain[0], gx), ("w", w, plain[1], gw), ("b", b, plain[2], gb)):
        assert_true("torch.utils.checkpoint.checkpoint", t.grad is not None, f"no gradient for {name}", args=args)
        # Same kernels on the same inputs: deterministic on CPU; the gradient class covers reduction order on GPUs.
        assert_close("torch.utils.checkpoint.checkpoint", t.grad, pg, op="gradient", args=f"{args}: grad {name} vs plain")
        assert_close("torch.utils.checkpoint.checkpoint", t.grad, eg, op="nn", args=f"{args}: grad {name} vs closed form")
    assert_true("torch.utils.checkpoint.checkpoint", c.grad is None, "an input without requires_grad got a gradient")


def test_checkpoint_nonreentrant_features(device, np_rng):
    """use_reentrant=False supports what the docs list: torch.autograd.grad w.r.t. the inputs, keyword
    arguments forwarded to fn, nested checkpoints, and gradients for parameters reached only through a
    closure when no input requires grad; the reentrant variant rejects torch.autograd.grad. Catches kwargs
    dropped, nested checkpoints losing gradients, closure parameters without gradients."""
    x, w, b, c = _inputs(np_rng, device, torch.float64)
    R1 = np_rng.standard_normal((6, 4))
    R2 = np_rng.standard_normal(6)
    r1, r2 = torch.tensor(R1, device=device), torch.tensor(R2, device=device)
    _, _, gx, gw, gb = _closed_form(*(_ref(t) for t in (x, w, b, c)), 1.3, R1, R2)
    fn = _Counted()
    p1, p2 = checkpoint(fn, x, w, b, c, use_reentrant=False, scale=1.3)
    grads = torch.autograd.grad((p1 * r1).sum() + (p2 * r2).sum(), (x, w, b))
    for name, g, eg in zip("xwb", grads, (gx, gw, gb)):
        assert_close("torch.utils.checkpoint.checkpoint", g, eg, op="gradient", args=f"autograd.grad + kwarg scale: grad {name}")

    def outer(x, w, b, c):
        inner = checkpoint(lambda t: torch.tanh(t @ w + b), x, use_reentrant=False)
        h = inner * 1.3
        return h * c + torch.sin(h), (h ** 2).sum(-1)

    q1, q2 = checkpoint(outer, x, w, b, c, use_reentrant=False)
    grads = torch.autograd.grad((q1 * r1).sum() + (q2 * r2).sum(), (x, w, b))
    for name, g, eg in zip("xwb", grads, (gx, gw, gb)):
        assert_close("torch.utils.checkpoint.checkpoint", g, eg, op="gradient", args=f"nested checkpoint: grad {name}")
    lin = nn.Linear(5, 3, device=device, dtype=torch.float64)
    xi = torch.tensor(np_rng.standard_normal((4, 5)), device=device)  # does not require grad
    Rl = np_rng.standard_normal((4, 3))
    (checkpoint(lambda t: lin(t), xi, use_reentrant=False) * torch.tensor(Rl, device=device)).sum().backward()
    assert_true("torch.utils.checkpoint.checkpoint", lin.weight.grad is not None, "closure parameter got no gradient",
                args="use_reentrant=False, input without grad")
    assert_close("torch.utils.checkpoint.checkpoint", lin.weight.grad, Rl.T @ _ref(xi), op="gradient", args="closure weight grad")
    assert_close("torch.utils.checkpoint.checkpoint", lin.bias.grad, Rl.sum(0), op="gradient", args="closure bias grad")
    out = checkpoint(fn, x, w, b, c, use_reentrant=True)[0].sum()
    assert_raises("torch.utils.checkpoint.checkpoint", RuntimeError, torch.autograd.grad, out, (x,),
                  args="use_reentrant=True with torch.autograd.grad")


@pytest.mark.parametrize("use_reentrant", REENTRANT)
def test_checkpoint_rng_state(device, use_reentrant, np_rng):
    """Dropout inside a checkpoint: with preserve_rng_state=True (default) the recomputation replays the
    forward's RNG stream, so the outputs and gradients equal an un-checkpointed run from the same seed (the
    dropout mask is the same), and the global RNG state after backward equals the plain run's (the
    recomputation does not advance it). Catches recomputation with a fresh mask (wrong gradients), the
    global RNG stream shifted by the recomputation."""
    x = torch.tensor(np_rng.standard_normal((64, 16)), dtype=torch.float32, device=device, requires_grad=True)
    w = torch.tensor(np_rng.standard_normal((16, 16)) * 0.3, dtype=torch.float32, device=device, requires_grad=True)
    R = torch.tensor(np_rng.standard_normal((64, 16)), dtype=torch.float32, device=device)

    def fn(t, m):
        return F.dropout(torch.tanh(t @ m), p=0.5, training=True) * t

    torch.manual_seed(1234)
    out = fn(x, w)
    (out * R).sum().backward()
    plain_out, plain_gx, plain_gw = _ref(out), _ref(x.grad), _ref(w.grad)
    plain_next = _ref(torch.rand(8, device=device))
    x.grad = w.grad = None
    torch.manual_seed(1234)
    out = checkpoint(fn, x, w, use_reentrant=use_reentrant, preserve_rng_state=True)
    (out * R).sum().backward()
    args = f"use_reentrant={use_reentrant}, preserve_rng_state=True"
    assert_close("torch.utils.checkpoint.checkpoint", out, plain_out, op="exact", args=args + ": output (same mask)")
    assert_close("torch.utils.checkpoint.checkpoint", x.grad, plain_gx, op="gradient", args=args + ": grad x (same mask)")
    assert_close("torch.utils.checkpoint.checkpoint", w.grad, plain_gw, op="gradient", args=args + ": grad w (same mask)")
    assert_equal("torch.utils.checkpoint.checkpoint", torch.rand(8, device=device), plain_next,
                 args=args + ": global RNG stream after backward")
    zero = np.abs(plain_out) == 0
    assert_true("torch.utils.checkpoint.checkpoint", 0.3 < zero.mean() < 0.7, f"dropout mask covers {zero.mean():.2f}, not ~0.5")


@pytest.mark.parametrize("use_reentrant", REENTRANT)
@pytest.mark.parametrize("segments", [1, 2, 3, 6])
def test_checkpoint_sequential(device, segments, use_reentrant, np_rng):
    """checkpoint_sequential(model, segments, x): the output and the gradients of the input and of every
    parameter equal the plain Sequential; the model is cut into `segments` chunks of len // segments
    modules, the last chunk takes the rest and is not checkpointed, so its modules run once and every other
    module twice (for use_reentrant=False counted with set_checkpoint_early_stop(False): by default that
    variant documentedly stops recomputing once it has every tensor backward needs, so there only "last
    chunk once, nothing more than twice" holds). Catches segments ignored (nothing checkpointed, or
    everything), a parameter's gradient lost between segments, segment boundaries off by one."""
    torch.manual_seed(0)
    layers = []
    for i in range(3):
        layers += [nn.Linear(8, 8), nn.Tanh()]
    model = nn.Sequential(*layers).to(device)
    calls = [0] * len(model)
    for i, mod in enumerate(model):
        mod.register_forward_hook(lambda m, a, o, i=i: calls.__setitem__(i, calls[i] + 1))
    x = torch.tensor(np_rng.standard_normal((5, 8)), dtype=torch.float32, device=device, requires_grad=True)
    R = torch.tensor(np_rng.standard_normal((5, 8)), dtype=torch.float32, device=device)
    out = model(x)
    (out * R).sum().backward()
    plain_out, plain_gx = _ref(out), _ref(x.grad)
    plain_g = [_ref(p.grad) for p in model.parameters()]
    model.zero_grad()
    x.grad = None
    calls[:] = [0] * len(model)
    with _full_recompute(use_reentrant):
        out = checkpoint_sequential(model, segments, x, use_reentrant=use_reentrant)
        (out * R).sum().backward()
    args = f"segments={segments}, use_reentrant={use_reentrant}"
    assert_close("torch.utils.checkpoint.checkpoint_sequential", out, plain_out, op="exact", args=args + ": output")
    assert_close("torch.utils.checkpoint.checkpoint_sequential", x.grad, plain_gx, op="gradient", args=args + ": grad input")
    for k, (p, g) in enumerate(zip(model.parameters(), plain_g)):
        assert_close("torch.utils.checkpoint.checkpoint_sequential", p.grad, g, op="gradient", args=f"{args}: grad param {k}")
    size = len(model) // segments
    n_ckpt = size * (segments - 1)
    assert_equal("torch.utils.checkpoint.checkpoint_sequential", calls, [2] * n_ckpt + [1] * (len(model) - n_ckpt),
                 args=args + ": forward calls per module (full recomputation)")
    if not use_reentrant:  # default early stopping: the last chunk still runs once, nothing runs more than twice
        calls[:] = [0] * len(model)
        out = checkpoint_sequential(model, segments, x, use_reentrant=False)
        (out * R).sum().backward()
        assert_true("torch.utils.checkpoint.checkpoint_sequential",
                    calls[n_ckpt:] == [1] * (len(model) - n_ckpt) and max(calls) <= 2,
                    f"forward calls per module {calls}", args=args + ", early stop")


def _full_recompute(use_reentrant):
    """Non-reentrant checkpoints stop recomputing early by default (documented, set_checkpoint_early_stop);
    turn that off where the test counts recomputed calls. The reentrant variant always recomputes fully."""
    import contextlib

    from torch.utils import checkpoint as ckpt

    if use_reentrant:
        return contextlib.nullcontext()
    if not hasattr(ckpt, "set_checkpoint_early_stop"):
        pytest.skip("torch.utils.checkpoint.set_checkpoint_early_stop is missing in this torch (added in 2.1)")
    return ckpt.set_checkpoint_early_stop(False)


@pytest.mark.slow
@pytest.mark.parametrize("use_reentrant", REENTRANT)
def test_checkpoint_transformer_layer(device, use_reentrant, np_rng):
    """A TransformerEncoderLayer with dropout, checkpointed layer by layer (two layers, batch_first), against
    the plain run from the same seed: output and every parameter's and the input's gradient equal, and the
    global RNG stream afterwards too; catches checkpointing bugs that only show with real modules (several
    dropouts, attention's internal RNG use, parameters reached through module attributes)."""
    torch.manual_seed(0)
    layers = nn.ModuleList([nn.TransformerEncoderLayer(32, 4, 64, dropout=0.2, batch_first=True) for _ in range(2)]).to(device)
    layers.train()
    x = torch.tensor(np_rng.standard_normal((3, 10, 32)), dtype=torch.float32, device=device, requires_grad=True)
    R = torch.tensor(np_rng.standard_normal((3, 10, 32)), dtype=torch.float32, device=device)

    def run(ckpt):
        h = x
        for layer in layers:
            h = checkpoint(layer, h, use_reentrant=use_reentrant) if ckpt else layer(h)
        return h

    torch.manual_seed(99)
    out = run(False)
    (out * R).sum().backward()
    plain = [_ref(out), _ref(x.grad)] + [_ref(p.grad) for p in layers.parameters()]
    plain_next = _ref(torch.rand(4, device=device))
    layers.zero_grad()
    x.grad = None
    torch.manual_seed(99)
    out = run(True)
    (out * R).sum().backward()
    got = [out, x.grad] + [p.grad for p in layers.parameters()]
    args = f"use_reentrant={use_reentrant}"
    assert_close("torch.utils.checkpoint.checkpoint", got[0], plain[0], op="gradient", args=args + ": output")
    for k, (g, e) in enumerate(zip(got[1:], plain[1:])):
        assert_close("torch.utils.checkpoint.checkpoint", g, e, op="gradient", args=f"{args}: grad {k} (0 = input)")
    assert_equal("torch.utils.checkpoint.checkpoint", torch.rand(4, device=device), plain_next, args=args + ": RNG after")
