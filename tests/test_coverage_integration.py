"""The coverage ledger wired into a run (issue 12 section 3): the pytest option ``--tc-coverage`` (off by
default: nothing installed), the ledger of only the tests that made a check, the pytest-xdist merge, the
record's ``coverage`` (schema, ``torchconform merge``), ``torchconform coverage``, the reports' Coverage
section and the advisory coverage diff of ``compare``."""
from __future__ import annotations

import copy
import json
import os
import re

import pytest

from harness import cli, coverage, record
from harness.coverage import Ledger
from tests.conftest import make_record
from tests.golden import make_coverage

SUITE_TENSORS = '''
import pytest, torch
from torch.nn.modules import module as _module
from harness.checks import assert_close


def _active():
    return (torch._C._len_torch_function_stack(), torch._C._len_torch_dispatch_stack(),
            len(_module._global_forward_pre_hooks))


BASE = _active()  # at collection: no recorder of this run is active (an outer run's may be)


@pytest.fixture
def prepared():
    return torch.tan(torch.ones(2))  # the setup phase is never recorded


def test_checked(prepared):
    assert_close("torch.exp", torch.exp(torch.ones(3)), 2.718281828459045)


def test_checked_but_failing():
    assert_close("torch.sqrt", torch.sqrt(torch.tensor([4.0])), 3.0)  # a failing check is still an oracle


def test_unchecked():
    torch.cos(torch.ones(2))
    torch.nn.Tanh()(torch.ones(2))


def test_modes(request):
    on = request.config.getoption("torchconform_tc_coverage")
    kinds = request.config.getoption("torchconform_tc_coverage_kinds")
    want = tuple(b + int(on and (kinds == "all" or k in kinds)) for b, k in zip(BASE, ("callables", "overloads", "nn_modules")))
    now = _active()
    assert now == want, (now, want, on, kinds)
    assert (request.config.pluginmanager.get_plugin("torchconform-coverage") is not None) == on
'''

SUITE_NN = '''
import torch
from harness.checks import assert_close


def test_linear():
    lin = torch.nn.Linear(2, 1)
    with torch.no_grad():
        lin.weight.fill_(2.0)
        lin.bias.fill_(0.5)
    assert_close("torch.nn.Linear", lin(torch.tensor([[1.0, 3.0]])), 8.5)
'''


@pytest.fixture(scope="module", autouse=True)
def _imported_before_pytester():
    """The universe and the recorder import torch modules (dynamo, onnx, distributed, ...) that register
    operator libraries; imported first inside an in-process pytester run, pytester drops them and the next
    run's re-import fails ("Only a single TORCH_LIBRARY"; tests/conftest.py). Import them here first."""
    import torch

    coverage.universe()
    with coverage.Recorder() as rec:
        torch.nn.Linear(1, 1)(torch.ones(1, 1))
    rec.usage()


