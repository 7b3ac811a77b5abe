"""§ 9.1 export model zoo: small but real models covering what breaks exporters.

Built from code (no downloads), in eval mode, with weights from a fixed seed. Each entry knows its
example inputs, how to build inputs at other batch sizes / sequence lengths, which axes are dynamic,
and which lanes (see :mod:`suites.export._lanes`) it does not support, with the reason. The
unsupported pairs are data: the parity matrix turns them into strict xfails, so an exporter that
starts handling one shows up as an unexpected pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

EXAMPLE_BATCH = 4
EXAMPLE_SEQ = 6


# --------------------------------------------------------------------------------------- models
class MLP(nn.Module):
    def __init__(self, d_in: int = 16, hidden: int = 32, d_out: int = 8):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, d_out), nn.Tanh())

    def forward(self, x):
        return self.net(x)


class CNN(nn.Module):
    """Conv + BatchNorm (non-trivial running statistics) + pooling + dropout (inactive in eval)."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1, stride=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(2),
            nn.AdaptiveAvgPool2d((2, 2)))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(16 * 4, classes))
        for m in self.features:
            if isinstance(m, nn.BatchNorm2d):  # eval-mode BN must use these, not batch statistics
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                nn.init.uniform_(m.weight, 0.5, 1.5)
                nn.init.uniform_(m.bias, -0.2, 0.2)

    def forward(self, x):
        return self.head(self.features(x))


class RNN(nn.Module):
    """A 2-layer LSTM followed by a GRU; returns the last step's projection and the GRU's final state."""

    def __init__(self, d_in: int = 8, hidden: int = 16):
        super().__init__()
        self.lstm = nn.LSTM(d_in, hidden, num_layers=2, batch_first=True)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.proj = nn.Linear(hidden, 4)

    def forward(self, x):
        y, _ = self.lstm(x)
        z, h = self.gru(y)
        return self.proj(z[:, -1]) + h[0].sum(-1, keepdim=True)


class Transformer(nn.Module):
    """nn.TransformerEncoder (2 layers) with a causal mask and a key-padding mask, mean-pooled over
    the non-padded positions (so the output is defined whatever an implementation leaves at padded
    positions)."""

    def __init__(self, d_in: int = 12, d_model: int = 32, nhead: int = 4):
        super().__init__()
        self.inp = nn.Linear(d_in, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=64, dropout=0.1, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.out = nn.Linear(d_model, 6)

    def forward(self, x, pad):
        t = x.shape[1]
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), diagonal=1)
        # is_causal=True: the hint that the mask is causal (without it the encoder compares the mask
        # with a generated one, a data-dependent branch no exporter can follow)
        h = self.enc(self.inp(x), mask=causal, src_key_padding_mask=pad, is_causal=True)
        keep = (~pad).to(h.dtype).unsqueeze(-1)
        return self.out((h * keep).sum(1) / keep.sum(1))


class ControlFlow(nn.Module):
    """Data-dependent control flow: which branch runs depends on the input's values."""

    def __init__(self, d: int = 8):
        super().__init__()
        self.pos = nn.Linear(d, d)
        self.neg = nn.Linear(d, d)

    def forward(self, x):
        if x.sum() > 0:
            return torch.relu(self.pos(x))
        return self.neg(x) * 2.0


class Standardize(nn.Module):
    """A custom module holding buffers (one persistent, one not)."""

    def __init__(self, d: int):
        super().__init__()
        self.register_buffer("mean", torch.linspace(-1.0, 1.0, d))
        self.register_buffer("inv_std", torch.linspace(0.5, 2.0, d), persistent=False)

    def forward(self, x):
        return (x - self.mean) * self.inv_std


class Gate(nn.Module):
    """A custom module with its own parameter and a helper method."""

    def __init__(self, d: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.linspace(0.5, 1.5, d))

    def gate(self, x):
        return torch.sigmoid(self.alpha * x)

    def forward(self, x):
        return x * self.gate(x)


class Buffered(nn.Module):
    def __init__(self, d: int = 10):
        super().__init__()
        self.norm = Standardize(d)
        self.lin1 = nn.Linear(d, 16)
        self.gate = Gate(16)
        self.lin2 = nn.Linear(16, 3)
        self.register_buffer("offset", torch.tensor([0.25, -0.5, 1.0]))

    def forward(self, x):
        return self.lin2(self.gate(self.lin1(self.norm(x)))) + self.offset


