"""Operator library: sparse layouts (COO, CSR, CSC, BSR, BSC) and strided nested tensors, against dense
NumPy / scipy.sparse oracles built from the same entries.

COO: the raw accessors of an uncoalesced tensor (_indices/_values/_nnz/is_coalesced) return what was
given; coalesce() sorts the indices lexicographically, merges duplicates by summing (NumPy np.add.at);
sparse_dim/dense_dim/_dimI/_dimV of hybrid tensors; _coalesced_ sets the flag only; _to_dense equals the
NumPy accumulation; sparse_mask / _sparse_mask_projection pick values at the mask's indices;
sparse_resize_ / sparse_resize_and_clear_ / resize_as_sparse_ change size and (only for the clearing ones)
drop entries; smm / sspaddmm / hspmm equal the dense NumPy products. Compressed layouts: crow/col/ccol/row
indices and values equal scipy.sparse's indptr/indices/data (CSR, CSC, BSR, BSC). The *_copy variants
(torch.indices_copy, values_copy, crow_indices_copy, ...) return the same values as the view accessors in
fresh storage. Nested tensors: _nested_tensor_size/_strides/_storage_offsets equal the sizes, contiguous
strides and cumulative offsets of their components.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_raises, assert_true

sp = pytest.importorskip("scipy.sparse")

pytestmark = pytest.mark.filterwarnings("ignore:.*[Ss]parse.*:UserWarning")


def _coo_entries(np_rng, shape, nnz, dense_shape=()):
    """Random COO entries WITH duplicates (an uncoalesced tensor) and their dense NumPy accumulation."""
    idx = np.stack([np_rng.integers(0, s, size=nnz) for s in shape])
    idx[:, -3:] = idx[:, :3]  # at least three duplicates
    vals = np_rng.standard_normal((nnz, *dense_shape))
    dense = np.zeros((*shape, *dense_shape))
    np.add.at(dense, tuple(idx), vals)
    return idx, vals, dense


def _coo(idx, vals, shape, device, dtype=torch.float64):
    return torch.sparse_coo_tensor(torch.tensor(idx, device=device), torch.tensor(vals, dtype=dtype, device=device),
                                   tuple(shape), check_invariants=True)


def _coalesced_ref(idx, vals, shape):
    flat = np.ravel_multi_index(tuple(idx), shape)
    uniq, inv = np.unique(flat, return_inverse=True)
    summed = np.zeros((len(uniq), *vals.shape[1:]))
    np.add.at(summed, inv, vals)
    return np.stack(np.unravel_index(uniq, shape)), summed


@pytest.mark.smoke
@pytest.mark.parametrize("dense_shape", [(), (4,)], ids=["coo", "hybrid"])
def test_coo_accessors_and_coalesce(device, np_rng, dense_shape):
    """Catches coalesce() not summing duplicates (or keeping the last), unsorted coalesced indices, a wrong
    _nnz/sparse_dim/dense_dim/_dimI/_dimV, _indices()/_values() of an uncoalesced tensor not returning the
    entries given, indices() allowed on an uncoalesced tensor, and _coalesced_ changing data."""
    shape = (5, 7)
    idx, vals, dense = _coo_entries(np_rng, shape, 20, dense_shape)
    s = _coo(idx, vals, (*shape, *dense_shape), device)
    nd = len(dense_shape)
    assert_equal("Tensor.is_coalesced", s.is_coalesced(), False, args="fresh with duplicates")
    assert_equal("Tensor._nnz", s._nnz(), 20, args="uncoalesced")
    for api, got, want in (("Tensor.sparse_dim", s.sparse_dim(), 2), ("Tensor._dimI", s._dimI(), 2),
                           ("Tensor.dense_dim", s.dense_dim(), nd), ("Tensor._dimV", s._dimV(), nd)):
        assert_equal(api, got, want, args=f"dense_shape={dense_shape}")
    assert_equal("Tensor._indices", s._indices(), idx, args="uncoalesced: the entries given")
    assert_close("Tensor._values", s._values(), vals, op="exact", args="uncoalesced")
    assert_raises("Tensor.indices", RuntimeError, s.indices, match="coalesce", args="uncoalesced")
    assert_close("Tensor._to_dense", s._to_dense(), dense, op="reduction", args="duplicates summed")
    c = s.coalesce()
    ref_idx, ref_vals = _coalesced_ref(idx, vals, shape)
    assert_equal("Tensor.is_coalesced", c.is_coalesced(), True, args="after coalesce()")
    assert_equal("Tensor._nnz", c._nnz(), ref_idx.shape[1], args="coalesced")
    assert_equal("Tensor.coalesce", c.indices(), ref_idx, args="sorted unique indices")
    assert_close("Tensor.coalesce", c.values(), ref_vals, op="reduction", args="duplicates summed")
    assert_equal("Tensor.indices", c.indices(), c._indices(), args="coalesced: indices() == _indices()")
    assert_close("Tensor.values", c.values(), c._values(), op="exact")
    # _coalesced_ flips the flag only, in place
    u = s.clone()
    ret = u._coalesced_(True)
    assert_true("Tensor._coalesced_", ret is u and u.is_coalesced(), "flag not set in place")
    assert_equal("Tensor._coalesced_", u._indices(), idx, args="data unchanged")
    u._coalesced_(False)
    assert_equal("Tensor._coalesced_", u.is_coalesced(), False, args="False")


def test_sparse_mask(device, np_rng):
    """dense.sparse_mask(mask) has the mask's indices and the dense values there; a._sparse_mask_projection(m)
    keeps a's indices with a's values where m has an entry and 0 elsewhere. Catches values taken from the
    mask instead of self, or indices of the wrong operand."""
    shape = (6, 5)
    d64 = np_rng.standard_normal(shape)
    d = torch.tensor(d64, device=device)
    midx, mvals, _ = _coo_entries(np_rng, shape, 9)
    mask = _coo(midx, mvals, shape, device).coalesce()
    got = d.sparse_mask(mask)
    ref_idx = mask.indices().cpu().numpy()
    assert_equal("Tensor.sparse_mask", got.coalesce().indices(), ref_idx)
    assert_close("Tensor.sparse_mask", got.coalesce().values(), d64[tuple(ref_idx)], op="exact")
    # non-contiguous dense source
    big = torch.tensor(np.repeat(d64, 2, axis=1), device=device)[:, ::2]
    assert_close("Tensor.sparse_mask", big.sparse_mask(mask).to_dense(), np.where(_dense_of(ref_idx, shape), d64, 0.0),
                 op="exact", args="non-contiguous self")
    aidx, avals, _ = _coo_entries(np_rng, shape, 10)
    a = _coo(aidx, avals, shape, device).coalesce()
    proj = a._sparse_mask_projection(mask)
    a_idx = a.indices().cpu().numpy()
    in_mask = _dense_of(ref_idx, shape)[tuple(a_idx)]
    assert_equal("Tensor._sparse_mask_projection", proj.indices(), a_idx, args="self's indices")
    assert_close("Tensor._sparse_mask_projection", proj.values(), np.where(in_mask, a.values().cpu().numpy(), 0.0),
                 op="exact", args="self's values where the mask has an entry")


def _dense_of(idx, shape):
    m = np.zeros(shape, dtype=bool)
    m[tuple(idx)] = True
    return m


def test_sparse_resize(device, np_rng):
    """sparse_resize_ grows the size keeping every entry; shrinking a sparse dim below an index is a
    documented error; sparse_resize_and_clear_ and resize_as_sparse_ resize and drop all entries.
    Catches entries lost on resize, a wrong sparse/dense dim split, and a clear that keeps entries."""
    idx, vals, dense = _coo_entries(np_rng, (4, 3), 8)
    s = _coo(idx, vals, (4, 3), device).coalesce()
    g = s.clone()
    r = g.sparse_resize_((6, 5), 2, 0)
    want = np.zeros((6, 5))
    want[:4, :3] = dense
    assert_true("Tensor.sparse_resize_", r is g and tuple(g.shape) == (6, 5), f"shape {tuple(g.shape)}")
    assert_close("Tensor.sparse_resize_", g.to_dense(), want, op="reduction", args="grow to (6, 5)")
    assert_raises("Tensor.sparse_resize_", RuntimeError, s.clone().sparse_resize_, (2, 3), 2, 0, args="shrink")
    h = s.clone()
    h.sparse_resize_and_clear_((2, 9, 3), 2, 1)
    assert_true("Tensor.sparse_resize_and_clear_", tuple(h.shape) == (2, 9, 3) and h._nnz() == 0
                and h.sparse_dim() == 2 and h.dense_dim() == 1, f"shape {tuple(h.shape)}, nnz {h._nnz()}")
    hyb = torch.sparse_coo_tensor(torch.tensor([[0, 2]], device=device), torch.ones(2, 4, device=device), (3, 4))
    z = torch.sparse_coo_tensor(size=(1,), device=device)
    z.resize_as_sparse_(hyb)
    assert_true("Tensor.resize_as_sparse_", tuple(z.shape) == (3, 4) and z.sparse_dim() == 1 and z.dense_dim() == 1,
                f"shape {tuple(z.shape)}, dims {z.sparse_dim()}/{z.dense_dim()}")
    assert_equal("Tensor.resize_as_sparse_", z._nnz(), 0, args="entries not copied")


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_sparse_products(device, dtype, np_rng):
    """torch.smm / Tensor.smm (sparse @ dense -> sparse), torch.sspaddmm / Tensor.sspaddmm (beta*input +
    alpha*mat1 @ mat2, sparse result) and torch.hspmm (hybrid result, one sparse dim) against NumPy.
    Catches duplicates counted once, beta/alpha ignored or swapped, a dropped input term."""
    m, k, n = 6, 8, 5
    idx, vals, a64 = _coo_entries(np_rng, (m, k), 15)
    a = _coo(idx, vals, (m, k), device, dtype)
    b64 = np_rng.standard_normal((k, n))
    b = torch.tensor(b64, dtype=dtype, device=device)
    ref = a64 @ b64
    sc = np.abs(a64) @ np.abs(b64)
    for api, fn in (("torch.smm", lambda: torch.smm(a, b)), ("Tensor.smm", lambda: a.smm(b))):
        got = fn()
        assert_true(api, got.layout == torch.sparse_coo, f"layout {got.layout}")
        assert_close(api, got.to_dense(), ref, op="matmul", k=k, scale=sc)
    iidx, ivals, i64 = _coo_entries(np_rng, (m, n), 7)
    inp = _coo(iidx, ivals, (m, n), device, dtype)
    want = 0.5 * i64 + (-2.0) * ref
    for api, fn in (("torch.sspaddmm", lambda: torch.sspaddmm(inp, a, b, beta=0.5, alpha=-2.0)),
                    ("Tensor.sspaddmm", lambda: inp.sspaddmm(a, b, beta=0.5, alpha=-2.0))):
        got = fn()
        assert_true(api, got.layout == torch.sparse_coo, f"layout {got.layout}")
        assert_close(api, got.to_dense(), want, op="matmul", k=k + 1, scale=2 * sc + 0.5 * np.abs(i64),
                     args="beta=0.5, alpha=-2")
    h = torch.hspmm(a, b)
    assert_true("torch.hspmm", h.sparse_dim() == 1 and h.dense_dim() == 1, f"dims {h.sparse_dim()}/{h.dense_dim()}")
    assert_close("torch.hspmm", h.to_dense(), ref, op="matmul", k=k, scale=sc)
    assert_raises("torch.hspmm", RuntimeError, torch.hspmm, a, torch.ones(k + 1, n, dtype=dtype, device=device),
                  args="inner size mismatch")


def _dense_with_zeros(np_rng, shape, density=0.4):
    d = np_rng.standard_normal(shape)
    d[np_rng.random(shape) > density] = 0.0
    return d


@pytest.mark.parametrize("layout", ["csr", "csc", "bsr", "bsc"])
def test_compressed_accessors(device, np_rng, layout):
    """crow_indices/col_indices (CSR, BSR), ccol_indices/row_indices (CSC, BSC), values() and _to_dense equal
    scipy.sparse's indptr/indices/data of the same matrix (from a non-contiguous dense view). Catches
    off-by-one row pointers, row/column index swaps, values in the wrong order."""
    d64 = _dense_with_zeros(np_rng, (6, 8))
    d64[:2, :2] = 0.0  # an empty block
    src = torch.tensor(np.repeat(d64, 2, axis=1), device=device)[:, ::2]
    if layout == "csr":
        t, ref = src.to_sparse_csr(), sp.csr_matrix(d64)
    elif layout == "csc":
        t, ref = src.to_sparse_csc(), sp.csc_matrix(d64)
    elif layout == "bsr":
        t, ref = src.to_sparse_bsr((2, 2)), sp.bsr_matrix(d64, blocksize=(2, 2))
    else:
        t, ref = src.to_sparse_bsc((2, 2)), sp.bsr_matrix(d64.T, blocksize=(2, 2))
    ref.sort_indices()
    data = ref.data
    if layout == "bsc":
        data = np.transpose(data, (0, 2, 1))
    if layout in ("csr", "bsr"):
        acc = (("Tensor.crow_indices", t.crow_indices, torch.crow_indices_copy),
               ("Tensor.col_indices", t.col_indices, torch.col_indices_copy))
    else:
        acc = (("Tensor.ccol_indices", t.ccol_indices, torch.ccol_indices_copy),
               ("Tensor.row_indices", t.row_indices, torch.row_indices_copy))
    assert_equal("Tensor.is_sparse_csr", t.is_sparse_csr, layout == "csr", args=layout)
    for (api, view_fn, copy_fn), want in zip(acc, (ref.indptr, ref.indices)):
        got = view_fn()
        assert_equal(api, got, want, args=layout)
        cp = copy_fn(t)
        assert_equal("torch." + copy_fn.__name__, cp, want, args=layout)
        assert_true("torch." + copy_fn.__name__, cp.data_ptr() != got.data_ptr(), "aliases the view instead of copying")
    assert_close("Tensor.values", t.values(), data, op="exact", args=layout)
    vc = torch.values_copy(t)
    assert_close("torch.values_copy", vc, data, op="exact", args=layout)
    assert_close("Tensor._to_dense", t._to_dense(), d64, op="exact", args=layout)
    if layout == "csr":
        assert_raises("Tensor.ccol_indices", RuntimeError, t.ccol_indices, args="on CSR")
        coo = src.to_sparse()
        assert_raises("Tensor.crow_indices", RuntimeError, coo.crow_indices, args="on COO")


@pytest.mark.parametrize("which", ["indices_copy", "values_copy", "_indices_copy", "_values_copy"])
def test_coo_copy_variants(device, np_rng, which):
    """torch.indices_copy / values_copy (and the private _indices_copy / _values_copy) are documented as
    Tensor.indices()/values() returning fresh storage. Catches a copy that aliases or differs. (torch 2.13
    has no SparseCPU kernel for them: NotImplementedError, a real finding.)"""
    idx, vals, _ = _coo_entries(np_rng, (5, 4), 9)
    c = _coo(idx, vals, (5, 4), device).coalesce()
    fn = getattr(torch, which, None)
    if fn is None:
        pytest.skip(f"this torch has no torch.{which}")
    view = {"indices_copy": c.indices, "values_copy": c.values, "_indices_copy": c._indices, "_values_copy": c._values}[which]()
    ref_idx, ref_vals = _coalesced_ref(idx, vals, (5, 4))
    assert_close("Tensor." + which[:-5], view, ref_idx if "indices" in which else ref_vals, op="reduction",
                 args="the view the copy must equal")
    got = fn(c)
    assert_close("torch." + which, got, view.cpu(), op="exact")
    assert_true("torch." + which, got.data_ptr() != view.data_ptr(), "aliases the view instead of copying")


def test_sparse_broadcast_to_copy(device, np_rng):
    """torch._sparse_broadcast_to_copy (the copy variant of _sparse_broadcast_to): the broadcast sparse tensor
    equals np.broadcast_to of the dense one. (No sparse kernel in torch 2.13: NotImplementedError, a finding.)"""
    idx, vals, dense = _coo_entries(np_rng, (2, 3), 4)
    c = _coo(idx, vals, (2, 3), device).coalesce()
    view = torch._sparse_broadcast_to(c, (4, 2, 3))
    assert_close("torch._sparse_broadcast_to", view.to_dense(), np.broadcast_to(dense, (4, 2, 3)), op="reduction")
    got = torch._sparse_broadcast_to_copy(c, (4, 2, 3))
    assert_close("torch._sparse_broadcast_to_copy", got.to_dense(), np.broadcast_to(dense, (4, 2, 3)), op="reduction")


@pytest.mark.parametrize("shapes", [[(2, 3), (4, 3), (1, 3)], [(2, 3, 4), (1, 5, 4)]], ids=["2d", "3d"])
def test_nested_tensor_metadata(device, shapes):
    """_nested_tensor_size/_nested_tensor_strides/_nested_tensor_storage_offsets of a strided nested tensor:
    one row per component with its size, its contiguous strides and the cumulative element offset.
    Catches sizes of the wrong component, strides of a transposed layout, offsets off by a component."""
    if not hasattr(torch, "nested"):
        pytest.skip("this torch has no torch.nested")
    comps = [torch.randn(*s, device=device) for s in shapes]
    nt = torch.nested.nested_tensor(comps)
    sizes = np.array(shapes)
    strides = np.array([np.cumprod((list(s[1:]) + [1])[::-1])[::-1] for s in shapes])
    offsets = np.concatenate([[0], np.cumsum([np.prod(s) for s in shapes])[:-1]])
    assert_equal("Tensor._nested_tensor_size", nt._nested_tensor_size(), sizes)
    assert_equal("Tensor._nested_tensor_strides", nt._nested_tensor_strides(), strides)
    assert_equal("Tensor._nested_tensor_storage_offsets", nt._nested_tensor_storage_offsets(), offsets)
    for i, comp in enumerate(nt.unbind()):
        assert_close("torch.nested.nested_tensor", comp, comps[i].cpu(), op="exact", args=f"component {i}")
