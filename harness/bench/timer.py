"""Measuring one benchmark case: warm-up, block sizing, samples, and the machine's ceilings.

CPU: ``time.perf_counter`` around a *block* of ``inner_loops`` calls, with the garbage collector
off while timing (as :mod:`timeit`); the number of inner loops is chosen after warm-up so that a
block lasts at least ``block_time`` (default 1 ms), which makes the timer's own overhead
(< 1 µs per block) negligible, as ``torch.utils.benchmark.Timer.blocked_autorange`` does. Each
sample is the block's time divided by ``inner_loops``: seconds per call.

CUDA: CUDA events recorded around the block on the current stream, after warm-up, and the end
event synchronised, so a sample is GPU time of the calls. The L2 state is a choice that is
recorded: ``"warm"`` (default: the block's inputs stay cached between calls, as in a training
loop) or ``"flush"`` (a buffer twice the L2 size is overwritten before every sample and blocks
are one call long, so every sample starts with a cold L2).
"""
from __future__ import annotations

import gc
import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable


@dataclass
class TimerConfig:
    min_time: float = 0.3       # measured seconds per case (per side in pair mode), warm-up excluded
    max_time: float = 2.0       # stop sampling after this many measured seconds
    min_samples: int = 20
    max_samples: int = 1000
    block_time: float = 0.001   # each sample times calls lasting at least this long in total (>= 1000x timer overhead)
    warmup_time: float = 0.05   # run the callable for at least this long before measuring
    warmup_calls: int = 2
    l2: str = "warm"            # CUDA only: 'warm' or 'flush'

    def to_dict(self) -> dict:
        return asdict(self)


def is_cuda(device: str) -> bool:
    return str(device).startswith("cuda")


def synchronizer(device: str) -> Callable[[], None] | None:
    if is_cuda(device):
        import torch

        return torch.cuda.synchronize
    return None


class CaseTimer:
    """Times one zero-argument callable on one device; keeps the chosen inner loop count."""

    def __init__(self, fn: Callable[[], Any], device: str = "cpu", config: TimerConfig | None = None):
        self.fn = fn
        self.device = str(device)
        self.cfg = config or TimerConfig()
        self.cuda = is_cuda(self.device)
        self.sync = synchronizer(self.device)
        self.inner_loops: int | None = None
        self.per_call_estimate: float | None = None
        self.warmup_calls_done = 0
        self._flush_buf = None
        if self.cuda and self.cfg.l2 == "flush":
            import torch

            idx = torch.device(self.device).index
            props = torch.cuda.get_device_properties(idx if idx is not None else torch.cuda.current_device())
            l2 = int(getattr(props, "L2_cache_size", 0) or 64 * 2 ** 20)
            self._flush_buf = torch.empty(2 * l2, dtype=torch.uint8, device=self.device)

    @property
    def timer_name(self) -> str:
        return "cuda_event" if self.cuda else "perf_counter"

    @property
    def l2_state(self) -> str | None:
        return (("flushed" if self._flush_buf is not None else "warm") if self.cuda else None)

    def _block(self, n: int) -> float:
        """Seconds per call over one block of ``n`` calls."""
        fn = self.fn
        if self.cuda:
            import torch

            if self._flush_buf is not None:
                self._flush_buf.fill_(1)
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(n):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000.0 / n
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t0) / n

    def warmup(self) -> None:
        """Call the function for at least ``warmup_time`` and ``warmup_calls`` calls, then size blocks."""
        cfg = self.cfg
        gc_was = gc.isenabled()
        gc.disable()
        try:
            t0 = time.perf_counter()
            calls = 0
            while calls < cfg.warmup_calls or (time.perf_counter() - t0) < cfg.warmup_time:
                self.fn()
                calls += 1
                if self.sync is not None:
                    self.sync()
                if calls >= 10_000:
                    break
            self.warmup_calls_done = calls
            # size the block: grow n until one block lasts >= block_time (blocked_autorange's rule)
            if self._flush_buf is not None:
                self.inner_loops = 1
                self.per_call_estimate = self._block(1)
                return
            n = 1
            while True:
                t = self._block(n)
                if t * n >= cfg.block_time or n >= 1_000_000:
                    break
                # jump close to the target, at least doubling
                n = max(2 * n, int(math.ceil(cfg.block_time / max(t, 1e-9) * 1.05)))
                n = min(n, 1_000_000)
            self.inner_loops = n
            self.per_call_estimate = t
        finally:
            if gc_was:
                gc.enable()

    def samples(self, k: int, inner_loops: int | None = None) -> list[float]:
        """``k`` samples (seconds per call), each one block of ``inner_loops`` calls."""
        if self.inner_loops is None:
            self.warmup()
        n = int(inner_loops or self.inner_loops)
        gc_was = gc.isenabled()
        gc.disable()
        try:
            return [self._block(n) for _ in range(k)]
        finally:
            if gc_was:
                gc.enable()

    def measure(self) -> list[float]:
        """Samples until ``min_time`` and ``min_samples`` are reached (bounded by max_time/max_samples)."""
        if self.inner_loops is None:
            self.warmup()
        cfg = self.cfg
        out: list[float] = []
        spent = 0.0
        while len(out) < cfg.max_samples and spent < cfg.max_time:
            if len(out) >= cfg.min_samples and spent >= cfg.min_time:
                break
            s = self.samples(1)[0]
            out.append(s)
            spent += s * self.inner_loops
        return out


