"""§ 1 Tensors: indexing (basic slicing gives views, negative steps are errors, advanced and boolean
indexing give copies), index_select, gather/scatter/scatter_add/scatter_reduce, masked_fill/
masked_select, nonzero, index_put_ (accumulate with duplicate indices), index_add_, take,
take_along_dim; values against NumPy.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from harness import dtypes
from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from harness.checks import to_numpy as _ref  # float64/complex128/int copy of a tensor's values
from suites.tensors._tensors import arange_tensor as _arange, shares_storage as _shares

IDX_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.int32, torch.int64, torch.bool, torch.complex64)


@pytest.mark.smoke
@pytest.mark.dtypes(IDX_DTYPES)
def test_basic_slicing_views(device, dtype):
    """Basic indexing (ints, slices with steps, negative indices, Ellipsis, None) matches NumPy and
    returns views that share storage; writes through a slice reach the base. Catches copies, wrong
    offsets and off-by-one stops."""
    x = _arange((4, 5, 6), dtype, device)
    X = _ref(x)
    cases = [
        ("x[1]", lambda a: a[1]), ("x[-1]", lambda a: a[-1]), ("x[1:3]", lambda a: a[1:3]),
        ("x[:, ::2]", lambda a: a[:, ::2]), ("x[..., 1]", lambda a: a[..., 1]), ("x[1, :, -2:]", lambda a: a[1, :, -2:]),
        ("x[:, 1:4:2, ::3]", lambda a: a[:, 1:4:2, ::3]), ("x[None, 2]", lambda a: a[None, 2]),
        ("x[2, 3, 4]", lambda a: a[2, 3, 4]), ("x[10:]", lambda a: a[10:]), ("x[-100:2]", lambda a: a[-100:2]),
    ]
    for expr, f in cases:
        got = f(x)
        assert_equal("Tensor.__getitem__", got, f(X), args=expr)
        if got.numel():
            assert_true("Tensor.__getitem__", _shares(got, x), "basic indexing copied", args=expr)
    v = x[1, ::2]
    fill = True if dtype == torch.bool else 77
    v[0, 0] = fill
    assert_equal("Tensor.__setitem__", x[1, 0, 0].item(), type(x[1, 0, 0].item())(fill), args="write through a slice view")
    assert_raises("Tensor.__getitem__", ValueError, lambda: x[::-1], args="negative step")
    assert_raises("Tensor.__getitem__", IndexError, lambda: x[4], args="index 4 out of range for size 4")
    assert_raises("Tensor.__getitem__", IndexError, lambda: x[0, 0, 0, 0], args="too many indices")


@pytest.mark.dtypes(IDX_DTYPES)
def test_advanced_indexing_copies(device, dtype):
    """Integer-array indexing (lists, tensors, paired arrays, mixed with slices, broadcast index arrays,
    negative indices) matches NumPy and returns a copy. Catches wrong pairing of index arrays, wrong
    placement of the advanced dims, and results that alias the input."""
    x = _arange((4, 5, 6), dtype, device)
    X = _ref(x)
    i = torch.tensor([0, 2, -1], device=device)
    j = torch.tensor([[1], [3]], device=device)
    I, J = _ref(i), _ref(j)
    cases = [
        ("x[[0, 2]]", x[[0, 2]], X[[0, 2]]),
        ("x[i]", x[i], X[I]),
        ("x[i, :, 1]", x[i, :, 1], X[I, :, 1]),
        ("x[:, [1, 3]]", x[:, [1, 3]], X[:, [1, 3]]),
        ("x[i, [0, 1, 2]]", x[i, [0, 1, 2]], X[I, [0, 1, 2]]),
        ("x[j, i] (broadcast)", x[j, i], X[J, I]),
        ("x[:, j, i]", x[:, j, i], X[:, J, I]),
        ("x[i, :, j] (separated)", x[i, :, j], X[I, :, J]),
        ("x[1, [0, 4]]", x[1, [0, 4]], X[1, [0, 4]]),
    ]
    for expr, got, exp in cases:
        assert_equal("Tensor.__getitem__", got, exp, args=expr)
    r = x[i]
    assert_true("Tensor.__getitem__", not _shares(r, x), "advanced indexing returned a view")
    assert_raises("Tensor.__getitem__", IndexError, lambda: x[torch.tensor([4], device=device)], args="index 4 out of range")
    assert_raises("Tensor.__getitem__", IndexError, lambda: x[torch.tensor([0.0], device=device)], args="float index tensor")


@pytest.mark.dtypes(IDX_DTYPES)
def test_boolean_mask(device, dtype, np_rng):
    """A boolean mask selects in row-major order into 1D (or keeps trailing dims for a partial mask);
    masked assignment writes only selected elements; a mask of the wrong shape raises."""
    x = _arange((3, 4), dtype, device)
    X = _ref(x)
    M = np_rng.integers(0, 2, size=(3, 4)).astype(bool)
    m = torch.from_numpy(M).to(device)
    assert_equal("Tensor.__getitem__", x[m], X[M], args="full boolean mask")
    rows = torch.tensor([True, False, True], device=device)
    assert_equal("Tensor.__getitem__", x[rows], X[[True, False, True]], args="row mask")
    assert_equal("Tensor.__getitem__", x[:, torch.tensor([False, True, True, False], device=device)],
                 X[:, [False, True, True, False]], args="column mask")
    assert_equal("Tensor.__getitem__", tuple(x[torch.zeros(3, 4, dtype=torch.bool, device=device)].shape), (0,), args="all False")
    y = x.clone()
    val = False if dtype == torch.bool else 0
    y[m] = val
    Y = X.copy()
    Y[M] = val
    assert_equal("Tensor.__setitem__", y, Y, args="masked assignment")
    assert_raises("Tensor.__getitem__", IndexError, lambda: x[torch.ones(4, 3, dtype=torch.bool, device=device)], args="mask (4,3) on (3,4)")


def test_setitem_broadcast_and_advanced(device):
    """__setitem__ broadcasts the value (row vector into a column slice raises if shapes mismatch) and
    advanced-index assignment with duplicates is last-write-wins only for unique indices (not tested)."""
    x = torch.zeros(3, 4, device=device)
    x[1] = torch.arange(4.0, device=device)
    x[:, 2] = -1.0
    x[[0, 2], [0, 3]] = torch.tensor([5.0, 6.0], device=device)
    X = np.zeros((3, 4))
    X[1] = np.arange(4.0)
    X[:, 2] = -1.0
    X[[0, 2], [0, 3]] = [5.0, 6.0]
    assert_equal("Tensor.__setitem__", x, X)
    assert_raises("Tensor.__setitem__", RuntimeError, x.__setitem__, (slice(None), 0), torch.ones(4, device=device), args="(4,) into (3,)")


@pytest.mark.dtypes(IDX_DTYPES)
def test_index_select(device, dtype):
    """index_select(dim, index) picks slices along dim in index order (repeats allowed) into a copy;
    int32 indices work; a 2D index raises."""
    x = _arange((4, 5), dtype, device)
    X = _ref(x)
    for dim, idx in [(0, [3, 0, 3]), (1, [4, 1]), (-1, [0]), (0, [])]:
        it = torch.tensor(idx, dtype=torch.int64, device=device)
        assert_equal("torch.index_select", torch.index_select(x, dim, it), np.take(X, idx, axis=dim), args=f"dim={dim}, index={idx}")
    it32 = torch.tensor([1, 2], dtype=torch.int32, device=device)
    assert_equal("torch.index_select", x.index_select(0, it32), X[[1, 2]], args="int32 index")
    assert_raises("torch.index_select", (RuntimeError, IndexError), x.index_select, 0, torch.tensor([[0]], device=device), args="2D index")
    assert_raises("torch.index_select", (RuntimeError, IndexError), x.index_select, 0, torch.tensor([4], device=device), args="out of range")


@pytest.mark.dtypes(IDX_DTYPES)
def test_gather(device, dtype, np_rng):
    """gather(dim, index): out[i][j] = x[i][index[i][j]] (dim=1), out[i][j] = x[index[i][j]][j] (dim=0),
    index may be smaller than x in non-gathered dims; equals np.take_along_axis. Catches the dim swapped."""
    x = _arange((4, 5), dtype, device)
    X = _ref(x)
    for dim, ishape in [(0, (3, 4)), (1, (4, 3)), (-1, (2, 7))]:
        I = np_rng.integers(0, X.shape[dim], size=ishape)
        got = torch.gather(x, dim, torch.from_numpy(I).to(device))
        exp = np.empty(ishape, dtype=X.dtype)
        for a in range(ishape[0]):
            for c in range(ishape[1]):
                exp[a, c] = X[I[a, c], c] if dim == 0 else X[a, I[a, c]]  # the documented formula
        assert_equal("torch.gather", got, exp, args=f"dim={dim}, index shape {ishape}")
    assert_raises("torch.gather", RuntimeError, torch.gather, x, 1, torch.tensor([[5]], device=device), args="index out of range")
    assert_raises("torch.gather", RuntimeError, torch.gather, x, 1, torch.tensor([0], device=device), args="index rank mismatch")


@pytest.mark.dtypes(dtypes.FLOAT_HIGH + dtypes.INTEGRAL)
def test_scatter_scatter_add(device, dtype, np_rng):
    """scatter_(dim, index, src) writes self[index[i][j]][j] = src[i][j] (dim=0); scatter with a scalar
    value; scatter_add_ sums duplicates; reduce='add'/'multiply'. Catches duplicates overwritten instead
    of summed and the dim swapped."""
    base = torch.zeros(3, 5, dtype=dtype, device=device)
    src = torch.arange(1, 11, device=device).to(dtype).reshape(2, 5)
    idx = torch.tensor([[0, 1, 2, 0, 0], [2, 0, 0, 1, 2]], device=device)
    I, S = _ref(idx), _ref(src)
    exp = np.zeros((3, 5))
    for i in range(2):
        for j in range(5):
            exp[I[i, j], j] = S[i, j]  # unique (row, col) targets: no write conflict
    assert_equal("Tensor.scatter_", base.clone().scatter_(0, idx, src), exp, args="dim=0")
    exp7 = np.zeros((3, 5))
    for i in range(2):
        for j in range(5):
            exp7[I[i, j], j] = 7
    assert_equal("torch.scatter", torch.scatter(base, 0, idx, 7), exp7, args="value=7")
    assert_equal("torch.scatter", base, np.zeros((3, 5)), args="out-of-place leaves self unchanged")
    dup = torch.tensor([[0, 0, 1, 1, 0]], device=device).expand(2, 5).contiguous()  # duplicates along dim 0
    D = _ref(dup)
    exp_add = np.zeros((3, 5))
    np.add.at(exp_add, (D, np.broadcast_to(np.arange(5), (2, 5))), S)
    assert_equal("Tensor.scatter_add_", base.clone().scatter_add_(0, dup, src), exp_add, args="duplicate indices summed")
    ones = torch.ones(3, 5, dtype=dtype, device=device)
    exp_mul = np.ones((3, 5))
    np.multiply.at(exp_mul, (D, np.broadcast_to(np.arange(5), (2, 5))), S)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scatter_(reduce=) with a tensor src is deprecated but documented
        assert_equal("Tensor.scatter_", base.clone().scatter_(0, dup, src, reduce="add"), exp_add, args="reduce='add'")
        assert_equal("Tensor.scatter_", ones.clone().scatter_(0, dup, src, reduce="multiply"), exp_mul, args="reduce='multiply'")
    row_idx = torch.tensor([[4, 0], [1, 1]], device=device)
    r = torch.zeros(2, 5, dtype=dtype, device=device).scatter_add(1, row_idx, src[:, :2])
    exp_r = np.zeros((2, 5))
    np.add.at(exp_r, (np.array([[0, 0], [1, 1]]), _ref(row_idx)), S[:, :2])
    assert_equal("torch.scatter_add", r, exp_r, args="dim=1, duplicate in row 1")


@pytest.mark.dtypes(dtypes.FLOAT_HIGH)
@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
def test_scatter_reduce(device, dtype, reduce):
    """scatter_reduce(dim, index, src, reduce, include_self) for every reduction with and without the
    self values; mean counts self when include_self=True. Catches include_self ignored or a wrong mean."""
    self_ = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=dtype, device=device)
    src = torch.tensor([5.0, -1.0, 2.0, 8.0, 0.5], dtype=dtype, device=device)
    idx = torch.tensor([0, 0, 2, 2, 2], device=device)
    S, B, I = _ref(src), _ref(self_), _ref(idx)
    fn = {"sum": np.sum, "prod": np.prod, "mean": np.mean, "amax": np.max, "amin": np.min}[reduce]
    for include_self in (True, False):
        exp = B.copy()
        for k in range(4):
            vals = list(S[I == k])
            if not vals:
                continue
            exp[k] = fn(([B[k]] if include_self else []) + vals)
        got = self_.scatter_reduce(0, idx, src, reduce=reduce, include_self=include_self)
        assert_close("Tensor.scatter_reduce", got, exp, args=f"reduce={reduce!r}, include_self={include_self}")


@pytest.mark.dtypes(IDX_DTYPES)
def test_masked_fill_select(device, dtype, np_rng):
    """masked_fill writes value where mask (broadcast) is True; masked_select returns the selected
    elements in row-major order as 1D (broadcasting mask and input); masked_scatter fills from a source
    in order. Catches an inverted mask or broken broadcast."""
    x = _arange((3, 4), dtype, device)
    X = _ref(x)
    M = np_rng.integers(0, 2, size=(1, 4)).astype(bool)
    m = torch.from_numpy(M).to(device)
    v = True if dtype == torch.bool else 9
    assert_equal("torch.masked_fill", x.masked_fill(m, v), np.where(M, v, X), args="broadcast (1,4) mask")
    y = x.clone()
    r = y.masked_fill_(m, v)
    assert_true("Tensor.masked_fill_", r is y, "masked_fill_ did not return self")
    assert_equal("torch.masked_select", torch.masked_select(x, m), np.broadcast_to(X, (3, 4))[np.broadcast_to(M, (3, 4))],
                 args="broadcast mask")
    assert_equal("torch.masked_select", torch.masked_select(x, m).dim(), 1, args="result is 1D")
    full = torch.from_numpy(np.broadcast_to(M, (3, 4)).copy()).to(device)
    src = _arange((12,), dtype, device)
    got = x.masked_scatter(full, src)
    exp = X.copy()
    exp[np.broadcast_to(M, (3, 4))] = _ref(src)[: int(full.sum())]
    assert_equal("Tensor.masked_scatter", got, exp)
    if dtype.is_floating_point:
        assert_close("torch.masked_fill", x.masked_fill(m, float("nan")), np.where(M, np.nan, X), op="exact", args="value=nan")
        assert_close("torch.masked_fill", x.masked_fill(m, torch.tensor(2.5, device=device)), np.where(M, _ref(torch.tensor(2.5).to(dtype)), X),
                     op="exact", args="zero-dim tensor value")


@pytest.mark.dtypes((torch.float32, torch.int64, torch.bool, torch.complex64))
def test_nonzero(device, dtype, np_rng):
    """nonzero returns an (N, ndim) int64 tensor of indices in row-major order; as_tuple=True returns one
    1D tensor per dim (NumPy's np.nonzero); argwhere equals nonzero; zero-dim and empty inputs work."""
    X = (np_rng.integers(0, 3, size=(3, 4, 2)) * (np_rng.integers(0, 2, size=(3, 4, 2)))).astype(np.float64)
    x = torch.from_numpy(X).to(dtype).to(device)
    nz = torch.nonzero(x)
    assert_equal("torch.nonzero", nz.dtype, torch.int64)
    assert_equal("torch.nonzero", nz, np.argwhere(X != 0))
    tup = torch.nonzero(x, as_tuple=True)
    assert_equal("torch.nonzero", len(tup), 3, args="as_tuple=True")
    for got, exp in zip(tup, np.nonzero(X)):
        assert_equal("torch.nonzero", got, exp, args="as_tuple=True")
    assert_equal("torch.argwhere", torch.argwhere(x), np.argwhere(X != 0))
    assert_equal("torch.nonzero", tuple(torch.nonzero(torch.zeros(2, 3, device=device)).shape), (0, 2), args="all zero")
    assert_equal("torch.nonzero", tuple(torch.nonzero(torch.tensor(5, device=device)).shape), (1, 0), args="zero-dim nonzero")
    assert_equal("Tensor.nonzero", x.nonzero(), np.argwhere(X != 0), args="method form")


@pytest.mark.dtypes(dtypes.FLOAT_HIGH + dtypes.INTEGRAL)
def test_index_put_accumulate(device, dtype):
    """index_put_(indices, values, accumulate=True) adds every value at duplicate indices (np.add.at);
    accumulate=False with unique indices sets them; index_add_ with alpha. Catches lost duplicate
    updates (a classic parallel-kernel race) and ignored alpha."""
    x = torch.zeros(5, dtype=dtype, device=device)
    idx = torch.tensor([0, 2, 2, 4, 2, 0], device=device)
    vals = torch.tensor([1, 2, 3, 4, 5, 6], device=device).to(dtype)
    exp = np.zeros(5)
    np.add.at(exp, _ref(idx), _ref(vals))
    r = x.index_put_((idx,), vals, accumulate=True)
    assert_true("Tensor.index_put_", r is x, "index_put_ did not return self")
    assert_equal("Tensor.index_put_", x, exp, args="accumulate=True, duplicates")
    y = torch.zeros(5, dtype=dtype, device=device).index_put_((torch.tensor([3, 1], device=device),), vals[:2])
    assert_equal("Tensor.index_put_", y, np.array([0, 2, 0, 1, 0]), args="accumulate=False, unique")
    m = torch.zeros(3, 3, dtype=dtype, device=device)
    rows, cols = torch.tensor([0, 0, 2], device=device), torch.tensor([1, 1, 2], device=device)
    m.index_put_((rows, cols), torch.ones(3, dtype=dtype, device=device), accumulate=True)
    assert_equal("Tensor.index_put_", m, np.array([[0, 2, 0], [0, 0, 0], [0, 0, 1]]), args="2D, accumulate=True")
    big_idx = torch.zeros(10_000, dtype=torch.int64, device=device)
    acc = torch.zeros(1, dtype=dtype, device=device).index_put_((big_idx,), torch.ones(10_000, dtype=dtype, device=device), accumulate=True)
    assert_equal("Tensor.index_put_", acc.item(), 10_000, args="10000 updates to one slot")
    t = torch.ones(3, 2, dtype=dtype, device=device)
    t.index_add_(0, torch.tensor([0, 2, 0], device=device), torch.full((3, 2), 2, dtype=dtype, device=device), alpha=3)
    assert_equal("Tensor.index_add_", t, np.array([[13, 13], [1, 1], [7, 7]]), args="alpha=3, duplicates")
    f = torch.zeros(2, 3, dtype=dtype, device=device).index_fill_(1, torch.tensor([0, 2], device=device), 4)
    assert_equal("Tensor.index_fill_", f, np.array([[4, 0, 4], [4, 0, 4]]))
    c = torch.zeros(3, 2, dtype=dtype, device=device).index_copy_(0, torch.tensor([2, 0], device=device),
                                                                    torch.tensor([[1, 2], [3, 4]], device=device).to(dtype))
    assert_equal("Tensor.index_copy_", c, np.array([[3, 4], [0, 0], [1, 2]]))


@pytest.mark.dtypes(IDX_DTYPES)
def test_take_take_along_dim(device, dtype, np_rng):
    """take indexes the flattened input (negative indices from the end); take_along_dim equals
    np.take_along_axis with dim, and works on the flattened input without dim."""
    x = _arange((3, 4), dtype, device)
    X = _ref(x)
    I = np.array([[0, 11], [5, -1]])
    assert_equal("torch.take", torch.take(x, torch.from_numpy(I).to(device)), np.take(X, I))
    assert_equal("torch.take", torch.take(x.t(), torch.tensor([1], device=device)), np.take(X.T, [1]), args="transposed input")
    assert_raises("torch.take", (RuntimeError, IndexError), torch.take, x, torch.tensor([12], device=device), args="out of range")
    J = np.argsort(np_rng.standard_normal((3, 4)), axis=1)
    assert_equal("torch.take_along_dim", torch.take_along_dim(x, torch.from_numpy(J).to(device), dim=1), np.take_along_axis(X, J, 1), args="dim=1")
    K = np.array([3, 0, 7])
    assert_equal("torch.take_along_dim", torch.take_along_dim(x, torch.from_numpy(K).to(device)), np.take(X, K), args="no dim: flattened")
    col = np.array([[1], [0], [2]])
    assert_equal("torch.take_along_dim", torch.take_along_dim(x, torch.from_numpy(col).to(device), dim=1),
                 np.take_along_axis(X, col, 1), args="broadcast index (3,1)")
