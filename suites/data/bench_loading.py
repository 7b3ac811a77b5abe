"""§ 5 Data: DataLoader throughput, the section's headline benchmark.

Samples per second through a DataLoader for an in-memory dataset of image-like tensors
(2048 samples of 3x32x32 float32, int labels), over num_workers x batch size x persistent_workers x
start method, plus time to first batch. Each figure is read next to an upper bound measured in the
same run: slicing the same tensors directly into batches with no DataLoader (``direct``; each batch is
cloned so that it, like a collated batch, is fresh contiguous memory). The ratio DataLoader rate / bound
is the figure to compare across machines and torch builds. ``python -m suites.data.bench_loading``
prints that table.
"""
from __future__ import annotations

import multiprocessing as mp

from harness.bench import Benchmark

N_SAMPLES = 2048
SAMPLE_BYTES = 3 * 32 * 32 * 4 + 8


def _dataset():
    from suites.data._datasets import Images

    return Images(N_SAMPLES)


def _setup_loader(device, workers, batch, persistent, start):
    import torch
    from torch.utils.data import DataLoader

    if device != "cpu":
        raise NotImplementedError("data loading is measured on the host (device='cpu')")
    if start not in mp.get_all_start_methods():
        raise NotImplementedError(f"start method {start!r} is not available on this platform")
    if workers == 0 and (persistent == "on" or start != "fork"):
        raise NotImplementedError("persistent_workers and start methods apply only with num_workers > 0")
    loader = DataLoader(_dataset(), batch_size=batch, num_workers=workers,
                        persistent_workers=persistent == "on",
                        multiprocessing_context=start if workers else None,
                        generator=torch.Generator().manual_seed(0))

    def epoch():
        for _x, _y in loader:
            pass

    return epoch


def _setup_first_batch(device, workers, batch):
    from torch.utils.data import DataLoader

    if device != "cpu":
        raise NotImplementedError("data loading is measured on the host (device='cpu')")
    ds = _dataset()
    ctx = "fork" if "fork" in mp.get_all_start_methods() else "spawn"

    def first_batch():
        it = iter(DataLoader(ds, batch_size=batch, num_workers=workers, multiprocessing_context=ctx if workers else None))
        next(it)
        del it  # shuts the workers down, as a fresh training job would pay

    return first_batch


def _setup_direct(device, batch):
    if device != "cpu":
        raise NotImplementedError("data loading is measured on the host (device='cpu')")
    ds = _dataset()
    x, y = ds.x, ds.y

    def epoch():
        for i in range(0, N_SAMPLES, batch):
            x[i:i + batch].clone()
            y[i:i + batch].clone()

    return epoch


_items = lambda **p: N_SAMPLES  # noqa: E731 - samples per timed call
_bytes = lambda **p: N_SAMPLES * SAMPLE_BYTES  # noqa: E731

def _in_process(workers, **_):
    """With worker processes the loading happens outside this process (the instruction lane skips it)."""
    return workers == 0


BENCHMARKS = [
    Benchmark(name="direct", section="data", group="data.throughput", setup=_setup_direct,
              params={"batch": [32, 256]}, items=_items, bytes=_bytes, throughput_unit="samples/s", devices=("cpu",),
              description="upper bound: slice (and clone) the in-memory tensors into batches, no DataLoader"),
    Benchmark(name="loader", section="data", group="data.throughput", setup=_setup_loader,
              params={"workers": [0, 1, 2], "batch": [32, 256], "persistent": ["off", "on"], "start": ["fork"]},
              items=_items, bytes=_bytes, throughput_unit="samples/s", devices=("cpu",),
              in_process=_in_process, description="one epoch of 2048 image-like samples through DataLoader"),
    Benchmark(name="loader_spawn", section="data", group="data.throughput", setup=_setup_loader,
              params={"workers": [1, 2], "batch": [32, 256], "persistent": ["off", "on"], "start": ["spawn"]},
              items=_items, bytes=_bytes, throughput_unit="samples/s", devices=("cpu",), tier="full", in_process=False,
              description="as loader, with the 'spawn' start method (each non-persistent epoch re-imports torch)"),
    Benchmark(name="first_batch", section="data", group="data.latency", setup=_setup_first_batch,
              params={"workers": [0, 1, 2], "batch": [32, 256]}, devices=("cpu",), in_process=_in_process,
              description="time from creating the iterator to the first batch, workers shut down after"),
]


def throughput_table(repeats: int = 3, include_spawn: bool = False) -> list[dict]:
    """Measure every loader case and its bound once in this process; rows with rate, bound and ratio."""
    import statistics
    import time

    def rate(fn):
        fn()  # warm-up (starts persistent workers)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return N_SAMPLES / statistics.median(times)

    bounds = {b: rate(_setup_direct("cpu", b)) for b in (32, 256)}
    rows = []
    for bench in BENCHMARKS:
        if bench.name not in ("loader", "loader_spawn") or (bench.name == "loader_spawn" and not include_spawn):
            continue
        for params in bench.cases():
            try:
                fn = bench.make("cpu", params)
            except NotImplementedError:
                continue
            r = rate(fn)
            rows.append({**params, "rate": r, "bound": bounds[params["batch"]], "ratio": r / bounds[params["batch"]]})
            del fn
    return rows


if __name__ == "__main__":
    import sys

    rows = throughput_table(include_spawn="--spawn" in sys.argv)
    print(f"{'workers':>7} {'batch':>5} {'persist':>7} {'start':>5} {'samples/s':>10} {'bound':>10} {'ratio':>6}")
    for r in rows:
        print(f"{r['workers']:>7} {r['batch']:>5} {r['persistent']:>7} {r['start']:>5} {r['rate']:>10.0f} {r['bound']:>10.0f} {r['ratio']:>6.3f}")
