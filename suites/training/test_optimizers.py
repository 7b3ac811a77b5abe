"""§ 6 Model training: optimizers (SGD, Adam, AdamW, RMSprop, Adagrad) stepped side by side with a
NumPy float64 reference of their documented update rules (suites/training/_optim_ref.py) on the same
gradients; implementation variants (foreach, fused), parameter groups, frozen parameters, zero_grad,
state_dict round trips, add_param_group and argument validation.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import copy
import inspect

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.training import _optim_ref as ref

SHAPES = [(3, 4), (5,), ()]
STEPS = 6
GRAD_SCALES = [1.0, 3.0, 0.2, 1.0, 0.05, 2.0]  # shrinking steps exercise amsgrad's running max

CONFIGS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.5}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.1, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.1, "maximize": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.05, "maximize": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.9)}),
    ("Adam", {"lr": 0.01, "eps": 1e-2}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.5}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "maximize": True, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.02, "weight_decay": 0.5}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "betas": (0.7, 0.95)}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.8}),
    ("RMSprop", {"lr": 0.01, "centered": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5}),
    ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.9, "weight_decay": 0.1, "eps": 1e-3}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.2}),
    ("Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.5}),
    ("Adagrad", {"lr": 0.1, "weight_decay": 0.1, "eps": 1e-3, "maximize": True}),
]


def _fused_devices() -> set:
    """The device types this torch has fused optimizer kernels for: the list torch itself checks before a
    fused step (torch.utils._foreach_utils); builds that do not expose it: the devices the docs name."""
    from torch.utils import _foreach_utils

    get = getattr(_foreach_utils, "_get_fused_kernels_supported_devices", None)
    return set(get()) if get is not None else {"cpu", "cuda"}


def _cfg_id(cfg):
    name, kw = cfg
    return name + "(" + ",".join(f"{k}={v}" for k, v in kw.items()) + ")"


def _ref_kwargs(name, kw):
    return dict(kw)


def _init(np_rng):
    return [np_rng.standard_normal(s) for s in SHAPES]


def _grads(np_rng, steps=STEPS):
    return [[np_rng.standard_normal(s) * GRAD_SCALES[t % len(GRAD_SCALES)] for s in SHAPES] for t in range(steps)]


def _torch_params(arrays, device, dtype):
    return [torch.tensor(a, dtype=dtype, device=device, requires_grad=True) for a in arrays]


def _rounded(a, dtype):
    """The float64 value of ``a`` after rounding to ``dtype`` (the reference starts from what torch saw)."""
    return torch.tensor(a, dtype=dtype).double().numpy()


def _run_side_by_side(name, kw, device, dtype, np_rng, steps=STEPS, opt_extra=None):
    init, grads = _init(np_rng), _grads(np_rng, steps)
    params = _torch_params(init, device, dtype)
    opt = getattr(torch.optim, name)(params, **kw, **(opt_extra or {}))
    ref_params = [_rounded(a, dtype) for a in init]
    ref_state = [{} for _ in init]
    for t in range(steps):
        for p, g in zip(params, grads[t]):
            p.grad = torch.tensor(g, dtype=dtype, device=device)
        opt.step()
        for rp, g, st in zip(ref_params, grads[t], ref_state):
            ref.REFERENCES[name](rp, _rounded(g, dtype), st, **_ref_kwargs(name, kw))
        for i, (p, rp) in enumerate(zip(params, ref_params)):
            assert_close(f"torch.optim.{name}.step", p, rp, op="training", args=f"{_cfg_id((name, kw))}, step {t + 1}, param {i}")
    return params


@pytest.mark.parametrize("cfg", CONFIGS, ids=[_cfg_id(c) for c in CONFIGS])
def test_optimizer_matches_reference(device, dtype, cfg, np_rng):
    """Several steps of the optimiser equal the documented update rule in NumPy float64 after every step;
    catches a wrong bias correction, momentum/dampening/nesterov mix-up, L2 vs decoupled decay confusion,
    amsgrad not keeping the max, centered RMSprop not subtracting the mean, Adagrad's lr_decay ignored."""
    name, kw = cfg
    _run_side_by_side(name, kw, device, dtype, np_rng)


@pytest.mark.smoke
def test_sgd_single_step_closed_form(device):
    """One plain SGD step is p - lr * g exactly (float64); catches a sign or lr scaling bug in the simplest case."""
    p = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, device=device, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.5)
    (p * torch.tensor([2.0, 4.0, -1.0], dtype=torch.float64, device=device)).sum().backward()
    opt.step()
    assert_equal("torch.optim.SGD.step", p.detach(), np.array([0.0, -4.0, 3.5]), args="lr=0.5")