def measure_ceilings(device: str = "cpu", budget: float = 2.5) -> dict:
    """The machine's own ceilings on ``device``: a large float32 matmul's GFLOP/s and a large copy's
    GB/s (bytes read + written), best of a few timed repetitions within about ``budget`` seconds."""
    import torch

    out: dict = {"gflops": None, "gbps": None}
    cuda = is_cuda(device)
    n = 4096 if cuda else 1024
    try:
        a = torch.randn(n, n, device=device)
        b = torch.randn(n, n, device=device)
        c = torch.empty(n, n, device=device)
        t = CaseTimer(lambda: torch.mm(a, b, out=c), device,
                      TimerConfig(block_time=0.05 if not cuda else 0.02, warmup_time=0.1))
        t.warmup()
        best = _best_within(t, budget / 2)
        out["gflops"] = 2.0 * n ** 3 / best / 1e9
        del a, b, c
    except Exception:  # a ceiling is best-effort; fractions are then left out
        pass
    try:
        numel = (256 if cuda else 32) * 2 ** 20 // 4  # 256 MiB / 32 MiB of float32 (well beyond caches)
        src = torch.ones(numel, device=device)
        dst = torch.empty(numel, device=device)
        t = CaseTimer(lambda: dst.copy_(src), device, TimerConfig(block_time=0.05 if not cuda else 0.02,
                                                                   warmup_time=0.1))
        t.warmup()
        best = _best_within(t, budget / 2)
        out["gbps"] = 2.0 * numel * 4 / best / 1e9
        del src, dst
    except Exception:
        pass
    return out


class CeilingProbe:
    """Short probes of the machine's state, taken beside the benchmarks in every round (rounds mode):
    a 32 MiB float32 copy (GB/s, bytes read + written) and a cache-resident float32 multiply-add over
    16,384 elements (GFLOP/s: the core's share and clock, without a BLAS thread pool that would fight
    torch's for the cores), the median of ``reps`` timings each, about 20 ms in all. On CPU they run in
    NumPy on one thread, so a change in the torch under test (a slower ``copy_`` or ``mm``) cannot move
    the probe and cancel itself out; on CUDA they use :func:`measure_ceilings` with a small budget.
    The values are a state signal for normalising (their drift matters), not the roofline's peaks."""

    def __init__(self, device: str = "cpu", copy_mib: int = 32, n: int = 16384, inner: int = 50, reps: int = 5):
        import numpy as np

        self.device, self.reps, self.inner = str(device), reps, inner
        if not is_cuda(self.device):
            self.src = np.ones(copy_mib * 2 ** 20 // 4, dtype=np.float32)
            self.dst = np.empty_like(self.src)
            rng = np.random.default_rng(0)
            self.a, self.b = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
            self.c = np.empty(n, dtype=np.float32)

    def _median_time(self, fn) -> float:
        fn()
        times = []
        for _ in range(self.reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return sorted(times)[len(times) // 2]

    def _fma(self):
        import numpy as np

        for _ in range(self.inner):
            np.multiply(self.a, self.b, out=self.c)
            np.add(self.c, self.a, out=self.c)

    def __call__(self) -> dict:
        if is_cuda(self.device):
            return measure_ceilings(self.device, budget=0.1)
        import numpy as np

        t_copy = self._median_time(lambda: np.copyto(self.dst, self.src))
        t_fma = self._median_time(self._fma)
        return {"gbps": 2.0 * self.src.nbytes / t_copy / 1e9,
                "gflops": 2.0 * self.a.size * self.inner / t_fma / 1e9}


def _best_within(t: CaseTimer, budget: float) -> float:
    best = float("inf")
    t0 = time.perf_counter()
    reps = 0
    while reps < 3 or (time.perf_counter() - t0 < budget and reps < 50):
        best = min(best, t.samples(1)[0])
        reps += 1
    return best


def roofline(counts: dict, ceilings: dict | None, median: float | None) -> dict:
    """Roofline bound of one case: ``bound_time = max(flops / peak_flops, bytes / peak_bw)`` and
    ``fraction = bound_time / median`` (1 = at the machine's measured ceiling)."""
    if not ceilings or not median or median <= 0 or not math.isfinite(median):
        return {"roofline_fraction": None, "bound": None}
    flops, nbytes = counts.get("flops"), counts.get("bytes")
    t_f = flops / (ceilings["gflops"] * 1e9) if flops and ceilings.get("gflops") else 0.0
    t_b = nbytes / (ceilings["gbps"] * 1e9) if nbytes and ceilings.get("gbps") else 0.0
    bound = max(t_f, t_b)
    if bound <= 0:
        return {"roofline_fraction": None, "bound": None}
    return {"roofline_fraction": bound / median, "bound": "compute" if t_f >= t_b else "memory"}
