"""Exact per-call counters (harness.bench.counters): dispatcher calls counted per aten overload (not just
seen), bytes allocated by the CPU allocator, a definition's own counters hook; nothing fails the case."""
from __future__ import annotations

import torch

from harness.bench import counters
from harness.bench.definition import Benchmark


def test_dispatcher_calls_are_counted_not_just_seen():
    """Three adds and a sum: 4 calls of two overloads (a recorder that only collects the set would say 2)."""
    x = torch.randn(1000)
    got = counters.measure(lambda: x.add(1).add(1).add(1).sum(), "cpu")
    assert got["dispatcher_calls"] == 4 and got["ops"] == {"aten.add.Tensor": 3, "aten.sum.default": 1}


def test_bytes_allocated_follow_the_allocations():
    """Each add allocates its 1000-float result: three adds allocate three times what one does."""
    x = torch.randn(1000)
    one = counters.measure(lambda: x.add(1.0), "cpu")
    three = counters.measure(lambda: x.add(1.0).add(1.0).add(1.0), "cpu")
    assert one["bytes_allocated"] >= 4000 and one["allocations"] >= 1
    assert three["bytes_allocated"] - one["bytes_allocated"] >= 8000
    out = torch.empty(1000)
    none = counters.measure(lambda: torch.add(x, 1.0, out=out), "cpu")
    assert none["bytes_allocated"] < one["bytes_allocated"]


def test_definition_hook_and_failures_become_reasons():
    def hook(device, n):
        if n > 1:
            raise NotImplementedError("no graph for this lane")
        return {"graph_nodes": 7, "not_a_counter": 1}

    b = Benchmark(name="g", section="fake", setup=lambda device, n: None, params={"n": [1, 2]}, counters=hook)
    x = torch.randn(10)
    got = counters.measure(lambda: x + 1, "cpu", b, {"n": 1})
    assert got["graph_nodes"] == 7 and "not_a_counter" not in got
    got = counters.measure(lambda: x + 1, "cpu", b, {"n": 2})
    assert got["graph_nodes"] is None and got["reasons"]["graph_nodes"] == "no graph for this lane"


def test_in_process_hook():
    b = Benchmark(name="l", section="fake", setup=lambda device, workers: None, params={"workers": [0, 2]},
                  in_process=lambda workers: workers == 0)
    assert b.runs_in_process({"workers": 0}) and not b.runs_in_process({"workers": 2})
    assert Benchmark(name="d", section="fake", setup=lambda device: None).runs_in_process({})
