"""Dtype groups for the ``dtypes`` marker and the ids used in test names (``[cpu-float32]``).

A dtype's name (``float32``) is :func:`harness.tolerances.dtype_name`, the one definition the
tolerance table, the test ids, the run record and the fingerprint all use.
"""
from __future__ import annotations

import torch

from harness.tolerances import dtype_name

FLOAT32 = (torch.float32,)
FLOATING = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
FLOAT_HIGH = (torch.float32, torch.float64)
FLOAT_LOW = (torch.bfloat16, torch.float16)
INTEGRAL = (torch.int32, torch.int64)
SIGNED_INTS = (torch.int8, torch.int16, torch.int32, torch.int64)
COMPLEX = (torch.complex64,)
BOOL = (torch.bool,)
ALL = FLOATING + INTEGRAL + BOOL + COMPLEX
DEFAULT = FLOAT_HIGH


dtype_id = dtype_name  # the id in test names: [cpu-float32]


def numpy_dtype(dtype):
    """The NumPy dtype an oracle computes in for a torch dtype (float64 for every float kind)."""
    import numpy as np

    if dtype.is_complex:
        return np.complex128
    if dtype.is_floating_point:
        return np.float64
    return torch.empty((), dtype=dtype).numpy().dtype
