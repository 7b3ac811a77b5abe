"""§ 10 Best practices: memory and debugging. Gradient accumulation equals the large batch; preallocation
with torch.empty and out= (written in place, resized with a warning); in-place ops keep their storage;
the causes of a None .grad; device checks; del + gc frees; torch.cuda memory statistics
(memory_allocated, max_memory_allocated, reset_peak_memory_stats, empty_cache, memory_summary) on CUDA.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import gc
import warnings
import weakref

import numpy as np
import pytest
import torch
import torch.nn as nn

from harness.checks import assert_close, assert_equal, assert_raises, assert_true


def _model(device):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).to(device=device, dtype=torch.float64)


@pytest.mark.smoke
@pytest.mark.parametrize("k", [2, 3, 6])
def test_gradient_accumulation_equals_large_batch(device, k):
    """Accumulating backward() of loss/k over k micro-batches (no zero_grad between) gives the gradient of
    the mean loss over the whole batch (float64, tight), and one optimiser step then equals the large-batch
    step; catches backward overwriting instead of accumulating into .grad."""
    x = torch.randn(12, 5, dtype=torch.float64, device=device)
    y = torch.randn(12, 3, dtype=torch.float64, device=device)
    big, acc = _model(device), _model(device)
    nn.functional.mse_loss(big(x), y).backward()
    for xb, yb in zip(x.chunk(k), y.chunk(k)):
        (nn.functional.mse_loss(acc(xb), yb) / k).backward()
    for (name, pb), pa in zip(big.named_parameters(), acc.parameters()):
        assert_close("Tensor.backward", pa.grad, pb.grad, op="gradient", args=f"{k} micro-batches, {name}")
    ob, oa = torch.optim.SGD(big.parameters(), lr=0.1), torch.optim.SGD(acc.parameters(), lr=0.1)
    ob.step(); oa.step()
    for pb, pa in zip(big.parameters(), acc.parameters()):
        assert_close("torch.optim.SGD.step", pa, pb.detach(), op="training", args="after accumulated step")


def test_gradients_accumulate_until_zeroed(device):
    """Two backward() calls without zero_grad sum their gradients (so accumulation needs zero_grad between
    real steps); after zero_grad the next backward starts fresh."""
    w = torch.tensor([1.0, -2.0], dtype=torch.float64, device=device, requires_grad=True)
    (w * torch.tensor([3.0, 4.0], dtype=torch.float64, device=device)).sum().backward()
    (w ** 2).sum().backward()
    assert_equal("Tensor.grad", w.grad, np.array([3.0 + 2.0, 4.0 - 4.0]), args="two backward calls")
    w.grad = None
    (w ** 2).sum().backward()
    assert_equal("Tensor.grad", w.grad, np.array([2.0, -4.0]), args="after zeroing")


# ---------------------------------------------------------------------------- preallocation
@pytest.mark.parametrize("op", ["add", "mul", "matmul", "sum", "exp"])
def test_out_argument_writes_in_place(device, op, np_rng):
    """torch.<op>(..., out=buf) with buf from torch.empty: the result is buf itself (same object and
    data_ptr) and holds the NumPy result; catches out= ignored (a fresh tensor returned, buf untouched)."""
    a = np_rng.standard_normal((4, 3)); b = np_rng.standard_normal((4, 3)); m = np_rng.standard_normal((3, 5))
    at, bt, mt = (torch.tensor(v, device=device) for v in (a, b, m))
    cases = {"add": ((4, 3), lambda out: torch.add(at, bt, alpha=2, out=out), a + 2 * b),
             "mul": ((4, 3), lambda out: torch.mul(at, bt, out=out), a * b),
             "matmul": ((4, 5), lambda out: torch.matmul(at, mt, out=out), a @ m),
             "sum": ((3,), lambda out: torch.sum(at, dim=0, out=out), a.sum(0)),
             "exp": ((4, 3), lambda out: torch.exp(at, out=out), np.exp(a))}
    shape, fn, exp = cases[op]
    buf = torch.empty(shape, dtype=torch.float64, device=device)
    ptr = buf.data_ptr()
    res = fn(buf)
    assert_true(f"torch.{op}", res is buf, "out= did not return the given tensor")
    assert_equal(f"torch.{op}", buf.data_ptr(), ptr, args="out= data_ptr")
    assert_close(f"torch.{op}", buf, exp, op="matmul" if op in ("matmul", "sum") else "elementwise", args="out=")


def test_out_argument_resize_and_dtype_errors(device):
    """A non-empty out of the wrong shape is resized with a UserWarning (deprecated behaviour); an empty out is
    resized silently; an out whose dtype cannot hold the result raises; catches silent shape mismatches."""
    a = torch.ones(2, 3, device=device)
    wrong = torch.empty(5, device=device)
    with pytest.warns(UserWarning, match="resized"):
        torch.add(a, a, out=wrong)
    assert_equal("torch.add", tuple(wrong.shape), (2, 3), args="out resized")
    assert_equal("torch.add", wrong, np.full((2, 3), 2.0), args="resized out values")
    empty = torch.empty(0, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.add(a, a, out=empty)
    assert_equal("torch.add", tuple(empty.shape), (2, 3), args="empty out resized without warning")
    assert_raises("torch.add", RuntimeError, torch.add, a, a, out=torch.empty(2, 3, dtype=torch.int64, device=device),
                  args="float result into int64 out")


def test_empty_preallocation_contract(device):
    """torch.empty / empty_like / new_empty allocate the documented shape, dtype, device and strides
    (contents unspecified) and can be filled in place without reallocation."""
    for t in (torch.empty(3, 4, dtype=torch.float64, device=device),
              torch.empty_like(torch.zeros(3, 4, dtype=torch.float64, device=device)),
              torch.zeros(1, device=device, dtype=torch.float64).new_empty((3, 4))):
        assert_equal("torch.empty", (tuple(t.shape), t.dtype, t.device.type, t.stride()), ((3, 4), torch.float64, device, (4, 1)))
        ptr = t.data_ptr()
        t.copy_(torch.arange(12, dtype=torch.float64).reshape(3, 4))
        assert_equal("Tensor.copy_", t.data_ptr(), ptr, args="copy_ into preallocated")
        assert_equal("Tensor.copy_", t, np.arange(12.0).reshape(3, 4))


def test_inplace_ops_keep_storage(device, np_rng):
    """In-place ops (add_, mul_, clamp_, zero_, +=, div_ on a transposed view) keep the tensor's data_ptr
    and give the out-of-place result; catches an in-place op that allocates a new buffer."""
    a = np_rng.standard_normal((3, 4))
    t = torch.tensor(a, device=device)
    ptr, ident = t.data_ptr(), id(t)
    t.add_(1.5).mul_(2.0).clamp_(-1.0, 3.0)
    assert_equal("Tensor.add_", t.data_ptr(), ptr, args="add_/mul_/clamp_ chain")
    assert_close("Tensor.clamp_", t, np.clip((a + 1.5) * 2.0, -1.0, 3.0), op="elementwise")
    t += 1
    assert_true("Tensor.__iadd__", id(t) == ident and t.data_ptr() == ptr, "+= rebound or reallocated the tensor")
    v = t.t()
    v.div_(2.0)
    assert_equal("Tensor.div_", t.data_ptr(), ptr, args="div_ on a transposed view writes the base")
    assert_close("Tensor.div_", t, (np.clip((a + 1.5) * 2.0, -1.0, 3.0) + 1) / 2, op="elementwise")
    t.zero_()
    assert_equal("Tensor.zero_", t, np.zeros((3, 4)))


# ---------------------------------------------------------------------------- why is .grad None?
def test_grad_none_non_leaf(device):
    """A non-leaf tensor (result of an op) has .grad None after backward (with a UserWarning on access);
    retain_grad() keeps it; the leaf's grad is filled."""
    x = torch.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = x * 3
    z = x * 4
    z.retain_grad()
    (y.sum() + (z ** 2).sum()).backward()
    assert_true("Tensor.is_leaf", not y.is_leaf, "result of an op reported as leaf")
    with pytest.warns(UserWarning, match="leaf"):
        g = y.grad
    assert_true("Tensor.grad", g is None, "non-leaf .grad populated without retain_grad()")
    assert_equal("Tensor.retain_grad", z.grad, np.array([8.0, 16.0]), args="2*z")
    assert_equal("Tensor.grad", x.grad, np.array([3.0 + 32.0, 3.0 + 64.0]), args="leaf grad")


