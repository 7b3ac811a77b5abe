"""§ 5 Data: samplers (Sequential, Random, SubsetRandom, WeightedRandom, Batch, Distributed)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import (BatchSampler, RandomSampler, SequentialSampler, SubsetRandomSampler,
                              WeightedRandomSampler)
from torch.utils.data.distributed import DistributedSampler

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.data._datasets import Squares


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.smoke
def test_sequential_sampler():
    """SequentialSampler yields 0..n-1 in order; len is n."""
    s = SequentialSampler(range(5))
    assert_equal("SequentialSampler", list(s), [0, 1, 2, 3, 4])
    assert_equal("SequentialSampler.__len__", len(s), 5)


def test_random_sampler_permutation_and_generator():
    """RandomSampler without replacement is a permutation of range(n); the same generator seed gives the
    same order; successive epochs of one sampler differ; num_samples < n gives distinct indices."""
    n = 100
    a = list(RandomSampler(range(n), generator=_gen(3)))
    assert_equal("RandomSampler", sorted(a), list(range(n)), args="permutation")
    assert_equal("RandomSampler", a, list(RandomSampler(range(n), generator=_gen(3))), args="same seed")
    s = RandomSampler(range(n), generator=_gen(3))
    e1, e2 = list(s), list(s)
    assert_true("RandomSampler", e1 != e2, "two epochs of one sampler gave the same order")
    assert_true("RandomSampler", a != list(range(n)), "a random permutation of 100 came out sorted")
    few = list(RandomSampler(range(n), num_samples=30, generator=_gen(1)))
    assert_equal("RandomSampler", len(few), 30, args="num_samples=30")
    assert_equal("RandomSampler", len(set(few)), 30, args="num_samples=30 without replacement: distinct")


def test_random_sampler_with_replacement():
    """replacement=True draws num_samples indices uniformly (each of 10 values ~ 1/10 of 20k draws,
    6-sigma bound) with repeats; num_samples must be a positive integer."""
    draws = np.array(list(RandomSampler(range(10), replacement=True, num_samples=20_000, generator=_gen(5))))
    assert_equal("RandomSampler", len(draws), 20_000)
    assert_true("RandomSampler", draws.min() >= 0 and draws.max() < 10, "index out of range")
    freq = np.bincount(draws, minlength=10) / 20_000
    sigma = math.sqrt(0.1 * 0.9 / 20_000)
    assert_close("RandomSampler", freq, np.full(10, 0.1), dtype=torch.float64, rtol=0, atol=6 * sigma, args="frequencies")
    assert_raises("RandomSampler", ValueError, RandomSampler, range(10), num_samples=0, args="num_samples=0")


def test_subset_random_sampler():
    """SubsetRandomSampler yields a permutation of exactly the given indices."""
    idx = [3, 8, 1, 42]
    out = list(SubsetRandomSampler(idx, generator=_gen(0)))
    assert_equal("SubsetRandomSampler", sorted(out), sorted(idx))
    assert_equal("SubsetRandomSampler.__len__", len(SubsetRandomSampler(idx)), 4)


def test_weighted_random_sampler_frequencies():
    """WeightedRandomSampler draws index i with probability w_i / sum(w) (with replacement); a zero
    weight is never drawn. 40k draws: a sampler ignoring weights misses by > 50 sigma."""
    w = torch.tensor([1.0, 0.0, 3.0, 6.0], dtype=torch.float64)
    n = 40_000
    draws = np.array(list(WeightedRandomSampler(w, n, replacement=True, generator=_gen(7))))
    p = (w / w.sum()).numpy()
    freq = np.bincount(draws, minlength=4) / n
    assert_equal("WeightedRandomSampler", int((draws == 1).sum()), 0, args="zero weight")
    sigma = np.sqrt(p * (1 - p) / n)
    assert_close("WeightedRandomSampler", freq, p, dtype=torch.float64, rtol=0, atol=float(6 * sigma.max()), args="frequencies")


def test_weighted_random_sampler_without_replacement():
    """replacement=False never repeats an index; asking for more samples than non-zero weights is an error."""
    w = [0.1, 0.2, 0.3, 0.4, 0.5]
    out = list(WeightedRandomSampler(w, 5, replacement=False, generator=_gen(0)))
    assert_equal("WeightedRandomSampler", sorted(out), [0, 1, 2, 3, 4], args="replacement=False")
    assert_raises("WeightedRandomSampler", RuntimeError, lambda: list(WeightedRandomSampler(w, 6, replacement=False)),
                  args="6 of 5 without replacement")
    assert_raises("WeightedRandomSampler", (ValueError, TypeError), WeightedRandomSampler, w, -1, args="num_samples=-1")


@pytest.mark.parametrize("n,bs,drop_last", [(10, 3, False), (10, 3, True), (9, 3, False), (2, 5, False), (2, 5, True), (0, 4, False)])
def test_batch_sampler(n, bs, drop_last):
    """BatchSampler groups the inner sampler's indices into lists of batch_size, in order; the last short
    batch is kept unless drop_last; len is ceil or floor of n / batch_size."""
    batches = list(BatchSampler(SequentialSampler(range(n)), bs, drop_last))
    expected = [list(range(i, min(i + bs, n))) for i in range(0, n, bs)]
    if drop_last:
        expected = [b for b in expected if len(b) == bs]
    assert_equal("BatchSampler", batches, expected, args=f"n={n}, batch_size={bs}, drop_last={drop_last}")
    assert_equal("BatchSampler.__len__", len(BatchSampler(SequentialSampler(range(n)), bs, drop_last)), len(expected))


def test_batch_sampler_errors():
    """batch_size must be a positive int and drop_last a bool."""
    assert_raises("BatchSampler", ValueError, BatchSampler, range(3), 0, False, args="batch_size=0")
    assert_raises("BatchSampler", ValueError, BatchSampler, range(3), 2, "no", args="drop_last='no'")


@pytest.mark.parametrize("n,replicas,drop_last", [(10, 2, False), (11, 3, False), (11, 3, True), (5, 4, False), (12, 4, True)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_distributed_sampler_partition(n, replicas, drop_last, shuffle):
    """DistributedSampler: each rank gets ceil(n/R) indices (floor with drop_last); ranks are disjoint
    except for the padding that makes the total divisible, which repeats real indices; together they
    cover the dataset (all but the dropped tail with drop_last)."""
    ds = Squares(n)
    parts = [list(DistributedSampler(ds, num_replicas=replicas, rank=r, shuffle=shuffle, seed=3, drop_last=drop_last))
             for r in range(replicas)]
    per_rank = n // replicas if drop_last else math.ceil(n / replicas)
    args = f"n={n}, num_replicas={replicas}, drop_last={drop_last}, shuffle={shuffle}"
    assert_equal("DistributedSampler", [len(p) for p in parts], [per_rank] * replicas, args=args)
    assert_equal("DistributedSampler.__len__", len(DistributedSampler(ds, num_replicas=replicas, rank=0, drop_last=drop_last)), per_rank)
    flat = [i for p in parts for i in p]
    assert_true("DistributedSampler", all(0 <= i < n for i in flat), "index out of range", args=args)
    if drop_last:
        assert_equal("DistributedSampler", len(set(flat)), len(flat), args=args + " (disjoint)")
    else:
        assert_equal("DistributedSampler", sorted(set(flat)), list(range(n)), args=args + " (cover)")
        assert_equal("DistributedSampler", len(flat) - len(set(flat)), per_rank * replicas - n, args=args + " (padding only)")
    if not shuffle and not drop_last:
        assert_equal("DistributedSampler", parts[0][:2], [0, replicas], args=args + " (rank r takes r, r+R, ...)")


def test_distributed_sampler_epochs_and_seed():
    """set_epoch changes the shuffle; the same (seed, epoch) gives the same order on every instance;
    another seed gives another order; ranks stay disjoint in every epoch."""
    ds = Squares(64)

    def order(rank, epoch, seed=0):
        s = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=seed)
        s.set_epoch(epoch)
        return list(s)

    assert_equal("DistributedSampler.set_epoch", order(0, 1), order(0, 1), args="same epoch")
    assert_true("DistributedSampler.set_epoch", order(0, 1) != order(0, 2), "set_epoch did not change the shuffle")
    assert_true("DistributedSampler", order(0, 1, seed=0) != order(0, 1, seed=5), "seed ignored")
    for epoch in (0, 1, 2):
        assert_equal("DistributedSampler", sorted(order(0, epoch) + order(1, epoch)), list(range(64)), args=f"epoch {epoch}")


def test_distributed_sampler_errors():
    """A rank outside [0, num_replicas) is a ValueError."""
    assert_raises("DistributedSampler", ValueError, DistributedSampler, Squares(4), num_replicas=2, rank=2, args="rank=2 of 2")
    assert_raises("DistributedSampler", ValueError, DistributedSampler, Squares(4), num_replicas=2, rank=-1, args="rank=-1")
