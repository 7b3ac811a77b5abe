"""torchconform: a conformance and benchmark suite for PyTorch builds.

One straight path: suites -> :mod:`harness.pytest_plugin` -> run record (:mod:`harness.record`) ->
:mod:`harness.compare` -> :mod:`harness.gate` -> :mod:`harness.report`, wired together only by
:mod:`harness.cli`. The core is plain Python and never imports pytest; the plugin is the thin adapter
the suites use. The module map and its rules: docs/architecture.md (kept by tests/test_layers.py).
"""

__version__ = "0.1.0"
