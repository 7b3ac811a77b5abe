"""§ 1 Tensors: in-place operations (the `_` suffix) and their autograd hazards, detach() and
requires_grad=False.

In-place ops return self (the same Python object), write into the existing storage, and bump the
version counter; autograd refuses in-place changes to a leaf that requires grad and detects a tensor
saved for backward that was modified afterwards. detach() shares storage and does not require grad.
Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness import dtypes
from harness.checks import assert_close, assert_equal, assert_raises, assert_true

# (method, args, NumPy oracle on the float64 values)
INPLACE = [
    ("add_", (2.0,), lambda x: x + 2.0),
    ("sub_", (1.5,), lambda x: x - 1.5),
    ("mul_", (3.0,), lambda x: x * 3.0),
    ("div_", (4.0,), lambda x: x / 4.0),
    ("pow_", (2,), lambda x: x ** 2),
    ("clamp_", (-1.0, 1.0), lambda x: np.clip(x, -1.0, 1.0)),
    ("abs_", (), np.abs),
    ("neg_", (), np.negative),
    ("exp_", (), np.exp),
    ("sqrt_", (), lambda x: np.sqrt(np.abs(x))),  # applied to abs'd input below
    ("zero_", (), np.zeros_like),
    ("fill_", (7.0,), lambda x: np.full_like(x, 7.0)),
    ("copy_", None, None),  # special-cased
]


@pytest.mark.smoke
@pytest.mark.parametrize("name,args,ref", INPLACE, ids=[c[0] for c in INPLACE])
@pytest.mark.dtypes(dtypes.FLOAT_HIGH + (torch.bfloat16,))
def test_inplace_returns_self_and_writes_storage(device, dtype, name, args, ref, np_rng):
    """`x.op_(...)` returns x itself, writes the result into x's storage (same data_ptr, seen through
    a view taken before), bumps x._version, and equals the out-of-place result. Catches in-place ops
    that allocate a new tensor, return a copy, or forget to bump the version counter."""
    x = torch.from_numpy(np_rng.uniform(-2, 2, (4, 5))).to(dtype).to(device)
    if name == "sqrt_":
        x = x.abs()
    X = x.double().cpu().numpy().copy()
    alias = x.view(-1)  # a view taken before the op must see the new values
    ptr, ver = x.data_ptr(), x._version
    if name == "copy_":
        src = torch.from_numpy(np_rng.uniform(-2, 2, (5,))).to(device)  # float64, broadcast over rows
        r = x.copy_(src)
        expected = np.broadcast_to(src.cpu().numpy(), (4, 5)).astype(np.float64)
        expected = torch.from_numpy(expected.copy()).to(dtype).double().numpy()  # copy_ casts to self's dtype
    else:
        r = getattr(x, name)(*args)
        expected = ref(X)
    assert_true(f"Tensor.{name}", r is x, "in-place op did not return self")
    assert_equal(f"Tensor.{name}", x.data_ptr(), ptr, args="storage unchanged")
    assert_equal(f"Tensor.{name}", x.dtype, dtype, args="dtype unchanged")
    assert_true(f"Tensor.{name}", x._version > ver, f"_version not bumped ({ver} -> {x._version})")
    assert_close(f"Tensor.{name}", x, expected, args="values")
    assert_close(f"Tensor.{name}", alias.reshape(4, 5), expected, args="seen through an earlier view")


def test_inplace_on_view_updates_base(device):
    """An in-place op on a slice/transpose view writes into the base tensor only at the viewed elements."""
    base = torch.zeros(3, 4, device=device)
    base[1].add_(5.0)
    base.t()[2].mul_(0.0).add_(1.0)  # column 2
    exp = np.zeros((3, 4))
    exp[1] = 5.0
    exp[:, 2] = 1.0
    assert_equal("Tensor.add_", base, exp, args="through row and column views")
    base[:, ::2] += 10
    exp[:, ::2] += 10
    assert_equal("Tensor.__iadd__", base, exp, args="strided slice")


def test_augmented_assignment_is_inplace(device):
    """`x += y`, `x *= y` on tensors modify x in place (same object and storage), unlike `x = x + y`."""
    x = torch.ones(3, device=device)
    keep, ptr = x, x.data_ptr()
    x += 2
    x *= torch.tensor([1.0, 2.0, 3.0], device=device)
    assert_true("Tensor.__iadd__", x is keep and x.data_ptr() == ptr, "augmented assignment rebinds x to a new tensor")
    assert_equal("Tensor.__imul__", keep, np.array([3.0, 6.0, 9.0]))
    y = x
    x = x + 1
    assert_true("Tensor.__add__", x is not y, "x + 1 modified x in place")
    assert_equal("Tensor.__add__", y, np.array([3.0, 6.0, 9.0]), args="original unchanged")


def test_inplace_on_leaf_requiring_grad_raises(device):
    """An in-place op on a leaf that requires grad raises RuntimeError (outside no_grad); under
    torch.no_grad() it is allowed and keeps requires_grad. Catches silent corruption of parameters."""
    w = torch.ones(3, device=device, requires_grad=True)
    assert_raises("Tensor.add_", RuntimeError, w.add_, 1.0, match="leaf|in-place", args="leaf with requires_grad")
    assert_raises("Tensor.__setitem__", RuntimeError, w.__setitem__, 0, 5.0, args="leaf with requires_grad")
    with torch.no_grad():
        w.mul_(2.0)
    assert_equal("Tensor.mul_", w.detach(), np.full(3, 2.0), args="under no_grad")
    assert_true("Tensor.mul_", w.requires_grad and w.is_leaf, "no_grad in-place changed requires_grad/is_leaf")


@pytest.mark.parametrize("op", ["exp", "sigmoid", "pow", "mul"])
def test_modified_saved_tensor_makes_backward_raise(device, op):
    """Modifying in place a tensor that autograd saved for backward makes backward() raise (version
    counter check) instead of returning wrong gradients. Catches a missing saved-tensor version check."""
    a = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64, device=device, requires_grad=True)
    x = a * 1.0  # non-leaf, so in-place ops on it are allowed
    if op in ("exp", "sigmoid"):
        y = getattr(torch, op)(x)  # saves its output y
        y2 = y * 1.0
        y.add_(1.0)
        y = y2
    elif op == "pow":
        y = x ** 2  # saves its input x
        x.add_(1.0)
    else:
        y = x * x  # saves both inputs
        x.mul_(3.0)
    assert_raises(f"torch.{op} backward", RuntimeError, y.sum().backward, match="modified by an inplace operation",
                  args="saved tensor modified in place")


def test_inplace_not_saved_backward_is_correct(device):
    """An in-place op on a tensor autograd did not save keeps gradients correct: y = x*2; y.add_(1);
    d(sum y)/dx = 2 (add_ is recorded in the graph)."""
    x = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, device=device, requires_grad=True)
    y = x * 2
    y.add_(1.0)
    y.mul_(3.0)  # mul by constant: d/dx = 6
    y.sum().backward()
    assert_close("Tensor.mul_ backward", x.grad, np.full(3, 6.0), op="gradient", args="x*2, add_(1), mul_(3)")


def test_detach(device):
    """detach() returns a tensor that shares storage with the original (writes visible both ways), has
    requires_grad=False and grad_fn None, and blocks gradient flow; modifying it in place then using the
    original's saved value makes backward raise. Catches detach that copies or keeps requires_grad."""
    a = torch.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    y = a * 2
    d = y.detach()
    assert_equal("Tensor.detach", d.requires_grad, False)
    assert_true("Tensor.detach", d.grad_fn is None, "detached tensor has a grad_fn")
    assert_true("Tensor.detach", d.data_ptr() == y.data_ptr(), "detach copied")
    d[0] = 100.0
    assert_equal("Tensor.detach", y[0].item(), 100.0, args="write through detached tensor")
    z = (a * 3).detach() * a  # only the second factor carries gradient
    z.sum().backward()
    assert_close("Tensor.detach", a.grad, np.array([3.0, 6.0, 9.0]), op="gradient", args="detached factor is a constant")
    b = torch.tensor([1.0, 2.0], device=device, requires_grad=True)
    e = b.exp()
    e.detach().zero_()  # shares e's version counter
    assert_raises("Tensor.detach", RuntimeError, e.sum().backward, args="in-place on detach() of a saved output")


