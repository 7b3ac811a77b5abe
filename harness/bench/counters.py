"""Exact per-call counters of a benchmark case, measured on one call after warm-up (no Valgrind, no
statistics: a change between two records is reported as it is).

* ``dispatcher_calls``: aten operator calls that reach the dispatcher's Python key, counted with the
  coverage recorder's ``TorchDispatchMode`` (:mod:`harness.coverage.recorder`, given a counting sink
  instead of a set), and ``ops``: the same per overload. Composite ops count as what they decompose
  into (``torch.softmax`` is one ``aten._softmax``), as the dispatcher runs them.
* ``bytes_allocated`` and ``allocations``: on CPU, every allocation the profiler's memory events report
  (``torch.profiler`` with ``profile_memory=True``: the c10 CPU allocator reports each one); on CUDA,
  the deltas of ``torch.cuda.memory_stats`` (``allocated_bytes.all.allocated``, ``allocation.all.allocated``).
* anything the definition adds through its ``counters(device, **params)`` hook (``graph_nodes`` of an
  export lane).

A counter that cannot be measured on this torch or for this callable is ``None`` with the reason in
``reasons``; counting never fails the case. The timed samples are taken without any of this active.
"""
from __future__ import annotations

import collections
import contextlib
import os

from harness.record import COUNTERS

COUNTER_KEYS = tuple(c.key for c in COUNTERS)


class _CountingSink(collections.Counter):
    """What the coverage recorder's dispatch mode adds to (``sink.add(op)``), counted."""

    def add(self, item) -> None:
        self[item] += 1


@contextlib.contextmanager
def _quiet_stderr():
    """fd 2 to /dev/null (kineto prints a line at every profiler start and stop)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def dispatcher_calls(fn, sync=None) -> tuple[int | None, dict, str | None]:
    """(total, per-overload counts, reason when not measured) of one call of ``fn``."""
    from harness.coverage.recorder import _dispatch_mode_class

    cls = _dispatch_mode_class()
    if isinstance(cls, str):
        return None, {}, cls
    sink = _CountingSink()
    try:
        with cls(sink):
            fn()
            if sync is not None:
                sync()
    except Exception as exc:  # a callable a dispatch mode cannot run under is a fact, not a failure
        return None, {}, f"not countable under a TorchDispatchMode ({type(exc).__name__}: {exc})"[:300]
    ops = {str(op): n for op, n in sorted(sink.items(), key=lambda kv: str(kv[0]))}
    return int(sum(sink.values())), ops, None


def cpu_allocations(fn) -> tuple[int | None, int | None, str | None]:
    """(bytes allocated, allocations, reason) of one call of ``fn`` from the profiler's memory events."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    try:
        with _quiet_stderr():
            with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
                fn()
        results = getattr(prof.profiler, "kineto_results", None)
    except Exception as exc:
        return None, None, f"profiler failed ({type(exc).__name__}: {exc})"[:300]
    if results is None or not hasattr(results, "events"):
        return None, None, f"torch {torch.__version__}: the profiler exposes no memory events"
    sizes = [e.nbytes() for e in results.events() if e.name() == "[memory]" and e.nbytes() > 0]
    return int(sum(sizes)), len(sizes), None


def cuda_allocations(fn, device: str) -> tuple[int | None, int | None, str | None]:
    import torch

    torch.cuda.synchronize(device)
    before = torch.cuda.memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    after = torch.cuda.memory_stats(device)
    keys = ("allocated_bytes.all.allocated", "allocation.all.allocated")
    if not all(k in before and k in after for k in keys):
        return None, None, "torch.cuda.memory_stats has no allocation totals"
    return int(after[keys[0]] - before[keys[0]]), int(after[keys[1]] - before[keys[1]]), None


def measure(fn, device: str, bench=None, params: dict | None = None, sync=None) -> dict:
    """Every counter of one call of ``fn`` (already warmed up) on ``device``: see the module docstring."""
    out: dict = {k: None for k in COUNTER_KEYS}
    reasons: dict[str, str] = {}
    out["dispatcher_calls"], out["ops"], why = dispatcher_calls(fn, sync)
    if why:
        reasons["dispatcher_calls"] = why
    try:
        if str(device).startswith("cuda"):
            nbytes, count, why = cuda_allocations(fn, device)
        else:
            nbytes, count, why = cpu_allocations(fn)
    except Exception as exc:
        nbytes, count, why = None, None, f"{type(exc).__name__}: {exc}"[:300]
    out["bytes_allocated"], out["allocations"] = nbytes, count
    if why:
        reasons["bytes_allocated"] = reasons["allocations"] = why
    if bench is not None and bench.counters is not None:
        try:
            extra = bench.counters(device, **(params or {}))
            out.update({k: int(v) for k, v in (extra or {}).items() if k in COUNTER_KEYS and v is not None})
        except NotImplementedError as exc:
            reasons["graph_nodes"] = str(exc) or "not defined for these parameters"
        except Exception as exc:
            reasons["graph_nodes"] = f"counters hook raised {type(exc).__name__}: {exc}"[:300]
    for k in COUNTER_KEYS:
        if out[k] is None and k not in reasons and k != "graph_nodes":
            reasons[k] = "not measured"
    out["reasons"] = reasons
    return out
