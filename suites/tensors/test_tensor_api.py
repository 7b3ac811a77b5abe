"""§ 1 Tensors: the less-used Tensor API: predicates (is_conj/is_neg/is_inference/is_signed/is_nonzero/
is_same_size/is_set_to/is_shared/is_distributed/is_pinned), device queries (get_device, cuda/xpu/ipu/mtia,
pin_memory, record_stream), memory metadata (dim_order, const_data_ptr, storage/storage_type), storage
surgery (resize/resize_/resize_as, set_, as_strided_, as_strided_scatter, slice_inverse), fill_diagonal_
(wrap=), the CPU-only Python callbacks apply_/map_/map2_, unsafe_split_with_sizes, torch._assert_async and
_functional_assert_async, the device/layout property flags and autograd bookkeeping properties (output_nr,
_grad, _grad_fn, _cdata, _post_accumulate_grad_hooks, volatile, name), the Python protocol dunders
(__contains__, __reversed__, __array__/__array_wrap__, __dlpack__/__dlpack_device__, __complex__/__long__/
__nonzero__, __reduce_ex__/__setstate__), module_load, the autocast casts, and to_mkldnn.

Oracles: NumPy for values (np.lib.stride_tricks for strided views, np.fill_diagonal with wrap=), the Python
semantics the dunder implements (``in`` on a NumPy array, reversed(), complex(), int() truncating toward
zero), and the documented value of each flag for the layout/device at hand (a CSR tensor is is_sparse_csr,
a strided one is not: each flag is checked where it must be True as well as where it must be False).
"""
from __future__ import annotations

import copy
import pickle
import warnings

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_raises, assert_true


def _np(t):
    return t.detach().cpu().resolve_conj().resolve_neg().double().numpy().copy() if not t.is_complex() else \
        t.detach().cpu().resolve_conj().resolve_neg().to(torch.complex128).numpy().copy()


def _storage_ptr(t):
    return t.untyped_storage().data_ptr()


# ---------------------------------------------------------------------------------------------- predicates

def test_conj_neg_inference_flags(device):
    """torch.is_conj / torch.is_neg are True exactly for a lazy conj / neg view (and False after resolve),
    torch.is_inference exactly for a tensor made under inference_mode: catches a flag that is always False
    (a lazily conjugated tensor then gets read as unconjugated by code that checks it)."""
    c = torch.randn(4, dtype=torch.complex64, device=device)
    assert_equal("torch.is_conj", torch.is_conj(c), False, args="plain")
    assert_equal("torch.is_conj", torch.is_conj(c.conj()), True, args="conj view")
    assert_equal("torch.is_conj", torch.is_conj(c.conj().resolve_conj()), False, args="resolved")
    assert_equal("torch.is_conj", torch.is_conj(torch.randn(3, device=device).conj()), False, args="real conj is a no-op")
    n = torch._neg_view(c)
    assert_equal("torch.is_neg", torch.is_neg(n), True, args="_neg_view")
    assert_equal("torch.is_neg", torch.is_neg(c), False, args="plain")
    assert_close("torch.is_neg", n, -_np(c), op="exact", args="values of the neg view")
    with torch.inference_mode():
        inf = torch.ones(3, device=device)
    assert_equal("torch.is_inference", torch.is_inference(inf), True, args="made under inference_mode")
    assert_equal("torch.is_inference", torch.is_inference(c), False, args="normal tensor")


SIGNED = {torch.uint8: False, torch.int8: True, torch.int16: True, torch.int32: True, torch.int64: True,
          torch.bool: False, torch.float16: True, torch.bfloat16: True, torch.float32: True,
          torch.float64: True, torch.complex64: True}


def test_is_signed(device):
    """torch.is_signed / Tensor.is_signed follow the dtype (NumPy's signedness: uint8 and bool unsigned,
    every float/complex signed): catches a table with uint8 or bool marked signed."""
    for dt, signed in SIGNED.items():
        t = torch.zeros(2, dtype=dt, device=device)
        np_signed = dt.is_floating_point or dt.is_complex or (
            dt != torch.bool and np.issubdtype(np.dtype(str(dt).split(".")[-1]), np.signedinteger))
        assert_equal("torch.is_signed", signed, np_signed, args=f"table for {dt}")
        assert_equal("torch.is_signed", torch.is_signed(t), signed, args=str(dt))
        assert_equal("torch.Tensor.is_signed", t.is_signed(), signed, args=str(dt))


def test_is_nonzero(device):
    """torch.is_nonzero / Tensor.is_nonzero of a one-element tensor is bool(value) (0.0, -0.0 and False are
    zero, NaN is not); more or fewer than one element raises RuntimeError: catches a reduction (any())
    instead of the single-element rule."""
    for v, exp in ((0.5, True), (0.0, False), (-0.0, False), (float("nan"), True), (-3, True), (0, False), (False, False)):
        t = torch.tensor([v], device=device)
        assert_equal("torch.is_nonzero", torch.is_nonzero(t), exp, args=repr(v))
        assert_equal("torch.Tensor.is_nonzero", t.reshape(()).is_nonzero(), exp, args=f"0-d {v!r}")
    assert_raises("torch.is_nonzero", RuntimeError, torch.is_nonzero, torch.tensor([1, 2], device=device), args="2 elements")
    assert_raises("torch.is_nonzero", RuntimeError, torch.is_nonzero, torch.tensor([], device=device), args="empty")


