"""§ 1 Tensors: `@` / matmul and the product family (mm, bmm, mv, dot, vdot, outer, addmm, addmv,
baddbmm, einsum) against NumPy float64 products of the same (dtype-rounded) inputs.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness import dtypes
from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from harness.checks import to_numpy as _ref  # float64/complex128/int copy of a tensor's values

MM_DTYPES = dtypes.FLOATING + dtypes.COMPLEX
NAN = float("nan")


def _rand(np_rng, shape, dtype, device):
    x = np_rng.standard_normal(shape)
    if dtype.is_complex:
        x = x + 1j * np_rng.standard_normal(shape)
    return torch.from_numpy(x).to(dtype).to(device)


# (shape_a, shape_b, expected result shape): every documented dimension case of torch.matmul
MATMUL_CASES = [
    ((5,), (5,), ()),                       # 1D . 1D -> dot, zero-dim
    ((3, 5), (5, 4), (3, 4)),               # 2D . 2D -> mm
    ((5,), (5, 4), (4,)),                   # 1D . 2D -> 1 prepended then removed
    ((3, 5), (5,), (3,)),                   # 2D . 1D -> mv
    ((2, 3, 5), (5,), (2, 3)),              # batched . 1D
    ((5,), (2, 5, 4), (2, 4)),              # 1D . batched
    ((2, 3, 5), (2, 5, 4), (2, 3, 4)),      # bmm-like
    ((2, 1, 3, 5), (4, 5, 6), (2, 4, 3, 6)),  # broadcast batch dims
    ((2, 3, 5), (5, 4), (2, 3, 4)),         # batched . 2D broadcasts the matrix
    ((3, 5), (2, 5, 4), (2, 3, 4)),         # 2D . batched
]


@pytest.mark.smoke
@pytest.mark.dtypes(MM_DTYPES)
def test_matmul_dim_cases(device, dtype, np_rng):
    """torch.matmul / `@` for every documented dimension case (1D.1D, 2D.1D, 1D.2D, batched with
    broadcasting) gives NumPy's result and shape; catches a wrong squeeze of the prepended/appended 1,
    broken batch broadcasting, and a wrong result dtype."""
    for sa, sb, out_shape in MATMUL_CASES:
        a, bb = _rand(np_rng, sa, dtype, device), _rand(np_rng, sb, dtype, device)
        expected = np.matmul(_ref(a), _ref(bb))
        got = torch.matmul(a, bb)
        assert_equal("torch.matmul", tuple(got.shape), out_shape, args=f"{sa} @ {sb}")
        assert_close("torch.matmul", got, expected, op="matmul", check_dtype=dtype, args=f"{sa} @ {sb}")
        assert_close("operator @", a @ bb, expected, op="matmul", args=f"{sa} @ {sb}")


@pytest.mark.dtypes(dtypes.FLOAT_HIGH + dtypes.FLOAT_LOW)
def test_matmul_noncontiguous(device, dtype, np_rng):
    """matmul of transposed, strided (step 2) and expanded operands equals the contiguous product;
    catches kernels that assume row-major contiguous inputs (wrong leading dimension / transpose flag)."""
    base_a = _rand(np_rng, (12, 7), dtype, device)
    base_b = _rand(np_rng, (9, 12), dtype, device)
    cases = {
        "a.t() @ b.t()": (base_a.t(), base_b.t()),            # (7,12) @ (12,9)
        "strided rows": (base_a[::2].t(), base_b[:, ::2].t()),  # (7,6) @ (6,9)
        "column slice": (base_b[:, 1:8], base_a[1:8]),          # (9,7) @ (7,7)
    }
    for name, (a, bb) in cases.items():
        assert_true("torch.matmul", not (a.is_contiguous() and bb.is_contiguous()), "test operands are contiguous", args=name)
        assert_close("torch.matmul", a @ bb, _ref(a) @ _ref(bb), op="matmul", args=name)
    v = _rand(np_rng, (7,), dtype, device)
    e = v.unsqueeze(0).expand(4, 7)  # stride 0 rows
    assert_close("torch.matmul", e @ base_a.t(), _ref(e) @ _ref(base_a).T, op="matmul", args="expanded (stride 0)")
    bt = _rand(np_rng, (3, 5, 4), dtype, device).transpose(1, 2)  # batched, transposed inner dims
    ct = _rand(np_rng, (3, 5, 2), dtype, device)
    assert_close("torch.bmm", torch.bmm(bt, ct), np.matmul(_ref(bt), _ref(ct)), op="matmul", args="transposed batch")


def test_matmul_errors(device):
    """Mismatched inner dimensions, non-broadcastable batch dims and zero-dim operands raise."""
    a = torch.ones(3, 4, device=device)
    assert_raises("torch.matmul", RuntimeError, torch.matmul, a, torch.ones(5, 2, device=device), args="(3,4) @ (5,2)")
    assert_raises("torch.matmul", RuntimeError, torch.matmul, torch.ones(4, device=device), torch.ones(5, device=device), args="(4,) @ (5,)")
    assert_raises("torch.matmul", RuntimeError, torch.matmul, torch.ones(2, 3, 4, device=device),
                  torch.ones(3, 4, 5, device=device), args="batch 2 vs 3")
    assert_raises("torch.matmul", RuntimeError, torch.matmul, torch.tensor(2.0, device=device), a, args="zero-dim operand")
    assert_raises("torch.mm", RuntimeError, torch.mm, torch.ones(2, 3, 4, device=device), a, args="3D input")
    assert_raises("torch.mm", RuntimeError, torch.mm, a, torch.ones(3, 4, device=device), args="(3,4) @ (3,4)")
    assert_raises("torch.bmm", RuntimeError, torch.bmm, torch.ones(2, 3, 4, device=device),
                  torch.ones(1, 4, 5, device=device), args="bmm does not broadcast batch")
    assert_raises("torch.bmm", RuntimeError, torch.bmm, a, a.t(), args="2D input")
    assert_raises("torch.mv", RuntimeError, torch.mv, a, torch.ones(3, device=device), args="(3,4) . (3,)")
    assert_raises("torch.dot", RuntimeError, torch.dot, torch.ones(3, device=device), torch.ones(3, 1, device=device), args="2D operand")
    assert_raises("torch.dot", RuntimeError, torch.dot, torch.ones(3, device=device),
                  torch.ones(3, dtype=torch.float64, device=device), args="float32 . float64")
    assert_raises("torch.matmul", RuntimeError, torch.matmul, a, torch.ones(4, 2, dtype=torch.float64, device=device),
                  args="float32 @ float64")


@pytest.mark.dtypes(MM_DTYPES)
def test_mm_bmm_mv(device, dtype, np_rng):
    """mm (2D), bmm (3D, equal batch) and mv (matrix-vector) equal NumPy's products."""
    a, bb = _rand(np_rng, (6, 9), dtype, device), _rand(np_rng, (9, 4), dtype, device)
    assert_close("torch.mm", torch.mm(a, bb), _ref(a) @ _ref(bb), op="matmul", check_dtype=dtype)
    x, y = _rand(np_rng, (3, 6, 9), dtype, device), _rand(np_rng, (3, 9, 5), dtype, device)
    got = torch.bmm(x, y)
    assert_equal("torch.bmm", tuple(got.shape), (3, 6, 5))
    assert_close("torch.bmm", got, np.matmul(_ref(x), _ref(y)), op="matmul")
    v = _rand(np_rng, (9,), dtype, device)
    assert_close("torch.mv", torch.mv(a, v), _ref(a) @ _ref(v), op="matmul")
    assert_close("Tensor.mm", a.mm(bb), _ref(a) @ _ref(bb), op="matmul", args="method form")


