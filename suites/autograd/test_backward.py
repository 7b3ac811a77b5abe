"""§ 2 Autograd: ``Tensor.backward`` and the ``.grad`` / leaf / ``requires_grad`` contracts.

The graph records the operations on tensors that require grad and ``backward()`` walks it,
filling ``.grad`` of leaf tensors with ``requires_grad=True``. Gradients accumulate across
backward calls until zeroed; the graph's buffers are freed after backward unless
``retain_graph=True``; ``create_graph=True`` makes the gradient itself differentiable.

Every gradient is compared with a closed form computed in NumPy float64.
Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_raises, assert_true


def _leaf(np_arr, device, dtype=torch.float64):
    return torch.tensor(np_arr, dtype=dtype, device=device, requires_grad=True)


@pytest.mark.smoke
def test_backward_scalar(device, dtype, np_rng):
    """backward() on a scalar loss fills x.grad with d loss/dx: sum(x**2 + 3x) -> 2x + 3,
    catches a backward that leaves .grad None, uses the wrong derivative or the wrong dtype/device."""
    xn = np_rng.standard_normal((3, 4))
    x = _leaf(xn, device, dtype)
    loss = (x * x + 3 * x).sum()
    assert_equal("Tensor.backward", x.grad, None, args="before backward")
    loss.backward()
    assert_true("Tensor.backward", x.grad is not None, ".grad still None after backward()")
    assert_close("Tensor.backward", x.grad, 2 * xn + 3, op="gradient", args="sum(x**2+3x)",
                 check_dtype=dtype, check_device=device)
    assert_equal("Tensor.backward", tuple(x.grad.shape), (3, 4), args="grad shape")


def test_backward_chain_rule(device, np_rng):
    """The chain rule through several ops: loss = sum(sin(x) * exp(w @ x)) vs the hand-derived gradient
    for x and w; catches a wrong composition or a wrong derivative of any link."""
    xn = np_rng.standard_normal(4)
    wn = np_rng.standard_normal((3, 4)) * 0.5
    x, w = _leaf(xn, device), _leaf(wn, device)
    u = w @ x                              # (3,)
    loss = (torch.sin(x).sum() * torch.exp(u)).sum()
    loss.backward()
    s, e = np.sin(xn).sum(), np.exp(wn @ xn)
    gx = np.cos(xn) * e.sum() + s * (wn.T @ e)
    gw = s * np.outer(e, xn)
    assert_close("Tensor.backward", x.grad, gx, op="gradient", args="x")
    assert_close("Tensor.backward", w.grad, gw, op="gradient", args="w")


def test_backward_nonscalar_needs_gradient(device, np_rng):
    """backward() of a non-scalar without `gradient` raises 'grad can be implicitly created only for scalar
    outputs'; with gradient=v it computes the vector-Jacobian product v^T J (for y = x**3: 3 x**2 * v)."""
    xn = np_rng.standard_normal((2, 3))
    vn = np_rng.standard_normal((2, 3))
    x = _leaf(xn, device)
    y = x ** 3
    assert_raises("Tensor.backward", RuntimeError, y.backward, match="implicitly created only for scalar",
                  args="non-scalar without gradient")
    y.backward(gradient=torch.tensor(vn, device=device))
    assert_close("Tensor.backward", x.grad, 3 * xn ** 2 * vn, op="gradient", args="gradient=v")


def test_backward_gradient_shape_mismatch(device):
    """A `gradient` whose shape does not match the output is an error, not a silent broadcast."""
    x = torch.ones(2, 3, dtype=torch.float64, device=device, requires_grad=True)
    y = x * 2
    assert_raises("Tensor.backward", RuntimeError, y.backward, torch.ones(3, dtype=torch.float64, device=device),
                  args="gradient of shape (3,) for output (2, 3)")


def test_backward_zero_dim_and_empty(device):
    """A zero-dim leaf gets a zero-dim grad; an empty tensor's sum backward gives an empty grad."""
    x = torch.tensor(1.5, dtype=torch.float64, device=device, requires_grad=True)
    (x ** 2).backward()
    assert_equal("Tensor.backward", tuple(x.grad.shape), (), args="zero-dim")
    assert_close("Tensor.backward", x.grad, 3.0, op="gradient", args="zero-dim x**2")
    e = torch.zeros(0, 3, dtype=torch.float64, device=device, requires_grad=True)
    (e * 2).sum().backward()
    assert_equal("Tensor.backward", tuple(e.grad.shape), (0, 3), args="empty")


