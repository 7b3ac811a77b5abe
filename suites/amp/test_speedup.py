"""§ 9.2 Mixed precision: AMP speed-up figures (low precision over float32) per device, from the
bench_amp definitions. Slow: runs at --tier full; prints the figures and asserts only that they
are positive and finite (speed depends on the hardware: bfloat16 is slower than float32 on CPUs
without native bf16 units)."""
from __future__ import annotations

import math

import pytest

from harness.checks import assert_true


@pytest.mark.slow
def test_amp_speedup_figures(device):
    """measure_speedup(device): every runnable case gives a positive finite speed-up."""
    from suites.amp.bench_amp import measure_speedup

    figs = measure_speedup(device)
    assert_true("torch.autocast", bool(figs), "no runnable AMP benchmark case")
    for case, s in figs.items():
        print(f"AMP speed-up {case}: {s:.2f}x")
        assert_true("torch.autocast", math.isfinite(s) and s > 0, f"{case}: speed-up {s}")