@pytest.fixture
def suite(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    for d in ("suites", "suites/tensors", "suites/nn", "other"):
        pytester.mkdir(d)
    pytester.makepyfile(**{"suites/tensors/test_t": SUITE_TENSORS, "suites/nn/test_n": SUITE_NN,
                           "other/test_o": "import torch\nfrom harness.checks import assert_true\n\n"
                                           "def test_outside():\n    assert_true('torch.abs', bool(torch.abs("
                                           "torch.tensor(-1.0)) == 1), '|-1| is 1')\n"})
    (pytester.path / "policy.toml").write_text("version = 1\n")  # not the checkout's policy: others edit it
    return pytester


def _run(pytester, *args):
    path = pytester.path / f"rec{len(list(pytester.path.glob('rec*.json')))}.json"
    res = pytester.runpytest("-p", "harness.pytest_plugin", "-p", "no:cacheprovider", "suites", "other",
                             "--policy", str(pytester.path / "policy.toml"), "--record", str(path), *args)
    assert res.ret == 1, res.outlines[-30:] + res.errlines[-30:]  # test_checked_but_failing fails, nothing else
    assert res.parseoutcomes() == {"passed": 5, "failed": 1}, res.outlines[-30:]
    return record.load(path), res


def test_off_by_default_installs_nothing(suite):
    """Without --tc-coverage no mode or hook is active inside a test and the record has no coverage."""
    rec, res = _run(suite)
    assert "coverage" not in rec
    assert {t["nodeid"].split("::")[1]: t["status"] for t in rec["tests"]}["test_modes"] == "passed"
    assert "torchconform coverage" not in res.stdout.str()


def test_on_records_only_checked_tests(suite):
    """With the option: one recorder per test's call; usage counts as exercised only in tests with a check
    (a failing one too); an unchecked test's usage is only touched; setup is not recorded; sections."""
    rec, res = _run(suite, "--tc-coverage", "--tc-coverage-kinds", "all")
    cov = rec["coverage"]
    assert {t["nodeid"].split("::")[1]: t["status"] for t in rec["tests"]}["test_modes"] == "passed"
    c = cov["kinds"]["callables"]
    assert {"torch.exp", "torch.sqrt", "torch.abs"} <= set(c["covered_names"])
    assert "torch.cos" in c["touched_without_check"] and "torch.cos" not in c["covered_names"]
    assert "torch.tan" not in c["covered_names"] + c["touched_without_check"]
    assert "aten.exp.default" in cov["kinds"]["overloads"]["covered_names"]
    assert "aten.cos.default" in cov["kinds"]["overloads"]["touched_without_check"]
    nn_ = cov["kinds"]["nn_modules"]
    assert "torch.nn.Linear" in nn_["covered_names"] and "torch.nn.Tanh" in nn_["touched_without_check"]
    s = cov["sections"]
    assert (s["tensors"]["tests"], s["tensors"]["tests_with_checks"]) == (4, 2)
    assert (s["nn"]["tests"], s["nn"]["tests_with_checks"]) == (1, 1)
    assert (s["(other)"]["tests"], s["(other)"]["tests_with_checks"]) == (1, 1)
    assert "torch.nn.Linear" in s["nn"]["nn_modules"]["names"] and "torch.exp" not in s["nn"]["callables"]["names"]
    assert cov["torch"] == rec["fingerprint"]["torch"]["version"] and "partial" not in cov
    assert "torchconform coverage" in res.stdout.str()


def _differences(a: dict, b: dict) -> dict:
    """What differs between two coverage dicts, compactly (names only in one of them, per list)."""
    out = {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if k not in ("kinds", "sections") and a.get(k) != b.get(k)}
    for k in coverage.KINDS:
        for field, x in a["kinds"][k].items():
            y = b["kinds"][k].get(field)
            if x != y:
                out[f"{k}.{field}"] = (sorted(set(x) - set(y)), sorted(set(y) - set(x))) if isinstance(x, list) else (x, y)
    out.update({f"sections.{s}": "differs" for s in set(a["sections"]) | set(b["sections"])
                if a["sections"].get(s) != b["sections"].get(s)})
    return out


def test_default_kinds_are_all(suite):
    """By default every kind is recorded: the overloads half's dispatch mode is active inside a test."""
    rec, _ = _run(suite, "--tc-coverage")
    k = rec["coverage"]["kinds"]
    assert {t["nodeid"].split("::")[1]: t["status"] for t in rec["tests"]}["test_modes"] == "passed"
    assert "aten.exp.default" in k["overloads"]["covered_names"] and "not_measured" not in k["overloads"]


def test_kinds_without_overloads_leave_the_dispatch_mode_out(suite):
    """--tc-coverage-kinds callables,nn_modules: no dispatch mode inside a test (test_modes), overloads marked
    not measured, the other kinds recorded."""
    rec, _ = _run(suite, "--tc-coverage", "--tc-coverage-kinds", "callables,nn_modules")
    k = rec["coverage"]["kinds"]
    assert "torch.exp" in k["callables"]["covered_names"] and "torch.nn.Linear" in k["nn_modules"]["covered_names"]
    assert k["overloads"]["covered"] == 0 and "--tc-coverage-kinds callables,nn_modules" in k["overloads"]["not_measured"]
    assert "not_measured" not in k["callables"]


def test_bad_kinds_are_a_usage_error(suite):
    res = suite.runpytest("-p", "harness.pytest_plugin", "-p", "no:cacheprovider", "suites", "--tc-coverage",
                          "--policy", str(suite.path / "policy.toml"), "--tc-coverage-kinds", "callables,ops")
    assert res.ret == 4 and "ops is not one of callables, overloads, nn_modules" in res.stderr.str()


def test_xdist_merge_equals_serial(suite):
    """Each worker's ledger reaches the controller (workeroutput) and merges into the serial run's ledger."""
    pytest.importorskip("xdist", reason="pytest-xdist is not installed (pip install torchconform[shard])")
    serial, _ = _run(suite, "--tc-coverage", "--tc-coverage-kinds", "all")
    parallel, res = _run(suite, "--tc-coverage", "--tc-coverage-kinds", "all", "-n", "2")
    assert not [line for line in res.outlines if "INTERNALERROR" in line]
    par, ser = parallel["coverage"], serial["coverage"]
    assert par == ser, _differences(par, ser)
    assert parallel["coverage"]["sections"]["tensors"]["tests"] == 4


def test_a_lost_worker_makes_the_ledger_partial():
    """A worker that went down without its ledger: the rest is merged and the figures say 'partial'."""
    from harness.pytest_coverage import WORKER_KEY, hooks_class

    class Config:
        pass

    class Node:
        def __init__(self, name, out):
            self.gateway = type("G", (), {"id": name})()
            self.workeroutput = out

    hooks = hooks_class()(Config())
    full = make_coverage.candidate_coverage()
    full.pop("partial")
    hooks.pytest_testnodedown(Node("gw0", {WORKER_KEY: json.dumps(full)}), None)
    hooks.pytest_testnodedown(Node("gw1", {}), "crashed")
    cov = hooks._finish()
    assert cov["kinds"] == coverage.merge([full])["kinds"]
    assert cov["partial"].startswith("1 xdist worker(s) (gw1) went down")


# ------------------------------------------------------------------ record, schema, merge
def _with_cov(cov, **kw) -> dict:
    return make_record(coverage=copy.deepcopy(cov), **kw)


def test_schema_accepts_coverage_and_old_records():
    record.validate(make_record())
    record.validate(_with_cov(make_coverage.candidate_coverage()))
    bad = _with_cov(make_coverage.candidate_coverage())
    del bad["coverage"]["kinds"]
    with pytest.raises(record.RecordError, match="coverage"):
        record.validate(bad)


def _halves():
    """Two ledgers over one universe (tests split between shards) and the ledger of all tests."""
    uni = make_coverage._universe("2.13.0+cpu", make_coverage.BASE_CALLABLES, make_coverage.BASE_OVERLOADS)
    adds = [(make_coverage._usage(("torch.add",), ("aten.add.Tensor",)), 1, "tensors"),
            (make_coverage._usage(("torch.cos",)), 0, "tensors"),
            (make_coverage._usage(("torch.mul",), (), ("torch.nn.Linear",)), 2, "nn")]
    a, b, whole = Ledger(uni), Ledger(uni), Ledger(uni)
    for i, (u, n, sec) in enumerate(adds):
        (a if i % 2 == 0 else b).add(u, checks=n, section=sec)
        whole.add(u, checks=n, section=sec)
    return a.as_dict(), b.as_dict(), whole.as_dict()


def test_merge_of_records_merges_their_coverage():
    from harness.merge import merge

    a, b, whole = _halves()
    merged = merge([_with_cov(a), _with_cov(b)])
    assert merged["coverage"] == whole
    one_missing = merge([_with_cov(a), make_record()])
    assert one_missing["coverage"]["kinds"] == a["kinds"]
    assert one_missing["coverage"]["partial"].startswith("1 of 2 merged records carry no coverage")
    assert "coverage" not in merge([make_record(), make_record()])


def test_merge_cli_warns_for_coverage_of_other_torch_builds(tmp_path, capsys):
    base = _with_cov(make_coverage.baseline_coverage())
    base["fingerprint"]["torch"]["version"] = "2.12.0+cpu"
    paths = []
    for i, rec in enumerate((base, _with_cov(make_coverage.candidate_coverage()))):
        paths.append(tmp_path / f"r{i}.json")
        record.save(rec, paths[-1])
    out = tmp_path / "m.json"
    assert cli.main(["merge", *map(str, paths), "--out", str(out), "--allow-mixed"]) == 0
    assert "coverage is of different torch builds and was not merged" in capsys.readouterr().err
    assert "coverage" not in record.load(out)


# ------------------------------------------------------------------ torchconform run --coverage / coverage
@pytest.mark.parametrize("flag,kinds", [(True, None), (False, None), (True, "all")])
def test_run_passes_the_option_only_when_asked(tmp_path, monkeypatch, flag, kinds):
    from harness.cli import run

    seen = {}

    def fake(cmd, env, grace):
        seen["cmd"] = cmd
        record.save(make_record(), cmd[cmd.index("--record") + 1])
        return 0, None

    monkeypatch.setattr(run, "run_pytest", fake)
    (tmp_path / "suites").mkdir()
    argv = ["run", "--device", "cpu", "--suites", str(tmp_path / "suites"), "--out", str(tmp_path / "o")]
    assert cli.main(argv + (["--coverage"] if flag else []) + (["--coverage-kinds", kinds] if kinds else [])) == 0
    assert ("--tc-coverage" in seen["cmd"]) == flag
    assert (seen["cmd"][seen["cmd"].index("--tc-coverage-kinds") + 1] if kinds else None) == kinds
    assert ("--tc-coverage-kinds" in seen["cmd"]) == bool(kinds)


@pytest.fixture
def cov_record(tmp_path):
    cov = make_coverage.candidate_coverage()
    c = cov["kinds"]["callables"]
    c["uncovered"].append("torch.<script>alert(1)</script>")  # a hostile name: escaped in every report
    c.update(total=9, percent=44.44)
    path = tmp_path / "rec.json"
    record.save(_with_cov(cov), path)
    return path


def test_coverage_cli_prints_figures_sections_and_uncovered(cov_record, tmp_path, capsys):
    assert cli.main(["coverage", str(cov_record)]) == 0
    out = capsys.readouterr().out
    assert "coverage of torch 2.13.0+cpu" in out and "PARTIAL" in out
    assert re.search(r"^  callables +4 +9 +44\.44%  \(\+1 touched without a check\)$", out, re.M), out
    assert "tensors" in out and "nn" in out and "uncovered" not in out
    assert cli.main(["coverage", str(cov_record), "--kind", "nn_modules", "--uncovered"]) == 0
    out = capsys.readouterr().out
    assert "callables" not in out and "uncovered nn_modules (2):\n  torch.nn.Conv2d\n  torch.nn.ReLU" in out
    js = tmp_path / "v.json"
    assert cli.main(["coverage", str(cov_record), "--section", "nn", "--kind", "callables", "--uncovered",
                     "--json", str(js)]) == 0
    v = json.loads(js.read_text())
    assert v["section"] == "nn" and list(v["sections"]) == ["nn"] and v["kinds"]["callables"]["covered"] == 1
    assert "torch.add" in v["kinds"]["callables"]["uncovered"]  # exercised by tensors, not by nn
    assert "torch.nn.functional.relu" not in v["kinds"]["callables"]["uncovered"]


def _err_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("content,needle", [
    (None, "no such file"),
    ("{not json", "corrupt JSON"),
    ("nocov", "run with `torchconform run --coverage`"),
    ("section", "no section 'nowhere'"),
    ("json", "cannot write"),
])
def test_coverage_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, cov_record, content, needle):
    path, extra = tmp_path / "r.json", []
    if content == "nocov":
        record.save(make_record(), path)
    elif content == "section":
        path, extra = cov_record, ["--section", "nowhere"]
    elif content == "json":
        path, extra = cov_record, ["--json", str(tmp_path / "no" / "such" / "dir" / "v.json")]
    elif content is not None:
        path.write_text(content)
    assert cli.main(["coverage", str(path), *extra]) == 2
    line = _err_line(capsys)
    assert line.startswith("torchconform: error: ") and needle in line


