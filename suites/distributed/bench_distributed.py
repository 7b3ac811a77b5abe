"""§ 8 Devices and distributed: benchmarks of DDP weak scaling and all_reduce bus bandwidth.

The ranks live in persistent :class:`suites.distributed._launch.World` process groups (one per
world size, started on first use by a Benchmark's setup, closed at exit), so the timed callable
is one round trip to already-running ranks: the parent sends "do one step", every rank does it
and answers. That round trip (~0.1-1 ms of queue traffic) is included in the pytest-benchmark
figures; :func:`measure_scaling` and :func:`measure_allreduce_busbw` time inside the ranks
instead (max over ranks of the per-rank wall time), for a figure without the queue round trip.
``test_scaling.py`` checks that the benchmarked step and all_reduce compute the right result (no
timing in tests).

Figures: DDP weak scaling keeps the per-rank batch fixed: samples/s per rank, and efficiency =
rate_N / (N x rate_1) computed on per-rank rates, i.e. time_1 / time_N. all_reduce bus bandwidth
follows nccl-tests: busbw = 2 (n-1)/n x bytes / time.
"""
from __future__ import annotations

import atexit
import time

from harness.bench import Benchmark

PER_RANK_BATCH = 64
D_IN, D_HID, D_OUT = 256, 512, 10
LR = 0.01
_WORLDS: dict = {}
_RANK_STATE: dict = {}  # lives in each rank process


def _world(world_size: int):
    from suites.distributed._launch import World

    w = _WORLDS.get(world_size)
    if w is None or not w.alive:
        w = _WORLDS[world_size] = World(world_size=world_size, backend="gloo", threads=1)
    return w


@atexit.register
def _close_worlds():
    for w in _WORLDS.values():
        w.close()
    _WORLDS.clear()


# -- per-rank bodies ----------------------------------------------------------------------------
def _rank_prepare_ddp(ctx):
    import torch
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.manual_seed(0)
    model = _mlp()
    ddp = DDP(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=LR)
    x, y = rank_batch(ctx.rank)
    _RANK_STATE["ddp"] = (ddp, opt, x, y)
    return True


def _mlp():
    from torch import nn

    return nn.Sequential(nn.Linear(D_IN, D_HID), nn.ReLU(), nn.Linear(D_HID, D_HID), nn.ReLU(), nn.Linear(D_HID, D_OUT))


def rank_batch(rank: int):
    """Rank ``rank``'s fixed batch (its own data, so that DDP's gradient averaging has work to do)."""
    import torch

    g = torch.Generator().manual_seed(1000 + rank)
    return torch.randn(PER_RANK_BATCH, D_IN, generator=g), torch.randint(0, D_OUT, (PER_RANK_BATCH,), generator=g)


def initial_model():
    """The module every rank wraps (built after torch.manual_seed(0)), without touching the caller's RNG."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return _mlp()


def _rank_params(ctx):
    """This rank's DDP module parameters, as NumPy arrays by name."""
    ddp = _RANK_STATE["ddp"][0]
    return {k: v.detach().numpy().copy() for k, v in ddp.module.state_dict().items()}


def _rank_ddp_steps(ctx, steps: int = 1):
    import torch

    ddp, opt, x, y = _RANK_STATE["ddp"]
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(ddp(x), y).backward()
        opt.step()
    return time.perf_counter() - t0