def test_grad_none_requires_grad_false_and_unused(device):
    """A tensor with requires_grad=False, and a parameter not used by the loss, have .grad None after backward."""
    w = torch.ones(2, device=device)  # requires_grad False
    p = torch.ones(2, device=device, requires_grad=True)
    unused = torch.ones(2, device=device, requires_grad=True)
    (w * p).sum().backward()
    assert_true("Tensor.grad", w.grad is None, "requires_grad=False tensor got a grad")
    assert_true("Tensor.grad", unused.grad is None, "parameter unused by the loss got a grad")
    assert_equal("Tensor.grad", p.grad, np.ones(2))


def test_grad_none_detached(device):
    """Computing through x.detach() cuts the graph: x.grad stays None and the loss has no grad_fn."""
    x = torch.tensor([1.0, 2.0], device=device, requires_grad=True)
    d = x.detach()
    assert_true("Tensor.detach", not d.requires_grad and d.data_ptr() == x.data_ptr(), "detach must share data and drop requires_grad")
    loss = (d * 2).sum() + (x * 0).sum()
    loss.backward()
    assert_equal("Tensor.detach", x.grad, np.zeros(2), args="only the attached path contributes")
    assert_true("Tensor.detach", d.grad is None, "detached tensor got a grad")


def test_grad_none_under_no_grad(device):
    """A forward under torch.no_grad() records nothing: the output does not require grad and backward()
    raises 'does not require grad'; the weights' grads stay None."""
    lin = nn.Linear(3, 1).to(device)
    with torch.no_grad():
        out = lin(torch.randn(2, 3, device=device))
    assert_true("torch.no_grad", not out.requires_grad and out.grad_fn is None, "no_grad output has a graph")
    assert_raises("Tensor.backward", RuntimeError, out.sum().backward, match="does not require grad", args="output of no_grad")
    assert_true("torch.no_grad", lin.weight.grad is None, "weight got a grad from a no_grad forward")


