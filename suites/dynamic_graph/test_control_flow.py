"""§ 3 Dynamic graph (define-by-run): ordinary Python control flow inside ``forward``.

Data-dependent ``if``, loops whose trip count depends on the input, early return, recursion and
in-loop parameter sharing; every path's value AND gradients are checked against a manual NumPy float64
computation, each call builds a fresh graph whose shape follows the path taken, intermediates can be
inspected mid-forward, and the graph is freed after backward unless retained.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harness.checks import assert_close, assert_equal, assert_raises, assert_true

F64 = torch.float64


def _chain(t):
    """Names of the grad_fn nodes reachable from t (depth-first, each node once)."""
    out, seen, stack = [], set(), [t.grad_fn]
    while stack:
        n = stack.pop()
        if n is None or id(n) in seen:
            continue
        seen.add(id(n))
        out.append(type(n).__name__)
        stack.extend(m for m, _ in n.next_functions)
    return out


class Branchy(nn.Module):
    """if (W x).sum() > 0: y = relu(W x) * 2  else: y = tanh(W x) + x[:2]; returns sum(y * v)."""

    def __init__(self, W, v):
        super().__init__()
        self.W = nn.Parameter(W)
        self.v = v
        self.path = None

    def forward(self, x):
        h = self.W @ x
        if h.sum() > 0:
            self.path = "relu"
            y = torch.relu(h) * 2
        else:
            self.path = "tanh"
            y = torch.tanh(h) + x[:2]
        return (y * self.v).sum()


def _branchy_ref(W, v, x):
    h = W @ x
    if h.sum() > 0:
        dy = v * 2 * (h > 0)
        val = (np.maximum(h, 0) * 2 * v).sum()
        dx = W.T @ dy
    else:
        dy = v * (1 - np.tanh(h) ** 2)
        val = ((np.tanh(h) + x[:2]) * v).sum()
        dx = W.T @ dy
        dx[:2] += v
    return ("relu" if h.sum() > 0 else "tanh"), val, np.outer(dy, x), dx


@pytest.mark.smoke
def test_data_dependent_if(device, np_rng):
    """A data-dependent `if` takes the branch the VALUES select (not a traced/cached one): for x and -x the
    model runs different branches, each with the right value and gradients (W and x) and a different
    grad_fn chain; catches a build that caches the first graph or mis-evaluates the Python condition."""
    Wn, vn = np_rng.standard_normal((2, 3)), np_rng.standard_normal(2)
    xn = np_rng.standard_normal(3)
    if (Wn @ xn).sum() < 0:
        xn = -xn
    model = Branchy(torch.tensor(Wn, dtype=F64), torch.tensor(vn, dtype=F64, device=device)).to(device)
    chains = {}
    for sign in (1.0, -1.0):
        x_np = sign * xn
        path, val, gW, gx = _branchy_ref(Wn, vn, x_np)
        x = torch.tensor(x_np, dtype=F64, device=device, requires_grad=True)
        model.W.grad = None
        out = model(x)
        assert_equal("dynamic graph: if", model.path, path, args=f"sign={sign}")
        assert_close("dynamic graph: if", out, val, op="gradient", args=f"{path} value")
        out.backward()
        assert_close("dynamic graph: if", model.W.grad, gW, op="gradient", args=f"{path} dL/dW")
        assert_close("dynamic graph: if", x.grad, gx, op="gradient", args=f"{path} dL/dx")
        chains[path] = _chain(out)
    assert_true("dynamic graph: if", "ReluBackward0" in chains["relu"] and "TanhBackward0" not in chains["relu"],
                f"relu path graph is {chains['relu']}")
    assert_true("dynamic graph: if", "TanhBackward0" in chains["tanh"] and "ReluBackward0" not in chains["tanh"],
                f"tanh path graph is {chains['tanh']}")


def test_each_call_builds_new_graph(device):
    """Two calls of the same model on the same input build two distinct graphs (different grad_fn objects),
    and backward through one leaves the other usable."""
    model = nn.Linear(3, 2).to(device, F64)
    x = torch.ones(1, 3, dtype=F64, device=device)
    o1, o2 = model(x).sum(), model(x).sum()
    assert_true("dynamic graph", o1.grad_fn is not o2.grad_fn, "two calls share one grad_fn")
    o1.backward()
    o2.backward()         # would raise if the graphs were shared and freed by the first backward
    assert_close("dynamic graph", model.bias.grad, np.full(2, 2.0), op="gradient", args="two graphs accumulate")


def _doubling_loop(x, limit):
    n = 0
    y = x
    while y.norm() < limit:
        y = y * 2
        n += 1
    return y, n


@pytest.mark.parametrize("scale", [0.01, 0.3, 5.0])
def test_loop_count_depends_on_input(device, np_rng, scale):
    """A `while` loop whose trip count depends on the data (doubling until the norm passes 4): the number of
    MulBackward0 nodes equals the trip count n, the value is x*2^n and d sum(y)/dx = 2^n (zero iterations:
    y is x itself, grad 1)."""
    xn = np_rng.standard_normal(3)
    xn = xn / np.linalg.norm(xn) * scale
    n_ref = 0 if scale >= 4 else int(np.ceil(np.log2(4 / scale)))
    if scale * 2 ** n_ref < 4:
        n_ref += 1
    x = torch.tensor(xn, dtype=F64, device=device, requires_grad=True)
    y, n = _doubling_loop(x, 4.0)
    assert_equal("dynamic graph: while", n, n_ref, args=f"|x|={scale}")
    assert_close("dynamic graph: while", y, xn * 2.0 ** n_ref, op="elementwise", args=f"|x|={scale}")
    if n_ref:
        assert_equal("dynamic graph: while", _chain(y).count("MulBackward0"), n_ref, args="graph depth = trip count")
    y.sum().backward()
    assert_close("dynamic graph: while", x.grad, np.full(3, 2.0 ** n_ref), op="gradient", args=f"|x|={scale}")


class EarlyExit(nn.Module):
    """Returns early with w * sum(x) when max(x) > 1, otherwise continues to w**2 * sum(exp(x))."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(1.5, dtype=F64))

    def forward(self, x):
        if x.max() > 1:
            return self.w * x.sum()
        z = torch.exp(x)
        return self.w ** 2 * z.sum()


