"""pytest plugin: ``-p tests.mutants.plant --plant NAME`` applies one planted bug before collection."""
from __future__ import annotations


def pytest_addoption(parser):
    parser.getgroup("torchconform").addoption("--plant", default=None, metavar="NAME",
                                              help="plant the named bug from tests/mutants/catalogue.py into torch")


def pytest_configure(config):
    name = config.getoption("--plant")
    if not name:
        return
    from tests.mutants.catalogue import MUTANTS

    MUTANTS[name].apply()


def pytest_report_header(config):
    name = config.getoption("--plant")
    return f"torchconform: PLANTED BUG {name}" if name else None
