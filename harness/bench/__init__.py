"""Benchmarks: one definition (:class:`Benchmark`), several runners (pytest-benchmark, asv, the
``torchconform bench`` runner)."""
from harness.bench.definition import Benchmark, discover

__all__ = ["Benchmark", "discover"]