def test_is_same_size_is_set_to(device):
    """is_same_size compares shapes only (not values, dtype or strides); is_set_to is True only for the same
    storage, offset, size and stride (documented): catches is_same_size comparing numel (a transpose has the
    same numel) and is_set_to ignoring the offset or the strides."""
    x = torch.arange(12.0, device=device).reshape(3, 4)
    assert_equal("torch.is_same_size", torch.is_same_size(x, torch.zeros(3, 4, dtype=torch.int64, device=device)), True)
    assert_equal("torch.is_same_size", torch.is_same_size(x, x.t()), False, args="transpose (4,3)")
    assert_equal("torch.Tensor.is_same_size", x.is_same_size(x.reshape(12)), False, args="same numel, other shape")
    assert_equal("torch.Tensor.is_same_size", x[:, ::2].is_same_size(torch.empty(3, 2, device=device)), True, args="gapped")
    assert_equal("torch.Tensor.is_set_to", x.is_set_to(x), True, args="itself")
    assert_equal("torch.Tensor.is_set_to", x.is_set_to(x.view(3, 4)), True, args="same-metadata view")
    assert_equal("torch.Tensor.is_set_to", x.is_set_to(x.t()), False, args="transpose")
    assert_equal("torch.Tensor.is_set_to", x[1:].is_set_to(x[:2]), False, args="other offset")
    assert_equal("torch.Tensor.is_set_to", x.is_set_to(x.clone()), False, args="clone (other storage)")
    assert_equal("torch.Tensor.is_set_to", x[:, ::2].is_set_to(x[:, :2]), False, args="other strides")


def test_share_memory(device):
    """share_memory_() returns self, keeps the values and makes is_shared() True (a plain CPU tensor is not
    shared; a CUDA tensor is documented as a no-op, always shared): catches share_memory_ returning a copy
    or losing the values while moving them to shared memory."""
    x = torch.randn(5, 7, device=device)
    before = _np(x)
    if x.device.type == "cpu":
        assert_equal("torch.Tensor.is_shared", x.is_shared(), False, args="fresh CPU tensor")
    r = x.share_memory_()
    assert_true("torch.Tensor.share_memory_", r is x, "did not return self")
    assert_equal("torch.Tensor.is_shared", x.is_shared(), True, args="after share_memory_")
    assert_close("torch.Tensor.share_memory_", x, before, op="exact", args="values kept")
    assert_equal("torch.Tensor.is_distributed", x.is_distributed(), False)
    assert_equal("torch.is_distributed", torch.is_distributed(x), False)


# ---------------------------------------------------------------------------------------------- devices

def test_get_device(device):
    """torch.get_device / Tensor.get_device: -1 for a CPU tensor, the CUDA ordinal otherwise: catches 0
    returned for a CPU tensor (code then moves it to cuda:0)."""
    x = torch.zeros(2, device=device)
    exp = -1 if x.device.type == "cpu" else x.device.index
    assert_equal("torch.Tensor.get_device", x.get_device(), exp)
    assert_equal("torch.get_device", torch.get_device(x), exp)


def test_tensor_cuda():
    """Tensor.cuda() copies to the current CUDA device (values equal, new storage, non_blocking accepted); on a
    build without CUDA it raises the documented AssertionError ('Torch not compiled with CUDA enabled'), on a
    CUDA build without a device a RuntimeError: catches a cuda() that silently returns the CPU tensor."""
    x = torch.randn(3, 4)
    if torch.cuda.is_available():
        y = x.cuda(non_blocking=True)
        torch.cuda.synchronize()
        assert_equal("torch.Tensor.cuda", y.device.type, "cuda")
        assert_close("torch.Tensor.cuda", y, _np(x), op="exact")
        return
    exc = RuntimeError if torch.backends.cuda.is_built() else AssertionError
    assert_raises("torch.Tensor.cuda", exc, x.cuda, args=f"no CUDA device (built with CUDA: {torch.backends.cuda.is_built()})")


@pytest.mark.parametrize("backend", ("xpu", "mtia", "ipu"))
def test_tensor_other_accelerators(backend):
    """Tensor.xpu()/mtia() on a build without that backend raise AssertionError ('Torch not compiled with ...
    enabled') and Tensor.ipu() RuntimeError ('not linked with support for ipu devices'): catches a method that
    silently returns the CPU tensor. Where the backend is available, the copy lands on it with equal values."""
    mod = getattr(torch, backend, None)
    x = torch.randn(4)
    if mod is not None and hasattr(mod, "is_available") and mod.is_available():
        y = getattr(x, backend)()
        assert_equal(f"torch.Tensor.{backend}", y.device.type, backend)
        assert_close(f"torch.Tensor.{backend}", y, _np(x), op="exact")
        return
    exc = RuntimeError if backend == "ipu" else (AssertionError, RuntimeError)
    assert_raises(f"torch.Tensor.{backend}", exc, getattr(x, backend), args="backend absent")


def _accelerator_available() -> bool:
    acc = getattr(torch, "accelerator", None)
    return bool(acc.is_available()) if acc is not None else torch.cuda.is_available()


def test_pin_memory():
    """Tensor.is_pinned() is False for an ordinary CPU tensor; pin_memory() returns a pinned copy with equal
    values (and is_pinned() True), pinning an already pinned tensor returns it unchanged: catches pin_memory
    returning an unpinned tensor. Pinning needs an accelerator."""
    x = torch.randn(64, 3)
    assert_equal("torch.Tensor.is_pinned", x.is_pinned(), False, args="ordinary CPU tensor")
    if not _accelerator_available():
        pytest.skip("pin_memory needs an accelerator (CUDA/XPU/...), none is present on this machine")
    p = x.pin_memory()
    assert_equal("torch.Tensor.is_pinned", p.is_pinned(), True, args="after pin_memory")
    assert_close("torch.Tensor.pin_memory", p, _np(x), op="exact")
    assert_true("torch.Tensor.pin_memory", p.data_ptr() != x.data_ptr(), "pinned tensor shares unpinned memory")