def test_grad_accumulates(device, np_rng):
    """Gradients ACCUMULATE across backward calls until zeroed: two backward passes give 2x the gradient,
    after grad.zero_() the next pass gives 1x, after grad = None a fresh tensor; catches a build that
    overwrites instead of accumulating, or that ignores zero_()/None."""
    xn = np_rng.standard_normal(5)
    x = _leaf(xn, device)
    for _ in range(2):
        (x * x).sum().backward()
    assert_close("Tensor.backward", x.grad, 2 * (2 * xn), op="gradient", args="accumulated twice")
    (x.sin()).sum().backward()
    assert_close("Tensor.backward", x.grad, 4 * xn + np.cos(xn), op="gradient", args="accumulate different losses")
    x.grad.zero_()
    (x * x).sum().backward()
    assert_close("Tensor.backward", x.grad, 2 * xn, op="gradient", args="after grad.zero_()")
    x.grad = None
    (3 * x).sum().backward()
    assert_close("Tensor.backward", x.grad, np.full(5, 3.0), op="gradient", args="after grad = None")


def test_grad_accumulates_from_multiple_uses(device, np_rng):
    """A leaf used several times in one graph receives the SUM of the per-use gradients."""
    xn = np_rng.standard_normal(4)
    x = _leaf(xn, device)
    loss = (x * 2).sum() + (x ** 2).sum() + x.exp().sum()
    loss.backward()
    assert_close("Tensor.backward", x.grad, 2 + 2 * xn + np.exp(xn), op="gradient", args="three uses")


def test_grad_only_on_leaves(device, np_rng):
    """.grad is populated only on leaves with requires_grad=True: a non-leaf's .grad stays None (accessing it
    warns), a leaf with requires_grad=False gets no grad; retain_grad() keeps a non-leaf's grad."""
    xn = np_rng.standard_normal(3)
    x = _leaf(xn, device)
    c = torch.tensor(xn, device=device)            # leaf, no grad
    h = x * 2                                      # non-leaf
    k = x * 3
    k.retain_grad()
    loss = (h * h).sum() + (k * c).sum()
    loss.backward()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        hg = h.grad
    assert_equal("Tensor.grad", hg, None, args="non-leaf")
    assert_true("Tensor.grad", any("non-leaf" in str(w.message) for w in rec),
                "accessing .grad of a non-leaf must warn (UserWarning about non-leaf Tensor)")
    assert_equal("Tensor.grad", c.grad, None, args="leaf with requires_grad=False")
    assert_close("Tensor.retain_grad", k.grad, xn, op="gradient", args="d loss / d k = c")
    assert_close("Tensor.backward", x.grad, 8 * xn + 3 * xn, op="gradient")
    assert_true("Tensor.retain_grad", k.retains_grad and not h.retains_grad, "retains_grad flag wrong")


def test_retain_graph(device, np_rng):
    """Without retain_graph a second backward through the same graph raises 'Trying to backward through the
    graph a second time'; with retain_graph=True it works and accumulates; catches a build that keeps or
    frees the saved buffers at the wrong time."""
    xn = np_rng.standard_normal(3)
    x = _leaf(xn, device)
    y = (x.exp() * x).sum()     # saves tensors for backward
    y.backward(retain_graph=True)
    y.backward()
    assert_close("Tensor.backward", x.grad, 2 * (np.exp(xn) * (1 + xn)), op="gradient", args="retain_graph=True twice")
    assert_raises("Tensor.backward", RuntimeError, y.backward, match="backward through the graph a second time",
                  args="third call, graph freed")


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
def test_create_graph_second_derivative(device, np_rng):
    """create_graph=True makes x.grad differentiable: for f = sum(x**3), grad = 3x**2 and
    d/dx sum(grad * v) = 6 x v; without create_graph the grad has no grad_fn."""
    xn = np_rng.standard_normal(4)
    vn = np_rng.standard_normal(4)
    x = _leaf(xn, device)
    (x ** 3).sum().backward(create_graph=True)
    g = x.grad
    assert_true("Tensor.backward", g.requires_grad and g.grad_fn is not None,
                "create_graph=True must give a differentiable .grad")
    assert_close("Tensor.backward", g, 3 * xn ** 2, op="gradient", args="create_graph=True")
    (g2,) = torch.autograd.grad((g * torch.tensor(vn, device=device)).sum(), x)
    assert_close("Tensor.backward", g2, 6 * xn * vn, op="gradient", args="second derivative")
    x.grad = None   # break the documented param <-> grad reference cycle
    y = _leaf(xn, device)
    (y ** 3).sum().backward()
    assert_true("Tensor.backward", not y.grad.requires_grad and y.grad.grad_fn is None,
                "without create_graph the .grad must not require grad")


