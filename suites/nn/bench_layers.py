"""§ 4 nn.Module and layers: forward+backward microbenchmarks of Linear, Conv2d, LSTM and
TransformerEncoderLayer, with FLOP counts.

FLOP convention: 2 per multiply-add of the matrix products only (elementwise work, softmax, norms and
activations are not counted); backward = 2x forward (gradient w.r.t. input and w.r.t. weights), so
forward+backward = 3x the forward matmul FLOPs.
"""
from __future__ import annotations

from harness.bench import Benchmark


def _train_step(module, x):
    """The timed call: forward, sum, backward (fresh grads each call so every call does the same work)."""
    def step():
        module.zero_grad(set_to_none=True)
        out = module(x)
        if isinstance(out, tuple):
            out = out[0]
        out.sum().backward()
    return step


def _dt(dtype):
    import torch

    return getattr(torch, dtype)


def _setup_linear(device, batch, features, dtype):
    import torch

    m = torch.nn.Linear(features, features, device=device, dtype=_dt(dtype))
    x = torch.randn(batch, features, device=device, dtype=_dt(dtype), requires_grad=True)
    return _train_step(m, x)


def _flops_linear(batch, features, dtype):
    # forward 2*B*I*O; backward dX 2*B*I*O and dW 2*B*I*O.
    return 3 * 2 * batch * features * features


def _setup_conv2d(device, batch, channels, size, dtype):
    import torch

    m = torch.nn.Conv2d(channels, channels, 3, padding=1, device=device, dtype=_dt(dtype))
    x = torch.randn(batch, channels, size, size, device=device, dtype=_dt(dtype), requires_grad=True)
    return _train_step(m, x)


def _flops_conv2d(batch, channels, size, dtype):
    # forward 2*N*C_out*H_out*W_out*C_in*kH*kW ('same' padding: H_out = H), x3 for forward+backward.
    return 3 * 2 * batch * channels * size * size * channels * 9


def _setup_lstm(device, seq, batch, hidden, dtype):
    import torch

    m = torch.nn.LSTM(hidden, hidden, device=device, dtype=_dt(dtype))
    x = torch.randn(seq, batch, hidden, device=device, dtype=_dt(dtype), requires_grad=True)
    return _train_step(m, x)


def _flops_lstm(seq, batch, hidden, dtype):
    # per step: gates = x W_ih^T + h W_hh^T -> 2*B*4H*(I+H) with I = H; x3 for forward+backward.
    return 3 * seq * 2 * batch * 4 * hidden * (2 * hidden)


def _setup_encoder(device, seq, batch, d_model, dtype):
    import torch

    m = torch.nn.TransformerEncoderLayer(d_model, 4, dim_feedforward=4 * d_model, dropout=0.0, device=device,
                                         dtype=_dt(dtype))
    x = torch.randn(seq, batch, d_model, device=device, dtype=_dt(dtype), requires_grad=True)
    return _train_step(m, x)


def _flops_encoder(seq, batch, d_model, dtype):
    # forward per token: q/k/v/out projections 4*2*d^2, scores QK^T 2*L*d, weights@V 2*L*d,
    # feed-forward 2 * 2*d*ff with ff = 4d; x3 for forward+backward.
    ff = 4 * d_model
    return 3 * seq * batch * (8 * d_model ** 2 + 4 * seq * d_model + 4 * d_model * ff)


BENCHMARKS = [
    Benchmark(name="linear_fwd_bwd", section="nn", group="nn.linear", setup=_setup_linear,
              params={"batch": [64], "features": [256, 512], "dtype": ["float32"]}, flops=_flops_linear,
              description="Linear(features, features): forward + backward"),
    Benchmark(name="conv2d_fwd_bwd", section="nn", group="nn.conv2d", setup=_setup_conv2d,
              params={"batch": [4], "channels": [16, 32], "size": [16], "dtype": ["float32"]}, flops=_flops_conv2d,
              description="Conv2d(C, C, 3, padding=1) on (N, C, S, S): forward + backward"),
    Benchmark(name="lstm_fwd_bwd", section="nn", group="nn.lstm", setup=_setup_lstm,
              params={"seq": [16], "batch": [8], "hidden": [64, 128], "dtype": ["float32"]}, flops=_flops_lstm,
              description="1-layer LSTM(H, H) over (T, B, H): forward + backward through time"),
    Benchmark(name="transformer_encoder_layer_fwd_bwd", section="nn", group="nn.transformer", setup=_setup_encoder,
              params={"seq": [32], "batch": [4], "d_model": [64, 128], "dtype": ["float32"]}, flops=_flops_encoder,
              description="TransformerEncoderLayer(d, 4 heads, ff=4d, dropout=0): forward + backward"),
]
