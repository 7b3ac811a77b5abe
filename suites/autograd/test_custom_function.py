"""§ 9.3 Custom autograd functions (``torch.autograd.Function``), starting from the document's ``MyReLU``.

Covers ``ctx.save_for_backward`` / ``ctx.saved_tensors``, ``.apply``, ``ctx.needs_input_grad``, ``None``
gradients for non-differentiable inputs, ``mark_non_differentiable``, ``mark_dirty``,
``set_materialize_grads``, ``once_differentiable``, the ``setup_context`` form (torch >= 2.0), non-tensor
arguments and the error paths. Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.autograd.function import once_differentiable

from harness.checks import assert_close, assert_equal, assert_raises, assert_true


class MyReLU(torch.autograd.Function):
    """The document's example (§ 9.3)."""

    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return input.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        grad_input = grad_output.clone()
        grad_input[input < 0] = 0
        return grad_input


@pytest.mark.smoke
def test_myrelu(device, dtype, np_rng):
    """MyReLU.apply: forward = max(x, 0), backward = upstream grad where x >= 0 else 0, through a chain
    (y = MyReLU(x) * w); catches a broken Function dispatch, ctx.saved_tensors or grad routing."""
    xn = np_rng.standard_normal((3, 4))
    wn = np_rng.standard_normal((3, 4))
    x = torch.tensor(xn, dtype=dtype, device=device, requires_grad=True)
    y = MyReLU.apply(x)
    assert_close("MyReLU.forward", y, np.maximum(xn, 0), op="elementwise", check_dtype=dtype, check_device=device)
    assert_true("torch.autograd.Function", y.requires_grad and type(y.grad_fn).__name__ == "MyReLUBackward",
                f"output grad_fn should be MyReLUBackward, got {type(y.grad_fn).__name__}")
    (y * torch.tensor(wn, dtype=dtype, device=device)).sum().backward()
    assert_close("MyReLU.backward", x.grad, np.where(xn < 0, 0.0, wn), op="gradient")


def test_myrelu_gradcheck(device):
    """gradcheck (float64, inputs away from 0) accepts MyReLU and a smooth custom Function; it rejects a
    Function whose backward is deliberately wrong (the checker itself works)."""
    x = (torch.rand(3, 3, dtype=torch.float64, device=device) + 0.2) * torch.tensor([1.0, -1.0, 1.0],
                                                                                     dtype=torch.float64, device=device)
    x.requires_grad_()
    assert_true("torch.autograd.gradcheck", torch.autograd.gradcheck(MyReLU.apply, (x,)), "MyReLU failed gradcheck")

    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x ** 2 * g

    class WrongCube(Cube):
        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x ** 2 * g

    assert_true("torch.autograd.gradcheck", torch.autograd.gradcheck(Cube.apply, (x,)), "Cube failed gradcheck")
    assert_true("torch.autograd.gradgradcheck", torch.autograd.gradgradcheck(Cube.apply, (x,)),
                "Cube (differentiable backward) failed gradgradcheck")
    assert_true("torch.autograd.gradcheck",
                not torch.autograd.gradcheck(WrongCube.apply, (x,), raise_exception=False),
                "gradcheck accepted a wrong backward")


class LinearFn(torch.autograd.Function):
    """y = x @ w.T + b with needs_input_grad-driven work, a non-tensor `scale` argument."""
    calls: list = []

    @staticmethod
    def forward(ctx, x, w, b, scale):
        ctx.save_for_backward(x, w)
        ctx.scale = scale
        return (x @ w.t() + b) * scale

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        LinearFn.calls.append(tuple(ctx.needs_input_grad))
        gx = gw = gb = None
        g = g * ctx.scale
        if ctx.needs_input_grad[0]:
            gx = g @ w
        if ctx.needs_input_grad[1]:
            gw = g.t() @ x
        if ctx.needs_input_grad[2]:
            gb = g.sum(0)
        return gx, gw, gb, None


def test_needs_input_grad_and_non_tensor_args(device, np_rng):
    """ctx.needs_input_grad mirrors which inputs require grad (False for the non-tensor `scale`); returning
    None for those inputs is accepted and the others get the closed-form grads of (x W^T + b) * scale."""
    xn, wn, bn = np_rng.standard_normal((2, 3)), np_rng.standard_normal((4, 3)), np_rng.standard_normal(4)
    x = torch.tensor(xn, device=device)                               # no grad
    w = torch.tensor(wn, device=device, requires_grad=True)
    b = torch.tensor(bn, device=device, requires_grad=True)
    LinearFn.calls.clear()
    y = LinearFn.apply(x, w, b, 2.5)
    assert_close("LinearFn.forward", y, (xn @ wn.T + bn) * 2.5, op="matmul")
    y.sum().backward()
    assert_equal("ctx.needs_input_grad", LinearFn.calls[-1], (False, True, True, False))
    assert_close("LinearFn.backward", w.grad, 2.5 * np.ones((2, 4)).T @ xn, op="matmul", args="w")
    assert_close("LinearFn.backward", b.grad, np.full(4, 5.0), op="gradient", args="b")
    assert_equal("LinearFn.backward", x.grad, None, args="x without requires_grad")