def test_requires_grad_false_and_detach_(device):
    """requires_grad_(False)/requires_grad=False tensors build no graph; detach_() detaches in place."""
    a = torch.ones(2, device=device)
    assert_equal("torch.ones", a.requires_grad, False)
    r = (a * 2).sum()
    assert_true("Tensor.requires_grad", r.grad_fn is None and not r.requires_grad, "graph built from requires_grad=False inputs")
    assert_raises("Tensor.backward", RuntimeError, r.backward, args="no graph")
    w = torch.ones(2, device=device, requires_grad=True)
    assert_true("Tensor.requires_grad_", w.requires_grad_(False) is w and not w.requires_grad, "requires_grad_(False) failed")
    h = torch.ones(2, device=device, requires_grad=True) * 2
    h2 = h.detach_()
    assert_true("Tensor.detach_", h2 is h and not h.requires_grad and h.grad_fn is None, "detach_ did not detach in place")
    assert_raises("Tensor.requires_grad_", RuntimeError, torch.tensor([1, 2], device=device).requires_grad_,
                  args="integer tensors cannot require grad")


@pytest.mark.dtypes(dtypes.FLOAT_HIGH)
def test_out_parameter(device, dtype, np_rng):
    """out= writes into the given tensor (same storage when the shape fits) and returns it."""
    a = torch.from_numpy(np_rng.standard_normal((3, 4))).to(dtype).to(device)
    out = torch.empty(3, 4, dtype=dtype, device=device)
    ptr = out.data_ptr()
    r = torch.mul(a, a, out=out)
    assert_true("torch.mul", r is out and out.data_ptr() == ptr, "out= not honoured")
    A = a.cpu().double().numpy()
    assert_close("torch.mul", out, A * A, args="out=")
    r = torch.exp(a, out=out)
    assert_close("torch.exp", out, np.exp(A), args="out=")


