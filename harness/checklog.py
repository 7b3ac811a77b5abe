"""The per-test log of checks: how many checks a test made, how many failed, its worst ratios.

The pytest plugin opens one :class:`CheckLog` per test (:func:`collecting`); every check of
:mod:`harness.checks` adds its entry to the log of the test that is running (:func:`record`);
outside a test nothing is recorded. :func:`current` is the public accessor other harness parts
(the coverage recorder's hook) use to read how many checks the running test has made so far.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import math

_current: contextvars.ContextVar["CheckLog | None"] = contextvars.ContextVar("torchconform_checks", default=None)


class CheckLog:
    """The checks one test made: a count, the worst ratio, and the worst ``keep`` entries."""

    def __init__(self, keep: int = 10):
        self.keep = keep
        self.count = 0
        self.failed = 0
        self.entries: list[dict] = []

    def add(self, entry: dict) -> None:
        self.count += 1
        if entry["ratio"] > 1:
            self.failed += 1
        self.entries.append(entry)
        if len(self.entries) > 4 * self.keep:
            self._trim()

    def _trim(self) -> None:
        self.entries.sort(key=lambda e: -_finite(e["ratio"]))
        del self.entries[self.keep:]

    @property
    def worst_ratio(self) -> float | None:
        return max((e["ratio"] for e in self.entries), default=None)

    def as_dict(self) -> dict:
        self._trim()
        worst = self.worst_ratio
        return {"count": self.count, "failed": self.failed,
                "worst_ratio": None if worst is None else _json_float(worst),
                "entries": [dict(e, ratio=_json_float(e["ratio"])) for e in self.entries]}


def _finite(x: float) -> float:
    return 1e300 if (x != x or x == math.inf) else x


def _json_float(x: float) -> float | str:
    if x != x:
        return "nan"
    if x == math.inf:
        return "inf"
    return float(x)


@contextlib.contextmanager
def collecting(keep: int = 10):
    """Open a :class:`CheckLog` for the checks made inside the block."""
    log = CheckLog(keep)
    token = _current.set(log)
    try:
        yield log
    finally:
        _current.reset(token)


def record(entry: dict) -> None:
    log = _current.get()
    if log is not None:
        log.add(entry)



# Pauses registered by observers of the running test (the coverage recorder): factories of context
# managers during which the observer does not record. The checks' own conversions of results and
# references (to_numpy, dtype/device reads) are not the test's use of torch.
_pauses: list = []


def add_pause(factory) -> "callable":
    """Register ``factory`` (a no-argument callable returning a context manager); returns its remover."""
    _pauses.append(factory)
    return lambda: _pauses.remove(factory) if factory in _pauses else None


def unobserved(fn):
    """Decorator: run ``fn`` with every registered observer paused (a plain call when none is)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not _pauses:
            return fn(*args, **kwargs)
        with contextlib.ExitStack() as stack:
            for factory in list(_pauses):
                stack.enter_context(factory())
            return fn(*args, **kwargs)
    return wrapper


def current() -> "CheckLog | None":
    """The log of the test that is running, or None outside a test."""
    return _current.get()
