"""The pytest plugin end to end (pytester): options, fixtures, markers, tiers, record."""
from __future__ import annotations

import json

import pytest

SUITE = '''
import pytest, torch, numpy as np
from harness.checks import assert_close

def test_device_dtype(device, dtype):
    assert_close("torch.ones", torch.ones(2, dtype=dtype, device=device), np.ones(2))

@pytest.mark.dtypes(torch.int32, torch.bool)
def test_marked_dtypes(dtype):
    assert torch.zeros(1, dtype=dtype).dtype == dtype

@pytest.mark.slow
def test_slow():
    pass

@pytest.mark.smoke
def test_smoke():
    pass

def test_fails():
    assert_close("torch.add", torch.tensor([1.0]), np.array([2.0]), args="1, 1")

@pytest.mark.xfail(reason="known", strict=False)
def test_xfail():
    assert False

@pytest.mark.xfail(reason="known", strict=False)
def test_xpass():
    pass

@pytest.mark.requires_cuda
def test_cuda(device):
    pass

@pytest.mark.min_devices(64)
def test_many():
    pass

def test_seed_a(seed):
    with open("seeds.txt", "a") as fh:
        fh.write(f"{seed} {torch.rand(1).item()} {np.random.rand()}\\n")
'''


@pytest.fixture
def suite(pytester):
    pytester.mkdir("suites")
    pytester.mkdir("suites/tensors")
    pytester.makepyfile(**{"suites/tensors/test_demo": SUITE})
    return pytester


def run(pytester, *args):
    return pytester.runpytest("-p", "harness.pytest_plugin", "-p", "no:cacheprovider", *args)


def test_ids_tiers_and_record(suite):
    rec_path = suite.path / "out" / "record.json"
    result = run(suite, "suites", "-v", "-rs", "--record", str(rec_path))
    result.stdout.fnmatch_lines([
        "*torchconform: torch *, devices cpu*, tier default*",
        "*test_device_dtype?cpu-float32? PASSED*",
        "*test_device_dtype?cpu-float64? PASSED*",
        "*test_marked_dtypes?int32? PASSED*",
        "*test_marked_dtypes?bool? PASSED*",
        "*torchconform: run record written to*",
        "*got 1.0, expected 2.0 at index (0,)*[[]torch.add(1, 1)[]]*",
        "*SKIPPED*slow test: runs at --tier full*",
        "*SKIPPED*needs at least 64 cuda devices*",
    ])
    rec = json.loads(rec_path.read_text())
    status = {t["nodeid"].split("::")[1]: t for t in rec["tests"]}
    assert status["test_device_dtype[cpu-float32]"]["status"] == "passed"
    assert status["test_device_dtype[cpu-float32]"]["device"] == "cpu"
    assert status["test_device_dtype[cpu-float32]"]["dtype"] == "float32"
    assert status["test_device_dtype[cpu-float32]"]["section"] == "tensors"
    assert status["test_device_dtype[cpu-float32]"]["checks"]["count"] == 1
    assert status["test_fails"]["status"] == "failed"
    assert "got 1.0, expected 2.0" in status["test_fails"]["message"]
    assert status["test_fails"]["checks"]["worst_ratio"] == "inf" or status["test_fails"]["checks"]["worst_ratio"] > 1
    assert status["test_xfail"]["status"] == "xfailed"
    assert status["test_xpass"]["status"] == "xpassed"
    assert status["test_slow"]["status"] == "skipped"
    assert "tier full" in status["test_slow"]["message"]
    assert status["test_cuda[nodevice]"]["status"] == "skipped"
    assert rec["complete"] is True and rec["exit_status"] == 1
    assert rec["tier"] == "default" and rec["devices"] == ["cpu"]
    assert rec["fingerprint"]["torch"]["version"]
    from harness import record

    record.load(rec_path)  # validates against the schema


def test_full_tier_runs_slow_and_smoke_tier_selects(suite):
    result = run(suite, "suites", "--tier", "full", "-k", "slow")
    result.assert_outcomes(passed=1, deselected=11)
    result = run(suite, "suites", "--tier", "smoke")
    result.assert_outcomes(passed=1, deselected=11)


def test_unknown_device_is_a_usage_error(suite):
    result = run(suite, "suites", "--device", "tpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown device 'tpu'*known: cpu, cuda, mps, xpu*"])


def test_unavailable_device_is_a_usage_error(suite):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the unavailable-device path needs a CPU-only machine")
    result = run(suite, "suites", "--device", "cuda")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*device 'cuda' was asked for*not available*"])


def test_seed_is_stable_per_test(suite):
    run(suite, "suites", "-k", "seed_a")
    run(suite, "suites", "-k", "seed_a")
    lines = (suite.path / "seeds.txt").read_text().splitlines()
    assert len(lines) == 2 and lines[0] == lines[1]


