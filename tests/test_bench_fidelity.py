"""Fidelity of the harness's timer: its median agrees with torch.utils.benchmark.Timer on the same op in the
same process (full tier: timing on a shared machine takes a while)."""
from __future__ import annotations

import pytest

from harness import stats
from harness.bench.timer import CaseTimer, TimerConfig


def _ops():
    import torch

    torch.manual_seed(0)
    a = torch.randn(256, 256)
    x = torch.randn(200_000)
    out = torch.empty_like(x)
    return {"mm256": (lambda: torch.mm(a, a)), "add200k": (lambda: torch.add(x, x, out=out)),
            "sum200k": (lambda: x.sum())}


@pytest.mark.slow
@pytest.mark.parametrize("op", ["mm256", "add200k", "sum200k"])
def test_median_agrees_with_torch_timer(op):
    """Harness median within 3% of torch.utils.benchmark.Timer.blocked_autorange's median (best of 3 tries:
    a busy shared machine can shift one measurement; both timers are interleaved on the same op)."""
    import torch
    from torch.utils.benchmark import Timer

    torch.set_num_threads(1)
    fn = _ops()[op]
    diffs = []
    for _ in range(3):
        ours = []
        theirs = []
        for _ in range(9):  # short turns, interleaved, so the machine's drift hits both timers alike
            t = CaseTimer(fn, "cpu", TimerConfig(min_time=0.1, block_time=0.002))
            ours.append(stats.median(t.measure()))
            m = Timer(stmt="fn()", globals={"fn": fn}, num_threads=1).blocked_autorange(min_run_time=0.1)
            theirs.append(m.median)
        a, b = stats.median(ours), stats.median(theirs)
        diffs.append(abs(a / b - 1))
        print(f"{op}: harness {a * 1e6:.2f} us, torch Timer {b * 1e6:.2f} us, diff {a / b - 1:+.2%}")
        if diffs[-1] <= 0.03:
            break
    assert min(diffs) <= 0.03, f"{op}: harness vs torch.utils.benchmark differ by {min(diffs):.1%} (> 3%)"
