"""Operator library (OpInfo lane): consistency laws over every op of torch's OpInfo database.

Each law compares two code paths of the same op on the same values, so it catches a kernel that is
wrong on one path only, for ops with and without a NumPy reference:

* ``test_out``: ``out=`` equals the functional result, into a contiguous ``out`` and into a non-contiguous
  ``out`` (written in place, its gaps untouched, the ``out`` tensor returned), and an ``out`` of a dtype
  the result cannot be cast to raises.
* ``test_inplace``: the in-place variant equals the out-of-place result and returns ``self``; in place on
  a broadcast input, or into a dtype the result cannot be cast to, raises.
* ``test_method``: ``Tensor.op`` equals ``torch.op``.
* ``test_gapped``: inputs with real gaps between elements (``[..., ::2]`` of a NaN-filled storage) equal
  their contiguous copies, and the call leaves its inputs and their gaps untouched.
* ``test_transposed``: column-major inputs (``.mT.contiguous().mT``) equal their row-major copies.
* ``test_expanded``: an input expanded with stride 0 (along its first and its last dim) equals its
  materialised copy.
* ``test_vmap``: ``torch.func.vmap`` over a batch of two inputs equals a loop over them.

Comparisons between two kernels (layouts, vmap) of ops that combine many terms are norm-wise
(``_opinfo._normwise``); elementwise and data-movement ops must agree element by element.
"""
from __future__ import annotations

import pytest

from harness.checks import assert_equal, assert_raises, assert_true
from suites.ops import _opinfo

# OpInfo samples exercise deprecated and beta code paths on purpose (and vmap warns about its slow
# fallback): their warnings are not findings.
pytestmark = pytest.mark.filterwarnings("ignore")


def _results(api, actual, expected, op, case, where, *, normwise=False):
    _opinfo.assert_results_close(api, actual, expected, op=_opinfo.class_at(op, case.dtype), args=where,
                                 normwise=normwise, scale=_opinfo.scale_of(op))


def _none_apply(case, what):
    pytest.skip(f"{case.op_key}: no sample {what}")


@_opinfo.law("out")
def test_out(device, opinfo_case, tier):
    """Catches an ``out=`` path that computes something else than the functional one, ignores a
    non-contiguous ``out`` (writes a temporary, or writes densely over its gaps), reallocates or does not
    return ``out``, or silently casts a floating result into an integer ``out``."""
    import torch

    op = _opinfo.begin(device, opinfo_case, tier)
    api = _opinfo.api_name(op) + "(out=)"
    ran = 0
    for i, s in enumerate(_opinfo.case_samples(op, device, opinfo_case, tier)):
        expected = _opinfo.copy_sample(s).call(op.op)
        outs = _opinfo.leaves(expected)
        if not outs or not all(_opinfo.is_tensor(t) for t in outs):
            continue
        ran += 1
        where = f"sample {i}: {s.describe()}"
        for layout in ("contiguous", "gapped"):
            out = _opinfo.tree_map(lambda t: _opinfo.out_like(t, layout), expected)
            ptrs = [t.data_ptr() for t in _opinfo.leaves(out)]
            got = _opinfo.copy_sample(s).call(op.op, out=out)
            w = f"{layout} out; {where}"
            if got is not None:  # ops writing a list of tensors (split_copy...) return None by schema
                for j, (g, o) in enumerate(zip(_opinfo.leaves(got), _opinfo.leaves(out))):
                    assert_true(api, g is o or (g.data_ptr() == o.data_ptr() and g.shape == o.shape),
                                f"result {j} is not the out= tensor", args=w)
            assert_true(api, [t.data_ptr() for t in _opinfo.leaves(out)] == ptrs,
                        "an out= tensor of the right shape was reallocated", args=w)
            _results(api, out, expected, op, opinfo_case, w)
            if layout == "gapped":
                for j, o in enumerate(_opinfo.leaves(out)):
                    assert_true(api, _opinfo.gap_values_intact(o), f"wrote into the gaps of non-contiguous out {j}",
                                args=w)
        if any(t.is_floating_point() or t.is_complex() for t in outs):
            wrong = _opinfo.tree_map(lambda t: torch.zeros(t.shape, dtype=torch.long, device=t.device), expected)
            assert_raises(api, (RuntimeError, TypeError), s.call, op.op, out=wrong,
                          args=f"out= of dtype int64 for a floating result; {where}")
    if not ran:
        _none_apply(opinfo_case, "returns only tensors (nothing to write into)")


