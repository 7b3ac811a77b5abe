"""§ 1 Tensors: attributes (shape/size/dim/numel/dtype/device/element_size/stride/storage_offset/
is_contiguous), conversions (.to(device|dtype|other), copy=, non_blocking, .cpu(), .double(), .half(),
.bfloat16(), .item(), .tolist()), complex views (real/imag/view_as_real/view_as_complex) and quantized
tensors (quantize_per_tensor, int_repr, dequantize).

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from harness import dtypes
from harness.checks import assert_close, assert_equal, assert_raises, assert_true

ITEMSIZE = {torch.float32: 4, torch.float64: 8, torch.bfloat16: 2, torch.float16: 2, torch.int32: 4,
            torch.int64: 8, torch.bool: 1, torch.complex64: 8, torch.uint8: 1, torch.int8: 1}


@pytest.mark.smoke
@pytest.mark.dtypes(dtypes.ALL)
def test_basic_attributes(device, dtype):
    """shape/size()/dim()/ndim/numel()/dtype/device/element_size()/itemsize/nbytes/is_floating_point/
    is_complex for a fresh (2, 3, 4) tensor; catches wrong metadata (e.g. element_size of bfloat16)."""
    t = torch.zeros(2, 3, 4, dtype=dtype, device=device)
    assert_equal("Tensor.shape", t.shape, torch.Size([2, 3, 4]))
    assert_true("Tensor.shape", isinstance(t.shape, tuple), "shape is not a tuple subclass (torch.Size)")
    assert_equal("Tensor.size", t.size(), (2, 3, 4))
    assert_equal("Tensor.size", t.size(1), 3, args="dim=1")
    assert_equal("Tensor.size", t.size(-1), 4, args="dim=-1")
    assert_equal("Tensor.dim", t.dim(), 3)
    assert_equal("Tensor.ndim", t.ndim, 3)
    assert_equal("Tensor.numel", t.numel(), 24)
    assert_equal("Tensor.dtype", t.dtype, dtype)
    assert_equal("Tensor.device", t.device.type, device)
    assert_equal("Tensor.element_size", t.element_size(), ITEMSIZE[dtype])
    assert_equal("Tensor.itemsize", t.itemsize, ITEMSIZE[dtype])
    assert_equal("Tensor.nbytes", t.nbytes, 24 * ITEMSIZE[dtype])
    assert_equal("Tensor.is_floating_point", t.is_floating_point(), dtype in dtypes.FLOATING)
    assert_equal("Tensor.is_complex", t.is_complex(), dtype in dtypes.COMPLEX)
    z = torch.tensor(1, device=device).to(dtype)
    assert_equal("Tensor.dim", (z.dim(), z.numel(), tuple(z.shape)), (0, 1, ()), args="zero-dim")
    e = torch.empty(3, 0, device=device, dtype=dtype)
    assert_equal("Tensor.numel", e.numel(), 0, args="empty (3, 0)")


def test_dtype_properties():
    """dtype metadata: is_floating_point, is_complex, is_signed, itemsize; finfo/iinfo limits (checked
    against the IEEE / two's-complement closed forms). Catches wrong finfo for the half types."""
    assert_equal("torch.float32.is_floating_point", torch.float32.is_floating_point, True)
    assert_equal("torch.int64.is_floating_point", torch.int64.is_floating_point, False)
    assert_equal("torch.complex64.is_complex", torch.complex64.is_complex, True)
    assert_equal("torch.uint8.is_signed", torch.uint8.is_signed, False)
    assert_equal("torch.int8.is_signed", torch.int8.is_signed, True)
    for dt, mant, emax in [(torch.float32, 23, 127), (torch.float64, 52, 1023), (torch.float16, 10, 15), (torch.bfloat16, 7, 127)]:
        fi = torch.finfo(dt)
        assert_equal("torch.finfo.eps", fi.eps, 2.0 ** -mant, args=str(dt))
        assert_equal("torch.finfo.max", fi.max, (2 - 2.0 ** -mant) * 2.0 ** emax, args=str(dt))
        assert_equal("torch.finfo.tiny", fi.tiny, 2.0 ** (1 - emax), args=str(dt))
    for dt, bits in [(torch.int8, 8), (torch.int16, 16), (torch.int32, 32), (torch.int64, 64)]:
        ii = torch.iinfo(dt)
        assert_equal("torch.iinfo", (ii.min, ii.max), (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1), args=str(dt))
    assert_equal("torch.iinfo", (torch.iinfo(torch.uint8).min, torch.iinfo(torch.uint8).max), (0, 255), args="uint8")
    assert_equal("torch.get_default_dtype", torch.get_default_dtype(), torch.float32, args="documented default")


def test_stride_storage_offset_contiguity(device):
    """stride()/storage_offset()/is_contiguous() of slices and transposes follow row-major arithmetic."""
    x = torch.arange(60, device=device).reshape(3, 4, 5)
    assert_equal("Tensor.stride", x.stride(), (20, 5, 1))
    assert_equal("Tensor.stride", x.stride(0), 20, args="dim=0")
    s = x[1:, 2, ::2]
    assert_equal("Tensor.stride", s.stride(), (20, 2), args="x[1:, 2, ::2]")
    assert_equal("Tensor.storage_offset", s.storage_offset(), 20 + 10, args="x[1:, 2, ::2]")
    assert_equal("Tensor.is_contiguous", s.is_contiguous(), False, args="x[1:, 2, ::2]")
    assert_equal("Tensor.is_contiguous", x[1].is_contiguous(), True, args="x[1]")
    assert_equal("Tensor.storage_offset", x[1].storage_offset(), 20, args="x[1]")
    assert_equal("Tensor.is_contiguous", x.transpose(0, 1).is_contiguous(), False, args="transposed")
    assert_equal("Tensor.is_contiguous", x[:1].transpose(0, 1).is_contiguous(), True, args="size-1 dim transposed")
    assert_equal("Tensor.data_ptr", s.data_ptr(), x.data_ptr() + 30 * x.element_size(), args="offset in bytes")


@pytest.mark.dtypes((torch.float32, torch.float64, torch.int64, torch.bool, torch.complex64))
def test_to_returns_self_or_copy(device, dtype):
    """.to(dtype/device/other) returns self when nothing changes and a converted copy otherwise;
    copy=True always copies; non_blocking is accepted; .to(other) takes other's dtype and device.
    Catches .to() that always copies (memory blow-up) or returns self after a real conversion."""
    t = torch.ones(3, dtype=dtype, device=device)
    assert_true("Tensor.to", t.to(dtype) is t, ".to(same dtype) did not return self")
    assert_true("Tensor.to", t.to(device) is t, ".to(same device) did not return self")
    assert_true("Tensor.to", t.to(torch.ones(1, dtype=dtype, device=device)) is t, ".to(other with same dtype/device) did not return self")
    c = t.to(dtype, copy=True)
    assert_true("Tensor.to", c is not t and c.data_ptr() != t.data_ptr(), "copy=True did not copy")
    nb = t.to(device, non_blocking=True)
    assert_equal("Tensor.to", nb.device.type, device, args="non_blocking=True")
    for target in (torch.float64, torch.int32, torch.float16):
        if target == dtype:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # complex -> real warns (once per process) that imag is dropped
            u = t.to(target)
        assert_equal("Tensor.to", u.dtype, target, args=f"{dtype} -> {target}")
        assert_true("Tensor.to", u is not t, "conversion returned self")
        assert_equal("Tensor.to", u, np.ones(3), args=f"{dtype} -> {target}")
    o = torch.zeros(1, dtype=torch.float64)
    assert_equal("Tensor.to", t.to(o).dtype, torch.float64, args="other=float64 cpu tensor")
    assert_equal("Tensor.to", t.to(o).device.type, "cpu", args="other=float64 cpu tensor")
    assert_equal("Tensor.to", t.to("cpu", torch.float64).dtype, torch.float64, args="(device, dtype)")


def test_to_device_roundtrip(device):
    """.to(device) and back and .cpu() keep values; .cpu() of a CPU tensor is self; on an accelerator,
    .to() copies and the copy is independent. Catches corrupt host/device transfers."""
    x = torch.arange(12.0).reshape(3, 4).t()  # non-contiguous source
    y = x.to(device)
    assert_equal("Tensor.to", y.device.type, device)
    assert_equal("Tensor.to", y, x.numpy(), args="non-contiguous source")
    back = y.cpu()
    assert_equal("Tensor.cpu", back, x.numpy())
    if device == "cpu":
        assert_true("Tensor.cpu", x.cpu() is x, ".cpu() of a CPU tensor is not self")
    else:
        y[0, 0] = -1
        assert_equal("Tensor.to", x[0, 0].item(), 0.0, args="device copy is independent")
        assert_equal("Tensor.to", torch.device(device).type, y.device.type)
        nb = x.pin_memory().to(device, non_blocking=True) if torch.cuda.is_available() else x.to(device)
        torch.cuda.synchronize() if device == "cuda" else None
        assert_equal("Tensor.to", nb, x.numpy(), args="pinned, non_blocking=True")


def test_conversion_methods(device):
    """.double()/.float()/.half()/.bfloat16()/.int()/.long()/.bool() convert dtype with documented
    rounding: float->int truncates toward zero; float->bool is x != 0; to half rounds to nearest even."""
    x = torch.tensor([-2.7, -0.5, 0.0, 0.5, 2.7, 1.0 + 2.0 ** -11], dtype=torch.float64, device=device)
    X = x.cpu().numpy().copy()
    assert_equal("Tensor.double", x.float().double().dtype, torch.float64)
    assert_equal("Tensor.long", x.long(), np.trunc(X).astype(np.int64), args="truncation toward zero")
    assert_equal("Tensor.int", x.int(), np.trunc(X).astype(np.int32))
    assert_equal("Tensor.bool", x.bool(), X != 0)
    assert_equal("Tensor.half", x.half().dtype, torch.float16)
    assert_equal("Tensor.half", x.half(), X.astype(np.float16).astype(np.float64), args="round to nearest even")
    assert_equal("Tensor.bfloat16", x.bfloat16().dtype, torch.bfloat16)
    bf = x.bfloat16().double().cpu().numpy()
    assert_close("Tensor.bfloat16", bf, X, dtype=torch.bfloat16, args="within bfloat16 rounding")
    big = torch.tensor([70000.0, -1e6, 65504.0], device=device)
    assert_close("Tensor.half", big.half(), np.array([math.inf, -math.inf, 65504.0]), op="exact", args="overflow -> inf")


@pytest.mark.dtypes((torch.float32, torch.float64, torch.int64, torch.bool, torch.complex64, torch.bfloat16))
def test_item_tolist(device, dtype):
    """.item() returns the Python scalar of a one-element tensor (float/int/bool/complex) and raises for
    more elements; .tolist() returns nested Python lists (a scalar for zero-dim)."""
    data = [[1, 0, 3], [4, 5, 6]] if dtype != torch.bool else [[True, False, True], [False, True, True]]
    t = torch.tensor(data, device=device).to(dtype)
    py_type = {torch.int64: int, torch.bool: bool, torch.complex64: complex}.get(dtype, float)
    it = t[1, 2].item()
    assert_true("Tensor.item", type(it) is py_type, f"item() returned {type(it).__name__}, expected {py_type.__name__}")
    assert_equal("Tensor.item", it, py_type(data[1][2]))
    assert_raises("Tensor.item", (RuntimeError, ValueError), t.item, args="6 elements")
    lst = t.tolist()
    assert_equal("Tensor.tolist", lst, [[py_type(v) for v in row] for row in data])
    assert_true("Tensor.tolist", all(type(v) is py_type for row in lst for v in row), "tolist element types")
    assert_equal("Tensor.tolist", t[0, 0].tolist(), py_type(data[0][0]), args="zero-dim -> scalar")
    assert_equal("Tensor.tolist", t.t().tolist(), [list(c) for c in zip(*lst)], args="transposed")
    assert_equal("Tensor.tolist", torch.empty(0, 2, device=device).tolist(), [], args="empty")


def test_complex_views(device):
    """real/imag/view_as_real share memory with the complex tensor (writes go through), view_as_real has
    a trailing dim of 2 with the float dtype; view_as_complex inverts it; imag of a real tensor raises."""
    z = torch.tensor([1 + 2j, -3 + 0.5j, 4 - 1j], dtype=torch.complex64, device=device)
    assert_equal("torch.real", z.real, np.array([1.0, -3.0, 4.0]))
    assert_equal("torch.imag", z.imag, np.array([2.0, 0.5, -1.0]))
    assert_equal("torch.real", z.real.dtype, torch.float32)
    r = torch.view_as_real(z)
    assert_equal("torch.view_as_real", tuple(r.shape), (3, 2))
    assert_equal("torch.view_as_real", r, np.array([[1.0, 2.0], [-3.0, 0.5], [4.0, -1.0]]))
    assert_equal("torch.view_as_real", r.stride(), (2, 1))
    z.real[0] = 10.0
    z.imag[1] = -7.0
    r[2, 1] = 9.0
    assert_equal("torch.view_as_real", z, np.array([10 + 2j, -3 - 7j, 4 + 9j]), args="writes through real/imag/view_as_real")
    back = torch.view_as_complex(r)
    assert_true("torch.view_as_complex", back.data_ptr() == z.data_ptr(), "view_as_complex copied")
    assert_raises("torch.view_as_complex", RuntimeError, torch.view_as_complex, torch.ones(3, 3, device=device), args="last dim 3")
    assert_raises("torch.imag", RuntimeError, lambda: torch.ones(2, device=device).imag, args="real tensor")
    c = torch.complex(torch.tensor([1.0, 2.0], device=device), torch.tensor([3.0, 4.0], device=device))
    assert_equal("torch.complex", c, np.array([1 + 3j, 2 + 4j]))
    assert_equal("torch.complex", c.dtype, torch.complex64)
    p = torch.polar(torch.tensor([2.0], dtype=torch.float64, device=device), torch.tensor([math.pi / 2], dtype=torch.float64, device=device))
    assert_close("torch.polar", p, np.array([2j]), atol=1e-15)  # cos(pi/2) rounds to 6e-17, not 0


@pytest.mark.devices("cpu")
@pytest.mark.parametrize("qdtype", ["quint8", "qint8", "qint32"])
def test_quantize_per_tensor(device, qdtype):
    """quantize_per_tensor: q = clamp(round(x / scale + zero_point), qmin, qmax) (the documented formula,
    round half to even; -0.25/0.1 is a deliberate tie),
    int_repr gives q, dequantize gives (q - zero_point) * scale, q_scale/q_zero_point report the
    parameters. Catches wrong rounding, missing clamping, or a dequantize that ignores zero_point."""
    qdt = getattr(torch, qdtype)
    qmin, qmax, zp, repr_dt = {"quint8": (0, 255, 10, torch.uint8), "qint8": (-128, 127, -3, torch.int8),
                               "qint32": (-(2 ** 31), 2 ** 31 - 1, 7, torch.int32)}[qdtype]
    scale = 0.1
    x = torch.tensor([-2.0, -0.25, 0.0, 0.05, 0.15, 0.34, 1.0, 3.3, 50.0, -50.0, 1e12])
    X = x.double().numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized tensor creation is deprecated in recent torch
        q = torch.quantize_per_tensor(x, scale, zp, qdt)
    # PyTorch computes round(x * (1/scale)) in float32: evaluate the same product in float32 here
    inv = np.float32(1.0) / np.float32(scale)
    qs = np.clip(np.round((X.astype(np.float32) * inv).astype(np.float64) + zp), qmin, qmax)
    assert_equal("torch.quantize_per_tensor", q.dtype, qdt)
    assert_equal("Tensor.q_scale", q.q_scale(), scale)
    assert_equal("Tensor.q_zero_point", q.q_zero_point(), zp)
    ir = q.int_repr()
    assert_equal("Tensor.int_repr", ir.dtype, repr_dt)
    assert_equal("Tensor.int_repr", ir.numpy().astype(np.float64), qs, args=f"scale={scale}, zero_point={zp}")
    dq = q.dequantize()
    assert_equal("Tensor.dequantize", dq.dtype, torch.float32)
    assert_close("Tensor.dequantize", dq, (qs - zp) * scale, args="(q - zero_point) * scale")


def test_quantize_roundtrip_error_bound(device, np_rng):
    """Within the representable range, dequantize(quantize(x)) differs from x by at most scale/2."""
    if device != "cpu":
        pytest.skip("quantized CPU kernels only: quantize_per_tensor on accelerators is backend-specific")
    x = torch.from_numpy(np_rng.uniform(-1.0, 1.0, 1000).astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = torch.quantize_per_tensor(x, 1.0 / 127, 0, torch.qint8)
    err = (q.dequantize() - x).abs().max().item()
    assert_true("torch.quantize_per_tensor", err <= 0.5 / 127 + 1e-7, f"max round-trip error {err} > scale/2")
    assert_raises("torch.quantize_per_tensor", RuntimeError, torch.quantize_per_tensor, x, 0.1, 0, torch.float32,
                  args="non-quantized dtype")
