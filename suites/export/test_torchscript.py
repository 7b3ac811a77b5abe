"""§ 9.1 TorchScript: torch.jit.trace / torch.jit.script, save/load round trips, freezing, and the
documented limitation of tracing (control flow frozen to the traced path).

Parity with eager for every zoo model is in test_parity.py; this module checks TorchScript's own
contracts. torch.jit is deprecated in recent torch; its deprecation warning is silenced in one place
(:func:`suites.export._lanes.jit_quiet`).
"""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.export._lanes import jit_quiet, reference
from suites.export._zoo import ZOO

pytestmark = pytest.mark.skipif(not hasattr(torch, "jit"), reason="torch.jit is absent from this torch build")


def _np(t):
    return t.detach().cpu().double().numpy()


@pytest.mark.smoke
@pytest.mark.parametrize("lane", ["jit_trace", "jit_script"])
@pytest.mark.parametrize("model", ["mlp", "cnn", "transformer"])
def test_jit_save_load_round_trip(export_cache, device, model, lane):
    """torch.jit.save/torch.jit.load (file and BytesIO) give back a module that computes exactly
    what the saved one computes, with the same parameters and buffers and still in eval mode;
    catches a serializer that drops or reorders weights, loses buffers or the training flag."""
    entry = ZOO[model]
    art = export_cache.get(model, lane, device)
    inputs = entry.inputs(batch=3, device=device)
    with jit_quiet(), torch.no_grad():
        before = art.obj(*inputs)
        after = art.loaded(*inputs)
        buf = io.BytesIO()
        torch.jit.save(art.obj, buf)
        buf.seek(0)
        from_bytes = torch.jit.load(buf, map_location=device)(*inputs)
    api = "torch.jit.load"
    assert_equal(api, after, before, args=f"{model}, {lane}, file round trip")
    assert_equal(api, from_bytes, before, args=f"{model}, {lane}, BytesIO round trip")
    assert_true(api, art.loaded.training is False, "loaded module is back in training mode", args=model)
    eager_sd = entry.build(device).state_dict()
    loaded_sd = art.loaded.state_dict()
    assert_equal(api, sorted(loaded_sd), sorted(eager_sd), args=f"{model} state_dict keys")
    for k, v in eager_sd.items():
        assert_equal(api, loaded_sd[k], v, args=f"{model} state_dict[{k!r}]")
    assert_close(api, after, reference(entry, inputs, device), op="export", args=f"{model}, {lane}, batch=3")


def test_jit_trace_freezes_control_flow(device):
    """Documented limitation: tracing records only the branch the example input took (and warns
    with TracerWarning); the traced model then computes the WRONG branch for an input that takes the
    other one, while torch.jit.script keeps the `if` and gets both right. Catches a tracer that stops
    warning, or a script compiler that flattens control flow."""
    entry = ZOO["control_flow"]
    model = entry.build(device)
    pos = entry.inputs(case="pos", device=device)
    neg = entry.inputs(case="neg", device=device)
    with jit_quiet(), torch.no_grad():
        with pytest.warns(torch.jit.TracerWarning):
            traced = torch.jit.trace(model, pos)
        scripted = torch.jit.script(model)
        t_neg, s_neg, s_pos = traced(*neg), scripted(*neg), scripted(*pos)
    # oracle of the frozen (positive) branch, in float64 NumPy from the weights
    w, b = _np(model.pos.weight), _np(model.pos.bias)
    frozen = np.maximum(_np(neg[0]) @ w.T + b, 0.0)
    assert_close("torch.jit.trace", t_neg, frozen, op="export", args="traced on pos, called on neg: frozen branch")
    ref_neg = reference(entry, neg, device)
    off = float((t_neg.double() - ref_neg).abs().max())
    assert_true("torch.jit.trace", off > 0.1, f"traced model matched the other branch (max diff {off:.3g})",
                args="the traced branch should be wrong for the other input")
    assert_close("torch.jit.script", s_neg, ref_neg, op="export", args="control flow, negative branch")
    assert_close("torch.jit.script", s_pos, reference(entry, pos, device), op="export", args="control flow, positive branch")


def test_jit_trace_check_inputs_detects_divergence(device):
    """torch.jit.trace(check_inputs=...) re-traces on the extra inputs and raises TracingCheckError
    when the graphs differ (here: another branch); catches a checker that accepts a divergent trace."""
    entry = ZOO["control_flow"]
    model = entry.build(device)
    pos = entry.inputs(case="pos", device=device)
    neg = entry.inputs(case="neg", device=device)
    err_type = getattr(torch.jit, "TracingCheckError", RuntimeError)
    with jit_quiet(), torch.no_grad(), pytest.warns(torch.jit.TracerWarning):
        assert_raises("torch.jit.trace", err_type, torch.jit.trace, model, pos, check_inputs=[neg],
                      args="check_inputs takes the other branch")
        traced = torch.jit.trace(model, pos, check_inputs=[entry.inputs(batch=7, case="pos", device=device)])
    with torch.no_grad():
        assert_close("torch.jit.trace", traced(*pos), reference(entry, pos, device), op="export",
                     args="check_inputs on the same branch passes")


