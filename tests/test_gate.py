"""The gate: `torchconform gate` / `compare --gate` exit statuses (0 pass, 1 fail, 2 error) with the
reason in one stdout line, the policy knobs that turn findings into failures, merging shards."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from harness import gate, policy, record
from harness.cli import main
from tests.conftest import GOLDEN, make_record

POLICY = str(GOLDEN / "policy.toml")
ROOT = Path(__file__).resolve().parent.parent


def golden(name):
    return json.loads((GOLDEN / f"{name}.json").read_text())


def save(tmp_path, name, rec):
    return str(record.save(rec, tmp_path / name / "record.json"))


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_gate_fails_on_golden(capsys):
    rc, out, err = run(capsys, "gate", GOLDEN / "baseline.json", GOLDEN / "candidate.json", "--policy", POLICY)
    assert rc == 1
    assert out.count("\n") == 1 and out.startswith("GATE FAIL: ")
    assert "2 new failures in blocking sections (nn, tensors)" in out
    assert "1 unexpected pass" in out
    assert "1 regression: tensors.matmul[cpu,n=512] +12.3% [CI +" in out
    assert err == ""


def test_gate_passes_identical(capsys):
    rc, out, _ = run(capsys, "gate", GOLDEN / "baseline.json", GOLDEN / "baseline.json", "--policy", POLICY)
    assert rc == 0 and out.startswith("GATE PASS: 10 tests") and out.count("\n") == 1


def test_gate_writes_reports_only_with_out(capsys, tmp_path):
    rc, out, err = run(capsys, "gate", GOLDEN / "baseline.json", GOLDEN / "candidate.json", "--policy", POLICY,
                       "--out", tmp_path / "rep", "--no-plots")
    assert rc == 1 and out.count("\n") == 1  # report paths go to stderr
    assert "index.html" in err
    names = sorted(p.name for p in (tmp_path / "rep").iterdir())
    assert names == ["comparison.json", "index.html", "junit.xml", "summary.md"]
    data = json.loads((tmp_path / "rep" / "comparison.json").read_text())
    assert data["gate"]["verdict"] == "FAIL" and data["gate"]["line"] == out.strip()


def test_compare_exit_status(capsys, tmp_path):
    args = ["compare", GOLDEN / "baseline.json", GOLDEN / "candidate.json", "--policy", POLICY,
            "--out", tmp_path / "c", "--no-plots"]
    rc, out, _ = run(capsys, *args)
    # compare alone exits 1 because the candidate regressed (a new failure and a slower benchmark)
    assert rc == 1 and "GATE FAIL" in out and (tmp_path / "c" / "index.html").is_file()
    rc, _, _ = run(capsys, *args, "--gate")
    assert rc == 1
    same = ["compare", GOLDEN / "baseline.json", GOLDEN / "baseline.json", "--policy", POLICY,
            "--out", tmp_path / "same", "--no-plots"]
    rc, out, _ = run(capsys, *same)
    assert rc == 0 and "GATE PASS" in out


@pytest.mark.parametrize("problem", ["missing", "corrupt", "foreign", "policy", "manifest"])
def test_gate_errors_exit_2(capsys, tmp_path, problem):
    base = str(GOLDEN / "baseline.json")
    cand = str(GOLDEN / "candidate.json")
    extra = ["--policy", POLICY]
    if problem == "missing":
        cand = str(tmp_path / "nope.json")
    elif problem == "corrupt":
        (tmp_path / "c.json").write_text('{"kind": "torchconform.run-record", ')
        cand = str(tmp_path / "c.json")
    elif problem == "foreign":
        (tmp_path / "c.json").write_text("[1, 2]")
        cand = str(tmp_path / "c.json")
    elif problem == "policy":
        (tmp_path / "p.toml").write_text("[gate]\nfail_on_incomplete = 'maybe'\n")
        extra = ["--policy", str(tmp_path / "p.toml")]
    else:
        (tmp_path / "m.toml").write_text("[[expected_failure]]\ntest = 'x'\n")
        extra += ["--manifest", str(tmp_path / "m.toml")]
    rc, out, err = run(capsys, "gate", base, cand, *extra)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("torchconform: error: ")


def _gate(base, cand, **knobs):
    p = policy.default()
    for k, v in knobs.items():
        setattr(p, k, v)
    return gate.evaluate(base, cand, p)["gate"]


def test_incomplete_candidate():
    base, cand = make_record(), make_record(complete=False)
    g = _gate(base, cand)
    assert g["verdict"] == "FAIL" and "incomplete" in g["line"]
    g = _gate(base, cand, fail_on_incomplete=False)
    assert g["verdict"] == "PASS" and any("incomplete" in w for w in g["warnings"])


def test_vanished_fraction():
    base = make_record()
    cand = make_record()
    del cand["tests"][2]  # 1 of 3 vanished: 33 %
    g = _gate(base, cand)
    assert g["verdict"] == "FAIL" and "1 of 3 baseline tests vanished" in g["line"]
    # "advise" turns a vanished test into a warning, up to max_vanished_fraction (a missing shard still fails)
    assert _gate(base, cand, vanished_or_skipped="advise")["verdict"] == "FAIL"
    g = _gate(base, cand, vanished_or_skipped="advise", max_vanished_fraction=0.5)
    assert g["verdict"] == "PASS" and any("1 of 3 baseline tests vanished" in w for w in g["warnings"])


def _many(n=40):
    return make_record(tests=[{"nodeid": f"suites/nn/test_m.py::test_{i}", "section": "nn", "status": "passed",
                               "duration": 0.0} for i in range(n)])


@pytest.mark.parametrize("lost", ["vanished", "skipped", "skipped_failure"])
def test_vanished_or_skipped_blocks_by_default(lost):
    """Issue 13: a baseline test the candidate no longer runs (gone, or newly skipped) fails the gate
    unless the policy says "advise"; the built-in default and the shipped policy say "block"."""
    base, cand = _many(), _many()
    if lost == "vanished":
        del cand["tests"][0]  # 1 of 40 = 2.5 %, under max_vanished_fraction
        needle = "1 of 40 baseline tests vanished (2.5%) (nn)"
    else:
        if lost == "skipped_failure":
            base["tests"][0]["status"] = "failed"  # a skip must not hide a failure either
        cand["tests"][0]["status"] = "skipped"
        needle = "1 test newly skipped (nn)"
    assert policy.default().vanished_or_skipped == "block"
    assert policy.load(policy.CHECKOUT_POLICY).vanished_or_skipped == "block"
    g = _gate(base, cand)
    assert g["verdict"] == "FAIL" and needle in g["reasons"][0]
    g = _gate(base, cand, vanished_or_skipped="advise")
    assert g["verdict"] == "PASS" and g["warnings"]
    assert _gate(base, copy.deepcopy(base))["verdict"] == "PASS"


def test_vanished_or_skipped_from_the_policy_file(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('[gate]\nvanished_or_skipped = "advise"\n')
    assert policy.load(f).vanished_or_skipped == "advise"
    f.write_text('[gate]\nvanished_or_skipped = "sometimes"\n')
    with pytest.raises(policy.PolicyError, match=r"\[gate\] vanished_or_skipped: 'sometimes' is not one of"):
        policy.load(f)


def test_advisory_section_new_failure_warns():
    base = make_record()
    cand = make_record()
    cand["tests"][0]["status"] = "failed"  # section tensors
    assert _gate(base, cand)["verdict"] == "FAIL"
    g = _gate(base, cand, advisory_sections=["tens*"])
    assert g["verdict"] == "PASS" and any("advisory sections (tensors)" in w for w in g["warnings"])


def test_persistent_failures():
    base, cand = make_record(), make_record()  # test_bad fails in both
    g = _gate(base, cand)
    assert g["verdict"] == "PASS" and any("failing in both runs" in w for w in g["warnings"])
    g = _gate(base, cand, persistent_failures="block")
    assert g["verdict"] == "FAIL" and "also failing in the baseline" in g["line"]


def test_improved_can_be_advisory():
    base, cand = golden("baseline"), golden("candidate")
    p = policy.load(POLICY)
    p.fail_on_improved = False
    g = gate.evaluate(base, cand, p)["gate"]
    assert "unexpected pass" not in g["line"] and any("unexpected pass" in w for w in g["warnings"])


def test_expected_failure_passes_gate():
    """A test failing as the manifest says does not fail the gate; the stale entry only warns."""
    base, cand = make_record(), make_record()
    base["tests"][1]["status"] = "passed"
    p = policy.default()
    assert gate.evaluate(base, cand, p)["gate"]["verdict"] == "FAIL"
    p.expectations = policy.parse_entries([{"test": "suites/nn/test_b.py::test_bad*", "reason": "known"},
                                           {"test": "suites/nn/test_zzz.py::*", "reason": "gone"}], "t")
    g = gate.evaluate(base, cand, p)["gate"]
    assert g["verdict"] == "PASS" and "1 expected" in g["line"]
    assert any("stale manifest entry" in w for w in g["warnings"])


def test_drift_can_block():
    base, cand = make_record(), make_record()
    cand["tests"][0]["checks"]["worst_ratio"] = 0.9
    assert _gate(base, cand)["verdict"] == "PASS"
    g = _gate(base, cand, drift_blocks=True)
    assert g["verdict"] == "FAIL" and "lost precision headroom" in g["line"]


# ---------------------------------------------------------------------------------------------- merge

def test_merge_refuses_mixed_fingerprints(capsys, tmp_path):
    a = make_record()
    b = make_record(tests=[{"nodeid": "suites/x/test_y.py::t", "section": "x", "status": "passed"}])
    b["fingerprint"]["torch"]["version"] = "2.12.0+cpu"
    pa, pb = save(tmp_path, "a", a), save(tmp_path, "b", b)
    rc, out, err = run(capsys, "merge", pa, pb, "--out", tmp_path / "m.json")
    assert rc == 2 and "refusing to merge" in err and "--allow-mixed" in err
    assert not (tmp_path / "m.json").exists()
    rc, out, err = run(capsys, "merge", pa, pb, "--out", tmp_path / "m.json", "--allow-mixed", "--label", "lane-cpu")
    assert rc == 0 and "merged 2 records (4 tests)" in out
    merged = record.load(tmp_path / "m.json")
    assert merged["label"] == "lane-cpu" and merged["merged_from"] == [a["run_id"], b["run_id"]]
    assert merged["fingerprint"]["mixed"] == {"torch": ["2.13.0+cpu", "2.12.0+cpu"]}


def test_merge_shards_then_gate(capsys, tmp_path):
    """Two shards of the candidate merged, then gated against the baseline: same verdict as unsharded."""
    cand = golden("candidate")
    s1, s2 = copy.deepcopy(cand), copy.deepcopy(cand)
    s1["run_id"], s2["run_id"] = "shard-1", "shard-2"
    s1["tests"], s2["tests"] = cand["tests"][::2], cand["tests"][1::2]
    s1["benchmarks"], s2["benchmarks"] = cand["benchmarks"][:1], cand["benchmarks"][1:]
    s1["shard"], s2["shard"] = "1/2", "2/2"
    rc, _, _ = run(capsys, "merge", save(tmp_path, "s1", s1), save(tmp_path, "s2", s2), "--out", tmp_path / "m.json")
    assert rc == 0
    rc, out, _ = run(capsys, "gate", GOLDEN / "baseline.json", tmp_path / "m.json", "--policy", POLICY)
    rc0, out0, _ = run(capsys, "gate", GOLDEN / "baseline.json", GOLDEN / "candidate.json", "--policy", POLICY)
    assert (rc, out) == (rc0, out0)


# ---------------------------------------------------------------------------------------------- sharding

def test_select_shard_partitions_stably():
    from harness.sharding import parse_shard, select_shard, shard_of

    ids = [f"suites/s{i % 7}/test_m{i % 13}.py::test_{i}[cpu]" for i in range(400)]
    shards = [select_shard(ids, i, 4) for i in range(1, 5)]
    assert sorted(sum(shards, [])) == sorted(ids)
    assert all(40 < len(s) < 160 for s in shards)
    assert select_shard(ids[:50] + ["new::test"], 2, 4)[: len(select_shard(ids[:50], 2, 4))] == select_shard(ids[:50], 2, 4)
    by_mod = [select_shard(ids, i, 3, by="module") for i in range(1, 4)]
    for s in by_mod:  # one module never spans two shards
        mods = {n.split("::")[0] for n in s}
        assert all(shard_of(m + "::x", 3, by="module") == shard_of(s[0], 3, by="module") for m in mods)
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "2", "a/b", "1/0"):
        with pytest.raises(Exception, match="shard"):
            parse_shard(bad)


# ---------------------------------------------------------------------------------------------- CI sample

@pytest.mark.parametrize("name", ["torchconform-gpu.yml", "torchconform-gate.yml"])
def test_workflow_is_valid_yaml(name):
    text = (ROOT / ".github" / "workflows" / name).read_text()
    assert "\t" not in text
    yaml = pytest.importorskip("yaml", reason="PyYAML not installed: YAML syntax not checked")
    wf = yaml.safe_load(text)
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare 'on' key as True
    assert on and wf["jobs"]
    for job in wf["jobs"].values():
        assert "uses" in job or ("runs-on" in job and job["steps"])
    if name == "torchconform-gpu.yml":
        assert wf["jobs"]["gpu"]["runs-on"] == ["self-hosted", "linux", "gpu"]
        assert wf["jobs"]["cpu"]["runs-on"] == "ubuntu-latest"
        assert wf["jobs"]["gate-gpu"]["uses"] == "./.github/workflows/torchconform-gate.yml"
    else:
        steps = " ".join(str(s) for s in wf["jobs"]["gate"]["steps"])
        for needle in ("torchconform merge", "torchconform gate", "GITHUB_STEP_SUMMARY", "dawidd6/action-download-artifact"):
            assert needle in steps


def test_compare_history_folder(capsys, tmp_path):
    hist = tmp_path / "hist"
    hist.mkdir()
    (hist / "junk.json").write_text("{not json")
    older = golden("baseline")
    older["run_id"], older["created"], older["label"] = "older", "2026-04-01T00:00:00+00:00", "older"
    save(hist, "r1", older)
    rc, out, err = run(capsys, "compare", GOLDEN / "baseline.json", GOLDEN / "candidate.json", "--policy", POLICY,
                       "--out", tmp_path / "c", "--history", hist, "--no-plots")
    assert rc == 1 and "skipping" in err and "junk.json" in err
    text = (tmp_path / "c" / "index.html").read_text()
    assert "History (3 runs)" in text
    rc, _, err = run(capsys, "compare", GOLDEN / "baseline.json", GOLDEN / "candidate.json", "--history", tmp_path / "nope")
    assert rc == 2 and "--history needs a folder" in err


# ---------------------------------------------------------------------------------------------- manifest

def _recorded(cand, entries, matches):
    """``cand`` as the plugin writes it: the manifest it applied, each matched test's expectation."""
    from harness import manifest

    active = [manifest.Expectation(**e) for e in entries]
    cand["manifest"] = manifest.recorded("run-policy.toml", "2.13.0+cpu", "cpu", active, 0)
    for t in cand["tests"]:
        if t["nodeid"] in matches:
            i = matches[t["nodeid"]]
            t["expectation"] = manifest.expectation_field(i, active[i])
    return cand


