"""§ 9.2 Mixed precision: ``torch.amp.GradScaler`` (device "cpu" where this torch supports it,
"cuda" when present): every documented method against the documented dynamic loss-scaling
algorithm run by hand (scale = init_scale; on inf/NaN: skip optimizer.step, scale *= backoff,
tracker = 0; else tracker += 1 and after growth_interval clean steps scale *= growth, tracker = 0).
Scales are powers of two, so scaled/unscaled values are compared exactly.
"""
from __future__ import annotations

import math

import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.amp._amp import grad_scaler


class _CountingSGD(torch.optim.SGD):
    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.calls = 0

    def step(self, closure=None):
        self.calls += 1
        super().step(closure)
        return "stepped"


def _setup(device, grad_value=1.0):
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0], device=device))
    return p, _CountingSGD([p], lr=0.5)


def _hand_trajectory(init, growth, backoff, interval, infs):
    scale, tracker, out = init, 0, []
    for bad in infs:
        if bad:
            scale *= backoff
            tracker = 0
        else:
            tracker += 1
            if tracker == interval:
                scale *= growth
                tracker = 0
        out.append((scale, tracker))
    return out


@pytest.mark.smoke
def test_grad_scaler_defaults_and_getters(device):
    """Documented defaults init_scale=2**16, growth_factor=2.0, backoff_factor=0.5,
    growth_interval=2000, enabled=True, and getters/setters round-trip."""
    s = grad_scaler(device)
    assert_equal("GradScaler.get_scale", s.get_scale(), 2.0 ** 16)
    assert_equal("GradScaler.get_growth_factor", s.get_growth_factor(), 2.0)
    assert_equal("GradScaler.get_backoff_factor", s.get_backoff_factor(), 0.5)
    assert_equal("GradScaler.get_growth_interval", s.get_growth_interval(), 2000)
    assert_equal("GradScaler.is_enabled", s.is_enabled(), True)
    s.set_growth_factor(3.0)
    s.set_backoff_factor(0.25)
    s.set_growth_interval(7)
    assert_equal("GradScaler.set_*", (s.get_growth_factor(), s.get_backoff_factor(), s.get_growth_interval()),
                 (3.0, 0.25, 7))


def test_grad_scaler_scale(device):
    """scale(outputs) multiplies by the current scale: a tensor, or every tensor of a (nested)
    list/tuple, keeping the structure; catches a scale factor that is ignored or applied twice."""
    s = grad_scaler(device, init_scale=8.0)
    loss = torch.tensor(1.5, device=device)
    assert_close("GradScaler.scale", s.scale(loss), 12.0, op="exact")
    out = s.scale([torch.tensor([1.0, 2.0], device=device), (torch.tensor(3.0, device=device),)])
    assert_true("GradScaler.scale", isinstance(out, list) and isinstance(out[1], tuple), "structure not kept")
    assert_equal("GradScaler.scale", out[0], torch.tensor([8.0, 16.0]).numpy(), args="list element")
    assert_equal("GradScaler.scale", out[1][0].item(), 24.0, args="nested tuple element")


def test_grad_scaler_unscale_once(device):
    """unscale_(optimizer) divides the gradients in place by the scale (exactly: power of two);
    a second unscale_ before update() raises RuntimeError; step() then does not unscale again."""
    s = grad_scaler(device, init_scale=16.0)
    p, opt = _setup(device)
    s.scale((p * torch.tensor([1.0, 2.0, 3.0], device=device)).sum()).backward()
    assert_equal("GradScaler.scale", p.grad, torch.tensor([16.0, 32.0, 48.0]).numpy(), args="scaled grads")
    grad_obj = p.grad
    s.unscale_(opt)
    assert_true("GradScaler.unscale_", p.grad is grad_obj, "unscale_ replaced .grad instead of working in place")
    assert_equal("GradScaler.unscale_", p.grad, torch.tensor([1.0, 2.0, 3.0]).numpy())
    assert_raises("GradScaler.unscale_", RuntimeError, s.unscale_, opt, match="already been called", args="second call")
    s.step(opt)
    assert_equal("GradScaler.step", p.detach(), torch.tensor([1.0 - 0.5, -2.0 - 1.0, 3.0 - 1.5]).numpy(),
                 args="after unscale_: step must not unscale twice")
    s.update()


