"""pytest plugin: ``-p tests.mutants.plant --plant NAME`` applies one planted bug before collection.

Under a plant, a test that the expectation manifest marks as an expected failure cannot count as a
catch: a strict expected failure that passes (XPASS(strict)) would fail the run although the mutant
only changed a behaviour the suite already knows to be wrong. Such tests are made non-strict here;
the runner reports how many passed unexpectedly.
"""
from __future__ import annotations

import pytest


def pytest_addoption(parser):
    parser.getgroup("torchconform").addoption("--plant", default=None, metavar="NAME",
                                              help="plant the named bug from tests/mutants/catalogue.py into torch")


def pytest_configure(config):
    name = config.getoption("--plant")
    if not name:
        return
    from tests.mutants.catalogue import MUTANTS

    MUTANTS[name].apply()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    if not config.getoption("--plant"):
        return
    for item in items:
        mark = item.get_closest_marker("xfail")
        if mark is not None and mark.kwargs.get("strict", True):
            reason = mark.kwargs.get("reason", "")
            item.add_marker(pytest.mark.xfail(reason=f"[not strict under a plant] {reason}", strict=False),
                            append=False)


def pytest_report_header(config):
    name = config.getoption("--plant")
    return f"torchconform: PLANTED BUG {name}" if name else None
