"""§ 7 Model save / load: state_dict round trips through torch.save / torch.load (file path and BytesIO),
every dtype, views and shared storage, load_state_dict key and shape checks, map_location forms (with a
file rewritten to claim CUDA storage), whole-model pickling, torch.load's weights_only safety default and
its allowlist, optimizer state, the legacy format, mmap loading and requires_grad.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import io
import os
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest
import torch
import torch.nn as nn

from harness.checks import assert_equal, assert_raises, assert_true
from suites.serialization import _models
from suites.serialization._models import Net, Payload, Point


def _roundtrip(obj, how, tmp_path, **load_kw):
    if how == "path":
        f = tmp_path / "obj.pt"
        torch.save(obj, f)
        return torch.load(f, **load_kw)
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, **load_kw)


def _assert_same_state(api, got, exp, args=""):
    assert_equal(api, list(got.keys()), list(exp.keys()), args=f"keys {args}")
    for k in exp:
        assert_equal(api, got[k].dtype, exp[k].dtype, args=f"{k} dtype {args}")
        assert_equal(api, tuple(got[k].shape), tuple(exp[k].shape), args=f"{k} shape {args}")
        assert_equal(api, got[k].device.type, exp[k].device.type, args=f"{k} device {args}")
        a, e = got[k].cpu(), exp[k].cpu()
        if a.dtype == torch.bfloat16:  # NumPy has no bfloat16: compare the bit patterns
            a, e = a.view(torch.int16), e.view(torch.int16)
        assert_equal(api, a, e, args=f"{k} {args}")


@pytest.mark.smoke
@pytest.mark.parametrize("how", ["path", "bytesio"])
def test_state_dict_round_trip(device, tmp_path, how):
    """The recommended way: save model.state_dict(), load it into a fresh model; every parameter and
    persistent buffer (float32, bfloat16, float16, complex64, int32/int64, bool, uint8) comes back bit-exact
    with its dtype and device, non-persistent buffers are absent, and the restored model computes the same
    output; catches dtype conversion, lost buffers or a corrupted byte order."""
    torch.manual_seed(0)
    src = Net().to(device)
    src.train()
    src(torch.randn(4, 2, 4, 4, device=device))  # move BatchNorm stats and its int64 counter off their init
    sd = src.state_dict()
    assert_true("nn.Module.state_dict", "scratch" not in sd, "non-persistent buffer saved in state_dict")
    assert_true("nn.Module.state_dict", "bn.num_batches_tracked" in sd, "BatchNorm counter missing from state_dict")
    loaded = _roundtrip(sd, how, tmp_path)
    _assert_same_state("torch.load", loaded, sd, args=how)
    torch.manual_seed(1)
    dst = Net().to(device)
    result = dst.load_state_dict(loaded)
    assert_equal("nn.Module.load_state_dict", (list(result.missing_keys), list(result.unexpected_keys)), ([], []))
    _assert_same_state("nn.Module.load_state_dict", dst.state_dict(), sd, args="after load_state_dict")
    src.eval(); dst.eval()
    x = torch.randn(2, 2, 4, 4, device=device)
    with torch.no_grad():
        assert_equal("nn.Module.load_state_dict", dst(x), src(x), args="restored model output")


def test_load_state_dict_copies_not_aliases(device):
    """load_state_dict copies values into the model's existing parameters (same Parameter objects, new
    values); later edits to the source dict do not leak in; catches a load that rebinds or aliases."""
    m = nn.Linear(3, 2).to(device)
    w_obj = m.weight
    sd = {"weight": torch.ones(2, 3, device=device), "bias": torch.zeros(2, device=device)}
    m.load_state_dict(sd)
    assert_true("nn.Module.load_state_dict", m.weight is w_obj, "parameter object replaced")
    sd["weight"].fill_(5.0)
    assert_equal("nn.Module.load_state_dict", m.weight.detach(), np.ones((2, 3)), args="source edited after load")


def test_load_state_dict_strictness(device):
    """strict=True raises RuntimeError naming missing and unexpected keys; strict=False loads what matches
    and returns them as (missing_keys, unexpected_keys); a shape mismatch raises 'size mismatch' even with
    strict=False; catches silently ignored keys or shapes."""
    m = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1)).to(device)
    sd = m.state_dict()
    partial = {k: v for k, v in sd.items() if k != "1.bias"}
    partial["extra.weight"] = torch.zeros(1, device=device)
    err = assert_raises("nn.Module.load_state_dict", RuntimeError, m.load_state_dict, partial, args="strict=True")
    assert_true("nn.Module.load_state_dict", "Missing key(s)" in str(err) and "1.bias" in str(err), f"message lacks the missing key: {err}")
    assert_true("nn.Module.load_state_dict", "Unexpected key(s)" in str(err) and "extra.weight" in str(err), f"message lacks the unexpected key: {err}")
    fresh = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1)).to(device)
    new_w = torch.full((2, 3), 0.25, device=device)
    partial["0.weight"] = new_w
    res = fresh.load_state_dict(partial, strict=False)
    assert_equal("nn.Module.load_state_dict", list(res.missing_keys), ["1.bias"], args="strict=False missing")
    assert_equal("nn.Module.load_state_dict", list(res.unexpected_keys), ["extra.weight"], args="strict=False unexpected")
    assert_equal("nn.Module.load_state_dict", fresh[0].weight.detach(), np.full((2, 3), 0.25), args="strict=False loads matching keys")
    bad = dict(sd)
    bad["0.weight"] = torch.zeros(4, 3, device=device)
    for strict in (True, False):
        err = assert_raises("nn.Module.load_state_dict", RuntimeError, m.load_state_dict, bad, strict=strict, args=f"shape, strict={strict}")
        assert_true("nn.Module.load_state_dict", "size mismatch" in str(err) and "0.weight" in str(err), f"unhelpful message: {err}")


def test_views_share_storage_after_load(device, tmp_path):
    """Tensors that share a storage and are saved together load sharing one storage again, with their
    offsets and strides (slice, transpose, strided view); writing through one is seen by the others; catches
    views duplicated into separate copies or strides lost."""
    base = torch.arange(24, dtype=torch.float32, device=device).reshape(4, 6)
    objs = {"base": base, "rows": base[1:3], "cols": base[:, ::2], "t": base.t()}
    got = _roundtrip(objs, "path", tmp_path)
    for k, v in objs.items():
        assert_equal("torch.load", got[k].cpu(), v.cpu(), args=k)
        assert_equal("torch.load", got[k].stride(), v.stride(), args=f"{k} stride")
        assert_equal("torch.load", got[k].storage_offset(), v.storage_offset(), args=f"{k} storage_offset")
    ptr = got["base"].untyped_storage().data_ptr()
    for k in ("rows", "cols", "t"):
        assert_true("torch.load", got[k].untyped_storage().data_ptr() == ptr, f"{k} no longer shares storage with base")
    assert_true("torch.load", not got["t"].is_contiguous(), "transposed view came back contiguous")
    got["base"][1, 0] = -1.0
    assert_equal("torch.load", got["rows"][0, 0].item(), -1.0, args="write through base visible in view")
    assert_equal("torch.load", got["t"][0, 1].item(), -1.0, args="write through base visible in transpose")


def test_saving_a_slice_saves_its_whole_storage(tmp_path):
    """Documented: saving a view saves the entire underlying storage (clone() it to save only the slice).
    A 10-element slice of a 1M-element tensor makes a ~4 MB file, its clone a small one; the loaded slice
    still has its values. Catches a change in that contract in either direction (storage silently dropped)."""
    big = torch.arange(1_000_000, dtype=torch.float32)
    torch.save(big[:10], tmp_path / "view.pt")
    torch.save(big[:10].clone(), tmp_path / "clone.pt")
    size_view, size_clone = os.path.getsize(tmp_path / "view.pt"), os.path.getsize(tmp_path / "clone.pt")
    assert_true("torch.save", size_view >= 4_000_000, f"view file {size_view} B: whole storage not saved")
    assert_true("torch.save", size_clone < 10_000, f"clone file {size_clone} B: more than the slice saved")
    got = torch.load(tmp_path / "view.pt")
    assert_equal("torch.load", got, np.arange(10.0), args="slice values")
    assert_equal("torch.load", got.untyped_storage().nbytes(), 4_000_000, args="loaded slice keeps the whole storage")


def _cuda_claiming_file(tmp_path) -> tuple[str, dict]:
    """A checkpoint whose storages say they were saved on 'cuda:0': written on the CPU, then the location
    tag in data.pkl (protocol 2, no frame offsets) rewritten from 'cpu' to 'cuda:0'."""
    sd = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "n": torch.tensor([1, 2, 3])}
    buf = io.BytesIO()
    torch.save(sd, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = tmp_path / "cuda_saved.pt"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("data.pkl"):
                old, new = b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0"
                assert data.count(old) == 1, "unexpected pickle layout"  # memoised: later uses are BINGET
                data = data.replace(old, new)
            dst.writestr(info.filename, data)
    return str(out), sd


@pytest.mark.parametrize("form", ["str", "device", "dict", "callable", "none"])
def test_map_location_cuda_saved_file(tmp_path, form):
    """Loading a CUDA-saved checkpoint with map_location='cpu' / torch.device('cpu') / {'cuda:0': 'cpu'} /
    a callable puts every tensor on the CPU with its values; without map_location a CPU-only build raises
    a RuntimeError that says to use map_location (on a CUDA machine it loads onto CUDA); catches
    map_location ignored or only some of its forms honoured."""
    path, sd = _cuda_claiming_file(tmp_path)
    ml = {"str": "cpu", "device": torch.device("cpu"), "dict": {"cuda:0": "cpu"},
          "callable": lambda storage, loc: storage, "none": None}[form]
    if form == "none":
        if torch.cuda.is_available():
            got = torch.load(path)
            assert_equal("torch.load", got["w"].device.type, "cuda", args="no map_location on a CUDA machine")
            return
        err = assert_raises("torch.load", RuntimeError, torch.load, path, args="CUDA file on a CPU-only machine")
        assert_true("torch.load", "map_location" in str(err), f"error does not mention map_location: {err}")
        return
    got = torch.load(path, map_location=ml)
    for k, v in sd.items():
        assert_equal("torch.load", got[k].device.type, "cpu", args=f"map_location={form}: {k}")
        assert_equal("torch.load", got[k], v, args=f"map_location={form}: {k}")


@pytest.mark.parametrize("form", ["str", "device", "dict", "callable"])
def test_map_location_to_device(device, tmp_path, form):
    """A CPU-saved checkpoint loads onto the requested device with every documented map_location form."""
    sd = {"w": torch.randn(3, 2), "i": torch.arange(4)}
    torch.save(sd, tmp_path / "cpu.pt")
    target = torch.device(device if device == "cpu" else f"{device}:0")
    ml = {"str": str(target), "device": target, "dict": {"cpu": str(target)},
          "callable": lambda storage, loc: storage.cuda(target.index) if target.type == "cuda" else storage}[form]  # the documented idiom
    got = torch.load(tmp_path / "cpu.pt", map_location=ml)
    for k, v in sd.items():
        assert_equal("torch.load", got[k].device.type, target.type, args=f"map_location={form}")
        assert_equal("torch.load", got[k].cpu(), v, args=f"map_location={form}: {k}")


def test_whole_model_pickling(device, tmp_path):
    """torch.save(model) / torch.load(weights_only=False) restores a working model of the same class with the
    same output (the discouraged but documented way)."""
    torch.manual_seed(0)
    m = Net().to(device).eval()
    torch.save(m, tmp_path / "model.pt")
    got = torch.load(tmp_path / "model.pt", weights_only=False)
    assert_true("torch.load", type(got) is Net, f"loaded a {type(got).__name__}, expected Net")
    x = torch.randn(2, 2, 4, 4, device=device)
    with torch.no_grad():
        assert_equal("torch.load", got(x), m(x), args="whole model output")
    assert_true("torch.load", got.training is False, "module training flag not restored")


def test_whole_model_depends_on_importable_class(tmp_path):
    """Whole-model pickles store a reference to the class, not its code: loading after the defining module
    disappears fails (AttributeError/ModuleNotFoundError); the state_dict of the same model still loads
    with weights_only=True. This is the document's reason to prefer state_dict."""
    mod = types.ModuleType("torchconform_tmp_models")
    exec("import torch.nn as nn\nclass Tiny(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
         "        self.lin = nn.Linear(2, 2)\n    def forward(self, x):\n        return self.lin(x)\n", mod.__dict__)
    sys.modules[mod.__name__] = mod
    try:
        m = mod.Tiny()
        torch.save(m, tmp_path / "tiny.pt")
        torch.save(m.state_dict(), tmp_path / "tiny_sd.pt")
        assert_true("torch.load", type(torch.load(tmp_path / "tiny.pt", weights_only=False)).__name__ == "Tiny", "reload failed")
    finally:
        del sys.modules[mod.__name__]
    assert_raises("torch.load", (AttributeError, ModuleNotFoundError, ImportError), torch.load, tmp_path / "tiny.pt",
                  weights_only=False, args="class no longer importable")
    sd = torch.load(tmp_path / "tiny_sd.pt")
    assert_equal("torch.load", sorted(sd), ["lin.bias", "lin.weight"], args="state_dict of the same model")


