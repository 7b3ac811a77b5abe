"""The torchconform pytest plugin: a thin adapter between pytest and the harness core.

Registered through the ``pytest11`` entry point (and by the repository's root ``conftest.py``
when the package is not installed). It adds the options ``--device``, ``--tier`` and
``--record``; the fixtures ``device``, ``dtype``, ``tier``, ``seed`` and ``np_rng``; the markers
``slow``, ``smoke``, ``requires_cuda``, ``min_devices(n)``, ``dtypes(...)`` and ``devices(...)``;
seeds torch, NumPy and ``random`` per test from its node id; opens a check log per test; and
hands every outcome to :class:`harness.record.OutcomeFolder` to write the run record.
"""
from __future__ import annotations

import hashlib
import random
import sys
from pathlib import Path

import pytest

from harness import checks, devices, options, record, sharding
from harness.errors import DeviceError, HarnessError

_STATE = pytest.StashKey["_State"]()
_CHECKS = pytest.StashKey[dict]()

MARKERS = (
    "slow: heavy test, runs only at --tier full (skipped with a reason otherwise)",
    "smoke: part of the quick --tier smoke selection",
    "requires_cuda: needs a CUDA device; skipped with a reason where none is available or selected",
    "min_devices(n): needs at least n accelerator devices of one type; skipped with a reason otherwise",
    "dtypes(*dtypes): the dtypes a test using the `dtype` fixture runs with (default float32, float64)",
    "devices(*names): restrict a test using the `device` fixture to these device types",
    "torchconform_bench: a benchmark case; collected only with --benchmark-only or --benchmark-enable",
)

HYPOTHESIS_EXAMPLES = {"smoke": 10, "default": 25, "full": 300}


class _State:
    def __init__(self, config):
        self.tier = config.getoption(options.TIER.dest)
        spec = config.getoption(options.DEVICE.dest)
        self._spec = spec
        self._devices: list[str] | None = None
        self.record_path = config.getoption(options.RECORD.dest)
        shard = config.getoption(options.SHARD.dest)
        self.shard = sharding.parse_shard(shard) if shard else None
        self.policy_path = config.getoption(options.POLICY.dest)
        self.folder = record.OutcomeFolder()
        self.rec = None

    @property
    def devices(self) -> list[str]:
        if self._devices is None:
            self._devices = devices.resolve(self._spec)
        return self._devices


def pytest_addoption(parser):
    group = parser.getgroup("torchconform", "torchconform conformance suite")
    options.add_to_pytest(group)


def pytest_configure(config):
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    try:
        devices.parse(config.getoption(options.DEVICE.dest))
        state = _State(config)
        if state._spec.strip().lower() != "all":
            state.devices  # an explicitly named but missing device is a usage error, now
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_STATE] = state
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


def pytest_report_header(config):
    state = config.stash.get(_STATE, None)
    if state is None:
        return None
    try:
        import torch

        tv = torch.__version__
    except Exception as exc:  # pragma: no cover - reported, not hidden
        tv = f"unavailable ({exc})"
    try:
        devs = ",".join(state.devices)
    except DeviceError as exc:
        devs = f"error: {exc}"
    return f"torchconform: torch {tv}, devices {devs}, tier {state.tier}"


def _benchmarks_enabled(config) -> bool:
    return bool(getattr(config.option, "benchmark_only", False) or getattr(config.option, "benchmark_enable", False))


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


def pytest_collection_modifyitems(config, items):
    state = config.stash[_STATE]
    keep, drop = [], []
    bench_on = _benchmarks_enabled(config)
    for item in items:
        is_bench = item.get_closest_marker("torchconform_bench") is not None
        if is_bench and not bench_on:
            drop.append(item)
            continue
        if state.tier == "smoke" and not is_bench and item.get_closest_marker("smoke") is None and _in_suites(item):
            drop.append(item)
            continue
        if item.get_closest_marker("slow") is not None and state.tier != "full":
            item.add_marker(pytest.mark.skip(reason=f"slow test: runs at --tier full (this run: --tier {state.tier})"))
        keep.append(item)
    _apply_manifest(state, keep)
    if state.shard is not None:
        i, n = state.shard
        mine = set(sharding.select_shard([it.nodeid for it in keep], i, n, by="module"))
        drop += [it for it in keep if it.nodeid not in mine]
        keep = [it for it in keep if it.nodeid in mine]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _apply_manifest(state, items) -> None:
    """Mark the tests that the expectation manifest lists for this build (backend x torch version x
    device x dtype) as expected failures, with the manifest's reason. A strict entry whose test
    passes is reported as xpassed (IMPROVED in a comparison) and fails the run."""
    suite_items = [it for it in items if _in_suites(it)]
    if not suite_items:
        return
    from harness import manifest as _manifest, policy as _policy

    try:
        pol = _policy.load(state.policy_path)
    except HarnessError as exc:
        raise pytest.UsageError(f"--policy: {exc}") from None
    import torch

    backend = _manifest.backend_of({"torch": {"cuda": torch.version.cuda, "hip": getattr(torch.version, "hip", None)}})
    active = [e for e in pol.expectations if e.applies_to(torch.__version__, backend)]
    for item in suite_items if active else ():
        meta = _meta(item)
        test = {"nodeid": item.nodeid, "device": meta["device"], "dtype": meta["dtype"]}
        for e in active:
            if e.matches(test):
                where = f" ({e.issue})" if e.issue else ""
                item.add_marker(pytest.mark.xfail(reason=f"expected on {backend} torch {torch.__version__}: "
                                                         f"{e.reason}{where}", strict=e.strict))
                break