def test_grad_scaler_step_skips_on_inf_nan(device):
    """step(optimizer) skips optimizer.step() (params unchanged, returns None) when the unscaled
    grads contain inf or NaN, and calls it otherwise (returning its value); catches a scaler that
    applies poisoned updates or skips clean ones."""
    for bad in (math.inf, -math.inf, math.nan):
        s = grad_scaler(device, init_scale=4.0)
        p, opt = _setup(device)
        s.scale(p.sum()).backward()
        p.grad[1] = bad
        ret = s.step(opt)
        assert_equal("GradScaler.step", (opt.calls, ret), (0, None), args=f"grad contains {bad}")
        assert_equal("GradScaler.step", p.detach(), torch.tensor([1.0, -2.0, 3.0]).numpy(), args=f"{bad}: params kept")
        s.update()
        assert_equal("GradScaler.update", s.get_scale(), 2.0, args=f"after {bad}: backoff 0.5")
    s = grad_scaler(device, init_scale=4.0)
    p, opt = _setup(device)
    s.scale(p.sum()).backward()
    ret = s.step(opt)
    assert_equal("GradScaler.step", (opt.calls, ret), (1, "stepped"), args="clean grads")
    assert_equal("GradScaler.step", p.detach(), torch.tensor([0.5, -2.5, 2.5]).numpy(), args="unscaled update")
    assert_raises("GradScaler.step", RuntimeError, s.step, opt, match="already been called", args="second step before update")


def test_grad_scaler_trajectory(device):
    """A full training trajectory with planted infs/NaNs: the scale sequence from get_scale()
    after each update() and the growth tracker in state_dict() equal the hand-computed ones, and
    optimizer.step() runs exactly on the clean iterations (growth_factor=2, backoff_factor=0.25,
    growth_interval=3)."""
    infs = [False, False, False, True, False, False, False, False, True, True, False, False, False, False]
    s = grad_scaler(device, init_scale=2.0 ** 10, growth_factor=2.0, backoff_factor=0.25, growth_interval=3)
    p, opt = _setup(device)
    expected = _hand_trajectory(2.0 ** 10, 2.0, 0.25, 3, infs)
    got, x = [], p.detach().clone()
    for i, bad in enumerate(infs):
        opt.zero_grad()
        s.scale((p * p).sum() / 2).backward()
        if bad:
            p.grad[0] = math.nan if i % 2 else math.inf
        s.step(opt)
        s.update()
        got.append((s.get_scale(), s.state_dict()["_growth_tracker"]))
        if not bad:
            x = x - 0.5 * x  # SGD on 0.5*|p|^2: grad = p
    assert_equal("GradScaler.update", got, expected, args="(scale, growth tracker) per iteration")
    assert_equal("GradScaler.step", opt.calls, infs.count(False), args="optimizer.step calls")
    assert_close("GradScaler.step", p, x, op="training", args="params after the clean steps only")


def test_grad_scaler_growth_capped_at_finite(device):
    """Growth never makes the scale infinite: near float32's max the scale stays finite."""
    s = grad_scaler(device, init_scale=2.0 ** 127, growth_interval=1)
    p, opt = _setup(device)
    s.scale(p.sum() * 0).backward()
    s.step(opt)
    s.update()
    assert_true("GradScaler.update", math.isfinite(s.get_scale()), f"scale grew to {s.get_scale()}")


def test_grad_scaler_update_new_scale(device):
    """update(new_scale=float or 1-element tensor) sets the scale directly."""
    s = grad_scaler(device, init_scale=4.0)
    p, opt = _setup(device)
    s.scale(p.sum()).backward()
    s.step(opt)
    s.update(new_scale=3.0)
    assert_equal("GradScaler.update", s.get_scale(), 3.0, args="new_scale=3.0")
    s.update(new_scale=torch.tensor(5.0, device=device))  # 0-dim: [1] fails to copy into the CPU scaler's 0-dim scale
    assert_equal("GradScaler.update", s.get_scale(), 5.0, args="new_scale=tensor(5.)")


