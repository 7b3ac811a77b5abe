"""§ 8 Devices and distributed: ``DistributedSampler`` partitioning (no process group needed when
``num_replicas`` and ``rank`` are given), against the documented rules computed by hand."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from harness.checks import assert_equal, assert_raises, assert_true

DistributedSampler = pytest.importorskip("torch.utils.data.distributed").DistributedSampler


def _all(n, w, **kw):
    return [list(DistributedSampler(range(n), num_replicas=w, rank=r, **kw)) for r in range(w)]


@pytest.mark.smoke
def test_sampler_no_shuffle_partition():
    """shuffle=False: rank r gets indices r, r+W, r+2W, ... of 0..n-1 padded by wrapping around
    to ceil(n/W) each (docs: 'the sampler will add extra indices to make the data evenly
    divisible'); catches a wrong stride, overlap between ranks, or missing padding."""
    for n, w in [(10, 2), (11, 2), (7, 3), (2, 4), (1, 3)]:
        per = -(-n // w)
        padded = (list(range(n)) * (per * w // n + 1))[: per * w]
        parts = _all(n, w, shuffle=False)
        for r in range(w):
            assert_equal("DistributedSampler", parts[r], padded[r::w], args=f"n={n}, num_replicas={w}, rank={r}")
            assert_equal("DistributedSampler.__len__", len(DistributedSampler(range(n), num_replicas=w, rank=r)), per,
                         args=f"n={n}, num_replicas={w}")


@given(n=st.integers(1, 60), w=st.integers(1, 5), seed=st.integers(0, 2 ** 31 - 1), epoch=st.integers(0, 5))
def test_sampler_shuffle_disjoint_cover(n, w, seed, epoch):
    """shuffle=True: the ranks' index lists together cover every index, each list has
    ceil(n/W) entries, and (before padding) they are disjoint: exactly per*W - n repeats overall."""
    parts = []
    for r in range(w):
        s = DistributedSampler(range(n), num_replicas=w, rank=r, shuffle=True, seed=seed)
        s.set_epoch(epoch)
        parts.append(list(s))
    per = -(-n // w)
    flat = [i for p in parts for i in p]
    assert_equal("DistributedSampler", sorted(set(flat)), list(range(n)), args=f"n={n}, W={w}: union")
    assert_equal("DistributedSampler", [len(p) for p in parts], [per] * w, args=f"n={n}, W={w}: sizes")
    assert_equal("DistributedSampler", len(flat) - len(set(flat)), per * w - n, args=f"n={n}, W={w}: repeats")


def test_sampler_drop_last():
    """drop_last=True drops the tail instead of padding: floor(n/W) per rank, disjoint, no repeats."""
    for n, w in [(11, 2), (10, 3), (5, 5), (3, 4)]:
        per = n // w
        for shuffle in (False, True):
            parts = _all(n, w, shuffle=shuffle, drop_last=True)
            flat = [i for p in parts for i in p]
            assert_equal("DistributedSampler", [len(p) for p in parts], [per] * w, args=f"n={n}, W={w}, drop_last")
            assert_equal("DistributedSampler", len(set(flat)), len(flat), args=f"n={n}, W={w}, drop_last: no repeats")
            if not shuffle:
                assert_equal("DistributedSampler", flat and sorted(flat), list(range(per * w)) or [],
                             args=f"n={n}, W={w}, drop_last, shuffle=False keeps the head")


def test_sampler_set_epoch_and_seed():
    """Same seed and epoch -> same order on every call (and on every rank's sampler object);
    set_epoch changes the permutation; a different seed changes it; shuffle=True permutes at all."""
    n, w = 64, 2

    def order(seed, epoch, r=0):
        s = DistributedSampler(range(n), num_replicas=w, rank=r, shuffle=True, seed=seed)
        s.set_epoch(epoch)
        return list(s)

    assert_equal("DistributedSampler", order(3, 0), order(3, 0), args="same seed, same epoch")
    assert_true("DistributedSampler.set_epoch", order(3, 0) != order(3, 1), "set_epoch(1) did not change the shuffle")
    assert_true("DistributedSampler", order(3, 0) != order(4, 0), "seed= had no effect on the shuffle")
    assert_true("DistributedSampler", order(3, 0) != list(range(0, n, w)), "shuffle=True did not permute")
    s = DistributedSampler(range(n), num_replicas=w, rank=0, shuffle=True, seed=3)
    assert_equal("DistributedSampler.__iter__", list(s), list(s), args="iterating twice in one epoch")


def test_sampler_invalid_rank():
    """rank outside [0, num_replicas) raises ValueError."""
    assert_raises("DistributedSampler", ValueError, DistributedSampler, range(4), num_replicas=2, rank=2, args="rank=2")
    assert_raises("DistributedSampler", ValueError, DistributedSampler, range(4), num_replicas=2, rank=-1, args="rank=-1")
