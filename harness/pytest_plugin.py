"""The torchconform pytest plugin: a thin adapter between pytest and the harness core.

Registered through the ``pytest11`` entry point (and by the repository's root ``conftest.py``
when the package is not installed). It adds the options of :mod:`harness.options` (``--device``,
``--tier``, ``--shard``, ``--policy``, ``--record``, ``--tc-coverage``); the markers ``slow``, ``smoke``, ``requires_cuda``,
``min_devices(n)``, ``dtypes(...)`` and ``devices(...)`` (the fixtures and parametrization are in
:mod:`harness.pytest_fixtures`); selects by tier and shard; opens a check log per test; applies the
expectation manifest (once, at collection); and hands every outcome to
:class:`harness.outcomes.OutcomeFold` to write the run record.

Under pytest-xdist the workers collect, run and report; the controller alone writes the record, from
the reports it receives. What a report carries for the record (``_torchconform_*`` attributes) is plain
JSON types (:func:`harness.record.plain`), which xdist can send between processes. With ``--record``, a
SIGTERM ends the session like Ctrl-C, so the partial record (``complete: false``) is written.
"""
from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from harness import checks, devices, options, outcomes, record, sharding
from harness.errors import DeviceError, HarnessError

_STATE = pytest.StashKey["_State"]()
_CHECKS = pytest.StashKey[dict]()
_EXPECTATION = pytest.StashKey[dict]()
BENCH_ENTRY = pytest.StashKey[dict]()  # set by harness.bench.pytest_adapter: a benchmark's record entry

MARKERS = (
    "slow: heavy test, runs only at --tier full (skipped with a reason otherwise)",
    "smoke: part of the quick --tier smoke selection",
    "requires_cuda: needs a CUDA device; skipped with a reason where none is available or selected",
    "min_devices(n): needs at least n accelerator devices of one type; skipped with a reason otherwise",
    "dtypes(*dtypes): the dtypes a test using the `dtype` fixture runs with (default float32, float64)",
    "devices(*names): restrict a test using the `device` fixture to these device types",
    "torchconform_bench: a benchmark case; collected only with --benchmark-only or --benchmark-enable",
)

pytest_plugins = ("harness.pytest_fixtures", "harness.pytest_coverage")  # the latter: --tc-coverage


class _State:
    def __init__(self, config):
        self.tier = config.getoption(options.TIER.dest)
        self._spec = config.getoption(options.DEVICE.dest)
        self._devices: list[str] | None = None
        self.record_path = config.getoption(options.RECORD.dest)
        shard = config.getoption(options.SHARD.dest)
        self.shard = sharding.parse_shard(shard) if shard else None
        self.policy_path = config.getoption(options.POLICY.dest)
        self.worker = hasattr(config, "workerinput")  # an xdist worker: the controller writes the record
        self.fold = outcomes.OutcomeFold()
        self.benchmarks: list[dict] = []
        self.rec = None
        self._manifest = None
        self._sigterm = None

    @property
    def devices(self) -> list[str]:
        if self._devices is None:
            self._devices = devices.resolve(self._spec)
        return self._devices

    def manifest(self):
        """(header for the record, active entries): the policy's expectations for this torch build."""
        if self._manifest is None:
            import torch

            from harness import manifest, policy

            pol = policy.load(self.policy_path)
            backend = manifest.backend_of({"torch": {"cuda": torch.version.cuda,
                                                     "hip": getattr(torch.version, "hip", None)}})
            active = manifest.active_entries(pol.expectations, torch.__version__, backend)
            header = manifest.recorded(pol.source, torch.__version__, backend, active,
                                       len(pol.expectations) - len(active))
            self._manifest = (header, active)
        return self._manifest


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
    if state.record_path and not state.worker and threading.current_thread() is threading.main_thread():
        state._sigterm = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)