def test_weights_only_is_default_and_refuses_code(tmp_path):
    """torch >= 2.6: torch.load defaults to weights_only=True and refuses a pickle whose reduce calls an
    arbitrary function (here one with a visible side effect, and os.system) with UnpicklingError, WITHOUT
    running it; weights_only=False runs it (proving the payload is live); catches an unsafe default."""
    _models.SIDE_EFFECTS.clear()
    torch.save({"w": torch.ones(2), "evil": Payload("ran")}, tmp_path / "evil.pt")
    marker = tmp_path / "pwned"

    class _Sys:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    torch.save({"w": torch.ones(2), "evil": _Sys()}, tmp_path / "evil_os.pt")
    assert_raises("torch.load", pickle.UnpicklingError, torch.load, tmp_path / "evil.pt", args="default weights_only")
    assert_raises("torch.load", pickle.UnpicklingError, torch.load, tmp_path / "evil_os.pt", args="default weights_only, os.system")
    assert_raises("torch.load", pickle.UnpicklingError, torch.load, tmp_path / "evil.pt", weights_only=True, args="weights_only=True")
    assert_equal("torch.load", list(_models.SIDE_EFFECTS), [], args="payload must not run")
    assert_true("torch.load", not marker.exists(), "os.system payload executed during a refused load")
    got = torch.load(tmp_path / "evil.pt", weights_only=False)
    assert_equal("torch.load", got["evil"], "ran", args="weights_only=False runs reduce")
    assert_equal("torch.load", list(_models.SIDE_EFFECTS), ["ran"], args="weights_only=False side effect")


