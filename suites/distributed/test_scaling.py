"""§ 8 Devices and distributed: the DDP step and the all_reduce that the scaling benchmarks time
(``bench_distributed.py``) compute the right result.

The weak-scaling and bus-bandwidth figures are benchmarks (``bench_distributed.BENCHMARKS``, run by
``torchconform bench`` / pytest-benchmark and compared across builds there; ``measure_scaling`` and
``measure_allreduce_busbw`` time inside the ranks); no test times anything. These tests run the same
rank bodies in the same persistent worlds (gloo, 1 thread per rank) and check what they compute against
derived references, so a figure cannot come from a step that skipped its synchronisation. Slow (they
start worlds of size 1 and 2): --tier full.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal

STEPS = 3


def _reference(batches: list, steps: int) -> dict:
    """Single-process SGD in float64 on the concatenation of ``batches`` with the mean cross-entropy:
    with equal per-rank batch sizes, the gradient of the mean over the concatenated batch is the mean of
    the per-rank gradients, which is what DDP's all-reduce averaging must produce."""
    from suites.distributed import bench_distributed as B

    model = B.initial_model().double()
    x = torch.cat([b[0] for b in batches]).double()
    y = torch.cat([b[1] for b in batches])
    for _ in range(steps):
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= B.LR * p.grad
    return {k: v.numpy() for k, v in model.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize("world_size", [1, 2])
def test_benchmarked_ddp_step_matches_single_process(world_size):
    """The benchmarked DDP SGD step (the 256-512-512-10 MLP, per-rank batch 64, each rank its own data),
    run 3 times in a world of 1 and of 2 gloo ranks: every rank ends with bit-identical parameters (the
    replicas stay in sync), equal to single-process float64 SGD on the concatenated batch within the
    ``training`` tolerance. Catches a DDP whose all-reduce is skipped or sums instead of averaging, a bucket
    left out of the reduction, and ranks that drift apart, in exactly the step whose speed is reported."""
    from suites.distributed import bench_distributed as B

    w = B._world(world_size)
    w.run(B._rank_prepare_ddp)
    w.run(B._rank_ddp_steps, STEPS)
    per_rank = w.run(B._rank_params)
    ref = _reference([B.rank_batch(r) for r in range(world_size)], STEPS)
    for r, params in enumerate(per_rank):
        assert_equal("DistributedDataParallel", sorted(params), sorted(ref), args=f"parameter names, rank {r}")
        for name, value in params.items():
            if r > 0:
                assert_equal("DistributedDataParallel", value, per_rank[0][name], args=f"{name}: rank {r} vs rank 0")
            assert_close("DistributedDataParallel", value, ref[name], op="training",
                         args=f"{name} after {STEPS} steps, world {world_size}, rank {r}")


@pytest.mark.slow
def test_benchmarked_all_reduce_payloads():
    """all_reduce(SUM) in the benchmark's world of 2 gloo ranks, at every benchmarked payload (4 KiB, 1 MiB,
    8 MiB): rank-dependent integer-valued float32 data, whose sum is exact, must come back exactly on every
    rank. Catches a chunked all-reduce that drops, repeats or misplaces a chunk of a large message (random
    data, not ones: an offset error shows) and a rank that keeps its own input."""
    from suites.distributed import bench_distributed as B

    w = B._world(2)
    sizes = sorted({n for case in B.BENCHMARKS if case.name == "all_reduce" for n in case.params["nbytes"]})
    for nbytes in sizes:
        expected = sum(B.rank_payload(r, nbytes).astype(np.float64) for r in range(2))
        for r, got in enumerate(w.run(B._rank_allreduce_values, nbytes)):
            assert_equal("torch.distributed.all_reduce", got, expected, args=f"{nbytes} B, rank {r}")
