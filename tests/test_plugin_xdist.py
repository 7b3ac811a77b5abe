"""The plugin under pytest-xdist (``-n 2``): workers send their reports to the controller, which alone
writes the record, so what a report carries for the record must be plain JSON types. Before issue 14 a
numpy.float64 in a check log killed a worker (execnet cannot serialise it: INTERNALERROR) and the
record lost every test after it."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("xdist", reason="pytest-xdist is not installed (pip install torchconform[shard])")

SUITE = '''
import pytest, torch, numpy as np
from harness.checks import assert_close

@pytest.mark.parametrize("n", range(4))
def test_close(device, dtype, n):
    # a tolerance computed with NumPy (a numpy.float64) lands in the check log as is
    assert_close("torch.ones", torch.ones(n + 1, dtype=dtype, device=device), np.ones(n + 1),
                 rtol=np.float64(1e-5) * (n + 1))

def test_fails():
    assert_close("torch.add", torch.tensor([1.0]), np.array([2.0]), rtol=np.float64(1e-6))

def test_known_bug():
    assert_close("torch.sub", torch.tensor([1.0]), np.array([3.0]))

@pytest.mark.slow
def test_slow():
    pass

@pytest.mark.xfail(reason="marked in the suite", strict=True)
def test_marked_xfail():
    assert False
'''

POLICY = '''version = 1
[[expected_failure]]
test = "suites/tensors/test_demo.py::test_known_bug"
reason = "a known bug, in the manifest"
[[expected_failure]]
test = "suites/nowhere/*"
reason = "stale on purpose"
'''


def _normalised(rec: dict) -> dict:
    """What must agree between a serial and a parallel run: everything but ids, times and argv."""
    rec = dict(rec)
    for key in ("run_id", "created", "finished", "argv", "fingerprint"):
        rec.pop(key)
    rec["tests"] = sorted(({k: v for k, v in t.items() if k != "duration"} for t in rec["tests"]),
                          key=lambda t: t["nodeid"])
    return rec


def test_parallel_record_equals_serial(pytester, monkeypatch):
    import os

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    pytester.mkdir("suites")
    pytester.mkdir("suites/tensors")
    pytester.makepyfile(**{"suites/tensors/test_demo": SUITE})
    (pytester.path / "policy.toml").write_text(POLICY)
    recs = {}
    for mode, extra in (("serial", []), ("parallel", ["-n", "2"])):
        path = pytester.path / f"{mode}.json"
        result = pytester.runpytest("-p", "harness.pytest_plugin", "-p", "no:cacheprovider", "suites",
                                    "--policy", str(pytester.path / "policy.toml"), "--record", str(path), *extra)
        assert result.ret == 1, result.outlines[-20:]  # test_fails fails; nothing else goes wrong
        assert not [line for line in result.outlines if "INTERNALERROR" in line]
        recs[mode] = json.loads(path.read_text())
    from harness import record

    for rec in recs.values():
        record.validate(rec)
        assert rec["complete"] is True and rec["exit_status"] == 1
        assert len(rec["tests"]) == 12  # 4 x 2 dtypes + 4: every test, in both
    par, ser = _normalised(recs["parallel"]), _normalised(recs["serial"])
    for tp, ts in zip(par.pop("tests"), ser.pop("tests")):
        assert tp == ts, {k: (tp.get(k), ts.get(k)) for k in set(tp) | set(ts) if tp.get(k) != ts.get(k)}
    assert par == ser
    by = {t["nodeid"].split("::")[1]: t for t in recs["parallel"]["tests"]}
    assert by["test_close[cpu-float32-3]"]["checks"]["entries"][0]["rtol"] == pytest.approx(4e-5)
    assert by["test_known_bug"]["status"] == "xfailed" and by["test_known_bug"]["expectation"]["id"] == 0
    assert by["test_marked_xfail"]["status"] == "xfailed" and "expectation" not in by["test_marked_xfail"]
    assert recs["parallel"]["manifest"]["active"][1]["test"] == "suites/nowhere/*"
