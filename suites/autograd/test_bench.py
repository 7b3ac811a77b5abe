"""§ 2 Autograd: benchmark cases under pytest-benchmark (collected with --benchmark-only)."""
from harness.bench.pytest_adapter import benchmark_test
from suites.autograd.bench_autograd import BENCHMARKS

test_benchmarks = benchmark_test(BENCHMARKS)
