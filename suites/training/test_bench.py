"""§ 6 Model training: benchmark cases under pytest-benchmark (collected with --benchmark-only)."""
from harness.bench.pytest_adapter import benchmark_test
from suites.training.bench_training import BENCHMARKS

test_benchmarks = benchmark_test(BENCHMARKS)
