"""§ 2 Autograd: ``torch.autograd.grad`` and ``torch.autograd.functional`` (jacobian, hessian, vjp, jvp,
hvp, vhp) against closed forms in NumPy float64.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from torch.autograd import functional as AF

from harness.checks import assert_close, assert_equal, assert_raises, assert_true


def _t(a, device, grad=False):
    return torch.tensor(a, dtype=torch.float64, device=device, requires_grad=grad)


@pytest.mark.smoke
def test_grad_basic(device, np_rng):
    """torch.autograd.grad(outputs, inputs) returns a tuple of d out/d in per input (closed forms) and does
    NOT accumulate into .grad; catches a grad() that writes .grad, returns in the wrong order or is wrong."""
    xn, yn = np_rng.standard_normal(4), np_rng.standard_normal(4)
    x, y = _t(xn, device, True), _t(yn, device, True)
    out = (x * y.exp()).sum() + (x ** 2).sum()
    g = torch.autograd.grad(out, [y, x])
    assert_true("torch.autograd.grad", isinstance(g, tuple) and len(g) == 2, "must return one grad per input")
    assert_close("torch.autograd.grad", g[0], xn * np.exp(yn), op="gradient", args="inputs[0]=y")
    assert_close("torch.autograd.grad", g[1], np.exp(yn) + 2 * xn, op="gradient", args="inputs[1]=x")
    assert_true("torch.autograd.grad", x.grad is None and y.grad is None, "autograd.grad accumulated into .grad")
    assert_true("torch.autograd.grad", not g[0].requires_grad, "without create_graph the result must not require grad")


def test_grad_single_tensor_input(device):
    """A single tensor (not a list) as inputs still returns a 1-tuple."""
    x = _t([1.0, 2.0], device, True)
    g = torch.autograd.grad((x * 3).sum(), x)
    assert_equal("torch.autograd.grad", len(g), 1, args="inputs=tensor")
    assert_close("torch.autograd.grad", g[0], np.array([3.0, 3.0]), op="gradient")


def test_grad_outputs(device, np_rng):
    """grad_outputs weights several (non-scalar) outputs: result = sum_i J_i^T v_i; missing grad_outputs for
    a non-scalar output raises."""
    xn = np_rng.standard_normal(3)
    v1, v2 = np_rng.standard_normal(3), np_rng.standard_normal(2)
    x = _t(xn, device, True)
    o1 = torch.sin(x)
    o2 = torch.stack([x.sum(), (x * x).sum()])
    (g,) = torch.autograd.grad([o1, o2], [x], grad_outputs=[_t(v1, device), _t(v2, device)])
    expected = np.cos(xn) * v1 + v2[0] + v2[1] * 2 * xn
    assert_close("torch.autograd.grad", g, expected, op="gradient", args="two outputs with grad_outputs")
    assert_raises("torch.autograd.grad", RuntimeError, torch.autograd.grad, torch.sin(x), x,
                  match="implicitly created only for scalar", args="non-scalar without grad_outputs")


def test_grad_allow_unused(device):
    """An input the output does not depend on: error by default ('appears to not have been used'),
    None with allow_unused=True, zeros with materialize_grads=True (torch >= 2.1)."""
    x = _t([1.0, 2.0], device, True)
    u = _t([3.0], device, True)
    assert_raises("torch.autograd.grad", RuntimeError, torch.autograd.grad, (x * 2).sum(), [x, u],
                  match="not have been used", args="unused input")
    gx, gu = torch.autograd.grad((x * 2).sum(), [x, u], allow_unused=True)
    assert_equal("torch.autograd.grad", gu, None, args="allow_unused=True")
    assert_close("torch.autograd.grad", gx, np.array([2.0, 2.0]), op="gradient", args="allow_unused=True")
    if "materialize_grads" not in inspect.signature(torch.autograd.grad).parameters:
        pytest.skip("torch.autograd.grad has no materialize_grads in this torch (added in 2.1)")
    gx, gu = torch.autograd.grad((x * 2).sum(), [x, u], materialize_grads=True)
    assert_close("torch.autograd.grad", gu, np.zeros(1), op="exact", args="materialize_grads=True")
    assert_close("torch.autograd.grad", gx, np.array([2.0, 2.0]), op="gradient", args="materialize_grads=True")


def test_grad_retain_graph(device):
    """autograd.grad frees the graph by default (second call raises); retain_graph=True keeps it."""
    x = _t([0.5, -1.0], device, True)
    y = (x.exp() * x).sum()
    g1 = torch.autograd.grad(y, x, retain_graph=True)[0]
    g2 = torch.autograd.grad(y, x)[0]
    expected = np.exp([0.5, -1.0]) * (1 + np.array([0.5, -1.0]))
    assert_close("torch.autograd.grad", g1, expected, op="gradient", args="retain_graph=True")
    assert_close("torch.autograd.grad", g2, expected, op="gradient", args="second call")
    assert_raises("torch.autograd.grad", RuntimeError, torch.autograd.grad, y, x,
                  match="backward through the graph a second time", args="third call")


def test_grad_create_graph_hvp(device, np_rng):
    """create_graph=True gives differentiable grads: the Hessian-vector product of
    f(x) = sum(x**4)/4 + (a.x)**2 is (3 diag(x**2) + 2 a a^T) v; also the full second derivative of sin."""
    xn, an, vn = np_rng.standard_normal(4), np_rng.standard_normal(4), np_rng.standard_normal(4)
    x = _t(xn, device, True)
    a = _t(an, device)
    f = (x ** 4).sum() / 4 + (a @ x) ** 2
    (g,) = torch.autograd.grad(f, x, create_graph=True)
    assert_true("torch.autograd.grad", g.requires_grad, "create_graph=True result must require grad")
    assert_close("torch.autograd.grad", g, xn ** 3 + 2 * (an @ xn) * an, op="gradient", args="first derivative")
    (hv,) = torch.autograd.grad(g, x, grad_outputs=_t(vn, device))
    expected = 3 * xn ** 2 * vn + 2 * an * (an @ vn)
    assert_close("torch.autograd.grad", hv, expected, op="gradient", args="Hessian-vector product")
    # third derivative of sin via repeated grad
    z = _t(xn, device, True)
    d1 = torch.autograd.grad(z.sin().sum(), z, create_graph=True)[0]
    d2 = torch.autograd.grad(d1.sum(), z, create_graph=True)[0]
    d3 = torch.autograd.grad(d2.sum(), z)[0]
    assert_close("torch.autograd.grad", d2, -np.sin(xn), op="gradient", args="sin''")
    assert_close("torch.autograd.grad", d3, -np.cos(xn), op="gradient", args="sin'''")


def test_grad_non_leaf_input(device, np_rng):
    """inputs may be non-leaf intermediates: d out / d h for h = x*2, out = sum(h**3) is 3 h**2."""
    xn = np_rng.standard_normal(3)
    x = _t(xn, device, True)
    h = x * 2
    (gh,) = torch.autograd.grad((h ** 3).sum(), h)
    assert_close("torch.autograd.grad", gh, 3 * (2 * xn) ** 2, op="gradient", args="non-leaf input")


def test_grad_input_not_requiring_grad_raises(device):
    """An input that does not require grad raises ('does not require grad')."""
    x = _t([1.0], device, True)
    c = _t([2.0], device)
    assert_raises("torch.autograd.grad", RuntimeError, torch.autograd.grad, (x * c).sum(), c,
                  match="does not require grad", args="input without requires_grad")


@pytest.mark.parametrize("vectorize", [False, True])
def test_jacobian(device, np_rng, vectorize):
    """functional.jacobian of f(x) = A tanh(x) + x**2 equals A diag(1 - tanh^2 x) + diag(2x), in the
    documented (out_shape + in_shape) layout, for vectorize=False and True."""
    xn, An = np_rng.standard_normal(3), np_rng.standard_normal((2, 3))
    A = _t(An, device)
    J = AF.jacobian(lambda x: A @ torch.tanh(x) + (x ** 2)[:2], _t(xn, device), vectorize=vectorize)
    expected = An * (1 - np.tanh(xn) ** 2)[None, :]
    expected[0, 0] += 2 * xn[0]
    expected[1, 1] += 2 * xn[1]
    assert_close("torch.autograd.functional.jacobian", J, expected, op="gradient", args=f"vectorize={vectorize}")


def test_jacobian_multi_input_and_forward_mode(device, np_rng):
    """jacobian with a tuple of inputs returns one block per input; strategy='forward-mode' (vectorize=True)
    gives the same closed-form blocks; f(x, y) = x * y (elementwise) has blocks diag(y), diag(x)."""
    xn, yn = np_rng.standard_normal(3), np_rng.standard_normal(3)
    for kw in ({}, {"vectorize": True, "strategy": "forward-mode"}):
        Jx, Jy = AF.jacobian(lambda x, y: x * y, (_t(xn, device), _t(yn, device)), **kw)
        assert_close("torch.autograd.functional.jacobian", Jx, np.diag(yn), op="gradient", args=f"d/dx {kw}")
        assert_close("torch.autograd.functional.jacobian", Jy, np.diag(xn), op="gradient", args=f"d/dy {kw}")


def test_hessian(device, np_rng):
    """functional.hessian of f(x) = sum(x**3) + x0*x1*x2 equals diag(6x) + the off-diagonal x_k terms."""
    xn = np_rng.standard_normal(3)
    H = AF.hessian(lambda x: (x ** 3).sum() + x[0] * x[1] * x[2], _t(xn, device))
    expected = np.diag(6 * xn)
    expected[0, 1] = expected[1, 0] = xn[2]
    expected[0, 2] = expected[2, 0] = xn[1]
    expected[1, 2] = expected[2, 1] = xn[0]
    assert_close("torch.autograd.functional.hessian", H, expected, op="gradient")
    Hs = AF.hessian(lambda x: (x ** 3).sum() + x[0] * x[1] * x[2], _t(xn, device), vectorize=True)
    assert_close("torch.autograd.functional.hessian", Hs, expected, op="gradient", args="vectorize=True")


def test_vjp_jvp(device, np_rng):
    """vjp returns (f(x), v^T J) and jvp returns (f(x), J v) with J = A diag(sech^2 x); catches a transposed
    Jacobian product or a wrong primal output."""
    xn, An = np_rng.standard_normal(3), np_rng.standard_normal((2, 3))
    u, v = np_rng.standard_normal(2), np_rng.standard_normal(3)
    A = _t(An, device)
    f = lambda x: A @ torch.tanh(x)  # noqa: E731
    J = An * (1 - np.tanh(xn) ** 2)[None, :]
    out, vjp = AF.vjp(f, _t(xn, device), _t(u, device))
    assert_close("torch.autograd.functional.vjp", out, An @ np.tanh(xn), op="matmul", args="output")
    assert_close("torch.autograd.functional.vjp", vjp, u @ J, op="gradient", args="v^T J")
    out, jvp = AF.jvp(f, _t(xn, device), _t(v, device))
    assert_close("torch.autograd.functional.jvp", out, An @ np.tanh(xn), op="matmul", args="output")
    assert_close("torch.autograd.functional.jvp", jvp, J @ v, op="gradient", args="J v")


def test_hvp_vhp(device, np_rng):
    """hvp and vhp of f(x) = sum(exp(x)) + (x.x)**2 / 4 (symmetric H = diag(e^x) + (x.x) I + 2 x x^T) both
    equal H v."""
    xn, v = np_rng.standard_normal(3), np_rng.standard_normal(3)
    f = lambda x: x.exp().sum() + (x @ x) ** 2 / 4  # noqa: E731
    H = np.diag(np.exp(xn)) + (xn @ xn) * np.eye(3) + 2 * np.outer(xn, xn)
    val, hv = AF.hvp(f, _t(xn, device), _t(v, device))
    assert_close("torch.autograd.functional.hvp", val, np.exp(xn).sum() + (xn @ xn) ** 2 / 4, op="reduction")
    assert_close("torch.autograd.functional.hvp", hv, H @ v, op="gradient")
    _, vh = AF.vhp(f, _t(xn, device), _t(v, device))
    assert_close("torch.autograd.functional.vhp", vh, v @ H, op="gradient")


def test_forward_mode_dual(device, np_rng):
    """Forward-mode AD (torch.autograd.forward_ad): the tangent of sin(x) * x along t is
    (cos(x) x + sin(x)) t; catches a broken JVP rule."""
    import torch.autograd.forward_ad as fwAD
    xn, tn = np_rng.standard_normal(4), np_rng.standard_normal(4)
    with fwAD.dual_level():
        dx = fwAD.make_dual(_t(xn, device), _t(tn, device))
        out = torch.sin(dx) * dx
        primal, tangent = fwAD.unpack_dual(out)
    assert_close("torch.autograd.forward_ad", primal, np.sin(xn) * xn, op="elementwise", args="primal")
    assert_close("torch.autograd.forward_ad", tangent, (np.cos(xn) * xn + np.sin(xn)) * tn, op="gradient",
                 args="tangent")


def test_create_graph_implies_retain_graph(device):
    """retain_graph defaults to create_graph: after grad(..., create_graph=True) the same graph can be
    differentiated again without retain_graph."""
    x = _t([0.5, 2.0], device, True)
    y = (x ** 3).sum()
    (g,) = torch.autograd.grad(y, x, create_graph=True)
    (g_again,) = torch.autograd.grad(y, x)
    assert_close("torch.autograd.grad", g_again, 3 * np.array([0.5, 2.0]) ** 2, op="gradient",
                 args="second call after create_graph=True")
    assert_close("torch.autograd.grad", g, 3 * np.array([0.5, 2.0]) ** 2, op="gradient")


def test_grad_is_grads_batched(device, np_rng):
    """is_grads_batched=True treats the first dim of grad_outputs as a batch of vectors: row b of the result
    is v_b^T J (the full Jacobian for v = I), for y = A tanh(x)."""
    if "is_grads_batched" not in inspect.signature(torch.autograd.grad).parameters:
        pytest.skip("torch.autograd.grad has no is_grads_batched in this torch (added in 1.11)")
    xn, An = np_rng.standard_normal(3), np_rng.standard_normal((2, 3))
    x = _t(xn, device, True)
    y = _t(An, device) @ torch.tanh(x)
    V = np_rng.standard_normal((4, 2))
    (g,) = torch.autograd.grad(y, x, grad_outputs=_t(V, device), is_grads_batched=True)
    J = An * (1 - np.tanh(xn) ** 2)[None, :]
    assert_close("torch.autograd.grad", g, V @ J, op="gradient", args="is_grads_batched=True")
