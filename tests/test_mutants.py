"""The planted-bug catalogue stays usable: every mutant applies cleanly, and one is caught end to end."""
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
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip()) >= 30


@pytest.mark.slow
def test_a_planted_bug_is_caught():
    from tests.mutants.run import run_one

    r = run_one("sum_ignores_keepdim", ["tensors"], timeout=300)
    assert r["verdict"] == "caught", r
