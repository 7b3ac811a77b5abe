"""Input builders, storage predicates and accumulation allowances shared by the § 1 tensor modules."""
from __future__ import annotations

import numpy as np
import torch

from harness import tolerances


def arange_tensor(shape, dtype, device) -> torch.Tensor:
    """0, 1, 2, ... in ``shape`` as ``dtype`` (bool: every third element True): distinct, exact values."""
    n = int(np.prod(shape))
    if dtype == torch.bool:
        return (torch.arange(n, device=device) % 3 == 0).reshape(shape)
    return torch.arange(n, device=device).to(dtype).reshape(shape)


def shares_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether a and b use the same storage (writes through one are seen through the other)."""
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def is_dense(t: torch.Tensor) -> bool:
    """Whether ``t``'s elements fill a gap-free block of memory in some dim order (contiguous, channels_last,
    a transpose or any other permutation of a contiguous tensor). TensorIterator runs such a tensor as one
    flat loop, so a dense input never reaches the strided kernels. Size-0/1 dims do not count."""
    dims = sorted(((st, sz) for st, sz in zip(t.stride(), t.shape) if sz != 1), key=lambda d: d[0])
    if any(sz == 0 for _, sz in dims):
        return True
    expected = 1
    for st, sz in dims:
        if st != expected:
            return False
        expected *= sz
    return True


def gap_fill(dtype):
    """The value a builder writes into the gaps between a strided view's elements: NaN for floating and
    complex dtypes, the largest value for integers, True for bool. A kernel that reads a gap shows it."""
    if dtype.is_floating_point or dtype.is_complex:
        return float("nan")
    if dtype == torch.bool:
        return True
    return torch.iinfo(dtype).max


def gapped_view(t: torch.Tensor) -> torch.Tensor:
    """A view with ``t``'s shape and values whose innermost dim of size > 1 has stride 2 (the pattern of
    ``x[:, ::2]``), inside a larger storage at storage offset 1; the gaps hold :func:`gap_fill`. Raises
    ValueError when ``t`` has no dim of size > 1 (such a tensor cannot be non-contiguous)."""
    shape = tuple(t.shape)
    dims = [d for d, s in enumerate(shape) if s > 1]
    if not dims:
        raise ValueError(f"shape {shape} has no dim of size > 1: it cannot be given gaps")
    d = dims[-1]
    buf_shape = shape[:d] + (2 * shape[d],) + shape[d + 1:]
    flat = torch.full((int(np.prod(buf_shape)) + 1,), gap_fill(t.dtype), dtype=t.dtype, device=t.device)
    buf = flat[1:].view(buf_shape)
    view = buf[(slice(None),) * d + (slice(None, None, 2),)]
    view.copy_(t)
    return view


def random_tensor(np_rng, shape, dtype, device, low=-5.0, high=5.0, noncontig=False) -> torch.Tensor:
    """Values drawn by NumPy (uniform in [low, high) for floats and both parts of complex, integers in
    [low, high], bools fair) as ``dtype`` on ``device``; with ``noncontig``, a view with gaps (every other
    element of the innermost dim of size > 1, at a storage offset: see :func:`gapped_view`), so the
    result has ``shape`` and reaches the strided kernels (neither contiguous nor a dense permutation)."""
    if dtype.is_floating_point:
        x = torch.from_numpy(np_rng.uniform(low, high, size=shape)).to(dtype)
    elif dtype.is_complex:
        x = torch.from_numpy(np_rng.uniform(low, high, size=shape) + 1j * np_rng.uniform(low, high, size=shape)).to(dtype)
    elif dtype == torch.bool:
        x = torch.from_numpy(np_rng.integers(0, 2, size=shape).astype(bool))
    else:
        x = torch.from_numpy(np_rng.integers(int(low), int(high) + 1, size=shape)).to(dtype)
    x = x.to(device)
    if noncontig:
        x = gapped_view(x)
        assert not x.is_contiguous() and not is_dense(x), f"noncontig builder gave a dense layout {x.stride()}"
    return x


# ---- allowances (passed to harness.checks.assert_close) ------------------------------------------------
def reduction_tol(k: int, scale=None, tied: int = 0, scale_max: float | None = None) -> dict:
    """The harness's K-aware allowance for a k-term sum-like reduction (``tolerances.for_reduction`` through
    ``assert_close(op="reduction", k=, scale=)``): ``scale`` is the float64 sum of |terms| per output (None:
    the result's own magnitude, for products, norms and same-sign sums). ``tied``: the terms include one
    value repeated ``tied`` times in a row (a reduction over a stride-0 dim); their roundings all go the
    same way, so the deterministic bound tied * u * scale is added as atol (``scale_max``: the largest
    scale; needed when ``scale`` is None)."""
    tol = {"op": "reduction", "k": max(int(k), 1)}
    if scale is not None:
        tol["scale"] = scale
    if tied:
        big = scale_max if scale_max is not None else float(np.max(scale)) if np.size(scale) else 0.0
        tol["atol"] = tied * tolerances.unit_roundoff(torch.float32) * big
    return tol


def accumulate_tol(dtype, X, grid, S):
    """Allowance for index_add/index_put(accumulate)/scatter_add: each slot of ``X`` adds the terms ``S``
    sent to it by the NumPy index ``grid``. Not the K-aware class: these accumulate in the tensor's own
    dtype, each addition rounded (measured on torch 2.13 CPU: 4,000 bfloat16 values near 1 added into one
    slot by index_add stop growing at 512), so K additions (the largest multiplicity plus the initial
    value) give eps(dtype) * K * (the slot's sum of magnitudes), the deterministic bound. None (exact)
    for integer dtypes."""
    if not dtype.is_floating_point:
        return None
    count = np.zeros(X.shape)
    np.add.at(count, grid, 1)
    scale = np.abs(X).copy()
    np.add.at(scale, grid, np.abs(S))
    k = float(count.max()) + 1 if count.size else 1.0
    e = torch.finfo(dtype).eps
    return {"op": "reduction", "rtol": e, "atol": e * k * (float(scale.max()) if scale.size else 0.0)}
