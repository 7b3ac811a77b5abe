"""§ 6 Model training: the document's training loop (model.train(), optimizer.zero_grad(), forward, loss,
backward(), optimizer.step()) actually learns small synthetic problems, reproducibly; evaluation with
model.eval() + torch.no_grad(); frozen layers; gradient clipping (clip_grad_norm_, clip_grad_value_).

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from harness.checks import assert_close, assert_equal, assert_raises, assert_true


def _train(model, opt, loss_fn, x, y, epochs, batch=None, gen=None):
    """The document's loop."""
    model.train()
    n = x.shape[0]
    batch = batch or n
    last = None
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
        for i in range(0, n, batch):
            idx = order[i:i + batch].to(x.device)
            opt.zero_grad()
            out = model(x[idx])
            loss = loss_fn(out, y[idx])
            loss.backward()
            opt.step()
            last = loss.item()
    return last


@pytest.mark.smoke
def test_loop_learns_linear_regression(device, np_rng):
    """Linear regression to a known weight: after the loop the Linear layer's weight and bias equal the
    generating ones (NumPy) and the MSE is below 1e-8; catches a loop/optimizer/backward that does not learn."""
    w_true = np_rng.standard_normal((2, 4)); b_true = np_rng.standard_normal(2)
    x = np_rng.standard_normal((128, 4))
    y = x @ w_true.T + b_true
    xt = torch.tensor(x, dtype=torch.float32, device=device); yt = torch.tensor(y, dtype=torch.float32, device=device)
    model = nn.Linear(4, 2).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    loss = _train(model, opt, nn.MSELoss(), xt, yt, epochs=40, batch=32, gen=torch.Generator().manual_seed(0))
    assert_true("training loop", loss < 1e-8, f"final MSE {loss:.3g} not below 1e-8")
    # learned parameters vs the generating ones: the float32 fixed point is within a few ulps of the truth
    assert_close("training loop", model.weight, w_true, op="training", args="learned weight")
    assert_close("training loop", model.bias, b_true, op="training", args="learned bias")


def _blobs(np_rng, n=200):
    centers = np.array([[2.0, 2.0], [-2.0, -2.0]])
    y = np.arange(n) % 2
    x = centers[y] + np_rng.standard_normal((n, 2)) * 0.5
    return x, y


def test_loop_learns_separable_classification(device, np_rng):
    """A 2-class linearly separable problem: an MLP trained with CrossEntropyLoss + Adam reaches 100%
    accuracy and loss < 0.02 in eval mode; catches a classification pipeline that does not learn."""
    x, y = _blobs(np_rng)
    xt = torch.tensor(x, dtype=torch.float32, device=device); yt = torch.tensor(y, device=device)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    _train(model, opt, nn.CrossEntropyLoss(), xt, yt, epochs=60)
    model.eval()
    with torch.no_grad():
        logits = model(xt)
        loss = nn.functional.cross_entropy(logits, yt).item()
    acc = (logits.argmax(1) == yt).float().mean().item()
    assert_equal("training loop", acc, 1.0, args="accuracy on separable blobs")
    assert_true("training loop", loss < 0.02, f"eval loss {loss:.3g} not below 0.02")


def _run_seeded(seed, device):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Dropout(0.2), nn.Linear(8, 1)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 3, generator=g).to(device)
    y = x.sum(1, keepdim=True).sin()
    _train(model, opt, nn.MSELoss(), x, y, epochs=5, batch=16, gen=g)
    return [p.detach().cpu().clone() for p in model.parameters()]


def test_training_reproducible_with_seed(device):
    """Same seed (init, dropout masks, shuffling) gives bit-identical parameters after training; a different
    seed gives different ones; catches nondeterminism leaking into a seeded CPU run or an ignored seed."""
    a, b, c = _run_seeded(3, device), _run_seeded(3, device), _run_seeded(4, device)
    for i, (pa, pb) in enumerate(zip(a, b)):
        assert_equal("torch.manual_seed", pa, pb, args=f"parameter {i}, same seed")
    assert_true("torch.manual_seed", any(not torch.equal(pa, pc) for pa, pc in zip(a, c)), "different seeds gave identical training")


