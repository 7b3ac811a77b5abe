"""§ 8 Devices and distributed: DDP weak-scaling and all_reduce bus-bandwidth figures, timed
inside the ranks (see bench_distributed.py). Slow (starts worlds of size 1 and 2): runs at
--tier full; prints the figures and asserts only sanity, since speed depends on the machine."""
from __future__ import annotations

import math

import pytest

from harness.checks import assert_true


@pytest.mark.slow
def test_ddp_weak_scaling_figures():
    """measure_scaling(): positive finite per-rank rates for world 1 and 2; efficiency in (0, 1.5]
    (above 1.5 would mean the world-1 timing is broken)."""
    from suites.distributed import bench_distributed as B

    figs = B.measure_scaling()
    for n, v in figs.items():
        print(f"DDP weak scaling world={n}: {v['samples_per_s_per_rank']:.0f} samples/s/rank, "
              f"{v['seconds_per_step'] * 1e3:.2f} ms/step, efficiency {v['efficiency']:.2f}")
        assert_true("DistributedDataParallel", math.isfinite(v["samples_per_s_per_rank"]) and v["samples_per_s_per_rank"] > 0,
                    f"non-positive rate at world {n}")
        assert_true("DistributedDataParallel", 0 < v["efficiency"] <= 1.5, f"implausible efficiency {v['efficiency']}")


@pytest.mark.slow
def test_all_reduce_busbw_figures():
    """measure_allreduce_busbw(): positive bus bandwidth per payload size."""
    from suites.distributed import bench_distributed as B

    figs = B.measure_allreduce_busbw()
    for nbytes, v in figs.items():
        print(f"all_reduce gloo world=2 {nbytes} B: {v['seconds'] * 1e6:.0f} us, busbw {v['busbw_bytes_per_s'] / 1e9:.3f} GB/s")
        assert_true("torch.distributed.all_reduce", v["busbw_bytes_per_s"] > 0, f"non-positive busbw at {nbytes} B")
