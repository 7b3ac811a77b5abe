"""§ 7 Model save / load: golden artefacts written once by another build, read by this one.

``suites/serialization/golden/`` was written by ``python -m suites.serialization.make_golden --out
suites/serialization/golden`` under torch 2.13.0+cpu (``manifest.json`` says so) and is committed. Every
build loads each file and compares it with ``expected.npz``, whose arrays NumPy generated (fixed seed,
closed forms, IEEE bit patterns) without torch, so neither torch's writer nor its reader vouches for the
values. Checkpoints load with ``weights_only=True`` and again with ``mmap=True`` (zip format), and every
tensor must match bit for bit: dtype, shape, strides, storage offset, requires_grad, Parameter-ness, which
tensors share a storage and how large it is, and each element's bits, where NaN equals NaN whatever its
payload (every other pattern, -0.0 included, must be identical). The TorchScript model must load and compute
the NumPy outputs on both branches of its data-dependent ``if``; the ONNX model must run in onnxruntime.

The writer side: the same script re-run into a temporary folder by the build under test must write the same
tensors (compared on the decoded pickle and data records, see :func:`test_writer_reproduces_checkpoints`).
The same-build round trips stay in ``test_save_load.py``.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from harness.checks import assert_close, assert_equal, assert_true
from suites.serialization import make_golden as mg

GOLDEN = Path(__file__).parent / "golden"
MANIFEST = json.loads((GOLDEN / "manifest.json").read_text())
FILES = {f["name"]: f for f in MANIFEST["files"]}
WRITER = MANIFEST["writer"]["torch"]
CHECKPOINTS = [n for n, f in FILES.items() if f["format"] in ("zip", "legacy")]


@pytest.fixture(scope="module")
def expected():
    with np.load(GOLDEN / "expected.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _golden(name: str) -> Path:
    """The path of a golden file, after checking it is the file the manifest describes (a modified or
    regenerated artefact fails here, not as a confusing value mismatch)."""
    path = GOLDEN / name
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert_equal("golden artefact", digest, FILES[name]["sha256"], args=f"{name} sha256 (manifest.json)")
    return path


def _skip_missing_dtypes(f: dict) -> None:
    missing = [d for d in f.get("requires", []) if not hasattr(torch, d)]
    if missing:
        pytest.skip(f"torch {torch.__version__} has no torch.{', torch.'.join(missing)} "
                    f"(introduced in torch {f['since']}); it cannot open {f['name']}")


def _assert_bits(api: str, t: torch.Tensor, exp: np.ndarray, dtype: str, where: str) -> None:
    """Bit-for-bit equality of every element, except that a NaN may carry any payload (but must be NaN)."""
    got, want = mg.torch_bits(t.cpu()), mg.bits(exp, dtype)
    assert_equal(api, got.shape, want.shape, args=f"{where}: element shape")
    got_nan, want_nan = mg.nan_mask(got, dtype), mg.nan_mask(want, dtype)
    assert_equal(api, got_nan, want_nan, args=f"{where}: NaN positions")
    assert_equal(api, np.where(got_nan, 0, got), np.where(want_nan, 0, want), args=f"{where}: bit patterns")


def _assert_tensor(api: str, t, ent: dict, e: dict, where: str) -> None:
    assert_true(api, isinstance(t, torch.Tensor), f"{where}: got {type(t).__name__}, expected a tensor", args=where)
    assert_equal(api, t.dtype, getattr(torch, ent["dtype"]), args=f"{where} dtype")
    assert_equal(api, list(t.shape), ent["shape"], args=f"{where} shape")
    assert_equal(api, list(t.stride()), ent["stride"], args=f"{where} stride")
    assert_equal(api, t.storage_offset(), ent["offset"], args=f"{where} storage_offset")
    assert_equal(api, t.requires_grad, ent["requires_grad"], args=f"{where} requires_grad")
    assert_equal(api, isinstance(t, nn.Parameter), ent["parameter"], args=f"{where} is a Parameter")
    _assert_bits(api, t, mg.expected_value(ent, e), ent["dtype"], where)


def _plain(x):
    if isinstance(x, torch.Tensor):
        return x.item()
    if isinstance(x, tuple):
        return list(x)
    return x


def _assert_storages(api: str, f: dict, tensors: list, where: str) -> None:
    """Tensors of one storage group share one storage (of the saved size); different groups do not."""
    ptrs: dict = {}
    for ent, t in tensors:
        ptrs.setdefault(ent["storage"], set()).add(t.untyped_storage().data_ptr())
    for group, ps in ptrs.items():
        assert_equal(api, len(ps), 1, args=f"{where}: storages behind group {group} (shared storage lost)")
    nonempty = [next(iter(ps)) for g, ps in ptrs.items()
                if all(t.untyped_storage().nbytes() for ent, t in tensors if ent["storage"] == g)]
    assert_equal(api, len(set(nonempty)), len(nonempty), args=f"{where}: distinct storages merged")
    for group, info in f.get("storages", {}).items():
        t = next(t for ent, t in tensors if ent["storage"] == group)
        want = info["numel"] * mg.DTYPES[info["dtype"]][0]
        assert_equal(api, t.untyped_storage().nbytes(), want, args=f"{where}: bytes of storage {group}")


def _load_modes():
    out = []
    for name in CHECKPOINTS:
        for how in ("weights_only", "mmap"):
            if how == "mmap" and FILES[name]["format"] == "legacy":
                continue  # mmap=True rejects the legacy format (documented; test_save_load.test_mmap_load)
            marks = [pytest.mark.smoke] if (name, how) == ("dtypes.pt", "weights_only") else []
            out.append(pytest.param(name, how, marks=marks, id=f"{name}-{how}"))
    return out


@pytest.mark.parametrize("name,how", _load_modes())
def test_golden_checkpoint(device, expected, name, how):
    """torch.load(weights_only=True[, mmap=True]) of a checkpoint written by torch 2.13 returns every tensor
    bit for bit (NaN payloads aside) with its dtype, shape, strides, offset, requires_grad and Parameter
    type, shared storages shared and whole, and the non-tensor values (Adam's step and hyperparameters,
    state_dict key order); catches a reader that byte-swaps or reorders a dtype, maps a dtype code to the
    wrong dtype (float8 variants), drops storage sharing or offsets, reads a format break across versions
    wrongly, or whose mmap path reads other bytes than the plain one."""
    f = FILES[name]
    _skip_missing_dtypes(f)
    path = _golden(name)
    api = "torch.load"
    if f["format"] == "legacy":
        assert_true(api, not zipfile.is_zipfile(path), "legacy golden file is a zip archive", args=name)
    obj = torch.load(path, weights_only=True, mmap=how == "mmap", map_location=device)
    tensors = []
    for ent in f["entries"]:
        where = f"{name}:{'/'.join(map(str, ent['path']))} ({how})"
        t = mg.at(obj, ent["path"])
        assert_equal(api, t.device.type, torch.device(device).type, args=f"{where} device")
        _assert_tensor(api, t, ent, expected, where)
        tensors.append((ent, t))
    _assert_storages(api, f, tensors, f"{name} ({how})")
    for v in f.get("values", []):
        assert_equal(api, _plain(mg.at(obj, v["path"])), v["value"], args=f"{name}:{'/'.join(map(str, v['path']))}")
    if "keys" in f:
        assert_equal(api, list(obj.keys()), f["keys"], args=f"{name}: key order")


def test_golden_views_write_through(expected):
    """Views loaded from the golden file alias their storage: a write through one is seen by every other
    view of the same storage (also for two views saved without their base); catches a loader that copies
    each view into its own storage while keeping the values."""
    obj = torch.load(_golden("views.pt"), weights_only=True)
    obj["base"][2, 3] = -100.0  # storage element 15: rows[1, 3], cols[1, 1], t[3, 2]
    for k, idx in (("rows", (1, 3)), ("cols", (1, 1)), ("t", (3, 2))):
        assert_equal("torch.load", obj[k][idx].item(), -100.0, args=f"views.pt: write through base seen by {k}")
    obj["pair_a"][0] = 12345  # storage element 2 = pair_b[0, 1]
    assert_equal("torch.load", obj["pair_b"][0, 1].item(), 12345, args="views.pt: pair_a and pair_b share storage")


def test_golden_module_state_dict(expected):
    """A conv + batch-norm + linear state_dict written by torch 2.13 loads strictly into the same
    architecture built by this torch (no missing or unexpected keys, running statistics and the int64
    counter restored bit for bit) and the model then computes the NumPy float64 forward pass; catches
    renamed or reordered state_dict keys, buffers lost on load, or a running_var/num_batches_tracked
    mix-up that a same-build round trip would hide."""
    sd = torch.load(_golden("module_state_dict.pt"), weights_only=True)
    torch.manual_seed(0)
    net = mg._golden_net_cls()()
    res = net.load_state_dict(sd, strict=True)
    assert_equal("nn.Module.load_state_dict", (list(res.missing_keys), list(res.unexpected_keys)), ([], []))
    for ent in FILES["module_state_dict.pt"]["entries"]:
        key = ent["path"][0]
        _assert_bits("nn.Module.load_state_dict", net.state_dict()[key], expected[ent["expected"]], ent["dtype"], key)
    net.eval()
    with torch.no_grad():
        out = net(torch.from_numpy(expected["module/input"]))
    # conv: K = 2*3*3 = 18 terms, then batch norm and a 12-term linear: the nn class at float32
    assert_close("nn.Module.load_state_dict", out, expected["module/output"], op="nn",
                 check_dtype=torch.float32, args="GoldenNet forward after loading the golden state_dict")


def test_golden_optimizer_resumes(expected):
    """An Adam state_dict written by torch 2.13 after 3 steps, loaded into a fresh Adam built with other
    hyperparameters, restores them (lr, betas, eps) and the state, and one more step lands where NumPy's
    Adam goes after 4 steps; exp_avg/exp_avg_sq stay exact (dyadic values); catches a state_dict whose
    state is keyed or ordered differently across versions, a step counter lost (bias correction restarts),
    or hyperparameters not taken from the loaded param_groups."""
    osd = torch.load(_golden("optimizer_state_dict.pt"), weights_only=True)
    p3 = {k: nn.Parameter(torch.from_numpy(expected[f"optimizer/param{mg.ADAM_STEPS}/{k}"].copy())) for k in ("weight", "bias")}
    opt = torch.optim.Adam([p3["weight"], p3["bias"]], lr=0.5, betas=(0.9, 0.999), eps=1e-3)
    opt.load_state_dict(osd)
    g = opt.param_groups[0]
    assert_equal("torch.optim.Optimizer.load_state_dict", (g["lr"], tuple(g["betas"]), g["eps"]),
                 (mg.ADAM["lr"], mg.ADAM["betas"], mg.ADAM["eps"]), args="hyperparameters from the golden state")
    for k, p in p3.items():
        p.grad = torch.from_numpy(expected[f"optimizer/grad{mg.ADAM_STEPS}/{k}"].copy())
    opt.step()
    params = {k: expected[f"optimizer/param0/{k}"] for k in p3}
    grads = [{k: expected[f"optimizer/grad{t}/{k}"].astype(np.float64) for k in p3} for t in range(mg.ADAM_STEPS + 1)]
    _, m4, v4 = mg.adam_states(params, grads)
    for i, (k, p) in enumerate(p3.items()):
        st = opt.state[p]
        assert_equal("torch.optim.Adam.step", float(_plain(st["step"])), float(mg.ADAM_STEPS + 1), args=f"{k} step")
        _assert_bits("torch.optim.Adam.step", st["exp_avg"], m4[k].astype("<f4"), "float32", f"{k} exp_avg after resume")
        _assert_bits("torch.optim.Adam.step", st["exp_avg_sq"], v4[k].astype("<f4"), "float32", f"{k} exp_avg_sq after resume")
        assert_close("torch.optim.Adam.step", p.detach(), expected[f"optimizer/param{mg.ADAM_STEPS + 1}/{k}"],
                     op="training", args=f"{k} after resuming from the golden state")


def _jit_load(path, device):
    from suites.export._lanes import jit_quiet

    with jit_quiet():
        return torch.jit.load(str(path), map_location=device)


def test_golden_torchscript(device, expected):
    """torch.jit.load of a module scripted and saved by torch 2.13 (a data-dependent ``if`` and a loop whose
    count is an input) restores its parameters and buffer bit for bit and computes the NumPy outputs on
    both branches for 0 and 3 loop iterations; catches a TorchScript reader that cannot read an older
    archive, loses a buffer, or mis-executes the older bytecode's control flow."""
    f = FILES["scripted.pt"]
    m = _jit_load(_golden("scripted.pt"), device)
    state = dict(m.state_dict())
    assert_equal("torch.jit.load", sorted(state), sorted(f["parameters"]), args="parameter and buffer names")
    for k, key in f["parameters"].items():
        _assert_bits("torch.jit.load", state[k], expected[key], "float32", f"scripted.pt:{k}")
    for case in f["cases"]:
        x = torch.from_numpy(expected[case["input"]]).to(device)
        with torch.no_grad():
            out = m(x, case["n"])
        assert_close("torch.jit.load", out, expected[case["expected"]], op="export", check_dtype=torch.float32,
                     args=f"branch={case['branch']}, n={case['n']}")