def test_eval_mode_and_no_grad(device):
    """model.eval() turns Dropout off and makes BatchNorm use (and not update) running stats; train() turns
    them back on; no_grad() produces outputs without a graph and leaves parameters unchanged; catches
    eval() not propagating to children or BatchNorm updating stats in eval mode."""
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(4)
    model = nn.Sequential(nn.Linear(4, 4), bn, nn.Dropout(0.5)).to(device)
    x = torch.randn(16, 4, device=device)
    model.train()
    model(x)  # updates running stats once
    rm, rv = bn.running_mean.clone(), bn.running_var.clone()
    model.eval()
    assert_true("nn.Module.eval", all(not m.training for m in model.modules()), "eval() did not reach every submodule")
    with torch.no_grad():
        o1, o2 = model(x), model(x)
    assert_true("torch.no_grad", not o1.requires_grad and o1.grad_fn is None, "output under no_grad has a graph")
    assert_equal("nn.Module.eval", o1, o2, args="eval forward deterministic (dropout off)")
    assert_equal("nn.BatchNorm1d", bn.running_mean, rm, args="running_mean unchanged in eval")
    assert_equal("nn.BatchNorm1d", bn.running_var, rv, args="running_var unchanged in eval")
    lin = model[0]
    h = (x @ lin.weight.T + lin.bias).detach().double().cpu().numpy()
    exp = (h - rm.double().cpu().numpy()) / np.sqrt(rv.double().cpu().numpy() + bn.eps) * bn.weight.detach().double().cpu().numpy() \
        + bn.bias.detach().double().cpu().numpy()
    assert_close("nn.Module.eval", o1, exp, op="nn", args="eval output uses running stats, identity dropout")
    model.train()
    assert_true("nn.Module.train", all(m.training for m in model.modules()), "train() did not reach every submodule")
    t1 = model(x)
    assert_true("nn.Module.train", (t1 == 0).any().item(), "dropout inactive after train()")
    assert_true("nn.BatchNorm1d", not torch.equal(bn.running_mean, rm), "running_mean not updated in train mode")