@pytest.mark.requires_cuda
def test_record_stream():
    """Tensor.record_stream(s) marks the memory as used by stream s: after work on s that reads the tensor
    and the tensor is freed, the result computed on s is still correct (no reuse of the block before s is
    done): catches a record_stream that does not keep the allocation alive for s."""
    if not torch.cuda.is_available():
        pytest.skip("record_stream needs CUDA streams; no CUDA device")
    s = torch.cuda.Stream()
    x = torch.arange(1 << 20, device="cuda", dtype=torch.float32)
    exp = np.arange(1 << 20, dtype=np.float64) * 2
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        y = x * 2
    x.record_stream(s)
    del x
    z = torch.full((1 << 20,), -1.0, device="cuda")  # would reuse x's block without record_stream
    s.synchronize()
    assert_close("torch.Tensor.record_stream", y, exp, op="exact")
    assert_true("torch.Tensor.record_stream", bool((z == -1).all()), "new allocation corrupted")


# ---------------------------------------------------------------------------------------------- metadata

def test_dim_order(device):
    """Tensor.dim_order() lists the dims from outermost to innermost stride (NumPy argsort of -strides): a
    permuted view and channels_last give their permutation: catches the identity returned for every layout."""
    x = torch.randn(2, 3, 4, 5, device=device)
    cases = {"contiguous": x, "permuted": x.permute(0, 2, 3, 1), "channels_last": x.contiguous(memory_format=torch.channels_last),
             "transposed": x.transpose(0, 3), "gapped": x[:, :, ::2]}
    for name, t in cases.items():
        exp = tuple(int(i) for i in np.argsort(-np.array(t.stride()), kind="stable"))
        assert_equal("torch.Tensor.dim_order", tuple(t.dim_order()), exp, args=name)


def test_const_data_ptr_and_storage(device):
    """const_data_ptr() equals data_ptr() (the first element, offset included: x[1] starts one row later);
    storage()/storage_type() expose the whole underlying buffer (a gapped view's storage has the base's
    numel, in order, of the tensor's dtype): catches const_data_ptr ignoring the storage offset and storage()
    returning only the view's elements."""
    base = torch.arange(24.0, device=device).reshape(4, 6)
    v = base[1:, ::2]
    item = base.element_size()
    assert_equal("torch.Tensor.const_data_ptr", v.const_data_ptr(), v.data_ptr())
    assert_equal("torch.Tensor.const_data_ptr", v.const_data_ptr() - base.const_data_ptr(), 6 * item, args="offset of row 1")
    with warnings.catch_warnings():  # TypedStorage is deprecated (a UserWarning), still documented
        warnings.simplefilter("ignore", UserWarning)
        st = v.storage()
        assert_equal("torch.Tensor.storage", st.size(), 24, args="the base's numel")
        assert_equal("torch.Tensor.storage", st.dtype, torch.float32)
        assert_close("torch.Tensor.storage", torch.tensor(st.tolist()), np.arange(24.0), op="exact")
        assert_equal("torch.Tensor.storage_type", v.storage_type(), torch.FloatStorage if device == "cpu" else torch.cuda.FloatStorage)
        assert_equal("torch.Tensor.storage_type", torch.zeros(1, dtype=torch.float64).storage_type(), torch.DoubleStorage)


# ---------------------------------------------------------------------------------------------- storage surgery

def test_resize(device):
    """resize_ keeps the leading elements of the flat buffer when shrinking and keeps them when growing (the
    new tail is unspecified), resize_as_ takes the other's shape; Tensor.resize/resize_as (deprecated,
    out of place) give the same values as reshape when numel is unchanged: catches resize_ that reorders or
    zeroes the kept elements, and a resize that ignores the new shape."""
    a = np.arange(12.0)
    x = torch.arange(12.0, device=device)  # float32: checks copy it (a NumPy view would pin the storage's size)
    r = x.resize_(2, 3)
    assert_true("torch.Tensor.resize_", r is x, "did not return self")
    assert_close("torch.Tensor.resize_", x, a[:6].reshape(2, 3), op="exact", args="shrink to (2,3)")
    x.resize_(4, 4)
    assert_close("torch.Tensor.resize_", x.reshape(-1)[:12], a, op="exact", args="grow back: kept prefix")
    y = torch.arange(12.0, device=device)
    y.resize_as_(torch.empty(3, 2, device=device))
    assert_close("torch.Tensor.resize_as_", y, a[:6].reshape(3, 2), op="exact")
    with warnings.catch_warnings():  # non-inplace resize is deprecated (UserWarning)
        warnings.simplefilter("ignore", UserWarning)
        z = torch.arange(12.0, device=device)
        assert_close("torch.Tensor.resize", z.resize(3, 4), a.reshape(3, 4), op="exact")
        assert_close("torch.Tensor.resize_as", z.resize_as(torch.empty(6, 2)), a.reshape(6, 2), op="exact")
    assert_raises("torch.Tensor.resize_", RuntimeError, torch.arange(12.0, device=device).resize_, -1, 3, args="negative size")


