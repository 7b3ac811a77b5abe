"""The expectation manifest and the policy file: version matching, globs, EXPECTED / IMPROVED /
stale sorting, and the errors a malformed file gives."""
from __future__ import annotations

import copy
import json

import pytest

from harness import policy
from harness.manifest import (EXPECTED, IMPROVED, SKIPPED, Expectation, ManifestError, backend_of, evaluate,
                              glob_match, parse_version, version_matches)
from tests.conftest import GOLDEN


@pytest.mark.parametrize("spec,version,expected", [
    ("<2.8", "2.7.1", True),
    ("<2.8", "2.8.0", False),
    ("<2.8", "2.8.0.dev20250601+cu128", False),  # PEP 440: <V excludes V's own pre-releases and nightlies
    ("<2.8", "2.7.2.dev20250101", True),
    ("2.8.*", "2.8.0.dev20250601+cu128", True),  # every 2.8 build, nightlies included
    ("<2.8.0.dev0", "2.8.0.dev20250601", False),  # before any 2.8 build
    ("<2.8.0.dev0", "2.7.1+cu126", True),
    ("<2.10", "2.9.1", True),                    # numeric, not lexicographic
    ("<2.10", "2.10.0", False),
    ("2.13.*", "2.13.0+cpu", True),
    ("2.13.*", "2.1.3", False),
    ("2.8.*", "2.8.0a0+gitabc1234", True),
    (">=2.6,<2.8", "2.6.0", True),
    (">=2.6,<2.8", "2.8.1", False),
    ("==2.7.*", "2.7.1+cu126", True),
    ("!=2.7.*", "2.7.0", False),
    ("!=2.7.*", "2.6.0", True),
    ("~=2.7.1", "2.7.5", True),
    ("~=2.7.1", "2.8.0", False),
    ("~=2.7.1", "2.7.0", False),
    ("2.7.1", "2.7.1+cpu", True),
    ("==2.8", "2.8.0", True),
    ("<=2.13", "2.13.0+cpu", True),
    (">2.13.0a0", "2.13.0", True),
    (">2.13.0rc1", "2.13.0rc2", True),
    ("*", None, True),
    ("", "2.1.0", True),
    ("<2.8", None, False),
])
def test_version_matches(spec, version, expected):
    """PEP 440 specifiers (packaging) and globs over torch versions, local labels ignored (catches
    lexicographic compares and a hand-rolled ordering that disagrees with pip's)."""
    assert version_matches(spec, version) is expected


def test_version_order():
    order = ["2.8.0.dev20250101", "2.8.0a0", "2.8.0b1", "2.8.0rc1", "2.8.0", "2.8.0.post1", "2.8.1", "2.10.0"]
    assert sorted(order, key=parse_version) == order


@pytest.mark.parametrize("spec", [">>2", "<2.8.*", "~=2", "<banana"])
def test_bad_specifier(spec):
    with pytest.raises(ManifestError):
        version_matches(spec, "2.8.0")


def test_glob_is_literal_except_star():
    """Node ids are full of [..]: fnmatch would read them as character classes."""
    nid = "suites/nn/test_conv.py::test_conv2d[cuda-float16]"
    assert glob_match("suites/nn/test_conv.py::test_conv2d[cuda-*]", nid)
    assert glob_match("suites/nn/*::test_conv?d[*]", nid)
    assert not glob_match("suites/nn/test_conv.py::test_conv2d[cpu-*]", nid)
    assert not glob_match("suites/nn/test_conv.py::test_conv2d[cuda]", nid)
    assert glob_match("*", None) and not glob_match("cuda", None)


def test_backend_of():
    assert backend_of({"torch": {"cuda": "12.8"}}) == "cuda12.8"
    assert backend_of({"torch": {"cuda": None, "hip": "6.3.42131-fa1d09cbd"}}) == "rocm6.3"
    assert backend_of({"torch": {"version": "2.13.0+cpu"}}) == "cpu"
    assert backend_of({}) == "cpu"


def _rec(tests, version="2.13.0+cpu", cuda=None):
    return {"fingerprint": {"torch": {"version": version, "cuda": cuda}}, "tests": tests}


def _t(nodeid, status, device="cpu", dtype=None):
    return {"nodeid": nodeid, "status": status, "device": device, "dtype": dtype}


