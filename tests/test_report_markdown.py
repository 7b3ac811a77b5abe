"""Markdown report: a compact GitHub step summary, under 1 MiB, escaped, details folded."""
from __future__ import annotations

import json

from harness import gate, policy
from harness.report import markdown, model
from tests.conftest import GOLDEN, make_record


def golden(name):
    return json.loads((GOLDEN / f"{name}.json").read_text())


def test_comparison_summary():
    m = model.build(golden("candidate"), gate.evaluate(golden("baseline"), golden("candidate"),
                                                       policy.load(GOLDEN / "policy.toml")), plots=False)
    text = markdown.render(m)
    assert text.splitlines()[2].startswith("❌ **GATE FAIL: 2 new failures")
    assert "**Blocking:**" in text and "**Warnings:**" in text
    assert "<details open><summary>New failures (2)</summary>" in text
    assert "| New failures | 2 |" in text and "| Tests that vanished | 1 |" in text
    assert "## Precision drift (3)" in text
    assert "| <code>tensors.matmul[cpu,n=512]</code> | regression | +12.3% |" in text
    assert "| **torch** | 2.13.0+cpu | 2.12.0+cpu |" in text  # environment differences up front
    assert text.count("<details") == text.count("</details>")


def test_plain_summary():
    text = markdown.render(model.build(make_record(), plots=False))
    assert "**Verdict: FAIL**" in text and "## Environment" in text and "What changed" not in text


def test_escaping():
    hostile = golden("hostile")
    text = markdown.render(model.build(hostile, gate.evaluate(golden("baseline"), hostile, policy.default()), plots=False))
    assert "<script" not in text and "<img" not in text
    assert "&lt;script&gt;" in text
    assert "</details> <img" not in text
    assert text.count("<details") == text.count("</details>")


def _many_failures(n, msg_len):
    base = make_record(tests=[])
    cand = make_record(tests=[{"nodeid": f"suites/s{i % 40}/test_{i}.py::test_case_with_a_long_name[cpu-float32-{i}]",
                               "section": f"s{i % 40}", "device": "cpu", "dtype": f"d{i % 50}", "status": "failed",
                               "message": "AssertionError: " + "x" * msg_len} for i in range(n)])
    return model.build(cand, gate.evaluate(base, cand, policy.default()), plots=False)


def test_size_for_a_large_run():
    """3000 new failures with long messages: well under GitHub's 1 MiB step-summary limit."""
    text = markdown.render(_many_failures(3000, 3000))
    assert len(text.encode("utf-8")) < markdown.LIMIT_BYTES
    assert "GATE FAIL: 3000 new failures" in text and "… and 2800 more" in text
    assert text.count("<details") == text.count("</details>")


def test_size_limit_shrinks_lists(monkeypatch):
    """Over the limit, the renderer folds lists shorter until it fits, keeping the verdict on top."""
    m = _many_failures(1500, 200)
    full = markdown.render(m)
    monkeypatch.setattr(markdown, "LIMIT_BYTES", len(full.encode()) // 4)
    text = markdown.render(m)
    assert len(text.encode("utf-8")) <= markdown.LIMIT_BYTES
    assert "GATE FAIL: 1500 new failures" in text and text.count("<details") == text.count("</details>")