def test_adam_decoupled_weight_decay_flag(device, dtype, np_rng):
    """Adam(decoupled_weight_decay=True) (torch >= 2.6) is AdamW; catches the flag ignored (L2 applied)."""
    if "decoupled_weight_decay" not in inspect.signature(torch.optim.Adam.__init__).parameters:
        pytest.skip("torch.optim.Adam has no decoupled_weight_decay argument in this build")
    init, grads = _init(np_rng), _grads(np_rng)
    a = _torch_params(init, device, dtype)
    b = _torch_params(init, device, dtype)
    oa = torch.optim.Adam(a, lr=0.02, weight_decay=0.3, decoupled_weight_decay=True)
    ob = torch.optim.AdamW(b, lr=0.02, weight_decay=0.3)
    for t in range(STEPS):
        for pa, pb, g in zip(a, b, grads[t]):
            pa.grad = torch.tensor(g, dtype=dtype, device=device)
            pb.grad = pa.grad.clone()
        oa.step(); ob.step()
    for pa, pb in zip(a, b):
        assert_close("torch.optim.Adam", pa, pb.detach(), op="training", args="decoupled_weight_decay=True vs AdamW")
    # and it differs from L2 Adam (weight decay large enough that the difference is visible)
    c = _torch_params(init, device, torch.float64)
    oc = torch.optim.Adam(c, lr=0.02, weight_decay=0.3)
    for t in range(STEPS):
        for pc, g in zip(c, grads[t]):
            pc.grad = torch.tensor(g, dtype=torch.float64, device=device)
        oc.step()
    diff = max(float((pa.detach().double() - pc.detach()).abs().max()) for pa, pc in zip(a, c))
    assert_true("torch.optim.Adam", diff > 1e-3, f"decoupled and L2 weight decay gave the same parameters (max diff {diff:g})")


IMPL_CASES = [
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.1}),
]


@pytest.mark.parametrize("cfg", IMPL_CASES, ids=[_cfg_id(c) for c in IMPL_CASES])
@pytest.mark.parametrize("impl", ["foreach", "fused"])
def test_optimizer_implementations_agree(device, cfg, impl, np_rng):
    """foreach=True/False and fused=True (where supported) follow the same documented rule: each matches the
    float64 reference; catches a multi-tensor or fused kernel that diverges from the single-tensor loop."""
    name, kw = cfg
    if impl == "fused":
        if "fused" not in inspect.signature(getattr(torch.optim, name).__init__).parameters:
            pytest.skip(f"torch.optim.{name} has no fused implementation in this build")
        if device not in _fused_devices():
            pytest.skip(f"this torch has fused optimizer kernels only for {sorted(_fused_devices())}, not {device}")
        variants = [{"fused": True}]
    else:
        variants = [{"foreach": True}, {"foreach": False}]
    for extra in variants:
        seed = int(np_rng.integers(1 << 30))
        _run_side_by_side(name, kw, device, torch.float32, np.random.default_rng(seed), opt_extra=extra)


def test_param_groups_own_hyperparameters(device, np_rng):
    """Parameter groups use their own lr / weight_decay / momentum and inherit the rest from the defaults;
    catches group options ignored (every group using the default lr)."""
    init, grads = _init(np_rng), _grads(np_rng)
    params = _torch_params(init, device, torch.float64)
    opt = torch.optim.SGD([{"params": params[:1]}, {"params": params[1:2], "lr": 0.01, "weight_decay": 0.5},
                           {"params": params[2:], "momentum": 0.0}], lr=0.2, momentum=0.9)
    assert_equal("torch.optim.Optimizer.param_groups", [g["lr"] for g in opt.param_groups], [0.2, 0.01, 0.2])
    assert_equal("torch.optim.Optimizer.param_groups", [g["momentum"] for g in opt.param_groups], [0.9, 0.9, 0.0])
    hps = [{"lr": 0.2, "momentum": 0.9}, {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.5}, {"lr": 0.2, "momentum": 0.0}]
    rps, sts = [a.copy() for a in init], [{} for _ in init]
    for t in range(STEPS):
        for p, g in zip(params, grads[t]):
            p.grad = torch.tensor(g, dtype=torch.float64, device=device)
        opt.step()
        for rp, g, st, hp in zip(rps, grads[t], sts, hps):
            ref.sgd(rp, g, st, **hp)
    for i, (p, rp) in enumerate(zip(params, rps)):
        assert_close("torch.optim.SGD.step", p, rp, op="training", args=f"param group {i}")


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_frozen_parameters_untouched(device, name):
    """A parameter with requires_grad=False, or with grad None (unused this step), is not modified, even
    with weight decay and momentum; catches weight decay applied to frozen weights."""
    kw = {"lr": 0.1, "weight_decay": 0.5}
    if name in ("SGD", "RMSprop"):
        kw["momentum"] = 0.9
    layer = torch.nn.Linear(4, 3).to(device)
    unused = torch.nn.Parameter(torch.randn(5, device=device))
    layer.weight.requires_grad_(False)
    before_w, before_u = layer.weight.detach().clone(), unused.detach().clone()
    before_b = layer.bias.detach().clone()
    opt = getattr(torch.optim, name)(list(layer.parameters()) + [unused], **kw)
    for _ in range(3):
        opt.zero_grad()
        layer(torch.randn(2, 4, device=device)).pow(2).sum().backward()
        opt.step()
    assert_true(f"torch.optim.{name}.step", layer.weight.grad is None, "frozen weight received a gradient")
    assert_equal(f"torch.optim.{name}.step", layer.weight.detach(), before_w, args="requires_grad=False parameter")
    assert_equal(f"torch.optim.{name}.step", unused.detach(), before_u, args="grad None parameter")
    assert_true(f"torch.optim.{name}.step", not torch.equal(layer.bias.detach(), before_b), "trainable bias did not move")
    if name != "Adagrad":  # Adagrad creates its accumulators eagerly in __init__ (documented initial_accumulator_value)
        assert_true(f"torch.optim.{name}.state", len(opt.state.get(unused, {})) == 0, "state was created for a parameter without grad")


