"""§ 9.2 Mixed precision: ``torch.autocast`` op eligibility, nesting, state queries, gradients,
caching and numerics, per device, following the autocast op reference of the AMP docs
(https://pytorch.org/docs/stable/amp.html#autocast-op-reference). Each op list holds only ops the
docs list for that device. Numerics are checked against a NumPy float64 oracle with the ``amp``
tolerance of the low-precision dtype; float32-listed ops against float64 with float32 tolerances.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.amp._amp import DEFAULT_LOW, is_enabled, low_dtypes, require_autocast

# ---- ops listed as running in the lower-precision dtype (CPU and CUDA lists agree on these) ----
# name -> (fn, input shapes, float64 NumPy reference)
LOWER = {
    "mm": (torch.mm, [(5, 8), (8, 3)], lambda a, b: a @ b),
    "matmul": (torch.matmul, [(2, 5, 8), (8, 3)], lambda a, b: a @ b),
    "bmm": (torch.bmm, [(2, 5, 8), (2, 8, 3)], lambda a, b: a @ b),
    "addmm": (torch.addmm, [(5, 3), (5, 8), (8, 3)], lambda c, a, b: c + a @ b),
    "baddbmm": (torch.baddbmm, [(2, 5, 3), (2, 5, 8), (2, 8, 3)], lambda c, a, b: c + a @ b),
    "addbmm": (torch.addbmm, [(5, 3), (2, 5, 8), (2, 8, 3)], lambda c, a, b: c + (a @ b).sum(0)),
    "linear": (F.linear, [(5, 8), (3, 8), (3,)], lambda x, w, b: x @ w.T + b),
    "conv1d": (F.conv1d, [(2, 3, 9), (4, 3, 1)], lambda x, w: np.einsum("bct,oc->bot", x, w[:, :, 0])),
    "conv2d": (F.conv2d, [(2, 3, 5, 5), (4, 3, 1, 1)], lambda x, w: np.einsum("bchw,oc->bohw", x, w[:, :, 0, 0])),
}
LOWER_CPU_ONLY = {  # listed for CPU; not in the CUDA float16 list
    "linalg_vecdot": (lambda a, b: torch.linalg.vecdot(a, b), [(5, 8), (5, 8)], lambda a, b: (a * b).sum(-1)),
}

# ---- ops listed as autocasting to float32 (fed low-precision inputs, they must return float32) ----
_T = lambda *s: s  # noqa: E731
FP32 = {
    "cpu": {
        "mse_loss": (F.mse_loss, [(4, 6), (4, 6)], lambda a, b: ((a - b) ** 2).mean()),
        "l1_loss": (F.l1_loss, [(4, 6), (4, 6)], lambda a, b: np.abs(a - b).mean()),
        "smooth_l1_loss": (F.smooth_l1_loss, [(4, 6), (4, 6)],
                           lambda a, b: np.where(np.abs(a - b) < 1, 0.5 * (a - b) ** 2, np.abs(a - b) - 0.5).mean()),
        "binary_cross_entropy_with_logits": (F.binary_cross_entropy_with_logits, [(4, 6), (4, 6)],
                                             lambda x, y: (np.logaddexp(0, x) - x * y).mean()),
        "prod": (lambda a: torch.prod(a), [(6,)], lambda a: np.prod(a)),
    },
    "cuda": {
        "mse_loss": (F.mse_loss, [(4, 6), (4, 6)], lambda a, b: ((a - b) ** 2).mean()),
        "binary_cross_entropy_with_logits": (F.binary_cross_entropy_with_logits, [(4, 6), (4, 6)],
                                             lambda x, y: (np.logaddexp(0, x) - x * y).mean()),
        "exp": (torch.exp, [(4, 6)], np.exp),
        "log": (lambda a: torch.log(a.abs() + 0.5), [(4, 6)], lambda a: np.log(np.abs(a) + 0.5)),
        "softmax": (lambda a: torch.softmax(a, -1), [(4, 6)], lambda a: np.exp(a) / np.exp(a).sum(-1, keepdims=True)),
        "sum": (lambda a: torch.sum(a), [(4, 6)], np.sum),
        "pow": (lambda a: torch.pow(a, 2.0), [(4, 6)], lambda a: a ** 2),
        "layer_norm": (lambda a: F.layer_norm(a, (6,)), [(4, 6)],
                       lambda a: (a - a.mean(-1, keepdims=True)) / np.sqrt(a.var(-1, keepdims=True) + 1e-5)),
        "prod": (lambda a: torch.prod(a), [(6,)], lambda a: np.prod(a)),
    },
}


def _inputs(shapes, dtype, device, rng, positive=False):
    arrs = [rng.uniform(0.5, 1.5, s) if positive else rng.standard_normal(s) for s in shapes]
    ts = [torch.tensor(a, dtype=dtype, device=device) for a in arrs]
    return ts, [t.double().cpu().numpy() for t in ts]  # the oracle sees the values actually fed in


def _lower_params():
    return [pytest.param(n, id=n) for n in list(LOWER) + list(LOWER_CPU_ONLY)]


def _lower_op(device, name):
    if name in LOWER_CPU_ONLY:
        if device != "cpu":
            pytest.skip(f"{name} is on the CPU lower-precision list only (not in the {device} list)")
        return LOWER_CPU_ONLY[name]
    return LOWER[name]


@pytest.mark.smoke
@pytest.mark.parametrize("name", _lower_params())
def test_autocast_lower_precision_ops(device, name, np_rng):
    """Inside torch.autocast(device) (default dtype: bfloat16 on CPU, float16 on CUDA) a listed op
    fed float32 inputs runs in and returns the low dtype, and its value is within the amp budget of
    float64; catches an op dropped from the cast list (returns float32) or cast to the wrong dtype."""
    require_autocast(device)
    fn, shapes, ref = _lower_op(device, name)
    ts, arrs = _inputs(shapes, torch.float32, device, np_rng)
    with torch.autocast(device):
        out = fn(*ts)
    low = DEFAULT_LOW.get(device, torch.float16)
    assert_equal(f"torch.autocast({name})", out.dtype, low, args=f"device_type={device!r}, default dtype")
    assert_close(f"torch.autocast({name})", out, ref(*arrs), op="amp", args=f"device_type={device!r}")
    out2 = fn(*ts)
    assert_equal(name, out2.dtype, torch.float32, args="outside the autocast region")


@pytest.mark.parametrize("name", _lower_params())
def test_autocast_explicit_dtype(device, name, np_rng):
    """autocast(device, dtype=X) for every low dtype the device supports (CPU: bfloat16 and
    float16; CUDA: float16 and bfloat16 where supported) uses X: catches an ignored dtype argument."""
    require_autocast(device)
    fn, shapes, ref = _lower_op(device, name)
    ts, arrs = _inputs(shapes, torch.float32, device, np_rng)
    for low in low_dtypes(device):
        with torch.autocast(device, dtype=low):
            out = fn(*ts)
        assert_equal(f"torch.autocast({name})", out.dtype, low, args=f"dtype={low}")
        assert_close(f"torch.autocast({name})", out, ref(*arrs), op="amp", args=f"dtype={low}")


def _check_float32_op(device, name, np_rng):
    require_autocast(device)
    fn, shapes, ref = FP32[device][name]
    for low in low_dtypes(device):
        ts, arrs = _inputs(shapes, low, device, np_rng, positive=(name == "prod"))
        if name == "binary_cross_entropy_with_logits":
            ts[1] = ts[1].sigmoid().to(low)
            arrs[1] = ts[1].double().cpu().numpy()
        with torch.autocast(device, dtype=low):
            out = fn(*ts)
        assert_equal(f"torch.autocast({name})", out.dtype, torch.float32, args=f"low-precision inputs {low}")
        assert_close(f"torch.autocast({name})", out, ref(*arrs), op="reduction", args=f"inputs {low}, computed in float32")


@pytest.mark.devices("cpu")
@pytest.mark.parametrize("name", list(FP32["cpu"]))
def test_autocast_float32_ops_cpu(device, name, np_rng):
    """Ops on the CPU float32 list (losses, prod), fed low-precision inputs inside autocast, are
    computed in float32 and return float32, accurate to float32 tolerance against float64 on the
    same (rounded) inputs; catches such an op run in the low dtype (error ~1e-2) or returning it."""
    _check_float32_op(device, name, np_rng)


@pytest.mark.requires_cuda
@pytest.mark.parametrize("name", list(FP32["cuda"]))
def test_autocast_float32_ops_cuda(device, name, np_rng):
    """Ops on the CUDA float32 list (exp, log, softmax, sum, pow, layer_norm, losses, prod): as the
    CPU test: float32 result at float32 accuracy from low-precision inputs."""
    _check_float32_op(device, name, np_rng)


def test_autocast_promote_ops(device, np_rng):
    """cat/stack with mixed float32 and low-precision inputs return the WIDEST type (float32) and
    keep the float32 input's values exactly; catches a build that casts them down (rounding)."""
    require_autocast(device)
    a = torch.tensor(np_rng.standard_normal((2, 3)), dtype=torch.float32, device=device)
    for low in low_dtypes(device):
        b = torch.tensor(np_rng.standard_normal((2, 3)), dtype=low, device=device)
        with torch.autocast(device, dtype=low):
            c = torch.cat([a, b])
            s = torch.stack([a, b])
        for name, out in (("torch.cat", c), ("torch.stack", s)):
            assert_equal(name, out.dtype, torch.float32, args=f"(float32, {low}) under autocast")
        assert_equal("torch.cat", c[:2], a, args="float32 part kept exactly")
        assert_equal("torch.stack", s[1], b.float(), args=f"{low} part widened exactly")


