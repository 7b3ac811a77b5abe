"""Deterministic per-rank inputs, computed the same way in each rank and in the parent's oracle
(plain NumPy, so the parent's reference does not go through torch)."""
from __future__ import annotations

import numpy as np

N = 6


def floats(rank: int, n: int = N) -> np.ndarray:
    """Distinct, nonzero, exactly representable float32 values per rank (ties across ranks at index 0)."""
    x = (np.arange(n, dtype=np.float64) - 2.5) * (rank + 1) * 0.5 + 0.25 * rank
    x[0] = 1.5  # the same on every rank: MIN/MAX ties
    return x.astype(np.float32)


def ints(rank: int, n: int = N) -> np.ndarray:
    """Integer bit patterns that differ per rank (for BAND/BOR/BXOR)."""
    return (np.arange(n, dtype=np.int64) * 5 + 3 * rank + 1) ^ (rank << 3)


def chunks(rank: int, world: int, n: int = N) -> list[np.ndarray]:
    """``world`` chunks held by ``rank`` (chunk j is meant for rank j in scatter/reduce_scatter)."""
    return [floats(rank, n) * (j + 1) + 10.0 * j for j in range(world)]
