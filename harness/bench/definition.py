"""The benchmark definition type, shared by every runner.

A benchmark is defined once, in its section's folder (``suites/<section>/bench_<family>.py``),
as a module-level list ``BENCHMARKS`` of :class:`Benchmark`:

    Benchmark(
        name="matmul", section="tensors", group="tensors.matmul",
        params={"n": [256, 1024], "dtype": ["float32", "bfloat16"]},
        setup=setup_matmul,                # setup(device, **params) -> zero-argument callable (timed)
        flops=lambda n, dtype: 2 * n**3,   # per call, or None
        bytes=lambda n, dtype: ...,        # bytes moved per call, or None
    )

Optional hooks for the exact counters and the instruction lane (:mod:`harness.bench.counters`,
:mod:`harness.bench.callgrind`):

* ``counters(device, **params) -> dict``: counters only the definition knows, such as the graph size of
  an export lane (``{"graph_nodes": 42}``); keys from :data:`harness.record.COUNTERS`;
* ``in_process(**params) -> bool`` (or a bool): False where the timed work runs in other processes
  (DataLoader workers, distributed ranks); the instruction lane, which counts this process only, then
  skips the case with that reason.

``setup`` builds inputs on ``device`` and returns the callable whose calls are timed. It raises
``NotImplementedError`` for a combination that cannot run (asv's convention: the runners skip it
and say why). Parameter grids are plain values that do not depend on the torch version, so asv
histories stay aligned across builds. The timed callable must do the same work every call; the
runners handle warm-up, repetition, synchronisation and recording.
"""
from __future__ import annotations

import importlib.util
import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class Benchmark:
    name: str
    section: str
    setup: Callable[..., Callable[[], Any]]
    params: dict[str, list] = field(default_factory=dict)
    group: str | None = None
    flops: Callable[..., float] | None = None
    bytes: Callable[..., float] | None = None
    items: Callable[..., float] | None = None
    throughput_unit: str | None = None  # e.g. "samples/s" for items per second
    devices: tuple[str, ...] = ("cpu", "cuda")
    tier: str = "default"  # 'default' benchmarks run by default; 'full' ones only at --tier full
    description: str = ""
    counters: Callable[..., dict] | None = None  # counters(device, **params) -> {"graph_nodes": n, ...}
    in_process: bool | Callable[..., bool] = True  # False: the work runs in other processes

    def runs_in_process(self, params: dict) -> bool:
        """Whether one call's work happens in this process (see ``in_process``)."""
        return bool(self.in_process(**params) if callable(self.in_process) else self.in_process)

    @property
    def full_name(self) -> str:
        return f"{self.section}.{self.name}"

    def cases(self) -> list[dict]:
        """Every parameter combination, in a stable order."""
        keys = list(self.params)
        return [dict(zip(keys, values)) for values in itertools.product(*(self.params[k] for k in keys))]

    def case_id(self, params: dict, device: str | None = None) -> str:
        parts = [f"{k}={v}" for k, v in params.items()]
        if device is not None:
            parts.insert(0, device)
        return f"{self.full_name}[{','.join(parts)}]" if parts else self.full_name

    def counts(self, params: dict) -> dict:
        """FLOPs, bytes and items per call for ``params`` (None where not defined)."""
        return {"flops": None if self.flops is None else float(self.flops(**params)),
                "bytes": None if self.bytes is None else float(self.bytes(**params)),
                "items": None if self.items is None else float(self.items(**params))}

    def make(self, device: str, params: dict) -> Callable[[], Any]:
        """The timed callable for one case; raises NotImplementedError for unsupported cases."""
        if device.split(":")[0] not in self.devices:
            raise NotImplementedError(f"{self.full_name} is not defined for device {device!r}")
        return self.setup(device, **params)


def _import_file(path: Path):
    # a package (suites/ has __init__.py files): import by its dotted name, so that worker processes
    # (multiprocessing spawn, distributed ranks) can import the same module to unpickle its functions
    pkg_root = path.parent.parent
    if (pkg_root / "__init__.py").is_file() and (path.parent / "__init__.py").is_file():
        if str(pkg_root.parent) not in sys.path:
            sys.path.insert(0, str(pkg_root.parent))
        dotted = f"{pkg_root.name}.{path.parent.name}.{path.stem}"
        try:
            module = importlib.import_module(dotted)  # importlib: imported above with importlib.util
            if Path(module.__file__).resolve() == path.resolve():
                return module
        except ImportError:
            pass
    mod_name = "torchconform_bench_" + "_".join(path.with_suffix("").parts[-2:])
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    return module


def discover(root: str | Path = None) -> list[Benchmark]:
    """Every ``BENCHMARKS`` entry in ``<root>/*/bench_*.py`` (root defaults to the repo's ``suites``)."""
    root = Path(root) if root is not None else Path(__file__).resolve().parents[2] / "suites"
    found: list[Benchmark] = []
    for path in sorted(root.glob("*/bench_*.py")):
        module = _import_file(path)
        found.extend(getattr(module, "BENCHMARKS", []))
    names = [b.full_name for b in found]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"duplicate benchmark names: {', '.join(sorted(dupes))}")
    return found
