"""JUnit XML report: well-formed, manifest outcomes mapped (expected → skipped, improved → failure),
benchmark and gate suites."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from harness import gate, policy
from harness.report import junit, model
from tests.conftest import GOLDEN, make_record


def golden(name):
    return json.loads((GOLDEN / f"{name}.json").read_text())


def _cases(root):
    return {c.get("name"): c for c in root.iter("testcase")}


def test_plain_junit():
    root = ET.fromstring(junit.render(model.build(make_record(), plots=False)))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert suites["nn"].get("failures") == "1" and suites["nn"].get("skipped") == "1"
    assert _cases(root)["test_bad[cpu]"].find("failure").get("message").startswith("got 1.0")


def test_comparison_junit():
    m = model.build(golden("candidate"), gate.evaluate(golden("baseline"), golden("candidate"),
                                                       policy.load(GOLDEN / "policy.toml")), plots=False)
    root = ET.fromstring(junit.render(m))
    cases = _cases(root)
    exp = cases["test_allreduce_sum[cpu]"]
    assert exp.find("failure") is None and "gloo times out" in exp.find("skipped").get("message")
    imp = cases["test_linear_bf16[cpu-bfloat16]"]
    assert "unexpected pass" in imp.find("failure").get("message")
    assert cases["test_matmul[cpu-float32]"].find("failure") is not None
    assert cases["tensors.matmul[cpu,n=512]"].find("failure") is not None
    assert cases["nn.linear[cpu,batch=64]"].find("failure") is None
    gate_case = cases["gate"].find("failure")
    assert gate_case.get("message").startswith("GATE FAIL:")
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert suites["distributed"].get("failures") == "0" and suites["distributed"].get("skipped") == "1"
    assert suites["nn"].get("failures") == "2"  # bias (new failure) + bf16 (unexpected pass)


def test_hostile_junit_is_well_formed():
    rec = golden("hostile")
    rec["tests"][0]["message"] += " \x00\x1b[31m control chars"
    root = ET.fromstring(junit.render(model.build(rec, plots=False)))
    assert any("<script>" in c.get("name") for c in root.iter("testcase"))  # text in XML, escaped by the writer