@_opinfo.law("inplace")
def test_inplace(device, opinfo_case, tier):
    """Catches an in-place variant that computes something else than the out-of-place op (e.g.
    ``add_`` ignoring ``alpha=``), returns a new tensor instead of ``self``, or silently writes a
    broadcast or uncastable result into ``self``."""
    import torch

    op = _opinfo.begin(device, opinfo_case, tier)
    api = _opinfo.api_name(op) + "_ (in-place)"
    ran = 0
    for i, s in enumerate(_opinfo.case_samples(op, device, opinfo_case, tier, where=_opinfo.has_tensor_input)):
        where = f"sample {i}: {s.describe()}"
        expected = _opinfo.copy_sample(s).call(op.op)
        if s.broadcasts_input:
            ran += 1
            assert_raises(api, RuntimeError, s.call, op.inplace_variant, args=f"input broadcast by the op; {where}")
            continue
        if not _opinfo.is_tensor(expected) or expected.shape != s.input.shape:
            continue
        if expected.dtype != s.input.dtype:
            if torch.can_cast(expected.dtype, s.input.dtype):
                continue  # a promoted result written back into self: op-specific (float_power_ refuses)
            ran += 1
            assert_raises(api, RuntimeError, s.call, op.inplace_variant,
                          args=f"{expected.dtype} result into a {s.input.dtype} self; {where}")
            continue
        ran += 1
        x = s.input
        got = s.call(op.inplace_variant)
        assert_true(api, got is x, "did not return self", args=where)
        _results(api, x, expected, op, opinfo_case, where)
    if not ran:
        _none_apply(opinfo_case, "has a result of the input's shape (nothing to do in place)")


@_opinfo.law("method")
def test_method(device, opinfo_case, tier):
    """Catches a ``Tensor`` method that diverges from the function (an argument dropped or mapped to
    the wrong parameter by the method binding)."""
    op = _opinfo.begin(device, opinfo_case, tier)
    api = f"Tensor.{op.name.rsplit('.', 1)[-1]}"
    chosen = _opinfo.case_samples(op, device, opinfo_case, tier, where=_opinfo.has_tensor_input)
    if not chosen:
        _none_apply(opinfo_case, "has a tensor input to call the method on")
    for i, s in enumerate(chosen):
        _opinfo.same_rng(device)
        expected = _opinfo.copy_sample(s).call(op.op)
        _opinfo.same_rng(device)
        got = s.call(op.method_variant)
        _results(api, got, expected, op, opinfo_case, f"method vs function, sample {i}: {s.describe()}")


@_opinfo.law("gapped")
def test_gapped(device, opinfo_case, tier):
    """Catches a kernel that ignores strides (reads the NaN gaps or the wrong elements) on inputs with
    real gaps, and an out-of-place op that writes into its inputs."""
    op = _opinfo.begin(device, opinfo_case, tier)
    api = _opinfo.api_name(op)
    mutates = opinfo_case.op_key in _opinfo.MUTATES_ARGS
    chosen = _opinfo.case_samples(op, device, opinfo_case, tier, where=_opinfo.has_gappable)
    if not chosen:
        _none_apply(opinfo_case, "has a tensor with at least one element and dimension")
    for i, s in enumerate(chosen):
        g = s.map(_opinfo.gapped)
        pairs = [(m, d) for m, d in zip(_opinfo.tensors_of((g.input, g.args, g.kwargs)),
                                        _opinfo.tensors_of((s.input, s.args, s.kwargs))) if not m.is_contiguous()]
        where = f"gapped inputs, sample {i}: {g.describe()}"
        before = [m.detach().clone() for m, _ in pairs]
        _opinfo.same_rng(device)
        expected = s.call(op.op)
        _opinfo.same_rng(device)
        got = g.call(op.op)
        _results(api, got, expected, op, opinfo_case, where, normwise=True)
        for j, ((m, d), b) in enumerate(zip(pairs, before)):
            if mutates:  # updated in place by contract: both layouts must end in the same state
                _results(api, m.detach(), d.detach(), op, opinfo_case,
                         f"input tensor {j} after the call (vs the contiguous run); {where}")
            else:
                assert_equal(api, m.detach(), b, args=f"input tensor {j} after the call; {where}")
            assert_true(api, _opinfo.gap_values_intact(m), f"wrote into the gaps of input tensor {j}", args=where)


