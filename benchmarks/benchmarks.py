"""asv benchmarks: generated at import time from the torchconform definitions in
suites/<section>/bench_*.py (see harness/bench/asv_adapter.py); nothing is defined twice here.

TORCHCONFORM_SUITES may point at another folder of definitions (the tests use a tiny one).
"""
import os as _os
import sys as _sys
from pathlib import Path as _Path

_ROOT = _Path(__file__).resolve().parent.parent
# existing-environment config: this checkout's harness. The virtualenv config sets
# TORCHCONFORM_ASV_INSTALLED=1 so the harness built from the commit under test is used instead.
if not _os.environ.get("TORCHCONFORM_ASV_INSTALLED"):
    _sys.path.insert(0, str(_ROOT))

from harness.bench.asv_adapter import build  # noqa: E402

_suites = _os.environ.get("TORCHCONFORM_SUITES") or (_ROOT / "suites")
globals().update(build(__name__, suites=_suites))