def test_grad_none_tensor_recreated_by_to(device):
    """x = torch.randn(..., requires_grad=True).to(...) makes x the result of a copy op, a non-leaf: its grad
    stays None (the leaf is the discarded original); creating on the target directly keeps a leaf."""
    other = torch.float64 if device == "cpu" else "cpu"  # a real conversion, so .to() copies
    x = torch.randn(3, device=device, requires_grad=True).to(other)
    assert_true("Tensor.to", not x.is_leaf, ".to() of a leaf that copies returned a leaf")
    x.sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_true("Tensor.grad", x.grad is None, "non-leaf created by .to() has a grad")
    ok = torch.randn(3, device=device, dtype=torch.float64, requires_grad=True)
    ok.sum().backward()
    assert_equal("Tensor.grad", ok.grad, np.ones(3), args="created directly with device/dtype")
    same = torch.randn(3, device=device, requires_grad=True)
    assert_true("Tensor.to", same.to(device) is same, ".to() to the same device/dtype must return self")


def test_integer_tensor_cannot_require_grad(device):
    """Only floating point and complex tensors can require gradients: integer/bool raise RuntimeError."""
    assert_raises("torch.tensor", RuntimeError, torch.tensor, [1, 2], device=device, requires_grad=True, args="int64, requires_grad=True")
    assert_raises("Tensor.requires_grad_", RuntimeError, torch.zeros(2, dtype=torch.int32, device=device).requires_grad_, args="int32")
    assert_raises("Tensor.requires_grad_", RuntimeError, torch.zeros(2, dtype=torch.bool, device=device).requires_grad_, args="bool")
    c = torch.zeros(2, dtype=torch.complex64, device=device).requires_grad_()
    assert_true("Tensor.requires_grad_", c.requires_grad, "complex tensor refused requires_grad")


