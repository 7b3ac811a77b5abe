"""harness.coverage: the recorder (sees what runs inside, nothing outside, changes nothing), the universe
and its names, the ledger's figures and the diff between two runs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import numpy as np
import torch

from harness import coverage
from harness.coverage import Ledger, Recorder, Universe, Usage

ROOT = Path(__file__).resolve().parent.parent


def _stacks():
    from torch.nn.modules import module as _module

    return (torch._C._len_torch_function_stack(), torch._C._len_torch_dispatch_stack(),
            len(_module._global_forward_pre_hooks))


# ------------------------------------------------------------------ recorder
def test_recorder_sees_calls_inside_and_nothing_outside():
    x = torch.randn(3, 4)
    lin = torch.nn.Linear(4, 2)
    torch.sub(x, 1)
    lin(x)
    with Recorder() as rec:
        torch.mul(x, 2)
        x.sum()
        torch.nn.functional.relu(x)
    torch.add(x, 1)
    torch.nn.ReLU()(x)
    u = rec.usage()
    assert {"torch.mul", "torch.Tensor.sum", "torch.nn.functional.relu"} <= u.callables
    assert not {"torch.sub", "torch.add", "torch.nn.functional.linear"} & u.callables
    assert {"aten.mul.Tensor", "aten.sum.default", "aten.relu.default"} <= u.overloads
    assert "aten.add.Tensor" not in u.overloads and "aten.sub.Tensor" not in u.overloads
    assert u.nn_modules == frozenset()


def test_recorder_sees_module_forward_and_its_functional_call():
    x = torch.randn(3, 4)
    with Recorder() as rec:
        torch.nn.Linear(4, 2)(x)
        torch.nn.Sequential(torch.nn.Tanh())(x)
    u = rec.usage()
    assert {"torch.nn.Linear", "torch.nn.Sequential", "torch.nn.Tanh"} <= u.nn_modules
    assert "torch.nn.functional.linear" in u.callables
    assert "aten.addmm.default" in u.overloads or "aten.linear.default" in u.overloads


def test_user_subclass_is_not_a_universe_class():
    class Mine(torch.nn.Module):
        def forward(self, x):
            return x * 2

    with Recorder() as rec:
        Mine()(torch.ones(2))
    assert rec.usage().nn_modules == frozenset()
    assert "torch.Tensor.mul" in rec.usage().callables


def test_recorder_does_not_change_results_and_unwinds():
    """Pass-through: the same values, autograd still works, and every mode/hook is removed on exit,
    including when the block raises."""
    before = _stacks()
    torch.manual_seed(0)
    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    ref = torch.nn.functional.softmax(x @ x.T, dim=1).sum()
    (gref,) = torch.autograd.grad(ref, x)
    with Recorder() as rec:
        assert _stacks() != before
        got = torch.nn.functional.softmax(x @ x.T, dim=1).sum()
        (g,) = torch.autograd.grad(got, x)
    assert torch.equal(got, ref) and torch.equal(g, gref)
    assert _stacks() == before
    assert any(o.endswith("_backward_data.default") or "backward" in o for o in rec.usage().overloads)
    with pytest.raises(ValueError):
        with Recorder():
            raise ValueError("inside")
    assert _stacks() == before


def test_recorder_nested_both_see_inner_calls():
    x = torch.ones(2)
    with Recorder() as outer:
        torch.exp(x)
        with Recorder() as inner:
            torch.log(x)
    assert "torch.log" in inner.usage().callables and "torch.exp" not in inner.usage().callables
    assert {"torch.log", "torch.exp"} <= outer.usage().callables
    assert {"aten.log.default", "aten.exp.default"} <= outer.usage().overloads


def test_recorder_one_instance_not_reentrant():
    rec = Recorder()
    with rec:
        with pytest.raises(RuntimeError, match="already active"):
            rec.__enter__()


def test_recorder_halves_can_be_switched_off():
    x = torch.ones(2)
    with Recorder(overloads=False, nn_modules=False) as rec:
        torch.nn.Tanh()(x)
    u = rec.usage()
    assert "torch.tanh" in u.callables or "torch.nn.functional.tanh" in u.callables
    assert u.overloads == frozenset() and u.nn_modules == frozenset()
    assert rec.reasons == {"overloads": "not requested", "nn_modules": "not requested"}


@pytest.mark.skipif(not hasattr(torch, "cond"), reason="torch.cond is not in this torch")
def test_recorder_passes_higher_order_operators_through():
    """torch.cond under a plain TorchDispatchMode raises 'no rule registered for HigherOrderOperator'; the
    recorder opts into receiving HOPs and passes them through."""
    x = torch.arange(3.0)
    lin = torch.nn.Linear(3, 3)  # a module inside a branch: the forward hook must not be a side effect dynamo rejects
    with Recorder() as rec:
        y = torch.cond(x.sum() > 0, lambda a: lin(a) + 1, lambda a: a - 1, (x,))
    with torch.no_grad():
        assert torch.allclose(y, lin(x) + 1)
    assert "aten.gt.Scalar" in rec.usage().overloads


def test_jit_trace_under_the_recorder_is_unchanged():
    """torch.jit.trace reads sizes through the function mode as plain ints and would bake them in; the
    recorder steps aside for trace (and torch.onnx/torch.export entry points), so a traced view keeps
    the batch dimension symbolic, and the entry point is restored on exit."""
    original = torch.jit.trace

    def f(x):
        return x.reshape(x.shape[0], -1) * 2

    with Recorder() as rec:
        traced = torch.jit.trace(f, torch.randn(2, 3, 4))
        out = traced(torch.randn(5, 3, 4))
        torch.neg(out)
    assert torch.jit.trace is original
    assert out.shape == (5, 12)
    assert "torch.neg" in rec.usage().callables


def test_compile_still_compiles_under_the_recorder():
    """The dispatch half sets ignore_compile_internals, so torch.compile does not fall back to eager."""
    from torch.utils._python_dispatch import TorchDispatchMode

    if not hasattr(TorchDispatchMode, "ignore_compile_internals"):
        pytest.skip("this torch has no TorchDispatchMode.ignore_compile_internals: compile runs eager under any mode")
    from torch._dynamo.testing import CompileCounter

    cnt = CompileCounter()

    @torch.compile(backend=cnt)
    def f(a):
        return a.sin() + 1

    x = torch.randn(4)
    with Recorder():
        y = f(x)
    assert cnt.frame_count == 1
    assert torch.allclose(y, x.sin() + 1)


# ------------------------------------------------------------------ universe and names
def test_universe_callables_are_the_testing_overrides_named():
    uni = coverage.universe()
    keys = torch.overrides.get_testing_overrides()
    assert len(uni.callables) + len(uni.callables_excluded) == len(keys)  # names are unique; excluded ones apart
    assert uni.name_of(torch.add) == "torch.add"
    assert uni.name_of(torch.Tensor.add) == "torch.Tensor.add"
    assert uni.name_of(torch.nn.functional.relu) == "torch.nn.functional.relu"
    assert uni.name_of(torch.linalg.solve) == "torch.linalg.solve"
    assert {"torch.add", "torch.Tensor.add", "torch.fft.fft", "torch.special.erf"} <= set(uni.callables)
    assert not any(n.startswith("_VariableFunctionsClass") or "._VariableFunctionsClass." in n for n in uni.callables)
    assert uni.callables["torch.add"] is torch.add


def test_callable_name_fallbacks():
    assert coverage.callable_name(torch.empty) == "torch.empty"  # not an override key, still named
    fn = getattr(torch._C._VariableFunctions, "_conj_copy", None)
    if fn is not None:
        assert coverage.callable_name(fn) == "torch._conj_copy"

    def local():
        return None

    assert coverage.callable_name(local).endswith("test_callable_name_fallbacks.<locals>.local")


def test_universe_overloads_match_what_the_dispatch_mode_reports():
    uni = coverage.universe()
    assert {"aten.add.Tensor", "aten.add.out", "aten.relu.default", "aten.convolution.default"} <= uni.overloads
    assert all(o.startswith("aten.") for o in uni.overloads)
    x = torch.randn(2, 3)
    with Recorder() as rec:
        torch.nn.functional.conv1d(x[None], torch.randn(4, 2, 2))
        torch.add(x, x, out=torch.empty(2, 3))
        x.relu().t().contiguous().sum(0).max()
    seen = {o for o in rec.usage().overloads if o.startswith("aten.")}
    assert seen and seen <= uni.overloads, seen - uni.overloads


def test_overload_sources_agree_where_both_exist():
    if not (hasattr(torch._C, "_dispatch_get_all_op_names") and hasattr(torch._C, "_jit_get_all_schemas")):
        pytest.skip("this torch has only one of the two overload listings")
    uni = coverage.universe()
    jit = {coverage.normalize_op_name(s.name + (("." + s.overload_name) if s.overload_name else ""))
           for s in torch._C._jit_get_all_schemas() if s.name.startswith("aten::")}
    assert len(jit & uni.overloads) >= 0.95 * len(uni.overloads)


def test_normalize_op_name():
    assert coverage.normalize_op_name("aten::add.Tensor") == "aten.add.Tensor"
    assert coverage.normalize_op_name("aten::relu") == "aten.relu.default"
    assert coverage.normalize_op_name("aten.relu.default") == "aten.relu.default"
    assert coverage.normalize_op_name(str(torch.ops.aten.relu.default)) == "aten.relu.default"


def test_universe_nn_modules_rule():
    uni = coverage.universe()
    assert uni.nn_modules["torch.nn.Linear"] is torch.nn.Linear
    assert {"torch.nn.Module", "torch.nn.ModuleList", "torch.nn.ModuleDict", "torch.nn.ParameterList",
            "torch.nn.ParameterDict"} <= set(uni.nn_excluded)
    assert not set(uni.nn_excluded) & set(uni.nn_modules)
    for name, cls in uni.nn_modules.items():
        short = name.rsplit(".", 1)[1]
        assert not short.startswith("_") and getattr(torch.nn, short) is cls and issubclass(cls, torch.nn.Module)
        assert cls.forward is not torch.nn.Module.forward
    assert uni.nn_name_of(torch.nn.modules.conv._ConvNd) is None
    assert len(uni.nn_modules) + len(uni.nn_excluded) == len(
        {o for n in dir(torch.nn) if not n.startswith("_") for o in [getattr(torch.nn, n)]
         if isinstance(o, type) and issubclass(o, torch.nn.Module)})


def test_universe_excludes_dunders_observed_as_another_callable():
    """x + y reaches a TorchFunctionMode as torch.Tensor.add, so Tensor.__add__ cannot be recorded apart from
    Tensor.add: it is excluded from the total with the name its calls arrive under; dunders torch dispatches
    under their own name (__contains__, Python-level __floordiv__) stay in the universe."""
    uni = coverage.universe()
    assert "torch.Tensor.__add__" not in uni.callables
    assert "torch.Tensor.add" in uni.callables
    assert "torch.Tensor.add" in uni.callables_excluded["torch.Tensor.__add__"]
    assert "torch.Tensor.mul_" in uni.callables_excluded["torch.Tensor.__imul__"]
    assert "torch.Tensor.dim" in uni.callables_excluded["torch.Tensor.ndimension"]  # a method alias too
    for kept in ("torch.Tensor.__contains__", "torch.Tensor.__floordiv__", "torch.Tensor.__reduce_ex__"):
        assert kept in uni.callables and kept not in uni.callables_excluded
    rec = coverage.Recorder(callables=True, overloads=False, nn_modules=False)
    x = torch.ones(2)
    with rec:
        _ = x + x
        _ = 1.0 in x
    names = rec.usage().callables
    assert "torch.Tensor.add" in names and "torch.Tensor.__contains__" in names and "torch.Tensor.__add__" not in names
    if torch.version.hip is None:
        assert all(n.startswith("torch.miopen_") for n in uni.callables_excluded if "ROCm" in uni.callables_excluded[n])
        assert not any(n.startswith("torch.miopen_") for n in uni.callables)


def test_checks_conversions_are_not_recorded():
    """harness.checks converts results and references (detach, cpu, to, numpy, dtype reads) with the recorder
    paused: only what the test itself calls counts; after the recorder exits no pause stays registered."""
    from harness import checklog, checks

    rec = coverage.Recorder(callables=True, overloads=True, nn_modules=False)
    x = torch.arange(4.0)
    with rec:
        y = torch.sin(x)
        checks.assert_close("torch.sin", y, np.sin(np.arange(4.0)), op="transcendental", check_dtype=torch.float32)
        checks.assert_equal("torch.sin", y.shape, (4,))
        _ = checks.to_numpy(y)
    names = rec.usage().callables
    assert "torch.sin" in names
    assert not names & {"torch.Tensor.detach", "torch.Tensor.cpu", "torch.Tensor.to", "torch.Tensor.numpy",
                        "torch.Tensor.dtype.__get__"}, names
    assert not checklog._pauses


def test_recorder_steps_aside_for_dispatch_opaque_callables():
    """Complex linalg.pinv / lstsq residuals and matrix_rank(out=) change under any Python dispatch mode on
    some builds (torch 2.13 CPU): under a Recorder with every kind they give exactly the eager results (the
    dispatch half steps aside for them), are still recorded as callables, and sin's overload still is."""
    g = torch.Generator().manual_seed(0)
    A = torch.randn(5, 4, dtype=torch.complex64, generator=g)
    A2 = torch.randn(2, 8, 1, dtype=torch.complex64, generator=g)
    B = torch.randn(2, 8, 3, dtype=torch.complex64, generator=g)
    M = torch.randn(4, 4, generator=g)
    eager = (torch.linalg.pinv(A), torch.linalg.lstsq(A2, B, driver="gels").residuals)
    out = torch.full((), -7, dtype=torch.int64)
    rec = coverage.Recorder()
    with rec:
        got = (torch.linalg.pinv(A), torch.linalg.lstsq(A2, B, driver="gels").residuals)
        torch.linalg.matrix_rank(M, out=out)
        torch.sin(M)
    for e, r in zip(eager, got):
        assert torch.equal(e, r)
    assert int(out) == int(np.linalg.matrix_rank(M.numpy()))
    u = rec.usage()
    assert {"torch.linalg.pinv", "torch.linalg.lstsq", "torch.linalg.matrix_rank"} <= u.callables
    assert "aten.sin.default" in u.overloads