@pytest.mark.dtypes(dtypes.FLOATING + dtypes.COMPLEX)
def test_dot_vdot_outer(device, dtype, np_rng):
    """dot = sum(a*b) without conjugation; vdot conjugates its first argument; outer(a, b)[i,j] = a[i]*b[j];
    catches a vdot that conjugates the wrong argument (or none) and a transposed outer."""
    a, bb = _rand(np_rng, (17,), dtype, device), _rand(np_rng, (17,), dtype, device)
    A, B = _ref(a), _ref(bb)
    d = torch.dot(a, bb)
    assert_equal("torch.dot", tuple(d.shape), ())
    assert_close("torch.dot", d, np.dot(A, B), op="matmul", check_dtype=dtype)
    assert_close("torch.inner", torch.inner(a, bb), np.inner(A, B), op="matmul")
    assert_close("torch.vdot", torch.vdot(a, bb), np.vdot(A, B), op="matmul")
    c = _rand(np_rng, (5,), dtype, device)
    o = torch.outer(a, c)
    assert_equal("torch.outer", tuple(o.shape), (17, 5))
    assert_close("torch.outer", o, np.outer(A, _ref(c)), op="elementwise")
    assert_close("torch.ger", torch.ger(a, c) if hasattr(torch, "ger") else o, np.outer(A, _ref(c)), op="elementwise")


