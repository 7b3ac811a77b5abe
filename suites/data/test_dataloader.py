"""§ 5 Data: DataLoader(batch_size, shuffle, sampler, batch_sampler, num_workers, collate_fn, pin_memory,
drop_last, timeout, worker_init_fn, generator, prefetch_factor, persistent_workers) and get_worker_info.

Worker processes are slow to start: the default tier keeps worker tests few and small (fork start
method where available); the spawn start method runs at the full tier.
"""
from __future__ import annotations

import math
import multiprocessing as mp

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset, get_worker_info

from harness.checks import assert_equal, assert_raises, assert_true
from suites.data._datasets import Failing, InitProbe, Squares, Stream, WorkerProbe, record_worker_id

FORK = "fork" in mp.get_all_start_methods()
CTX = "fork" if FORK else "spawn"


def _indices(loader):
    return [b[0].tolist() for b in loader]


@pytest.mark.smoke
@pytest.mark.parametrize("n,bs,drop_last", [(10, 3, False), (10, 3, True), (10, 5, False), (3, 8, False)])
def test_batching(n, bs, drop_last):
    """Batches of batch_size in dataset order (shuffle=False), last one short unless drop_last; len(loader)
    is ceil or floor(n / batch_size); each batch is collated (stacked int64 tensors)."""
    loader = DataLoader(Squares(n), batch_size=bs, drop_last=drop_last)
    expected = [list(range(i, min(i + bs, n))) for i in range(0, n, bs)]
    if drop_last:
        expected = [b for b in expected if len(b) == bs]
    got = list(loader)
    assert_equal("DataLoader", [b[0].tolist() for b in got], expected, args=f"batch_size={bs}, drop_last={drop_last}")
    assert_equal("DataLoader", [b[1].tolist() for b in got], [[i * i for i in b] for b in expected], args="second field")
    assert_equal("DataLoader.__len__", len(loader), (n // bs) if drop_last else math.ceil(n / bs))
    assert_equal("DataLoader", got[0][0].dtype, torch.int64)


def test_default_batch_size_is_one():
    """The default batch_size is 1: each batch has a leading dimension of 1."""
    first = next(iter(DataLoader(TensorDataset(torch.arange(6.0).reshape(3, 2)))))
    assert_equal("DataLoader", tuple(first[0].shape), (1, 2), args="default batch_size")


def test_shuffle_and_generator():
    """shuffle=True: each epoch is a permutation; the same generator seed reproduces the order; epochs
    of one loader differ."""
    ds = Squares(50)
    order = lambda seed: sum(_indices(DataLoader(ds, batch_size=7, shuffle=True, generator=torch.Generator().manual_seed(seed))), [])  # noqa: E731
    a = order(11)
    assert_equal("DataLoader", sorted(a), list(range(50)), args="shuffle=True permutation")
    assert_true("DataLoader", a != list(range(50)), "shuffle=True gave the sequential order")
    assert_equal("DataLoader", a, order(11), args="same generator seed")
    loader = DataLoader(ds, batch_size=7, shuffle=True, generator=torch.Generator().manual_seed(11))
    assert_true("DataLoader", sum(_indices(loader), []) != sum(_indices(loader), []), "two epochs had the same order")


def test_sampler_and_batch_sampler():
    """A custom sampler decides the order; a batch_sampler decides whole batches; batch_size=None turns
    off batching (items are converted, not collated)."""
    ds = Squares(6)
    got = _indices(DataLoader(ds, batch_size=2, sampler=[5, 4, 3, 2, 1, 0]))
    assert_equal("DataLoader", got, [[5, 4], [3, 2], [1, 0]], args="sampler=reversed")
    bs = [[0, 5], [1], [2, 3, 4]]
    assert_equal("DataLoader", _indices(DataLoader(ds, batch_sampler=bs)), bs, args="batch_sampler")
    plain = list(DataLoader(TensorDataset(torch.arange(3)), batch_size=None))
    assert_equal("DataLoader", [tuple(x[0].shape) for x in plain], [(), (), ()], args="batch_size=None")
    npds = [np.array([i, i]) for i in range(3)]
    conv = list(DataLoader(npds, batch_size=None))
    assert_true("DataLoader", all(isinstance(x, torch.Tensor) for x in conv), "batch_size=None must default_convert numpy")


def test_collate_fn():
    """collate_fn receives the list of samples of each batch and its return value is the batch."""
    seen = []

    def collate(samples):
        seen.append(len(samples))
        return [int(s[0]) for s in samples]

    out = list(DataLoader(Squares(5), batch_size=2, collate_fn=collate))
    assert_equal("DataLoader(collate_fn)", out, [[0, 1], [2, 3], [4]])
    assert_equal("DataLoader(collate_fn)", seen, [2, 2, 1])


def test_argument_errors():
    """Documented argument conflicts raise ValueError."""
    ds = Squares(4)
    cases = [
        (dict(sampler=[0, 1], shuffle=True), "sampler with shuffle"),
        (dict(batch_sampler=[[0]], batch_size=2), "batch_sampler with batch_size"),
        (dict(batch_sampler=[[0]], shuffle=True), "batch_sampler with shuffle"),
        (dict(batch_sampler=[[0]], drop_last=True), "batch_sampler with drop_last"),
        (dict(batch_size=None, drop_last=True), "batch_size=None with drop_last"),
        (dict(num_workers=-1), "num_workers=-1"),
        (dict(timeout=-1), "timeout=-1"),
        (dict(persistent_workers=True), "persistent_workers without workers"),
        (dict(prefetch_factor=2), "prefetch_factor without workers"),
    ]
    for kwargs, what in cases:
        assert_raises("DataLoader", ValueError, DataLoader, ds, **kwargs, args=what)
    stream = Stream(0, 4, False)
    assert_raises("DataLoader", ValueError, DataLoader, stream, shuffle=True, args="IterableDataset with shuffle")
    assert_raises("DataLoader", ValueError, DataLoader, stream, sampler=[0], args="IterableDataset with sampler")


def test_iterable_dataset_batching():
    """An IterableDataset is batched in stream order; drop_last applies; len() is not defined for it."""
    got = [b.tolist() for b in DataLoader(Stream(0, 7, False), batch_size=3)]
    assert_equal("DataLoader(IterableDataset)", got, [[0, 1, 2], [3, 4, 5], [6]])
    got = [b.tolist() for b in DataLoader(Stream(0, 7, False), batch_size=3, drop_last=True)]
    assert_equal("DataLoader(IterableDataset)", got, [[0, 1, 2], [3, 4, 5]], args="drop_last")


def test_get_worker_info_in_main_process():
    """get_worker_info() is None outside worker processes (num_workers=0 runs in the main process)."""
    assert_true("get_worker_info", get_worker_info() is None, "not None in the main process")
    item = next(iter(DataLoader(WorkerProbe(2), batch_size=None)))
    assert_equal("get_worker_info", item["worker"], -1, args="num_workers=0")


@pytest.fixture(scope="module")
def worker_batches():
    """One 2-worker pass over WorkerProbe, shared by the worker tests (workers are slow to start)."""
    loader = DataLoader(WorkerProbe(12), batch_size=2, num_workers=2, multiprocessing_context=CTX,
                        generator=torch.Generator().manual_seed(123))
    return list(loader)


def test_workers_keep_order(worker_batches):
    """num_workers=2 yields the same batches, in the same order, as num_workers=0."""
    got = [b["index"].tolist() for b in worker_batches]
    assert_equal("DataLoader(num_workers=2)", got, [[i, i + 1] for i in range(0, 12, 2)])


def test_worker_info_in_workers(worker_batches):
    """In a worker, get_worker_info() gives id in [0, num_workers), num_workers, a per-worker seed
    (base_seed + id) and a copy of the dataset; batches are dealt to workers round-robin."""
    workers = [b["worker"].tolist() for b in worker_batches]
    assert_equal("get_worker_info().id", [w[0] for w in workers], [0, 1, 0, 1, 0, 1], args="round-robin")
    assert_equal("get_worker_info().num_workers", sorted({int(n) for b in worker_batches for n in b["num_workers"]}), [2])
    seeds = {int(b["worker"][0]): int(b["seed"][0]) for b in worker_batches}
    assert_equal("get_worker_info().seed", seeds[1] - seeds[0], 1, args="seed = base_seed + worker_id")
    assert_true("get_worker_info().dataset", all(bool(x) for b in worker_batches for x in b["dataset_is_self"]),
                "get_worker_info().dataset is not the dataset copy serving items in that worker")
    pids = {int(p) for b in worker_batches for p in b["pid"]}
    import os

    assert_equal("DataLoader(num_workers=2)", len(pids), 2, args="distinct worker processes")
    assert_true("DataLoader(num_workers=2)", os.getpid() not in pids, "items were produced in the main process")


def test_worker_seeding_reproducible(worker_batches):
    """Worker RNGs are seeded from the loader's generator: the same generator seed reproduces every
    worker's random draws; different workers draw differently."""
    again = list(DataLoader(WorkerProbe(12), batch_size=2, num_workers=2, multiprocessing_context=CTX,
                            generator=torch.Generator().manual_seed(123)))
    first = np.concatenate([b["draw"].numpy() for b in worker_batches])
    assert_equal("DataLoader(generator)", np.concatenate([b["draw"].numpy() for b in again]), first, args="same seed")
    assert_true("DataLoader(num_workers=2)", first[0] != first[2], "worker 0 and 1 drew the same random number")


def test_worker_init_fn_and_errors():
    """worker_init_fn runs in each worker with its worker id; an exception in a worker is re-raised in the
    main process with the original type and a message naming the worker."""
    out = torch.cat(list(DataLoader(InitProbe(), batch_size=2, num_workers=2, worker_init_fn=record_worker_id,
                                    multiprocessing_context=CTX)))
    assert_equal("DataLoader(worker_init_fn)", out[:, 0], out[:, 1], args="init fn argument == worker id")
    err = assert_raises("DataLoader(num_workers=1)", ValueError,
                        lambda: list(DataLoader(Failing(), batch_size=1, num_workers=1, multiprocessing_context=CTX)))
    assert_true("DataLoader(num_workers=1)", "worker process 0" in str(err) and "broken on purpose" in str(err),
                f"worker error message lost its origin: {str(err)[:200]!r}")


def test_iterable_dataset_with_workers():
    """Each worker iterates its own copy of an IterableDataset: without sharding every item comes once per
    worker; sharding by get_worker_info() yields each item exactly once."""
    dup = sorted(torch.cat(list(DataLoader(Stream(0, 6, False), batch_size=2, num_workers=2, multiprocessing_context=CTX))).tolist())
    assert_equal("DataLoader(IterableDataset, num_workers=2)", dup, sorted(list(range(6)) * 2), args="unsharded")
    once = sorted(torch.cat(list(DataLoader(Stream(0, 7, True), batch_size=2, num_workers=2, multiprocessing_context=CTX))).tolist())
    assert_equal("DataLoader(IterableDataset, num_workers=2)", once, list(range(7)), args="sharded")


def test_persistent_workers():
    """persistent_workers=True keeps the same worker processes across epochs; without it, each epoch
    starts new ones. prefetch_factor is accepted with workers."""
    def pids(persistent):
        loader = DataLoader(WorkerProbe(4), batch_size=2, num_workers=1, persistent_workers=persistent,
                            prefetch_factor=2, multiprocessing_context=CTX)
        return [{int(p) for b in loader for p in b["pid"]} for _ in range(2)]

    e1, e2 = pids(True)
    assert_equal("DataLoader(persistent_workers=True)", e1, e2, args="same pids across epochs")
    f1, f2 = pids(False)
    assert_true("DataLoader(persistent_workers=False)", f1 != f2, "workers survived an epoch without persistent_workers")


@pytest.mark.slow
def test_spawn_start_method():
    """The 'spawn' start method gives the same batches as the main process."""
    got = [b[0].tolist() for b in DataLoader(Squares(6), batch_size=2, num_workers=2, multiprocessing_context="spawn")]
    assert_equal("DataLoader(multiprocessing_context='spawn')", got, [[0, 1], [2, 3], [4, 5]])


def test_pin_memory(device):
    """pin_memory=True returns batches in page-locked memory (CUDA only)."""
    if device != "cuda":
        pytest.skip("pin_memory needs a CUDA device (pinned host memory is only meaningful for CUDA copies)")
    b = next(iter(DataLoader(TensorDataset(torch.arange(8.0)), batch_size=4, pin_memory=True)))
    assert_true("DataLoader(pin_memory=True)", b[0].is_pinned(), "batch is not pinned")
    b2 = next(iter(DataLoader(TensorDataset(torch.arange(8.0)), batch_size=4)))
    assert_true("DataLoader(pin_memory=False)", not b2[0].is_pinned(), "batch pinned without pin_memory")