def test_autocast_non_eligible_stays_float32(device, np_rng):
    """Ops on no list (relu, add) leave float32 inputs float32 inside autocast."""
    require_autocast(device)
    x = torch.tensor(np_rng.standard_normal((3, 4)), dtype=torch.float32, device=device)
    with torch.autocast(device):
        assert_equal("torch.relu", torch.relu(x).dtype, torch.float32, args="under autocast")
        assert_equal("torch.add", (x + x).dtype, torch.float32, args="under autocast")


def test_autocast_state_queries_and_nesting(device, np_rng):
    """is_autocast_enabled / get_autocast_dtype report the region's state; an inner
    autocast(enabled=False) runs float32, an inner autocast with another dtype uses it, and each
    exit restores the outer state; catches state that leaks out of a region or nesting ignored."""
    require_autocast(device)
    x = torch.tensor(np_rng.standard_normal((4, 4)), dtype=torch.float32, device=device)
    lows = low_dtypes(device)
    outer = lows[0]
    get_dtype = getattr(torch, "get_autocast_dtype", None)
    assert_equal("torch.is_autocast_enabled", is_enabled(device), False, args="outside any region")
    with torch.autocast(device, dtype=outer):
        assert_equal("torch.is_autocast_enabled", is_enabled(device), True, args="inside")
        if get_dtype is not None:
            assert_equal("torch.get_autocast_dtype", get_dtype(device), outer)
        with torch.autocast(device, enabled=False):
            assert_equal("torch.is_autocast_enabled", is_enabled(device), False, args="inner enabled=False")
            out = x @ x
            assert_equal("torch.autocast", out.dtype, torch.float32, args="inner enabled=False")
            assert_close("torch.autocast", out, x.double().cpu().numpy() @ x.double().cpu().numpy(), op="matmul",
                         args="enabled=False computes in float32")
        assert_equal("torch.autocast", (x @ x).dtype, outer, args="after inner enabled=False exits")
        if len(lows) > 1:
            with torch.autocast(device, dtype=lows[1]):
                assert_equal("torch.autocast", (x @ x).dtype, lows[1], args=f"inner dtype={lows[1]}")
                if get_dtype is not None:
                    assert_equal("torch.get_autocast_dtype", get_dtype(device), lows[1], args="inner")
            assert_equal("torch.autocast", (x @ x).dtype, outer, args="after inner dtype exits")
    assert_equal("torch.is_autocast_enabled", is_enabled(device), False, args="after the region")
    if get_dtype is None:
        pytest.skip("torch.get_autocast_dtype does not exist in this torch (added in 2.4); the rest passed")


