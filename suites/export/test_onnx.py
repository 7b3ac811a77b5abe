"""§ 9.1 ONNX: torch.onnx.export (dynamo exporter, the default, and the legacy TorchScript-based
``dynamo=False``), onnx.checker, graph inputs/outputs and dynamic axes, external weight data
(``model.onnx.data``) versus a self-contained file, and onnxruntime sessions.

Parity of every zoo model through onnxruntime is in test_parity.py; this module checks the ONNX
file's own contracts. Without onnx / onnxruntime (/ onnxscript for the dynamo exporter) the tests
skip with the reason.
"""
from __future__ import annotations

import shutil

import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.export._lanes import input_names, onnx_export, ort_providers, ort_session, ort_run, reference
from suites.export._zoo import EXAMPLE_BATCH, ZOO

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install torchconform[onnx])")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install torchconform[onnx])")

LANES = ["onnx_dynamo", "onnx_legacy"]


def _need(lane):
    if lane == "onnx_dynamo":
        pytest.importorskip("onnxscript", reason="the dynamo ONNX exporter needs onnxscript (pip install onnxscript)")


def _param_bytes(model) -> int:
    return sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))


def _dims(value_info):
    return [(d.dim_param or None, d.dim_value if d.HasField("dim_value") else None)
            for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.smoke
@pytest.mark.parametrize("lane", LANES)
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_onnx_checker_and_graph_io(export_cache, device, model, lane):
    """The exported file passes onnx.checker.check_model, names its inputs/outputs as asked, keeps
    the batch axis symbolic (dynamic) and the other axes at their static sizes, and declares an
    ai.onnx opset; catches an exporter writing an invalid graph, losing dynamic axes or names."""
    _need(lane)
    entry = ZOO[model]
    path = export_cache.get(model, lane, device).path
    onnx.checker.check_model(str(path))  # raises onnx.checker.ValidationError on an invalid model
    proto = onnx.load(str(path))  # loads external data from the model's folder
    api = "torch.onnx.export"
    assert_equal(api, [i.name for i in proto.graph.input], input_names(entry), args=f"{model}, {lane}: input_names")
    assert_equal(api, [o.name for o in proto.graph.output], ["output"], args=f"{model}, {lane}: output_names")
    example = entry.inputs()
    for vi, x in zip(proto.graph.input, example):
        dims = _dims(vi)
        assert_equal(api, len(dims), x.dim(), args=f"{model}, {lane}: rank of {vi.name}")
        assert_true(api, dims[0][0] is not None and dims[0][1] is None,
                    f"batch axis of {vi.name} is not symbolic: {dims[0]}", args=f"{model}, {lane}")
        for axis, (param, value) in enumerate(dims[1:], start=1):
            if axis not in entry.dims[0]:
                assert_equal(api, value, x.shape[axis], args=f"{model}, {lane}: static axis {axis} of {vi.name}")
    opsets = {o.domain: o.version for o in proto.opset_import}
    assert_true(api, opsets.get("", opsets.get("ai.onnx", 0)) >= 9, f"no usable ai.onnx opset: {opsets}",
                args=f"{model}, {lane}")


def test_onnx_legacy_opset_version_and_static_axes(device, tmp_path):
    """dynamo=False honours opset_version (written to opset_import), and without dynamic_axes the
    graph is fixed to the example's batch: onnxruntime rejects another batch size while the example
    batch matches eager; catches an ignored opset_version or dynamic axes leaking in uninvited."""
    entry = ZOO["mlp"]
    model = entry.build(device)
    path = tmp_path / "static.onnx"
    with torch.no_grad():
        onnx_export(model, entry.inputs(device=device), path, entry, dynamo=False, dynamic=False, opset_version=17)
    proto = onnx.load(str(path))
    opsets = {o.domain: o.version for o in proto.opset_import}
    assert_equal("torch.onnx.export", opsets.get("", opsets.get("ai.onnx")), 17, args="dynamo=False, opset_version=17")
    assert_equal("torch.onnx.export", _dims(proto.graph.input[0]), [(None, EXAMPLE_BATCH), (None, 16)],
                 args="no dynamic_axes: static input shape")
    sess = ort_session(path, device)
    inputs = entry.inputs(device=device)
    assert_close("onnxruntime.InferenceSession.run", ort_run(sess, inputs, device), reference(entry, inputs, device),
                 op="export", args="static legacy export, example batch")
    other = entry.inputs(batch=EXAMPLE_BATCH + 3)
    assert_raises("onnxruntime.InferenceSession.run", Exception, ort_run, sess, other, device,
                  match=r"(?i)dimension|shape|index", args="static export called at another batch")


@pytest.mark.parametrize("external_data", [True, False], ids=["external_data", "single_file"])
def test_onnx_external_data(export_cache, device, tmp_path, external_data):
    """The dynamo exporter writes the weights to ``model.onnx.data`` beside ``model.onnx`` unless
    external_data=False, which gives one self-contained file. The external-data model loads from its
    folder (also after moving the pair elsewhere) and fails to load without its .data file; the
    single file carries all weights. Both match eager. Catches weights written to the wrong place,
    a model that references a missing file, or a single file missing its initializers."""
    pytest.importorskip("onnxscript", reason="the dynamo ONNX exporter needs onnxscript (pip install onnxscript)")
    entry = ZOO["mlp"]
    model = entry.build(device)
    api = "torch.onnx.export"
    if external_data:  # the session's cached artefact was exported with the default external_data=True
        src = export_cache.get("mlp", "onnx_dynamo", device).path
        names = sorted(p.name for p in src.parent.iterdir())
        assert_equal(api, names, ["model.onnx", "model.onnx.data"], args="external_data=True: files written")
        data_bytes = (src.parent / "model.onnx.data").stat().st_size
        bare = onnx.load(str(src), load_external_data=False)
        external = {i.name: int(torch.Size(list(i.dims)).numel()) * 4 for i in bare.graph.initializer
                    if i.data_location == onnx.TensorProto.EXTERNAL}
        largest = max(model.state_dict().items(), key=lambda kv: kv[1].numel())[0]
        # (tiny tensors may stay inline: the exporter externalises the ones above a size threshold)
        assert_true(api, largest in external, f"largest weight {largest!r} is not in model.onnx.data: {sorted(external)}")
        assert_true(api, data_bytes >= sum(external.values()),
                    f"model.onnx.data holds {data_bytes} bytes, its tensors need {sum(external.values())}")
        moved = tmp_path / "moved"
        moved.mkdir()
        shutil.copy(src, moved / "model.onnx")
        shutil.copy(src.parent / "model.onnx.data", moved / "model.onnx.data")
        path = moved / "model.onnx"
        lonely = tmp_path / "lonely"
        lonely.mkdir()
        shutil.copy(src, lonely / "model.onnx")
        assert_raises("onnxruntime.InferenceSession", Exception, ort_session, lonely / "model.onnx", device,
                      args="model.onnx without its model.onnx.data")
    else:
        path = tmp_path / "model.onnx"
        with torch.no_grad():
            onnx_export(model, entry.inputs(device=device), path, entry, dynamo=True, external_data=False)
        assert_equal(api, sorted(p.name for p in tmp_path.iterdir()), ["model.onnx"],
                     args="external_data=False: a single file")
        assert_true(api, path.stat().st_size >= _param_bytes(model),
                    f"single file has {path.stat().st_size} bytes, fewer than the {_param_bytes(model)} of weights")
    onnx.checker.check_model(str(path))
    sess = ort_session(path, device)
    for batch in (1, EXAMPLE_BATCH, 13):
        inputs = entry.inputs(batch=batch, device=device)
        assert_close("onnxruntime.InferenceSession.run", ort_run(sess, inputs, device), reference(entry, inputs, device),
                     op="export", args=f"external_data={external_data}, batch={batch}")


def test_onnx_runtime_providers(export_cache, device):
    """The session runs on the provider chosen for the device (CUDAExecutionProvider first on a cuda
    device when onnxruntime has it, else CPUExecutionProvider) and matches eager there."""
    pytest.importorskip("onnxscript", reason="the dynamo ONNX exporter needs onnxscript (pip install onnxscript)")
    want = ort_providers(device)
    if device == "cuda" and want[0] != "CUDAExecutionProvider":
        pytest.skip("this onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)")
    art = export_cache.get("cnn", "onnx_dynamo", device)
    assert_equal("onnxruntime.InferenceSession.get_providers", art.loaded.get_providers()[0], want[0],
                 args=f"device={device}")
    entry = ZOO["cnn"]
    inputs = entry.inputs(batch=2, device=device)
    assert_close("onnxruntime.InferenceSession.run", art.run(*inputs), reference(entry, inputs, device),
                 op="export", args=f"cnn on {want[0]}")
