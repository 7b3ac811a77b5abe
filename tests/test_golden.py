"""Every output of the compare/gate/report path, byte for byte against the outputs captured before the
issue-14 refactor (tests/golden/expected/, made by ``python -m tests.golden.capture``).

The only differences allowed are the documented ones below. Each is applied to the NEW output to turn
it back into the old form, and each must actually occur where it is expected, so a rule cannot hide a
change it was not written for:

1. comparison.json gains ``policy.vanished_or_skipped`` (issue 13's policy key; the golden policy sets
   "advise", the old behaviour, so no verdict changes), ``detectable`` on every benchmark row (the
   statistics' answer, formerly folded into ``gating``) and ``sections`` (the baseline's per-section
   counts: the report reads them from the comparison, never from the baseline record).
2. The benchmark statistics are named ``harness.bench.significance`` (was ``harness.bench.compare``) in
   comparison.json, index.html and summary.md.
3. index.html titles unexpected passes "Unexpected passes of expected failures (update the manifest)",
   the one title of that change kind every renderer now shares (was "... — update the manifest").
4. An interrupted run's reports say INCOMPLETE (a banner in HTML and Markdown, an error case in JUnit),
   and a benchmark's median is the true median (mean of the middle two samples), not the upper one:
   in report-partial (4 samples) 0.00115 s, was 0.0012 s.
5. ``bench pair`` follows the policy: under the built-in default, ``data.*`` benchmarks are judged at
   the ``data.*`` rule's 15 % threshold (advisory) instead of bench --pair's own 5 %: the golden
   data.loader row (+9.8 %) is no longer a regression, so 1 confirmed gating regression instead of 2.

The embedded PNG plots are compared byte for byte too: matplotlib's Agg output is deterministic for one
matplotlib version. Under another version than the capture's (expected/misc/matplotlib-version.txt)
the plot payloads are masked on both sides, and only the rest of the HTML must match.
"""
from __future__ import annotations

import json
import re

import pytest

from tests.golden import scenarios

OLD_STATS, NEW_STATS = "harness.bench.compare", "harness.bench.significance"
OLD_IMPROVED = "Unexpected passes of expected failures — update the manifest"
NEW_IMPROVED = "Unexpected passes of expected failures (update the manifest)"


def _swap(text: str, new: str, old: str, *, expect: bool) -> str:
    assert (new in text) is expect, f"documented difference {new!r} {'missing' if expect else 'unexpected'}"
    return text.replace(new, old)


def _old_comparison(text: str, *, benchmarks: bool) -> str:
    data = json.loads(text)
    assert data["policy"].pop("vanished_or_skipped") == "advise"
    assert set(data.pop("sections")) == {"baseline"}
    for row in data["benchmarks"]:
        assert isinstance(row.pop("detectable"), bool)
    assert (data["bench_stats"] == NEW_STATS) is benchmarks
    if benchmarks:
        data["bench_stats"] = OLD_STATS
    return json.dumps(data, indent=1, default=str) + "\n"


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
    cmp = json.loads(got["comparison.json"]) if "comparison.json" in got else None
    with_benchmarks = bool(cmp and cmp["benchmarks"])
    if cmp is not None:
        got["comparison.json"] = _old_comparison(got["comparison.json"], benchmarks=with_benchmarks)
        got["index.html"] = _swap(got["index.html"], NEW_STATS, OLD_STATS, expect=with_benchmarks)
        got["summary.md"] = _swap(got["summary.md"], NEW_STATS, OLD_STATS, expect=with_benchmarks)
        got["index.html"] = _swap(got["index.html"], NEW_IMPROVED, OLD_IMPROVED,
                                  expect=bool(cmp["counts"].get("improved")))
    if name == "report-partial":
        got["index.html"] = _swap(got["index.html"], '<p class="note"><span class="verdict INCOMPLETE">INCOMPLETE'
                                  '</span> the run was interrupted or crashed: 7 tests recorded; the others never '
                                  'ran.</p>\n', "", expect=True)
        got["index.html"] = _swap(got["index.html"], '<td class="n">0.00115 s</td>', '<td class="n">0.0012 s</td>',
                                  expect=True)
        got["summary.md"] = _swap(got["summary.md"], "\n⚠️ **INCOMPLETE**: the run was interrupted or crashed; "
                                  "7 tests recorded.\n", "", expect=True)
        got["junit.xml"] = _swap(got["junit.xml"], '  <testsuite name="torchconform.run" tests="1" failures="0" '
                                 'errors="1" skipped="0" time="0">\n    <testcase classname="torchconform.run" '
                                 'name="complete" time="0">\n      <error message="INCOMPLETE: the run was '
                                 'interrupted or crashed; 7 tests recorded" />\n    </testcase>\n  </testsuite>\n',
                                 "", expect=True)
    if "index.html" in got and not _same_matplotlib():
        got["index.html"], expected["index.html"] = _mask_plots(got["index.html"]), _mask_plots(expected["index.html"])
    for fname in sorted(expected):
        assert got[fname] == expected[fname], f"{name}/{fname} differs from the golden output"


@pytest.mark.parametrize("by_device", [False, True])
def test_gpu_summary_unchanged(by_device):
    fname = "summary-by-device.txt" if by_device else "summary.txt"
    assert scenarios.summary_table(by_device) == (scenarios.EXPECTED / "misc" / fname).read_text()


def test_bench_pair_verdicts_follow_the_policy():
    """Identical to bench --pair's old verdicts except the documented data.* row (difference 5)."""
    old = (scenarios.EXPECTED / "misc" / "pair-verdicts.txt").read_text().splitlines(keepends=True)
    data_line = next(line for line in old if "data.loader" in line)
    assert data_line.startswith("regression ")
    want = [line for line in old if line is not data_line]
    assert want[-1] == "2 confirmed gating regression(s)\n"
    want[-1] = "1 confirmed gating regression(s)\n"
    assert scenarios.pair_verdicts() == "".join(want)
