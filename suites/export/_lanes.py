"""§ 9.1 export lanes: how a zoo model is exported, saved, loaded back and run in each deployment path.

Lanes (every artefact is saved to a temporary folder and loaded back; the loaded one is what runs):

``eager``          the float32 eager model itself (the baseline drift against the float64 reference)
``jit_trace``      ``torch.jit.trace`` -> ``torch.jit.save`` -> ``torch.jit.load``
``jit_script``     ``torch.jit.script`` -> save -> load
``export``         ``torch.export.export`` at the example's shapes -> ``torch.export.save``/``load`` -> ``.module()``
``export_dynamic`` the same with ``torch.export.Dim`` for the batch (and sequence) axes
``onnx_dynamo``    ``torch.onnx.export(dynamo=True)`` with ``dynamic_shapes`` -> onnxruntime ``InferenceSession``
``onnx_legacy``    ``torch.onnx.export(dynamo=False)`` with ``dynamic_axes`` -> onnxruntime

All lanes are compared with ONE reference: the eager model in float64 on float64 inputs
(:func:`reference`). No file is written outside the folder the caller passes.
"""
from __future__ import annotations

import contextlib
import io
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from suites.export._zoo import ZOO, ZooEntry

LANES = ("eager", "jit_trace", "jit_script", "export", "export_dynamic", "onnx_dynamo", "onnx_legacy")
DYNAMIC_LANES = ("jit_script", "export_dynamic", "onnx_dynamo", "onnx_legacy")
ONNX_LANES = ("onnx_dynamo", "onnx_legacy")
MAX_BATCH = 64
MAX_SEQ = 32


@contextlib.contextmanager
def jit_quiet():
    """The ONE place this section silences torch.jit's deprecation warnings.

    torch.jit (trace/script/save/load, and the TorchScript-based legacy ONNX exporter) is deprecated
    in recent torch in favour of torch.export, and warns on every call. The suite still qualifies it
    because deployed models use it; the warning says nothing about correctness, so it is silenced
    here, only around our own calls, and every other warning (TracerWarning included) stays visible.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit")
        for category in (DeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category, message=r".*(legacy|TorchScript-based) ONNX export")
            warnings.filterwarnings("ignore", category=category, message=r".*dynamo=False")
        # the legacy exporter's own logging helper warns with this generic text in torch >= 2.9
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r"The feature will be removed")
        yield


@contextlib.contextmanager
def full_fp32():
    """Run float32 CUDA matmuls/convolutions in full float32 (no TF32) inside the block.

    cuDNN convolutions default to TF32 on Ampere and newer, an error of ~1e-3 relative that is a
    precision mode, not an exporter's drift; parity is measured without it (eager and every lane
    alike). A no-op without CUDA.
    """
    if not torch.cuda.is_available():
        yield
        return
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def float64_inputs(inputs: tuple) -> tuple:
    return tuple(t.double() if t.is_floating_point() else t for t in inputs)


def reference(entry: ZooEntry, inputs: tuple, device) -> torch.Tensor:
    """The one oracle of every lane: the eager model in float64 (same weights) on float64 inputs."""
    model = entry.build(device, torch.float64)
    with torch.no_grad():
        return model(*float64_inputs(tuple(t.to(device) for t in inputs)))


def export_dims():
    """The Dim objects of the dynamic lanes (None where this torch has no torch.export.Dim)."""
    dim = getattr(getattr(torch, "export", None), "Dim", None)
    if dim is None:
        return None
    return {"batch": dim("batch", min=1, max=MAX_BATCH), "seq": dim("seq", min=2, max=MAX_SEQ)}


def dynamic_shapes(entry: ZooEntry, dims=None):
    dims = dims or export_dims()
    return tuple({axis: dims[label] for axis, label in d.items()} for d in entry.dims)


def input_names(entry: ZooEntry) -> list[str]:
    return [f"input{i}" for i in range(len(entry.dims))]


def ort_providers(device: str) -> list[str]:
    import onnxruntime as ort

    if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def ort_session(path, device: str):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # as many intra-op threads as torch uses, so lanes are compared on the same cores
    opts.intra_op_num_threads = torch.get_num_threads()
    providers = ort_providers(device)
    if providers[0] == "CUDAExecutionProvider":
        try:  # full float32 on the GPU too (the CUDA provider's use_tf32 defaults to on), as full_fp32()
            return ort.InferenceSession(str(path), sess_options=opts,
                                        providers=[("CUDAExecutionProvider", {"use_tf32": "0"}), "CPUExecutionProvider"])
        except Exception:  # noqa: BLE001 - an onnxruntime without the option: its defaults
            pass
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers)


def ort_run(session, inputs: tuple, device) -> torch.Tensor:
    feeds = {i.name: t.detach().cpu().numpy() for i, t in zip(session.get_inputs(), inputs)}
    out = session.run(None, feeds)[0]
    return torch.from_numpy(out).to(device)


@dataclass
class Artifact:
    """An exported model: ``obj`` as the exporter returned it, ``loaded`` after the save/load round
    trip, ``run(*inputs)`` runs the loaded one (what a deployment runs)."""

    model: str
    lane: str
    device: str
    obj: Any
    loaded: Any
    path: Path | None
    run: Callable[..., torch.Tensor]
    export_seconds: float
    extra: dict = field(default_factory=dict)


def onnx_export(model, inputs, path: Path, entry: ZooEntry, *, dynamo: bool, dynamic: bool = True,
                external_data: bool = True, opset_version: int | None = None):
    """torch.onnx.export in one of its two modes, with the entry's dynamic axes."""
    kwargs: dict = {"input_names": input_names(entry), "output_names": ["output"]}
    if opset_version is not None:
        kwargs["opset_version"] = opset_version
    if dynamo:
        kwargs.update(dynamo=True, external_data=external_data, verbose=False)
        if dynamic:
            kwargs["dynamic_shapes"] = dynamic_shapes(entry)
        with contextlib.redirect_stdout(io.StringIO()):  # the dynamo exporter prints its progress
            return torch.onnx.export(model, inputs, str(path), **kwargs)
    if dynamic:
        kwargs["dynamic_axes"] = {n: dict(d) for n, d in zip(input_names(entry), entry.dims)}
        kwargs["dynamic_axes"]["output"] = {0: "batch"}
    with jit_quiet():
        return torch.onnx.export(model, inputs, str(path), dynamo=False, **kwargs)


