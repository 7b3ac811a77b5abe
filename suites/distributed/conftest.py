"""Fixtures of § 8 (devices and distributed): process groups shared by a whole module.

``gloo_world`` starts two CPU ranks once per test session (process start-up dominates the cost);
``nccl_world`` starts one rank per GPU where at least two are present. Both honour an environment
already prepared by ``torchrun`` (see suites/distributed/README.md).
"""
from __future__ import annotations

import pytest

from suites.distributed._launch import World


@pytest.fixture(scope="session")
def gloo_world():
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed or its gloo backend is not available in this build")
    world = World(world_size=2, backend="gloo")
    yield world
    world.close()


@pytest.fixture(scope="session")
def nccl_world():
    import torch
    import torch.distributed as dist

    if not torch.cuda.is_available() or torch.cuda.device_count() < 2:
        pytest.skip(f"nccl world needs at least 2 CUDA devices, this machine has "
                    f"{torch.cuda.device_count() if torch.cuda.is_available() else 0}")
    if not dist.is_nccl_available():
        pytest.skip("this build has no nccl backend")
    world = World(world_size=torch.cuda.device_count(), backend="nccl")
    yield world
    world.close()


@pytest.fixture(scope="module", params=["gloo", pytest.param("nccl", marks=[pytest.mark.requires_cuda,
                                                                            pytest.mark.min_devices(2)])])
def world(request):
    """The World of each backend: gloo on CPU always, nccl with >= 2 GPUs (skipped with a reason otherwise)."""
    return request.getfixturevalue(f"{request.param}_world")
