"""§ 9.4 Ecosystem: dynamic quantisation (torch.ao.quantization.quantize_dynamic) keeps a small Linear
model usable: modules replaced by their dynamic quantized versions, int8 weights following the documented
symmetric MinMax formula, output within a stated error budget of a float64 reference, and a smaller
serialized state_dict. Skipped with a reason when no quantized engine is available.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import copy
import importlib.util
import io

import numpy as np
import pytest
import torch
import torch.nn as nn

from harness.checks import assert_close, assert_equal, assert_true

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:.*quantized tensor creation functions.*:UserWarning"),
              pytest.mark.devices("cpu")]  # eager dynamic quantized kernels are CPU kernels

# Error budget: int8 weights (per-tensor, 255 levels) and 8-bit dynamically quantised activations give
# ~1% relative output error on a 2-layer MLP with Gaussian weights; 5% leaves room for engine differences
# and still fails on any real breakage (a wrong scale or zero point gives errors of order 100%).
REL_ERROR_BUDGET = 0.05


def _engine_or_skip():
    """Skip on build facts only (no torch.ao.quantization package, no quantized engine); where the package
    exists it must import."""
    if importlib.util.find_spec("torch.ao.quantization") is None:
        pytest.skip(f"torch.ao.quantization is not part of torch {torch.__version__}")
    import torch.ao.quantization as Q  # noqa: F401
    engines = [e for e in torch.backends.quantized.supported_engines if e != "none"]
    if not engines:
        pytest.skip(f"no quantized engine in this build (supported_engines={torch.backends.quantized.supported_engines})")
    if torch.backends.quantized.engine == "none":
        torch.backends.quantized.engine = engines[0]


def _model(width=256):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 16)).eval()


def _float64_reference(model, x):
    m64 = copy.deepcopy(model).double()
    with torch.no_grad():
        return m64(x.double()).numpy()


def _quantize(model, dtype=torch.qint8):
    from torch.ao.quantization import quantize_dynamic
    return quantize_dynamic(model, {nn.Linear}, dtype=dtype)


@pytest.mark.smoke
def test_quantize_dynamic_output_within_budget():
    """The qint8 dynamic model's output is within REL_ERROR_BUDGET (relative Frobenius error) of the float64
    reference, and not bit-equal to the float model (it really is quantised); catches broken int8 kernels
    or a wrong requantisation."""
    _engine_or_skip()
    model = _model()
    x = torch.randn(32, 64, generator=torch.Generator().manual_seed(1))
    ref = _float64_reference(model, x)
    q = _quantize(model)
    with torch.no_grad():
        got = q(x).numpy().astype(np.float64)
        fl = model(x)
    rel = np.linalg.norm(got - ref) / np.linalg.norm(ref)
    assert_true("torch.ao.quantization.quantize_dynamic", rel < REL_ERROR_BUDGET, f"relative error {rel:.4f} >= {REL_ERROR_BUDGET}")
    assert_true("torch.ao.quantization.quantize_dynamic", not torch.equal(q(x), fl), "output identical to float: nothing was quantised")


def test_quantize_dynamic_replaces_modules_and_keeps_original():
    """Every nn.Linear is replaced by torch.ao.nn.quantized.dynamic.Linear, other modules stay; the input model
    is untouched (inplace=False default) and still float."""
    _engine_or_skip()
    from torch.ao.nn.quantized.dynamic import Linear as DQLinear
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = _quantize(model)
    assert_true("torch.ao.quantization.quantize_dynamic", isinstance(q[0], DQLinear) and isinstance(q[2], DQLinear),
                f"got {type(q[0]).__name__}, {type(q[2]).__name__}")
    assert_true("torch.ao.quantization.quantize_dynamic", isinstance(q[1], nn.ReLU), "non-Linear module replaced")
    assert_true("torch.ao.quantization.quantize_dynamic", type(model[0]) is nn.Linear, "original model modified (inplace=False)")
    for k, v in model.state_dict().items():
        assert_equal("torch.ao.quantization.quantize_dynamic", v, before[k], args=f"original {k}")


def test_quantized_weights_are_int8_symmetric():
    """Weights are qint8, per-tensor symmetric: zero_point 0, scale = max|w| / 127.5 (MinMaxObserver's documented
    formula), int_repr = round(w / scale) within one step; dequantised weights within scale/2 of float; bias stays
    float; catches a wrong scale, an unsigned dtype or an ignored weight."""
    _engine_or_skip()
    model = _model(64)
    q = _quantize(model)
    for i in (0, 2):
        w = model[i].weight.detach().double().numpy()
        qw = q[i].weight()
        assert_equal("torch.ao.nn.quantized.dynamic.Linear.weight", qw.dtype, torch.qint8, args=f"layer {i}")
        assert_equal("torch.ao.nn.quantized.dynamic.Linear.weight", qw.int_repr().dtype, torch.int8, args=f"layer {i}")
        assert_equal("torch.ao.nn.quantized.dynamic.Linear.weight", qw.q_zero_point(), 0, args=f"layer {i} zero_point")
        scale = np.abs(w).max() / 127.5
        # the scale is stored in float32: compare at float32 resolution
        assert_close("torch.ao.nn.quantized.dynamic.Linear.weight", qw.q_scale(), scale, op="elementwise", dtype=torch.float32, args="q_scale")
        ir = qw.int_repr().numpy().astype(np.int64)
        exp_ir = np.clip(np.round(w / qw.q_scale()), -128, 127)
        assert_true("torch.ao.nn.quantized.dynamic.Linear.weight", np.abs(ir - exp_ir).max() <= 1, "int_repr off by more than one step")
        assert_true("torch.ao.nn.quantized.dynamic.Linear.weight", (ir != exp_ir).mean() < 0.01, "int_repr differs from round(w/scale) often")
        # rounding error budget: half a quantisation step (+ float32 slack)
        assert_close("torch.ao.nn.quantized.dynamic.Linear.weight", qw.dequantize(), w, op="exact", rtol=0, atol=qw.q_scale() * 0.5 + 1e-7,
                     args=f"dequantize layer {i}")
        assert_close("torch.ao.nn.quantized.dynamic.Linear.bias", q[i].bias(), model[i].bias.detach(), op="elementwise", args=f"layer {i}")


def test_quantized_state_dict_smaller_and_round_trips(tmp_path):
    """The quantised model's saved state_dict is at most 40% of the float one (int8 vs float32 weights) and
    loads back into a fresh quantised model with the same outputs; catches weights stored as float."""
    _engine_or_skip()
    model = _model()
    q = _quantize(model)

    def nbytes(sd):
        buf = io.BytesIO()
        torch.save(sd, buf)
        return buf.tell()
    fsize, qsize = nbytes(model.state_dict()), nbytes(q.state_dict())
    assert_true("torch.ao.quantization.quantize_dynamic", qsize <= 0.4 * fsize, f"quantised state_dict {qsize} B vs float {fsize} B")
    torch.save(q.state_dict(), tmp_path / "q.pt")
    fresh = _quantize(_model())
    torch.manual_seed(5)
    fresh_other = _quantize(nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 16)).eval())
    fresh_other.load_state_dict(torch.load(tmp_path / "q.pt", weights_only=False))
    x = torch.randn(4, 64)
    with torch.no_grad():
        assert_equal("torch.load", fresh_other(x), q(x), args="quantised state_dict round trip")
        assert_equal("torch.ao.quantization.quantize_dynamic", fresh(x), q(x), args="deterministic quantisation")


def test_quantize_dynamic_float16():
    """dtype=torch.float16 dynamic quantisation stores fp16 weights: output within float16 budget of float64."""
    _engine_or_skip()
    # quantized::linear_prepack_fp16 is implemented by the fbgemm kernels (engines fbgemm and x86) only
    fp16_engines = [e for e in ("x86", "fbgemm") if e in torch.backends.quantized.supported_engines]
    if not fp16_engines:
        pytest.skip("float16 dynamic quantisation needs the fbgemm or x86 quantized engine; this build has "
                    f"{torch.backends.quantized.supported_engines}")
    model = _model(64)
    x = torch.randn(8, 64, generator=torch.Generator().manual_seed(2))
    engine = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine if engine in fp16_engines else fp16_engines[0]
    try:
        q = _quantize(model, dtype=torch.float16)
        with torch.no_grad():
            got = q(x)
    finally:
        torch.backends.quantized.engine = engine
    ref = _float64_reference(model, x)
    rel = np.linalg.norm(got.double().numpy() - ref) / np.linalg.norm(ref)
    # fp16 weights: relative error ~1e-3; 1e-2 is a generous cap that still catches wrong weights
    assert_true("torch.ao.quantization.quantize_dynamic", rel < 1e-2, f"float16 relative error {rel:.2e}")
