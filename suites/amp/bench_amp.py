"""§ 9.2 Mixed precision: AMP speed-up benchmarks. Each benchmark has one definition whose
``precision`` parameter selects the float32 baseline or the autocast case (bfloat16 / float16), so
the speed-up is the ratio of two cases of the same definition, measured by the same runner:
matmul, conv2d and one training step (forward, backward, SGD) of an MLP, per device.

On the CPU, float16 runs only at the smallest size (larger ones raise NotImplementedError: CPU
float16 matmul is up to ~90x slower than float32 without native fp16 units); on CUDA float16 trains
with a GradScaler as documented, bfloat16 where the device supports it.
"""
from __future__ import annotations

import time

from harness.bench import Benchmark

PRECISIONS = ["float32", "bfloat16", "float16"]


def _check(device, precision, large: bool):
    import torch

    if precision == "float16" and device == "cpu" and large:
        raise NotImplementedError("float16 autocast on the CPU only at the smallest size (~90x slower than float32)")
    if precision == "bfloat16" and device == "cuda" and not torch.cuda.is_bf16_supported():
        raise NotImplementedError("this CUDA device does not support bfloat16")
    return None if precision == "float32" else getattr(torch, precision)


def _autocast(device, low):
    import torch

    return torch.autocast(device, dtype=low or torch.bfloat16, enabled=low is not None)


def _setup_matmul(device, n, precision):
    import torch

    low = _check(device, precision, n > 128)
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)

    def run():
        with _autocast(device, low):
            return torch.mm(a, b)

    return run


def _setup_conv2d(device, channels, precision):
    import torch

    low = _check(device, precision, channels > 16)
    x = torch.randn(4, channels, 16, 16, device=device)
    w = torch.randn(channels, channels, 3, 3, device=device)

    def run():
        with _autocast(device, low):
            return torch.nn.functional.conv2d(x, w, padding=1)

    return run


TRAIN_DIMS = (256, 256, 10)
TRAIN_BATCH = 64


def _setup_train_step(device, precision):
    import torch
    from torch import nn

    low = _check(device, precision, True)
    d_in, d_hid, d_out = TRAIN_DIMS
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(d_in, d_hid), nn.ReLU(), nn.Linear(d_hid, d_out)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(TRAIN_BATCH, d_in, device=device)
    y = torch.randint(0, d_out, (TRAIN_BATCH,), device=device)
    scaler = torch.amp.GradScaler(device) if low is torch.float16 else None

    def run():
        opt.zero_grad(set_to_none=True)
        with _autocast(device, low):
            loss = nn.functional.cross_entropy(model(x), y)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    return run


def _train_flops(precision):
    d_in, d_hid, d_out = TRAIN_DIMS
    return 6 * TRAIN_BATCH * (d_in * d_hid + d_hid * d_out)


BENCHMARKS = [
    Benchmark(name="matmul", section="amp", group="amp.matmul", setup=_setup_matmul,
              params={"n": [128, 256], "precision": PRECISIONS},
              flops=lambda n, precision: 2 * n ** 3,
              description="torch.mm of float32 inputs, plain (float32) or under autocast(dtype=precision)"),
    Benchmark(name="conv2d", section="amp", group="amp.conv2d", setup=_setup_conv2d,
              params={"channels": [16, 32], "precision": PRECISIONS},
              flops=lambda channels, precision: 2 * 4 * 16 * 16 * channels * channels * 9,
              description="3x3 conv2d, batch 4, 16x16, float32 or under autocast(dtype=precision)"),
    Benchmark(name="train_step", section="amp", group="amp.train_step", setup=_setup_train_step,
              params={"precision": PRECISIONS}, flops=_train_flops,
              items=lambda precision: TRAIN_BATCH, throughput_unit="samples/s",
              description="one SGD step of a 2-layer MLP (GradScaler for float16)"),
]


def measure_speedup(device: str = "cpu", min_time: float = 0.3) -> dict:
    """Speed-up of every runnable low-precision case over its float32 case: {case: t32 / t_low},
    by interleaved repeated timing (median of 5 rounds of >= min_time/5 each)."""
    import statistics

    def timeit(fn):
        fn()
        rounds = []
        for _ in range(5):
            k, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < min_time / 5:
                fn()
                k += 1
            rounds.append((time.perf_counter() - t0) / k)
        return statistics.median(rounds)

    out = {}
    for b in BENCHMARKS:
        for params in b.cases():
            if params["precision"] == "float32":
                continue
            try:
                low_fn = b.make(device, params)
            except NotImplementedError:
                continue
            base_fn = b.make(device, {**params, "precision": "float32"})
            t_low, t32 = timeit(low_fn), timeit(base_fn)
            out[b.case_id(params, device)] = t32 / t_low
    return out