def pytest_unconfigure(config):
    state = config.stash.get(_STATE, None)
    if state is not None and state._sigterm is not None:
        signal.signal(signal.SIGTERM, state._sigterm)


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


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
    """Mark the suite tests that the expectation manifest lists for this build (backend x torch version
    x device x dtype) as expected failures, with the manifest's reason, and remember which entry applied
    (the run record says so, and a comparison reads it instead of applying a policy again). A strict
    entry whose test passes is reported as xpassed (IMPROVED in a comparison) and fails the run."""
    suite_items = [it for it in items if _in_suites(it)]
    if not suite_items:
        return
    from harness import manifest

    try:
        header, active = state.manifest()
    except HarnessError as exc:
        raise pytest.UsageError(f"--policy: {exc}") from None
    for item in suite_items if active else ():
        meta = _meta(item)
        i = manifest.first_match(active, {"nodeid": item.nodeid, "device": meta["device"], "dtype": meta["dtype"]})
        if i is not None:
            e = active[i]
            where = f" ({e.issue})" if e.issue else ""
            item.add_marker(pytest.mark.xfail(reason=f"expected on {header['backend']} torch {header['torch']}: "
                                                     f"{e.reason}{where}", strict=e.strict))
            item.stash[_EXPECTATION] = manifest.expectation_field(i, e)


def _in_suites(item) -> bool:
    return "suites" in Path(str(item.path)).parts


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    with checks.collecting() as log:
        yield
    item.stash[_CHECKS] = log.as_dict()


def _meta(item) -> dict:
    from harness.dtypes import dtype_id

    params = getattr(getattr(item, "callspec", None), "params", {}) or {}
    parts = Path(str(item.path)).parts
    section = parts[parts.index("suites") + 1] if "suites" in parts and parts.index("suites") + 1 < len(parts) - 1 else None
    dt = params.get("dtype")
    dev = params.get("device")
    meta = {"section": section, "device": str(dev) if dev is not None else None,
            "dtype": dtype_id(dt) if dt is not None else None,
            "markers": sorted({m.name for m in item.iter_markers()} & {"slow", "smoke", "requires_cuda", "min_devices", "torchconform_bench"})}
    if _EXPECTATION in item.stash:
        meta["expectation"] = item.stash[_EXPECTATION]
    return meta


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    # the record's payload, as plain JSON types: xdist serialises reports between processes
    rep._torchconform_meta = record.plain(_meta(item))
    if call.when == "call" and _CHECKS in item.stash:
        rep._torchconform_checks = record.plain(item.stash[_CHECKS])
    if call.when == "call" and BENCH_ENTRY in item.stash:
        rep._torchconform_benchmark = record.plain(item.stash[BENCH_ENTRY])


def pytest_runtest_logreport(report):
    state = _state_of(report)
    if state is None or state.worker:
        return
    message = None
    if report.failed:
        message = getattr(report, "longreprtext", None) or str(report.longrepr)
        if hasattr(report, "node"):  # from an xdist worker: drop its "[gw0] linux -- Python ..." line
            message = message.partition("\n")[2].strip()
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
    state.fold.add_phase(report.nodeid, report.when, outcome, report.duration, message=message,
                         wasxfail=wasxfail, meta=getattr(report, "_torchconform_meta", None))
    checks_dict = getattr(report, "_torchconform_checks", None)
    if checks_dict is not None:
        state.fold.set_checks(report.nodeid, checks_dict)
    bench = getattr(report, "_torchconform_benchmark", None)
    if bench is not None:
        state.benchmarks.append(bench)


_SESSION_CONFIG = []


def _state_of(report):
    return _SESSION_CONFIG[-1].stash.get(_STATE, None) if _SESSION_CONFIG else None


def pytest_sessionstart(session):
    _SESSION_CONFIG.append(session.config)
    state = session.config.stash[_STATE]
    if state.record_path and not state.worker:
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
    rec["tests"] = state.fold.tests()
    rec["benchmarks"] = list(state.benchmarks)
    if any(t.get("section") for t in rec["tests"]):  # suite tests ran: say which manifest they ran under
        try:
            rec["manifest"] = state.manifest()[0]
        except HarnessError:  # already reported at collection (a usage error)
            pass
    rec["finished"] = record.utcnow()
    rec["exit_status"] = int(exitstatus)
    # 0 all passed, 1 some failed, 5 none collected: the run finished; 2 interrupted, 3 internal error, 4 usage.
    rec["complete"] = int(exitstatus) in (0, 1, 5)
    path = record.save(rec, state.record_path)
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.write_line(f"torchconform: run record written to {path}")
