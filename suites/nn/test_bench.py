"""§ 4 nn.Module and layers: benchmark cases under pytest-benchmark (collected with --benchmark-only)."""
from harness.bench.pytest_adapter import benchmark_test
from suites.nn.bench_layers import BENCHMARKS

test_benchmarks = benchmark_test(BENCHMARKS)