@pytest.mark.dtypes(dtypes.FLOATING)
def test_addmm_addmv_baddbmm(device, dtype, np_rng):
    """addmm = beta*input + alpha*(m1 @ m2) with input broadcast; beta=0 ignores NaN/inf in input
    (documented); defaults beta=alpha=1. Same for addmv and baddbmm. Catches swapped alpha/beta and NaN
    leaking through beta=0."""
    inp = _rand(np_rng, (4,), dtype, device)  # broadcasts over rows
    m1, m2 = _rand(np_rng, (3, 8), dtype, device), _rand(np_rng, (8, 4), dtype, device)
    I, P = _ref(inp), _ref(m1) @ _ref(m2)
    assert_close("torch.addmm", torch.addmm(inp, m1, m2), I + P, op="matmul", args="defaults")
    assert_close("torch.addmm", torch.addmm(inp, m1, m2, beta=0.5, alpha=2.0), 0.5 * I + 2.0 * P, op="matmul",
                 args="beta=0.5, alpha=2")
    bad = torch.full((3, 4), NAN, dtype=dtype, device=device)
    bad[0, 0] = float("inf")
    assert_close("torch.addmm", torch.addmm(bad, m1, m2, beta=0), P, op="matmul", args="beta=0 ignores NaN input")
    v = _rand(np_rng, (8,), dtype, device)
    iv = _rand(np_rng, (3,), dtype, device)
    assert_close("torch.addmv", torch.addmv(iv, m1, v, beta=2.0, alpha=-1.0), 2.0 * _ref(iv) - _ref(m1) @ _ref(v),
                 op="matmul", args="beta=2, alpha=-1")
    b1, b2 = _rand(np_rng, (2, 3, 5), dtype, device), _rand(np_rng, (2, 5, 4), dtype, device)
    ib = _rand(np_rng, (2, 3, 4), dtype, device)
    assert_close("torch.baddbmm", torch.baddbmm(ib, b1, b2, beta=0.25, alpha=3.0),
                 0.25 * _ref(ib) + 3.0 * np.matmul(_ref(b1), _ref(b2)), op="matmul", args="beta=0.25, alpha=3")
    out = torch.empty(3, 4, dtype=dtype, device=device)
    r = torch.addmm(inp, m1, m2, out=out)
    assert_true("torch.addmm", r.data_ptr() == out.data_ptr(), "out= result does not live in out", args="out=")
    assert_close("torch.addmm", out, I + P, op="matmul", args="out=")


def test_matmul_empty_inner_dim(device):
    """A zero-length inner dimension gives zeros of the outer shape (empty sum), not garbage or an error;
    an empty outer dimension gives an empty result."""
    z = torch.matmul(torch.ones(3, 0, device=device), torch.ones(0, 4, device=device))
    assert_equal("torch.matmul", z, np.zeros((3, 4)), args="(3,0) @ (0,4)")
    z = torch.addmm(torch.ones(3, 4, device=device), torch.ones(3, 0, device=device), torch.ones(0, 4, device=device))
    assert_equal("torch.addmm", z, np.ones((3, 4)), args="empty inner dim")
    e = torch.matmul(torch.ones(0, 5, device=device), torch.ones(5, 2, device=device))
    assert_equal("torch.matmul", tuple(e.shape), (0, 2), args="(0,5) @ (5,2)")
    d = torch.dot(torch.ones(0, device=device), torch.ones(0, device=device))
    assert_equal("torch.dot", d.item(), 0.0, args="empty vectors")
    b = torch.bmm(torch.ones(2, 3, 0, device=device), torch.ones(2, 0, 4, device=device))
    assert_equal("torch.bmm", b, np.zeros((2, 3, 4)), args="empty inner dim")


@pytest.mark.devices("cpu")
@pytest.mark.dtypes(dtypes.INTEGRAL)
def test_matmul_integer(device, dtype, np_rng):
    """Integer matmul on CPU is exact and keeps the integer dtype (CUDA has no integer GEMM, so CPU only)."""
    a = torch.from_numpy(np_rng.integers(-50, 50, size=(6, 7))).to(dtype)
    bb = torch.from_numpy(np_rng.integers(-50, 50, size=(7, 3))).to(dtype)
    got = a @ bb
    assert_equal("torch.matmul", got.dtype, dtype, args="integer")
    assert_equal("torch.matmul", got, _ref(a).astype(np.int64) @ _ref(bb).astype(np.int64), args="integer")
    v = torch.from_numpy(np_rng.integers(-50, 50, size=(7,))).to(dtype)
    assert_equal("torch.mv", a @ v, _ref(a).astype(np.int64) @ _ref(v).astype(np.int64), args="integer")