# ---------------------------------------------------------------------------- devices
def test_device_attribute_after_to(device):
    """After model.to(device) every parameter and buffer reports that device; tensor.device and is_cuda
    agree; the device-check idiom next(model.parameters()).device works."""
    m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).to(device)
    for name, t in list(m.named_parameters()) + list(m.named_buffers()):
        assert_equal("nn.Module.to", t.device.type, device, args=name)
    assert_equal("Tensor.device", next(m.parameters()).device.type, device)
    assert_equal("Tensor.is_cuda", next(m.parameters()).is_cuda, device == "cuda")


@pytest.mark.requires_cuda
def test_mixing_devices_raises():
    """An op mixing a CUDA and a CPU tensor (non-scalar) raises RuntimeError naming both devices, and a model
    on CUDA fed a CPU input raises too; catches silent cross-device copies."""
    a, b = torch.ones(3, device="cuda"), torch.ones(3)
    err = assert_raises("torch.add", RuntimeError, torch.add, a, b, args="cuda + cpu")
    assert_true("torch.add", "device" in str(err), f"error does not mention devices: {err}")
    m = nn.Linear(3, 1).cuda()
    assert_raises("nn.Linear", RuntimeError, m, torch.ones(2, 3), args="cuda model, cpu input")


# ---------------------------------------------------------------------------- freeing
def test_del_and_gc_free(device):
    """del drops the last reference and frees a tensor immediately (weakref dies); one caught in a reference
    cycle is freed by gc.collect(); a view keeps its base's storage alive after del base."""
    t = torch.randn(1000, device=device)
    r = weakref.ref(t)
    del t
    assert_true("del", r() is None, "tensor still alive after del of its only reference")
    holder = {"t": torch.randn(1000, device=device)}
    holder["self"] = holder
    r = weakref.ref(holder["t"])
    del holder
    gc.collect()
    assert_true("gc.collect", r() is None, "tensor in a reference cycle not freed by gc.collect()")
    base = torch.arange(10.0, device=device)
    view = base[2:5]
    ptr = base.untyped_storage().data_ptr()
    del base
    gc.collect()
    assert_equal("Tensor.untyped_storage", view.untyped_storage().data_ptr(), ptr, args="view keeps base storage")
    assert_equal("Tensor.__getitem__", view, np.array([2.0, 3.0, 4.0]), args="view values after del base")


# ---------------------------------------------------------------------------- torch.cuda memory statistics
@pytest.mark.requires_cuda
def test_cuda_memory_statistics():
    """Allocating N bytes raises memory_allocated by >= N; max_memory_allocated tracks the peak and
    reset_peak_memory_stats lowers it to the current level; del returns memory_allocated to its start;
    empty_cache releases the cached block (memory_reserved falls); memory_summary() is a non-empty report."""
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    start = torch.cuda.memory_allocated()
    n = 64 * 1024 * 1024
    t = torch.empty(n, dtype=torch.uint8, device="cuda")
    after = torch.cuda.memory_allocated()
    assert_true("torch.cuda.memory_allocated", after - start >= n, f"grew by {after - start} < {n}")
    assert_true("torch.cuda.max_memory_allocated", torch.cuda.max_memory_allocated() >= after, "peak below current")
    reserved = torch.cuda.memory_reserved()
    assert_true("torch.cuda.memory_reserved", reserved >= after, "reserved below allocated")
    del t
    assert_equal("torch.cuda.memory_allocated", torch.cuda.memory_allocated(), start, args="after del")
    assert_true("torch.cuda.memory_reserved", torch.cuda.memory_reserved() == reserved, "caching allocator released memory before empty_cache")
    torch.cuda.reset_peak_memory_stats()
    assert_equal("torch.cuda.reset_peak_memory_stats", torch.cuda.max_memory_allocated(), torch.cuda.memory_allocated())
    torch.cuda.empty_cache()
    assert_true("torch.cuda.empty_cache", torch.cuda.memory_reserved() <= reserved - n, "empty_cache did not release the freed block")
    summary = torch.cuda.memory_summary()
    assert_true("torch.cuda.memory_summary", isinstance(summary, str) and "Allocated memory" in summary, "memory_summary missing its table")
