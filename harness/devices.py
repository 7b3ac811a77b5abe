"""Which devices a run covers: parse ``--device``, and what each available device supports."""
from __future__ import annotations

from harness.errors import DeviceError

KNOWN = ("cpu", "cuda", "mps", "xpu")


def _accelerator_available(name: str) -> bool:
    if name == "cpu":
        return True  # without importing torch: `torchconform run --device cpu` starts at once
    import torch

    if name == "cuda":
        return torch.cuda.is_available()
    if name == "mps":
        return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if name == "xpu":
        return hasattr(torch, "xpu") and torch.xpu.is_available()
    return False


def available() -> list[str]:
    """Every device type torch can use here, CPU first."""
    return [d for d in KNOWN if _accelerator_available(d)]


def parse(spec: str) -> list[str]:
    """Check the *names* in a ``--device`` value without importing torch: 'all' or a comma list."""
    spec = (spec or "all").strip().lower()
    if spec == "all":
        return ["all"]
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise DeviceError("--device is empty; use 'all', 'cpu', 'cuda' or a comma-separated list")
    for n in names:
        if n not in KNOWN:
            raise DeviceError(f"unknown device {n!r} in --device {spec!r}; known: {', '.join(KNOWN)}, or 'all'")
    return list(dict.fromkeys(names))


def resolve(spec: str) -> list[str]:
    """The devices a run covers: 'all' means every available one; a named one must be available."""
    names = parse(spec)
    if names == ["all"]:
        return available()
    for n in names:
        if not _accelerator_available(n):
            raise DeviceError(f"device {n!r} was asked for with --device but is not available here "
                              f"(available: {', '.join(available())})")
    return names


def device_count(device_type: str) -> int:
    import torch

    if device_type == "cuda":
        return torch.cuda.device_count()
    if device_type == "xpu" and hasattr(torch, "xpu"):
        return torch.xpu.device_count()
    return 1 if _accelerator_available(device_type) else 0


def unsupported_reason(device: str, dtype) -> str | None:
    """Why ``dtype`` cannot run on ``device``, or None where it can."""
    import torch

    if device == "mps" and dtype in (torch.float64, torch.complex128):
        return "MPS has no float64/complex128 support"
    if device == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        return "this CUDA device does not support bfloat16"
    return None
