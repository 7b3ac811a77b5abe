"""§ 9.1 TorchScript, torch.export and ONNX: the parity matrix (every zoo model through every lane).

Each exported artefact is saved, loaded back and run; its output is compared with ONE reference,
the eager model in float64 on float64 inputs, under the ``export`` tolerance at float32. The
measured error of every (model, lane) is recorded, so a lane that drifts is visible in the run
record before it fails. Unsupported pairs are strict xfails with their reason (from the zoo), so an
exporter that starts to handle one is reported as an unexpected pass.

Default tier: the zoo's default models (MLP, CNN, Transformer) through every lane whose export is
quick; ``--tier full``: the whole model x lane matrix.
"""
from __future__ import annotations

import pytest
import torch

from harness.checks import assert_close, assert_equal
from suites.export._lanes import DYNAMIC_LANES, LANES, MAX_BATCH, lane_available, reference
from suites.export._zoo import EXAMPLE_BATCH, EXAMPLE_SEQ, ZOO

API = {"eager": "nn.Module.eval", "jit_trace": "torch.jit.trace", "jit_script": "torch.jit.script",
       "export": "torch.export.export", "export_dynamic": "torch.export.export",
       "onnx_dynamo": "torch.onnx.export", "onnx_legacy": "torch.onnx.export"}


def _pairs(lanes, dynamic: bool):
    out = []
    for name, entry in ZOO.items():
        for lane in lanes:
            marks = []
            reason = entry.unsupported.get(lane) or (entry.unsupported_dynamic.get(lane) if dynamic else None)
            if reason:
                marks.append(pytest.mark.xfail(reason=reason, strict=True))
            if not entry.default or lane in entry.slow_lanes:
                marks.append(pytest.mark.slow)
            elif name == "mlp" and lane in ("jit_script", "export") and not dynamic:
                marks.append(pytest.mark.smoke)
            out.append(pytest.param(name, lane, marks=marks, id=f"{name}-{lane}"))
    return out


def _artifact(export_cache, model, lane, device):
    why = lane_available(lane)
    if why:
        pytest.skip(why)
    return export_cache.get(model, lane, device)


@pytest.mark.parametrize("model,lane", _pairs(LANES, dynamic=False))
def test_export_parity(export_cache, device, model, lane):
    """The exported, saved and reloaded artefact computes what the eager model computes at the
    example's shapes, for every input case (both branches of the control-flow model); catches an
    exporter or runtime that drops a layer, uses BatchNorm batch statistics, keeps dropout active,
    ignores a mask or buffer, or freezes a branch."""
    entry = ZOO[model]
    art = _artifact(export_cache, model, lane, device)
    for case in entry.cases:
        inputs = entry.inputs(case=case, device=device)
        got = art.run(*inputs)
        ref = reference(entry, inputs, device)
        assert_equal(API[lane], tuple(got.shape), tuple(ref.shape), args=f"{model}, lane={lane}, case={case}")
        assert_close(API[lane], got, ref, op="export", check_dtype=torch.float32,
                     args=f"{model}, lane={lane}, case={case}, batch={EXAMPLE_BATCH}")


@pytest.mark.parametrize("model,lane", _pairs(DYNAMIC_LANES, dynamic=True))
def test_dynamic_shape_parity(export_cache, device, model, lane):
    """An artefact exported with dynamic batch (and sequence) axes runs at shapes other than the
    example's, down to batch 1 and up to the declared maximum, and still matches eager; catches a
    dynamic export that silently specialises a size or mis-broadcasts at batch 1."""
    entry = ZOO[model]
    art = _artifact(export_cache, model, lane, device)
    shapes = [(1, EXAMPLE_SEQ), (3, EXAMPLE_SEQ), (MAX_BATCH // 4, EXAMPLE_SEQ)]
    if entry.has_seq:
        shapes += [(2, 3), (5, 11)]
    for case in entry.cases:
        for batch, seq in shapes:
            inputs = entry.inputs(batch, seq, case=case, device=device)
            got = art.run(*inputs)
            ref = reference(entry, inputs, device)
            assert_close(API[lane], got, ref, op="export", check_dtype=torch.float32,
                         args=f"{model}, lane={lane}, case={case}, batch={batch}, seq={seq}")
