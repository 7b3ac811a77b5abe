"""§ 9.1 torch.export: static and dynamic-shape export, torch.export.save/load round trips,
shape-constraint enforcement, data-dependent control flow (and its torch.cond rewrite), and
decomposition to the core ATen opset.

Parity with eager for every zoo model is in test_parity.py; this module checks torch.export's own
contracts.
"""
from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.export._lanes import reference
from suites.export._zoo import EXAMPLE_BATCH, ZOO

if not hasattr(getattr(torch, "export", None), "Dim"):
    pytest.skip("torch.export.export / torch.export.Dim are missing in this torch", allow_module_level=True)

from torch.export import Dim  # noqa: E402

# a call outside the exported shape guards raises; the exception type changed across releases
# (RuntimeError in 2.6-2.8, AssertionError "Guard failed" in newer builds)
GUARD_ERRORS = (RuntimeError, AssertionError, ValueError)
GUARD_MATCH = r"(?i)(guard|shape|size|expected|range|bound)"


@pytest.mark.smoke
@pytest.mark.parametrize("model,lane", [("mlp", "export"), ("cnn", "export_dynamic"), ("transformer", "export")])
def test_export_save_load_round_trip(export_cache, device, model, lane):
    """torch.export.save/load (file and BytesIO) give back an ExportedProgram whose module computes
    exactly what the original computes, with the same state_dict; catches a serializer that drops
    or reorders weights, buffers or the graph's constants."""
    entry = ZOO[model]
    art = export_cache.get(model, lane, device)
    ep, loaded = art.obj, art.loaded
    inputs = entry.inputs(device=device)
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    buf.seek(0)
    from_bytes = torch.export.load(buf)
    with torch.no_grad():
        before = ep.module()(*inputs)
        after = loaded.module()(*inputs)
        via_bytes = from_bytes.module()(*inputs)
    api = "torch.export.load"
    assert_equal(api, after, before, args=f"{model}, {lane}, file round trip")
    assert_equal(api, via_bytes, before, args=f"{model}, {lane}, BytesIO round trip")
    assert_equal(api, sorted(loaded.state_dict), sorted(ep.state_dict), args=f"{model} state_dict keys")
    for k, v in ep.state_dict.items():
        assert_equal(api, loaded.state_dict[k], v, args=f"{model} state_dict[{k!r}]")
    assert_close(api, after, reference(entry, inputs, device), op="export", args=f"{model}, {lane}")


def test_export_state_dict_and_constants(device):
    """An ExportedProgram lifts parameters and persistent buffers into state_dict (same values as
    the module) and non-persistent buffers into constants; catches an export that bakes a buffer
    in at the wrong value or loses a custom module's parameter."""
    entry = ZOO["buffered"]
    model = entry.build(device)
    ep = torch.export.export(model, entry.inputs(device=device))
    api = "torch.export.export"
    sd = model.state_dict()
    assert_equal(api, sorted(ep.state_dict), sorted(sd), args="state_dict keys (params + persistent buffers)")
    for k, v in sd.items():
        assert_equal(api, ep.state_dict[k], v, args=f"state_dict[{k!r}]")
    assert_true(api, "norm.inv_std" in ep.constants, "non-persistent buffer norm.inv_std not in ep.constants")
    assert_equal(api, ep.constants["norm.inv_std"], model.norm.inv_std, args="constants['norm.inv_std']")
    inputs = entry.inputs(batch=EXAMPLE_BATCH, device=device)
    with torch.no_grad():
        assert_close(api, ep.module()(*inputs), reference(entry, inputs, device), op="export", args="buffered")


def test_export_static_shape_rejects_other_batch(export_cache, device):
    """A program exported without dynamic_shapes is specialised to the example's shapes: calling it
    at another batch size raises instead of computing garbage; catches missing input guards."""
    entry = ZOO["mlp"]
    mod = export_cache.get("mlp", "export", device).loaded.module()
    for batch in (1, EXAMPLE_BATCH * 2):
        assert_raises("ExportedProgram.module", GUARD_ERRORS, mod, *entry.inputs(batch=batch, device=device),
                      match=GUARD_MATCH, args=f"static export, batch={batch}")