def test_set_(device):
    """set_(storage, offset, size, stride) makes the tensor a strided view of that storage (NumPy as_strided
    over the flat buffer), set_(tensor) makes it share the other's metadata (is_set_to True): catches an
    ignored storage offset or stride."""
    src = torch.arange(20.0, device=device)
    a = np.arange(20.0)
    t = torch.empty(0, device=device)
    r = t.set_(src.untyped_storage(), 3, (3, 4), (5, 1))
    assert_true("torch.Tensor.set_", r is t, "did not return self")
    exp = np.lib.stride_tricks.as_strided(a[3:], shape=(3, 4), strides=(5 * 8, 8))
    assert_close("torch.Tensor.set_", t, exp, op="exact", args="storage, 3, (3,4), (5,1)")
    src[3] = -1
    assert_close("torch.Tensor.set_", t[0, 0], -1.0, op="exact", args="shares the storage")
    u = torch.empty(0, device=device)
    u.set_(src[2:][::3])
    assert_equal("torch.Tensor.is_set_to", u.is_set_to(src[2:][::3]), True, args="after set_(tensor)")
    assert_close("torch.Tensor.set_", u, _np(src)[2::3], op="exact", args="set_(tensor)")


@pytest.mark.smoke
def test_as_strided_inplace_and_scatter(device, np_rng):
    """as_strided_ restrides self in place (returns self, NumPy as_strided over the flat buffer);
    torch.as_strided_scatter / Tensor.as_strided_scatter write src into the positions that
    as_strided(size, stride, offset) would view, in a copy, leaving the input unchanged: catches an
    ignored offset, swapped size/stride, and a scatter that writes into its input."""
    a = np_rng.standard_normal(30)
    x = torch.tensor(a, device=device)
    r = x.as_strided_((4, 3), (2, 7), 1)
    assert_true("torch.Tensor.as_strided_", r is x, "did not return self")
    exp = np.lib.stride_tricks.as_strided(a[1:], shape=(4, 3), strides=(2 * 8, 7 * 8))
    assert_close("torch.Tensor.as_strided_", x, exp, op="exact", args="(4,3),(2,7),1")
    assert_equal("torch.Tensor.as_strided_", tuple(x.stride()), (2, 7))

    inp = torch.tensor(a, device=device)
    src = torch.tensor(np_rng.standard_normal((3, 2)), device=device)
    for api, fn in (("torch.as_strided_scatter", torch.as_strided_scatter),
                    ("torch.Tensor.as_strided_scatter", torch.Tensor.as_strided_scatter)):
        got = fn(inp, src, (3, 2), (4, 9), 2)
        exp = a.copy()
        view = np.lib.stride_tricks.as_strided(exp[2:], shape=(3, 2), strides=(4 * 8, 9 * 8))
        view[...] = _np(src)
        assert_close(api, got, exp, op="exact", args="(3,2),(4,9),2")
        assert_close(api, inp, a, op="exact", args="input unchanged")
        assert_true(api, _storage_ptr(got) != _storage_ptr(inp), "result shares the input's storage")


def test_slice_inverse(device):
    """torch.slice_inverse(view, src, dim, start, end, step) / Tensor.slice_inverse return a tensor with src's
    metadata over the view's storage (the base the slice was taken from): catches a result that is src itself
    or a copy of the slice."""
    base = torch.arange(24.0, device=device).reshape(4, 6)
    for dim, start, end, step in ((1, 1, 5, 2), (0, 2, 4, 1)):
        s = base.narrow(dim, start, end - start)[::1] if step == 1 else base[:, start:end:step]
        src = torch.empty(4, 6, device=device)
        for api, fn in (("torch.slice_inverse", torch.slice_inverse), ("torch.Tensor.slice_inverse", torch.Tensor.slice_inverse)):
            got = fn(s, src, dim, start, end, step)
            assert_close(api, got, np.arange(24.0).reshape(4, 6), op="exact", args=f"dim={dim}, {start}:{end}:{step}")
            assert_true(api, _storage_ptr(got) == _storage_ptr(base), "result does not view the slice's storage")


@pytest.mark.parametrize("shape", ((7, 3), (3, 7), (4, 4), (3, 3, 3)))
def test_fill_diagonal_(device, shape):
    """fill_diagonal_(v, wrap) equals np.fill_diagonal(a, v, wrap): for tall matrices wrap=True restarts the
    diagonal after N+1 rows (documented), wrap=False stops; all dims equal for >2-d, else RuntimeError:
    catches wrap ignored, and a diagonal that runs past the last column."""
    for wrap in (False, True):
        a = np.zeros(shape)
        np.fill_diagonal(a, 5.0, wrap=wrap)
        x = torch.zeros(shape, device=device)
        r = x.fill_diagonal_(5.0, wrap=wrap)
        assert_true("torch.Tensor.fill_diagonal_", r is x, "did not return self")
        assert_close("torch.Tensor.fill_diagonal_", x, a, op="exact", args=f"{shape}, wrap={wrap}")
    assert_raises("torch.Tensor.fill_diagonal_", RuntimeError, torch.zeros(2, 3, 2, device=device).fill_diagonal_, 1.0,
                  args="unequal dims in 3-d")