def test_early_return(device):
    """Early return: each exit's value and gradients (w and x) match the closed form of the path taken."""
    model = EarlyExit().to(device)
    for xn, early in ((np.array([2.0, -1.0, 0.5]), True), (np.array([0.2, -1.0, 0.5]), False)):
        model.w.grad = None
        x = torch.tensor(xn, dtype=F64, device=device, requires_grad=True)
        out = model(x)
        out.backward()
        if early:
            val, gw, gx = 1.5 * xn.sum(), xn.sum(), np.full(3, 1.5)
        else:
            val, gw, gx = 2.25 * np.exp(xn).sum(), 3.0 * np.exp(xn).sum(), 2.25 * np.exp(xn)
        tag = "early" if early else "full"
        assert_close("dynamic graph: early return", out, val, op="gradient", args=tag)
        assert_close("dynamic graph: early return", model.w.grad, gw, op="gradient", args=f"{tag} dL/dw")
        assert_close("dynamic graph: early return", x.grad, gx, op="gradient", args=f"{tag} dL/dx")


def _recurse(x, w, depth):
    if depth == 0:
        return x
    return torch.sin(_recurse(x, w, depth - 1) * w)


@pytest.mark.parametrize("depth", [0, 1, 4])
def test_recursion(device, np_rng, depth):
    """Recursion to a depth given by an argument: f_d = sin(w f_{d-1}), f_0 = x; value and d/dx, d/dw by a
    manual forward/backward recursion in NumPy (depth 0: w gets no gradient at all)."""
    xn = np_rng.standard_normal(3)
    wn = 0.8
    x = torch.tensor(xn, dtype=F64, device=device, requires_grad=True)
    w = torch.tensor(wn, dtype=F64, device=device, requires_grad=True)
    out = _recurse(x, w, depth)
    # NumPy forward, keeping pre-activations
    f = [xn]
    for _ in range(depth):
        f.append(np.sin(wn * f[-1]))
    assert_close("dynamic graph: recursion", out, f[-1], op="elementwise", args=f"depth={depth}")
    out.sum().backward()
    if depth == 0:
        assert_true("dynamic graph: recursion", out is x, "depth 0 must return the input itself")
        assert_equal("dynamic graph: recursion", w.grad, None, args="depth 0: w unused")
        assert_close("dynamic graph: recursion", x.grad, np.ones(3), op="gradient", args="depth 0")
        return
    g = np.ones(3)
    gw = 0.0
    for k in range(depth, 0, -1):
        d = np.cos(wn * f[k - 1]) * g
        gw += (d * f[k - 1]).sum()
        g = d * wn
    assert_close("dynamic graph: recursion", x.grad, g, op="gradient", args=f"depth={depth} dx")
    assert_close("dynamic graph: recursion", w.grad, gw, op="gradient", args=f"depth={depth} dw")
    assert_equal("dynamic graph: recursion", _chain(out).count("SinBackward0"), depth, args="graph depth")


