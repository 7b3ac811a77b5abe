"""§ 5 Data: batching and collation (default_collate, default_convert)."""
from __future__ import annotations

import collections

import numpy as np
import pytest
import torch

from harness.checks import assert_equal, assert_raises, assert_true

try:
    from torch.utils.data import default_collate, default_convert
except ImportError:  # older builds keep them private
    from torch.utils.data._utils.collate import default_collate, default_convert

Point = collections.namedtuple("Point", ["x", "y"])


@pytest.mark.smoke
def test_collate_tensors_stack():
    """Tensors are stacked along a new first dimension, keeping dtype."""
    items = [torch.full((2, 3), float(i)) for i in range(4)]
    out = default_collate(items)
    assert_equal("default_collate", tuple(out.shape), (4, 2, 3))
    assert_equal("default_collate", out.dtype, torch.float32)
    assert_equal("default_collate", out, np.stack([np.full((2, 3), float(i)) for i in range(4)]))


def test_collate_numbers():
    """Python ints become an int64 tensor, floats a float64 tensor, bools a bool tensor; strings stay a list."""
    ints = default_collate([1, 2, 3])
    assert_equal("default_collate", ints.dtype, torch.int64, args="ints")
    assert_equal("default_collate", ints, np.array([1, 2, 3]))
    floats = default_collate([0.5, 1.5])
    assert_equal("default_collate", floats.dtype, torch.float64, args="floats")
    assert_equal("default_collate", floats, np.array([0.5, 1.5]))
    bools = default_collate([True, False])
    assert_equal("default_collate", bools.dtype, torch.bool, args="bools")
    assert_equal("default_collate", default_collate(["a", "b"]), ["a", "b"], args="strings")


def test_collate_numpy():
    """NumPy arrays are converted and stacked, keeping dtype; NumPy scalars become a tensor."""
    out = default_collate([np.arange(3, dtype=np.int32), np.arange(3, 6, dtype=np.int32)])
    assert_equal("default_collate", out.dtype, torch.int32, args="int32 arrays")
    assert_equal("default_collate", out, np.array([[0, 1, 2], [3, 4, 5]]))
    sc = default_collate([np.float32(1.5), np.float32(2.5)])
    assert_true("default_collate", isinstance(sc, torch.Tensor), f"numpy scalars gave {type(sc).__name__}")
    assert_equal("default_collate", sc, np.array([1.5, 2.5]), args="numpy scalars")


def test_collate_structures():
    """Documented structure rules: a dict collates per key; a namedtuple keeps its type; tuples and lists
    of samples are transposed into a list of batches ([(0, 1), (2, 3)] -> [tensor([0, 2]), tensor([1, 3])])."""
    d = default_collate([{"a": 1, "b": torch.tensor([1.0])}, {"a": 2, "b": torch.tensor([2.0])}])
    assert_equal("default_collate", sorted(d), ["a", "b"], args="dict keys")
    assert_equal("default_collate", d["a"], np.array([1, 2]), args="dict")
    assert_equal("default_collate", d["b"], np.array([[1.0], [2.0]]), args="dict")
    p = default_collate([Point(0, 0), Point(1, 1)])
    assert_true("default_collate", isinstance(p, Point), f"namedtuple collated to {type(p).__name__}")
    assert_equal("default_collate", p.x, np.array([0, 1]), args="namedtuple")
    t = default_collate([(0, 1), (2, 3)])
    assert_equal("default_collate", len(t), 2, args="tuples")
    assert_equal("default_collate", t[0], np.array([0, 2]), args="tuples")
    assert_equal("default_collate", t[1], np.array([1, 3]), args="tuples")
    nested = default_collate([(torch.zeros(2), {"k": 1}), (torch.ones(2), {"k": 2})])
    assert_equal("default_collate", nested[0], np.array([[0, 0], [1, 1]]), args="nested")
    assert_equal("default_collate", nested[1]["k"], np.array([1, 2]), args="nested")


def test_collate_errors():
    """Tensors of different shapes cannot be stacked; sequences of unequal length are refused."""
    assert_raises("default_collate", RuntimeError, default_collate, [torch.zeros(2), torch.zeros(3)], args="shapes 2 and 3")
    assert_raises("default_collate", RuntimeError, default_collate, [[1, 2], [3]], args="lists of length 2 and 1")


def test_default_convert():
    """default_convert turns NumPy arrays into tensors without stacking and leaves other values alone."""
    out = default_convert(np.array([0, 1]))
    assert_true("default_convert", isinstance(out, torch.Tensor), f"got {type(out).__name__}")
    assert_equal("default_convert", out, np.array([0, 1]))
    lst = default_convert([np.array([0, 1]), np.array([2, 3])])
    assert_true("default_convert", isinstance(lst, list) and len(lst) == 2 and all(isinstance(x, torch.Tensor) for x in lst),
                f"got {lst!r}")
    assert_equal("default_convert", default_convert("text"), "text")
    assert_equal("default_convert", default_convert(3), 3)
