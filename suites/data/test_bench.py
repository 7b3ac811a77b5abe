"""§ 5 Data: throughput benchmarks under pytest-benchmark (collected with --benchmark-only)."""
from harness.bench.pytest_adapter import benchmark_test
from suites.data.bench_loading import BENCHMARKS

test_benchmarks = benchmark_test(BENCHMARKS)