def test_zero_grad(device):
    """zero_grad() defaults to set_to_none=True (grads become None); set_to_none=False zeroes them in place
    (same tensor); catches a zero_grad that does nothing or leaves stale gradients."""
    p = torch.nn.Parameter(torch.randn(3, device=device))
    opt = torch.optim.SGD([p], lr=0.1)
    (p * 2).sum().backward()
    g = p.grad
    opt.zero_grad(set_to_none=False)
    assert_true("torch.optim.Optimizer.zero_grad", p.grad is g, "set_to_none=False replaced the grad tensor")
    assert_equal("torch.optim.Optimizer.zero_grad", p.grad, np.zeros(3), args="set_to_none=False")
    (p * 2).sum().backward()
    assert_equal("torch.optim.Optimizer.zero_grad", p.grad, np.full(3, 2.0), args="accumulate after zeroing")
    opt.zero_grad()
    assert_true("torch.optim.Optimizer.zero_grad", p.grad is None, "default zero_grad() must set grads to None")
    (p * 3).sum().backward()
    opt.zero_grad(set_to_none=True)
    assert_true("torch.optim.Optimizer.zero_grad", p.grad is None, "set_to_none=True left a gradient")


@pytest.mark.parametrize("cfg", IMPL_CASES, ids=[_cfg_id(c) for c in IMPL_CASES])
def test_state_dict_round_trip_mid_training(device, cfg, np_rng):
    """state_dict() after k steps, loaded into a fresh optimiser over copies of the parameters, continues
    bit-identically to the uninterrupted run; catches lost momentum/moment buffers or step counters, and a
    state_dict that aliases live state instead of snapshotting it."""
    name, kw = cfg
    init, grads = _init(np_rng), _grads(np_rng, 8)
    a = _torch_params(init, device, torch.float32)
    oa = getattr(torch.optim, name)(a, **kw)

    def step(params, opt, t):
        for p, g in zip(params, grads[t]):
            p.grad = torch.tensor(g, dtype=torch.float32, device=device)
        opt.step()

    for t in range(3):
        step(a, oa, t)
    sd = copy.deepcopy(oa.state_dict())
    assert_equal("torch.optim.Optimizer.state_dict", sorted(sd), ["param_groups", "state"])
    assert_equal("torch.optim.Optimizer.state_dict", sd["param_groups"][0]["params"], [0, 1, 2], args="params are indices")
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    ob = getattr(torch.optim, name)(b, **{k: (v * 10 if k == "lr" else v) for k, v in kw.items()})
    ob.load_state_dict(sd)
    assert_equal("torch.optim.Optimizer.load_state_dict", ob.param_groups[0]["lr"], kw["lr"], args="lr restored from state_dict")
    for t in range(3, 8):
        step(a, oa, t)
        step(b, ob, t)
    for i, (pa, pb) in enumerate(zip(a, b)):
        assert_equal(f"torch.optim.{name}.load_state_dict", pb.detach(), pa.detach(), args=f"param {i} after restore + 5 steps")


def test_load_state_dict_mismatch_raises(device):
    """Loading a state_dict with a different number of groups or parameters raises ValueError."""
    p = [torch.nn.Parameter(torch.randn(2, device=device)) for _ in range(3)]
    sd = torch.optim.SGD(p, lr=0.1).state_dict()
    assert_raises("torch.optim.Optimizer.load_state_dict", ValueError, torch.optim.SGD(p[:2], lr=0.1).load_state_dict, sd,
                  args="3 params into 2")
    two = torch.optim.SGD([{"params": p[:1]}, {"params": p[1:]}], lr=0.1)
    assert_raises("torch.optim.Optimizer.load_state_dict", ValueError, two.load_state_dict, sd, args="1 group into 2")


