"""Module-level classes and helpers for the serialization suite (importable, so whole-model pickling works)."""
from __future__ import annotations

import torch
import torch.nn as nn

SIDE_EFFECTS: list[str] = []


def record_side_effect(tag: str) -> str:
    """A reduce target whose only effect is visible: loading a payload that calls it appends ``tag``."""
    SIDE_EFFECTS.append(tag)
    return tag


class Payload:
    """Pickles to a call of record_side_effect: what an attacker's reduce payload looks like."""

    def __init__(self, tag: str):
        self.tag = tag

    def __reduce__(self):
        return (record_side_effect, (self.tag,))


class Point:
    """A plain user class (reconstructed via __dict__), loadable under weights_only only once allowlisted."""

    def __init__(self, x=0, y=0):
        self.x, self.y = x, y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


class Net(nn.Module):
    """Parameters, a BatchNorm (buffers incl. an int64 counter), and extra buffers of several dtypes."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(12, 4)
        self.register_buffer("bf16", torch.randn(3, 2).to(torch.bfloat16))
        self.register_buffer("f16", torch.randn(5).to(torch.float16))
        self.register_buffer("cplx", torch.randn(2, 2, dtype=torch.complex64))
        self.register_buffer("ints", torch.arange(-3, 3, dtype=torch.int32))
        self.register_buffer("flags", torch.tensor([True, False, True]))
        self.register_buffer("u8", torch.tensor([0, 7, 255], dtype=torch.uint8))
        self.register_buffer("scratch", torch.zeros(2), persistent=False)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))