def _ort_or_skip():
    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime is not installed (pip install torchconform[onnx])")
    from suites.export._lanes import ort_session

    return ort_session


def _onnx_or_skip():
    if importlib.util.find_spec("onnx") is None:
        pytest.skip("onnx is not installed (pip install torchconform[onnx])")
    import onnx
    from onnx import numpy_helper

    return onnx, numpy_helper


def test_golden_onnx(device, expected):
    """The ONNX model exported by torch 2.13 runs in onnxruntime at two batch sizes (its batch axis is
    dynamic) and computes the NumPy outputs; its initializers hold the golden weights bit for bit. This
    checks the ONNX deployment path paired with this build (onnxruntime reading a file another torch
    wrote), not torch's reader; the exporter of this build is checked by
    test_writer_reproduces_onnx."""
    ort_session = _ort_or_skip()
    f = FILES["mlp.onnx"]
    path = _golden("mlp.onnx")
    sess = ort_session(path, device)
    for case in f["cases"]:
        out = sess.run(None, {"x": expected[case["input"]]})[0]
        assert_close("onnxruntime.InferenceSession.run", torch.from_numpy(out), expected[case["expected"]], op="export",
                     check_dtype=torch.float32, args=f"mlp.onnx, input {case['input']}")
    onnx, numpy_helper = _onnx_or_skip()
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
    for k, key in f["initializers"].items():
        assert_equal("onnx.load", inits[k].view("<u4"), expected[key].view("<u4"), args=f"mlp.onnx initializer {k}")