def test_wrong_number_of_grads_raises(device):
    """backward returning fewer gradients than forward had inputs raises
    ('returned an incorrect number of gradients'); a gradient of the wrong shape raises too."""
    class TooFew(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, g):
            return g

    class BadShape(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return g.sum(0)

    a = torch.ones(2, 3, device=device, requires_grad=True)
    b = torch.ones(2, 3, device=device, requires_grad=True)
    assert_raises("torch.autograd.Function", RuntimeError, lambda: TooFew.apply(a, b).sum().backward(),
                  match="incorrect number of gradients", args="1 grad for 2 inputs")
    assert_raises("torch.autograd.Function", RuntimeError, lambda: BadShape.apply(a).sum().backward(),
                  match="invalid gradient|shape", args="grad of wrong shape")


def test_mark_non_differentiable(device, np_rng):
    """Outputs marked non-differentiable don't require grad; the differentiable output's backward still works
    (sort-like function returning values and integer indices)."""
    class SortFn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            vals, idx = x.sort()
            ctx.mark_non_differentiable(idx)
            ctx.save_for_backward(idx)
            return vals, idx

        @staticmethod
        def backward(ctx, g_vals, g_idx):
            (idx,) = ctx.saved_tensors
            gx = torch.zeros_like(g_vals)
            gx.scatter_(0, idx, g_vals)
            return gx

    xn = np_rng.standard_normal(5)
    w = np.arange(1.0, 6.0)
    x = torch.tensor(xn, device=device, requires_grad=True)
    vals, idx = SortFn.apply(x)
    assert_true("ctx.mark_non_differentiable", not idx.requires_grad, "marked output still requires grad")
    assert_true("ctx.mark_non_differentiable", vals.requires_grad, "unmarked output lost requires_grad")
    (vals * torch.tensor(w, device=device)).sum().backward()
    expected = np.zeros(5)
    expected[np.argsort(xn)] = w
    assert_close("SortFn.backward", x.grad, expected, op="gradient")


def test_mark_dirty_inplace(device, np_rng):
    """A Function that modifies its input in place and calls ctx.mark_dirty returns that tensor; the caller's
    graph sees the new version and gradients are right (d/dx sum((2x) * 3) through an in-place mul_(3) on a
    non-leaf); applied to a leaf requiring grad, the in-place modification is rejected."""
    class MulInplace(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x.mul_(3)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 3

    xn = np_rng.standard_normal(4)
    x = torch.tensor(xn, device=device, requires_grad=True)
    h = x * 2
    out = MulInplace.apply(h)
    assert_true("ctx.mark_dirty", out is h or out.data_ptr() == h.data_ptr(), "mark_dirty output must alias input")
    assert_close("MulInplace.forward", h, 6 * xn, op="elementwise", args="input modified in place")
    assert_true("ctx.mark_dirty", type(h.grad_fn).__name__ == "MulInplaceBackward",
                f"dirty tensor's grad_fn should be rebased to MulInplaceBackward, got {type(h.grad_fn).__name__}")
    (out * out).sum().backward()
    assert_close("MulInplace.backward", x.grad, 2 * (6 * xn) * 3 * 2, op="gradient")
    leaf = torch.tensor(xn, device=device, requires_grad=True)
    assert_raises("ctx.mark_dirty", RuntimeError, MulInplace.apply, leaf, match="leaf",
                  args="leaf requiring grad modified in place")


def test_set_materialize_grads(device):
    """By default an unused output's incoming grad is materialised as zeros; with
    ctx.set_materialize_grads(False) it arrives as None."""
    seen = {}

    def make(materialize):
        class TwoOut(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.set_materialize_grads(materialize)
                return x * 2, x * 3

            @staticmethod
            def backward(ctx, g1, g2):
                seen[materialize] = (g1, g2)
                out = g1 * 2
                if g2 is not None:
                    out = out + g2 * 3
                return out
        return TwoOut

    for mat in (True, False):
        x = torch.ones(3, device=device, requires_grad=True)
        a, _ = make(mat).apply(x)
        a.sum().backward()
        assert_close("ctx.set_materialize_grads", x.grad, np.full(3, 2.0), op="gradient", args=f"{mat}")
    g1, g2 = seen[True]
    assert_true("ctx.set_materialize_grads", g2 is not None, "default must materialise unused grads as zeros")
    assert_close("ctx.set_materialize_grads", g2, np.zeros(3), op="exact", args="default True")
    assert_equal("ctx.set_materialize_grads", seen[False][1], None, args="False")


def test_once_differentiable(device):
    """@once_differentiable backward works for first order; a double backward through it raises
    ('trying to differentiate twice a function that was marked with @once_differentiable')."""
    class Sq(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        @once_differentiable
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    x = torch.tensor([1.5, -2.0], dtype=torch.float64, device=device, requires_grad=True)
    (g,) = torch.autograd.grad(Sq.apply(x).sum(), x, create_graph=True)
    assert_close("once_differentiable", g, np.array([3.0, -4.0]), op="gradient")
    assert_true("once_differentiable", not g.requires_grad, "once_differentiable backward must not be recorded")
    v = torch.tensor([1.0, 2.0], dtype=torch.float64, device=device, requires_grad=True)
    (g,) = torch.autograd.grad(Sq.apply(x), x, grad_outputs=v, create_graph=True)
    assert_close("once_differentiable", g, np.array([3.0, -8.0]), op="gradient", args="grad_outputs requiring grad")
    assert_raises("once_differentiable", RuntimeError, lambda: g.sum().backward(),
                  match="once_differentiable", args="double backward")


def test_setup_context_form(device, np_rng):
    """The torch >= 2.0 form: forward(*args) without ctx plus setup_context(ctx, inputs, output) gives the
    same values and grads (closed form of x * exp(y)), and works with torch.func.grad / vmap."""
    if not hasattr(torch.autograd.Function, "setup_context"):
        pytest.skip("torch.autograd.Function.setup_context needs torch >= 2.0")

    class MulExp(torch.autograd.Function):
        generate_vmap_rule = True

        @staticmethod
        def forward(x, y):
            return x * torch.exp(y)

        @staticmethod
        def setup_context(ctx, inputs, output):
            x, y = inputs
            ctx.save_for_backward(x, y, output)

        @staticmethod
        def backward(ctx, g):
            x, y, out = ctx.saved_tensors
            return g * torch.exp(y), g * out

    xn, yn = np_rng.standard_normal(3), np_rng.standard_normal(3)
    x = torch.tensor(xn, device=device, requires_grad=True)
    y = torch.tensor(yn, device=device, requires_grad=True)
    out = MulExp.apply(x, y)
    assert_close("Function.setup_context", out, xn * np.exp(yn), op="elementwise")
    out.sum().backward()
    assert_close("Function.setup_context", x.grad, np.exp(yn), op="gradient", args="dx")
    assert_close("Function.setup_context", y.grad, xn * np.exp(yn), op="gradient", args="dy")
    func = pytest.importorskip("torch.func", reason="torch.func needs torch >= 2.0")
    gx = func.grad(lambda a: MulExp.apply(a, torch.tensor(yn, device=device)).sum())(torch.tensor(xn, device=device))
    assert_close("torch.func.grad", gx, np.exp(yn), op="gradient", args="custom Function")
    batched = func.vmap(MulExp.apply)(torch.tensor(np.stack([xn, xn]), device=device),
                                      torch.tensor(np.stack([yn, -yn]), device=device))
    assert_close("torch.func.vmap", batched, np.stack([xn * np.exp(yn), xn * np.exp(-yn)]), op="elementwise",
                 args="generate_vmap_rule=True")


def test_function_saved_tensor_modified_raises(device):
    """A tensor saved with ctx.save_for_backward and then modified in place is detected at backward
    ('modified by an inplace operation')."""
    x = torch.ones(3, device=device, requires_grad=True)
    h = x * 2
    y = MyReLU.apply(h)
    h.add_(1)
    assert_raises("ctx.saved_tensors", RuntimeError, lambda: y.sum().backward(),
                  match="modified by an inplace operation", args="saved input bumped")


@pytest.mark.filterwarnings("ignore:.*should not be instantiated")
def test_function_called_directly_errors():
    """Calling forward through the class (MyReLU(x)) instead of .apply is an error in modern torch."""
    assert_raises("torch.autograd.Function", RuntimeError, lambda: MyReLU()(torch.ones(2)),
                  match="apply|Legacy|legacy|non-static", args="legacy call")


def test_custom_function_no_grad_inputs(device):
    """When no input requires grad, apply returns a plain tensor (no grad_fn) and forward still runs."""
    x = torch.tensor([-1.0, 2.0], device=device)
    y = MyReLU.apply(x)
    assert_true("torch.autograd.Function", not y.requires_grad and y.grad_fn is None,
                "output of a Function with no grad inputs must not require grad")
    assert_close("MyReLU.forward", y, np.array([0.0, 2.0]), op="elementwise")
