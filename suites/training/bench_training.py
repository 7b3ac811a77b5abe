"""§ 6 Model training: one training step (forward + backward + SGD step) of a small CNN."""
from __future__ import annotations

from harness.bench import Benchmark


def _cnn_flops(batch, size, channels=(3, 16, 32), classes=10):
    """Forward multiply-adds (x2) of conv3x3(pad 1) -> relu -> pool2 -> conv3x3 -> relu -> pool2 -> linear,
    times 3 for forward + backward (grad input and grad weight)."""
    c0, c1, c2 = channels
    conv1 = 2 * batch * size * size * c1 * c0 * 9
    s2 = size // 2
    conv2 = 2 * batch * s2 * s2 * c2 * c1 * 9
    s4 = size // 4
    fc = 2 * batch * c2 * s4 * s4 * classes
    return 3 * (conv1 + conv2 + fc)


def _setup_cnn_step(device, batch, size, dtype="float32"):
    import torch
    import torch.nn as nn

    dt = getattr(torch, dtype)
    if device.startswith("cpu") and dt in (torch.float16,):
        raise NotImplementedError("float16 training step is not a CPU workload")
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * (size // 4) ** 2, 10),
    ).to(device=device, dtype=dt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(batch, 3, size, size, device=device, dtype=dt)
    y = torch.randint(0, 10, (batch,), device=device)
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


BENCHMARKS = [
    Benchmark(name="cnn_train_step", section="training", group="training.step", setup=_setup_cnn_step,
              params={"batch": [32], "size": [32], "dtype": ["float32"]},
              flops=lambda batch, size, dtype: _cnn_flops(batch, size),
              items=lambda batch, size, dtype: batch, throughput_unit="samples/s",
              description="2 conv + linear CNN on 32x32x3, forward + backward + SGD(momentum) step"),
]
