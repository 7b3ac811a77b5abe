"""Small datasets for the § 5 data-loading tests and benchmarks (module-level so that worker
processes started with 'spawn' can unpickle them)."""
from __future__ import annotations

import os

import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info


class Squares(Dataset):
    """Item i is (i, i*i) as int64 tensors: every item says which index produced it."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return torch.tensor(i), torch.tensor(i * i)


class WorkerProbe(Dataset):
    """Item i reports which process and worker produced it, and a draw from torch's RNG there."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        info = get_worker_info()
        wid = -1 if info is None else info.id
        nw = 0 if info is None else info.num_workers
        seed = -1 if info is None else info.seed
        same_object = info is not None and info.dataset is self
        return {"index": i, "pid": os.getpid(), "worker": wid, "num_workers": nw,
                "seed": seed % (2 ** 62), "draw": torch.rand(()).item(), "dataset_is_self": same_object}


class Failing(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 2:
            raise ValueError("item 2 is broken on purpose")
        return i


class Stream(IterableDataset):
    """Yields start..end-1; shards itself across workers when ``shard`` is set (the documented pattern)."""

    def __init__(self, start: int, end: int, shard: bool):
        self.start, self.end, self.shard = start, end, shard

    def __iter__(self):
        info = get_worker_info()
        if self.shard and info is not None:
            return iter(range(self.start + info.id, self.end, info.num_workers))
        return iter(range(self.start, self.end))


class Images(Dataset):
    """An in-memory dataset of image-like float tensors with int labels (the throughput benchmark's)."""

    def __init__(self, n: int = 2048, shape=(3, 32, 32), seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.rand((n, *shape), generator=g)
        self.y = torch.randint(0, 10, (n,), generator=g)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def record_worker_id(worker_id: int) -> None:
    """A worker_init_fn: stores its argument where the dataset copy in that worker can report it."""
    info = get_worker_info()
    info.dataset.init_arg = worker_id


class InitProbe(Dataset):
    init_arg = None

    def __len__(self):
        return 8

    def __getitem__(self, i):
        info = get_worker_info()
        return torch.tensor([info.id, -1 if self.init_arg is None else self.init_arg])
