"""asv benchmark classes generated from the :class:`~harness.bench.Benchmark` definitions.

``benchmarks/benchmarks.py`` (asv's ``benchmark_dir``) calls :func:`build` at import time, so asv
sees one class per definition and no benchmark exists twice. Conventions followed:

* class name: the definition's full name in CamelCase (``tensors.matmul`` -> ``TensorsMatmul``);
* ``params``/``param_names``: the definition's grid plus a last ``device`` parameter
  (``cpu``, ``cuda``), identical on every machine so histories line up;
* ``setup(*params)`` raises ``NotImplementedError`` for a case that cannot run here (CUDA absent,
  unsupported combination): asv records it as skipped (n/a);
* ``time_<name>``: one call (synchronised on CUDA); asv does its own repeats and warm-up;
* ``track_roofline_<name>`` (only where the definition gives flops or bytes): the fraction of the
  machine's roofline bound reached, from a short measurement with torchconform's timer and the
  ceilings measured once per host/torch/device/threads and cached in ``.asv/ceilings.json``.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

DEVICES = ("cpu", "cuda")
_CACHE = Path(os.environ.get("TORCHCONFORM_ASV_CACHE", Path(__file__).resolve().parents[2] / ".asv" / "ceilings.json"))


def class_name(full_name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[^0-9A-Za-z]+", full_name) if p)


def _method_suffix(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_").lower() or "call"


def _ceilings(device: str) -> dict:
    import socket

    import torch

    from harness.bench.timer import measure_ceilings

    key = f"{socket.gethostname()}|{torch.__version__}|{device}|{torch.get_num_threads()}"
    try:
        cache = json.loads(_CACHE.read_text())
    except (OSError, ValueError):
        cache = {}
    if key not in cache:
        cache[key] = measure_ceilings(device, budget=1.5)
        try:
            _CACHE.parent.mkdir(parents=True, exist_ok=True)
            tmp = _CACHE.with_name(f".{_CACHE.name}.{os.getpid()}")
            tmp.write_text(json.dumps(cache))
            os.replace(tmp, _CACHE)
        except OSError:
            pass
    return cache[key]


def make_class(bench, module: str):
    keys = list(bench.params)
    grid = [list(bench.params[k]) for k in keys]
    suffix = _method_suffix(bench.name)

    def setup(self, *args):
        *values, device = args
        params = dict(zip(keys, values))
        if device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise NotImplementedError("CUDA is not available here")
        self._device, self._params = device, params
        self._fn = bench.make(device, params)  # NotImplementedError: asv marks the case skipped
        if device == "cuda":
            import torch

            fn = self._fn
            self._call = lambda: (fn(), torch.cuda.synchronize())
        else:
            self._call = self._fn
        self._call()  # first call outside timing (lazy init, allocator)

    def teardown(self, *args):
        self._fn = self._call = None

    def time_fn(self, *args):
        self._call()

    attrs = {
        "__module__": module,
        "__doc__": bench.description or f"{bench.full_name} (torchconform definition)",
        "params": grid + [list(DEVICES)],
        "param_names": keys + ["device"],
        "setup": setup,
        "teardown": teardown,
        f"time_{suffix}": time_fn,
        "timeout": 120,
    }
    if bench.flops is not None or bench.bytes is not None:
        def track_roofline(self, *args):
            from harness import stats
            from harness.bench.timer import CaseTimer, TimerConfig, roofline

            t = CaseTimer(self._fn, self._device, TimerConfig(min_time=0.1, max_time=0.5))
            med = stats.median(t.measure())
            return roofline(bench.counts(self._params), _ceilings(self._device), med)["roofline_fraction"]

        track_roofline.unit = "fraction of roofline"
        attrs[f"track_roofline_{suffix}"] = track_roofline
    return type(class_name(bench.full_name), (), attrs)


def build(module: str, suites=None) -> dict:
    """``{ClassName: class}`` for every discovered definition (all tiers: select with ``asv -b``)."""
    from harness.bench.definition import discover

    classes = {}
    for b in discover(suites):
        cls = make_class(b, module)
        classes[cls.__name__] = cls
    return classes