def test_manifest_applied_once_by_the_run():
    """A record that carries the manifest its run applied is judged by it: the gate's policy is not
    applied a second time (it may differ), and the gate says so when it does."""
    base, cand = make_record(), make_record()
    base["tests"][1]["status"] = "passed"
    cand["tests"][1]["status"] = "xfailed"  # the plugin marked it: expected failure
    _recorded(cand, [{"test": "suites/nn/test_b.py::test_bad*", "reason": "known at run time"},
                     {"test": "suites/nn/test_gone.py::*", "reason": "stale"}], {"suites/nn/test_b.py::test_bad[cpu]": 0})
    record.validate(json.loads(record.dumps(cand)))
    other = policy.default()
    other.expectations = policy.parse_entries([{"test": "suites/tensors/*", "reason": "the gate's own"}], "gate.toml")
    cmp = gate.evaluate(base, cand, other)
    row = next(r for r in cmp["tests"] if r["nodeid"].endswith("test_bad[cpu]"))
    assert row["change"] == "expected" and row["expectation"]["reason"] == "known at run time"
    assert cmp["manifest"]["applied_at"] == "run" and cmp["manifest"]["source"] == "run-policy.toml"
    assert [e["test"] for e in cmp["manifest"]["stale"]] == ["suites/nn/test_gone.py::*"]
    g = cmp["gate"]
    assert g["verdict"] == "PASS", g  # the gate's entry for suites/tensors/* was not applied again
    assert any("the run applied the expectation manifest of run-policy.toml" in w for w in g["warnings"])
    same = policy.default()
    same.expectations = [policy.Expectation.from_record(e) for e in cand["manifest"]["active"]]
    assert not any("applied the expectation manifest" in w for w in gate.evaluate(base, cand, same)["gate"]["warnings"])


