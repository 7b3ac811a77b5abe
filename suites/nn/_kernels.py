"""§ 4 nn: shared helpers of the production-kernel grids (suites/nn/test_kernels_*.py).

Three jobs:

* :func:`place` puts given values into the memory layout a test asks for (channels_last, a gapped view,
  a slice of a larger storage with a storage offset), filling every gap with NaN so that a kernel that
  reads a gap poisons its output, and checks that the layout really is the one asked for.
* :func:`bound` / :func:`assert_bounded` compare a float32 or bfloat16 result with a float64 reference
  *per element*, against an error allowance derived from the computation: a sum of ``n`` products
  computed in float32 is off by at most ``gamma_n = n*u/(1 - n*u)`` times the sum of the absolute
  values of its terms (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., eq. 3.5);
  each result or partial result rounded to bfloat16 adds at most ``2**-8`` of its magnitude. The
  magnitude of the terms (``sum |w||x|`` for a convolution) is computed by the same float64 reference
  on absolute values, so the allowance is K-aware and shrinks with the data instead of being a fixed
  rtol that lets a halved result through.
* :func:`grads` runs autograd and returns the gradients, for float32/bfloat16-vs-float64 backward checks.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from harness.checks import assert_close, assert_equal, assert_true, to_numpy

U32 = 2.0 ** -24  # unit roundoff of float32 (round to nearest)
UBF16 = 2.0 ** -8  # unit roundoff of bfloat16 (8 significant bits)
DTYPES = (torch.float32, torch.bfloat16)

LAYOUTS_1D = ("contiguous", "gapped", "offset")
LAYOUTS = ("contiguous", "channels_last", "channels_last_x", "channels_last_w", "gapped", "offset",
           "channels_last_gapped")


def cl_format(nd: int):
    """The channels-last memory format for an N-d (spatial) input, None for 1-d."""
    return {2: torch.channels_last, 3: torch.channels_last_3d}.get(nd)


def rand(shape, dtype, device, scale: float = 1.0, offset: float = 0.0) -> torch.Tensor:
    """Standard normal values drawn in float32 (seeded by the test) and rounded to ``dtype``, so the
    float64 reference sees exactly the values the kernel sees."""
    return (torch.randn(*shape, device=device) * scale + offset).to(dtype)


def place(t: torch.Tensor, layout: str, nd: int | None = None) -> torch.Tensor:
    """``t``'s values in ``layout``:

    ``contiguous``; ``channels_last`` (channels_last_3d for 5-d); ``gapped``: a view ``buf[..., ::2]``
    (stride 2 in the last dim, gaps between all elements); ``offset``: a slice ``buf[1:, 1:, 1:-1, ...]``
    of a larger storage (storage offset > 0, gaps at the end of every row/plane); ``channels_last_gapped``:
    every second channel of a channels_last buffer (channels-last order with gaps between channels).
    Gaps hold NaN. A layout that does not apply (channels_last of a 3-d tensor) is a usage error."""
    nd = t.ndim - 2 if nd is None else nd
    if layout == "contiguous":
        return t.contiguous()
    if layout == "channels_last":
        fmt = cl_format(nd)
        if fmt is None:
            raise ValueError(f"channels_last needs a 4-d or 5-d tensor, got {t.ndim}-d")
        out = t.contiguous(memory_format=fmt)
        if t.shape[0] > 0 and t.shape[1] > 1 and math.prod(t.shape[2:]) > 1:
            assert_true("place", not out.is_contiguous(), "channels_last copy is also contiguous",
                        args=str(tuple(t.shape)))
        return out
    if layout == "gapped":
        buf = torch.full((*t.shape[:-1], 2 * t.shape[-1]), math.nan, dtype=t.dtype, device=t.device)
        out = buf[..., ::2]
    elif layout == "offset":
        buf = torch.full((t.shape[0] + 1, t.shape[1] + 1, *[s + 2 for s in t.shape[2:]]), math.nan,
                         dtype=t.dtype, device=t.device)
        out = buf[(slice(1, None), slice(1, None)) + (slice(1, -1),) * (t.ndim - 2)]
    elif layout == "channels_last_gapped":
        fmt = cl_format(nd)
        if fmt is None:
            raise ValueError(f"channels_last_gapped needs a 4-d or 5-d tensor, got {t.ndim}-d")
        buf = torch.full((t.shape[0], 2 * t.shape[1], *t.shape[2:]), math.nan, dtype=t.dtype,
                         device=t.device).contiguous(memory_format=fmt)
        out = buf[:, ::2]
    else:
        raise ValueError(f"unknown layout {layout!r}")
    out.copy_(t)
    if t.numel() > 1:
        span = 1 + sum((n - 1) * st for n, st in zip(out.shape, out.stride()))
        assert_true("place", span > out.numel(), f"{layout} view is dense, so the strided kernel would not run",
                    args=f"{tuple(t.shape)}, strides {out.stride()}")
    return out


def bound(dtype, n_terms: int, roundings: int = 0) -> tuple[float, float]:
    """(rtol, atol) of a result relative to its own reference, in units of the magnitude of its terms.

    ``n_terms``: how many products/terms one result element sums (K = C_in/groups x kernel volume for
    a convolution); they are accumulated in float32 for float32 and bfloat16 inputs alike, so
    ``atol = gamma_(n+1)`` in float32 units (+1: the bias / the final division or rounding).
    ``roundings``: partial results the kernel may round to ``dtype`` on the way (a col2im that adds one
    rounded column per kernel tap, a weight gradient accumulated per sample in a bfloat16 buffer);
    each adds one unit roundoff of ``dtype`` times the magnitude of the terms.
    bfloat16 results are rounded once at the end: ``rtol = 2**-8`` of the reference."""
    n = n_terms + 1
    gamma = n * U32 / (1 - n * U32)
    if dtype == torch.float32:
        return 0.0, gamma + roundings * U32
    if dtype == torch.bfloat16:  # (1 + u): the final rounding also scales the accumulated error
        return UBF16, (1 + UBF16) * (gamma + roundings * UBF16)
    raise ValueError(f"no derived bound for {dtype}")


def assert_bounded(api: str, got: torch.Tensor, ref: np.ndarray, magnitude: np.ndarray, *, rtol: float, atol: float,
                   dtype=None, args: str = "") -> dict:
    """|got - ref| <= atol * magnitude + rtol * |ref| element by element, with ``magnitude`` the float64
    sum of the absolute values of each element's terms (so ``atol`` is a relative error bound of the
    summation). Compared as ``got/magnitude`` against ``ref/magnitude`` through assert_close, so the
    recorded ratio is error/allowance. A zero magnitude (no terms: an output every window misses, a
    gradient nobody reads) demands an exact zero. Checks dtype and shape first."""
    __tracebackhide__ = True
    if dtype is not None:
        assert_equal(api, got.dtype, dtype, args=f"{args}: result dtype")
    a = to_numpy(got)
    ref = np.asarray(ref, dtype=np.float64)
    magnitude = np.broadcast_to(np.asarray(magnitude, dtype=np.float64), ref.shape)
    assert_equal(api, tuple(a.shape), tuple(ref.shape), args=f"{args}: result shape")
    scale = np.where(magnitude > 0, magnitude, np.finfo(np.float64).tiny)
    with np.errstate(over="ignore", invalid="ignore"):
        a_s, e_s = a / scale, ref / scale
    return assert_close(api, a_s, e_s, rtol=rtol, atol=atol,  # derived above (bound): K-aware, per element
                        dtype=got.dtype, args=f"{args} [values / sum|terms|]")


def grads(fn, inputs, grad_out):
    """(output, [d output/d input for each input]) by autograd: each input is detached, cloned with its
    strides kept, and set to require grad; None inputs give None."""
    leaves = [None if t is None else t.detach().clone().requires_grad_(True) for t in inputs]
    out = fn(*leaves)
    out.backward(grad_out)
    return out, [None if t is None else t.grad for t in leaves]


def to64(t: torch.Tensor | None) -> torch.Tensor | None:
    """The same values in float64 on the same device, contiguous (the reference path)."""
    return None if t is None else t.detach().to(torch.float64).contiguous()


def abs64(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else to64(t).abs()


def seq(values, nd: int) -> tuple:
    """The first ``nd`` entries of a per-dimension tuple (so one config serves 1-d, 2-d and 3-d)."""
    return tuple(values[:nd])
