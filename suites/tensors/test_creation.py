"""§ 1 Tensors: creation functions (tensor, zeros, ones, full, empty, arange, linspace, eye,
rand, randn, randint, *_like, from_numpy) against NumPy in float64 and the documented contracts.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness import dtypes
from harness.checks import assert_close, assert_equal, assert_raises, assert_true

ALL_CREATE = dtypes.FLOATING + dtypes.INTEGRAL + dtypes.BOOL + dtypes.COMPLEX


@pytest.mark.smoke
def test_tensor_dtype_inference(device):
    """torch.tensor infers float32 (the default dtype) from floats, int64 from ints, bool from bools,
    complex64 from complex; catches a build whose inference or default dtype is wrong."""
    cases = [([1.0, 2.5], torch.float32), ([1, 2], torch.int64), ([True, False], torch.bool),
             ([1 + 2j], torch.complex64), ([1, 2.0], torch.float32), (3, torch.int64), (3.0, torch.float32)]
    for data, expected in cases:
        t = torch.tensor(data, device=device)
        assert_equal("torch.tensor", t.dtype, expected, args=repr(data))
        assert_equal("torch.tensor", t.device.type, device, args=f"{data!r}, device={device!r}")
        assert_close("torch.tensor", t, np.asarray(data), op="exact" if not t.is_floating_point() else "elementwise",
                     args=repr(data))


@pytest.mark.dtypes(ALL_CREATE)
def test_tensor_explicit_dtype(device, dtype):
    """torch.tensor(data, dtype=...) honours dtype and keeps values (exactly where representable)."""
    data = [[0, 1, 2], [3, 4, 5]] if dtype != torch.bool else [[True, False, True], [False, False, True]]
    t = torch.tensor(data, dtype=dtype, device=device)
    assert_equal("torch.tensor", t.dtype, dtype, args=f"dtype={dtype}")
    assert_equal("torch.tensor", tuple(t.shape), (2, 3))
    assert_equal("torch.tensor", t, np.asarray(data), args=f"dtype={dtype}")


def test_tensor_copies_input(device):
    """torch.tensor always copies its data: a later change to the NumPy source does not show."""
    src = np.arange(6, dtype=np.float32)
    t = torch.tensor(src, device=device)
    src[0] = 100.0
    assert_equal("torch.tensor", t[0].item(), 0.0, args="np.ndarray then mutate source")


def test_tensor_ragged_raises():
    """A ragged nested list has no tensor shape: ValueError."""
    assert_raises("torch.tensor", (ValueError, TypeError, RuntimeError), torch.tensor, [[1, 2], [3]], args="[[1, 2], [3]]")


@pytest.mark.parametrize("fn,fill", [(torch.zeros, 0), (torch.ones, 1)], ids=["zeros", "ones"])
@pytest.mark.dtypes(ALL_CREATE)
def test_zeros_ones(device, dtype, fn, fill):
    """zeros/ones: every documented shape form (ints, tuple, Size, empty), dtype and device."""
    name = f"torch.{fn.__name__}"
    for shape_args, shape in [((2, 3), (2, 3)), (((4,),), (4,)), ((torch.Size([1, 0, 2]),), (1, 0, 2)), (((),), ())]:
        t = fn(*shape_args, dtype=dtype, device=device)
        assert_equal(name, tuple(t.shape), shape, args=repr(shape_args))
        assert_equal(name, t.dtype, dtype, args=f"dtype={dtype}")
        assert_equal(name, t.device.type, device)
        assert_equal(name, t, np.full(shape, fill), args=f"{shape_args}, dtype={dtype}")
        assert_true(name, t.is_contiguous(), "freshly created tensor is not contiguous", args=repr(shape_args))


def test_zeros_default_dtype_and_requires_grad(device):
    """Without dtype, creation uses torch.get_default_dtype() (float32), and honours requires_grad."""
    t = torch.zeros(3, device=device)
    assert_equal("torch.zeros", t.dtype, torch.get_default_dtype())
    assert_equal("torch.zeros", t.requires_grad, False)
    g = torch.ones(2, device=device, requires_grad=True)
    assert_equal("torch.ones", g.requires_grad, True, args="requires_grad=True")
    assert_true("torch.ones", g.is_leaf, "a created tensor with requires_grad=True must be a leaf")


def test_default_dtype_follows_set_default_dtype(device):
    """torch.set_default_dtype(float64) changes what zeros and float literals produce; restored after."""
    old = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        assert_equal("torch.zeros", torch.zeros(2, device=device).dtype, torch.float64, args="default float64")
        assert_equal("torch.tensor", torch.tensor([1.5], device=device).dtype, torch.float64, args="default float64")
    finally:
        torch.set_default_dtype(old)
    assert_equal("torch.get_default_dtype", torch.get_default_dtype(), old)


def test_negative_size_raises(device):
    """A negative dimension is an error, never a silently empty tensor."""
    assert_raises("torch.zeros", RuntimeError, torch.zeros, -1, device=device, args="-1")
    assert_raises("torch.empty", RuntimeError, torch.empty, 2, -3, device=device, args="2, -3")


@pytest.mark.dtypes(dtypes.FLOATING + dtypes.INTEGRAL + dtypes.COMPLEX)
def test_full(device, dtype):
    """torch.full(size, fill_value, dtype=...) fills every element with fill_value."""
    value = 7 if not dtype.is_complex else 2 - 3j
    t = torch.full((3, 2), value, dtype=dtype, device=device)
    assert_equal("torch.full", t.dtype, dtype)
    assert_equal("torch.full", t, np.full((3, 2), value), args=f"(3, 2), {value}, dtype={dtype}")


def test_full_infers_dtype(device):
    """full infers its dtype from fill_value: bool -> bool, int -> int64, float -> default float."""
    assert_equal("torch.full", torch.full((2,), True, device=device).dtype, torch.bool, args="True")
    assert_equal("torch.full", torch.full((2,), 3, device=device).dtype, torch.int64, args="3")
    assert_equal("torch.full", torch.full((2,), 3.5, device=device).dtype, torch.float32, args="3.5")
    t = torch.full((2, 2), float("nan"), device=device)
    assert_true("torch.full", torch.isnan(t).all().item(), "full with NaN must be all NaN", args="nan")


@pytest.mark.dtypes(dtypes.FLOATING + dtypes.INTEGRAL)
def test_empty_shape_dtype(device, dtype):
    """empty: documented shape, dtype, device and strides (values are unspecified, so not checked)."""
    t = torch.empty(2, 3, 4, dtype=dtype, device=device)
    assert_equal("torch.empty", tuple(t.shape), (2, 3, 4))
    assert_equal("torch.empty", t.stride(), (12, 4, 1))
    assert_equal("torch.empty", t.dtype, dtype)
    assert_equal("torch.empty", t.device.type, device)


@pytest.mark.parametrize("args,kwargs", [
    ((5,), {}), ((2, 9), {}), ((1, 10, 3), {}), ((10, 0, -2), {}), ((0.0, 1.0, 0.1), {}),
    ((-3, 3), {"dtype": torch.float64}), ((0, 1, 0.25), {"dtype": torch.float32}), ((5, 5), {}),
], ids=["end", "start-end", "step", "negative-step", "float-step", "float64", "float32-quarter", "empty"])
def test_arange(device, args, kwargs):
    """arange(start, end, step): half-open interval, length ceil((end-start)/step), values start+i*step,
    int64 for integer arguments and the default float dtype otherwise."""
    t = torch.arange(*args, device=device, **kwargs)
    expected = np.arange(*args, dtype=np.float64)
    assert_equal("torch.arange", tuple(t.shape), expected.shape, args=repr(args))
    want_dtype = kwargs.get("dtype") or (torch.int64 if all(isinstance(a, int) for a in args) else torch.float32)
    assert_equal("torch.arange", t.dtype, want_dtype, args=repr(args))
    assert_close("torch.arange", t, expected, args=repr(args))


def test_arange_zero_step_raises(device):
    """A zero step is an error."""
    assert_raises("torch.arange", RuntimeError, torch.arange, 0, 5, 0, device=device, args="0, 5, 0")


@pytest.mark.parametrize("start,end,steps", [(0.0, 1.0, 5), (-2.0, 3.0, 11), (1.0, 1.0, 3), (0.0, 10.0, 1), (0.0, 1.0, 0), (5.0, -5.0, 7)])
@pytest.mark.dtypes(dtypes.FLOAT_HIGH)
def test_linspace(device, dtype, start, end, steps):
    """linspace includes both ends, has exactly `steps` points (1 point is `start`, 0 is empty)."""
    t = torch.linspace(start, end, steps, dtype=dtype, device=device)
    expected = np.linspace(start, end, steps, dtype=np.float64)
    assert_close("torch.linspace", t, expected, args=f"{start}, {end}, {steps}")


@pytest.mark.dtypes(dtypes.FLOAT_HIGH)
def test_logspace(device, dtype):
    """logspace(start, end, steps, base) = base ** linspace(start, end, steps)."""
    t = torch.logspace(-2, 3, 6, base=2.0, dtype=dtype, device=device)
    assert_close("torch.logspace", t, np.logspace(-2, 3, 6, base=2.0), args="-2, 3, 6, base=2")


@pytest.mark.parametrize("n,m", [(3, None), (2, 4), (4, 2), (0, None)])
def test_eye(device, n, m):
    """eye(n, m): ones on the main diagonal only, shape (n, m or n)."""
    t = torch.eye(n, m, device=device) if m is not None else torch.eye(n, device=device)
    assert_equal("torch.eye", t, np.eye(n, m), args=f"{n}, {m}")


@pytest.mark.dtypes(dtypes.FLOATING)
def test_rand_range_and_moments(device, dtype):
    """rand draws from U[0, 1): no value outside [0, 1), mean 1/2 and variance 1/12 (n=200k: a wrong
    distribution misses by far more than the 6-sigma bound used)."""
    n = 200_000
    t = torch.rand(n, dtype=dtype, device=device)
    assert_equal("torch.rand", t.dtype, dtype)
    x = t.double().cpu().numpy()
    assert_true("torch.rand", (x >= 0).all() and (x < 1).all(), f"values outside [0, 1): min {x.min()}, max {x.max()}")
    se_mean = math.sqrt(1 / 12 / n)
    assert_close("torch.rand", x.mean(), 0.5, op="reduction", dtype=torch.float64, rtol=0, atol=6 * se_mean, args="mean")
    assert_close("torch.rand", x.var(), 1 / 12, op="reduction", dtype=torch.float64, rtol=0,
                 atol=6 * math.sqrt(1 / 180 / n) + 2e-3 * (dtype in dtypes.FLOAT_LOW), args="variance")


@pytest.mark.dtypes(dtypes.FLOATING)
def test_randn_moments(device, dtype):
    """randn draws from N(0, 1): mean 0, variance 1, and about 68.27% inside one sigma."""
    n = 200_000
    x = torch.randn(n, dtype=dtype, device=device).double().cpu().numpy()
    assert_close("torch.randn", x.mean(), 0.0, dtype=torch.float64, rtol=0, atol=6 / math.sqrt(n), args="mean")
    assert_close("torch.randn", x.var(), 1.0, dtype=torch.float64, rtol=0, atol=6 * math.sqrt(2 / n) + 1e-2 * (dtype in dtypes.FLOAT_LOW), args="variance")
    inside = float((np.abs(x) < 1).mean())
    assert_close("torch.randn", inside, math.erf(1 / math.sqrt(2)), dtype=torch.float64, rtol=0, atol=6 * math.sqrt(0.25 / n) + 5e-3 * (dtype in dtypes.FLOAT_LOW), args="P(|x|<1)")


@pytest.mark.parametrize("low,high", [(0, 2), (-5, 5), (10, 11), (0, 1000)])
def test_randint_bounds(device, low, high):
    """randint(low, high): int64 values in [low, high), every value reachable for a small range."""
    t = torch.randint(low, high, (20_000,), device=device)
    assert_equal("torch.randint", t.dtype, torch.int64, args=f"{low}, {high}")
    x = t.cpu().numpy()
    assert_true("torch.randint", x.min() >= low and x.max() < high, f"value outside [{low}, {high}): {x.min()}..{x.max()}")
    if high - low <= 10:
        assert_equal("torch.randint", sorted(set(x.tolist())), list(range(low, high)), args=f"{low}, {high} coverage")


@pytest.mark.parametrize("fn", ["rand", "randn", "randint", "randperm"])
def test_manual_seed_and_generator_reproducible(device, fn):
    """The same seed (global or a Generator) reproduces the same numbers, a different seed does not:
    catches an ignored `generator=` argument or a non-deterministic RNG."""
    make = {"rand": lambda g: torch.rand(64, generator=g, device=device),
            "randn": lambda g: torch.randn(64, generator=g, device=device),
            "randint": lambda g: torch.randint(0, 1 << 30, (64,), generator=g, device=device),
            "randperm": lambda g: torch.randperm(64, generator=g, device=device)}[fn]
    gen = lambda s: torch.Generator(device=device).manual_seed(s)  # noqa: E731
    a, b, c = make(gen(1234)), make(gen(1234)), make(gen(4321))
    assert_equal(f"torch.{fn}", a, b, args="same generator seed")
    assert_true(f"torch.{fn}", not torch.equal(a, c), "different generator seeds gave identical draws", args="seeds 1234 vs 4321")
    torch.manual_seed(99)
    d = make(None)
    torch.manual_seed(99)
    assert_equal(f"torch.{fn}", d, make(None), args="torch.manual_seed(99) twice")


def test_randperm_is_permutation(device):
    """randperm(n) is a permutation of 0..n-1 (int64)."""
    t = torch.randperm(1000, device=device)
    assert_equal("torch.randperm", t.dtype, torch.int64)
    assert_equal("torch.randperm", np.sort(t.cpu().numpy()), np.arange(1000))


@pytest.mark.parametrize("fn,fill", [("zeros_like", 0), ("ones_like", 1), ("full_like", 3), ("empty_like", None), ("rand_like", None)])
@pytest.mark.dtypes(dtypes.FLOAT_HIGH)
def test_like_functions(device, dtype, fn, fill):
    """*_like functions keep the input's shape, dtype and device, and accept dtype= overrides."""
    src = torch.arange(12, dtype=dtype, device=device).reshape(3, 4).t()  # non-contiguous source
    f = getattr(torch, fn)
    t = f(src, 3) if fn == "full_like" else f(src)
    assert_equal(f"torch.{fn}", tuple(t.shape), (4, 3))
    assert_equal(f"torch.{fn}", t.dtype, dtype)
    assert_equal(f"torch.{fn}", t.device.type, device)
    if fill is not None:
        assert_equal(f"torch.{fn}", t, np.full((4, 3), fill))
    t64 = (f(src, 3, dtype=torch.float64) if fn == "full_like" else f(src, dtype=torch.float64))
    assert_equal(f"torch.{fn}", t64.dtype, torch.float64, args="dtype=float64")