def _in_suites(item) -> bool:
    return "suites" in Path(str(item.path)).parts


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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    with checks.collecting() as log:
        yield
    item.stash[_CHECKS] = log.as_dict()


def _meta(item) -> dict:
    params = getattr(getattr(item, "callspec", None), "params", {}) or {}
    parts = Path(str(item.path)).parts
    section = parts[parts.index("suites") + 1] if "suites" in parts and parts.index("suites") + 1 < len(parts) - 1 else None
    dt = params.get("dtype")
    dev = params.get("device")
    return {"section": section, "device": str(dev) if dev is not None else None,
            "dtype": str(dt).rsplit(".", 1)[-1] if dt is not None else None,
            "markers": sorted({m.name for m in item.iter_markers()} & {"slow", "smoke", "requires_cuda", "min_devices", "torchconform_bench"})}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    rep._torchconform_meta = _meta(item)
    if call.when == "call" and _CHECKS in item.stash:
        rep._torchconform_checks = item.stash[_CHECKS]


def pytest_runtest_logreport(report):
    state = _state_of(report)
    if state is None:
        return
    message = None
    if report.failed:
        message = getattr(report, "longreprtext", None) or str(report.longrepr)
        crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", None)
        if crash:
            message = crash + ("\n\n" + message if message and crash not in message[:200] else "")
    elif report.skipped and isinstance(report.longrepr, tuple):
        message = str(report.longrepr[2])
    wasxfail = hasattr(report, "wasxfail")
    outcome = report.outcome
    if report.failed and report.when == "call" and str(report.longrepr).startswith("[XPASS(strict)]"):
        # pytest fails a strict xfail that passed; the record calls it what it is: an unexpected pass
        outcome, wasxfail = "passed", True
        message = f"unexpectedly passed: {str(report.longrepr)[len('[XPASS(strict)]'):].strip()}"
    if wasxfail and report.skipped:
        message = f"expected failure: {report.wasxfail}"
    state.folder.add_phase(report.nodeid, report.when, outcome, report.duration, message=message,
                           wasxfail=wasxfail, meta=getattr(report, "_torchconform_meta", None))
    checks_dict = getattr(report, "_torchconform_checks", None)
    if checks_dict is not None:
        state.folder.set_checks(report.nodeid, checks_dict)


_SESSION_CONFIG = []


def _state_of(report):
    return _SESSION_CONFIG[-1].stash.get(_STATE, None) if _SESSION_CONFIG else None


def pytest_sessionstart(session):
    _SESSION_CONFIG.append(session.config)
    state = session.config.stash[_STATE]
    if state.record_path:
        from harness import fingerprint

        try:
            devs = state.devices
        except DeviceError:
            devs = []
        state.rec = record.new_record(fingerprint=fingerprint.collect(), tier=state.tier, devices=devs,
                                      argv=[str(a) for a in session.config.invocation_params.args],
                                      shard=f"{state.shard[0]}/{state.shard[1]}" if state.shard else None)


def pytest_sessionfinish(session, exitstatus):
    state = session.config.stash.get(_STATE, None)
    if _SESSION_CONFIG and _SESSION_CONFIG[-1] is session.config:
        _SESSION_CONFIG.pop()
    if state is None or state.rec is None:
        return
    rec = state.rec
    rec["tests"] = state.folder.tests()
    rec["benchmarks"] = list(getattr(session.config, "_torchconform_benchmarks", []))
    rec["finished"] = record.utcnow()
    rec["exit_status"] = int(exitstatus)
    # 0 all passed, 1 some failed, 5 none collected: the run finished; 2 interrupted, 3 internal error, 4 usage.
    rec["complete"] = int(exitstatus) in (0, 1, 5)
    path = record.save(rec, state.record_path)
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.write_line(f"torchconform: run record written to {path}")
