"""Operator library: the ``*_copy`` variants of view ops (torch.as_strided_copy, detach_copy, select_copy,
slice_copy, split_copy, view_as_real_copy, view_as_complex_copy, torch._conj_copy, torch._neg_view_copy,
torch._reshape_alias_copy, torch._fw_primal_copy, torch._make_dual_copy).

Each is documented as the out-of-place twin of its view op (what functionalization emits): the values are the
view's, computed here with NumPy (np.lib.stride_tricks.as_strided, basic indexing, np.split, complex<->real
pairs), and the result must NOT alias the input: it has its own storage, and writing into the input afterwards
leaves the copy unchanged. Inputs are gapped (every other column of a larger buffer), so a copy that reads the
input as if it were contiguous shows up, and empty where the op allows it.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_raises, assert_true


def _gapped(np_rng, shape, dtype, device):
    """Random values in ``shape`` as every other column of a buffer twice as wide (not contiguous), with
    its float64/complex128 NumPy twin."""
    big_shape = shape[:-1] + (2 * shape[-1],)
    if dtype.is_complex:
        v = np_rng.standard_normal(big_shape) + 1j * np_rng.standard_normal(big_shape)
    else:
        v = np_rng.standard_normal(big_shape)
    big = torch.from_numpy(v).to(dtype).to(device)
    t = big[..., ::2]
    return t, (t.cpu().to(torch.complex128 if dtype.is_complex else torch.float64).numpy().copy())


def _no_alias(api, out, inp, snapshot, args=""):
    """The copy owns its storage and keeps its values when the input is overwritten afterwards."""
    outs = out if isinstance(out, (tuple, list)) else (out,)
    for o in outs:
        assert_true(api, o.untyped_storage().data_ptr() != inp.untyped_storage().data_ptr() or o.numel() == 0,
                    "result shares the input's storage (a view, not a copy)", args=args)
    with torch.no_grad():
        inp.fill_(7)
    for o, s in zip(outs, snapshot):
        assert_equal(api, o.cpu(), s, args=args + " after writing into the input")


def _strided_np(a, size, stride, offset):
    """NumPy's as_strided over the flat buffer of the contiguous float64 array ``a`` (element strides)."""
    flat = np.ascontiguousarray(a).reshape(-1)
    item = flat.itemsize
    return np.lib.stride_tricks.as_strided(flat[offset:], shape=size, strides=[s * item for s in stride]).copy()


# (name, fn(t) -> result(s), numpy oracle(a) -> array(s), input shape)
TABLE = [
    ("torch.select_copy", lambda t: torch.select_copy(t, 1, 2), lambda a: a[:, 2], (4, 5)),
    ("torch.select_copy", lambda t: torch.select_copy(t, 0, -1), lambda a: a[-1], (4, 5)),
    ("torch.slice_copy", lambda t: torch.slice_copy(t, 1, 1, 5, 2), lambda a: a[:, 1:5:2], (4, 5)),
    ("torch.slice_copy", lambda t: torch.slice_copy(t, 0, -3, None), lambda a: a[-3:], (4, 5)),
    ("torch.slice_copy", lambda t: torch.slice_copy(t, 1, 9, 20), lambda a: a[:, 9:20], (4, 5)),  # empty
    ("torch.split_copy", lambda t: torch.split_copy(t, 2, 1), lambda a: np.split(a, [2, 4], axis=1), (3, 5)),
    ("torch.split_copy", lambda t: torch.split_copy(t, 3, 0), lambda a: np.split(a, [3], axis=0), (6, 3)),
    ("torch.detach_copy", lambda t: torch.detach_copy(t), lambda a: a, (3, 4)),
    ("torch.as_strided_copy", lambda t: torch.as_strided_copy(t.contiguous(), (3, 2), (1, 3), 2),
     lambda a: _strided_np(a, (3, 2), (1, 3), 2), (4, 5)),
    ("torch._reshape_alias_copy", lambda t: torch._reshape_alias_copy(t.contiguous(), (5, 4), (4, 1)),
     lambda a: a.reshape(5, 4), (4, 5)),
    ("torch._reshape_alias_copy", lambda t: torch._reshape_alias_copy(t.contiguous(), (5, 4), (1, 5)),
     lambda a: _strided_np(a, (5, 4), (1, 5), 0), (4, 5)),
]


@pytest.mark.dtypes(torch.float32, torch.float64)
@pytest.mark.parametrize("case", range(len(TABLE)), ids=lambda i: f"{TABLE[i][0].split('.')[-1]}-{i}")
def test_view_copy(device, dtype, np_rng, case):
    """select/slice/split/detach/as_strided/_reshape_alias _copy equal their view computed with NumPy and own
    their storage: catches a _copy that returns the view itself (aliasing: a later write into the input
    changes it), one that reads a gapped input as contiguous, and a wrong index/start/step/offset."""
    name, fn, ref, shape = TABLE[case]
    t, a = _gapped(np_rng, shape, dtype, device)
    out = fn(t)
    exp = ref(a)
    if isinstance(exp, list):
        assert_equal(name, len(out), len(exp), args="number of pieces")
        for o, e in zip(out, exp):
            assert_close(name, o, e, op="exact", check_dtype=dtype, check_device=device)
        snaps = [e.copy() for e in exp]
    else:
        assert_close(name, out, exp, op="exact", check_dtype=dtype, check_device=device)
        snaps = [exp.copy()]
    _no_alias(name, out, t, snaps)