def test_grad_scaler_update_one_element_tensor(device):
    """update(new_scale=...) is documented to take 'a Python float or a 1-element tensor' (torch.amp.GradScaler
    .update); a shape-[1] tensor must set the scale like the 0-dim one does. Known to fail on some builds:
    see the expectation manifest in policy/torchconform-policy.toml."""
    s = grad_scaler(device, init_scale=4.0)
    p, opt = _setup(device)
    s.scale(p.sum()).backward()
    s.step(opt)
    s.update(new_scale=torch.tensor([5.0], device=device))
    assert_equal("GradScaler.update", s.get_scale(), 5.0, args="new_scale=tensor([5.])")


def test_grad_scaler_state_dict_roundtrip(device):
    """state_dict() holds scale, growth_factor, backoff_factor, growth_interval and the growth
    tracker; a scaler loaded from it continues the trajectory exactly as the original would."""
    kw = dict(init_scale=64.0, growth_factor=4.0, backoff_factor=0.125, growth_interval=2)
    s = grad_scaler(device, **kw)
    p, opt = _setup(device)
    s.scale(p.sum()).backward()
    s.step(opt)
    s.update()
    sd = s.state_dict()
    assert_equal("GradScaler.state_dict", {k: sd[k] for k in ("scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker")},
                 {"scale": 64.0, "growth_factor": 4.0, "backoff_factor": 0.125, "growth_interval": 2, "_growth_tracker": 1})
    t = grad_scaler(device)
    t.load_state_dict(sd)
    for sc in (s, t):
        opt.zero_grad()
        sc.scale(p.sum()).backward()
        sc.step(opt)
        sc.update()
    assert_equal("GradScaler.load_state_dict", t.get_scale(), 256.0, args="continues: 2nd clean step grows x4")
    assert_equal("GradScaler.load_state_dict", t.get_scale(), s.get_scale(), args="same as the original")
    assert_raises("GradScaler.load_state_dict", RuntimeError, grad_scaler(device).load_state_dict, {}, args="{}")


def test_grad_scaler_disabled_passthrough(device):
    """enabled=False: scale() returns its input object, step() just calls optimizer.step() (even
    with inf grads), update() does nothing, get_scale() is 1.0, state_dict() is {}."""
    s = grad_scaler(device, enabled=False)
    loss = torch.tensor(2.0, device=device)
    assert_true("GradScaler.scale", s.scale(loss) is loss, "disabled scale() did not return its input")
    p, opt = _setup(device)
    p.grad = torch.tensor([math.inf, 0.0, 0.0], device=device)
    s.unscale_(opt)
    s.step(opt)
    s.update()
    assert_equal("GradScaler.step", opt.calls, 1, args="enabled=False")
    assert_equal("GradScaler", (s.get_scale(), s.state_dict(), s.is_enabled()), (1.0, {}, False), args="enabled=False")


def test_grad_scaler_error_paths(device):
    """Documented errors: update() before any scale() (AssertionError), step(closure=...) while
    enabled (RuntimeError), unscale_ of float16 gradients (ValueError)."""
    s = grad_scaler(device, init_scale=4.0)
    assert_raises("GradScaler.update", AssertionError, s.update, args="before scale()")
    p, opt = _setup(device)
    s.scale(p.sum()).backward()
    assert_raises("GradScaler.step", RuntimeError, s.step, opt, closure=lambda: 0.0, match="[Cc]losure", args="closure=")
    q = torch.nn.Parameter(torch.ones(2, dtype=torch.float16, device=device))
    q.grad = torch.ones(2, dtype=torch.float16, device=device)
    assert_raises("GradScaler.unscale_", ValueError, s.unscale_, torch.optim.SGD([q], lr=1.0), match="FP16",
                  args="float16 grads")


def test_grad_scaler_multiple_optimizers(device):
    """One scaler, two optimizers: each decides independently whether to skip its step (only the
    one with inf grads is skipped), and update() backs off once."""
    s = grad_scaler(device, init_scale=8.0)
    p1, o1 = _setup(device)
    p2, o2 = _setup(device)
    s.scale(p1.sum() + p2.sum()).backward()
    p2.grad[0] = math.inf
    s.step(o1)
    s.step(o2)
    s.update()
    assert_equal("GradScaler.step", (o1.calls, o2.calls), (1, 0), args="only the optimizer with inf skips")
    assert_equal("GradScaler.update", s.get_scale(), 4.0, args="one backoff")
