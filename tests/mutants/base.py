"""The registry of planted bugs and the patching helpers every catalogue module uses.

A mutant is one realistic torch bug: ``apply()`` patches torch in the test process (and in forked
children). ``sections`` names the suite folders that OWN catching it (the documented contract);
``paths`` optionally narrows where the runner looks (files or node ids under suites/, each inside one
of the sections) and ``select`` narrows further with a pytest ``-k`` expression, so that one mutant
does not cost a whole section. ``threads`` is the smallest torch thread count the bug needs to show.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import torch


@dataclass(frozen=True)
class Mutant:
    name: str
    sections: tuple[str, ...]
    bug: str
    apply: Callable[[], None]
    paths: tuple[str, ...] = ()
    select: str = ""
    threads: int = 1

    def targets(self, whole_sections: bool = False) -> tuple[str, ...]:
        """What pytest runs for this mutant: its paths, or its whole sections."""
        if whole_sections or not self.paths:
            return tuple(f"suites/{s}" for s in self.sections)
        return self.paths


MUTANTS: dict[str, Mutant] = {}


def mutant(sections, bug, *, paths=(), select="", threads=1):
    """Register the decorated function as a mutant. ``sections`` and ``paths`` are space-separated
    strings or tuples; paths are relative to the repository root (``suites/ops/test_fft.py``)."""
    def split(v):
        return tuple(v.split()) if isinstance(v, str) else tuple(v)

    def deco(fn):
        if fn.__name__ in MUTANTS:
            raise ValueError(f"duplicate mutant {fn.__name__}")
        MUTANTS[fn.__name__] = Mutant(fn.__name__, split(sections), bug, fn, split(paths), select, threads)
        return fn
    return deco


class _NoOpContext:
    """Stands in for a context manager / decorator that should change torch's mode and does nothing."""

    def __init__(self, *a, **k):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def __call__(self, fn):
        return fn


def _patch(owner, name, make):
    orig = getattr(owner, name)
    new = make(orig)
    functools.update_wrapper(new, orig, assigned=("__name__", "__qualname__", "__doc__"), updated=())
    setattr(owner, name, new)


def _both(name, make):
    """Patch torch.<name> and Tensor.<name> (the method form takes self first, like the function)."""
    _patch(torch, name, make)
    _patch(torch.Tensor, name, make)


def dense_view(x):
    """``x``'s shape read as if it were contiguous from its storage offset: what a kernel that ignores
    strides sees (the gaps of a gapped view, the wrong elements of a transposed one)."""
    st, acc = [], 1
    for s in reversed(x.shape):
        st.append(acc)
        acc *= s
    return x.as_strided(x.shape, tuple(reversed(st)), x.storage_offset())


def reads_dense(x):
    """True when a stride-ignoring kernel would read ``x`` wrongly and can do so without leaving its
    storage: not contiguous, not stride 0 anywhere, and the dense extent fits in the storage."""
    if not isinstance(x, torch.Tensor) or x.is_contiguous() or x.numel() == 0 or 0 in x.stride():
        return False
    return x.storage_offset() + x.numel() <= x.untyped_storage().nbytes() // x.element_size()


def channels_last(x):
    """A 4-d/5-d tensor in channels_last(_3d) memory format (and not also plain contiguous)."""
    if not isinstance(x, torch.Tensor) or x.dim() not in (4, 5) or x.is_contiguous():
        return False
    fmt = torch.channels_last if x.dim() == 4 else torch.channels_last_3d
    return x.is_contiguous(memory_format=fmt)


class ScaleGrad(torch.autograd.Function):
    """Identity forward; the backward multiplies the incoming gradient by ``s`` (a wrong backward
    kernel for the op that follows it)."""

    @staticmethod
    def forward(ctx, t, s):
        ctx.s = s
        return t.view_as(t)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.s, None
