"""The coverage ledger in a pytest run (``--tc-coverage``; ``torchconform run --coverage``).

Registered from :mod:`harness.pytest_plugin` (its ``pytest_plugins``). Without ``--tc-coverage`` this
module only reads the option: no hook object is registered, no torch mode or module hook is installed,
so a run's timings are untouched. With it, :class:`CoverageHooks` is registered and

* wraps each test's call phase (the innermost ``pytest_runtest_call`` hookwrapper, ``trylast``) in a
  :class:`harness.coverage.Recorder` of the kinds ``--tc-coverage-kinds`` selects, reads how many ``harness.checks`` checks the test made from the
  check log the plugin opened for it (:func:`harness.checklog.current`, count before and after) and adds
  the usage to a :class:`harness.coverage.Ledger` under the test's section (``suites/<section>/``).
  Setup and teardown (fixtures) are not recorded; benchmark cases (``torchconform_bench``) are not
  wrapped, so their timings are untouched even with the option;
* ``--tc-coverage-kinds`` (default ``all``) selects the kinds. The ``overloads`` half pushes a
  ``TorchDispatchMode``; on torch 2.13 CPU any Python dispatch mode changes the results of complex
  ``linalg.lstsq``/``linalg.pinv`` and ``linalg.matrix_rank(out=)`` (the findings of
  suites/ops/test_dispatch_transparency.py), so the recorder's dispatch mode steps aside while those run
  (``harness.coverage.recorder.DISPATCH_OPAQUE``; their overloads are not recorded) and recording changes
  no outcome. A kind not recorded is marked ``not_measured`` in the ledger, with the reason;
* under pytest-xdist each worker sends its ``Ledger.as_dict()`` (as a JSON string in
  ``workeroutput``, plain JSON like every other payload the plugin sends) and the controller merges them
  with :func:`harness.coverage.merge`; a worker that went down without its ledger makes the figures
  ``partial`` (its tests are not counted), which the record says;
* at the session's end the dict becomes the run record's top-level ``"coverage"`` (when ``--record``
  writes one) and the terminal summary prints the totals.
"""
from __future__ import annotations

import contextlib
import functools
import json

from harness import checklog, coverage, options

WORKER_KEY = "torchconform_coverage"
PLUGIN_NAME = "torchconform-coverage"


def parse_kinds(text: str) -> tuple:
    """``--tc-coverage-kinds``: a comma list of :data:`harness.coverage.KINDS`, or ``all``."""
    names = [k.strip() for k in str(text).split(",") if k.strip()]
    if names == ["all"]:
        return coverage.KINDS
    bad = [k for k in names if k not in coverage.KINDS]
    if bad or not names:
        raise ValueError(f"--tc-coverage-kinds: {', '.join(bad) or 'nothing'} is not one of "
                         f"{', '.join(coverage.KINDS)} (comma list) or 'all'")
    return tuple(k for k in coverage.KINDS if k in names)


def pytest_configure(config):
    if config.getoption(options.COVERAGE.dest, False):
        try:
            kinds = parse_kinds(config.getoption(options.COVERAGE_KINDS.dest, options.COVERAGE_KINDS.default))
        except ValueError as exc:
            import pytest

            raise pytest.UsageError(str(exc)) from None
        config.pluginmanager.register(hooks_class()(config, kinds), PLUGIN_NAME)


def result(config) -> dict | None:
    """The run's ``"coverage"`` dict once the session has finished (None without ``--tc-coverage``)."""
    hooks = config.pluginmanager.get_plugin(PLUGIN_NAME)
    return hooks.final if hooks is not None else None


@functools.lru_cache(maxsize=1)
def hooks_class():
    """The hook class, made on first use: pytest is imported here, not at module level, because
    tests/test_layers.py lets only its listed pytest adapters import pytest at module level."""
    import pytest

    class CoverageHooks:
        """The hooks of a ``--tc-coverage`` run: one ledger per process, merged on the xdist controller."""

        def __init__(self, config, kinds: tuple = coverage.KINDS):
            self.config = config
            self.kinds = kinds
            self.worker = hasattr(config, "workerinput")
            self.ledger: coverage.Ledger | None = None  # made at the first test (the controller needs none)
            self.from_workers: list[dict] = []
            self.lost: list[str] = []
            self.final: dict | None = None

        @pytest.hookimpl(hookwrapper=True, trylast=True)
        def pytest_runtest_call(self, item):
            if item.get_closest_marker("torchconform_bench") is not None:
                yield
                return
            log = checklog.current()  # the plugin's log of this test (its wrapper is outside this one)
            with (contextlib.nullcontext(log) if log is not None else checklog.collecting()) as active:
                before = active.count
                rec = coverage.Recorder(**{k: k in self.kinds for k in coverage.KINDS})
                with rec:
                    yield
                n_checks = active.count - before
            if self.ledger is None:
                self.ledger = self._new_ledger()
            for kind, why in rec.reasons.items():
                if kind in self.kinds:  # a half this torch cannot record (the others are noted already)
                    self.ledger.note(kind, why)
            self.ledger.add(rec.usage(), checks=n_checks, section=coverage.section_of(str(item.path)))

        @pytest.hookimpl(optionalhook=True)
        def pytest_testnodedown(self, node, error):
            """xdist (controller): a worker finished; keep its ledger."""
            payload = getattr(node, "workeroutput", {}).get(WORKER_KEY)
            if payload is not None:
                self.from_workers.append(json.loads(payload))
            else:
                self.lost.append(str(getattr(getattr(node, "gateway", None), "id", "?")))

        def _new_ledger(self) -> coverage.Ledger:
            return coverage.Ledger(reasons={k: f"not recorded (--tc-coverage-kinds {','.join(self.kinds)})"
                                            for k in coverage.KINDS if k not in self.kinds})

        def _finish(self) -> dict:
            if self.from_workers:
                cov = coverage.merge(self.from_workers + ([self.ledger.as_dict()] if self.ledger else []))
            else:
                cov = (self.ledger or self._new_ledger()).as_dict()
            if self.lost:
                cov["partial"] = (f"{len(self.lost)} xdist worker(s) ({', '.join(sorted(self.lost))}) went down "
                                  "without their ledger: the tests they ran are not counted")
            return cov

        @pytest.hookimpl(tryfirst=True)
        def pytest_sessionfinish(self, session):
            """Before the plugin writes the record (tryfirst): the ledger becomes its ``"coverage"``."""
            if self.worker:  # every worker sends one, also with no test run (else it would count as lost)
                self.config.workeroutput[WORKER_KEY] = json.dumps((self.ledger or self._new_ledger()).as_dict())
                return
            self.final = self._finish()
            from harness import pytest_plugin

            state = self.config.stash.get(pytest_plugin._STATE, None)
            if state is not None and state.rec is not None:
                state.rec["coverage"] = self.final

        def pytest_terminal_summary(self, terminalreporter):
            if self.final is None:
                return
            terminalreporter.section("torchconform coverage")
            for line in coverage.summary_lines(self.final, show_uncovered=()):
                terminalreporter.write_line(line)
            if "partial" in self.final:
                terminalreporter.write_line(f"  PARTIAL: {self.final['partial']}")

    return CoverageHooks