@pytest.mark.dtypes(dtypes.FLOAT_HIGH + dtypes.COMPLEX)
def test_einsum(device, dtype, np_rng):
    """einsum for the basic equations (matrix product, batched product, transpose, trace, diagonal, sum,
    outer, implicit output, ellipsis) equals np.einsum; catches wrong index binding or contraction."""
    a, bb = _rand(np_rng, (3, 4), dtype, device), _rand(np_rng, (4, 5), dtype, device)
    sq = _rand(np_rng, (4, 4), dtype, device)
    x, y = _rand(np_rng, (2, 3, 4), dtype, device), _rand(np_rng, (2, 4, 5), dtype, device)
    u, w = _rand(np_rng, (3,), dtype, device), _rand(np_rng, (5,), dtype, device)
    cases = [("ij,jk->ik", (a, bb)), ("ij,jk", (a, bb)), ("bij,bjk->bik", (x, y)), ("ij->ji", (a,)),
             ("ii->", (sq,)), ("ii->i", (sq,)), ("ij->", (a,)), ("ij->j", (a,)), ("i,j->ij", (u, w)),
             ("...ij,...jk->...ik", (x, y)), ("bij,jk->bik", (x, bb)), ("i,i->", (u, u))]
    for eq, ops in cases:
        got = torch.einsum(eq, *ops)
        assert_close("torch.einsum", got, np.einsum(eq, *[_ref(o) for o in ops]), op="matmul", args=repr(eq))
    assert_close("torch.einsum", torch.einsum("ij,jk->ik", [a, bb]), _ref(a) @ _ref(bb), op="matmul", args="list operands")
    assert_raises("torch.einsum", RuntimeError, torch.einsum, "ij,jk->ik", a, a, args="mismatched contraction sizes")


def test_tensordot_and_linalg_multi_dot(device, np_rng):
    """tensordot(dims=int|pair of lists) and linalg.multi_dot equal NumPy's; catches wrong dims binding."""
    a = _rand(np_rng, (3, 4, 5), torch.float64, device)
    bb = _rand(np_rng, (4, 5, 2), torch.float64, device)
    assert_close("torch.tensordot", torch.tensordot(a, bb, dims=2), np.tensordot(_ref(a), _ref(bb), axes=2), op="matmul", args="dims=2")
    assert_close("torch.tensordot", torch.tensordot(a, bb, dims=([1], [0])),
                 np.tensordot(_ref(a), _ref(bb), axes=([1], [0])), op="matmul", args="dims=([1],[0])")
    ms = [_rand(np_rng, s, torch.float64, device) for s in [(3, 6), (6, 2), (2, 5)]]
    assert_close("torch.linalg.multi_dot", torch.linalg.multi_dot(ms), _ref(ms[0]) @ _ref(ms[1]) @ _ref(ms[2]), op="matmul")


@pytest.mark.dtypes(dtypes.FLOATING)
@pytest.mark.parametrize("n", [127, 256, 513])
def test_matmul_large(device, dtype, n, np_rng):
    """Larger square products (blocked/tiled kernel paths, odd sizes for edge tiles) against float64,
    with the K-aware allowance (k = n): ~sqrt(n) rounding units of the accumulation dtype times
    sum|a||b| per element, plus the result's own rounding (harness.tolerances.for_matmul). Catches a
    wrong edge tile, a dropped or doubled K block, and a result off by any constant factor (a halved
    product misses by > 1000x in float32, > 60x in bfloat16)."""
    a = torch.from_numpy(np_rng.uniform(-1, 1, (n, n))).to(dtype).to(device)
    bb = torch.from_numpy(np_rng.uniform(-1, 1, (n, n))).to(dtype).to(device)
    A, B = _ref(a), _ref(bb)
    got = a @ bb
    assert_close("torch.matmul", got, A @ B, op="matmul", k=n, scale=np.abs(A) @ np.abs(B), args=f"n={n}")


@pytest.mark.dtypes(dtypes.FLOAT_LOW)
def test_matmul_low_precision_accumulates_wide(device, dtype):
    """Half-precision matmul accumulates in float32: ones(1, 4096) @ ones(4096, 8) is exactly 4096 (a
    bfloat16/float16 accumulator stalls at 256/2048); catches low-precision accumulation in GEMM/GEMV."""
    a = torch.ones(1, 4096, dtype=dtype, device=device)
    bb = torch.ones(4096, 8, dtype=dtype, device=device)
    assert_equal("torch.matmul", a @ bb, np.full((1, 8), 4096.0), args="inner dim 4096")
    assert_equal("torch.mv", torch.mv(bb.t(), a[0]), np.full(8, 4096.0), args="inner dim 4096")
    assert_equal("torch.dot", torch.dot(a[0], a[0]).item(), 4096.0, args="length 4096")
