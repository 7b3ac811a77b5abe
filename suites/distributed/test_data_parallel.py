"""§ 8 Devices and distributed: ``nn.DataParallel`` (one process, several GPUs) and model
parallelism (layers on two devices). Both need at least two CUDA devices and skip with a reason
otherwise; the reference is the same model evaluated on the CPU in float64.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.checks import assert_close, assert_equal, assert_true

pytestmark = [pytest.mark.requires_cuda, pytest.mark.min_devices(2)]


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))


def test_data_parallel_forward_backward(device):
    """DataParallel splits the batch over the GPUs (dim 0), gathers the output on device_ids[0],
    and sums gradients back into the module's parameters: equals the CPU model on the whole batch;
    catches a lost scatter chunk, a wrong gather order or a gradient not reduced."""
    ref = _model().double()
    m = _model().cuda()
    dp = nn.DataParallel(m, device_ids=list(range(torch.cuda.device_count())))
    x = torch.randn(13, 5)  # not divisible by the device count
    out = dp(x.cuda())
    assert_equal("nn.DataParallel", (out.device.index, tuple(out.shape)), (0, (13, 3)))
    r = ref(x.double())
    assert_close("nn.DataParallel", out, r, op="device", dtype=torch.float32, args="forward")
    out.square().mean().backward()
    r.square().mean().backward()
    for (n, a), b in zip(m.named_parameters(), ref.parameters()):
        assert_close("nn.DataParallel", a.grad, b.grad, op="device", dtype=torch.float32, args=f"grad {n}")


def test_data_parallel_output_device(device):
    """output_device=1 gathers the output on GPU 1."""
    dp = nn.DataParallel(_model().cuda(), device_ids=[0, 1], output_device=1)
    out = dp(torch.randn(4, 5, device="cuda:0"))
    assert_equal("nn.DataParallel", out.device.index, 1, args="output_device=1")


def test_model_parallel_two_devices(device):
    """A model split across cuda:0 and cuda:1 (activations moved with .to between stages)
    computes the same output and gradients as the CPU model; each stage's parameters stay and get
    their gradients on their own device."""
    ref = _model().double()
    m = _model()
    s0, s1 = nn.Sequential(m[0], m[1]).to("cuda:0"), m[2].to("cuda:1")
    x = torch.randn(8, 5)
    out = s1(s0(x.to("cuda:0")).to("cuda:1"))
    r = ref(x.double())
    assert_close("Tensor.to", out, r, op="device", dtype=torch.float32, args="two-stage forward")
    out.sum().backward()
    r.sum().backward()
    for (n, a), b in zip(m.named_parameters(), ref.parameters()):
        want = 0 if n.startswith(("0.", "1.")) else 1
        assert_true("Tensor.to", a.grad.device.index == want, f"grad of {n} on cuda:{a.grad.device.index}, expected cuda:{want}")
        assert_close("Tensor.to", a.grad, b.grad, op="device", dtype=torch.float32, args=f"grad {n}")