@pytest.mark.devices("cpu")
def test_python_callbacks(device):
    """apply_(f), map_(other, f) and map2_(x, y, f) run a Python callable per element in place (CPU tensors
    only, documented), broadcasting other/x/y to self: catches a callback applied to a copy, to the wrong
    operand order, or only to the first element of a gapped view."""
    base = torch.arange(12.0).reshape(3, 4)
    v = base[:, ::2]
    a = _np(v)
    r = v.apply_(lambda e: e * e - 1)
    assert_true("torch.Tensor.apply_", r is v, "did not return self")
    assert_close("torch.Tensor.apply_", v, a * a - 1, op="exact", args="gapped view")
    assert_close("torch.Tensor.apply_", base[:, 1::2], np.arange(12.0).reshape(3, 4)[:, 1::2], op="exact", args="gaps untouched")
    x = torch.tensor([1.0, 2.0, 3.0])
    o = torch.tensor([10.0, 20.0, 30.0])
    x.map_(o, lambda s, t: s - 2 * t)
    assert_close("torch.Tensor.map_", x, np.array([1.0, 2.0, 3.0]) - 2 * np.array([10.0, 20.0, 30.0]), op="exact")
    y = torch.ones(2, 3)
    y.map2_(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([[2.0], [5.0]]), lambda s, p, q: s + p * q)
    assert_close("torch.Tensor.map2_", y, 1 + np.array([1.0, 2.0, 3.0])[None, :] * np.array([[2.0], [5.0]]), op="exact",
                 args="broadcast operands")


def test_unsafe_split_with_sizes(device, np_rng):
    """torch.unsafe_split_with_sizes / Tensor.unsafe_split_with_sizes equal np.split at the cumulative sizes
    (a zero size gives an empty piece); sizes that do not add up raise RuntimeError: catches pieces cut at the
    sizes instead of their running sum."""
    a = np_rng.standard_normal((4, 9))
    x = torch.tensor(a, device=device)
    sizes = [2, 0, 3, 4]
    exp = np.split(a, np.cumsum(sizes)[:-1], axis=1)
    for api, fn in (("torch.unsafe_split_with_sizes", torch.unsafe_split_with_sizes),
                    ("torch.Tensor.unsafe_split_with_sizes", torch.Tensor.unsafe_split_with_sizes)):
        got = fn(x, sizes, 1)
        assert_equal(api, len(got), 4, args="number of pieces")
        for g, e in zip(got, exp):
            assert_close(api, g, e, op="exact", args=f"sizes={sizes}, dim=1")
        assert_raises(api, RuntimeError, fn, x, [2, 3], 1, args="sizes sum to 5 of 9")


def test_assert_async(device):
    """torch._assert_async(t) passes for a true/non-zero one-element tensor and raises RuntimeError for a
    false/zero one (with the given message where one is passed); torch._functional_assert_async raises the
    message for false and returns a dependency token for true: catches an assert that never fires."""
    torch._assert_async(torch.tensor(True, device=device))
    torch._assert_async(torch.tensor(2.5, device=device))
    # the false cases on CPU tensors only: on an accelerator a false assert is a device-side assert that
    # poisons the context for every later test
    assert_raises("torch._assert_async", RuntimeError, torch._assert_async, torch.tensor(False), args="False")
    assert_raises("torch._assert_async", RuntimeError, torch._assert_async, torch.tensor(0.0), args="0.0")
    assert_raises("torch._assert_async", RuntimeError, torch._assert_async, torch.tensor(0), "custom message",
                  match="custom message", args="0, msg")
    assert_raises("torch._assert_async", RuntimeError, torch._assert_async, torch.tensor([1, 1]), args="2 elements")
    tok = torch.empty(0)
    out = torch._functional_assert_async(torch.tensor(True), "unused", tok)
    assert_true("torch._functional_assert_async", isinstance(out, torch.Tensor), f"returned {type(out).__name__}, not a token tensor")
    assert_raises("torch._functional_assert_async", RuntimeError, torch._functional_assert_async, torch.tensor(False),
                  "the condition failed", tok, match="the condition failed", args="False")


# ---------------------------------------------------------------------------------------------- properties

def test_device_layout_flags(device):
    """The device/layout flags on an ordinary tensor are False except its own device's (is_xla, is_xpu,
    is_mps, is_ipu, is_maia, is_mtia, is_vulkan); is_sparse_csr is False for strided and True for a CSR
    tensor: catches a flag wired to another device's test or always False."""
    x = torch.zeros(3, 3, device=device)
    for flag in ("is_xla", "is_xpu", "is_mps", "is_ipu", "is_maia", "is_mtia", "is_vulkan"):
        if not hasattr(x, flag):
            continue  # older torch: the flag does not exist (no device of that kind can be present)
        assert_equal(f"torch.Tensor.{flag}", getattr(x, flag), flag == f"is_{x.device.type}", args=str(x.device))
    assert_equal("torch.Tensor.is_sparse_csr", x.is_sparse_csr, False, args="strided")
    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        csr = torch.eye(3, device=device).to_sparse_csr()
    assert_equal("torch.Tensor.is_sparse_csr", csr.is_sparse_csr, True, args="to_sparse_csr()")
    assert_equal("torch.Tensor.is_sparse_csr", torch.eye(3, device=device).to_sparse().is_sparse_csr, False, args="COO")


