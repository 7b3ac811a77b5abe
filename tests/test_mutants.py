"""The planted-bug catalogue stays usable: every mutant applies cleanly and names real targets inside the
sections that own it, the runner reads pytest's outcome right, and one mutant is caught end to end."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_mutant_applies():
    code = ("from tests.mutants.catalogue import MUTANTS\n"
            "for m in MUTANTS.values():\n    m.apply()\n"
            "print(len(MUTANTS))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip()) >= 100


def test_every_mutant_targets_its_sections():
    """``paths`` narrow a mutant's run but never leave the sections that own it, and each exists."""
    from tests.mutants.catalogue import MUTANTS

    for m in MUTANTS.values():
        assert m.sections and m.bug, m.name
        for s in m.sections:
            assert (ROOT / "suites" / s).is_dir(), f"{m.name}: no section {s}"
        for p in m.paths:
            file = p.split("::")[0]
            assert (ROOT / file).exists(), f"{m.name}: {p} does not exist"
            assert any(file == f"suites/{s}" or file.startswith(f"suites/{s}/") for s in m.sections), \
                f"{m.name}: {p} is outside its sections {m.sections}"
        assert m.targets(whole_sections=True) == tuple(f"suites/{s}" for s in m.sections)
        assert m.threads >= 1


def test_verdicts_from_junit(tmp_path):
    """The runner classifies by the first failure's exception: a failed check is a catch, another exception
    is 'errored', a clean run is 'missed', anything else (usage error, nothing collected) 'broken'."""
    from tests.mutants.run import _first_failure, _verdict

    junit = tmp_path / "j.xml"
    junit.write_text(
        '<testsuites><testsuite>'
        '<testcase classname="suites.ops.test_fft" name="test_a[cpu]"/>'
        '<testcase classname="suites.ops.test_fft" name="test_b[cpu]"><skipped message="slow"/></testcase>'
        '<testcase classname="suites.ops.test_fft" name="test_c[cpu]"><failure message="AssertionError: got 1, '
        'expected 2">trace</failure></testcase>'
        '</testsuite></testsuites>')
    node, message, counts = _first_failure(str(junit))
    assert node == "suites/ops/test_fft.py::test_c[cpu]"
    assert message.startswith("AssertionError: got 1")
    assert counts == {"tests": 3, "failures": 1, "errors": 0, "skipped": 1}
    assert _verdict(1, message, counts) == "caught"
    assert _verdict(1, "TypeError: bad() got an unexpected keyword argument", counts) == "errored"
    assert _verdict(0, "", counts) == "missed"
    assert _verdict(5, "", counts) == "broken"
    assert _verdict(-1, "", counts) == "timeout"


@pytest.mark.slow
def test_a_planted_bug_is_caught():
    from tests.mutants.run import run_one, run_target

    r = run_one("sum_ignores_keepdim", timeout=300)
    assert r["verdict"] == "caught", r
    clean = run_target(r["targets"], timeout=300)
    assert clean["rc"] == 0, clean
