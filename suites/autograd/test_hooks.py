"""§ 2 Autograd: gradient hooks (``Tensor.register_hook``, ``register_post_accumulate_grad_hook``,
``Node.register_hook``/``register_prehook``), saved-tensor hooks and anomaly detection.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_raises, assert_true


@pytest.mark.smoke
def test_register_hook_modifies_grad(device, np_rng):
    """A hook on an intermediate sees the incoming grad (closed form) and its return value replaces it for
    everything upstream; catches hooks that are ignored, called with the wrong grad or whose result is dropped."""
    xn = np_rng.standard_normal(4)
    x = torch.tensor(xn, dtype=torch.float64, device=device, requires_grad=True)
    h = x * 3
    seen = []

    def hook(g):
        seen.append(g.detach().clone())
        return g * 10

    handle = h.register_hook(hook)
    (h ** 2).sum().backward(retain_graph=True)
    assert_equal("Tensor.register_hook", len(seen), 1, args="calls per backward")
    assert_close("Tensor.register_hook", seen[0], 2 * 3 * xn, op="gradient", args="hook input")
    assert_close("Tensor.register_hook", x.grad, 10 * 2 * 3 * xn * 3, op="gradient", args="modified grad upstream")
    handle.remove()
    x.grad = None
    h2 = x * 3
    (h2 ** 2).sum().backward()
    assert_equal("RemovableHandle.remove", len(seen), 1, args="hook on another tensor")
    x.grad = None
    (h ** 2).sum().backward()       # through h's retained graph again
    assert_equal("RemovableHandle.remove", len(seen), 1, args="removed hook must not run")
    assert_close("RemovableHandle.remove", x.grad, 2 * 3 * xn * 3, op="gradient", args="grad without the hook")


def test_register_hook_on_leaf(device, np_rng):
    """A hook on a leaf changes what is accumulated into .grad; a hook returning None leaves the grad as is;
    several hooks run in registration order, each seeing the previous one's result."""
    xn = np_rng.standard_normal(3)
    x = torch.tensor(xn, dtype=torch.float64, device=device, requires_grad=True)
    order = []
    x.register_hook(lambda g: order.append(("a", g.clone())))            # returns None
    x.register_hook(lambda g: g + 1)
    x.register_hook(lambda g: (order.append(("c", g.clone())), g * 2)[1])
    (x * x).sum().backward()
    assert_equal("Tensor.register_hook", [n for n, _ in order], ["a", "c"], args="registration order")
    assert_close("Tensor.register_hook", order[0][1], 2 * xn, op="gradient", args="first hook input")
    assert_close("Tensor.register_hook", order[1][1], 2 * xn + 1, op="gradient", args="chained hook input")
    assert_close("Tensor.register_hook", x.grad, (2 * xn + 1) * 2, op="gradient", args="accumulated")


def test_register_hook_runs_per_backward(device):
    """A hook on a tensor of a retained graph runs once per backward call (not once per graph, not twice)."""
    x = torch.ones(2, device=device, requires_grad=True)
    h = x * 2
    calls = []
    h.register_hook(lambda g: calls.append(1))
    y = (h * h).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert_equal("Tensor.register_hook", len(calls), 2, args="two backward calls")


def test_register_hook_requires_grad(device):
    """register_hook on a tensor that does not require grad raises."""
    t = torch.ones(2, device=device)
    assert_raises("Tensor.register_hook", RuntimeError, t.register_hook, lambda g: g,
                  match="doesn't require gradient|does not require grad", args="no requires_grad")


def test_post_accumulate_grad_hook(device, np_rng):
    """register_post_accumulate_grad_hook runs after .grad is accumulated and receives the tensor, whose .grad
    is already the accumulated value (including an earlier backward's grad)."""
    if not hasattr(torch.Tensor, "register_post_accumulate_grad_hook"):
        pytest.skip("Tensor.register_post_accumulate_grad_hook needs torch >= 2.1")
    xn = np_rng.standard_normal(3)
    x = torch.tensor(xn, dtype=torch.float64, device=device, requires_grad=True)
    seen = []
    handle = x.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.clone()))
    (x * x).sum().backward()
    (x * 3).sum().backward()
    assert_equal("Tensor.register_post_accumulate_grad_hook", len(seen), 2)
    assert_close("Tensor.register_post_accumulate_grad_hook", seen[0], 2 * xn, op="gradient", args="first")
    assert_close("Tensor.register_post_accumulate_grad_hook", seen[1], 2 * xn + 3, op="gradient", args="accumulated")
    handle.remove()
    (x * 3).sum().backward()
    assert_equal("Tensor.register_post_accumulate_grad_hook", len(seen), 2, args="after remove")
    h = x * 2
    assert_raises("Tensor.register_post_accumulate_grad_hook", RuntimeError,
                  h.register_post_accumulate_grad_hook, lambda p: None, match="leaf", args="non-leaf")


