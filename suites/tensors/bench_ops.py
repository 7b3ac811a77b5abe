"""§ 1 Tensors: microbenchmarks of the core tensor operations (matmul, an elementwise add, a sum
reduction, softmax, and one MLP backward pass), each with FLOP and byte counts.

Conventions: FLOPs count 2 per multiply-add of matrix products (elementwise work is 1 per element where
counted); bytes are the minimum memory traffic (each input read once, each output written once).
Inputs are built in setup; the timed callable does the same work every call.
"""
from __future__ import annotations

from harness.bench import Benchmark

_ITEMSIZE = {"float32": 4, "bfloat16": 2, "float16": 2, "float64": 8}


def _dt(dtype):
    import torch

    return getattr(torch, dtype)


def _setup_matmul(device, n, dtype):
    import torch

    a = torch.randn(n, n, device=device, dtype=_dt(dtype))
    b = torch.randn(n, n, device=device, dtype=_dt(dtype))
    return lambda: torch.mm(a, b)


def _flops_matmul(n, dtype):
    return 2 * n ** 3


def _bytes_matmul(n, dtype):
    return 3 * n * n * _ITEMSIZE[dtype]


def _setup_add(device, numel, dtype):
    import torch

    a = torch.randn(numel, device=device, dtype=_dt(dtype))
    b = torch.randn(numel, device=device, dtype=_dt(dtype))
    out = torch.empty_like(a)
    return lambda: torch.add(a, b, out=out)


def _setup_sum(device, numel, dtype):
    import torch

    a = torch.randn(numel, device=device, dtype=_dt(dtype))
    return lambda: torch.sum(a)


def _setup_softmax(device, rows, cols, dtype):
    import torch

    x = torch.randn(rows, cols, device=device, dtype=_dt(dtype))
    return lambda: torch.softmax(x, dim=-1)


def _setup_mlp_backward(device, batch, width, dtype):
    """A 3-layer MLP (width -> 2*width -> width -> 1) with ReLU; the graph is built once in setup and
    each timed call runs loss.backward(retain_graph=True) (gradients accumulate: same work each call)."""
    import torch

    torch.manual_seed(0)
    dt = _dt(dtype)
    model = torch.nn.Sequential(torch.nn.Linear(width, 2 * width), torch.nn.ReLU(),
                                torch.nn.Linear(2 * width, width), torch.nn.ReLU(),
                                torch.nn.Linear(width, 1)).to(device=device, dtype=dt)
    x = torch.randn(batch, width, device=device, dtype=dt)
    loss = model(x).square().mean()
    return lambda: loss.backward(retain_graph=True)


def _flops_mlp_backward(batch, width, dtype):
    forward = 2 * batch * (width * 2 * width + 2 * width * width + width)
    return 2 * forward  # grad w.r.t. inputs and w.r.t. weights, each one forward's worth of matmul


def _bytes_mlp_backward(batch, width, dtype):
    weights = width * 2 * width + 2 * width * width + width
    acts = batch * (width + 2 * width + width + 1)
    return 3 * (weights + acts) * _ITEMSIZE[dtype]  # read weights/activations, write grads (lower bound)


BENCHMARKS = [
    Benchmark(name="matmul", section="tensors", group="tensors.matmul", setup=_setup_matmul,
              params={"n": [128, 512], "dtype": ["float32"]},
              flops=_flops_matmul, bytes=_bytes_matmul,
              description="torch.mm of two n x n matrices"),
    Benchmark(name="matmul_bf16", section="tensors", group="tensors.matmul", setup=_setup_matmul,
              params={"n": [128, 256], "dtype": ["bfloat16"]},
              flops=_flops_matmul, bytes=_bytes_matmul,
              description="torch.mm in bfloat16 (n=512 takes >100 ms on CPUs without bf16 units: see matmul_large)"),
    Benchmark(name="matmul_large", section="tensors", group="tensors.matmul", setup=_setup_matmul,
              params={"n": [512, 1024], "dtype": ["float32", "bfloat16"]},
              flops=_flops_matmul, bytes=_bytes_matmul, tier="full",
              description="torch.mm at n=512/1024 (full tier: 0.1-5 s per call on a small CPU in bfloat16)"),
    Benchmark(name="add", section="tensors", group="tensors.elementwise", setup=_setup_add,
              params={"numel": [1 << 20, 1 << 24], "dtype": ["float32"]},
              flops=lambda numel, dtype: numel, bytes=lambda numel, dtype: 3 * numel * _ITEMSIZE[dtype],
              description="torch.add(a, b, out=out): memory-bound elementwise"),
    Benchmark(name="sum", section="tensors", group="tensors.reduction", setup=_setup_sum,
              params={"numel": [1 << 24], "dtype": ["float32"]},
              flops=lambda numel, dtype: numel, bytes=lambda numel, dtype: numel * _ITEMSIZE[dtype],
              description="full torch.sum of a 1D tensor"),
    Benchmark(name="softmax", section="tensors", group="tensors.softmax", setup=_setup_softmax,
              params={"rows": [4096], "cols": [1024], "dtype": ["float32"]},
              bytes=lambda rows, cols, dtype: 2 * rows * cols * _ITEMSIZE[dtype],
              description="torch.softmax over the last dim"),
    Benchmark(name="mlp_backward", section="tensors", group="tensors.autograd", setup=_setup_mlp_backward,
              params={"batch": [128], "width": [256], "dtype": ["float32"]},
              flops=_flops_mlp_backward, bytes=_bytes_mlp_backward,
              description="loss.backward() of a 3-layer MLP (graph retained)"),
]
