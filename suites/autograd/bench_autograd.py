"""§ 2 Autograd: benchmark definitions (forward+backward of an op chain; engine overhead per node)."""
from __future__ import annotations

from harness.bench import Benchmark


def _setup_chain_backward(device, n, dtype):
    """x -> tanh(x @ W1) * s -> exp(-h^2) @ W2 -> sum, forward + backward (graph rebuilt every call)."""
    import torch

    dt = getattr(torch, dtype)
    if dt not in (torch.float32, torch.float64):
        raise NotImplementedError(f"dtype {dtype}")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, n, generator=g, dtype=dt).to(device).requires_grad_()
    w1 = (torch.randn(n, n, generator=g, dtype=dt) / n ** 0.5).to(device).requires_grad_()
    w2 = (torch.randn(n, n, generator=g, dtype=dt) / n ** 0.5).to(device).requires_grad_()
    s = torch.randn(n, generator=g, dtype=dt).to(device).requires_grad_()

    def step():
        for t in (x, w1, w2, s):
            t.grad = None
        h = torch.tanh(x @ w1) * s
        out = torch.exp(-h * h) @ w2
        out.sum().backward()

    return step


def _chain_flops(n, dtype):
    # 2 matmuls forward (2n^3 each) + 4 backward matmuls (2n^3 each) + ~20 elementwise flops per element
    return 6 * 2 * n ** 3 + 20 * n * n


def _setup_overhead(device, nodes):
    """A chain of `nodes` tiny elementwise ops on a 4-element tensor, forward + backward: dominated by the
    autograd engine's per-node cost (divide the time by `nodes` for the cost per node)."""
    import torch

    x = torch.ones(4, device=device, requires_grad=True)

    def step():
        x.grad = None
        y = x
        for i in range(nodes):
            y = y * 1.0001 if i % 2 else y + 0.5
        y.sum().backward()

    return step


BENCHMARKS = [
    Benchmark(name="chain_backward", section="autograd", group="autograd.chain_backward",
              setup=_setup_chain_backward, params={"n": [64, 256], "dtype": ["float32"]},
              flops=_chain_flops, bytes=lambda n, dtype: 4 * n * n * 12,
              description="forward+backward of matmul/tanh/exp chain, graph rebuilt each call"),
    Benchmark(name="engine_overhead", section="autograd", group="autograd.engine_overhead",
              setup=_setup_overhead, params={"nodes": [100]}, items=lambda nodes: nodes,
              throughput_unit="nodes/s",
              description="100 tiny ops forward+backward; time/100 = per-node autograd overhead"),
]
