"""Shared helpers of § 9.2: which low-precision dtypes autocast supports on each device."""
from __future__ import annotations

import pytest
import torch
from packaging.version import Version

DEFAULT_LOW = {"cpu": torch.bfloat16, "cuda": torch.float16}


def low_dtypes(device: str) -> list:
    if device == "cpu":
        return [torch.bfloat16, torch.float16]
    if device == "cuda":
        out = [torch.float16]
        if torch.cuda.is_bf16_supported():
            out.append(torch.bfloat16)
        return out
    return [DEFAULT_LOW.get(device, torch.float16)]


def require_autocast(device: str):
    avail = getattr(torch.amp, "is_autocast_available", None)
    if avail is not None and not avail(device):
        pytest.skip(f"torch.amp.is_autocast_available({device!r}) is False")


def is_enabled(device: str) -> bool:
    """torch.is_autocast_enabled(device) (the device argument exists from torch 2.4 on; older builds have
    is_autocast_cpu_enabled() and a CUDA-only is_autocast_enabled()). Chosen by version, so an error
    from the documented form is a failure rather than a silent switch to the old API."""
    if Version(torch.__version__).release >= (2, 4):
        return torch.is_autocast_enabled(device)
    return torch.is_autocast_cpu_enabled() if device == "cpu" else torch.is_autocast_enabled()


def grad_scaler(device: str, **kw):
    """torch.amp.GradScaler(device, ...), or a skip on builds without the device-generic scaler (added in
    2.3). Where it exists it must construct: an error from the constructor is a failure, not a skip."""
    cls = getattr(torch.amp, "GradScaler", None)
    if cls is None:
        pytest.skip("torch.amp.GradScaler does not exist in this torch (added in 2.3)")
    return cls(device, **kw)