def test_evaluate_expected_improved_skipped_stale_inactive():
    entries = [
        Expectation(test="a.py::test_fails*", reason="known"),
        Expectation(test="a.py::test_fixed", reason="was broken"),
        Expectation(test="a.py::test_skip", reason="x"),
        Expectation(test="a.py::test_gone", reason="stale"),
        Expectation(test="a.py::test_fails*", reason="cuda only", backend="cuda*"),
        Expectation(test="a.py::test_old", reason="old torch", torch="<2.8"),
        Expectation(test="a.py::test_flaky", reason="flaky", strict=False),
    ]
    rec = _rec([_t("a.py::test_fails[1]", "failed"), _t("a.py::test_fails[2]", "error"),
                _t("a.py::test_fixed", "passed"), _t("a.py::test_skip", "skipped"), _t("a.py::test_old", "passed"),
                _t("a.py::test_flaky", "passed"), _t("a.py::test_other", "failed")])
    res = evaluate(entries, rec)
    assert res.backend == "cpu" and res.inactive == 2
    assert sorted(res.nodeids(EXPECTED)) == ["a.py::test_fails[1]", "a.py::test_fails[2]"]
    assert res.nodeids(IMPROVED) == ["a.py::test_fixed"]
    assert res.nodeids(SKIPPED) == ["a.py::test_skip"]
    assert [e.test for e in res.stale] == ["a.py::test_gone"]  # inactive entries are never stale
    assert res.of("a.py::test_flaky") is None and res.of("a.py::test_other") is None
    d = res.as_dict()
    assert len(d["expected"]) == 2 and d["improved"][0]["reason"] == "was broken"


def test_evaluate_device_and_dtype_filters():
    e = Expectation(test="*", reason="bf16 on cuda", device="cuda", dtype="bfloat16")
    rec = _rec([_t("t[cpu-bfloat16]", "failed", "cpu", "bfloat16"), _t("t[cuda-bfloat16]", "failed", "cuda", "bfloat16"),
                _t("t[cuda-float32]", "failed", "cuda", "float32")], cuda="12.8")
    assert evaluate([e], rec).nodeids(EXPECTED) == ["t[cuda-bfloat16]"]


@pytest.mark.parametrize("entry,msg", [
    ({"test": "x"}, r"\[expected_failure #1\] needs 'reason' \(why the failure is accepted"),
    ({"reason": "r"}, r"\[expected_failure #1\] needs 'test'"),
    ({"test": "x", "reason": "  "}, r"reason: must not be empty"),
    ({"test": "x", "reason": "r", "tourch": "<2.8"}, r"unknown key\(s\) tourch \(allowed: backend, device"),
    ({"test": "x", "reason": "r", "torch": ">>2"}, r"expected_failure #1: torch = '>>2': not a version specifier"),
    ({"test": "x", "reason": "r", "strict": "yes"}, r"strict: 'yes' is not a boolean"),
])
def test_bad_entries(entry, msg):
    """The manifest schema (harness/schema/manifest-v1.schema.json) in a policy and in a manifest file."""
    with pytest.raises(policy.PolicyError, match=msg) as info:
        policy.from_dict({"expected_failure": [entry]}, "f.toml")
    assert str(info.value).startswith("f.toml: ") and "\n" not in str(info.value)
    with pytest.raises(ManifestError):
        Expectation.from_dict({"test": "x", "reason": "r", "torch": "<2.8.*"}, "f.toml")


# ---------------------------------------------------------------------------------------------- policy

def test_golden_policy_loads():
    p = policy.load(GOLDEN / "policy.toml")
    assert p.max_vanished_fraction == 0.2
    assert [r.pattern for r in p.bench_rules] == ["nn.*"] and p.bench_rules[0].mode == "advisory"
    assert p.bench_rule({"name": "nn.linear[cpu]", "group": "nn.linear"}).threshold == 0.10
    assert p.bench_rule({"name": "tensors.add[cpu]", "group": "tensors.add"}) is p.bench_default
    assert len(p.expectations) == 4 and p.expectations[0].dtype == "bfloat16"
    assert p.section_mode("ecosystem") == "advisory" and p.section_mode("nn") == "blocking"


def test_shipped_policy_equals_builtin_defaults():
    """policy/torchconform-policy.toml documents the defaults: the two must not drift apart (the
    shipped file adds the project's own expectation manifest, which every entry must give a reason)."""
    a = policy.load(policy.CHECKOUT_POLICY).as_dict()
    b = policy.default().as_dict()
    a.pop("source"), b.pop("source")
    a.pop("expected_failures")
    assert b.pop("expected_failures") == 0
    assert a == b
    assert all(e.reason for e in policy.load(policy.CHECKOUT_POLICY).expectations)


