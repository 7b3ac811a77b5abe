"""§ 1 Tensors: shape operations (reshape, view, contiguous, transpose/t/permute/movedim, squeeze,
unsqueeze, flatten/unflatten, expand, repeat, cat/stack/hstack/vstack, split/chunk/narrow/unbind,
flip, roll, tril/triu, clone): values against NumPy, result shapes and strides, and whether the result
aliases its input (a view shares storage; a copy does not) as documented.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness import dtypes
from harness.checks import assert_equal, assert_raises, assert_true
from harness.checks import to_numpy as _ref  # float64/complex128/int copy of a tensor's values
from suites.tensors._tensors import arange_tensor as _arange, shares_storage as _shares

SHAPE_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.int64, torch.bool, torch.complex64)


@pytest.mark.smoke
@pytest.mark.dtypes(SHAPE_DTYPES)
def test_reshape(device, dtype):
    """reshape infers one -1 dim, keeps row-major order, returns a view of a contiguous tensor and a copy
    of a transposed one; two -1s or an incompatible size raise. Catches wrong element order or a view of
    non-viewable memory."""
    x = _arange((4, 6), dtype, device)
    X = _ref(x)
    for shape in [(24,), (2, 12), (-1, 3), (2, -1, 4), (1, 24, 1), (4, 6)]:
        r = x.reshape(shape)
        assert_equal("torch.reshape", r, X.reshape(shape), args=f"{shape}")
        assert_true("torch.reshape", _shares(r, x), "reshape of a contiguous tensor copied", args=f"{shape}")
    t = x.t()
    r = t.reshape(24)
    assert_equal("torch.reshape", r, X.T.reshape(24), args="transposed -> (24,)")
    assert_true("torch.reshape", not _shares(r, x), "reshape of a transposed tensor returned an aliasing result", args="transposed")
    assert_equal("torch.reshape", torch.reshape(x, (3, 8)), X.reshape(3, 8), args="function form")
    assert_raises("torch.reshape", RuntimeError, x.reshape, -1, -1, args="two -1")
    assert_raises("torch.reshape", RuntimeError, x.reshape, 5, 5, args="25 != 24")
    z = torch.tensor(5, device=device).to(dtype).reshape(1, 1)
    assert_equal("torch.reshape", tuple(z.shape), (1, 1), args="zero-dim -> (1,1)")
    e = torch.empty(0, 4, device=device, dtype=dtype).reshape(-1, 2, 2)
    assert_equal("torch.reshape", tuple(e.shape), (0, 2, 2), args="empty with -1")


@pytest.mark.dtypes(SHAPE_DTYPES)
def test_view(device, dtype):
    """view shares storage (writes show in the base) and needs compatible strides: viewing a transposed
    tensor as 1D raises, contiguous() then view works. Catches a view that copies or silently reorders."""
    x = _arange((3, 4), dtype, device)
    v = x.view(2, 6)
    assert_equal("Tensor.view", v, _ref(x).reshape(2, 6))
    assert_true("Tensor.view", v.data_ptr() == x.data_ptr(), "view has a different data pointer")
    with torch.no_grad():
        v[1, 5] = 0 if dtype != torch.bool else True
    assert_equal("Tensor.view", x[2, 3].item(), v[1, 5].item(), args="write through view")
    t = x.t()
    assert_raises("Tensor.view", RuntimeError, t.view, 12, args="transposed, non-contiguous")
    c = t.contiguous().view(12)
    assert_equal("Tensor.view", c, _ref(x).T.reshape(12), args="contiguous() then view")
    v2 = t.view(4, 3)  # same shape: strides compatible
    assert_true("Tensor.view", v2.data_ptr() == t.data_ptr(), "view with compatible strides copied")
    sub = x[:, :2]  # (3,2) with stride (4,1): splitting dim 0 is fine, merging is not
    assert_raises("Tensor.view", RuntimeError, sub.view, 6, args="column slice")
    if dtype == torch.float32:
        as_int = x.view(torch.int32)
        assert_equal("Tensor.view", tuple(as_int.shape), (3, 4), args="dtype=int32 reinterpret")
        assert_equal("Tensor.view", as_int, _ref(x).astype(np.float32).view(np.int32), args="dtype=int32 bit pattern")


@pytest.mark.dtypes(dtypes.FLOAT32 + (torch.int64,))
def test_contiguous(device, dtype):
    """contiguous() returns self (same object) when already contiguous and a row-major copy otherwise;
    is_contiguous reflects strides. Catches an extra copy or a non-row-major result."""
    x = _arange((3, 5), dtype, device)
    assert_true("Tensor.contiguous", x.contiguous() is x, "contiguous() of a contiguous tensor is not self")
    t = x.t()
    assert_equal("Tensor.is_contiguous", t.is_contiguous(), False, args="transposed")
    c = t.contiguous()
    assert_equal("Tensor.contiguous", c.is_contiguous(), True)
    assert_equal("Tensor.contiguous", c.stride(), (3, 1), args="row-major strides")
    assert_equal("Tensor.contiguous", c, _ref(x).T)
    assert_true("Tensor.contiguous", not _shares(c, x), "contiguous() of a transposed tensor aliases it")
    cl = torch.arange(2 * 3 * 4 * 5, device=device).to(dtype).reshape(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)
    assert_equal("Tensor.contiguous", cl.stride(), (60, 1, 15, 3), args="memory_format=channels_last")
    assert_equal("Tensor.is_contiguous", cl.is_contiguous(memory_format=torch.channels_last), True, args="channels_last")


@pytest.mark.dtypes(SHAPE_DTYPES)
def test_transpose_permute_movedim(device, dtype):
    """transpose/swapaxes/t/permute/movedim/mT return views with permuted shape and strides and the
    NumPy values; t() of a 1D tensor is itself; t() of 3D raises. Catches copies and wrong axis maps."""
    x = _arange((2, 3, 4), dtype, device)
    X = _ref(x)
    cases = [
        ("torch.transpose", x.transpose(0, 2), np.swapaxes(X, 0, 2), (1, 4, 12)),
        ("torch.transpose", x.transpose(-1, -2), np.swapaxes(X, -1, -2), (12, 1, 4)),
        ("torch.swapaxes", torch.swapaxes(x, 0, 1), np.swapaxes(X, 0, 1), (4, 12, 1)),
        ("torch.permute", x.permute(2, 0, 1), np.transpose(X, (2, 0, 1)), (1, 12, 4)),
        ("torch.permute", x.permute(-1, 0, 1), np.transpose(X, (2, 0, 1)), (1, 12, 4)),
        ("torch.movedim", torch.movedim(x, 0, -1), np.moveaxis(X, 0, -1), (4, 1, 12)),
        ("torch.movedim", torch.movedim(x, (0, 1), (2, 0)), np.moveaxis(X, (0, 1), (2, 0)), (4, 1, 12)),
        ("Tensor.mT", x.mT, np.swapaxes(X, -1, -2), (12, 1, 4)),
    ]
    for api, got, exp, strides in cases:
        assert_equal(api, got, exp)
        assert_equal(api, got.stride(), strides, args="strides")
        assert_true(api, got.data_ptr() == x.data_ptr() and _shares(got, x), "result is not a view")
    m = x[0]
    assert_equal("torch.t", m.t(), _ref(m).T)
    assert_equal("torch.t", x[0, 0].t(), _ref(x[0, 0]), args="1D input is unchanged")
    assert_raises("torch.t", RuntimeError, x.t, args="3D input")
    assert_raises("torch.permute", RuntimeError, x.permute, 0, 1, args="too few dims")
    assert_raises("torch.permute", RuntimeError, x.permute, 0, 1, 1, args="repeated dim")
    assert_raises("torch.transpose", IndexError, x.transpose, 0, 3, args="dim out of range")


@pytest.mark.dtypes(SHAPE_DTYPES)
def test_squeeze(device, dtype):
    """squeeze() drops every size-1 dim; squeeze(d) drops d only if its size is 1 (otherwise unchanged);
    squeeze(tuple) (torch >= 2.0) drops the listed size-1 dims; results are views. Catches squeezing a
    non-size-1 dim or all dims when one was named."""
    x = _arange((1, 3, 1, 2, 1), dtype, device)
    X = _ref(x)
    assert_equal("torch.squeeze", tuple(x.squeeze().shape), (3, 2), args="no dim")
    assert_equal("torch.squeeze", x.squeeze(), X.squeeze())
    assert_equal("torch.squeeze", tuple(x.squeeze(0).shape), (3, 1, 2, 1), args="dim=0")
    assert_equal("torch.squeeze", tuple(x.squeeze(-1).shape), (1, 3, 1, 2), args="dim=-1")
    assert_equal("torch.squeeze", tuple(x.squeeze(1).shape), (1, 3, 1, 2, 1), args="dim=1 (size 3): unchanged")
    assert_equal("torch.squeeze", tuple(torch.squeeze(x, (0, 2)).shape), (3, 2, 1), args="dim=(0, 2)")
    assert_equal("torch.squeeze", tuple(torch.squeeze(x, (1, 2)).shape), (1, 3, 2, 1), args="dim=(1, 2): only size-1 dropped")
    assert_true("torch.squeeze", _shares(x.squeeze(), x), "squeeze copied")
    z = torch.ones(1, 1, device=device).to(dtype).squeeze()
    assert_equal("torch.squeeze", tuple(z.shape), (), args="all size-1 -> zero-dim")
    assert_raises("torch.squeeze", IndexError, x.squeeze, 5, args="dim out of range")


@pytest.mark.dtypes(SHAPE_DTYPES)
def test_unsqueeze(device, dtype):
    """unsqueeze(d) inserts a size-1 dim at d, negative d counting from dim()+1 (-1 appends); a view."""
    x = _arange((2, 3), dtype, device)
    X = _ref(x)
    for d, shape in [(0, (1, 2, 3)), (1, (2, 1, 3)), (2, (2, 3, 1)), (-1, (2, 3, 1)), (-3, (1, 2, 3)), (-2, (2, 1, 3))]:
        u = x.unsqueeze(d)
        assert_equal("torch.unsqueeze", tuple(u.shape), shape, args=f"dim={d}")
        assert_equal("torch.unsqueeze", u, X.reshape(shape), args=f"dim={d}")
        assert_true("torch.unsqueeze", _shares(u, x), "unsqueeze copied", args=f"dim={d}")
    assert_raises("torch.unsqueeze", IndexError, x.unsqueeze, 3, args="dim=3 out of range")
    assert_raises("torch.unsqueeze", IndexError, x.unsqueeze, -4, args="dim=-4 out of range")
    z = torch.tensor(1, device=device).to(dtype).unsqueeze(0)
    assert_equal("torch.unsqueeze", tuple(z.shape), (1,), args="zero-dim")
    assert_equal("Tensor.__getitem__", tuple(x[None, :, None].shape), (1, 2, 1, 3), args="None indexing")


@pytest.mark.dtypes(dtypes.FLOAT32 + (torch.int64,))
def test_flatten_unflatten(device, dtype):
    """flatten(start_dim, end_dim) merges an inclusive range of dims; unflatten splits one (with -1);
    flatten of a zero-dim tensor is 1D. Catches an exclusive end_dim or wrong order."""
    x = _arange((2, 3, 4, 5), dtype, device)
    X = _ref(x)
    assert_equal("torch.flatten", x.flatten(), X.reshape(-1), args="defaults")
    assert_equal("torch.flatten", tuple(x.flatten(1).shape), (2, 60), args="start_dim=1")
    assert_equal("torch.flatten", tuple(x.flatten(1, 2).shape), (2, 12, 5), args="start_dim=1, end_dim=2")
    assert_equal("torch.flatten", x.flatten(-3, -2), X.reshape(2, 12, 5), args="start_dim=-3, end_dim=-2")
    assert_equal("torch.flatten", tuple(torch.tensor(3, device=device).flatten().shape), (1,), args="zero-dim")
    u = x.flatten(1).unflatten(1, (3, -1))
    assert_equal("torch.unflatten", tuple(u.shape), (2, 3, 20), args="(3, -1)")
    assert_equal("torch.unflatten", u, X.reshape(2, 3, 20))
    assert_raises("torch.unflatten", RuntimeError, x.unflatten, 1, (2, 2), args="sizes do not multiply to 3")


@pytest.mark.dtypes(SHAPE_DTYPES)
def test_expand(device, dtype):
    """expand gives stride 0 on new/broadcast dims and shares memory; -1 keeps a size; expanding a
    non-1 dim raises; expand_as works. Catches expand that copies (memory blow-up) or misplaces dims."""
    x = _arange((3, 1), dtype, device)
    e = x.expand(2, 3, 4)
    assert_equal("Tensor.expand", tuple(e.shape), (2, 3, 4))
    assert_equal("Tensor.expand", e.stride(), (0, 1, 0), args="strides")
    assert_equal("Tensor.expand", e, np.broadcast_to(_ref(x), (2, 3, 4)))
    assert_true("Tensor.expand", e.data_ptr() == x.data_ptr(), "expand copied")
    assert_equal("Tensor.expand", tuple(x.expand(-1, 5).shape), (3, 5), args="-1 keeps size")
    assert_raises("Tensor.expand", RuntimeError, x.expand, 4, 4, args="non-singleton dim 3 -> 4")
    assert_equal("Tensor.expand_as", tuple(x.expand_as(torch.empty(3, 7)).shape), (3, 7))
    if dtype != torch.bool:
        # several elements of an expanded tensor share one memory location: in-place writes must refuse
        assert_raises("Tensor.add_", RuntimeError, e.add_, 1, args="in-place on an expanded tensor")


@pytest.mark.dtypes(SHAPE_DTYPES)
def test_repeat_tile(device, dtype):
    """repeat tiles the data (copy, contiguous) with extra leading dims allowed, matching np.tile;
    repeat_interleave repeats each element. Catches repeat behaving like repeat_interleave."""
    x = _arange((2, 3), dtype, device)
    X = _ref(x)
    r = x.repeat(2, 2)
    assert_equal("Tensor.repeat", r, np.tile(X, (2, 2)), args="(2, 2)")
    assert_true("Tensor.repeat", not _shares(r, x), "repeat aliases its input")
    assert_equal("Tensor.repeat", x.repeat(3, 1, 2), np.tile(X, (3, 1, 2)), args="(3, 1, 2): extra leading dim")
    assert_raises("Tensor.repeat", RuntimeError, x.repeat, 2, args="fewer repeats than dims")
    assert_equal("torch.tile", torch.tile(x, (2,)), np.tile(X, (2,)), args="(2,)")
    assert_equal("torch.repeat_interleave", torch.repeat_interleave(x, 2, dim=1), np.repeat(X, 2, axis=1), args="2, dim=1")
    assert_equal("torch.repeat_interleave", torch.repeat_interleave(x, torch.tensor([1, 3], device=device), dim=0),
                 np.repeat(X, [1, 3], axis=0), args="tensor repeats, dim=0")
    assert_equal("torch.repeat_interleave", torch.repeat_interleave(x, 2), np.repeat(X, 2), args="flattened")


@pytest.mark.dtypes(SHAPE_DTYPES)
def test_cat_stack(device, dtype):
    """cat joins along an existing dim (negative too), stack along a new one; hstack/vstack/dstack/
    column_stack follow NumPy; cat skips legacy empty (0,) tensors; mismatched shapes raise. Catches wrong
    dim or order and a cat that drops inputs."""
    a, bb = _arange((2, 3), dtype, device), (_arange((2, 3), dtype, device) if dtype == torch.bool else _arange((2, 3), dtype, device) + 10)
    c = _arange((4, 3), dtype, device)
    A, B, C = _ref(a), _ref(bb), _ref(c)
    assert_equal("torch.cat", torch.cat([a, c]), np.concatenate([A, C]), args="dim=0")
    assert_equal("torch.cat", torch.cat((a, bb), dim=1), np.concatenate([A, B], axis=1), args="dim=1")
    assert_equal("torch.cat", torch.cat((a, bb, a), dim=-1), np.concatenate([A, B, A], axis=-1), args="dim=-1, three inputs")
    assert_equal("torch.cat", torch.cat([a, torch.empty(0, device=device, dtype=dtype)]), A, args="legacy empty (0,) skipped")
    assert_equal("torch.cat", torch.cat([a, a.t().t()[:, :0]], 1), A, args="zero-width operand")
    assert_equal("torch.cat", torch.cat([a.t(), bb.t()]), np.concatenate([A.T, B.T]), args="transposed inputs")
    for dim in (0, 1, 2, -1):
        assert_equal("torch.stack", torch.stack([a, bb], dim=dim), np.stack([A, B], axis=dim), args=f"dim={dim}")
    assert_equal("torch.hstack", torch.hstack([a, bb]), np.hstack([A, B]))
    assert_equal("torch.vstack", torch.vstack([a, c]), np.vstack([A, C]))
    assert_equal("torch.dstack", torch.dstack([a, bb]), np.dstack([A, B]))
    v = a[0]
    assert_equal("torch.vstack", torch.vstack([v, v]), np.vstack([_ref(v), _ref(v)]), args="1D inputs become rows")
    assert_equal("torch.hstack", torch.hstack([v, v]), np.hstack([_ref(v), _ref(v)]), args="1D inputs")
    assert_equal("torch.column_stack", torch.column_stack([v, v]), np.column_stack([_ref(v), _ref(v)]))
    assert_raises("torch.cat", RuntimeError, torch.cat, [a, c], dim=1, args="mismatched non-cat dim")
    assert_raises("torch.stack", RuntimeError, torch.stack, [a, c], args="unequal shapes")
    assert_raises("torch.cat", (RuntimeError, ValueError), torch.cat, [], args="empty list")
    out = torch.empty(4, 3, dtype=dtype, device=device)
    r = torch.cat([a, bb], out=out)
    assert_true("torch.cat", r.data_ptr() == out.data_ptr(), "out= ignored")


def test_cat_promotes(device):
    """cat of different dtypes returns their promoted dtype with exact values."""
    i = torch.tensor([1, 2], device=device)
    f = torch.tensor([0.5], dtype=torch.float64, device=device)
    r = torch.cat([i, f])
    assert_equal("torch.cat", r.dtype, torch.float64, args="int64 + float64")
    assert_equal("torch.cat", r, np.array([1.0, 2.0, 0.5]))
    assert_equal("torch.cat", torch.cat([torch.tensor([True], device=device), i]).dtype, torch.int64, args="bool + int64")


@pytest.mark.dtypes(SHAPE_DTYPES)
def test_split_chunk_narrow_unbind(device, dtype):
    """split (int size with a short last piece, or list of sizes), chunk (ceil-sized pieces, possibly
    fewer), tensor_split, narrow and unbind return views matching NumPy; split sizes that do not add up
    raise. Catches wrong piece sizes, copies instead of views, or dropped remainders."""
    x = _arange((7, 4), dtype, device)
    X = _ref(x)
    parts = torch.split(x, 3)
    assert_equal("torch.split", [tuple(p.shape) for p in parts], [(3, 4), (3, 4), (1, 4)], args="split_size=3")
    for p, e in zip(parts, [X[0:3], X[3:6], X[6:7]]):
        assert_equal("torch.split", p, e)
        assert_true("torch.split", _shares(p, x), "split piece is not a view")
    parts = torch.split(x, [2, 5], dim=0)
    assert_equal("torch.split", [tuple(p.shape) for p in parts], [(2, 4), (5, 4)], args="[2, 5]")
    assert_raises("torch.split", RuntimeError, torch.split, x, [2, 2], args="sizes sum to 4 != 7")
    ch = torch.chunk(x, 3)
    assert_equal("torch.chunk", [tuple(p.shape) for p in ch], [(3, 4), (3, 4), (1, 4)], args="7 rows in 3 chunks")
    ch = torch.chunk(torch.arange(6, device=device), 4)
    assert_equal("torch.chunk", [p.numel() for p in ch], [2, 2, 2], args="6 into 4 chunks gives 3")
    cols = torch.chunk(x, 2, dim=1)
    assert_equal("torch.chunk", cols[1], X[:, 2:], args="dim=1")
    ts = torch.tensor_split(x, 3)
    assert_equal("torch.tensor_split", [p.shape[0] for p in ts], [len(s) for s in np.array_split(X, 3)], args="3 sections")
    ts = torch.tensor_split(x, [1, 5], dim=0)
    for p, e in zip(ts, np.split(X, [1, 5])):
        assert_equal("torch.tensor_split", p, e, args="indices [1, 5]")
    n = x.narrow(1, 1, 2)
    assert_equal("torch.narrow", n, X[:, 1:3], args="dim=1, start=1, length=2")
    assert_true("torch.narrow", _shares(n, x), "narrow copied")
    assert_equal("torch.narrow", x.narrow(0, -2, 2), X[-2:], args="negative start")
    assert_raises("torch.narrow", (RuntimeError, IndexError), x.narrow, 1, 3, 2, args="start+length > size")
    ub = torch.unbind(x, 1)
    assert_equal("torch.unbind", len(ub), 4)
    assert_equal("torch.unbind", ub[2], X[:, 2], args="dim=1")
    assert_true("torch.unbind", _shares(ub[2], x), "unbind copied")


@pytest.mark.dtypes(SHAPE_DTYPES)
def test_flip_roll(device, dtype):
    """flip reverses the listed dims (a copy, unlike NumPy); fliplr/flipud; roll shifts with wrap-around,
    negative shifts, several dims, and flattens when dim is omitted. Catches off-by-one shifts."""
    x = _arange((3, 5), dtype, device)
    X = _ref(x)
    for dims in [(0,), (1,), (0, 1), (-1,)]:
        f = torch.flip(x, dims)
        assert_equal("torch.flip", f, np.flip(X, dims), args=f"dims={dims}")
    assert_true("torch.flip", not _shares(torch.flip(x, (0,)), x), "flip aliases its input (documented to copy)")
    assert_equal("torch.fliplr", torch.fliplr(x), np.fliplr(X))
    assert_equal("torch.flipud", torch.flipud(x), np.flipud(X))
    for shifts, dims in [(1, 0), (-2, 1), (7, 1), ((1, -1), (0, 1))]:
        assert_equal("torch.roll", torch.roll(x, shifts, dims), np.roll(X, shifts, dims), args=f"shifts={shifts}, dims={dims}")
    assert_equal("torch.roll", torch.roll(x, 4), np.roll(X, 4), args="no dims: flattened")
    assert_equal("torch.roll", torch.roll(x.t(), 1, 0), np.roll(X.T, 1, 0), args="transposed input")
    assert_equal("torch.rot90", torch.rot90(x, 1, (0, 1)), np.rot90(X, 1, (0, 1)))


@pytest.mark.dtypes(SHAPE_DTYPES)
def test_tril_triu(device, dtype):
    """tril/triu keep the lower/upper triangle relative to `diagonal` (positive above, negative below),
    batched over leading dims; catches off-by-one diagonals and swapped tril/triu."""
    x = _arange((2, 4, 5), dtype, device)
    X = _ref(x)
    for k in (0, 1, -1, 3, -4):
        assert_equal("torch.tril", torch.tril(x, k), np.tril(X, k), args=f"diagonal={k}")
        assert_equal("torch.triu", torch.triu(x, k), np.triu(X, k), args=f"diagonal={k}")
    assert_equal("torch.tril", torch.tril(x.transpose(1, 2)), np.tril(np.swapaxes(X, 1, 2)), args="transposed input")
    y = x.clone()
    y.triu_(1)
    assert_equal("Tensor.triu_", y, np.triu(X, 1), args="in place")
    assert_raises("torch.tril", RuntimeError, torch.tril, x[0, 0], args="1D input")


@pytest.mark.dtypes(SHAPE_DTYPES)
def test_clone(device, dtype):
    """clone copies (new storage, later writes do not show), keeps strides of a non-contiguous input
    (preserve_format), and memory_format=contiguous_format makes it row-major."""
    x = _arange((3, 4), dtype, device)
    X = _ref(x)
    c = x.clone()
    assert_true("Tensor.clone", not _shares(c, x), "clone shares storage")
    with torch.no_grad():
        x.fill_(0 if dtype != torch.bool else False)
    assert_equal("Tensor.clone", c, X, args="source modified after clone")
    t = _arange((3, 4), dtype, device).t()
    ct = t.clone()
    assert_equal("Tensor.clone", ct.stride(), t.stride(), args="preserve_format keeps transposed strides")
    assert_equal("Tensor.clone", ct, _ref(t))
    cc = t.clone(memory_format=torch.contiguous_format)
    assert_equal("Tensor.clone", cc.stride(), (3, 1), args="memory_format=contiguous_format")


def test_diag_diagonal_diag_embed(device):
    """diag (vector -> matrix with offset, matrix -> vector), diagonal (a view, offset/dims), diag_embed."""
    v = torch.tensor([1.0, 2.0, 3.0], device=device)
    V = _ref(v)
    assert_equal("torch.diag", torch.diag(v, 1), np.diag(V, 1), args="vector, diagonal=1")
    m = torch.arange(12.0, device=device).reshape(3, 4)
    M = _ref(m)
    assert_equal("torch.diag", torch.diag(m, -1), np.diag(M, -1), args="matrix, diagonal=-1")
    d = torch.diagonal(m, offset=1)
    assert_equal("torch.diagonal", d, np.diagonal(M, offset=1), args="offset=1")
    assert_true("torch.diagonal", _shares(d, m), "diagonal copied")
    e = torch.diag_embed(torch.ones(2, 3, device=device))
    assert_equal("torch.diag_embed", e, np.broadcast_to(np.eye(3), (2, 3, 3)))