def test_jit_script_keeps_submodules_buffers_and_methods(device):
    """A scripted model keeps custom submodules, their parameters, persistent and non-persistent
    buffers (the persistent ones in state_dict) and the helper methods forward calls; catches a
    compiler that drops a buffer, inlines away an attribute or mis-compiles a custom module."""
    entry = ZOO["buffered"]
    model = entry.build(device)
    with jit_quiet():
        scripted = torch.jit.script(model)
    api = "torch.jit.script"
    assert_equal(api, scripted.norm.mean, model.norm.mean, args="persistent buffer norm.mean")
    assert_equal(api, scripted.norm.inv_std, model.norm.inv_std, args="non-persistent buffer norm.inv_std")
    assert_equal(api, scripted.offset, np.array([0.25, -0.5, 1.0]), args="buffer offset")
    sd = scripted.state_dict()
    assert_true(api, "norm.mean" in sd and "offset" in sd, "persistent buffers missing from state_dict")
    # (no claim about the non-persistent buffer in state_dict: TorchScript modules have never
    # honoured persistent=False there, a known long-standing gap, not a contract)
    x = torch.linspace(-3, 3, 16, device=device).reshape(1, 16)
    with torch.no_grad():
        got = scripted.gate.gate(x)
    alpha = _np(model.gate.alpha)
    assert_close(api, got, 1.0 / (1.0 + np.exp(-alpha * _np(x))), op="export", args="custom method Gate.gate")
    inputs = entry.inputs(device=device)
    with torch.no_grad():
        assert_close(api, scripted(*inputs), reference(entry, inputs, device), op="export", args="buffered model")


def test_jit_load_map_location(device, tmp_path):
    """torch.jit.load(map_location="cpu") puts every parameter and buffer on the CPU and the module
    still computes the same numbers; catches a loader that ignores map_location."""
    entry = ZOO["buffered"]
    model = entry.build(device)
    path = tmp_path / "buffered.pt"
    with jit_quiet():
        torch.jit.save(torch.jit.script(model), str(path))
        loaded = torch.jit.load(str(path), map_location="cpu")
    for name, t in list(loaded.named_parameters()) + list(loaded.named_buffers()):
        assert_equal("torch.jit.load", t.device.type, "cpu", args=f"map_location='cpu': {name}")
    inputs = entry.inputs()
    with torch.no_grad():
        assert_close("torch.jit.load", loaded(*inputs), reference(entry, inputs, "cpu"), op="export",
                     args="map_location='cpu'")


def test_jit_freeze(device):
    """torch.jit.freeze inlines parameters and folds eval-mode BatchNorm into the convolutions
    (documented for eval-mode modules) without changing the numbers, and refuses a module in
    training mode; catches a wrong conv-BN fold (running statistics ignored) or a freeze that
    silently accepts a training-mode module."""
    entry = ZOO["cnn"]
    model = entry.build(device)
    inputs = entry.inputs(device=device)
    with jit_quiet():
        frozen = torch.jit.freeze(torch.jit.script(model))
        with torch.no_grad():
            got = frozen(*inputs)
        assert_true("torch.jit.freeze", len(list(frozen.parameters())) == 0,
                    "frozen module still exposes parameters (they should be inlined as constants)")
        train = torch.jit.script(entry.build(device).train())
        assert_raises("torch.jit.freeze", (RuntimeError, AssertionError), torch.jit.freeze, train,
                      args="module in training mode")
    assert_close("torch.jit.freeze", got, reference(entry, inputs, device), op="export", args="cnn (conv+BN fold)")


class _Unscriptable(nn.Module):
    def forward(self, x):
        return sum(v * 2 for v in [x, x])  # generator expressions are outside the TorchScript subset


def test_jit_script_rejects_unsupported_python():
    """torch.jit.script compiles a subset of Python and raises at compile time on the rest (here a
    generator expression); catches a compiler that accepts the module and fails (or computes
    something else) at run time."""
    with jit_quiet():
        assert_raises("torch.jit.script", (RuntimeError, torch.jit.frontend.NotSupportedError
                                           if hasattr(torch.jit, "frontend") else RuntimeError),
                      torch.jit.script, _Unscriptable(), args="generator expression in forward")