def test_frozen_layer_stays_unchanged(device, np_rng):
    """Freezing a layer (requires_grad_(False)) and optimising the rest: the frozen layer's weights are
    bit-identical after training, its grads stay None, the others move and the loss still falls."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1)).to(device)
    for p in model[0].parameters():
        p.requires_grad_(False)
    frozen = [p.clone() for p in model[0].parameters()]
    head = [p.clone() for p in model[2].parameters()]
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05, momentum=0.9, weight_decay=0.01)
    x = torch.tensor(np_rng.standard_normal((64, 3)), dtype=torch.float32, device=device)
    y = x[:, :1] * 2
    with torch.no_grad():
        first = nn.functional.mse_loss(model(x), y).item()
    last = _train(model, opt, nn.MSELoss(), x, y, epochs=30)
    for p, f in zip(model[0].parameters(), frozen):
        assert_equal("Tensor.requires_grad_", p, f, args="frozen layer after training")
        assert_true("Tensor.requires_grad_", p.grad is None, "frozen parameter got a gradient")
    assert_true("training loop", any(not torch.equal(p, h) for p, h in zip(model[2].parameters(), head)), "trainable head did not move")
    assert_true("training loop", last < first, f"loss did not fall with a frozen backbone ({first:.3g} -> {last:.3g})")


# ---------------------------------------------------------------------------- gradient clipping
def _params_with_grads(np_rng, device, dtype=torch.float64):
    grads = [np_rng.standard_normal((3, 4)) * 2, np_rng.standard_normal(5), np.array(7.0)]
    ps = []
    for g in grads:
        p = torch.zeros(g.shape, dtype=dtype, device=device, requires_grad=True)
        p.grad = torch.tensor(g, dtype=dtype, device=device)
        ps.append(p)
    return ps, grads


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [1.0, 1e6])
def test_clip_grad_norm(device, norm_type, max_norm, np_rng):
    """clip_grad_norm_ returns the total norm of all grads as one vector (NumPy) and scales every grad by
    max_norm/(total+1e-6) only when that is < 1; catches per-tensor clipping, a norm_type ignored (inf is
    the max abs), or clipping when under the limit."""
    ps, grads = _params_with_grads(np_rng, device)
    flat = np.concatenate([g.ravel() for g in grads])
    total = np.abs(flat).max() if norm_type == math.inf else (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)
    got = torch.nn.utils.clip_grad_norm_(ps, max_norm=max_norm, norm_type=norm_type)
    assert_close("nn.utils.clip_grad_norm_", got, total, op="reduction", args=f"norm_type={norm_type}")
    coef = min(1.0, max_norm / (total + 1e-6))
    for i, (p, g) in enumerate(zip(ps, grads)):
        assert_close("nn.utils.clip_grad_norm_", p.grad, g * coef, op="reduction", args=f"max_norm={max_norm}, norm_type={norm_type}, grad {i}")


def test_clip_grad_norm_edge_cases(device, np_rng):
    """A single tensor is accepted; parameters without grad are skipped; error_if_nonfinite=True raises on a
    NaN/inf norm while the default returns it; an empty list gives 0."""
    p = torch.zeros(3, dtype=torch.float64, device=device, requires_grad=True)
    p.grad = torch.tensor([3.0, 4.0, 0.0], dtype=torch.float64, device=device)
    q = torch.zeros(2, device=device, requires_grad=True)  # grad None
    got = torch.nn.utils.clip_grad_norm_([p, q], 1.0)
    assert_close("nn.utils.clip_grad_norm_", got, 5.0, op="reduction", args="skips grad None")
    assert_close("nn.utils.clip_grad_norm_", p.grad, np.array([0.6, 0.8, 0.0]) * 5 / (5 + 1e-6), op="reduction", args="single tensor list")
    p.grad = torch.tensor([3.0, 4.0, 0.0], dtype=torch.float64, device=device)
    got = torch.nn.utils.clip_grad_norm_(p, 10.0)
    assert_close("nn.utils.clip_grad_norm_", got, 5.0, op="reduction", args="bare tensor")
    p.grad = torch.tensor([1.0, float("nan"), 0.0], dtype=torch.float64, device=device)
    assert_raises("nn.utils.clip_grad_norm_", RuntimeError, torch.nn.utils.clip_grad_norm_, [p], 1.0, error_if_nonfinite=True,
                  args="error_if_nonfinite=True")
    total = torch.nn.utils.clip_grad_norm_([p], 1.0)
    assert_true("nn.utils.clip_grad_norm_", torch.isnan(total).item(), "NaN norm not returned with error_if_nonfinite=False")
    assert_equal("nn.utils.clip_grad_norm_", float(torch.nn.utils.clip_grad_norm_([], 1.0)), 0.0, args="empty list")


@pytest.mark.parametrize("clip", [0.5, 2.0])
def test_clip_grad_value(device, clip, np_rng):
    """clip_grad_value_ clamps every gradient element into [-clip, clip] in place (NumPy clip); catches
    one-sided clamping or clipping by norm."""
    ps, grads = _params_with_grads(np_rng, device)
    torch.nn.utils.clip_grad_value_(ps, clip_value=clip)
    for i, (p, g) in enumerate(zip(ps, grads)):
        assert_equal("nn.utils.clip_grad_value_", p.grad, np.clip(g, -clip, clip), args=f"clip_value={clip}, grad {i}")


def test_clip_then_step_matches_manual(device, np_rng):
    """In the loop, clip_grad_norm_ between backward() and step() makes SGD move by lr * clipped grad."""
    ps, grads = _params_with_grads(np_rng, device)
    opt = torch.optim.SGD(ps, lr=0.1)
    torch.nn.utils.clip_grad_norm_(ps, 1.0)
    opt.step()
    total = np.sqrt(sum((g ** 2).sum() for g in grads))
    for i, (p, g) in enumerate(zip(ps, grads)):
        assert_close("torch.optim.SGD.step", p, -0.1 * g / (total + 1e-6), op="training", args=f"after clip_grad_norm_(1.0), param {i}")
