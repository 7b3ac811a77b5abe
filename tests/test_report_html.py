"""HTML report: self-contained, escaped, comparison sections, plots (or a note when matplotlib is missing)."""
from __future__ import annotations

import json
import re

import pytest

from harness import gate, policy
from harness.cli.records import write_reports
from harness.report import html, model
from tests.conftest import GOLDEN, make_record


def golden(name):
    return json.loads((GOLDEN / f"{name}.json").read_text())


def _cmp(cand="candidate", pol=GOLDEN / "policy.toml"):
    return gate.evaluate(golden("baseline"), golden(cand), policy.load(pol))


def _comparison(plots):
    m = model.build(golden("candidate"), _cmp(), [golden("baseline")], plots=plots)
    return m, html.render(m)


@pytest.fixture(scope="module")
def comparison_html():
    return _comparison(plots=False)


def test_plain_report_still_works(tmp_path):
    """`make report` path: the reports of one record, without a baseline."""
    paths = write_reports(make_record(), tmp_path, plots=False)
    assert set(paths) == {"html", "markdown", "junit"}
    text = paths["html"].read_text()
    assert "Conformance by section" in text and "What changed" not in text and "FAIL" in text


def test_comparison_sections(comparison_html):
    m, text = comparison_html
    assert m["verdict"] == "FAIL"
    for needle in ("GATE FAIL: 2 new failures", "What changed", "New failures", "Unexpected passes",
                   "Tests that vanished", "Tests that appeared", "Stale manifest entries", "Precision drift",
                   "Performance (3 benchmarks)", "History (2 runs)", "baseline passed", "bfloat16 linear accumulates"):
        assert needle in text, needle
    # denominators visible
    assert re.search(r">3/5<", text)
    # environment side by side, differing rows highlighted
    assert re.search(r'<tr class="diff"><th>torch</th><td>2\.13\.0\+cpu</td><td>2\.12\.0\+cpu</td>', text)
    assert '<tr class=""><th>Python</th>' in text


def test_self_contained_with_plots():
    """The one test that draws (matplotlib is slow to import): both plots embedded as data URIs."""
    pytest.importorskip("matplotlib", reason="matplotlib not installed: the report says plots are unavailable")
    m, text = _comparison(plots=True)
    if m["plots"]["unavailable"]:
        pytest.skip(m["plots"]["unavailable"])
    assert text.count('src="data:image/png;base64,') == 2  # ratio plot + history plot
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing loaded from elsewhere
    assert "<script" not in text.lower()


def test_plots_unavailable(monkeypatch):
    from harness.report import plots

    monkeypatch.setattr(plots, "unavailable", lambda: "plots unavailable: matplotlib cannot be imported (test)")
    m = model.build(golden("candidate"), _cmp())
    text = html.render(m)
    assert "plots unavailable: matplotlib cannot be imported (test)" in text and "data:image/png" not in text


def test_hostile_strings_are_escaped():
    """`<script>` in node id, message, hostname, label and benchmark name is shown as text, never run."""
    hostile = golden("hostile")
    m = model.build(hostile, gate.evaluate(golden("baseline"), hostile, policy.default()), [golden("baseline")],
                    plots=False)
    text = html.render(m)
    assert "<script" not in text.lower()
    assert "<img" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text              # node id
    assert "&lt;script&gt;alert(&#39;msg&#39;)&lt;/script&gt;" in text   # message
    assert "&lt;script&gt;alert(&#39;host&#39;)&lt;/script&gt;" in text  # hostname
    assert "&lt;script&gt;alert(&#39;label&#39;)&lt;/script&gt;" in text  # label
    assert "tensors.&lt;script&gt;evil&lt;/script&gt;[cpu]" in text      # benchmark name
    plain = html.render(model.build(hostile, plots=False))
    assert "<script" not in plain.lower()


def test_history_from_several_records(tmp_path, capsys):
    from harness.cli import main

    paths = [str(GOLDEN / f"{n}.json") for n in ("baseline", "candidate")]
    assert main(["report", *paths, "--out", str(tmp_path), "--no-plots"]) == 0
    text = (tmp_path / "index.html").read_text()
    assert "History (2 runs)" in text and "torchconform report: torch 2.13.0+cpu" in text
    h = model.history_model([golden("candidate"), golden("baseline")])
    assert [r["label"] for r in h["runs"]] == ["baseline", "candidate"]  # time order
    assert h["series"]["tensors.matmul[cpu,n=512]"][1]["median"] == pytest.approx(1.123e-3, rel=1e-2)
    assert main(["report", paths[1], "--baseline", paths[0], "--policy", str(GOLDEN / "policy.toml"),
                 "--out", str(tmp_path / "b"), "--no-plots"]) == 0
    assert "GATE FAIL" in (tmp_path / "b" / "index.html").read_text()