def test_detach_copy_no_alias_with_grad(device):
    """detach_copy of a tensor that requires grad has the input's values in new storage: catches a
    detach_copy that returns detach() (a view sharing memory)."""
    x = torch.randn(3, 4, device=device, requires_grad=True)
    y = torch.detach_copy(x)
    assert_close("torch.detach_copy", y, x.detach().cpu().double().numpy(), op="exact")
    assert_true("torch.detach_copy", y.data_ptr() != x.data_ptr(), "result aliases the input")


def test_detach_copy_is_detached(device):
    """detach_copy is documented as 'the same operation as torch.detach()' with fresh outputs, so its result
    is detached: requires_grad False and no grad_fn. Catches a detach_copy that keeps the input in the graph.
    torch 2.13 returns requires_grad=True with a grad_fn whose backward raises 'derivative for
    aten::detach_copy is not implemented' (a real finding, listed in the expectation manifest)."""
    x = torch.randn(3, 4, device=device, requires_grad=True)
    y = torch.detach_copy(x)
    assert_equal("torch.detach_copy", y.requires_grad, False, args="input requires grad")
    assert_true("torch.detach_copy", y.grad_fn is None, f"result has a grad_fn {y.grad_fn!r}")


def test_as_strided_copy_errors(device):
    """as_strided_copy of a size that runs past the storage raises RuntimeError, like as_strided: catches an
    unchecked read out of bounds."""
    t = torch.zeros(6, device=device)
    assert_raises("torch.as_strided_copy", RuntimeError, torch.as_strided_copy, t, (3, 3), (3, 1), 0,
                  args="(3,3),(3,1) over 6 elements")


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_view_as_real_copy(device, dtype, np_rng):
    """view_as_real_copy of a complex tensor is its (real, imag) pairs in a trailing dim of 2 and owns its
    storage; view_as_complex_copy is the inverse; both reject inputs the view ops reject: catches swapped
    real/imag, a conjugate, and aliasing."""
    cdt = torch.complex64 if dtype == torch.float32 else torch.complex128
    c, ca = _gapped(np_rng, (3, 4), cdt, device)
    c = c.contiguous()  # view_as_real needs a complex tensor; the gapped values are made dense here
    r = torch.view_as_real_copy(c)
    exp = np.stack([ca.real, ca.imag], axis=-1)
    assert_close("torch.view_as_real_copy", r, exp, op="exact", check_dtype=dtype, check_device=device)
    _no_alias("torch.view_as_real_copy", r, c, [exp.copy()])

    p, pa = _gapped(np_rng, (5, 2), dtype, device)  # 5 pairs, rows gapped: stride (4, 2) is not allowed...
    p = p.contiguous()[::2]  # ...so take every other row of a dense (5, 2): strides (4, 1) divisible by 2
    pa = pa[::2]
    z = torch.view_as_complex_copy(p)
    expz = pa[..., 0] + 1j * pa[..., 1]
    assert_close("torch.view_as_complex_copy", z, expz, op="exact", check_dtype=cdt, check_device=device)
    _no_alias("torch.view_as_complex_copy", z, p, [expz.copy()])

    assert_raises("torch.view_as_complex_copy", RuntimeError, torch.view_as_complex_copy,
                  torch.zeros(4, 3, dtype=dtype, device=device), args="last dim 3")
    assert_raises("torch.view_as_real_copy", RuntimeError, torch.view_as_real_copy,
                  torch.zeros(4, dtype=dtype, device=device), args="real input")


@pytest.mark.smoke
def test_conj_neg_view_copy(device, np_rng):
    """torch._conj_copy is the materialized conjugate and torch._neg_view_copy the materialized negation,
    each in its own storage (not a lazy conj/neg bit on the input's memory): catches a copy that keeps only
    the bit (it would alias the input) or forgets to apply it."""
    c, ca = _gapped(np_rng, (4, 6), torch.complex64, device)
    got = torch._conj_copy(c)
    assert_close("torch._conj_copy", got, np.conj(ca), op="exact", check_device=device)
    _no_alias("torch._conj_copy", got, c, [np.conj(ca)])

    c, ca = _gapped(np_rng, (4, 6), torch.complex64, device)
    got = torch._neg_view_copy(c)
    assert_close("torch._neg_view_copy", got, -ca, op="exact", check_device=device)
    _no_alias("torch._neg_view_copy", got, c, [-ca])

    # a conj view in, its conj copied out: the original values
    c, ca = _gapped(np_rng, (3,), torch.complex128, device)
    got = torch._conj_copy(c.conj())
    assert_close("torch._conj_copy", got, ca, op="exact", args="of a conj view")


def test_fw_primal_make_dual_copy(device, np_rng):
    """torch._make_dual_copy(primal, tangent, level) and torch._fw_primal_copy(t, level) (the copies
    functionalization emits for forward AD; they run under inference mode on inference tensors, as there)
    return the primal's values in new storage: catches a copy that returns the tangent, or the input itself."""
    with torch.inference_mode():
        x = torch.from_numpy(np_rng.standard_normal((3, 4))).to(device)
        t = torch.from_numpy(np_rng.standard_normal((3, 4))).to(device)
        a = x.cpu().numpy().copy()
        d = torch._make_dual_copy(x, t, level=0)
        assert_close("torch._make_dual_copy", d, a, op="exact", check_device=device)
        _no_alias("torch._make_dual_copy", d, x, [a])

        x = torch.from_numpy(np_rng.standard_normal((2, 5))).to(device)
        a = x.cpu().numpy().copy()
        p = torch._fw_primal_copy(x, 0)
        assert_close("torch._fw_primal_copy", p, a, op="exact", check_device=device)
        _no_alias("torch._fw_primal_copy", p, x, [a])
