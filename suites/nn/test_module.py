"""§ 4 nn.Module and layers: the nn.Module mechanism (subclassing, __call__ and hooks, parameter and
buffer registration, module tree traversal, train/eval, zero_grad, to(), apply, state_dict round trips).

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import inspect
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.nn._ref import np64


class Scale(nn.Module):
    """A custom layer: y = x * w + b with an nn.Parameter per element and a buffer counting calls."""

    def __init__(self, n, device=None):
        super().__init__()
        self.w = nn.Parameter(torch.full((n,), 2.0, device=device))
        self.b = nn.Parameter(torch.zeros(n, device=device))
        self.register_buffer("calls", torch.zeros((), dtype=torch.long, device=device))
        self.register_buffer("scratch", torch.ones(n, device=device), persistent=False)
        self.plain = torch.ones(n, device=device)  # plain tensor: NOT registered

    def forward(self, x, shift=0.0):
        self.calls += 1
        return x * self.w + self.b + shift

    def extra_repr(self):
        return f"n={self.w.numel()}"


class Net(nn.Module):
    def __init__(self, device=None):
        super().__init__()
        self.fc1 = nn.Linear(4, 3, device=device)
        self.act = nn.ReLU()
        self.block = nn.Sequential(OrderedDict(scale=Scale(3, device), bn=nn.BatchNorm1d(3, device=device)))
        self.fc2 = nn.Linear(3, 2, device=device)

    def forward(self, x):
        return self.fc2(self.block(self.act(self.fc1(x))))


@pytest.mark.smoke
def test_call_runs_forward(device):
    """model(x, kw=...) runs forward with the same args/kwargs and returns its result; the custom
    nn.Parameter is auto-registered with requires_grad=True, the plain tensor attribute is not, and state
    kept in a buffer persists between calls. Catches __call__ dropping kwargs or not calling forward."""
    m = Scale(3, device)
    x = torch.tensor([1.0, -2.0, 3.0], device=device)
    y = m(x, shift=1.5)
    assert_close("nn.Module.__call__", y, np64(x) * 2 + 1.5, op="elementwise", args="shift=1.5")
    m(x)
    assert_equal("nn.Module.__call__", int(m.calls), 2, args="buffer state between calls")
    names = [n for n, _ in m.named_parameters()]
    assert_equal("nn.Module.named_parameters", names, ["w", "b"], args="registration order")
    assert_true("nn.Parameter", all(p.requires_grad for p in m.parameters()), "nn.Parameter must default to requires_grad=True")
    assert_true("nn.Module.__setattr__", "plain" not in dict(m.named_parameters()) and "plain" not in dict(m.named_buffers()),
                "a plain tensor attribute must not be registered")
    assert_true("nn.Parameter", not nn.Parameter(torch.ones(1), requires_grad=False).requires_grad,
                "Parameter(requires_grad=False) ignored")


def test_named_parameters_tree(device):
    """named_parameters walks submodules in registration order with dotted names; recurse=False lists only
    direct ones; modules()/named_modules() are pre-order with self first ('' name); children() are direct."""
    net = Net(device)
    names = [n for n, _ in net.named_parameters()]
    assert_equal("nn.Module.named_parameters", names,
                 ["fc1.weight", "fc1.bias", "block.scale.w", "block.scale.b", "block.bn.weight", "block.bn.bias",
                  "fc2.weight", "fc2.bias"])
    assert_equal("nn.Module.parameters", len(list(net.parameters())), 8)
    assert_equal("nn.Module.named_parameters", [n for n, _ in net.block.scale.named_parameters(prefix="p")], ["p.w", "p.b"],
                 args="prefix='p'")
    assert_equal("nn.Module.named_parameters", list(net.named_parameters(recurse=False)), [], args="recurse=False")
    assert_equal("nn.Module.named_parameters", [n for n, _ in net.block.scale.named_parameters(recurse=False)], ["w", "b"],
                 args="recurse=False on a module with direct parameters")
    assert_equal("nn.Module.named_buffers", [n for n, _ in net.block.bn.named_buffers(recurse=False)],
                 ["running_mean", "running_var", "num_batches_tracked"], args="recurse=False")
    assert_equal("nn.Module.parameters", len(list(net.block.parameters(recurse=False))), 0, args="container recurse=False")
    assert_equal("nn.Module.named_modules", [n for n, _ in net.named_modules()],
                 ["", "fc1", "act", "block", "block.scale", "block.bn", "fc2"])
    assert_true("nn.Module.modules", next(iter(net.modules())) is net, "modules() must yield self first")
    assert_equal("nn.Module.named_children", [n for n, _ in net.named_children()], ["fc1", "act", "block", "fc2"])
    assert_equal("nn.Module.children", len(list(net.children())), 4)
    assert_equal("nn.Module.named_buffers", [n for n, _ in net.named_buffers()],
                 ["block.scale.calls", "block.scale.scratch", "block.bn.running_mean", "block.bn.running_var",
                  "block.bn.num_batches_tracked"])


def test_shared_parameters_dedup(device):
    """A parameter (or module) shared by two submodules is yielded once by parameters()/modules(), twice
    with remove_duplicate=False. Catches double-counting (an optimiser would step it twice)."""
    a = nn.Linear(3, 3, device=device)
    m = nn.Module()
    m.first = a
    m.second = nn.Linear(3, 3, device=device)
    m.second.weight = a.weight
    m.again = a
    assert_equal("nn.Module.parameters", len(list(m.parameters())), 3, args="shared weight and module once")
    assert_equal("nn.Module.named_parameters", [n for n, _ in m.named_parameters()], ["first.weight", "first.bias", "second.bias"])
    assert_equal("nn.Module.modules", len(list(m.modules())), 3, args="shared module once")
    assert_equal("nn.Module.state_dict", list(m.state_dict()),
                 ["first.weight", "first.bias", "second.weight", "second.bias", "again.weight", "again.bias"],
                 args="state_dict keeps every name of a shared tensor")
    if "remove_duplicate" not in inspect.signature(nn.Module.named_parameters).parameters:
        pytest.skip("nn.Module.named_parameters has no remove_duplicate= in this torch (added in 2.0)")
    dup = list(m.named_parameters(remove_duplicate=False))
    assert_equal("nn.Module.named_parameters", len(dup), 6, args="remove_duplicate=False")


def test_registration_rules(device):
    """__setattr__ registers Modules/Parameters, assigning None keeps the slot, del unregisters; assigning a
    plain tensor over a parameter is a TypeError; register_parameter of a non-Parameter is a TypeError;
    names with '.' are KeyErrors; a missing attribute is an AttributeError."""
    m = nn.Module()
    m.sub = nn.Linear(2, 2, device=device)
    assert_true("nn.Module.__setattr__", "sub" in dict(m.named_children()), "module attribute not registered")
    m.p = nn.Parameter(torch.ones(2, device=device))
    assert_true("nn.Module.__setattr__", "p" in dict(m.named_parameters()), "Parameter attribute not registered")
    assert_raises("nn.Module.__setattr__", TypeError, setattr, m, "p", torch.zeros(2, device=device), args="tensor over Parameter")
    m.p = None
    assert_equal("nn.Module.__setattr__", [n for n, _ in m.named_parameters()], ["sub.weight", "sub.bias"], args="p=None")
    del m.sub
    assert_equal("nn.Module.__delattr__", list(m.named_children()), [], args="del sub")
    assert_raises("nn.Module.register_parameter", TypeError, m.register_parameter, "q", torch.ones(1), args="plain tensor")
    assert_raises("nn.Module.add_module", KeyError, m.add_module, "a.b", nn.ReLU(), args="name with '.'")
    assert_raises("nn.Module.register_buffer", KeyError, m.register_buffer, "a.b", torch.ones(1), args="name with '.'")
    assert_raises("nn.Module.__getattr__", AttributeError, getattr, m, "missing", args="missing attribute")
    m.register_buffer("buf", torch.zeros(2, device=device))
    m.buf = torch.ones(3, device=device)
    assert_equal("nn.Module.__setattr__", [(n, tuple(b.shape)) for n, b in m.named_buffers()], [("buf", (3,))],
                 args="assigning a tensor to a buffer name replaces the buffer")
    m.register_module("late", nn.Tanh())
    assert_true("nn.Module.register_module", isinstance(m.get_submodule("late"), nn.Tanh), "register_module not reachable")


def test_train_eval_propagate(device):
    """train()/eval() set .training on the module and every descendant and return self; train(False) is eval.
    Catches eval not reaching nested children (BatchNorm/Dropout would keep training behaviour)."""
    net = Net(device)
    assert_true("nn.Module.training", all(m.training for m in net.modules()), "modules must start in training mode")
    assert_true("nn.Module.eval", net.eval() is net, "eval() must return self")
    assert_true("nn.Module.eval", not any(m.training for m in net.modules()), "eval() did not reach every module")
    net.train()
    assert_true("nn.Module.train", all(m.training for m in net.modules()), "train() did not reach every module")
    net.train(False)
    assert_true("nn.Module.train", not net.block.bn.training, "train(False) must act as eval()")
    assert_raises("nn.Module.train", ValueError, net.train, "yes", args="mode='yes'")
    x = torch.randn(4, 4, device=device)
    before = np64(net.block.bn.running_mean)
    net(x)
    assert_close("nn.Module.eval", net.block.bn.running_mean, before, op="exact", args="BatchNorm child in eval keeps stats")


def test_requires_grad_and_zero_grad(device):
    """requires_grad_(False) freezes every parameter (returns self); zero_grad() sets grads to None by
    default (torch >= 2.0), zero_grad(set_to_none=False) fills zeros."""
    net = Net(device)
    net(torch.randn(5, 4, device=device)).sum().backward()
    assert_true("nn.Module.backward", all(p.grad is not None for p in net.parameters()), "every parameter should have a grad")
    net.zero_grad(set_to_none=False)
    assert_true("nn.Module.zero_grad", all(p.grad is not None and not p.grad.any() for p in net.parameters()),
                "set_to_none=False must zero the grads in place")
    net.zero_grad()
    assert_true("nn.Module.zero_grad", all(p.grad is None for p in net.parameters()), "zero_grad() must set grads to None")
    assert_true("nn.Module.requires_grad_", net.requires_grad_(False) is net, "requires_grad_ must return self")
    assert_true("nn.Module.requires_grad_", not any(p.requires_grad for p in net.parameters()), "requires_grad_(False) missed one")
    net.requires_grad_()
    assert_true("nn.Module.requires_grad_", all(p.requires_grad for p in net.parameters()), "requires_grad_() default True")


def test_to_dtype_and_device(device):
    """to(float64)/double()/half() convert floating parameters and buffers only (integer buffers keep their
    dtype), in place (same Parameter objects), returning self; to(device) moves everything."""
    net = Net()
    w_obj = net.fc1.weight
    w_before = np64(net.fc1.weight)
    out = net.to(torch.float64)
    assert_true("nn.Module.to", out is net, "to() must return self")
    assert_true("nn.Module.to", net.fc1.weight is w_obj, "to() must keep Parameter identity")
    assert_true("nn.Module.to", all(p.dtype == torch.float64 for p in net.parameters()), "not every parameter became float64")
    assert_equal("nn.Module.to", net.block.bn.running_mean.dtype, torch.float64, args="float buffer converted")
    assert_equal("nn.Module.to", net.block.bn.num_batches_tracked.dtype, torch.long, args="int buffer untouched")
    assert_equal("nn.Module.to", net.block.scale.calls.dtype, torch.long, args="int buffer untouched")
    assert_close("nn.Module.to", net.fc1.weight, w_before, op="elementwise", dtype=torch.float32, args="values kept")
    net.half()
    assert_equal("nn.Module.half", net.fc2.bias.dtype, torch.float16)
    net.float().to(device)
    assert_true("nn.Module.to", all(t.device.type == device for t in list(net.parameters()) + list(net.buffers())),
                f"not everything moved to {device}")
    assert_true("nn.Module.to", net.block.scale.plain.device.type == "cpu", "a plain tensor attribute is not moved by to()")


def test_apply_order(device):
    """apply(fn) calls fn on every submodule children-first then self (post-order) and returns self."""
    net = Net(device)
    seen = []
    assert_true("nn.Module.apply", net.apply(lambda m: seen.append(type(m).__name__)) is net, "apply must return self")
    assert_equal("nn.Module.apply", seen, ["Linear", "ReLU", "Scale", "BatchNorm1d", "Sequential", "Linear", "Net"])
    net.apply(lambda m: nn.init.zeros_(m.weight) if isinstance(m, nn.Linear) else None)
    assert_close("nn.Module.apply", net.fc2.weight, np.zeros((2, 3)), op="exact", args="init via apply")


def test_forward_hooks(device):
    """register_forward_pre_hook(fn(module, args)) runs before forward and may replace args;
    register_forward_hook(fn(module, args, output)) runs after and may replace the output; hooks run in
    registration order (prepend=True first); handle.remove() detaches; with_kwargs=True passes kwargs."""
    m = Scale(2, device)
    log = []
    x = torch.tensor([1.0, 2.0], device=device)

    def pre(mod, args):
        log.append(("pre", mod is m, len(args)))
        return (args[0] + 10,)

    def post(mod, args, out):
        log.append(("post", float(args[0][0]), float(out.detach()[0])))
        return out * -1

    h1 = m.register_forward_pre_hook(pre)
    h2 = m.register_forward_hook(post)
    y = m(x)
    assert_equal("nn.Module.register_forward_hook", log, [("pre", True, 1), ("post", 11.0, 22.0)], args="hook args")
    assert_close("nn.Module.register_forward_hook", y, -(np64(x) + 10) * 2, op="elementwise", args="replaced args and output")
    h1.remove()
    h2.remove()
    assert_close("nn.Module.register_forward_hook", m(x), np64(x) * 2, op="elementwise", args="after handle.remove()")
    order = []
    m.register_forward_hook(lambda *a: order.append("a"))
    m.register_forward_hook(lambda *a: order.append("b"))
    hook_params = inspect.signature(nn.Module.register_forward_hook).parameters
    if "prepend" not in hook_params or "with_kwargs" not in hook_params:
        pytest.skip("nn.Module.register_forward_hook has no prepend=/with_kwargs= in this torch (added in 2.0)")
    m.register_forward_hook(lambda *a: order.append("first"), prepend=True)
    m.register_forward_hook(lambda mod, args, kwargs, out: order.append(("kw", kwargs.get("shift"))), with_kwargs=True)
    m(x, shift=3.0)
    assert_equal("nn.Module.register_forward_hook", order, ["first", "a", "b", ("kw", 3.0)], args="order, prepend, with_kwargs")


def test_full_backward_hook(device):
    """register_full_backward_hook(fn(module, grad_input, grad_output)): grad_output is the gradient w.r.t.
    the module output, grad_input w.r.t. its tensor inputs; returning a tuple replaces grad_input."""
    m = nn.Linear(3, 2, device=device, dtype=torch.float64)
    seen = {}

    def hook(mod, gin, gout):
        seen["gin"], seen["gout"] = gin[0].clone(), gout[0].clone()
        return (gin[0] * 3,)

    h = m.register_full_backward_hook(hook)
    x = torch.randn(4, 3, device=device, dtype=torch.float64, requires_grad=True)
    g = torch.randn(4, 2, device=device, dtype=torch.float64)
    m(x).backward(g)
    assert_close("nn.Module.register_full_backward_hook", seen["gout"], np64(g), op="exact", args="grad_output")
    assert_close("nn.Module.register_full_backward_hook", seen["gin"], np64(g) @ np64(m.weight), op="gradient", args="grad_input")
    assert_close("nn.Module.register_full_backward_hook", x.grad, 3 * np64(g) @ np64(m.weight), op="gradient", args="replaced grad_input")
    h.remove()
    x.grad = None
    m(x).backward(g)
    assert_close("nn.Module.register_full_backward_hook", x.grad, np64(g) @ np64(m.weight), op="gradient", args="after remove()")
    if hasattr(m, "register_full_backward_pre_hook"):
        m.register_full_backward_pre_hook(lambda mod, gout: (gout[0] * 0.5,))
        x.grad = None
        m(x).backward(g)
        assert_close("nn.Module.register_full_backward_pre_hook", x.grad, 0.5 * np64(g) @ np64(m.weight), op="gradient",
                     args="replaced grad_output")


def test_state_dict_round_trip(device):
    """state_dict(): ordered keys (parameters then persistent buffers, per module, dotted), detached values;
    persistent=False buffers excluded; load_state_dict copies values into the existing tensors."""
    net = Net(device)
    net(torch.randn(6, 4, device=device) * 3 + 1)  # move BatchNorm running stats and the call counter
    sd = net.state_dict()
    assert_equal("nn.Module.state_dict", list(sd),
                 ["fc1.weight", "fc1.bias", "block.scale.w", "block.scale.b", "block.scale.calls", "block.bn.weight",
                  "block.bn.bias", "block.bn.running_mean", "block.bn.running_var", "block.bn.num_batches_tracked",
                  "fc2.weight", "fc2.bias"])
    assert_true("nn.Module.state_dict", "block.scale.scratch" not in sd, "persistent=False buffer in state_dict")
    assert_true("nn.Module.state_dict", not sd["fc1.weight"].requires_grad, "state_dict values must be detached")
    assert_true("nn.Module.state_dict", net.state_dict(keep_vars=True)["fc1.weight"] is net.fc1.weight, "keep_vars=True")
    other = Net(device)
    w_obj = other.fc1.weight
    res = other.load_state_dict(sd)
    assert_equal("nn.Module.load_state_dict", (list(res.missing_keys), list(res.unexpected_keys)), ([], []), args="strict=True")
    assert_true("nn.Module.load_state_dict", other.fc1.weight is w_obj, "load_state_dict must copy into existing parameters")
    assert_close("nn.Module.load_state_dict", other.block.bn.running_var, np64(net.block.bn.running_var), op="exact",
                 args="buffers loaded")
    assert_equal("nn.Module.load_state_dict", int(other.block.scale.calls), 1, args="integer buffer loaded")
    x = torch.randn(3, 4, device=device)
    net.eval()
    other.eval()
    assert_close("nn.Module.load_state_dict", other(x), np64(net(x)), op="exact", args="same outputs after load")
    pre = net.block.state_dict(prefix="blk.")
    assert_true("nn.Module.state_dict", "blk.scale.w" in pre and "blk.bn.running_mean" in pre, "prefix= not applied")
    if "assign" not in inspect.signature(nn.Module.load_state_dict).parameters:
        pytest.skip("nn.Module.load_state_dict has no assign= in this torch (added in 2.1); the rest passed")
    third = Net(device)
    third.load_state_dict(net.state_dict(keep_vars=True), assign=True)
    assert_true("nn.Module.load_state_dict", third.fc1.weight is net.fc1.weight, "assign=True must take the given tensors")


def test_load_state_dict_strict(device):
    """strict=True raises RuntimeError on missing/unexpected keys; strict=False returns them as
    (missing_keys, unexpected_keys) and loads the rest; a shape mismatch is a RuntimeError even then."""
    net = Net(device)
    sd = net.state_dict()
    bad = dict(sd)
    del bad["fc2.bias"]
    bad["extra.weight"] = torch.zeros(1)
    target = Net(device)
    assert_raises("nn.Module.load_state_dict", RuntimeError, target.load_state_dict, bad, args="strict=True")
    res = target.load_state_dict(bad, strict=False)
    assert_equal("nn.Module.load_state_dict", list(res.missing_keys), ["fc2.bias"], args="strict=False missing")
    assert_equal("nn.Module.load_state_dict", list(res.unexpected_keys), ["extra.weight"], args="strict=False unexpected")
    assert_close("nn.Module.load_state_dict", target.fc1.weight, np64(net.fc1.weight), op="exact", args="strict=False loads rest")
    wrong = dict(sd)
    wrong["fc1.weight"] = torch.zeros(5, 5)
    assert_raises("nn.Module.load_state_dict", RuntimeError, target.load_state_dict, wrong, strict=False, args="shape mismatch")


def test_extra_repr_and_getters(device):
    """extra_repr text appears in repr; get_submodule/get_parameter/get_buffer resolve dotted paths and
    raise AttributeError for missing ones."""
    net = Net(device)
    assert_true("nn.Module.extra_repr", "Scale(n=3)" in repr(net), "extra_repr not in repr")
    assert_true("nn.Module.__repr__", "(fc1): Linear(in_features=4, out_features=3, bias=True)" in repr(net), "child repr missing")
    assert_true("nn.Module.get_submodule", net.get_submodule("block.bn") is net.block.bn, "get_submodule wrong module")
    assert_true("nn.Module.get_parameter", net.get_parameter("block.scale.w") is net.block.scale.w, "get_parameter wrong")
    assert_true("nn.Module.get_buffer", net.get_buffer("block.bn.running_var") is net.block.bn.running_var, "get_buffer wrong")
    assert_raises("nn.Module.get_submodule", AttributeError, net.get_submodule, "block.nope", args="missing")
    assert_raises("nn.Module.get_parameter", AttributeError, net.get_parameter, "fc1.nope", args="missing")