def test_autograd_properties(device):
    """output_nr is the index of a tensor among its grad_fn's outputs (unbind/split outputs 0..n-1; a leaf 0);
    _grad equals .grad after backward and is settable; _grad_fn is grad_fn; _cdata is the same int for one
    tensor object and differs between two; _post_accumulate_grad_hooks is None until a hook is registered;
    name is None for an unnamed tensor and volatile is False (deprecated, always False): catches output_nr
    always 0 (wrong gradient slot for multi-output ops) and _grad not tracking .grad."""
    x = torch.randn(4, 3, device=device, requires_grad=True)
    assert_equal("torch.Tensor.output_nr", x.output_nr, 0, args="leaf")
    for name, parts in (("unbind", x.unbind(0)), ("split", x.split(1, dim=0)), ("chunk", x.chunk(2, dim=1))):
        assert_equal("torch.Tensor.output_nr", [p.output_nr for p in parts], list(range(len(parts))), args=name)
    y = (x * x).sum()
    assert_true("torch.Tensor._grad_fn", y._grad_fn is y.grad_fn and y._grad_fn is not None, "_grad_fn is not grad_fn")
    assert_true("torch.Tensor._grad", x._grad is None, "a fresh leaf has a _grad")
    y.backward()
    assert_close("torch.Tensor._grad", x._grad, 2 * _np(x), op="exact", args="after backward of sum(x*x)")
    assert_true("torch.Tensor._grad", x._grad is x.grad, "_grad is not .grad")
    assert_true("torch.Tensor._cdata", x._cdata == x._cdata and isinstance(x._cdata, int), "_cdata is not a stable int")
    other = torch.zeros(1, device=device)
    assert_true("torch.Tensor._cdata", x._cdata != other._cdata, "two tensors share a _cdata")
    assert_true("torch.Tensor._post_accumulate_grad_hooks", x._post_accumulate_grad_hooks is None, "hooks before registering")
    seen = []
    x.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.clone()))
    hooks = x._post_accumulate_grad_hooks
    assert_equal("torch.Tensor._post_accumulate_grad_hooks", len(hooks), 1, args="after one register")
    x.grad = None
    (x.sum() * 3).backward()
    assert_close("torch.Tensor._post_accumulate_grad_hooks", seen[0], np.full((4, 3), 3.0), op="exact", args="hook saw the grad")
    assert_true("torch.Tensor.name", x.name is None, f"unnamed tensor has name {x.name!r}")
    with warnings.catch_warnings():  # volatile is deprecated (UserWarning)
        warnings.simplefilter("ignore", UserWarning)
        assert_equal("torch.Tensor.volatile", x.volatile, False)


# ---------------------------------------------------------------------------------------------- dunders

def test_contains_reversed(device, np_rng):
    """``v in t`` (__contains__) is NumPy's ``v in a`` for scalars and tensors (NaN is in nothing), and
    rejects other types with RuntimeError; reversed(t) (__reversed__) flips dim 0 like np.flip(a, 0) (a 0-d
    tensor is returned as is): catches __contains__ answering for the first element only, and a reversal of
    the last dim."""
    a = np.round(np_rng.standard_normal((3, 5)), 1)
    x = torch.tensor(a, device=device)[:, ::2]
    av = a[:, ::2]
    for v in (float(av[2, 2]), float(a[0, 1]) + 100.0, float("nan"), 0.123):
        assert_equal("torch.Tensor.__contains__", x.__contains__(v), bool(v in av), args=repr(v))
    assert_equal("torch.Tensor.__contains__", torch.tensor(av[1, 0], device=device) in x, True, args="0-d tensor")
    assert_raises("torch.Tensor.__contains__", RuntimeError, x.__contains__, "a", args="str")
    assert_close("torch.Tensor.__reversed__", reversed(x), np.flip(av, 0), op="exact")
    assert_close("torch.Tensor.__reversed__", x[0].__reversed__(), av[0][::-1], op="exact", args="1-d")
    s = torch.tensor(2.0, device=device)
    assert_close("torch.Tensor.__reversed__", reversed(s), 2.0, op="exact", args="0-d")


def test_array_protocol(np_rng):
    """np.asarray(t) (__array__) gives t's values and dtype (sharing a CPU tensor's memory), __array__(dtype)
    converts; a NumPy ufunc applied to a tensor returns a tensor through __array_wrap__: catches __array__
    returning the storage of a gapped view instead of its elements, and __array_wrap__ returning ndarray."""
    a = np_rng.standard_normal((4, 6))
    x = torch.tensor(a, dtype=torch.float32)[:, ::2]
    got = np.asarray(x)
    assert_equal("torch.Tensor.__array__", got.dtype, np.dtype(np.float32))
    assert_close("torch.Tensor.__array__", got, a.astype(np.float32)[:, ::2], op="exact")
    assert_equal("torch.Tensor.__array__", x.__array__(np.float64).dtype, np.dtype(np.float64), args="dtype=float64")
    c = torch.tensor(a)
    shared = np.asarray(c)
    c[0, 0] = 42.0
    assert_equal("torch.Tensor.__array__", float(shared[0, 0]), 42.0, args="shares memory")
    w = x.__array_wrap__(np.ones((2, 2)))
    assert_true("torch.Tensor.__array_wrap__", isinstance(w, torch.Tensor), f"returned {type(w).__name__}")
    assert_close("torch.Tensor.__array_wrap__", w, np.ones((2, 2)), op="exact")
    s = np.sin(x)
    assert_true("torch.Tensor.__array_wrap__", isinstance(s, torch.Tensor), f"np.sin(tensor) returned {type(s).__name__}")
    assert_close("torch.Tensor.__array_wrap__", s, np.sin(a.astype(np.float32)[:, ::2].astype(np.float64)),
                 op="transcendental", dtype=torch.float32, args="np.sin(tensor)")