@pytest.mark.parametrize("np_dtype,torch_dtype", [(np.float32, torch.float32), (np.float64, torch.float64),
                                                   (np.int32, torch.int32), (np.int64, torch.int64),
                                                   (np.bool_, torch.bool), (np.complex64, torch.complex64),
                                                   (np.uint8, torch.uint8), (np.float16, torch.float16)])
def test_from_numpy_shares_memory(np_dtype, torch_dtype):
    """from_numpy keeps the dtype and shares memory both ways; .numpy() shares memory too (CPU)."""
    arr = (np.arange(6) % 2).astype(np_dtype).reshape(2, 3)
    t = torch.from_numpy(arr)
    assert_equal("torch.from_numpy", t.dtype, torch_dtype, args=np.dtype(np_dtype).name)
    assert_equal("torch.from_numpy", t, arr)
    new = np.ones((), dtype=np_dtype)
    arr[1, 2] = new
    assert_equal("torch.from_numpy", t[1, 2].item(), new.item(), args="write through ndarray")
    back = t.numpy()
    assert_true("Tensor.numpy", np.shares_memory(back, arr), ".numpy() of a from_numpy tensor copied instead of sharing")
    t[0, 0] = torch.ones((), dtype=torch_dtype)
    assert_equal("torch.from_numpy", arr[0, 0].item(), new.item(), args="write through tensor")


