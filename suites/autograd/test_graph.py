"""§ 2 Autograd: the recorded graph itself: ``grad_fn.next_functions``, saved tensors and their release
after backward, version counters and in-place checks, ``torch.autograd.backward`` with several roots,
gradient flow through views and in-place ops on views, and complex autograd (conjugate Wirtinger).

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_raises, assert_true


def _name(node):
    return None if node is None else type(node).__name__


@pytest.mark.smoke
def test_next_functions_structure(device):
    """y = a*b + c*d: AddBackward0 -> (MulBackward0, MulBackward0); leaves requiring grad end in
    AccumulateGrad nodes whose .variable is the leaf; a leaf without grad is (None, 0)."""
    a, b, c = (torch.ones(2, device=device, requires_grad=True) for _ in range(3))
    d = torch.ones(2, device=device)
    y = a * b + c * d
    root = y.grad_fn
    assert_equal("grad_fn.name", root.name(), "AddBackward0")
    nf = root.next_functions
    assert_equal("grad_fn.next_functions", [_name(n) for n, _ in nf], ["MulBackward0", "MulBackward0"])
    left = nf[0][0].next_functions
    assert_equal("grad_fn.next_functions", [_name(n) for n, _ in left], ["AccumulateGrad", "AccumulateGrad"])
    assert_true("AccumulateGrad.variable", left[0][0].variable is a and left[1][0].variable is b,
                "AccumulateGrad nodes must point at the leaves a, b in argument order")
    right = nf[1][0].next_functions
    assert_equal("grad_fn.next_functions", (_name(right[0][0]), right[0][1]), ("AccumulateGrad", 0), args="c")
    assert_equal("grad_fn.next_functions", right[1][0], None, args="leaf without requires_grad")
    assert_true("AccumulateGrad.variable", right[0][0].variable is c, "AccumulateGrad must point at c")


def test_multi_output_node_edges(device, np_rng):
    """A node with several outputs (unbind) is referenced with the right output index, and grads from
    different outputs land in the right slices."""
    xn = np_rng.standard_normal((3, 2))
    x = torch.tensor(xn, dtype=torch.float64, device=device, requires_grad=True)
    r0, r1, r2 = x.unbind(0)
    y = r2 * 5 + r0
    mul_edges = y.grad_fn.next_functions[0][0].next_functions
    add_edges = y.grad_fn.next_functions
    assert_equal("grad_fn.next_functions", (_name(mul_edges[0][0]), mul_edges[0][1]), ("UnbindBackward0", 2),
                 args="r2 is output 2 of unbind")
    assert_equal("grad_fn.next_functions", (_name(add_edges[1][0]), add_edges[1][1]), ("UnbindBackward0", 0),
                 args="r0 is output 0 of unbind")
    assert_true("grad_fn.next_functions", mul_edges[0][0] is add_edges[1][0], "both edges must share one unbind node")
    y.sum().backward()
    expected = np.zeros((3, 2))
    expected[0] = 1.0
    expected[2] = 5.0
    assert_close("torch.unbind.backward", x.grad, expected, op="gradient")


def test_saved_tensors_freed_after_backward(device, np_rng):
    """Saved tensors are exposed as grad_fn._saved_*, equal the forward values, and are released by
    backward (accessing them afterwards raises); with retain_graph=True they stay available."""
    xn = np_rng.standard_normal(3)
    x = torch.tensor(xn, dtype=torch.float64, device=device, requires_grad=True)
    y = x.exp()
    assert_close("grad_fn._saved_result", y.grad_fn._saved_result, np.exp(xn), op="elementwise")
    m = x * y
    assert_true("grad_fn._saved_self", m.grad_fn._saved_self is x or
                torch.equal(m.grad_fn._saved_self, x), "MulBackward0 must save its inputs")
    y.sum().backward(retain_graph=True)
    assert_close("grad_fn._saved_result", y.grad_fn._saved_result, np.exp(xn), op="elementwise",
                 args="after retain_graph=True")
    y.sum().backward()
    assert_raises("grad_fn._saved_result", RuntimeError, lambda: y.grad_fn._saved_result,
                  match="freed|second time", args="after backward")


def test_version_counter_and_inplace_check(device, np_rng):
    """In-place ops bump Tensor._version; a tensor saved for backward then modified in place is detected at
    backward ('modified by an inplace operation ... is at version N; expected version M')."""
    xn = np_rng.standard_normal(3)
    x = torch.tensor(xn, dtype=torch.float64, device=device, requires_grad=True)
    h = x * 2
    v0 = h._version
    y = h.sin()             # saves h
    h.add_(1)
    assert_equal("Tensor._version", h._version, v0 + 1, args="after add_")
    assert_raises("Tensor.backward", RuntimeError, lambda: y.sum().backward(),
                  match="modified by an inplace operation", args="saved input modified")
    # an in-place op on a tensor that is NOT saved (add does not save its inputs) is fine
    g = x * 2
    z = g + 1
    g.mul_(3)
    z.sum().backward()
    assert_close("Tensor.backward", x.grad, np.full(3, 2.0), op="gradient", args="unsaved input modified")
    # output of exp saved: exp_() on its result invalidates it
    e = x.exp()
    w = e.exp()
    e.mul_(1.0)
    assert_raises("Tensor.backward", RuntimeError, lambda: w.sum().backward(),
                  match="modified by an inplace operation", args="saved output modified")


def test_inplace_on_leaf_view_raises(device):
    """An in-place write into a view of a leaf that requires grad raises ('a view of a leaf Variable that
    requires grad is being used in an in-place operation')."""
    x = torch.ones(2, 3, device=device, requires_grad=True)

    def write():
        x[0] = 1.0
    assert_raises("Tensor.__setitem__", RuntimeError, write, match="leaf Variable", args="leaf view")


def test_multiple_roots_backward(device, np_rng):
    """torch.autograd.backward([y1, y2], grad_tensors=[g1, g2]) accumulates J1^T g1 + J2^T g2 into x.grad."""
    xn = np_rng.standard_normal(3)
    g1, g2 = np_rng.standard_normal(3), np.array(1.7)
    x = torch.tensor(xn, dtype=torch.float64, device=device, requires_grad=True)
    y1 = x.sin()
    y2 = (x ** 2).sum()
    torch.autograd.backward([y1, y2], grad_tensors=[torch.tensor(g1, device=device), torch.tensor(g2, device=device)])
    assert_close("torch.autograd.backward", x.grad, np.cos(xn) * g1 + 1.7 * 2 * xn, op="gradient")
    x.grad = None
    torch.autograd.backward([x.exp().sum(), (x * 3).sum()])
    assert_close("torch.autograd.backward", x.grad, np.exp(xn) + 3, op="gradient", args="scalar roots")


def test_inplace_on_view_gradient(device, np_rng):
    """In-place ops through views are recorded on the base (CopySlices): for b = x.clone(); b[:, 0].mul_(2);
    loss = sum(b * w), d/dx = w with column 0 doubled; the base's values reflect the view's update."""
    xn, wn = np_rng.standard_normal((3, 4)), np_rng.standard_normal((3, 4))
    x = torch.tensor(xn, dtype=torch.float64, device=device, requires_grad=True)
    b = x.clone()
    b[:, 0].mul_(2)
    expected_b = xn.copy()
    expected_b[:, 0] *= 2
    assert_close("Tensor.mul_", b, expected_b, op="elementwise", args="through view")
    assert_equal("grad_fn", _name(b.grad_fn), "CopySlices", args="base after in-place on view")
    (b * torch.tensor(wn, device=device)).sum().backward()
    expected = wn.copy()
    expected[:, 0] *= 2
    assert_close("Tensor.backward", x.grad, expected, op="gradient", args="in-place on view")


def test_view_then_inplace_base(device, np_rng):
    """A view taken before an in-place update of its base sees the update and its grad_fn is regenerated:
    v = b[1]; b.exp_(); loss = sum(v * 3) -> d/dx[1] = 3 exp(x[1]), 0 elsewhere."""
    xn = np_rng.standard_normal((2, 3))
    x = torch.tensor(xn, dtype=torch.float64, device=device, requires_grad=True)
    b = x * 1.0
    v = b[1]
    b.exp_()
    assert_close("Tensor.exp_", v, np.exp(xn[1]), op="elementwise", args="view sees base update")
    (v * 3).sum().backward()
    expected = np.zeros((2, 3))
    expected[1] = 3 * np.exp(xn[1])
    assert_close("Tensor.backward", x.grad, expected, op="gradient", args="view of in-place updated base")


def test_view_ops_gradient(device, np_rng):
    """Gradients flow through view ops (view, t, narrow, diagonal, unsqueeze, as_strided-like slicing)."""
    xn = np_rng.standard_normal((4, 4))
    x = torch.tensor(xn, dtype=torch.float64, device=device, requires_grad=True)
    loss = (x.view(16)[::3] ** 2).sum() + x.t().narrow(0, 1, 2).sum() * 2 + x.diagonal().unsqueeze(0).sum() * 5
    loss.backward()
    exp = np.zeros(16)
    exp[::3] = 2 * xn.reshape(16)[::3]
    exp = exp.reshape(4, 4)
    exp[:, 1:3] += 2
    exp[np.arange(4), np.arange(4)] += 5
    assert_close("Tensor.view.backward", x.grad, exp, op="gradient")


def test_complex_autograd_convention(device, np_rng):
    """Complex autograd follows the conjugate Wirtinger convention: for a real loss L(z), z.grad equals
    dL/dRe(z) + i dL/dIm(z) (e.g. |z|^2 -> 2z, Re(w z) -> conj(w)); checked against NumPy finite differences
    on the real and imaginary parts."""
    zn = np_rng.standard_normal(3) + 1j * np_rng.standard_normal(3)
    wn = np_rng.standard_normal(3) + 1j * np_rng.standard_normal(3)
    cases = [
        ("abs2", lambda z: (z * z.conj()).real.sum(), lambda z: (np.abs(z) ** 2).sum()),
        ("re_wz", lambda z: (torch.tensor(wn, device=device) * z).real.sum(), lambda z: (wn * z).real.sum()),
        ("abs", lambda z: z.abs().sum(), lambda z: np.abs(z).sum()),
        ("exp_imag", lambda z: z.exp().imag.sum(), lambda z: np.exp(z).imag.sum()),
        ("angle_sq", lambda z: (z * z).real.sum() + z.imag.pow(3).sum(), lambda z: (z * z).real.sum() + (z.imag ** 3).sum()),
    ]
    h = 1e-6
    for name, tf, nf in cases:
        z = torch.tensor(zn, dtype=torch.complex128, device=device, requires_grad=True)
        tf(z).backward()
        fd = np.zeros(3, dtype=np.complex128)
        for k in range(3):
            e = np.zeros(3)
            e[k] = 1
            dre = (nf(zn + h * e) - nf(zn - h * e)) / (2 * h)
            dim = (nf(zn + 1j * h * e) - nf(zn - 1j * h * e)) / (2 * h)
            fd[k] = dre + 1j * dim
        # central finite differences (h=1e-6) in float64: ~1e-9 error; 1e-6 still rejects a conjugated grad
        assert_close("torch.autograd (complex)", z.grad, fd, op="gradient", rtol=1e-6, atol=1e-6, args=name)
    z = torch.tensor(zn, dtype=torch.complex128, device=device, requires_grad=True)
    (z * z.conj()).real.sum().backward()
    assert_close("torch.autograd (complex)", z.grad, 2 * zn, op="gradient", args="|z|^2 closed form 2z")


def test_complex_backward_needs_real_scalar(device):
    """backward() on a complex scalar output raises ('grad can be implicitly created only for real scalar
    outputs')."""
    z = torch.tensor([1 + 1j], dtype=torch.complex128, device=device, requires_grad=True)
    assert_raises("Tensor.backward", RuntimeError, lambda: (z * 2).sum().backward(),
                  match="real scalar", args="complex scalar")


def test_gradient_edge_and_unreachable(device, np_rng):
    """Inputs not on any path from the outputs get no grad; a leaf reachable only through a detached branch
    gets None; a tensor reached through two paths sums both."""
    xn = np_rng.standard_normal(3)
    x = torch.tensor(xn, dtype=torch.float64, device=device, requires_grad=True)
    u = torch.tensor(xn, dtype=torch.float64, device=device, requires_grad=True)
    a = x * 2
    y = a.sin() + a.detach() * (u.detach() ** 2) + a * 3
    y.sum().backward()
    assert_equal("Tensor.backward", u.grad, None, args="only reached through detach")
    assert_close("Tensor.backward", x.grad, 2 * np.cos(2 * xn) + 6, op="gradient", args="two live paths")

