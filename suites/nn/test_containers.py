"""§ 4 nn.Module and layers: containers Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.nn._ref import np64


@pytest.mark.smoke
def test_sequential_order(device):
    """Sequential applies its modules in order, output of one feeding the next. Catches reversed or
    skipped stages."""
    a = nn.Linear(3, 4, device=device, dtype=torch.float64)
    b = nn.Linear(4, 2, device=device, dtype=torch.float64)
    s = nn.Sequential(a, nn.ReLU(), b)
    x = torch.randn(5, 3, device=device, dtype=torch.float64)
    ref = np.maximum(np64(x) @ np64(a.weight).T + np64(a.bias), 0) @ np64(b.weight).T + np64(b.bias)
    assert_close("nn.Sequential", s(x), ref, op="nn")
    assert_equal("nn.Sequential", [n for n, _ in s.named_children()], ["0", "1", "2"], args="names are indices")
    assert_equal("nn.Sequential", len(s), 3, args="len")
    assert_equal("nn.Sequential", nn.Sequential()(x), x, args="empty Sequential is the identity")


def test_sequential_indexing(device):
    """Indexing returns the module (negative too); slicing returns a Sequential of the same modules;
    OrderedDict constructor keeps names; append/insert/extend/del/setitem edit in place."""
    mods = [nn.Linear(2, 2, device=device), nn.ReLU(), nn.Tanh(), nn.Sigmoid()]
    s = nn.Sequential(*mods)
    assert_true("nn.Sequential.__getitem__", s[0] is mods[0] and s[-1] is mods[3], "indexing returned the wrong module")
    sl = s[1:3]
    assert_true("nn.Sequential.__getitem__", type(sl) is nn.Sequential, "a slice must be a Sequential")
    assert_true("nn.Sequential.__getitem__", list(sl) == mods[1:3], "slice holds the wrong modules")
    assert_raises("nn.Sequential.__getitem__", IndexError, lambda: s[4], args="index 4 of 4")
    od = nn.Sequential(OrderedDict([("lin", mods[0]), ("act", nn.ReLU())]))
    assert_true("nn.Sequential", od.lin is mods[0], "OrderedDict names must become attributes")
    assert_equal("nn.Sequential", [n for n, _ in od.named_parameters()], ["lin.weight", "lin.bias"], args="OrderedDict ctor")
    assert_equal("nn.Sequential.__getitem__", [n for n, _ in od[1:].named_children()], ["act"], args="slice keeps names")
    s.append(nn.Identity())
    assert_true("nn.Sequential.append", len(s) == 5 and isinstance(s[4], nn.Identity), "append failed")
    if hasattr(s, "insert"):
        s.insert(0, nn.Softplus())
        assert_true("nn.Sequential.insert", isinstance(s[0], nn.Softplus) and s[1] is mods[0], "insert(0) failed")
    del s[0]
    assert_true("nn.Sequential.__delitem__", s[0] is mods[0], "del s[0] failed")
    s[1] = nn.ELU()
    assert_true("nn.Sequential.__setitem__", isinstance(s[1], nn.ELU), "setitem failed")
    assert_equal("nn.Sequential.__setitem__", [type(m).__name__ for m in s], ["Linear", "ELU", "Tanh", "Sigmoid", "Identity"])


def test_modulelist(device):
    """ModuleList registers its modules (parameters visible to the parent, moved by to()), supports
    append/extend/insert/indexing/slicing/len/iteration; a plain Python list attribute registers nothing."""
    class WithList(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])
            self.hidden = [nn.Linear(2, 2)]  # plain list: invisible to parameters()

    m = WithList()
    assert_equal("nn.ModuleList", len(list(m.parameters())), 4, args="ModuleList registered, plain list not")
    assert_equal("nn.ModuleList", [n for n, _ in m.named_parameters()],
                 ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"])
    m.to(device)
    assert_true("nn.ModuleList", m.layers[1].weight.device.type == device, "to() did not reach ModuleList members")
    ml = m.layers
    extra = nn.ReLU()
    ml.append(extra)
    ml.extend([nn.Tanh(), nn.Sigmoid()])
    ml.insert(1, nn.ELU())
    assert_equal("nn.ModuleList", [type(x).__name__ for x in ml], ["Linear", "ELU", "Linear", "ReLU", "Tanh", "Sigmoid"],
                 args="append/extend/insert order")
    assert_true("nn.ModuleList", ml[-3] is extra and isinstance(ml[1:3], nn.ModuleList), "indexing/slicing")
    assert_equal("nn.ModuleList", len(ml), 6)
    assert_raises("nn.ModuleList", TypeError, ml.append, torch.ones(1), args="append a tensor")
    del ml[0]
    assert_equal("nn.ModuleList.__delitem__", [n for n, _ in ml.named_children()], ["0", "1", "2", "3", "4"],
                 args="names renumbered after del")
    assert_true("nn.ModuleList.__delitem__", isinstance(ml[0], nn.ELU), "del ml[0] removed the wrong module")
    assert_raises("nn.ModuleList", IndexError, lambda: ml[6], args="index out of range")


def test_moduledict(device):
    """ModuleDict keeps insertion order, registers members (dotted names), supports [], in, keys/items/values,
    update, pop, len; a key with '.' is a KeyError."""
    d = nn.ModuleDict({"b": nn.Linear(2, 3), "a": nn.ReLU()})
    d["c"] = nn.Linear(3, 1)
    assert_equal("nn.ModuleDict", list(d.keys()), ["b", "a", "c"], args="insertion order")
    assert_equal("nn.ModuleDict", [n for n, _ in d.named_parameters()], ["b.weight", "b.bias", "c.weight", "c.bias"])
    assert_true("nn.ModuleDict", "a" in d and "z" not in d, "__contains__")
    d.update({"z": nn.Tanh()})
    popped = d.pop("a")
    assert_true("nn.ModuleDict", isinstance(popped, nn.ReLU) and "a" not in d and len(d) == 3, "pop/update/len")
    assert_raises("nn.ModuleDict", KeyError, d.__setitem__, "x.y", nn.ReLU(), args="key with '.'")
    assert_raises("nn.ModuleDict", KeyError, lambda: d["missing"], args="missing key")
    d.to(device)
    assert_true("nn.ModuleDict", d["c"].weight.device.type == device, "to() did not reach ModuleDict members")


def test_parameterlist_dict(device):
    """ParameterList/ParameterDict register their tensors as parameters (plain tensors are wrapped in
    Parameter with requires_grad=True) in order; the parent sees them with dotted names; grads flow."""
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.pl = nn.ParameterList([nn.Parameter(torch.ones(2)), torch.full((2,), 3.0)])
            self.pd = nn.ParameterDict({"s": nn.Parameter(torch.tensor(2.0))})

        def forward(self, x):
            return (x * self.pl[0] + self.pl[1]) * self.pd["s"]

    m = M().to(device)
    assert_equal("nn.ParameterList", [n for n, _ in m.named_parameters()], ["pl.0", "pl.1", "pd.s"])
    assert_true("nn.ParameterList", all(isinstance(p, nn.Parameter) and p.requires_grad for p in m.pl),
                "a plain tensor in ParameterList must become a Parameter")
    m.pl.append(nn.Parameter(torch.zeros(1, device=device)))
    m.pd["t"] = nn.Parameter(torch.ones(1, device=device))
    assert_equal("nn.ParameterList", len(list(m.parameters())), 5, args="after append/setitem")
    x = torch.tensor([1.0, 2.0], device=device)
    y = m(x)
    assert_close("nn.ParameterList", y, (np64(x) + 3) * 2, op="elementwise", args="forward")
    y.sum().backward()
    assert_close("nn.ParameterDict", m.pd["s"].grad, float((np64(x) + 3).sum()), op="gradient", args="grad of dict parameter")
    assert_close("nn.ParameterList", m.pl[0].grad, np64(x) * 2, op="gradient", args="grad of list parameter")
    assert_equal("nn.ParameterDict", list(m.pd.keys()), ["s", "t"], args="insertion order")
