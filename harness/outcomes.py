"""Folding the phase reports of a test run (setup, call, teardown) into one outcome per test.

Plain Python: :mod:`harness.pytest_plugin` feeds it what pytest reports, and it knows nothing of pytest.
"""
from __future__ import annotations

from harness.record import severity


class OutcomeFold:
    """Folds phase reports into one outcome per test, in the order tests finish.

    Rules (as pytest's own summary counts them): a failing setup or teardown is ``error``; a
    skip in any phase is ``skipped`` unless it is an expected failure (``xfailed``); a call that
    passes while marked xfail is ``xpassed`` (non-strict) or ``failed`` (strict, reported by pytest
    as a failure); otherwise the call's outcome.
    """

    def __init__(self):
        self._tests: dict[str, dict] = {}

    def add_phase(self, nodeid: str, phase: str, outcome: str, duration: float, *, message: str | None = None,
                  wasxfail: bool = False, meta: dict | None = None) -> None:
        t = self._tests.get(nodeid)
        if t is None:
            t = {"nodeid": nodeid, "section": None, "device": None, "dtype": None, "status": "passed",
                 "duration": 0.0, "message": None, "markers": []}
            t.update(meta or {})
            self._tests[nodeid] = t
        t["duration"] = round(t["duration"] + max(float(duration), 0.0), 6)
        status = None
        if outcome == "failed":
            status = "failed" if phase == "call" else "error"
        elif outcome == "skipped":
            status = "xfailed" if wasxfail else "skipped"
        elif outcome == "passed" and phase == "call" and wasxfail:
            status = "xpassed"
        if status is not None and severity(status) >= severity(t["status"]):
            t["status"] = status
            if message:
                t["message"] = message[:4000]

    def set_checks(self, nodeid: str, checks: dict) -> None:
        if nodeid in self._tests:
            self._tests[nodeid]["checks"] = checks

    def tests(self) -> list[dict]:
        return list(self._tests.values())