def test_weights_only_loads_plain_containers(tmp_path):
    """weights_only=True (default) accepts tensors inside dict, OrderedDict, list, tuple with ints, floats,
    strings, bools, None, torch.Size and dtypes; catches an allowlist too narrow to load a normal checkpoint."""
    from collections import OrderedDict
    obj = {"od": OrderedDict(a=torch.ones(2)), "l": [1, 2.5, "s", None, True], "t": (torch.zeros(1), 3),
           "size": torch.Size([2, 3]), "dtype": torch.float16, "nested": {"x": [torch.arange(3)]}}
    got = _roundtrip(obj, "bytesio", tmp_path)
    assert_equal("torch.load", got["l"], [1, 2.5, "s", None, True])
    assert_true("torch.load", isinstance(got["od"], OrderedDict), "OrderedDict became a plain dict")
    assert_equal("torch.load", got["size"], torch.Size([2, 3]))
    assert_equal("torch.load", got["dtype"], torch.float16)
    assert_equal("torch.load", got["nested"]["x"][0], np.arange(3))
    assert_equal("torch.load", got["t"][1], 3)


def test_add_safe_globals_allows_listed_class(tmp_path):
    """A user class is refused under weights_only until allowlisted: torch.serialization.safe_globals([...])
    (context) or add_safe_globals([...]) lets it load equal; get_unsafe_globals_in_checkpoint names it;
    an allowlisted class does not open the door for another (Payload still refused)."""
    torch.save({"p": Point(1, 2), "w": torch.ones(1)}, tmp_path / "point.pt")
    torch.save({"p": Point(3, 4), "e": Payload("x")}, tmp_path / "mixed.pt")
    assert_raises("torch.load", pickle.UnpicklingError, torch.load, tmp_path / "point.pt", args="not allowlisted")
    ser = torch.serialization
    if hasattr(ser, "get_unsafe_globals_in_checkpoint"):
        names = ser.get_unsafe_globals_in_checkpoint(tmp_path / "point.pt")
        assert_true("torch.serialization.get_unsafe_globals_in_checkpoint", any("Point" in n for n in names), f"got {names}")
    if hasattr(ser, "safe_globals"):
        with ser.safe_globals([Point]):
            got = torch.load(tmp_path / "point.pt")
            assert_equal("torch.serialization.safe_globals", got["p"], Point(1, 2))
            _models.SIDE_EFFECTS.clear()
            assert_raises("torch.load", pickle.UnpicklingError, torch.load, tmp_path / "mixed.pt", args="other class still refused")
            assert_equal("torch.load", list(_models.SIDE_EFFECTS), [], args="payload must not run")
        assert_raises("torch.load", pickle.UnpicklingError, torch.load, tmp_path / "point.pt", args="after safe_globals context")
    before = list(ser.get_safe_globals()) if hasattr(ser, "get_safe_globals") else None
    try:
        ser.add_safe_globals([Point])
        got = torch.load(tmp_path / "point.pt")
        assert_equal("torch.serialization.add_safe_globals", got["p"], Point(1, 2))
    finally:
        if before is not None:
            ser.clear_safe_globals()
            ser.add_safe_globals(before)