def build(entry: ZooEntry, lane: str, device: str, folder: Path) -> Artifact:
    """Export ``entry`` through ``lane`` on ``device`` into ``folder`` and load it back."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = entry.build(device)
    inputs = entry.inputs(device=device)
    t0 = time.perf_counter()
    if lane == "eager":
        return Artifact(entry.name, lane, device, model, model, None, model, 0.0)
    if lane in ("jit_trace", "jit_script"):
        path = folder / "model.pt"
        with jit_quiet(), torch.no_grad():
            obj = torch.jit.trace(model, inputs) if lane == "jit_trace" else torch.jit.script(model)
            seconds = time.perf_counter() - t0
            torch.jit.save(obj, str(path))
            loaded = torch.jit.load(str(path), map_location=device)

        def run(*xs, _m=loaded):
            with jit_quiet(), torch.no_grad():
                return _m(*xs)
        return Artifact(entry.name, lane, device, obj, loaded, path, run, seconds)
    if lane in ("export", "export_dynamic"):
        if not hasattr(torch, "export") or not hasattr(torch.export, "export"):
            raise NotImplementedError("torch.export is not available in this torch")
        ds = dynamic_shapes(entry) if lane == "export_dynamic" else None
        ep = torch.export.export(model, inputs, dynamic_shapes=ds)
        seconds = time.perf_counter() - t0
        path = folder / "model.pt2"
        torch.export.save(ep, str(path))
        loaded = torch.export.load(str(path))
        mod = loaded.module()

        def run(*xs, _m=mod):
            with torch.no_grad():
                return _m(*xs)
        return Artifact(entry.name, lane, device, ep, loaded, path, run, seconds)
    if lane in ONNX_LANES:
        path = folder / "model.onnx"
        with torch.no_grad():
            onnx_export(model, inputs, path, entry, dynamo=lane == "onnx_dynamo")
        seconds = time.perf_counter() - t0
        sess = ort_session(path, device)
        return Artifact(entry.name, lane, device, path, sess, path,
                        lambda *xs, _s=sess: ort_run(_s, xs, device), seconds)
    raise ValueError(f"unknown lane {lane!r}; known: {', '.join(LANES)}")


def lane_available(lane: str) -> str | None:
    """Why ``lane`` cannot run on this install (None when it can)."""
    if lane in ("export", "export_dynamic") and not hasattr(getattr(torch, "export", None), "Dim"):
        return "torch.export.export / torch.export.Dim are missing in this torch"
    if lane in ONNX_LANES:
        import importlib.util

        for mod in ("onnx", "onnxruntime") + (("onnxscript",) if lane == "onnx_dynamo" else ()):
            if importlib.util.find_spec(mod) is None:
                return f"{mod} is not installed (pip install torchconform[onnx])"
    return None


class ArtifactCache:
    """Export each (model, lane, device) once per session, in its own subfolder of ``root``; a
    failed export is cached too and re-raised, so an expected failure costs one export."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._done: dict = {}

    def get(self, model: str, lane: str, device: str) -> Artifact:
        key = (model, lane, device)
        if key not in self._done:
            try:
                self._done[key] = build(ZOO[model], lane, device, self.root / f"{model}-{lane}-{device}")
            except Exception as exc:  # cached so an expected failure is not re-exported per test
                self._done[key] = exc
        got = self._done[key]
        if isinstance(got, Exception):
            raise got
        return got


