"""The sensitivity self-benchmarks' suite: small CPU ops whose callables repeat the op ``reps`` times,
so planting ``reps=11`` instead of 10 is exactly 10% more work of the same kind (51 instead of 50: 2%).
"""
from __future__ import annotations

import functools
import math

from harness.bench.definition import Benchmark


def _op(kind):
    def setup(device, n, reps=10):
        import torch

        g = torch.Generator().manual_seed(0)
        if kind == "matmul":
            a = torch.randn(n, n, generator=g).to(device)
            out = torch.empty(n, n, device=device)
            return lambda: [torch.mm(a, a, out=out) for _ in range(reps)]
        x = torch.randn(n, generator=g).to(device)
        out = torch.empty(n, device=device)
        if kind == "add":
            return lambda: [torch.add(x, x, out=out) for _ in range(reps)]
        if kind == "exp":
            return lambda: [torch.exp(x, out=out) for _ in range(reps)]
        if kind == "sum":
            return lambda: [x.sum() for _ in range(reps)]
        raise ValueError(kind)
    return setup


# bytes/FLOPs per call (of the default 10 reps) put each case on the roofline, so the sequential flow
# compares memory-bound ones normalised by the probed copy bandwidth, the matmul by the probed FLOP rate
SUITE = [
    Benchmark(name="add", section="sens", setup=_op("add"), params={"n": [100_000]}, bytes=lambda n: 10 * 3 * 4 * n),
    Benchmark(name="exp", section="sens", setup=_op("exp"), params={"n": [50_000]}, bytes=lambda n: 10 * 2 * 4 * n),
    Benchmark(name="sum", section="sens", setup=_op("sum"), params={"n": [200_000]}, bytes=lambda n: 10 * 4 * n),
    Benchmark(name="matmul", section="sens", setup=_op("matmul"), params={"n": [64]}, flops=lambda n: 10 * 2 * n ** 3),
]
PLANTED = "sens.add"


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def _instruction_suite():
    add = SUITE[0]
    return [Benchmark(name="add", section="sens", setup=functools.partial(_op("add"), reps=50), params=add.params),
            Benchmark(name="add_2pct", section="sens", setup=functools.partial(_op("add"), reps=51), params=add.params),
            *SUITE[1:]]


#: the deterministic lane's suite: ``sens.add`` at 50 reps and its +2% twin ``sens.add_2pct`` at 51
INSTRUCTION_SUITE = _instruction_suite()
PLANT_2PCT = ("sens.add[cpu,n=100000]", "sens.add_2pct[cpu,n=100000]")
