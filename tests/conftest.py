"""Fixtures for the harness's own tests."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
# Imported here, before any pytester run: pytester drops modules first imported inside an in-process
# run, and re-importing torch's C extension in the same process crashes.
import torch  # noqa: F401

import harness.dtypes  # noqa: F401
from harness import record

pytest_plugins = ["pytester"]

GOLDEN = Path(__file__).parent / "golden"


def make_record(tests=None, benchmarks=None, **overrides) -> dict:
    """A small valid run record for tests (fixed fingerprint, no torch import needed)."""
    fp = {"hostname": "host-a", "python": {"version": "3.11.7"}, "cpu": {"model": "Test CPU", "flags": ["avx2"]},
          "torch": {"version": "2.13.0+cpu", "git_version": "abc123", "cuda": None, "num_threads": 2},
          "gpus": [], "driver": None, "git": None}
    rec = record.new_record(fingerprint=fp, tier="default", devices=["cpu"], argv=["suites"])
    rec["complete"] = True
    rec["exit_status"] = 0
    rec["finished"] = rec["created"]
    rec["tests"] = tests if tests is not None else [
        {"nodeid": "suites/tensors/test_a.py::test_ok[cpu-float32]", "section": "tensors", "device": "cpu",
         "dtype": "float32", "status": "passed", "duration": 0.01, "message": None, "markers": [],
         "checks": {"count": 1, "failed": 0, "worst_ratio": 0.2,
                    "entries": [{"api": "torch.sum", "op": "reduction", "dtype": "float32", "rtol": 1e-5,
                                 "atol": 1e-5, "max_abs_err": 1e-6, "ratio": 0.2}]}},
        {"nodeid": "suites/nn/test_b.py::test_bad[cpu]", "section": "nn", "device": "cpu", "dtype": None,
         "status": "failed", "duration": 0.02, "message": "got 1.0, expected 2.0 [nn.Linear()]", "markers": []},
        {"nodeid": "suites/nn/test_b.py::test_skip", "section": "nn", "device": None, "dtype": None,
         "status": "skipped", "duration": 0.0, "message": "requires CUDA", "markers": []},
    ]
    rec["benchmarks"] = benchmarks or []
    rec.update(overrides)
    return copy.deepcopy(rec)


@pytest.fixture
def sample_record() -> dict:
    return make_record()


@pytest.fixture
def record_file(tmp_path, sample_record) -> Path:
    return record.save(sample_record, tmp_path / "run" / "record.json")


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path
