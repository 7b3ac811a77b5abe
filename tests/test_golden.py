"""Every output of the compare/gate/report/history path, byte for byte against the captured outputs in
tests/golden/expected/ (made by ``python -m tests.golden.capture``; the inputs of the issue-15 scenarios
by ``python -m tests.golden.make_v2``).

History of the captures (each a deliberate, documented change; the diff of expected/ in the commit
shows every byte of it):

* Before issue 14: the first capture. Issue 14 kept it and listed its differences (statistics module
  renamed, policy key vanished_or_skipped, INCOMPLETE banners, the true median, bench pair under the
  policy).
* Issue 15 (this capture), intended changes:
  1. comparison.json: every benchmark row gains ``signal`` (what decided it: instructions or wall),
     ``wall_verdict``, ``raw_ratio``, ``normalised_by``, ``between_run``, ``undetectable``,
     ``instructions`` and ``counters``; the comparison gains ``compared`` and the gate
     ``nothing_compared``. (Issue 14's own differences are now simply part of the capture.)
  2. baseline.json and candidate.json are schema-version-2 records measured in 4 rounds: the rounds
     are their between-run evidence, so the golden matmul regression still gates, its interval now
     widened by the rounds' spread ([CI +11.9%, +12.7%], was [CI +12.1%, +12.5%]).
  3. The reports show both signals: the performance tables gain "by", "instructions" and "counters
     changed" columns and a note on what each signal can and cannot see; JUnit benchmark cases say
     the signal (and the advisory reason); a record's own benchmark table shows instruction counts and
     counters where it has them.
  4. A report over several records lists the change-points of the history (report-history: two records
     are "insufficient data").
  5. report-hostile: the hostile record shares no test and no benchmark with the baseline, which is now
     a blocking reason ("nothing was compared").
  6. New scenarios: compare-v1 (the former version-1 baseline/candidate: read as version 2, no
     between-run evidence, the matmul regression only advises), compare-signals (normalised figures, an
     instruction-count regression, a counter change), gate-empty (exit 3), history (a step found).
* Issue 12 (coverage ledger), one new scenario and nothing else recaptured: records without a
  ``"coverage"`` entry render byte for byte as before. compare-coverage compares
  ``coverage-baseline.json`` with ``coverage-candidate.json`` (``python -m tests.golden.make_coverage``:
  the golden baseline/candidate records with a made-up ledger each): the reports gain a Coverage section
  (figures per kind with the baseline's, gained/lost, the partial-ledger banner, the advisory lists of
  names new in the candidate torch and untested and of names lost, per-section figures, the uncovered
  names) and comparison.json an advisory ``coverage`` (:func:`harness.coverage.diff`); the gate's line
  and exit status are those of the compare scenario (coverage never decides the gate).

The embedded PNG plots are compared byte for byte too: matplotlib's Agg output is deterministic for one
matplotlib version. Under another version than the capture's (expected/misc/matplotlib-version.txt)
the plot payloads are masked on both sides, and only the rest of the HTML must match.
"""
from __future__ import annotations

import json
import re

import pytest

from tests.golden import scenarios


def _mask_plots(text: str) -> str:
    return re.sub(r'src="data:image/png;base64,[^"]*"', 'src="data:image/png;base64,(masked)"', text)


def _same_matplotlib() -> bool:
    try:
        import matplotlib
    except ImportError:
        return True  # no plots drawn: nothing to mask (a scenario with plots then fails, as it should)
    return matplotlib.__version__ == (scenarios.EXPECTED / "misc" / "matplotlib-version.txt").read_text().strip()


@pytest.mark.parametrize("name", list(scenarios.SCENARIOS))
def test_scenario_outputs_unchanged(name, tmp_path):
    got = scenarios.run_cli(scenarios.SCENARIOS[name], tmp_path / "out")
    expected = {p.name: p.read_text(encoding="utf-8") for p in (scenarios.EXPECTED / name).iterdir()}
    assert set(got) == set(expected)
    if "index.html" in got and not _same_matplotlib():
        got["index.html"], expected["index.html"] = _mask_plots(got["index.html"]), _mask_plots(expected["index.html"])
    for fname in sorted(expected):
        assert got[fname] == expected[fname], f"{name}/{fname} differs from the golden output"


def test_the_issue_15_scenarios_show_what_they_are_for():
    """The new captures say what they were made to show (a capture of a wrong output would not)."""
    exp = scenarios.EXPECTED
    v1 = json.loads((exp / "compare-v1" / "comparison.json").read_text())
    mm = next(r for r in v1["benchmarks"] if r["name"] == "tensors.matmul[cpu,n=512]")
    assert mm["verdict"] == "regression" and not mm["gating"] and mm["advisory_reason"] == "no between-run evidence"
    sig = json.loads((exp / "compare-signals" / "comparison.json").read_text())
    rows = {r["name"].split("[")[0]: r for r in sig["benchmarks"]}
    assert rows["tensors.softmax"]["signal"] == "instructions" and rows["tensors.softmax"]["gating"]
    assert rows["tensors.add"]["normalised_by"] == "gbps" and rows["tensors.add"]["raw_ratio"] > 1.7
    assert rows["tensors.add"]["verdict"] == "unchanged"
    assert rows["tensors.softmax"]["counters"]["changed"] == ["bytes_allocated", "allocations"]
    assert (exp / "gate-empty" / "exit_status").read_text() == "3\n"
    assert "step +11.4%" in (exp / "history" / "stdout").read_text()


def test_the_coverage_scenario_shows_what_it_is_for():
    """compare-coverage: the new-and-untested and lost names reach comparison.json and the reports, and the
    gate is the one of the same records without coverage (advisory)."""
    exp = scenarios.EXPECTED
    cov = json.loads((exp / "compare-coverage" / "comparison.json").read_text())["coverage"]
    assert cov["advisory"] is True
    assert cov["kinds"]["callables"]["new_untested"] == ["torch.fft.hfft2", "torch.special.xlog1py"]
    assert cov["kinds"]["callables"]["lost"] == ["torch.sub"] and cov["kinds"]["nn_modules"]["lost"] == ["torch.nn.ReLU"]
    for fname in ("summary.md", "index.html"):
        text = (exp / "compare-coverage" / fname).read_text()
        assert "Coverage" in text and "<code>torch.special.xlog1py</code>" in text and "Partial" in text
    assert (exp / "compare-coverage" / "exit_status").read_text() == (exp / "compare" / "exit_status").read_text()
    gate_line = lambda name: (exp / name / "stdout").read_text().splitlines()[-1]  # noqa: E731
    assert gate_line("compare-coverage") == gate_line("compare")
    for name in scenarios.SCENARIOS:
        if name != "compare-coverage" and (exp / name / "summary.md").exists():
            assert "## Coverage" not in (exp / name / "summary.md").read_text()


@pytest.mark.parametrize("by_device", [False, True])
def test_gpu_summary_unchanged(by_device):
    fname = "summary-by-device.txt" if by_device else "summary.txt"
    assert scenarios.summary_table(by_device) == (scenarios.EXPECTED / "misc" / fname).read_text()


def test_bench_pair_verdicts_follow_the_policy():
    """bench pair's lines for the golden pair records under the built-in default policy (data.* is
    judged at its advisory 15% rule: the +9.8% data.loader row is no regression there)."""
    want = (scenarios.EXPECTED / "misc" / "pair-verdicts.txt").read_text()
    assert "data.loader" not in want and want.endswith("1 confirmed gating regression(s)\n")
    assert scenarios.pair_verdicts() == want