# ------------------------------------------------------------------ reports and compare
def test_reports_have_a_coverage_section_only_with_coverage(cov_record):
    from harness import report

    with_cov = report.render_all(record.load(cov_record), plots=False)
    plain = report.render_all(make_record(), plots=False)
    md, html = with_cov["markdown"], with_cov["html"]
    assert "## Coverage" in md and "| public callables | 4 | 9 | 44.44% | 1 |" in md
    assert "<code>torch.special.xlog1py</code>" in md and "Partial" in md
    assert "<h2>Coverage</h2>" in html and "<code>torch.nn.Conv2d</code>" in html
    assert "<script>alert" not in md + html and "&lt;script&gt;" in html
    assert "Coverage" not in plain["markdown"] and "Coverage" not in plain["html"]


def test_compare_lists_untested_ops_advisory_only():
    from harness import gate, policy

    base_cov, cand_cov = make_coverage.baseline_coverage(), make_coverage.candidate_coverage()
    tests = make_record()["tests"]
    base, cand = _with_cov(base_cov, tests=tests[:1]), _with_cov(cand_cov, tests=tests)
    cmp = gate.evaluate(base, cand, policy.default())
    k = cmp["coverage"]["kinds"]["callables"]
    assert cmp["coverage"]["advisory"] is True and cmp["coverage"]["baseline_torch"] == "2.12.0+cpu"
    assert k["new_untested"] == ["torch.fft.hfft2", "torch.special.xlog1py"] and k["lost"] == ["torch.sub"]
    assert "torch.cos" in k["untested"]
    bare = gate.evaluate(make_record(tests=tests[:1]), make_record(tests=tests), policy.default())
    assert "coverage" not in bare and bare["gate"] == cmp["gate"]
    only_cand = gate.evaluate(make_record(tests=tests[:1]), cand, policy.default())["coverage"]
    assert only_cand["baseline_torch"] is None and "new_untested" not in only_cand["kinds"]["callables"]
    from harness import report

    md = report.render_all(cand, comparison=cmp, plots=False)["markdown"]
    assert "public callables new in the candidate torch and untested (2)" in md
    assert "| 4/6 (66.67%) | 1 | 1 |" in md and "coverage never decides the gate" in md


def test_a_kind_not_recorded_is_shown_as_such_without_name_lists():
    """A default run records no overloads: the reports say 'not measured' and list none of them as
    uncovered, new or lost (they would all be noise)."""
    from harness import report

    cov = make_coverage.candidate_coverage()
    o = cov["kinds"]["overloads"]
    o.update(not_measured="not recorded (--tc-coverage-kinds callables,nn_modules)", covered=0, percent=0.0,
             covered_names=[], uncovered=sorted(o["covered_names"] + o["uncovered"]))
    cand = _with_cov(cov)
    from harness import gate, policy

    cmp = gate.evaluate(_with_cov(make_coverage.baseline_coverage()), cand, policy.default())
    texts = report.render_all(cand, comparison=cmp, plots=False)
    for text in (texts["markdown"], texts["html"]):
        assert "not measured" in text and "not recorded (--tc-coverage-kinds callables,nn_modules)" in text
        assert "Uncovered aten overloads" not in text and "aten overloads exercised by the baseline run" not in text
        assert "Uncovered public callables" in text