def test_node_hooks(device, np_rng):
    """grad_fn.register_prehook sees (and may replace) the grads flowing into a node; grad_fn.register_hook
    sees its outputs (grad_inputs) and inputs (grad_outputs)."""
    xn = np_rng.standard_normal(3)
    x = torch.tensor(xn, dtype=torch.float64, device=device, requires_grad=True)
    y = x.exp()
    seen = {}
    if hasattr(y.grad_fn, "register_prehook"):
        y.grad_fn.register_prehook(lambda gout: (gout[0] * 2,))
    else:
        pytest.skip("Node.register_prehook needs torch >= 2.0")
    y.grad_fn.register_hook(lambda gin, gout: seen.update(gin=gin[0].clone(), gout=gout[0].clone()))
    y.sum().backward()
    assert_close("Node.register_prehook", x.grad, 2 * np.exp(xn), op="gradient", args="prehook doubles grad")
    assert_close("Node.register_hook", seen["gout"], np.full(3, 2.0), op="gradient", args="grad_outputs")
    assert_close("Node.register_hook", seen["gin"], 2 * np.exp(xn), op="gradient", args="grad_inputs")


def test_saved_tensors_hooks(device, np_rng):
    """saved_tensors_hooks: pack is called when exp saves its result (once), unpack at backward (once), and
    the unpacked value is what backward uses (unpack returning 2*saved doubles the gradient)."""
    xn = np_rng.standard_normal(4)
    x = torch.tensor(xn, dtype=torch.float64, device=device, requires_grad=True)
    calls = {"pack": 0, "unpack": 0}

    def pack(t):
        calls["pack"] += 1
        return ("packed", t.detach().cpu().clone(), t.device)

    def unpack(p):
        calls["unpack"] += 1
        tag, t, dev = p
        assert tag == "packed"
        return t.to(dev) * 2

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        y = x.exp()
    assert_equal("saved_tensors_hooks", calls, {"pack": 1, "unpack": 0}, args="after forward")
    y.sum().backward()
    assert_equal("saved_tensors_hooks", calls, {"pack": 1, "unpack": 1}, args="after backward")
    assert_close("saved_tensors_hooks", x.grad, 2 * np.exp(xn), op="gradient", args="unpacked value used")
    x.grad = None
    x.exp().sum().backward()
    assert_close("saved_tensors_hooks", x.grad, np.exp(xn), op="gradient", args="outside the context")


def test_save_on_cpu(device, np_rng):
    """torch.autograd.graph.save_on_cpu keeps saved tensors on the CPU and gives the same grads."""
    xn = np_rng.standard_normal(4)
    x = torch.tensor(xn, dtype=torch.float64, device=device, requires_grad=True)
    with torch.autograd.graph.save_on_cpu():
        y = (x.sin() * x).sum()
    y.backward()
    assert_close("save_on_cpu", x.grad, np.cos(xn) * xn + np.sin(xn), op="gradient")


def test_detect_anomaly(device):
    """Under detect_anomaly a backward that produces NaN raises naming the failing node
    ("Function 'SqrtBackward0' returned nan values"); without it the NaN silently reaches .grad."""
    def run():
        x = torch.zeros(2, dtype=torch.float64, device=device, requires_grad=True)
        (torch.sqrt(x) * 0).sum().backward()    # 0 * 1/(2*sqrt(0)) = NaN
        return x
    x = run()
    assert_true("torch.autograd.detect_anomaly", torch.isnan(x.grad).all().item(),
                "expected a NaN grad without anomaly mode (0 * inf)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # anomaly mode warns that it is slow and prints the forward trace
        with torch.autograd.detect_anomaly():
            assert_true("torch.is_anomaly_enabled", torch.is_anomaly_enabled(), "flag not set inside")
            assert_raises("torch.autograd.detect_anomaly", RuntimeError, run, match="SqrtBackward0.*nan",
                          args="NaN in backward")
        assert_true("torch.is_anomaly_enabled", not torch.is_anomaly_enabled(), "flag not restored")
        torch.autograd.set_detect_anomaly(True)
        try:
            assert_raises("torch.autograd.set_detect_anomaly", RuntimeError, run, match="nan", args="True")
        finally:
            torch.autograd.set_detect_anomaly(False)
        with torch.autograd.detect_anomaly(check_nan=False):
            x = run()
        assert_true("torch.autograd.detect_anomaly", torch.isnan(x.grad).all().item(), "check_nan=False still raised")
