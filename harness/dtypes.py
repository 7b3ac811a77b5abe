"""Dtype groups for the ``dtypes`` marker and the ids used in test names (``[cpu-float32]``)."""
from __future__ import annotations

import torch

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


def dtype_id(dtype) -> str:
    return str(dtype).rsplit(".", 1)[-1]


def numpy_dtype(dtype):
    """The NumPy dtype an oracle computes in for a torch dtype (float64 for every float kind)."""
    import numpy as np

    if dtype.is_complex:
        return np.complex128
    if dtype.is_floating_point:
        return np.float64
    return torch.empty((), dtype=dtype).numpy().dtype