def test_flaky_expectation_that_passes_is_an_ordinary_pass():
    """A strict = false entry's test that passed (the plugin records it as xpassed) is no new failure."""
    base, cand = make_record(), make_record()
    cand["tests"][0]["status"] = "xpassed"
    _recorded(cand, [{"test": "suites/tensors/*", "reason": "flaky", "strict": False}],
              {cand["tests"][0]["nodeid"]: 0})
    cmp = gate.evaluate(base, cand, policy.default())
    assert not [r for r in cmp["tests"] if r["nodeid"] == cand["tests"][0]["nodeid"]]
    assert cmp["gate"]["verdict"] == "PASS"
    cand["manifest"]["active"][0]["strict"] = True  # strict: an unexpected pass, which blocks
    cand["tests"][0]["expectation"]["strict"] = True
    assert "unexpected pass" in gate.evaluate(base, cand, policy.default())["gate"]["line"]


def test_merge_unions_recorded_manifests():
    """Shards that ran under different manifests merge into one list; test expectations are renumbered."""
    from harness import merge

    a, b = make_record(), make_record()
    e1, e2 = {"test": "suites/tensors/*", "reason": "one"}, {"test": "suites/nn/*", "reason": "two"}
    _recorded(a, [e1], {a["tests"][0]["nodeid"]: 0})
    b["tests"].append({"nodeid": "suites/nn/test_c.py::test_only_b", "section": "nn", "status": "xfailed"})
    _recorded(b, [e2, e1], {"suites/nn/test_c.py::test_only_b": 0})
    b["tests"][0]["status"] = "error"  # wins the merge for test 0, carrying b's numbering (e1 is b's #1)
    b["tests"][0]["expectation"] = {"id": 1, "reason": "one", "entry": "suites/tensors/*", "issue": None, "strict": True}
    m = merge.merge([a, b])
    assert [e["reason"] for e in m["manifest"]["active"]] == ["one", "two"]
    by = {t["nodeid"]: t for t in m["tests"]}
    assert by[a["tests"][0]["nodeid"]]["status"] == "error" and by[a["tests"][0]["nodeid"]]["expectation"]["id"] == 0
    assert by["suites/nn/test_c.py::test_only_b"]["expectation"]["id"] == 1
