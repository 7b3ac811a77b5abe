"""Shared fixtures of the conformance suites.

The machinery (``device``/``dtype`` fixtures, tiers, seeding, markers, check recording) lives in
the torchconform pytest plugin (:mod:`harness.pytest_plugin`); this file holds only fixtures that
several sections share.
"""
from __future__ import annotations

import pytest


@pytest.fixture
def cpu_generator(seed):
    """A torch CPU Generator seeded from the test id, for inputs built on the CPU and moved."""
    import torch

    return torch.Generator().manual_seed(seed)
