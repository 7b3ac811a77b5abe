"""§ 1 Tensors: benchmark cases under pytest-benchmark (collected with --benchmark-only)."""
from harness.bench.pytest_adapter import benchmark_test
from suites.tensors.bench_ops import BENCHMARKS

test_benchmarks = benchmark_test(BENCHMARKS)