def test_add_param_group(device, np_rng):
    """add_param_group mid-training: the new group gets its own lr, inherits defaults (momentum), and its
    parameter follows the reference from then on; adding a parameter already present raises ValueError."""
    init, grads = _init(np_rng), _grads(np_rng)
    params = _torch_params(init, device, torch.float64)
    opt = torch.optim.SGD(params[:2], lr=0.1, momentum=0.9)
    rps, sts = [a.copy() for a in init], [{} for _ in init]
    for t in range(STEPS):
        if t == 2:
            opt.add_param_group({"params": [params[2]], "lr": 0.05})
            assert_equal("torch.optim.Optimizer.add_param_group", opt.param_groups[1]["momentum"], 0.9, args="inherits defaults")
        active = 3 if t >= 2 else 2
        for p, g in zip(params[:active], grads[t][:active]):
            p.grad = torch.tensor(g, dtype=torch.float64, device=device)
        opt.step()
        for i in range(active):
            ref.sgd(rps[i], grads[t][i], sts[i], lr=0.1 if i < 2 else 0.05, momentum=0.9)
    for i, (p, rp) in enumerate(zip(params, rps)):
        assert_close("torch.optim.SGD.step", p, rp, op="training", args=f"after add_param_group, param {i}")
    assert_raises("torch.optim.Optimizer.add_param_group", ValueError, opt.add_param_group, {"params": [params[0]]},
                  args="parameter already in a group")


@pytest.mark.parametrize("name,kw,why", [
    ("SGD", {"lr": -0.1}, "negative lr"),
    ("SGD", {"lr": 0.1, "momentum": -0.5}, "negative momentum"),
    ("SGD", {"lr": 0.1, "nesterov": True}, "nesterov without momentum"),
    ("SGD", {"lr": 0.1, "weight_decay": -1.0}, "negative weight_decay"),
    ("Adam", {"lr": -1e-3}, "negative lr"),
    ("Adam", {"betas": (1.0, 0.999)}, "beta1 = 1"),
    ("Adam", {"betas": (0.9, -0.1)}, "negative beta2"),
    ("Adam", {"eps": -1e-8}, "negative eps"),
    ("AdamW", {"lr": -1e-3}, "negative lr"),
    ("AdamW", {"betas": (0.9, 1.5)}, "beta2 > 1"),
    ("RMSprop", {"lr": -0.01}, "negative lr"),
    ("RMSprop", {"alpha": -0.5}, "negative alpha"),
    ("RMSprop", {"momentum": -0.1}, "negative momentum"),
    ("Adagrad", {"lr": -0.01}, "negative lr"),
    ("Adagrad", {"lr_decay": -0.1}, "negative lr_decay"),
    ("Adagrad", {"initial_accumulator_value": -1.0}, "negative initial_accumulator_value"),
])
def test_invalid_arguments_raise(device, name, kw, why):
    """Invalid hyper-parameters are rejected with ValueError at construction, not silently used."""
    p = [torch.nn.Parameter(torch.randn(2, device=device))]
    assert_raises(f"torch.optim.{name}", ValueError, getattr(torch.optim, name), p, **kw, args=why)


def test_empty_parameter_list_raises():
    """An optimiser over no parameters raises ValueError ('empty parameter list')."""
    assert_raises("torch.optim.SGD", ValueError, torch.optim.SGD, [], lr=0.1, args="[]")


def test_optimizer_minimises_quadratic(device):
    """Each optimiser drives a convex quadratic 0.5*||A x - b||^2 to its NumPy least-squares minimum;
    catches an optimiser that moves uphill or stalls."""
    rng = np.random.default_rng(7)
    A = rng.standard_normal((8, 3)); b = rng.standard_normal(8)
    x_star = np.linalg.lstsq(A, b, rcond=None)[0]
    At, bt = torch.tensor(A, device=device), torch.tensor(b, device=device)
    for name, kw, steps in [("SGD", {"lr": 0.03, "momentum": 0.8}, 120), ("Adam", {"lr": 0.1}, 150),
                            ("AdamW", {"lr": 0.1, "weight_decay": 0.0}, 150), ("RMSprop", {"lr": 0.02, "centered": True}, 150),
                            ("Adagrad", {"lr": 1.0}, 150)]:
        x = torch.zeros(3, dtype=torch.float64, device=device, requires_grad=True)
        opt = getattr(torch.optim, name)([x], **kw)
        for _ in range(steps):
            opt.zero_grad()
            (0.5 * (At @ x - bt).pow(2).sum()).backward()
            opt.step()
        # convergence tolerance: iterative optimisers oscillate near the minimum, not a rounding budget
        assert_close(f"torch.optim.{name}", x, x_star, op="training", rtol=0, atol=2e-2, args=f"{kw}, {steps} steps")