# ---------------------------------------------------------------------------------------- entries
@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo.

    ``inputs(batch, seq, case, seed)`` builds the float32 CPU inputs; ``dims`` names the dynamic
    axes of each input ("batch"/"seq"); ``cases`` are named input families that must all agree
    (the control-flow model has one per branch); ``unsupported`` maps a lane to why it cannot
    reproduce eager, ``unsupported_dynamic`` the lanes that reproduce it only at the example's
    shapes; ``default`` says whether the default tier exports it, ``slow_lanes`` the lanes whose
    export is too slow for the default tier even so.
    """

    name: str
    factory: Callable[[], nn.Module]
    make: Callable[[torch.Generator, int, int, str], tuple]
    dims: tuple
    cases: tuple = ("default",)
    unsupported: dict = field(default_factory=dict)
    unsupported_dynamic: dict = field(default_factory=dict)
    default: bool = False
    slow_lanes: tuple = ()
    seed: int = 1234

    def build(self, device="cpu", dtype=torch.float32) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = self.factory()
        return model.to(device=device, dtype=dtype).eval()

    def inputs(self, batch: int = EXAMPLE_BATCH, seq: int = EXAMPLE_SEQ, case: str | None = None,
               seed: int = 0, device="cpu", dtype=torch.float32) -> tuple:
        gen = torch.Generator().manual_seed(seed * 7919 + batch * 31 + seq)
        raw = self.make(gen, batch, seq, case or self.cases[0])
        return tuple(t.to(device=device, dtype=dtype) if t.is_floating_point() else t.to(device) for t in raw)

    @property
    def has_seq(self) -> bool:
        return any("seq" in d.values() for d in self.dims)


def _mlp_inputs(g, b, s, case):
    return (torch.randn(b, 16, generator=g),)


def _cnn_inputs(g, b, s, case):
    return (torch.randn(b, 3, 16, 16, generator=g),)


def _rnn_inputs(g, b, s, case):
    return (torch.randn(b, s, 8, generator=g),)


def _transformer_inputs(g, b, s, case):
    x = torch.randn(b, s, 12, generator=g)
    # right padding, every sequence keeps at least 2 tokens (a fully padded row has no defined output)
    lengths = torch.randint(2, s + 1, (b,), generator=g)
    lengths[0] = s
    pad = torch.arange(s).unsqueeze(0) >= lengths.unsqueeze(1)
    return (x, pad)


def _cf_inputs(g, b, s, case):
    x = torch.rand(b, 8, generator=g) + 0.1
    return (x if case == "pos" else -x,)


def _buffered_inputs(g, b, s, case):
    return (torch.randn(b, 10, generator=g) * 2.0,)


_TRACE_CF = "torch.jit.trace records the branch taken for the example input; the other branch is lost"
_EXPORT_CF = ("torch.export cannot guard on the data-dependent `if x.sum() > 0` "
              "(GuardOnDataDependentSymNode; rewrite with torch.cond)")

_RNN_SEQ = ("torch.export specialises the sequence length of nn.LSTM/nn.GRU "
            "(UserError: Constraints violated (seq))")

ZOO: dict[str, ZooEntry] = {e.name: e for e in [
    ZooEntry("mlp", MLP, _mlp_inputs, dims=({0: "batch"},), default=True),
    ZooEntry("cnn", CNN, _cnn_inputs, dims=({0: "batch"},), default=True),
    ZooEntry("rnn", RNN, _rnn_inputs, dims=({0: "batch", 1: "seq"},),
             unsupported={"export_dynamic": _RNN_SEQ},
             unsupported_dynamic={"onnx_dynamo": "the dynamo ONNX exporter relaxes the specialised sequence length "
                                                 "of nn.LSTM/nn.GRU (" + _RNN_SEQ + ") but the graph still fixes it: "
                                                 "onnxruntime rejects other sequence lengths"}),
    ZooEntry("transformer", Transformer, _transformer_inputs, dims=({0: "batch", 1: "seq"}, {0: "batch", 1: "seq"}),
             unsupported={"onnx_legacy": "under torch.no_grad the eval-mode encoder takes its fused fast path "
                                         "(aten::_transformer_encoder_layer_fwd), which the legacy (TorchScript) "
                                         "ONNX exporter has no symbolic for"},
             default=True, slow_lanes=("export_dynamic", "onnx_dynamo")),
    ZooEntry("control_flow", ControlFlow, _cf_inputs, dims=({0: "batch"},), cases=("pos", "neg"),
             unsupported={"jit_trace": _TRACE_CF,
                          "export": _EXPORT_CF, "export_dynamic": _EXPORT_CF,
                          "onnx_dynamo": "the dynamo ONNX exporter goes through torch.export: " + _EXPORT_CF,
                          "onnx_legacy": "the legacy ONNX exporter traces: " + _TRACE_CF}),
    ZooEntry("buffered", Buffered, _buffered_inputs, dims=({0: "batch"},)),
]}
