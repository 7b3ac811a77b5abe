"""Operator library (OpInfo lane): every op of torch's OpInfo database against an oracle.

* ``test_ref``: the op against its NumPy/SciPy reference ``op.ref``, computed from the same values in
  float64 and rounded once to the dtype torch returned, with this project's tolerance table (op class
  per OpInfo family, ``_opinfo.op_class``), never OpInfo's own tolerances. The reference is called the
  way torch's own reference tests call it for the op's family (``_opinfo.reference_calls``).
* ``test_precision``: a float32 / bfloat16 / float16 (complex64) result against the same sample computed
  in float64 (complex128) on the CPU, so a wrong low-precision kernel fails without a NumPy reference;
  the result's dtype must follow the input's.
* ``test_zero_size``: the op on zero-size inputs against the reference on the same empty arrays (result
  shapes, identities of empty reductions, and an error where NumPy raises one).

Cases come from ``suites/ops/conftest.py`` (``[cpu-float32-add]``); tables and adapters from
``suites/ops/_opinfo.py``.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from harness.checks import assert_true
from suites.ops import _opinfo

# OpInfo samples exercise deprecated and beta code paths on purpose: their warnings are not findings.
pytestmark = pytest.mark.filterwarnings("ignore")


def _quiet(thunk):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return thunk()


@_opinfo.law("ref")
def test_ref(device, opinfo_case, tier):
    """Catches a kernel that computes the wrong values for some input of the op's sample set (wrong
    formula, ignored argument such as alpha=/dim=/keepdim=, wrong branch for negative or large values,
    wrong result shape) against NumPy/SciPy in float64."""
    op = _opinfo.begin(device, opinfo_case, tier)
    cls, api = _opinfo.class_at(op, opinfo_case.dtype), _opinfo.api_name(op)
    for i, s in enumerate(_opinfo.case_samples(op, device, opinfo_case, tier)):
        for label, run_torch, run_ref in _opinfo.reference_calls(op, s, device, opinfo_case.dtype):
            actual = run_torch()
            expected = _quiet(run_ref)
            _opinfo.assert_results_close(api, actual, expected, op=cls, exact_dtype=False, round_expected=True,
                                         normwise=opinfo_case.dtype in ("bfloat16", "float16"),
                                         scale=_opinfo.scale_of(op), args=f"vs op.ref, sample {i}: {label}")


@_opinfo.law("precision")
def test_precision(device, opinfo_case, tier):
    """Catches a low-precision kernel (float32 / bfloat16 / float16 / complex64) that is wrong while the
    float64 one is right (a bad vectorised path, a wrong accumulation type, a conversion bug), and a
    result dtype that does not follow the input dtype."""
    op = _opinfo.begin(device, opinfo_case, tier)
    low = opinfo_case.dtype
    high = _opinfo.high_of(low)
    cls, api = _opinfo.class_at(op, opinfo_case.dtype), _opinfo.api_name(op)
    fixed = opinfo_case.op_key in _opinfo.FIXED_OUTPUT_DTYPE
    gauge = opinfo_case.op_key in _opinfo.GAUGE_AMBIGUOUS
    for i, s in enumerate(_opinfo.case_samples(op, device, opinfo_case, tier)):
        twin = _opinfo.to_device(_opinfo.upcast(s, low, high), "cpu")
        where = f"{low} vs the same sample in {high} on cpu, sample {i}: {s.describe()}"
        _opinfo.same_rng(device)
        actual = s.call(op.op)
        _opinfo.same_rng("cpu")
        expected = twin.call(op.op)
        if not fixed:
            _opinfo.assert_dtypes_follow(api, actual, expected, low, high, sample=s, args=where)
        if gauge:
            actual, expected = s.output_process_fn_grad(actual), twin.output_process_fn_grad(expected)
        _opinfo.assert_results_close(api, actual, expected, op=cls, exact_dtype=False, round_expected=True,
                                     normwise=True, scale=_opinfo.scale_of(op), args=where)


@_opinfo.law("zero_size")
def test_zero_size(device, opinfo_case, tier):
    """Catches a kernel that mishandles empty inputs: a wrong result shape, a wrong identity for an
    empty reduction (sum 0, prod 1), garbage values, or no error where the reference raises one."""
    op = _opinfo.begin(device, opinfo_case, tier)
    cls, api = _opinfo.class_at(op, opinfo_case.dtype), _opinfo.api_name(op)
    chosen = _opinfo.case_samples(op, device, opinfo_case, tier, where=_opinfo.has_zero_sizable)
    if not chosen:
        pytest.skip(f"{opinfo_case.op_key}: no sample has a tensor input with a leading dim to empty")
    for i, s in enumerate(chosen):
        z = _opinfo.zero_sized(s)
        for label, run_torch, run_ref in _opinfo.reference_calls(op, z, device, opinfo_case.dtype):
            where = f"zero-size sample {i}: {label}"
            try:
                expected = _quiet(run_ref)
            except (ValueError, IndexError, TypeError, ZeroDivisionError) as ref_err:
                err = None
                try:
                    run_torch()
                except (RuntimeError, ValueError, IndexError, TypeError) as exc:
                    err = exc
                assert_true(api, err is not None,
                            f"returned a result where the reference raises ({_opinfo.short(ref_err)})", args=where)
                continue
            actual = run_torch()
            _opinfo.assert_results_close(api, actual, expected, op=cls, exact_dtype=False, round_expected=True,
                                         args=where)