def test_section_of():
    assert coverage.section_of("suites/nn/test_conv.py::test_conv2d[cpu-float32]") == "nn"
    assert coverage.section_of("/abs/repo/suites/ops/sub/test_x.py") == "ops"
    assert coverage.section_of("tests/test_checks.py::test_x") is None
    assert coverage.section_of("suites/test_top.py::t") is None


# ------------------------------------------------------------------ ledger math
def _tiny_universe() -> Universe:
    return Universe(torch_version="9.9", callables={"torch.a": 1, "torch.b": 2, "torch.c": 3, "torch.d": 4},
                    overloads=frozenset({"aten.a.default", "aten.b.out"}), overloads_source="test",
                    nn_modules={"torch.nn.X": object, "torch.nn.Y": object}, nn_excluded={"torch.nn.Module": "base"})


def test_ledger_counts_only_checked_tests_per_section():
    led = Ledger(_tiny_universe())
    led.add(Usage(frozenset({"torch.a", "torch.empty"}), frozenset({"aten.a.default"}), frozenset({"torch.nn.X"})),
            checks=3, section="nn")
    led.add(Usage(frozenset({"torch.b", "torch.a"}), frozenset({"aten.b.out"}), frozenset()), checks=0, section="nn")
    led.add(Usage(frozenset({"torch.c"}), frozenset(), frozenset()), checks=1, section="ops")
    led.add(Usage(frozenset({"torch.d"}), frozenset(), frozenset()), checks=1, section=None)
    cov = led.as_dict()
    json.dumps(cov)  # JSON-able
    c = cov["kinds"]["callables"]
    assert (c["covered"], c["total"], c["percent"]) == (3, 4, 75.0)
    assert c["covered_names"] == ["torch.a", "torch.c", "torch.d"]
    assert c["uncovered"] == ["torch.b"]
    assert c["touched_without_check"] == ["torch.b"]
    assert c["outside_universe"] == ["torch.empty"]
    o = cov["kinds"]["overloads"]
    assert (o["covered"], o["percent"], o["uncovered"], o["source"]) == (1, 50.0, ["aten.b.out"], "test")
    m = cov["kinds"]["nn_modules"]
    assert (m["covered"], m["total"], m["uncovered"], m["excluded"]) == (1, 2, ["torch.nn.Y"], {"torch.nn.Module": "base"})
    assert cov["totals"]["callables"] == {"covered": 3, "total": 4, "percent": 75.0}
    nn = cov["sections"]["nn"]
    assert (nn["tests"], nn["tests_with_checks"]) == (2, 1)
    assert nn["callables"] == {"covered": 1, "percent": 25.0, "names": ["torch.a"]}
    assert cov["sections"]["ops"]["callables"]["names"] == ["torch.c"]
    assert cov["sections"]["(other)"]["tests"] == 1
    assert "names" not in led.as_dict(section_names=False)["sections"]["nn"]["callables"]