def test_export_dim_max_enforced(device):
    """torch.export.Dim(min, max) bounds the dynamic axis: the program runs anywhere inside the range
    (matching eager), raises above max, and the bounds appear in range_constraints; catches a build
    that ignores max (a program called outside its validated range)."""
    entry = ZOO["mlp"]
    model = entry.build(device)
    batch = Dim("batch", min=2, max=8)
    ep = torch.export.export(model, entry.inputs(device=device), dynamic_shapes=({0: batch},))
    ranges = list(ep.range_constraints.values())
    assert_true("torch.export.export", any(int(r.lower) == 2 and int(r.upper) == 8 for r in ranges),
                f"Dim(min=2, max=8) not in range_constraints: {ep.range_constraints}")
    mod = ep.module()
    for n in (2, 5, 8):
        inputs = entry.inputs(batch=n, device=device)
        with torch.no_grad():
            assert_close("torch.export.export", mod(*inputs), reference(entry, inputs, device), op="export",
                         args=f"Dim(max=8), batch={n}")
    assert_raises("ExportedProgram.module", GUARD_ERRORS, mod, *entry.inputs(batch=16, device=device),
                  match=GUARD_MATCH, args="Dim(max=8) called at batch 16")


def test_export_dim_on_specialised_axis_raises(device):
    """Marking an axis dynamic that the model pins (a Linear's feature dimension) is a constraint
    violation at export time (torch._dynamo.exc.UserError, a RuntimeError); catches an exporter that
    silently specialises a dimension the user declared dynamic."""
    entry = ZOO["mlp"]
    model = entry.build(device)
    assert_raises("torch.export.export", (RuntimeError, Exception), torch.export.export, model,
                  entry.inputs(device=device), dynamic_shapes=({1: Dim("features")},),
                  match=r"(?i)constraint|specializ|specialis", args="Dim on the Linear's in_features axis")


def test_export_data_dependent_control_flow_raises(device):
    """Python control flow on tensor values cannot be captured: torch.export.export raises
    (GuardOnDataDependentSymNode / UserError) instead of silently keeping one branch; catches an
    exporter that specialises a data-dependent branch (the tracing pitfall)."""
    entry = ZOO["control_flow"]
    assert_raises("torch.export.export", Exception, torch.export.export, entry.build(device),
                  entry.inputs(case="pos", device=device), match=r"(?i)data.dependent|guard|control flow",
                  args="if x.sum() > 0")


class _CondModel(nn.Module):
    """ZOO's control-flow model rewritten with torch.cond (the documented export-friendly form)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return torch.cond(x.sum() > 0, lambda t: torch.relu(self.inner.pos(t)), lambda t: self.inner.neg(t) * 2.0, (x,))


def test_export_torch_cond_keeps_both_branches(device):
    """With torch.cond the data-dependent branch survives export: one program, called on inputs
    taking either branch (and at another batch size, with a dynamic Dim), matches eager; catches a
    cond lowering that keeps only the traced branch."""
    if not hasattr(torch, "cond"):
        pytest.skip("torch.cond is missing in this torch")
    entry = ZOO["control_flow"]
    model = _CondModel(entry.build(device)).eval()
    ep = torch.export.export(model, entry.inputs(case="pos", device=device),
                             dynamic_shapes=({0: Dim("batch", min=1, max=64)},))
    mod = ep.module()
    for case in ("pos", "neg"):
        for batch in (EXAMPLE_BATCH, 9):
            inputs = entry.inputs(batch=batch, case=case, device=device)
            with torch.no_grad():
                assert_close("torch.cond", mod(*inputs), reference(entry, inputs, device), op="export",
                             args=f"exported, case={case}, batch={batch}")


def test_export_run_decompositions(export_cache, device):
    """ExportedProgram.run_decompositions() lowers to the core ATen opset without changing the
    numbers (CNN: conv, batch_norm, pooling decomposed); catches a wrong decomposition."""
    entry = ZOO["cnn"]
    ep = export_cache.get("cnn", "export", device).obj
    core = ep.run_decompositions()
    inputs = entry.inputs(device=device)
    with torch.no_grad():
        got = core.module()(*inputs)
    assert_close("ExportedProgram.run_decompositions", got, reference(entry, inputs, device), op="export",
                 args="cnn, core ATen")