def test_dlpack(device, np_rng):
    """__dlpack_device__ is (kDLCPU = 1, 0) for a CPU tensor and (kDLCUDA = 2, index) for CUDA; a CPU tensor
    goes through numpy.from_dlpack (__dlpack__) without a copy (a gapped view keeps its strides), a CUDA one
    round-trips through torch.from_dlpack: catches a wrong device code and a capsule with wrong strides."""
    a = np_rng.standard_normal((3, 8))
    x = torch.tensor(a, device=device)[:, ::2]
    dev_type, dev_id = x.__dlpack_device__()
    exp = (1, 0) if device == "cpu" else (2, x.device.index)
    assert_equal("torch.Tensor.__dlpack_device__", (int(dev_type), int(dev_id)), exp)
    if device == "cpu":
        n = np.from_dlpack(x)
        assert_close("torch.Tensor.__dlpack__", n, a[:, ::2], op="exact", args="numpy.from_dlpack")
        x[0, 0] = -7.0
        assert_equal("torch.Tensor.__dlpack__", float(n[0, 0]), -7.0, args="zero-copy")
    back = torch.from_dlpack(x.__dlpack__())
    assert_close("torch.Tensor.__dlpack__", back, _np(x), op="exact", args="torch.from_dlpack round trip")
    assert_equal("torch.Tensor.__dlpack__", tuple(back.stride()), tuple(x.stride()), args="strides kept")


def test_scalar_conversions(device):
    """__complex__ is complex(value), __long__ is int(value) truncating toward zero, __nonzero__ is bool(value)
    for one-element tensors; more elements raise (ValueError/RuntimeError as documented by Python's protocol):
    catches __long__ rounding (2.7 -> 3) or flooring (-2.7 -> -3)."""
    for v in (2.7, -2.7, 0.0, 5.0):
        t = torch.tensor(v, device=device, dtype=torch.float64)
        assert_equal("torch.Tensor.__complex__", t.__complex__(), complex(v), args=repr(v))
        assert_equal("torch.Tensor.__long__", t.__long__(), int(v), args=repr(v))
        assert_equal("torch.Tensor.__nonzero__", t.__nonzero__(), bool(v), args=repr(v))
    z = torch.tensor([1.5 - 2j], device=device)
    assert_equal("torch.Tensor.__complex__", complex(z), complex(1.5, -2), args="complex one-element")
    two = torch.tensor([1.0, 2.0], device=device)
    assert_raises("torch.Tensor.__complex__", (ValueError, RuntimeError), two.__complex__, args="2 elements")
    assert_raises("torch.Tensor.__nonzero__", RuntimeError, two.__nonzero__, args="2 elements")


@pytest.mark.smoke
def test_pickle_copy(device, np_rng):
    """pickle and copy.deepcopy go through __reduce_ex__ and keep values, dtype, strides of a gapped view's
    copy, requires_grad and Python attributes; __setstate__ with the legacy 4-tuple (storage, offset, size,
    stride) sets the tensor to that view: catches a pickle that drops requires_grad or the __dict__."""
    a = np_rng.standard_normal((3, 4))
    x = torch.tensor(a, device=device, requires_grad=True)
    x.tag = "weights"
    for how, y in (("pickle", pickle.loads(pickle.dumps(x))), ("deepcopy", copy.deepcopy(x))):
        assert_close("torch.Tensor.__reduce_ex__", y, a, op="exact", args=how)
        assert_equal("torch.Tensor.__reduce_ex__", y.requires_grad, True, args=how)
        assert_equal("torch.Tensor.__reduce_ex__", getattr(y, "tag", None), "weights", args=how + " keeps __dict__")
        assert_true("torch.Tensor.__reduce_ex__", y.data_ptr() != x.data_ptr(), "copy shares memory")
    red = x.__reduce_ex__(2)
    assert_true("torch.Tensor.__reduce_ex__", callable(red[0]), "first item is not a callable rebuild function")
    base = torch.arange(10.0, device=device)
    t = torch.empty(0, device=device)
    t.__setstate__((base.untyped_storage(), 2, (2, 3), (4, 1)))
    assert_close("torch.Tensor.__setstate__", t, np.array([[2.0, 3, 4], [6, 7, 8]]), op="exact", args="legacy 4-tuple")
    p = torch.empty(0, device=device)
    p.__setstate__((True, None, None))
    assert_equal("torch.Tensor.__setstate__", p.requires_grad, True, args="(requires_grad, _, hooks)")
    nonleaf = torch.ones(2, requires_grad=True) * 2
    assert_raises("torch.Tensor.__setstate__", RuntimeError, nonleaf.__setstate__, (False, None, None), args="non-leaf")


# ---------------------------------------------------------------------------------------------- misc

def test_module_load(device):
    """Tensor.module_load(other) is documented to return self.copy_(other).detach() (assign=False: self gets
    other's values, the result is a new object over self's memory) or other.detach() (assign=True: other's
    memory, self unchanged); never self or other: catches assign= ignored and a result that is self."""
    m = torch.nn.Linear(3, 2).to(device)
    w = m.weight
    new = torch.arange(6.0, device=device).reshape(2, 3)
    with torch.no_grad():
        r = w.module_load(new)
    assert_true("torch.Tensor.module_load", r is not w and r is not new, "returned self or other")
    assert_close("torch.Tensor.module_load", r, np.arange(6.0).reshape(2, 3), op="exact", args="assign=False")
    assert_close("torch.Tensor.module_load", w, np.arange(6.0).reshape(2, 3), op="exact", args="self updated")
    assert_true("torch.Tensor.module_load", r.data_ptr() == w.data_ptr(), "assign=False result not over self's memory")
    b = m.bias
    before = _np(b)
    other = torch.full((2,), 3.0, device=device)
    r = b.module_load(other, assign=True)
    assert_true("torch.Tensor.module_load", r.data_ptr() == other.data_ptr() and r is not other, "assign=True is not other.detach()")
    assert_close("torch.Tensor.module_load", b, before, op="exact", args="assign=True leaves self")


