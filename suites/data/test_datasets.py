"""§ 5 Data: Dataset, IterableDataset, TensorDataset, Subset, ConcatDataset, ChainDataset, random_split."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import (ChainDataset, ConcatDataset, Dataset, Subset, TensorDataset,
                              random_split)

from harness.checks import assert_equal, assert_raises, assert_true
from suites.data._datasets import Squares, Stream


@pytest.mark.smoke
def test_tensor_dataset():
    """TensorDataset: item i is the tuple of each tensor's row i; len is the first dimension; tensors
    whose first dimensions differ are refused."""
    x, y = torch.arange(12.0).reshape(6, 2), torch.arange(6)
    ds = TensorDataset(x, y)
    assert_equal("TensorDataset.__len__", len(ds), 6)
    for i in (0, 3, 5, -1):
        item = ds[i]
        assert_equal("TensorDataset.__getitem__", len(item), 2, args=str(i))
        assert_equal("TensorDataset.__getitem__", item[0], x.numpy()[i], args=str(i))
        assert_equal("TensorDataset.__getitem__", item[1].item(), int(np.arange(6)[i]), args=str(i))
    assert_raises("TensorDataset", (AssertionError, ValueError, RuntimeError), TensorDataset, x, torch.arange(5),
                  args="sizes 6 and 5")
    assert_raises("TensorDataset.__getitem__", IndexError, ds.__getitem__, 6, args="6")


def test_dataset_base_class():
    """Dataset.__getitem__ is abstract (NotImplementedError); `a + b` is a ConcatDataset."""
    assert_raises("Dataset.__getitem__", NotImplementedError, Dataset().__getitem__, 0)
    both = Squares(3) + Squares(2)
    assert_true("Dataset.__add__", isinstance(both, ConcatDataset), f"got {type(both).__name__}")
    assert_equal("Dataset.__add__", len(both), 5)


def test_subset():
    """Subset(ds, indices)[k] is ds[indices[k]]; len is len(indices); repeats and nesting allowed."""
    base = Squares(10)
    sub = Subset(base, [7, 2, 2, 9])
    assert_equal("Subset.__len__", len(sub), 4)
    assert_equal("Subset.__getitem__", [int(sub[k][0]) for k in range(4)], [7, 2, 2, 9])
    nested = Subset(sub, [3, 0])
    assert_equal("Subset.__getitem__", [int(nested[k][0]) for k in range(2)], [9, 7], args="nested")
    if hasattr(sub, "__getitems__"):  # batched fetch (torch >= 2.1)
        assert_equal("Subset.__getitems__", [int(a[0]) for a in sub.__getitems__([0, 3])], [7, 9])


def test_concat_dataset():
    """ConcatDataset maps a global index to (dataset, local index) by cumulative sizes; negative indices
    count from the end; out of range is an error; empty members are skipped."""
    parts = [Squares(3), Squares(0), Squares(4)]
    cat = ConcatDataset(parts)
    assert_equal("ConcatDataset.__len__", len(cat), 7)
    assert_equal("ConcatDataset.cumulative_sizes", list(cat.cumulative_sizes), [3, 3, 7])
    expected = [0, 1, 2, 0, 1, 2, 3]
    assert_equal("ConcatDataset.__getitem__", [int(cat[i][0]) for i in range(7)], expected)
    assert_equal("ConcatDataset.__getitem__", int(cat[-1][0]), 3, args="-1")
    assert_equal("ConcatDataset.__getitem__", int(cat[-5][0]), 2, args="-5")
    assert_raises("ConcatDataset.__getitem__", (ValueError, IndexError), cat.__getitem__, -8, args="-8")
    assert_raises("ConcatDataset.__getitem__", IndexError, cat.__getitem__, 7, args="7")
    assert_raises("ConcatDataset", (AssertionError, ValueError), ConcatDataset, [], args="[]")


def test_concat_refuses_iterable():
    """ConcatDataset does not support IterableDataset members (use ChainDataset)."""
    assert_raises("ConcatDataset", (AssertionError, TypeError, ValueError), ConcatDataset, [Squares(2), Stream(0, 3, False)])


def test_iterable_dataset_and_chain():
    """IterableDataset yields from __iter__; ChainDataset (and `a + b`) chains members in order."""
    a, b = Stream(0, 3, False), Stream(10, 12, False)
    assert_equal("IterableDataset.__iter__", list(a), [0, 1, 2])
    chained = ChainDataset([a, b])
    assert_equal("ChainDataset.__iter__", list(chained), [0, 1, 2, 10, 11])
    plus = a + b
    assert_true("IterableDataset.__add__", isinstance(plus, ChainDataset), f"got {type(plus).__name__}")
    assert_equal("IterableDataset.__add__", list(plus), [0, 1, 2, 10, 11])
    assert_true("IterableDataset", isinstance(a, Dataset), "an IterableDataset must be a Dataset")


@pytest.mark.parametrize("n,lengths", [(10, [3, 7]), (10, [10, 0]), (7, [2, 2, 3])])
def test_random_split_lengths(n, lengths):
    """random_split(lengths): subsets of exactly those sizes, disjoint, covering the dataset."""
    parts = random_split(Squares(n), lengths, generator=torch.Generator().manual_seed(0))
    assert_equal("random_split", [len(p) for p in parts], lengths, args=str(lengths))
    seen = sorted(int(p[k][0]) for p in parts for k in range(len(p)))
    assert_equal("random_split", seen, list(range(n)), args="disjoint cover")


@pytest.mark.parametrize("n,fracs", [(10, [0.3, 0.7]), (11, [0.5, 0.5]), (10, [0.33, 0.33, 0.34]), (7, [0.25, 0.25, 0.25, 0.25])])
def test_random_split_fractions(n, fracs):
    """Fractions summing to 1: lengths floor(f*n), then the remainder handed out one by one round-robin
    from the first subset (documented rule)."""
    parts = random_split(Squares(n), fracs, generator=torch.Generator().manual_seed(0))
    lengths = [math.floor(n * f) for f in fracs]
    for i in range(n - sum(lengths)):
        lengths[i % len(lengths)] += 1
    assert_equal("random_split", [len(p) for p in parts], lengths, args=f"n={n}, {fracs}")


def test_random_split_generator_and_errors():
    """The same generator seed gives the same split, another seed another; lengths that don't add up
    to len(dataset) raise ValueError."""
    idx = lambda s: [p.indices for p in random_split(Squares(50), [20, 30], generator=torch.Generator().manual_seed(s))]  # noqa: E731
    assert_equal("random_split", idx(1), idx(1), args="same generator seed")
    assert_true("random_split", idx(1) != idx(2), "different generator seeds gave the same split")
    assert_raises("random_split", ValueError, random_split, Squares(10), [3, 3], args="[3, 3] of 10")