def test_optimizer_state_dict_round_trip(tmp_path):
    """An Adam state_dict (step tensors, moments, betas tuple) saved and loaded with the default
    weights_only=True restores training exactly: continuing after a reload equals continuing in memory."""
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, amsgrad=True)
    x, y = torch.randn(8, 4), torch.randn(8, 2)

    def step(m, o):
        o.zero_grad(); nn.functional.mse_loss(m(x), y).backward(); o.step()
    for _ in range(3):
        step(model, opt)
    torch.save({"model": model.state_dict(), "optim": opt.state_dict()}, tmp_path / "ckpt.pt")
    ck = torch.load(tmp_path / "ckpt.pt")
    model2 = nn.Linear(4, 2); model2.load_state_dict(ck["model"])
    opt2 = torch.optim.Adam(model2.parameters(), lr=0.5, amsgrad=True); opt2.load_state_dict(ck["optim"])
    assert_equal("torch.optim.Optimizer.load_state_dict", opt2.param_groups[0]["betas"], (0.9, 0.999), args="betas")
    for _ in range(3):
        step(model, opt); step(model2, opt2)
    for (k, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        assert_equal("torch.load", b, a, args=f"{k} after resume")


def test_legacy_format_still_loads(tmp_path):
    """_use_new_zipfile_serialization=False writes the legacy (non-zip) format, which torch.load still reads
    with values, dtypes and shared storage intact."""
    base = torch.arange(10, dtype=torch.float64)
    obj = {"a": base, "v": base[2:5], "i": torch.tensor([1, -2], dtype=torch.int16), "bf": torch.ones(3, dtype=torch.bfloat16)}
    torch.save(obj, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    torch.save(obj, tmp_path / "zip.pt")
    assert_true("torch.save", not zipfile.is_zipfile(tmp_path / "legacy.pt"), "legacy save wrote a zip file")
    assert_true("torch.save", zipfile.is_zipfile(tmp_path / "zip.pt"), "default save is not the zip format")
    got = torch.load(tmp_path / "legacy.pt")
    assert_equal("torch.load", got["a"], np.arange(10.0), args="legacy")
    assert_equal("torch.load", got["v"], np.arange(2.0, 5.0), args="legacy view")
    assert_equal("torch.load", got["i"].dtype, torch.int16, args="legacy dtype")
    assert_equal("torch.load", got["bf"].float(), np.ones(3), args="legacy bfloat16")
    assert_true("torch.load", got["v"].untyped_storage().data_ptr() == got["a"].untyped_storage().data_ptr(), "legacy view lost sharing")


def test_mmap_load(tmp_path):
    """torch.load(path, mmap=True) (torch >= 2.1) returns equal tensors backed by the file; mmap with a
    file-like object or a legacy file is rejected; catches mmap loading wrong bytes or offsets."""
    sd = {"a": torch.randn(100, 7), "b": torch.arange(13, dtype=torch.int64), "c": torch.randn(5, dtype=torch.float64)}
    torch.save(sd, tmp_path / "m.pt")
    got = torch.load(tmp_path / "m.pt", mmap=True)
    for k, v in sd.items():
        assert_equal("torch.load", got[k], v, args=f"mmap=True: {k}")
    buf = io.BytesIO(); torch.save(sd, buf); buf.seek(0)
    assert_raises("torch.load", (ValueError, RuntimeError), torch.load, buf, mmap=True, args="mmap=True on BytesIO")
    torch.save(sd, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    assert_raises("torch.load", RuntimeError, torch.load, tmp_path / "legacy.pt", mmap=True, args="mmap=True on legacy format")


def test_requires_grad_and_parameter_type_saved(tmp_path):
    """Checked behaviour: a saved leaf with requires_grad=True loads with requires_grad=True, an nn.Parameter
    loads as an nn.Parameter, and state_dict() entries are detached (requires_grad False, so the loaded
    state carries no autograd history)."""
    t = torch.randn(3, requires_grad=True)
    p = nn.Parameter(torch.randn(2))
    sd = nn.Linear(2, 2).state_dict()
    got = _roundtrip({"t": t, "p": p, "sd": sd}, "bytesio", tmp_path)
    assert_true("torch.load", got["t"].requires_grad, "requires_grad lost on a saved leaf")
    assert_true("torch.load", isinstance(got["p"], nn.Parameter) and got["p"].requires_grad, "Parameter type/requires_grad lost")
    assert_true("nn.Module.state_dict", not any(v.requires_grad for v in got["sd"].values()), "state_dict entries require grad")
    assert_equal("torch.load", got["t"].detach(), t.detach(), args="values")


def test_load_corrupt_or_missing_file(tmp_path):
    """A truncated checkpoint or a missing path raises (never returns garbage)."""
    torch.save({"w": torch.randn(100)}, tmp_path / "ok.pt")
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "bad.pt").write_bytes(data[: len(data) // 2])
    assert_raises("torch.load", (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile), torch.load, tmp_path / "bad.pt",
                  args="truncated file")
    assert_raises("torch.load", FileNotFoundError, torch.load, tmp_path / "missing.pt", args="missing path")