def test_parameter_sharing_in_loop(device, np_rng):
    """A parameter used k times in a loop (y = x W^k) receives the SUM of its per-use gradients:
    for L = x W^k 1, dL/dW = sum_i (W^T)^i x^T 1^T (W^T)^(k-1-i) (closed form); catches an engine that
    keeps only the last use's gradient."""
    k = 4
    Wn = np_rng.standard_normal((3, 3)) * 0.5
    xn = np_rng.standard_normal(3)
    W = torch.tensor(Wn, dtype=F64, device=device, requires_grad=True)
    y = torch.tensor(xn, dtype=F64, device=device)
    for _ in range(k):
        y = y @ W
    y.sum().backward()
    Wt = Wn.T
    ones = np.ones(3)
    expected = sum(np.linalg.matrix_power(Wt, i) @ np.outer(xn, ones) @ np.linalg.matrix_power(Wt, k - 1 - i)
                   for i in range(k))
    assert_close("dynamic graph: parameter sharing", W.grad, expected, op="gradient", args=f"k={k}")
    assert_close("dynamic graph: parameter sharing", y, xn @ np.linalg.matrix_power(Wn, k), op="matmul")


def test_inspect_intermediates_mid_forward(device, np_rng):
    """Define-by-run gives concrete values mid-forward: an intermediate can be read (.item(), printed) while
    forward runs, hooked (register_hook sees its grad) and retained (retain_grad) with closed-form values."""
    xn = np_rng.standard_normal(4)
    x = torch.tensor(xn, dtype=F64, device=device, requires_grad=True)
    seen = {}

    def forward(t):
        h = t * 3
        seen["h_sum_mid_forward"] = h.sum().item()
        print(f"intermediate h: {h.detach().cpu().numpy()}")    # printing works mid-forward
        h.retain_grad()
        h.register_hook(lambda g: seen.__setitem__("hook", g.clone()))
        seen["h"] = h
        return (h.tanh()).sum()

    out = forward(x)
    assert_close("dynamic graph: intermediates", seen["h_sum_mid_forward"], 3 * xn.sum(), op="reduction")
    out.backward()
    dh = 1 - np.tanh(3 * xn) ** 2
    assert_close("Tensor.retain_grad", seen["h"].grad, dh, op="gradient", args="intermediate")
    assert_close("Tensor.register_hook", seen["hook"], dh, op="gradient", args="intermediate")
    assert_close("dynamic graph: intermediates", x.grad, 3 * dh, op="gradient")


def test_graph_freed_unless_retained(device):
    """A dynamic model's graph is freed by backward (a second backward raises) unless retain_graph=True,
    in which case the second backward accumulates the same gradient again."""
    model = EarlyExit().to(device)
    x = torch.tensor([0.1, 0.2], dtype=F64, device=device)
    out = model(x)
    out.backward()
    assert_raises("Tensor.backward", RuntimeError, out.backward, match="second time", args="graph freed")
    model.w.grad = None
    out = model(x)
    out.backward(retain_graph=True)
    out.backward()
    assert_close("Tensor.backward", model.w.grad, 2 * 3.0 * np.exp([0.1, 0.2]).sum(), op="gradient",
                 args="retain_graph=True twice")


class Flexible(nn.Module):
    """Linear(4 -> 3) + tanh, mean over all leading dims; works for any number of leading dims."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        return torch.tanh(self.lin(x)).mean()


@pytest.mark.parametrize("shape", [(4,), (1, 4), (5, 4), (2, 3, 4)], ids=["vec", "b1", "b5", "b2x3"])
def test_same_module_different_shapes(device, np_rng, shape):
    """The same module called on inputs of different leading shapes builds a matching graph each time;
    value and weight/bias gradients match the NumPy computation."""
    torch.manual_seed(0)
    model = Flexible().to(device, F64)
    Wn = model.lin.weight.detach().cpu().numpy()
    bn = model.lin.bias.detach().cpu().numpy()
    xn = np_rng.standard_normal(shape)
    out = model(torch.tensor(xn, dtype=F64, device=device))
    pre = xn @ Wn.T + bn
    n = pre.size
    assert_close("dynamic graph: shapes", out, np.tanh(pre).mean(), op="reduction", args=str(shape))
    out.backward()
    d = (1 - np.tanh(pre) ** 2) / n
    d2 = d.reshape(-1, 3)
    x2 = xn.reshape(-1, 4)
    assert_close("dynamic graph: shapes", model.lin.weight.grad, d2.T @ x2, op="gradient", args=f"{shape} dW")
    assert_close("dynamic graph: shapes", model.lin.bias.grad, d2.sum(0), op="gradient", args=f"{shape} db")
