"""§ 9.2 Mixed precision: benchmark cases under pytest-benchmark (collected with --benchmark-only)."""
from harness.bench.pytest_adapter import benchmark_test
from suites.amp.bench_amp import BENCHMARKS

test_benchmarks = benchmark_test(BENCHMARKS)
