"""§ 8 Devices and distributed: benchmark cases under pytest-benchmark (collected with --benchmark-only)."""
from harness.bench.pytest_adapter import benchmark_test
from suites.distributed.bench_distributed import BENCHMARKS

test_benchmarks = benchmark_test(BENCHMARKS)