# out-of-place ops: none may write into its inputs or bump their version counter
PURE_OPS = {
    "add": lambda a, b: torch.add(a, b, alpha=2), "mul": lambda a, b: a * b, "div": lambda a, b: torch.div(a, b, rounding_mode="floor"),
    "exp": lambda a, b: torch.exp(a), "clamp": lambda a, b: torch.clamp(a, -0.5, 0.5), "round": lambda a, b: torch.round(a),
    "where": lambda a, b: torch.where(a > 0, a, b), "matmul": lambda a, b: a @ b.t(), "sum": lambda a, b: a.sum(1),
    "cumsum": lambda a, b: torch.cumsum(a, 0), "sort": lambda a, b: torch.sort(a, 1), "topk": lambda a, b: torch.topk(a, 2),
    "unique": lambda a, b: torch.unique(a), "cat": lambda a, b: torch.cat([a, b]), "flip": lambda a, b: torch.flip(a, (0,)),
    "masked_fill": lambda a, b: a.masked_fill(b > 0, 0.0), "index_select": lambda a, b: a.index_select(0, torch.tensor([1, 0], device=a.device)),
    "scatter": lambda a, b: torch.scatter(a, 1, torch.zeros(3, 1, dtype=torch.int64, device=a.device), b[:, :1]),
    "index_put": lambda a, b: torch.index_put(a, (torch.tensor([0, 0], device=a.device),), b[0], accumulate=True),
    "clone": lambda a, b: a.clone(), "contiguous": lambda a, b: a.t().contiguous(), "softmax": lambda a, b: torch.softmax(a, 1),
    "std": lambda a, b: torch.std(a, 0), "sigmoid": lambda a, b: torch.sigmoid(a), "maximum": lambda a, b: torch.maximum(a, b),
}


@pytest.mark.parametrize("op", sorted(PURE_OPS))
def test_out_of_place_leaves_inputs_unchanged(device, op, np_rng):
    """Out-of-place ops leave their inputs' values and _version untouched, and two calls in a row give
    identical results (no hidden state, no reuse of a buffer the caller still holds). Catches a kernel
    that computes in place on its input or returns a cached/stale buffer."""
    a = torch.from_numpy(np_rng.uniform(-2, 2, (3, 4))).float().to(device)
    b = torch.from_numpy(np_rng.uniform(-2, 2, (3, 4))).float().to(device)
    A, B = a.cpu().numpy().copy(), b.cpu().numpy().copy()
    va, vb = a._version, b._version
    r1 = PURE_OPS[op](a, b)
    first = [t.cpu().clone() for t in (r1 if isinstance(r1, tuple) else (r1,))]
    r2 = PURE_OPS[op](a, b)
    assert_equal(f"torch.{op}", a, A, args="first input unchanged")
    assert_equal(f"torch.{op}", b, B, args="second input unchanged")
    assert_equal(f"torch.{op}", (a._version, b._version), (va, vb), args="input _version unchanged")
    for x, y in zip(first, r2 if isinstance(r2, tuple) else (r2,)):
        assert_equal(f"torch.{op}", y, x.numpy(), args="second call equals first")
    if not isinstance(r1, tuple):
        assert_true(f"torch.{op}", r1.data_ptr() != a.data_ptr() or r1.numel() == 0, "result aliases the input")