def _rank_prepare_allreduce(ctx, nbytes: int):
    import torch

    _RANK_STATE["buf"] = torch.ones(max(1, nbytes // 4), dtype=torch.float32)
    return True


def rank_payload(rank: int, nbytes: int):
    """Rank-dependent integers (< 1021) as float32: their sum over ranks is exact in float32."""
    import numpy as np

    i = np.arange(max(1, nbytes // 4), dtype=np.int64)
    return ((i * 7 + 13 * (rank + 1)) % 1021).astype(np.float32)


def _rank_allreduce_values(ctx, nbytes: int):
    """all_reduce(SUM) of this rank's :func:`rank_payload`; returns the result."""
    import torch
    import torch.distributed as dist

    buf = torch.from_numpy(rank_payload(ctx.rank, nbytes))
    dist.all_reduce(buf)
    return buf.numpy().copy()


def _rank_allreduce(ctx, iters: int = 1):
    import torch.distributed as dist

    buf = _RANK_STATE["buf"]
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(iters):
        dist.all_reduce(buf)
    return time.perf_counter() - t0


# -- Benchmark definitions ------------------------------------------------------------------------
def _setup_ddp_step(device, world_size):
    if device != "cpu":
        raise NotImplementedError("the DDP benchmark runs gloo ranks on the CPU")
    w = _world(world_size)
    w.run(_rank_prepare_ddp)
    w.run(_rank_ddp_steps, 2)  # warm-up
    return lambda: w.run(_rank_ddp_steps, 1)


def _setup_allreduce(device, world_size, nbytes):
    if device != "cpu":
        raise NotImplementedError("the all_reduce benchmark runs gloo ranks on the CPU")
    w = _world(world_size)
    w.run(_rank_prepare_allreduce, nbytes)
    return lambda: w.run(_rank_allreduce, 1)


def _busbw_bytes(world_size, nbytes):
    return 2 * (world_size - 1) / world_size * nbytes


BENCHMARKS = [
    Benchmark(name="ddp_step", section="distributed", group="distributed.ddp_weak_scaling",
              setup=_setup_ddp_step, params={"world_size": [1, 2]},
              items=lambda world_size: world_size * PER_RANK_BATCH, throughput_unit="samples/s",
              flops=lambda world_size: world_size * PER_RANK_BATCH * 6 * (D_IN * D_HID + D_HID * D_HID + D_HID * D_OUT),
              devices=("cpu",),
              description="one DDP SGD step of a 3-layer MLP on every rank, per-rank batch 64 (weak scaling)"),
    Benchmark(name="all_reduce", section="distributed", group="distributed.all_reduce",
              setup=_setup_allreduce, params={"world_size": [2], "nbytes": [4096, 1 << 20, 8 << 20]},
              bytes=_busbw_bytes, devices=("cpu",),
              description="gloo all_reduce(SUM) of a float32 buffer; bytes = bus bytes 2(n-1)/n x payload"),
]


# -- standalone measurements (timed inside the ranks) ----------------------------------------------
def measure_scaling(world_sizes=(1, 2), steps: int = 20) -> dict:
    """DDP weak scaling: per world size, per-rank samples/s and efficiency vs world size 1."""
    out = {}
    for n in world_sizes:
        w = _world(n)
        w.run(_rank_prepare_ddp)
        w.run(_rank_ddp_steps, 3)
        t = max(w.run(_rank_ddp_steps, steps))
        out[n] = {"seconds_per_step": t / steps, "samples_per_s_per_rank": PER_RANK_BATCH * steps / t,
                  "samples_per_s_total": n * PER_RANK_BATCH * steps / t}
    base = out[min(world_sizes)]["samples_per_s_per_rank"]
    for n, v in out.items():
        v["efficiency"] = v["samples_per_s_per_rank"] / base  # = rate_N / (N * rate_1) on totals
    return out


def measure_allreduce_busbw(world_size: int = 2, sizes=(4096, 1 << 16, 1 << 20, 8 << 20), iters: int = 10) -> dict:
    """all_reduce bus bandwidth (bytes/s) per payload size: busbw = 2(n-1)/n x bytes / time."""
    w = _world(world_size)
    out = {}
    for nbytes in sizes:
        w.run(_rank_prepare_allreduce, nbytes)
        w.run(_rank_allreduce, 2)
        t = max(w.run(_rank_allreduce, iters)) / iters
        out[nbytes] = {"seconds": t, "busbw_bytes_per_s": _busbw_bytes(world_size, nbytes) / t,
                       "algbw_bytes_per_s": nbytes / t}
    return out