@_opinfo.law("transposed")
def test_transposed(device, opinfo_case, tier):
    """Catches a kernel that assumes row-major memory (wrong results on column-major inputs, which are
    dense but reach the permuted-stride paths)."""
    op = _opinfo.begin(device, opinfo_case, tier)
    api = _opinfo.api_name(op)
    chosen = _opinfo.case_samples(op, device, opinfo_case, tier, where=_opinfo.has_matrix)
    if not chosen:
        _none_apply(opinfo_case, "has a tensor with two trailing dims of size >= 2")
    for i, s in enumerate(chosen):
        t_s = _opinfo.copy_sample(s).map(_opinfo.column_major)
        _opinfo.same_rng(device)
        expected = s.call(op.op)
        _opinfo.same_rng(device)
        got = t_s.call(op.op)
        _results(api, got, expected, op, opinfo_case, f"column-major inputs, sample {i}: {t_s.describe()}",
                 normwise=True)


@_opinfo.law("expanded")
def test_expanded(device, opinfo_case, tier):
    """Catches a kernel that mishandles stride-0 (expanded) inputs: reads them as if dense (wrong
    elements), or writes through them."""
    op = _opinfo.begin(device, opinfo_case, tier)
    api = _opinfo.api_name(op)
    ties = opinfo_case.op_key in _opinfo.TIE_INDICES
    chosen = _opinfo.case_samples(op, device, opinfo_case, tier, where=_opinfo.has_expandable)
    if not chosen:
        _none_apply(opinfo_case, "has a floating tensor input with a dim of size >= 2")
    for i, s in enumerate(chosen):
        for dim, exp_s, dense_s in _opinfo.expanded_variants(s):
            where = f"input expanded (stride 0) along dim {dim} vs its copy, sample {i}: {exp_s.describe()}"
            err_e = err_d = None
            try:
                _opinfo.same_rng(device)
                expected = dense_s.call(op.op)
            except (RuntimeError, ValueError, IndexError) as exc:  # an input the op rejects (e.g. singular)
                err_d = exc
            try:
                _opinfo.same_rng(device)
                got = exp_s.call(op.op)
            except (RuntimeError, ValueError, IndexError) as exc:
                err_e = exc
            if err_d is not None or err_e is not None:
                assert_true(api, type(err_d) is type(err_e),
                            "the expanded input and its dense copy behave differently: "
                            f"{_opinfo.short(err_e) if err_e else 'a result'} vs "
                            f"{_opinfo.short(err_d) if err_d else 'a result'}", args=where)
                continue
            if ties:  # equal values along the expanded dim: indices are unspecified, values are not
                got, expected = _opinfo.float_leaves(got), _opinfo.float_leaves(expected)
                where += " (values only: indices among equal values are unspecified)"
            _results(api, got, expected, op, opinfo_case, where, normwise=True)


@_opinfo.law("vmap")
def test_vmap(device, opinfo_case, tier):
    """Catches a batching rule that is wrong (mixes batch entries, drops an argument, wrong output
    batch dim): vmap over [x, x reversed] must equal calling the op on each."""
    import torch

    op = _opinfo.begin(device, opinfo_case, tier)
    api = f"torch.func.vmap({_opinfo.api_name(op)})"
    ran = 0
    for i, s in enumerate(_opinfo.case_samples(op, device, opinfo_case, tier, where=_opinfo.has_batchable)):
        first, second, stacked = _opinfo.vmap_batch(s)
        r0, r1 = s.with_input(first).call(op.op), s.with_input(second).call(op.op)
        if not all(_opinfo.is_tensor(t) for t in _opinfo.leaves(r0)):
            continue  # vmap returns tensors only; an op returning Python values cannot be vmapped
        ran += 1
        got = torch.func.vmap(lambda x: s.with_input(x).call(op.op))(stacked)
        _results(api, got, _opinfo.stack_results(r0, r1), op, opinfo_case,
                 f"vmap over a batch of 2, sample {i}: {s.describe()}", normwise=True)
    if not ran:
        _none_apply(opinfo_case, "has a tensor input and returns only tensors")
