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