def test_inputs_argument(device, np_rng):
    """backward(inputs=[...]) accumulates only into the listed leaves; the others keep grad None."""
    xn, wn = np_rng.standard_normal(3), np_rng.standard_normal(3)
    x, w = _leaf(xn, device), _leaf(wn, device)
    (x * w).sum().backward(inputs=[w])
    assert_close("Tensor.backward", w.grad, xn, op="gradient", args="inputs=[w]")
    assert_equal("Tensor.backward", x.grad, None, args="inputs=[w]: x untouched")


def test_requires_grad_propagation(device):
    """Any input requiring grad -> the output requires grad and has a grad_fn; none -> neither;
    leaves have grad_fn None and is_leaf True; results of ops are not leaves."""
    a = torch.ones(2, device=device, requires_grad=True)
    b = torch.ones(2, device=device)
    assert_true("Tensor.is_leaf", a.is_leaf and b.is_leaf, "created tensors must be leaves")
    assert_equal("Tensor.grad_fn", a.grad_fn, None, args="leaf")
    c = a + b
    assert_true("Tensor.requires_grad", c.requires_grad, "a + b with a.requires_grad must require grad")
    assert_true("Tensor.is_leaf", not c.is_leaf, "result of an op on a grad tensor must not be a leaf")
    assert_equal("Tensor.grad_fn", type(c.grad_fn).__name__, "AddBackward0", args="a + b")
    assert_equal("Tensor.grad_fn", type((a * b).grad_fn).__name__, "MulBackward0", args="a * b")
    assert_equal("Tensor.grad_fn", type(a.sum().grad_fn).__name__, "SumBackward0", args="a.sum()")
    d = b * 2
    assert_true("Tensor.requires_grad", not d.requires_grad and d.grad_fn is None and d.is_leaf,
                "an op on tensors without grad must not build a graph")


def test_requires_grad_integer_error(device):
    """Only floating point and complex tensors can require gradients: an integer tensor raises."""
    assert_raises("torch.tensor", RuntimeError, torch.tensor, [1, 2], device=device, requires_grad=True,
                  match="floating point|complex", args="int64, requires_grad=True")
    t = torch.arange(3, device=device)
    assert_raises("Tensor.requires_grad_", RuntimeError, t.requires_grad_, match="floating point|complex",
                  args="int64")
    # integer outputs of differentiable inputs (argmax) do not require grad
    x = torch.randn(4, device=device, requires_grad=True)
    assert_true("torch.argmax", not x.argmax().requires_grad, "argmax of a grad tensor must not require grad")


def test_requires_grad_on_nonleaf_error(device):
    """requires_grad can only be changed on leaves: setting it False on a non-leaf raises."""
    x = torch.ones(2, device=device, requires_grad=True)
    y = x * 2

    def _set():
        y.requires_grad = False
    assert_raises("Tensor.requires_grad", RuntimeError, _set, args="non-leaf = False")


def test_requires_grad_(device, np_rng):
    """requires_grad_() turns an existing leaf into a grad leaf in place and returns self;
    requires_grad_(False) turns it off."""
    xn = np_rng.standard_normal(3)
    x = torch.tensor(xn, device=device)
    r = x.requires_grad_()
    assert_true("Tensor.requires_grad_", r is x and x.requires_grad, "requires_grad_() must set the flag and return self")
    (x * 5).sum().backward()
    assert_close("Tensor.requires_grad_", x.grad, np.full(3, 5.0), op="gradient")
    x.requires_grad_(False)
    assert_true("Tensor.requires_grad_", not x.requires_grad, "requires_grad_(False) ignored")