def test_autocast_casts(device):
    """_autocast_to_reduced_precision(cuda_enabled, cpu_enabled, cuda_dtype, cpu_dtype) casts a float32
    tensor to the dtype of its own device when that device's flag is on (else returns it unchanged), never
    integers or float64; _autocast_to_full_precision(cuda_enabled, cpu_enabled) casts float16/bfloat16 back
    to float32 under the same rule: catches the flags of CUDA and CPU swapped."""
    on_cpu = device == "cpu"
    x = torch.tensor([1.0, 2.5, -3.25], device=device)
    for cuda_on, cpu_on in ((True, False), (False, True), (False, False), (True, True)):
        mine = cpu_on if on_cpu else cuda_on
        r = x._autocast_to_reduced_precision(cuda_on, cpu_on, torch.float16, torch.bfloat16)
        exp_dt = (torch.bfloat16 if on_cpu else torch.float16) if mine else torch.float32
        assert_equal("torch.Tensor._autocast_to_reduced_precision", r.dtype, exp_dt, args=f"cuda={cuda_on}, cpu={cpu_on}")
        assert_close("torch.Tensor._autocast_to_reduced_precision", r, [1.0, 2.5, -3.25], op="exact")
        h = x.to(torch.bfloat16)
        f = h._autocast_to_full_precision(cuda_on, cpu_on)
        assert_equal("torch.Tensor._autocast_to_full_precision", f.dtype, torch.float32 if mine else torch.bfloat16,
                     args=f"cuda={cuda_on}, cpu={cpu_on}")
    i = torch.arange(3, device=device)
    assert_equal("torch.Tensor._autocast_to_reduced_precision", i._autocast_to_reduced_precision(True, True, torch.float16, torch.float16).dtype,
                 torch.int64, args="integer input")
    d = x.double()
    assert_equal("torch.Tensor._autocast_to_reduced_precision", d._autocast_to_reduced_precision(True, True, torch.float16, torch.float16).dtype,
                 torch.float64, args="float64 input")


def test_clear_non_serializable_cached_data():
    """_clear_non_serializable_cached_data() on a plain tensor keeps its values and its user __dict__ entries
    (only caches a subclass adds are cleared), and the tensor still pickles: catches a base implementation
    that wipes the __dict__."""
    x = torch.arange(4.0)
    x.note = "keep me"
    x._clear_non_serializable_cached_data()
    assert_equal("torch.Tensor._clear_non_serializable_cached_data", getattr(x, "note", None), "keep me")
    assert_close("torch.Tensor._clear_non_serializable_cached_data", pickle.loads(pickle.dumps(x)), np.arange(4.0), op="exact")


def test_to_mkldnn(np_rng):
    """Tensor.to_mkldnn() gives a tensor of layout torch._mkldnn whose to_dense() is the input (float32, a
    gapped view included); other dtypes than float/bfloat16 raise RuntimeError: catches a conversion that
    reorders the blocked data wrong."""
    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch build has no MKLDNN (oneDNN) support")
    a = np_rng.standard_normal((2, 3, 8, 8))
    x = torch.tensor(a, dtype=torch.float32)[..., ::2]
    m = x.to_mkldnn()
    assert_equal("torch.Tensor.to_mkldnn", m.layout, torch._mkldnn)
    assert_close("torch.Tensor.to_mkldnn", m.to_dense(), a.astype(np.float32)[..., ::2], op="exact")
    assert_raises("torch.Tensor.to_mkldnn", RuntimeError, torch.arange(4).to_mkldnn, args="int64")


@pytest.mark.parametrize("name, oracle, kind", [
    ("__iand__", np.bitwise_and, "inplace"), ("__ior__", np.bitwise_or, "inplace"),
    ("__ixor__", np.bitwise_xor, "inplace"), ("__ipow__", np.power, "inplace"),
    ("__rlshift__", lambda a, b: np.left_shift(b, a), "reflected"),
    ("__rrshift__", lambda a, b: np.right_shift(b, a), "reflected"),
])
def test_python_level_operator_dunders(device, np_rng, name, oracle, kind):
    """The in-place bitwise/power dunders and the reflected shifts (torch's Python-level operators, called as
    ``x &= y`` / ``3 << x`` do) against NumPy on gapped int64 inputs: in place returns ``self`` and keeps its
    storage, reflected shifts put the scalar on the left; catches an in-place op that rebinds to a copy, a
    reflected shift computing ``x << 3`` and a power that ignores its exponent."""
    base = np_rng.integers(0, 6, size=(5, 14))
    other = np_rng.integers(1, 4, size=(5, 7))
    x = torch.tensor(base, device=device)[:, ::2]
    a = x.cpu().numpy().copy()
    if kind == "inplace":
        y = torch.tensor(other, device=device)
        ptr = x.data_ptr()
        out = getattr(x, name)(y)
        assert_true(f"torch.Tensor.{name}", out is x and x.data_ptr() == ptr, "in-place operator did not return self",
                    args="gapped int64")
        assert_equal(f"torch.Tensor.{name}", x.cpu().numpy(), oracle(a, other), args="gapped int64")
    else:
        scalar = 64 if name == "__rrshift__" else 3
        out = getattr(x, name)(scalar)
        assert_equal(f"torch.Tensor.{name}", out.cpu().numpy(), oracle(a, np.int64(scalar)), args=f"scalar {scalar}")
