"""§ 8 Devices and distributed: moving tensors, modules and optimiser state between devices
(``Tensor.to``, ``.cpu``, ``.cuda``, ``non_blocking``, ``Module.to``, ``Optimizer.load_state_dict``)
and CPU/accelerator parity for the same seed. Device-generic: on a CPU-only machine the moves are
CPU->CPU (and dtype conversions), the parity tests skip with a reason.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harness.checks import assert_close, assert_equal, assert_true


def _net():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


@pytest.mark.smoke
def test_tensor_to_device_values(device, np_rng):
    """Tensor.to(device) (blocking and non_blocking=True) and .cpu() carry values exactly, set the
    device, keep dtype and shape, and work on non-contiguous sources; catches a copy that
    loses data, ignores strides, or leaves the tensor on the source device."""
    src = np_rng.standard_normal((4, 5)).astype(np.float32)
    t = torch.from_numpy(src)
    for nb in (False, True):
        for x, ref in [(t, src), (t.t(), src.T), (t[:, ::2], src[:, ::2])]:
            d = x.to(device, non_blocking=nb)
            if nb and device != "cpu":
                torch.cuda.synchronize()
            assert_equal("Tensor.to", d.device.type, device, args=f"{device!r}, non_blocking={nb}")
            assert_equal("Tensor.to", d.dtype, torch.float32)
            assert_equal("Tensor.to", d, ref, args=f"{device!r}, non_blocking={nb}, strides={x.stride()}")
            back = d.cpu()
            assert_equal("Tensor.cpu", back.device.type, "cpu")
            assert_equal("Tensor.cpu", back, ref)


def test_tensor_to_returns_self_when_already_there(device):
    """Tensor.to returns self (no copy) when device and dtype already match, and a new tensor with
    copy=True; .cpu() on a CPU tensor is self; a dtype change copies."""
    x = torch.arange(6.0, device=device)
    assert_true("Tensor.to", x.to(device) is x, "to(same device) did not return self")
    assert_true("Tensor.to", x.to(x.device, torch.float32) is x, "to(same device, same dtype) did not return self")
    assert_true("Tensor.to", x.to(dtype=torch.float32) is x, "to(same dtype) did not return self")
    c = x.to(device, copy=True)
    assert_true("Tensor.to", c is not x and c.data_ptr() != x.data_ptr(), "copy=True returned self or an alias")
    d = x.to(torch.float64)
    assert_equal("Tensor.to", d.dtype, torch.float64)
    assert_equal("Tensor.to", d, np.arange(6.0))
    if device == "cpu":
        assert_true("Tensor.cpu", x.cpu() is x, "cpu() on a CPU tensor did not return self")


def test_tensor_to_other_forms(device):
    """Tensor.to(other) takes device and dtype from another tensor; to(torch.device) equals to(str)."""
    x = torch.arange(4, dtype=torch.int32)
    other = torch.zeros(1, dtype=torch.float64, device=device)
    y = x.to(other)
    assert_equal("Tensor.to", (y.device.type, y.dtype), (device, torch.float64), args="to(other)")
    assert_equal("Tensor.to", y, np.arange(4.0))
    z = x.to(torch.device(device))
    assert_equal("Tensor.to", z.device.type, device, args="torch.device")


def test_module_to_moves_in_place(device):
    """Module.to(device/dtype) converts parameters AND buffers in place: it returns the same
    module, the Parameter objects stay the same objects (optimisers holding them keep working),
    values are kept; catches a .to that forgets buffers or rebinds parameters."""
    torch.manual_seed(0)
    m = _net()
    params_before = list(m.parameters())
    ref = {k: v.detach().double().numpy().copy() for k, v in m.state_dict().items() if v.is_floating_point()}
    out = m.to(device=device, dtype=torch.float64)
    assert_true("Module.to", out is m, "Module.to did not return self")
    for p_old, p_new in zip(params_before, m.parameters()):
        assert_true("Module.to", p_old is p_new, "a Parameter object was replaced instead of converted in place")
    for name, t in list(m.named_parameters()) + list(m.named_buffers()):
        if t.is_floating_point():
            assert_equal("Module.to", (t.device.type, t.dtype), (device, torch.float64), args=name)
            assert_equal("Module.to", t, ref[name], args=name)
    assert_equal("Module.to", m[1].num_batches_tracked.dtype, torch.int64, args="integer buffer keeps its dtype")


def test_module_to_then_train_matches(device):
    """A model moved to the device and trained equals the same model trained on the CPU (same
    seed, same data): the optimiser built BEFORE the move still updates the moved parameters."""
    torch.manual_seed(1)
    cpu_m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    dev_m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    dev_m.load_state_dict(cpu_m.state_dict())
    opt_dev = torch.optim.SGD(dev_m.parameters(), lr=0.1, momentum=0.9)  # before the move
    dev_m.to(device)
    opt_cpu = torch.optim.SGD(cpu_m.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(8, 3, dtype=torch.float64)
    y = torch.randn(8, 1, dtype=torch.float64)
    for _ in range(3):
        for m, opt, dv in ((cpu_m, opt_cpu, "cpu"), (dev_m, opt_dev, device)):
            opt.zero_grad()
            ((m(x.to(dv)) - y.to(dv)) ** 2).mean().backward()
            opt.step()
    for (n, a), b in zip(dev_m.named_parameters(), cpu_m.parameters()):
        assert_true("Module.to", not torch.equal(b.detach(), torch.zeros_like(b)), "reference did not train")
        assert_close("Module.to", a, b, op="device", args=f"{n} after 3 SGD steps (optimizer built before .to)")


def test_optimizer_state_follows_params(device):
    """Optimizer.load_state_dict casts floating state (Adam exp_avg/exp_avg_sq) to the device and
    dtype of the parameters it is loaded into, values intact (step stays as saved); catches
    state left on the old device/dtype (a device-mismatch crash or silent float32 state)."""
    torch.manual_seed(2)
    m = nn.Linear(3, 2)
    opt = torch.optim.Adam(m.parameters(), lr=0.01)
    m(torch.randn(4, 3)).sum().backward()
    opt.step()
    saved = opt.state_dict()
    ref = {i: {k: v.detach().double().numpy().copy() for k, v in s.items() if torch.is_tensor(v) and k != "step"}
           for i, s in saved["state"].items()}
    m2 = nn.Linear(3, 2).to(device=device, dtype=torch.float64)
    opt2 = torch.optim.Adam(m2.parameters(), lr=0.01)
    opt2.load_state_dict(saved)
    for i, p in enumerate(m2.parameters()):
        st = opt2.state[p]
        for k, v in ref[i].items():
            assert_equal("Optimizer.load_state_dict", (st[k].device.type, st[k].dtype), (device, torch.float64),
                         args=f"param {i}, state {k!r}")
            assert_close("Optimizer.load_state_dict", st[k], v, op="elementwise", dtype=torch.float32, args=f"{k}")
        step = st["step"]
        assert_equal("Optimizer.load_state_dict", float(step), 1.0, args="step")
    opt2.zero_grad()
    m2(torch.randn(4, 3, device=device, dtype=torch.float64)).sum().backward()
    opt2.step()  # must not raise a device/dtype mismatch
    assert_equal("Optimizer.step", float(opt2.state[next(m2.parameters())]["step"]), 2.0, args="after load")


@pytest.mark.requires_cuda
def test_cuda_method_and_parity(device):
    """Tensor.cuda()/Module.cuda() move to the current CUDA device; the same seeded model and
    input give the same forward output and gradients on CUDA as on the CPU (op='device')."""
    torch.manual_seed(3)
    cpu_m = _net().eval()
    x = torch.randn(16, 3)
    cuda_m = _net().eval()
    cuda_m.load_state_dict(cpu_m.state_dict())
    assert_true("Module.cuda", cuda_m.cuda() is cuda_m, "Module.cuda did not return self")
    xc = x.cuda()
    assert_equal("Tensor.cuda", xc.device.type, "cuda")
    out_c = cuda_m(xc)
    out_r = cpu_m(x)
    assert_close("Module.cuda", out_c, out_r, op="device", args="forward parity")
    out_c.square().sum().backward()
    out_r.square().sum().backward()
    for (n, a), b in zip(cuda_m.named_parameters(), cpu_m.parameters()):
        assert_close("Module.cuda", a.grad, b.grad, op="device", args=f"grad {n}")


@pytest.mark.requires_cuda
def test_cuda_seeded_random_parity(device):
    """torch.manual_seed seeds CUDA too: the same seed gives the same CUDA draws twice (the CUDA
    stream differs from the CPU one by design, so only reproducibility is checked)."""
    torch.manual_seed(5)
    a = torch.randn(100, device="cuda")
    torch.manual_seed(5)
    b = torch.randn(100, device="cuda")
    assert_equal("torch.manual_seed", a, b, args="cuda")