def test_autocast_disabled_region(device, np_rng):
    """autocast(enabled=False) as the outermost region is a no-op: float32 in, float32 out."""
    require_autocast(device)
    x = torch.tensor(np_rng.standard_normal((4, 4)), dtype=torch.float32, device=device)
    with torch.autocast(device, enabled=False):
        assert_equal("torch.autocast", (x @ x).dtype, torch.float32, args="enabled=False")
        assert_equal("torch.is_autocast_enabled", is_enabled(device), False, args="enabled=False")


def test_autocast_unsupported_dtype_warns_and_disables():
    """torch.autocast('cpu', dtype=float64) is not a supported CPU autocast dtype: a UserWarning
    and the region is disabled (mm stays float32)."""
    x = torch.randn(3, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.autocast("cpu", dtype=torch.float64):
            out = x @ x
            enabled = is_enabled("cpu")
    assert_true("torch.autocast", any(issubclass(w.category, UserWarning) for w in caught),
                "no UserWarning for an unsupported CPU autocast dtype")
    assert_equal("torch.autocast", (out.dtype, enabled), (torch.float32, False), args="dtype=float64 on cpu")


def test_autocast_decorator(device, np_rng):
    """@torch.autocast(device) on a function autocasts inside the call only."""
    require_autocast(device)

    @torch.autocast(device)
    def f(a):
        return a @ a, is_enabled(device)

    x = torch.tensor(np_rng.standard_normal((4, 4)), dtype=torch.float32, device=device)
    out, inside = f(x)
    assert_equal("torch.autocast", (out.dtype, inside), (DEFAULT_LOW.get(device, torch.float16), True),
                 args="as decorator")
    assert_equal("torch.autocast", is_enabled(device), False, args="after the decorated call")


def test_autocast_gradients_are_float32(device, np_rng):
    """Backward through an autocast region gives float32 leaves float32 gradients (the cast's
    backward casts back), within the amp budget of the float64 analytic gradient; backward is
    run outside the region as documented. Catches low-precision .grad on float32 parameters."""
    require_autocast(device)
    xa = np_rng.standard_normal((6, 5))
    wa = np_rng.standard_normal((5, 3))
    for low in low_dtypes(device):
        x = torch.tensor(xa, dtype=torch.float32, device=device, requires_grad=True)
        w = torch.tensor(wa, dtype=torch.float32, device=device, requires_grad=True)
        with torch.autocast(device, dtype=low):
            y = torch.mm(x, w)
            loss = F.mse_loss(y, torch.zeros_like(y))  # float32 list (CPU and CUDA)
        loss.backward()
        xr, wr = x.detach().to(low).double().cpu().numpy(), w.detach().to(low).double().cpu().numpy()
        g = 2 * (xr @ wr) / y.numel()
        for name, t, ref in (("x", x, g @ wr.T), ("w", w, xr.T @ g)):
            assert_equal("Tensor.backward", t.grad.dtype, torch.float32, args=f"{name}.grad under autocast {low}")
            assert_close("Tensor.backward", t.grad, ref, op="amp", dtype=low, args=f"{name}.grad, autocast {low}")


def test_autocast_inplace_and_out_not_autocast(device, np_rng):
    """In-place ops and out= variants are not autocast: on float32 tensors they keep float32 and
    full float32 accuracy (Tensor.addmm_, torch.mm(out=)); catches a build that routes them
    through the low dtype (bfloat16 rounding would exceed the float32 matmul tolerance)."""
    require_autocast(device)
    a = torch.tensor(np_rng.standard_normal((5, 16)), dtype=torch.float32, device=device)
    b = torch.tensor(np_rng.standard_normal((16, 4)), dtype=torch.float32, device=device)
    c = torch.tensor(np_rng.standard_normal((5, 4)), dtype=torch.float32, device=device)
    an, bn, cn = (t.double().cpu().numpy() for t in (a, b, c))
    with torch.autocast(device):
        z = c.clone()
        z.addmm_(a, b)
        out = torch.empty(5, 4, device=device)
        torch.mm(a, b, out=out)
    assert_close("Tensor.addmm_", z, cn + an @ bn, op="matmul", check_dtype=torch.float32, args="under autocast")
    assert_close("torch.mm", out, an @ bn, op="matmul", check_dtype=torch.float32, args="out=float32 under autocast")


def test_autocast_mixed_dtypes_outside_region_raise(device):
    """Outside a region, a low-precision autocast output mixed with float32 in mm raises
    (autocast does not leak): the docs' reason to cast explicitly."""
    require_autocast(device)
    x = torch.randn(3, 3, device=device)
    with torch.autocast(device):
        y = x @ x
    assert_raises("torch.mm", RuntimeError, torch.mm, x, y, args=f"float32 @ {y.dtype} outside autocast")


def test_autocast_no_grad_interplay(device, np_rng):
    """autocast inside no_grad still casts (outputs low dtype, no grad_fn); a weight first used
    under no_grad and then with grad in the same region still receives its gradient (the cast
    cache must not hand back a graph-less copy)."""
    require_autocast(device)
    x = torch.tensor(np_rng.standard_normal((4, 3)), dtype=torch.float32, device=device)
    w = torch.tensor(np_rng.standard_normal((3, 2)), dtype=torch.float32, device=device, requires_grad=True)
    with torch.autocast(device):
        with torch.no_grad():
            a = x @ w
        b = x @ w
    assert_equal("torch.autocast", (a.dtype, a.requires_grad), (DEFAULT_LOW.get(device, torch.float16), False),
                 args="under no_grad")
    b.float().sum().backward()
    assert_true("torch.autocast", w.grad is not None, "no gradient after a no_grad use of the same weight")
    xr = x.to(b.dtype).double().cpu().numpy()
    assert_close("torch.autocast", w.grad, xr.sum(0)[:, None].repeat(2, 1), op="amp", dtype=b.dtype,
                 args="w.grad after no_grad then grad use")


def test_autocast_cache(device, np_rng):
    """cache_enabled=True (default) casts a float32 leaf weight once per region: two uses share one
    cast node in the graph; cache_enabled=False casts per use; is_autocast_cache_enabled reports
    it; the cache is dropped on exit, so an in-place change to the weight between regions is seen."""
    require_autocast(device)
    x = torch.tensor(np_rng.standard_normal((4, 3)), dtype=torch.float32, device=device)
    w = torch.tensor(np_rng.standard_normal((3, 2)), dtype=torch.float32, device=device, requires_grad=True)

    def cast_node(y):
        nodes = [f for f, _ in y.grad_fn.next_functions if f is not None]
        return nodes[-1]

    query = getattr(torch, "is_autocast_cache_enabled", None)
    for enabled in (True, False):
        with torch.autocast(device, cache_enabled=enabled):
            if query is not None:
                assert_equal("torch.is_autocast_cache_enabled", query(), enabled, args=f"cache_enabled={enabled}")
            y1, y2 = x @ w, x @ w
        shared = cast_node(y1) is cast_node(y2)
        assert_equal("torch.autocast", shared, enabled, args=f"cache_enabled={enabled}: one cast of w shared by two uses")
    with torch.autocast(device):
        y_before = x @ w
    with torch.no_grad():
        w.mul_(2.0)
    with torch.autocast(device):
        y_after = x @ w
    assert_close("torch.autocast", y_after.double(), 2 * y_before.double(), op="amp", dtype=y_after.dtype,
                 args="weight changed between regions: the cache must not be stale")