def test_detach(device, np_rng):
    """detach() shares storage, does not require grad and blocks gradient flow: d/dx (x * x.detach()) = x
    (not 2x); detach_() does the same in place on a non-leaf view."""
    xn = np_rng.standard_normal(4)
    x = _leaf(xn, device)
    d = x.detach()
    assert_true("Tensor.detach", not d.requires_grad and d.grad_fn is None and d.is_leaf,
                "detach() result must not require grad")
    assert_true("Tensor.detach", d.data_ptr() == x.data_ptr(), "detach() must share storage")
    (x * d).sum().backward()
    assert_close("Tensor.detach", x.grad, xn, op="gradient", args="x * x.detach()")
    x.grad = None
    y = x * 2
    z = y * 1.0
    z.detach_()
    assert_true("Tensor.detach_", not z.requires_grad and z.grad_fn is None, "detach_() must cut z from the graph")
    loss = (y * y).sum() + z.sum()
    loss.backward()
    assert_close("Tensor.detach_", x.grad, 8 * xn, op="gradient", args="z detached contributes nothing")


def test_backward_on_tensor_without_grad_raises(device):
    """backward() on a tensor that does not require grad raises 'does not require grad'."""
    t = torch.ones((), device=device)
    assert_raises("Tensor.backward", RuntimeError, t.backward, match="does not require grad", args="no grad_fn")


def test_backward_broadcast_reduces_grad(device, np_rng):
    """Broadcasting in forward sums the gradient back to the input's shape: (3,1)+(1,4) -> grads of
    shapes (3,1) and (1,4) equal to row/column sums of the upstream gradient."""
    an, bn = np_rng.standard_normal((3, 1)), np_rng.standard_normal((1, 4))
    gn = np_rng.standard_normal((3, 4))
    a, b = _leaf(an, device), _leaf(bn, device)
    ((a * b) * torch.tensor(gn, device=device)).sum().backward()
    assert_close("Tensor.backward", a.grad, (gn * bn).sum(1, keepdims=True), op="gradient", args="broadcast a")
    assert_close("Tensor.backward", b.grad, (gn * an).sum(0, keepdims=True), op="gradient", args="broadcast b")


def test_backward_noncontiguous_leaf(device, np_rng):
    """A non-contiguous (transposed) leaf gets a correct gradient of its own shape, laid out with the leaf's
    strides (AccumulateGrad's layout contract for non-overlapping dense leaves)."""
    wn = np_rng.standard_normal((4, 3))
    xn = np_rng.standard_normal((3, 2))
    w = torch.tensor(wn.T.copy(), dtype=torch.float64, device=device).t().requires_grad_()
    assert_true("Tensor.t", w.is_leaf and not w.is_contiguous(), "setup: expected a non-contiguous leaf")
    y = w @ torch.tensor(xn, device=device)
    (y.sum() + (w * w).sum()).backward()
    assert_close("Tensor.backward", w.grad, np.ones((4, 2)) @ xn.T + 2 * wn, op="gradient", args="transposed leaf")
    assert_equal("Tensor.backward", w.grad.stride(), w.stride(), args="grad strides match the leaf")


def test_grad_setter_validates(device):
    """Assigning .grad checks shape and dtype: a wrong-shaped or wrong-dtype grad raises; a right one is
    used (and accumulated into) by the next backward."""
    x = torch.ones(2, 3, dtype=torch.float64, device=device, requires_grad=True)

    def set_grad(g):
        x.grad = g
    assert_raises("Tensor.grad", RuntimeError, set_grad, torch.ones(3, 2, dtype=torch.float64, device=device),
                  match="different size|size", args="wrong shape")
    assert_raises("Tensor.grad", RuntimeError, set_grad, torch.ones(2, 3, dtype=torch.float32, device=device),
                  match="type|dtype", args="wrong dtype")
    x.grad = torch.full((2, 3), 10.0, dtype=torch.float64, device=device)
    (x * 2).sum().backward()
    assert_close("Tensor.grad", x.grad, np.full((2, 3), 12.0), op="gradient", args="accumulates into assigned grad")
