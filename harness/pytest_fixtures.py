"""Fixtures and parametrization of the torchconform pytest plugin (registered by
:mod:`harness.pytest_plugin` through its ``pytest_plugins``).

Fixtures ``device``, ``dtype`` (parametrized here from ``--device`` and the ``dtypes``/``devices``/
``requires_cuda`` markers), ``tier``, ``selected_devices``, ``seed`` and ``np_rng``; every test seeds
torch, NumPy and ``random`` from its node id; ``requires_cuda``/``min_devices`` and unsupported
device x dtype pairs skip with the reason; Hypothesis gets a profile per tier.
"""
from __future__ import annotations

import hashlib
import random
import sys

import pytest

from harness import devices
from harness.pytest_plugin import _STATE

HYPOTHESIS_EXAMPLES = {"smoke": 10, "default": 25, "full": 300}


@pytest.hookimpl(trylast=True)  # after harness.pytest_plugin's, which reads the options
def pytest_configure(config):
    state = config.stash.get(_STATE, None)
    if state is not None:
        _configure_hypothesis(state.tier)


def _configure_hypothesis(tier: str) -> None:
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:
        return
    name = f"torchconform-{tier}"
    settings.register_profile(name, max_examples=HYPOTHESIS_EXAMPLES[tier], deadline=None, derandomize=True,
                              print_blob=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    settings.load_profile(name)


def pytest_generate_tests(metafunc):
    state = metafunc.config.stash[_STATE]
    if "device" in metafunc.fixturenames:
        devs = list(state.devices)
        only = metafunc.definition.get_closest_marker("devices")
        if only is not None:
            devs = [d for d in devs if d in only.args]
        if metafunc.definition.get_closest_marker("requires_cuda") is not None:
            devs = [d for d in devs if d == "cuda"]
        if devs:
            metafunc.parametrize("device", devs, ids=devs, scope="function")
        else:
            reason = "no selected device fits this test (selected: " + ",".join(state.devices) + ")"
            metafunc.parametrize("device", [pytest.param(None, marks=pytest.mark.skip(reason=reason))], ids=["nodevice"])
    if "dtype" in metafunc.fixturenames:
        from harness import dtypes as _dtypes

        marker = metafunc.definition.get_closest_marker("dtypes")
        dts = list(marker.args) if marker is not None else list(_dtypes.DEFAULT)
        if len(dts) == 1 and isinstance(dts[0], (list, tuple)):
            dts = list(dts[0])
        metafunc.parametrize("dtype", dts, ids=[_dtypes.dtype_id(d) for d in dts])


def pytest_runtest_setup(item):
    if item.get_closest_marker("requires_cuda") is not None:
        import torch

        state = item.config.stash[_STATE]
        if not torch.cuda.is_available():
            pytest.skip("requires CUDA: torch.cuda.is_available() is False on this machine")
        if "cuda" not in state.devices:
            pytest.skip("requires CUDA: not selected by --device " + ",".join(state.devices))
    m = item.get_closest_marker("min_devices")
    if m is not None:
        need = int(m.args[0]) if m.args else int(m.kwargs.get("n", 2))
        kind = m.kwargs.get("device_type", "cuda")
        have = devices.device_count(kind)
        if have < need:
            pytest.skip(f"needs at least {need} {kind} devices, this machine has {have}")
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("device") and "dtype" in callspec.params:
        reason = devices.unsupported_reason(callspec.params["device"], callspec.params["dtype"])
        if reason:
            pytest.skip(reason)


def _seed_for(nodeid: str) -> int:
    return int.from_bytes(hashlib.sha256(nodeid.encode()).digest()[:4], "little") & 0x7FFFFFFF


@pytest.fixture
def seed(request) -> int:
    """A seed derived from the test's node id: stable across runs and machines."""
    return _seed_for(request.node.nodeid)


@pytest.fixture(autouse=True)
def _torchconform_seed_everything(request):
    s = _seed_for(request.node.nodeid)
    random.seed(s)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(s)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(s)
    yield


@pytest.fixture
def np_rng(seed):
    """A NumPy Generator seeded from the test id."""
    import numpy as np

    return np.random.default_rng(seed)


@pytest.fixture
def device(request):
    """The device type a device-generic test runs on (parametrized by the plugin: ids `[cpu]`, `[cuda]`)."""
    return request.param


@pytest.fixture
def dtype(request):
    """The dtype a dtype-generic test runs with (from the `dtypes` marker; ids `[float32]`)."""
    return request.param


@pytest.fixture(scope="session")
def tier(pytestconfig) -> str:
    """The selected tier: 'smoke', 'default' or 'full'."""
    return pytestconfig.stash[_STATE].tier


@pytest.fixture(scope="session")
def selected_devices(pytestconfig) -> list[str]:
    return list(pytestconfig.stash[_STATE].devices)
