"""§ 1 Tensors: broadcasting rules for binary ops (align trailing dims, size 1 stretches, missing
leading dims are 1), their errors, in-place ops that cannot broadcast self, broadcast_to /
broadcast_tensors / broadcast_shapes, and Hypothesis properties over random shapes against NumPy.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from harness.checks import assert_close, assert_equal, assert_raises, assert_true

# (shape_a, shape_b, broadcast shape or None for an error), written from the documented rule
CASES = [
    ((5, 3, 4, 1), (3, 1, 1), (5, 3, 4, 1)),
    ((5, 1, 4, 1), (3, 1, 1), (5, 3, 4, 1)),
    ((4,), (3, 1), (3, 4)),
    ((), (2, 3), (2, 3)),
    ((1,), (0,), (0,)),
    ((2, 0, 3), (1, 3), (2, 0, 3)),
    ((1, 1), (1,), (1, 1)),
    ((8, 1, 6, 1), (7, 1, 5), (8, 7, 6, 5)),
    ((5, 2, 4, 1), (3, 1, 1), None),
    ((3,), (4,), None),
    ((2, 3), (3, 2), None),
    ((0,), (2,), None),
]


@pytest.mark.smoke
def test_broadcast_binary_shapes_and_values(device, np_rng):
    """Binary ops broadcast per the documented rule (shape and values match NumPy) and raise
    RuntimeError for incompatible shapes; catches left-aligned dims, a size-1 dim that is not stretched,
    or mismatched shapes silently accepted."""
    for sa, sb, out in CASES:
        a = torch.from_numpy(np_rng.standard_normal(sa)).to(device)
        bb = torch.from_numpy(np_rng.standard_normal(sb)).to(device)
        if out is None:
            assert_raises("torch.add", RuntimeError, torch.add, a, bb, args=f"{sa} + {sb}")
            assert_raises("torch.broadcast_shapes", RuntimeError, torch.broadcast_shapes, sa, sb, args=f"{sa}, {sb}")
            continue
        A, B = a.cpu().numpy(), bb.cpu().numpy()
        assert_equal("torch.broadcast_shapes", tuple(torch.broadcast_shapes(sa, sb)), out, args=f"{sa}, {sb}")
        for api, fn, ref in [("torch.add", torch.add, np.add), ("torch.mul", torch.mul, np.multiply),
                             ("torch.maximum", torch.maximum, np.maximum), ("torch.gt", torch.gt, np.greater)]:
            got = fn(a, bb)
            assert_equal(api, tuple(got.shape), out, args=f"{sa} op {sb}")
            assert_close(api, got, ref(A, B), args=f"{sa} op {sb}")
            assert_close(api, fn(bb, a), ref(B, A), args=f"{sb} op {sa} (swapped)")


def test_broadcast_scalar_and_zero_dim(device):
    """A Python scalar and a zero-dim tensor broadcast to any shape, including empty."""
    x = torch.arange(6.0, device=device).reshape(2, 3)
    assert_close("torch.add", x + torch.tensor(1.5, device=device), np.arange(6.0).reshape(2, 3) + 1.5, args="zero-dim other")
    e = torch.empty(0, 3, device=device) * 2
    assert_equal("torch.mul", tuple(e.shape), (0, 3), args="empty * scalar")


def test_inplace_cannot_broadcast_self(device):
    """In-place ops may broadcast `other` to self's shape but never change self's shape: a (3,) tensor
    add_ a (2, 3) raises while (2, 3).add_((3,)) works. Catches an in-place op that resizes self."""
    small = torch.zeros(3, device=device)
    big = torch.ones(2, 3, device=device)
    assert_raises("Tensor.add_", RuntimeError, small.add_, big, args="(3,) += (2,3)")
    assert_raises("Tensor.mul_", RuntimeError, torch.ones(3, 1, device=device).mul_, torch.ones(1, 4, device=device), args="(3,1) *= (1,4)")
    r = big.add_(torch.tensor([1.0, 2.0, 3.0], device=device))
    assert_equal("Tensor.add_", r, np.array([[2.0, 3.0, 4.0]] * 2), args="(2,3) += (3,)")
    assert_equal("Tensor.add_", tuple(small.shape), (3,), args="self shape unchanged after failed op")
    out = torch.empty(3, device=device)
    with pytest.warns(UserWarning):
        torch.add(big, big, out=out)  # out= of the wrong (non-empty) shape is resized with a warning
    assert_equal("torch.add", tuple(out.shape), (2, 3), args="out= resized to the broadcast shape")


def test_broadcast_to_and_tensors(device):
    """broadcast_to returns a stride-0 view with NumPy's values; broadcast_tensors returns views of the
    common shape; an impossible target raises."""
    x = torch.arange(3.0, device=device)
    b = torch.broadcast_to(x, (4, 3))
    assert_equal("torch.broadcast_to", b, np.broadcast_to(np.arange(3.0), (4, 3)))
    assert_equal("torch.broadcast_to", b.stride(), (0, 1), args="stride 0")
    assert_true("torch.broadcast_to", b.data_ptr() == x.data_ptr(), "broadcast_to copied")
    p, q = torch.broadcast_tensors(x, torch.zeros(2, 1, device=device))
    assert_equal("torch.broadcast_tensors", (tuple(p.shape), tuple(q.shape)), ((2, 3), (2, 3)))
    assert_true("torch.broadcast_tensors", p.data_ptr() == x.data_ptr(), "broadcast_tensors copied")
    assert_raises("torch.broadcast_to", RuntimeError, torch.broadcast_to, x, (3, 2), args="(3,) -> (3,2)")


def test_broadcast_backward_reduces(device):
    """The gradient of a broadcast operand is summed over the broadcast dims back to its own shape."""
    a = torch.ones(3, 1, dtype=torch.float64, device=device, requires_grad=True)
    bb = torch.arange(4.0, dtype=torch.float64, device=device).requires_grad_()
    (a * bb).sum().backward()
    assert_equal("torch.mul backward", tuple(a.grad.shape), (3, 1))
    assert_close("torch.mul backward", a.grad, np.full((3, 1), 6.0), op="gradient", args="grad of (3,1) operand")
    assert_close("torch.mul backward", bb.grad, np.full(4, 3.0), op="gradient", args="grad of (4,) operand")


@st.composite
def _broadcastable(draw):
    """Two shapes that broadcast: a base shape, then each operand drops leading dims and sets some to 1."""
    base = draw(st.lists(st.integers(0, 4), min_size=0, max_size=4))
    shapes = []
    for _ in range(2):
        drop = draw(st.integers(0, len(base)))
        s = [d if not draw(st.booleans()) else 1 for d in base[drop:]]
        shapes.append(tuple(s))
    return shapes[0], shapes[1]


_DT = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64}


# The `device` fixture is a plain string parameter, safe to reuse across examples.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(shapes=_broadcastable(), dt=st.sampled_from(sorted(_DT)), seed=st.integers(0, 2**31 - 1),
       transpose=st.booleans())
def test_broadcast_property(device, shapes, dt, seed, transpose):
    """Property: for random broadcastable shapes and dtypes, add/mul/maximum/where equal NumPy's
    results and shape, also with a transposed operand; catches broadcasting bugs in rare shape
    combinations (zero sizes, many size-1 dims, mismatched ranks)."""
    sa, sb = shapes
    note(f"shapes={sa}, {sb} dtype={dt} seed={seed} transpose={transpose}")
    rng = np.random.default_rng(seed)
    A = rng.integers(-9, 10, size=sa).astype(np.float64)
    B = rng.integers(-9, 10, size=sb).astype(np.float64)
    a = torch.from_numpy(A).to(_DT[dt]).to(device)
    bb = torch.from_numpy(B).to(_DT[dt]).to(device)
    if transpose and a.dim() >= 2:
        a = a.transpose(0, -1).contiguous().transpose(0, -1)  # same values, transposed strides
    exp_shape = np.broadcast_shapes(sa, sb)
    for api, got, ref in [("torch.add", a + bb, A + B), ("torch.mul", a * bb, A * B),
                          ("torch.maximum", torch.maximum(a, bb), np.maximum(A, B)),
                          ("torch.where", torch.where(a > bb, a, bb), np.where(A > B, A, B))]:
        assert_equal(api, tuple(got.shape), exp_shape, args=f"{sa}, {sb}")
        assert_equal(api, got, ref, args=f"{sa}, {sb}, {dt}")