def test_ledger_notes_a_kind_not_measured():
    led = Ledger(_tiny_universe())
    led.note("overloads", "no TorchDispatchMode")
    cov = led.as_dict()
    assert cov["kinds"]["overloads"]["not_measured"] == "no TorchDispatchMode"
    assert "not measured" in "\n".join(coverage.summary_lines(cov))


def test_summary_lines_list_uncovered():
    led = Ledger(_tiny_universe())
    led.add(Usage(nn_modules=frozenset({"torch.nn.X"})), checks=1, section="nn")
    text = "\n".join(coverage.summary_lines(led.as_dict()))
    assert "nn_modules      1 / 2" in text and "torch.nn.Y" in text and "section nn: 1 tests" in text


# ------------------------------------------------------------------ diff
def test_diff_new_lost_gained_removed():
    base_u = _tiny_universe()
    cand_u = Universe(torch_version="10.0", callables={"torch.a": 1, "torch.b": 2, "torch.c": 3, "torch.e": 5},
                      overloads=base_u.overloads, overloads_source="test", nn_modules=base_u.nn_modules, nn_excluded={})
    b = Ledger(base_u)
    b.add(Usage(frozenset({"torch.a", "torch.b", "torch.d"})), checks=1, section="x")
    c = Ledger(cand_u)
    c.add(Usage(frozenset({"torch.a", "torch.c"})), checks=1, section="x")
    d = coverage.diff(b.as_dict(), c.as_dict())
    k = d["kinds"]["callables"]
    assert k["untested"] == ["torch.b", "torch.e"]
    assert k["new_untested"] == ["torch.e"]
    assert k["lost"] == ["torch.b"]
    assert k["gained"] == ["torch.c"]
    assert k["removed"] == ["torch.d"]
    assert k["baseline"]["covered"] == 3 and k["candidate"]["covered"] == 2
    only = coverage.diff(None, c.as_dict())["kinds"]["callables"]
    assert only["untested"] == ["torch.b", "torch.e"] and "lost" not in only


