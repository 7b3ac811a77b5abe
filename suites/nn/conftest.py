"""Fixtures of the § 4 nn suite."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _full_fp32_on_cuda():
    """Compare float32 layers against float64 at float32 precision: cuDNN may use TF32 for conv/RNN by
    default (torch.backends.cudnn.allow_tf32 = True), a documented ~1e-3 precision trade that the `nn`/
    `matmul` float32 tolerances do not allow. Turned off for these tests and restored after; it has no
    effect on CPU."""
    import torch

    old_cudnn = torch.backends.cudnn.allow_tf32
    old_mm = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = old_cudnn
    torch.backends.cuda.matmul.allow_tf32 = old_mm
