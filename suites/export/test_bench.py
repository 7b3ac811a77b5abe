"""§ 9.1 export: benchmark cases under pytest-benchmark (collected with --benchmark-only)."""
from harness.bench.pytest_adapter import benchmark_test
from suites.export.bench_export import BENCHMARKS

test_benchmarks = benchmark_test(BENCHMARKS)
