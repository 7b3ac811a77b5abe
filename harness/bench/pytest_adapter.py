"""Run :class:`~harness.bench.Benchmark` definitions under pytest-benchmark.

A section exposes its definitions to pytest with one line in a test module::

    from harness.bench.pytest_adapter import benchmark_test
    from suites.tensors.bench_ops import BENCHMARKS
    test_benchmarks = benchmark_test(BENCHMARKS)

The cases are collected only with ``--benchmark-only`` (or ``--benchmark-enable``); each one's
samples also go into the torchconform run record when ``--record`` is given.
"""
from __future__ import annotations

import pytest

from harness.pytest_plugin import BENCH_ENTRY


def _sync(device: str):
    if device.startswith("cuda"):
        import torch

        return torch.cuda.synchronize
    return None


def benchmark_test(benchmarks):
    cases = [(b, p) for b in benchmarks for p in b.cases()]
    ids = [b.case_id(p)[len(b.section) + 1:] for b, p in cases]

    @pytest.mark.torchconform_bench
    @pytest.mark.parametrize("case", cases, ids=ids)
    def test_benchmark(case, device, benchmark, request):
        bench, params = case
        if bench.tier == "full" and request.config.getoption("torchconform_tier") != "full":
            pytest.skip(f"{bench.full_name} is a full-tier benchmark (run with --tier full)")
        try:
            fn = bench.make(device, params)
        except NotImplementedError as exc:
            pytest.skip(f"not supported: {exc}")
        sync = _sync(device)
        body = fn if sync is None else (lambda: (fn(), sync()))
        benchmark.group = bench.group or bench.full_name
        benchmark.extra_info.update({k: v for k, v in bench.counts(params).items() if v is not None})
        benchmark(body)
        import torch

        samples = list(benchmark.stats.stats.data) if benchmark.stats is not None else []
        entry = {"name": bench.case_id(params, device), "group": bench.group or bench.full_name,
                 "section": bench.section, "device": device, "params": params, "unit": "s",
                 "samples": samples, "inner_loops": None, "throughput_unit": bench.throughput_unit,
                 "threads": torch.get_num_threads(), **bench.counts(params)}
        request.node.stash[BENCH_ENTRY] = entry  # the plugin puts it on the report, into the run record

    return test_benchmark
