"""Small models and data shared by the DDP ranks and the parent's single-process reference."""
from __future__ import annotations

import numpy as np

D_IN, D_HID, D_OUT = 4, 8, 2


def make_mlp(dtype=None, unused_branch: bool = False):
    import torch
    from torch import nn

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(D_IN, D_HID)
            self.fc2 = nn.Linear(D_HID, D_OUT)
            if unused_branch:
                self.unused = nn.Linear(D_HID, D_OUT)  # never called in forward
            self.register_buffer("marker", torch.zeros(3))

        def forward(self, x):
            return self.fc2(torch.tanh(self.fc1(x)))

    m = MLP()
    return m if dtype is None else m.to(dtype)


def init_state(seed: int, unused_branch: bool = False) -> dict:
    """Parameters as float32 NumPy arrays, drawn by NumPy (not torch) so every process agrees."""
    rng = np.random.default_rng(seed)
    st = {"fc1.weight": rng.normal(0, 0.5, (D_HID, D_IN)), "fc1.bias": rng.normal(0, 0.1, D_HID),
          "fc2.weight": rng.normal(0, 0.5, (D_OUT, D_HID)), "fc2.bias": rng.normal(0, 0.1, D_OUT),
          "marker": np.zeros(3)}
    if unused_branch:
        st["unused.weight"] = rng.normal(0, 0.5, (D_OUT, D_HID))
        st["unused.bias"] = rng.normal(0, 0.1, D_OUT)
    return {k: v.astype(np.float32) for k, v in st.items()}


def data(seed: int, n: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, D_IN)).astype(np.float32)
    y = np.stack([np.sin(x[:, 0]) + 0.5 * x[:, 1], x[:, 2] * x[:, 3]], axis=1).astype(np.float32)
    return x, y


def load(model, state: dict):
    import torch

    p = next(model.parameters())
    model.load_state_dict({k: torch.from_numpy(np.array(v)).to(device=p.device, dtype=p.dtype) for k, v in state.items()})
    return model


def state_numpy(model) -> dict:
    return {k: v.detach().cpu().double().numpy().copy() for k, v in model.state_dict().items()}