def test_policy_discovery(monkeypatch, tmp_path):
    f = tmp_path / "p.toml"
    f.write_text("[gate]\nmax_vanished_fraction = 0.5\n")
    monkeypatch.setenv(policy.POLICY_ENV, str(f))
    assert policy.load().max_vanished_fraction == 0.5
    monkeypatch.delenv(policy.POLICY_ENV)
    assert policy.load().source == str(policy.CHECKOUT_POLICY)


def test_manifest_files_and_includes(tmp_path):
    (tmp_path / "m.toml").write_text('[[expected_failure]]\ntest = "a::b"\nreason = "r"\n')
    (tmp_path / "p.toml").write_text('manifests = ["m.toml"]\n[[expected_failure]]\ntest = "c::d"\nreason = "s"\n')
    p = policy.load(tmp_path / "p.toml")
    assert [e.test for e in p.expectations] == ["c::d", "a::b"]
    p = policy.load(tmp_path / "p.toml", manifests=[tmp_path / "m.toml"])
    assert len(p.expectations) == 3


@pytest.mark.parametrize("text,msg", [
    ("[gate]\nfail_on_incomplet = true\n", "unknown key"),
    ("[sections]\nblocking = 3\n", "blocking"),
    ("[benchmarks]\ndefault = { threshold = 5.0, mode = 'gating' }\n", None),
    ("[benchmarks]\ndefault = { mode = 'sometimes' }\n", "mode"),
    ("[benchmarks]\ndefault = { alpha = 1.5 }\n", "alpha"),
    ("[[benchmarks.rule]]\nthreshold = 0.1\n", "pattern"),
    ("[[expected_failure]]\ntest = 'x'\n", "reason"),
    ("[gate\n", "not valid TOML"),
    ("version = 2\n", "version: must be 1, not 2"),
    ("[precision]\ngrowth_factor = 0.5\n", r"\[precision\] growth_factor: 0.5 must be > 1"),
    ("[gate]\nmax_vanished_fraction = 2\n", "max_vanished_fraction: 2 must be <= 1"),
    ("[benchmarks]\ndefault = { threshold = 0.1, pattern = 'x' }\n", r"\[benchmarks.default\] unknown key\(s\) pattern"),
    ("manifests = 3\n", "manifests: 3 is not a string or an array of strings"),
])
def test_bad_policy_files(tmp_path, text, msg):
    f = tmp_path / "p.toml"
    f.write_text(text)
    if msg is None:
        assert policy.load(f).bench_default.threshold == 5.0
        return
    with pytest.raises(policy.PolicyError, match=msg):
        policy.load(f)


def test_manifest_file_schema(tmp_path):
    f = tmp_path / "m.toml"
    f.write_text('[[expected_failure]]\ntest = "a::b"\nreason = "r"\n[gate]\nfail_on_improved = false\n')
    with pytest.raises(policy.PolicyError, match=r"m.toml: unknown key\(s\) gate \(allowed: expected_failure, version\)"):
        policy.load_manifest(f)


def test_missing_policy_file(tmp_path):
    with pytest.raises(policy.PolicyError, match="no such policy file"):
        policy.load(tmp_path / "nope.toml")


def test_golden_records_manifest():
    """On the golden candidate: bf16 entry IMPROVED, distributed EXPECTED, test_gone stale, cuda entry inactive."""
    cand = json.loads((GOLDEN / "candidate.json").read_text())
    p = policy.load(GOLDEN / "policy.toml")
    res = evaluate(p.expectations, copy.deepcopy(cand))
    assert res.nodeids(IMPROVED) == ["suites/nn/test_linear.py::test_linear_bf16[cpu-bfloat16]"]
    assert res.nodeids(EXPECTED) == ["suites/distributed/test_allreduce.py::test_allreduce_sum[cpu]"]
    assert [e.test for e in res.stale] == ["suites/nn/test_gone.py::*"]
    assert res.inactive == 1


def test_policy_without_jsonschema(monkeypatch, tmp_path):
    """Bare machines (a GPU runner with torch and pytest only) may lack jsonschema: the policy still loads,
    an unknown top-level key is still an error, and a malformed value is one line, never a traceback."""
    import sys

    monkeypatch.setitem(sys.modules, "jsonschema", None)
    assert policy.load(GOLDEN / "policy.toml").max_vanished_fraction == 0.2
    for text, msg in (("[gatee]\nx = 1\n", "unknown key"), ("[sections]\nblocking = 3\n", "malformed policy")):
        f = tmp_path / "p.toml"
        f.write_text(text)
        with pytest.raises(policy.PolicyError, match=msg) as info:
            policy.load(f)
        assert "\n" not in str(info.value)