def test_from_numpy_keeps_strides():
    """from_numpy of a non-contiguous (transposed, strided) array keeps NumPy's element strides."""
    arr = np.arange(24, dtype=np.float64).reshape(4, 6)[:, ::2].T
    t = torch.from_numpy(arr)
    assert_equal("torch.from_numpy", t.stride(), tuple(s // arr.itemsize for s in arr.strides))
    assert_equal("torch.from_numpy", t, arr)


def test_numpy_requires_cpu_and_no_grad(device):
    """.numpy() refuses a tensor that requires grad (RuntimeError), and an accelerator tensor (TypeError)."""
    t = torch.ones(2, requires_grad=True)
    assert_raises("Tensor.numpy", RuntimeError, t.numpy, match="grad", args="requires_grad=True")
    assert_equal("Tensor.detach().numpy", t.detach().numpy(), np.ones(2))
    if device != "cpu":
        assert_raises("Tensor.numpy", TypeError, torch.ones(2, device=device).numpy, args=f"device={device}")


def test_as_tensor_shares_when_possible():
    """as_tensor shares memory with a same-dtype CPU ndarray and copies when a dtype change is needed."""
    arr = np.zeros(4, dtype=np.float32)
    shared = torch.as_tensor(arr)
    arr[0] = 5
    assert_equal("torch.as_tensor", shared[0].item(), 5.0, args="same dtype: shares")
    copied = torch.as_tensor(arr, dtype=torch.float64)
    arr[1] = 6
    assert_equal("torch.as_tensor", copied[1].item(), 0.0, args="dtype=float64: copies")