def test_merge_equals_one_ledger_of_all_tests():
    """Shards or xdist workers merged give the figures of one run over all their tests."""
    usages = [(Usage(frozenset({"torch.a", "torch.empty"}), frozenset({"aten.a.default"})), 2, "nn"),
              (Usage(frozenset({"torch.b"})), 0, "nn"),
              (Usage(frozenset({"torch.c"}), nn_modules=frozenset({"torch.nn.Y"})), 1, "ops")]
    whole, parts = Ledger(_tiny_universe()), [Ledger(_tiny_universe()) for _ in usages]
    for (u, n, sec), part in zip(usages, parts):
        whole.add(u, checks=n, section=sec)
        part.add(u, checks=n, section=sec)
    assert coverage.merge([p.as_dict() for p in parts]) == whole.as_dict()
    other = _tiny_universe()
    object.__setattr__(other, "torch_version", "0.1")
    with pytest.raises(ValueError, match="different torch builds"):
        coverage.merge([whole.as_dict(), Ledger(other).as_dict()])
    with pytest.raises(ValueError, match="no names"):
        coverage.merge([whole.as_dict(section_names=False)])


# ------------------------------------------------------------------ core and script
def test_core_does_not_import_pytest():
    code = "import sys, harness.coverage as c; c.universe(); assert 'pytest' not in sys.modules, 'pytest imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_coverage_measure_script_end_to_end(tmp_path):
    """The script runs pytest with the recorder per test and writes the ledger: a checked test's calls
    count, an unchecked test's calls are only 'touched'."""
    sec = tmp_path / "suites" / "demo"
    sec.mkdir(parents=True)
    (sec / "test_demo.py").write_text(textwrap.dedent("""
        import torch
        from harness.checks import assert_close

        def test_checked():
            x = torch.ones(3)
            assert_close("torch.exp", torch.exp(x), 2.718281828459045)

        def test_unchecked():
            torch.cos(torch.ones(2))
    """))
    out = tmp_path / "cov.json"
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "coverage-measure"), "suites/demo", "--json", str(out)],
                         cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stdout + res.stderr
    cov = json.loads(out.read_text())
    c = cov["kinds"]["callables"]
    assert "torch.exp" in c["covered_names"] and "torch.cos" not in c["covered_names"]
    assert "torch.cos" in c["touched_without_check"]
    assert "aten.exp.default" in cov["kinds"]["overloads"]["covered_names"]
    assert cov["sections"]["demo"]["tests"] == 2 and cov["sections"]["demo"]["tests_with_checks"] == 1
    assert "summed pytest durations" in res.stdout