# ------------------------------------------------------------------------------------ the writer
def test_writer_reproduces_checkpoints(tmp_path, expected):
    """make_golden re-run by this build into tmp_path writes the same checkpoints. Compared, after decoding
    both files with make_golden.decode (Python's zipfile and pickle, no torch): for every tensor the manifest
    lists, its dtype, shape, strides, storage offset, requires_grad and Parameter flags, which tensors share
    a storage, and the storage's bytes (the data/<key> record, found through the pickle's persistent id, so
    a renumbered record is fine); the byteorder record. On the writing build (manifest.json: torch 2.13.0+cpu) also the whole
    decoded data.pkl: every key, container type and non-tensor value. Not compared: zip metadata, record
    order and padding, .data/serialization_id (random per save), the version records. The NumPy expected
    arrays are regenerated too and must equal the committed ones bit for bit. Catches a writer that
    reorders or byte-swaps a dtype's elements, writes a view's storage partly, or breaks sharing."""
    regen = mg.expected_arrays()
    assert_equal("numpy.random.default_rng", sorted(regen), sorted(expected), args="expected.npz keys")
    for k, v in expected.items():
        assert_equal("numpy.random.default_rng", regen[k].tobytes(), v.tobytes(), args=f"expected.npz {k}")
    files = {f["name"]: f for f in mg.write_checkpoints(tmp_path, regen)}
    for name in CHECKPOINTS:
        f = FILES[name]
        if name not in files:
            assert_true("torch.save", any(not hasattr(torch, d) for d in f.get("requires", [])),
                        f"{name} not written although this torch has its dtypes", args=name)
            continue
        old, old_meta = mg.decode(_golden(name))
        new, new_meta = mg.decode(tmp_path / name)
        assert_equal("torch.save", new_meta, old_meta, args=f"{name}: format and byteorder record")
        old_groups: dict = {}
        new_groups: dict = {}
        for ent in f["entries"]:
            where = f"{name}:{'/'.join(map(str, ent['path']))}"
            a, b = mg.at(new, ent["path"]), mg.at(old, ent["path"])
            assert_equal("torch.save", mg.canonical(a, new_groups), mg.canonical(b, old_groups),
                         args=f"{where}: dtype, shape, stride, offset, flags, storage group and bytes")
        if torch.__version__ == WRITER:
            assert_equal("torch.save", mg.canonical(new), mg.canonical(old), args=f"{name}: whole decoded data.pkl")


