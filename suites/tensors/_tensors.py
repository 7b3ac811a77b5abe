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


def random_tensor(np_rng, shape, dtype, device, low=-5.0, high=5.0, noncontig=False) -> torch.Tensor:
    """Values drawn by NumPy (uniform in [low, high) for floats and both parts of complex, integers in
    [low, high], bools fair) as ``dtype`` on ``device``; with ``noncontig``, a dims-reversed view of the
    reversed shape, so the result has ``shape`` but is not contiguous."""
    if noncontig:
        shape = tuple(reversed(shape))
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
        x = x.permute(*reversed(range(x.dim())))
    return x