def test_interrupted_run_writes_incomplete_record(pytester):
    pytester.makepyfile(test_int="""
        def test_a():
            pass
        def test_b():
            raise KeyboardInterrupt
        def test_c():
            pass
    """)
    rec_path = pytester.path / "rec.json"
    reprec = pytester.inline_run("-p", "harness.pytest_plugin", "-p", "no:cacheprovider", "--record", str(rec_path),
                                 no_reraise_ctrlc=True)
    assert reprec.ret == pytest.ExitCode.INTERRUPTED
    rec = json.loads(rec_path.read_text())
    assert rec["complete"] is False
    assert [t["nodeid"].split("::")[1] for t in rec["tests"]][:1] == ["test_a"]


def test_shards_partition_the_suite(suite):
    import re

    counts = []
    for i in (1, 2, 3):
        result = run(suite, "suites", "--shard", f"{i}/3", "-q", "--co")
        m = re.search(r"(\d+)(?:/\d+)? tests? collected", "\n".join(result.outlines))
        counts.append(int(m.group(1)) if m else 0)
    total = run(suite, "suites", "-q", "--co")
    assert sum(counts) == int(re.search(r"(\d+) tests? collected", "\n".join(total.outlines)).group(1))
    bad = run(suite, "suites", "--shard", "4/3")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR


def test_manifest_marks_expected_failures(suite):
    """Manifest entries for this build turn a known failure into xfailed (with the reason) and report a
    listed test that passes as xpassed (IMPROVED), failing the run; entries for other builds do nothing."""
    policy = suite.path / "policy.toml"
    policy.write_text('''version = 1
[[expected_failure]]
test = "suites/tensors/test_demo.py::test_fails"
reason = "known bug in add"
[[expected_failure]]
test = "suites/tensors/test_demo.py::test_smoke"
reason = "said to fail, but passes"
[[expected_failure]]
test = "suites/tensors/test_demo.py::test_seed_a"
torch = "<1.0"
reason = "applies to an old build only"
''')
    rec_path = suite.path / "rec.json"
    result = run(suite, "suites", "--policy", str(policy), "--record", str(rec_path), "-rxX")
    result.stdout.fnmatch_lines(["*XFAIL*test_fails*known bug in add*"])
    assert result.ret == 1
    rec = json.loads(rec_path.read_text())
    status = {t["nodeid"].split("::")[1]: t for t in rec["tests"]}
    assert status["test_fails"]["status"] == "xfailed"
    assert status["test_smoke"]["status"] == "xpassed"
    assert "unexpectedly passed" in status["test_smoke"]["message"]
    assert status["test_seed_a"]["status"] == "passed"
    bad = run(suite, "suites", "--policy", str(suite.path / "missing.toml"))
    assert bad.ret == pytest.ExitCode.USAGE_ERROR


def test_record_says_which_manifest_the_run_applied(suite):
    """The manifest is applied once, at collection: the record carries the entries that applied to this
    build and, on each matched test, which one (a comparison reads this instead of applying a policy again)."""
    policy = suite.path / "policy.toml"
    policy.write_text('''version = 1
[[expected_failure]]
test = "suites/tensors/test_demo.py::test_fails"
reason = "known bug in add"
[[expected_failure]]
test = "suites/tensors/test_demo.py::test_seed_a"
torch = "<1.0"
reason = "an old build only"
''')
    rec_path = suite.path / "rec.json"
    run(suite, "suites", "--policy", str(policy), "--record", str(rec_path))
    from harness import manifest, record

    rec = record.load(rec_path)
    m = rec["manifest"]
    assert m["source"] == str(policy) and m["backend"] == "cpu" and m["inactive"] == 1
    assert [e["test"] for e in m["active"]] == ["suites/tensors/test_demo.py::test_fails"]
    by = {t["nodeid"].split("::")[1]: t for t in rec["tests"]}
    assert by["test_fails"]["expectation"] == {"id": 0, "reason": "known bug in add",
                                               "entry": "suites/tensors/test_demo.py::test_fails", "issue": None,
                                               "strict": True}
    assert "expectation" not in by["test_smoke"]
    assert manifest.from_record(rec).nodeids(manifest.EXPECTED) == ["suites/tensors/test_demo.py::test_fails"]


def test_sigterm_ends_the_session_with_a_partial_record(pytester):
    """With --record, SIGTERM (a CI runner's cancel) ends the run like Ctrl-C: the record is written."""
    pytester.makepyfile(test_term="""
        import os, signal
        def test_a():
            pass
        def test_b():
            os.kill(os.getpid(), signal.SIGTERM)
        def test_c():
            pass
    """)
    rec_path = pytester.path / "rec.json"
    reprec = pytester.inline_run("-p", "harness.pytest_plugin", "-p", "no:cacheprovider", "--record", str(rec_path),
                                 no_reraise_ctrlc=True)
    assert reprec.ret == pytest.ExitCode.INTERRUPTED
    rec = json.loads(rec_path.read_text())
    assert rec["complete"] is False and [t["nodeid"].split("::")[1] for t in rec["tests"]][:1] == ["test_a"]
    import signal

    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored after the session
