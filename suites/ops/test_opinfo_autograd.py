"""Operator library (OpInfo lane): gradients of every differentiable op of torch's OpInfo database.

* ``test_backward``: the float32 (bfloat16, complex64 at full) backward of each sample against the
  backward of the same sample in float64 (on the CPU), with the same random output cotangent: a
  low-precision backward kernel that is wrong, or a gradient that goes missing, fails. The float64
  twin of the first sample also goes through a fast-mode ``gradcheck`` (random projections of the
  Jacobian against central differences), so a backward formula wrong at every precision fails at the
  default tier too.
* ``test_gradcheck`` / ``test_gradgradcheck`` (``--tier full``): the float64 (complex128) analytic first
  and second derivatives against finite differences (``torch.autograd.gradcheck`` / ``gradgradcheck``),
  which catches a backward formula that is wrong at every precision (off by a factor, a wrong sign, a
  dropped term).
"""
from __future__ import annotations

import pytest

from harness.checks import assert_equal, assert_true
from suites.ops import _opinfo

# OpInfo samples exercise deprecated and beta code paths on purpose: their warnings are not findings.
pytestmark = pytest.mark.filterwarnings("ignore")


def _grad_class(op, dtype) -> str:
    cls = _opinfo.class_at(op, dtype)
    return "gradient" if cls in ("exact", "elementwise") else cls


@_opinfo.law("backward")
def test_backward(device, opinfo_case, tier):
    """Catches a backward kernel that is wrong at low precision only (a bad vectorised path, a float32
    accumulation bug), a gradient that is None or zero at one precision, and a non-finite gradient."""
    import torch

    op = _opinfo.begin(device, opinfo_case, tier)
    low = opinfo_case.dtype
    high = _opinfo.high_of(low)
    api = f"{_opinfo.api_name(op)} backward"
    gen = torch.Generator().manual_seed(_opinfo._seed(opinfo_case.op_key, low, "cotangent"))
    ran = 0
    checked = False
    for i, s in enumerate(_opinfo.case_samples(op, device, opinfo_case, tier, requires_grad=True)):
        twin = _opinfo.to_device(_opinfo.upcast(s, low, high), "cpu")
        fn_lo, in_lo = _opinfo.differentiable(op, s)
        fn_hi, in_hi = _opinfo.differentiable(op, twin)
        if not in_lo:
            continue
        _opinfo.same_rng(device)
        out_lo = fn_lo(*in_lo)
        _opinfo.same_rng("cpu")
        out_hi = fn_hi(*in_hi)
        where = f"{low} vs {high} backward, sample {i}: {s.describe()}"
        assert_equal(api, len(out_lo), len(out_hi), args=f"number of differentiable results; {where}")
        if not out_hi:
            continue
        ran += 1
        cot_hi = [torch.randn(o.shape, dtype=o.dtype, generator=gen) for o in out_hi]
        cot_lo = [c.to(device=o.device, dtype=o.dtype) for c, o in zip(cot_hi, out_lo)]
        g_lo = torch.autograd.grad(out_lo, in_lo, cot_lo, allow_unused=True)
        g_hi = torch.autograd.grad(out_hi, in_hi, cot_hi, allow_unused=True)
        for j, (a, e) in enumerate(zip(g_lo, g_hi)):
            assert_true(api, (a is None) == (e is None),
                        f"gradient of input {j} is {'None' if a is None else 'defined'} in {low} but "
                        f"{'None' if e is None else 'defined'} in {high}", args=where)
            if a is None:
                continue
            _opinfo.assert_results_close(api, a, e, op=_grad_class(op, low), exact_dtype=False,
                                         round_expected=True, normwise=True, scale=_opinfo.scale_of(op),
                                         args=f"gradient of input {j}; {where}")
        if not checked and low == "float32":  # bfloat16 samples sit on kinks (integers, +-1) too often
            checked = True
            twin = _opinfo.to_device(_opinfo.upcast(s, low, high), "cpu")
            fn_hi, in_hi = _opinfo.differentiable(op, twin)
            ok = torch.autograd.gradcheck(fn_hi, tuple(in_hi), fast_mode=True, raise_exception=False,
                                          nondet_tol=op.gradcheck_nondet_tol)
            assert_true(api, ok, "float64 analytic gradient differs from finite differences (fast-mode "
                                 "gradcheck; rerun with raise_exception=True for the element)", args=where)
    if not ran:
        pytest.skip(f"{opinfo_case.op_key}: no sample has a differentiable floating result")


def _check_grad(opinfo_case, device, tier, second: bool):
    import torch

    op = _opinfo.begin(device, opinfo_case, tier)
    api = f"{_opinfo.api_name(op)} {'second' if second else 'first'} derivative"
    ran = 0
    for i, s in enumerate(_opinfo.case_samples(op, device, opinfo_case, tier, requires_grad=True)):
        fn, inputs = _opinfo.differentiable(op, s)
        if not inputs or not fn(*inputs):
            continue
        ran += 1
        check = torch.autograd.gradgradcheck if second else torch.autograd.gradcheck
        # fast mode (random projections of the Jacobian), torch's own default for its OpInfo gradchecks,
        # unless the OpInfo asks for the full Jacobian
        fast = getattr(op, "gradcheck_fast_mode", None) is not False
        ok = check(fn, tuple(inputs), nondet_tol=op.gradcheck_nondet_tol, raise_exception=False, fast_mode=fast)
        assert_true(api, ok, "analytic derivative differs from finite differences (rerun with "
                             "raise_exception=True for the element)", args=f"sample {i}: {s.describe()}")
    if not ran:
        pytest.skip(f"{opinfo_case.op_key}: no sample has a differentiable floating result")


@_opinfo.law("gradcheck")
def test_gradcheck(device, opinfo_case, tier):
    """Catches a backward formula that is wrong at every precision (a factor, a sign, a dropped term):
    float64 analytic gradients against central finite differences."""
    _check_grad(opinfo_case, device, tier, second=False)


@_opinfo.law("gradgradcheck")
def test_gradgradcheck(device, opinfo_case, tier):
    """Catches a double-backward formula that is wrong (what Hessian-vector products, gradient
    penalties and MAML-style training rely on): float64 second derivatives against finite differences."""
    _check_grad(opinfo_case, device, tier, second=True)