def test_writer_reproduces_torchscript(tmp_path, expected):
    """torch.jit.script + torch.jit.save of the golden module by this build load back with the golden
    parameters and the same outputs as the committed archive (bit for bit on every case); on the writing
    build the scripted code is identical too. Catches a TorchScript writer that drops a buffer, saves a
    parameter wrongly, or compiles the control flow differently."""
    mg.write_torchscript(tmp_path, expected)
    new, old = _jit_load(tmp_path / "scripted.pt", "cpu"), _jit_load(_golden("scripted.pt"), "cpu")
    f = FILES["scripted.pt"]
    for k, key in f["parameters"].items():
        _assert_bits("torch.jit.save", dict(new.state_dict())[k], expected[key], "float32", f"rewritten scripted.pt:{k}")
    for case in f["cases"]:
        x = torch.from_numpy(expected[case["input"]])
        with torch.no_grad():
            assert_equal("torch.jit.save", new(x, case["n"]), old(x, case["n"]),
                         args=f"rewritten vs golden, branch={case['branch']}, n={case['n']}")
    if torch.__version__ == WRITER:
        assert_equal("torch.jit.save", new.code, old.code, args="scripted code")


def _onnx_summary(onnx, numpy_helper, path):
    model = onnx.load(str(path))
    return ([n.op_type for n in model.graph.node],
            {i.name: numpy_helper.to_array(i) for i in model.graph.initializer})


