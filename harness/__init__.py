"""torchconform: a conformance and benchmark suite for PyTorch builds.

The core (record, fingerprint, tolerances, checks, statistics, comparison, reports) is plain
Python and never imports pytest; :mod:`harness.pytest_plugin` is the thin adapter the suites
use, and :mod:`harness.cli` the command-line face.
"""

__version__ = "0.1.0"
