"""Input builders and storage predicates shared by the § 1 tensor modules."""
from __future__ import annotations

import numpy as np
import torch


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