def test_writer_reproduces_onnx(tmp_path, expected):
    """This build's legacy ONNX exporter (the one that wrote the golden model, dynamo=False, opset 17)
    writes the same graph (node types in order) with bit-identical initializers; the rewritten model runs
    in onnxruntime to the NumPy outputs. Catches an exporter that transposes or reorders a weight, or
    drops or adds a node."""
    onnx, numpy_helper = _onnx_or_skip()
    f = mg.write_onnx(tmp_path, expected)
    ops_new, inits_new = _onnx_summary(onnx, numpy_helper, tmp_path / f["name"])
    ops_old, inits_old = _onnx_summary(onnx, numpy_helper, _golden("mlp.onnx"))
    assert_equal("torch.onnx.export", ops_new, ops_old, args="dynamo=False: node types")
    for k, key in f["initializers"].items():
        assert_equal("torch.onnx.export", inits_new[k].view("<u4"), expected[key].view("<u4"), args=f"dynamo=False: {k}")
    ort_session = _ort_or_skip()
    sess = ort_session(tmp_path / f["name"], "cpu")
    for case in f["cases"]:
        out = sess.run(None, {"x": expected[case["input"]]})[0]
        assert_close("torch.onnx.export", torch.from_numpy(out), expected[case["expected"]], op="export",
                     args=f"dynamo=False rewritten, {case['input']}")


@pytest.mark.slow
def test_writer_dynamo_onnx_matches_golden(tmp_path, expected):
    """The default (dynamo) ONNX exporter of this build, given the golden model, writes a model whose
    initializers are the golden weights bit for bit and which onnxruntime runs to the NumPy outputs at
    both batch sizes (dynamic batch); catches a dynamo exporter that transposes a weight or specialises
    the batch axis (seconds per export: full tier)."""
    if importlib.util.find_spec("onnxscript") is None:
        pytest.skip("onnxscript is not installed: the dynamo ONNX exporter needs it (pip install torchconform[onnx])")
    onnx, numpy_helper = _onnx_or_skip()
    ort_session = _ort_or_skip()
    f = mg.write_onnx(tmp_path, expected, dynamo=True, name="mlp_dynamo.onnx")
    _, inits = _onnx_summary(onnx, numpy_helper, tmp_path / f["name"])
    for k, key in f["initializers"].items():
        assert_true("torch.onnx.export", k in inits, f"initializer {k} missing (have {sorted(inits)})", args="dynamo=True")
        assert_equal("torch.onnx.export", inits[k].view("<u4"), expected[key].view("<u4"), args=f"dynamo=True: {k}")
    sess = ort_session(tmp_path / f["name"], "cpu")
    for case in f["cases"]:
        out = sess.run(None, {"x": expected[case["input"]]})[0]
        assert_close("torch.onnx.export", torch.from_numpy(out), expected[case["expected"]], op="export",
                     args=f"dynamo=True, {case['input']}")
