"""The coverage ledger: which public torch callables, aten overloads and ``torch.nn`` module classes a
run exercised, per section, against the universe the running torch offers.

Plain Python, no pytest import. Three parts:

* :class:`Recorder`: a context manager that, while active, records
  - the public callables called (a :class:`torch.overrides.TorchFunctionMode`; ``func`` objects are
    named through the :func:`universe` map, i.e. :func:`torch.overrides.resolve_name`),
  - the aten overloads that ran (a ``torch.utils._python_dispatch.TorchDispatchMode``; ``str(func)``,
    e.g. ``"aten.add.Tensor"``),
  - the ``torch.nn`` module classes whose forward ran (a global forward pre-hook,
    :func:`torch.nn.modules.module.register_module_forward_pre_hook`).
  Every hook only records and passes the call through unchanged, so results do not change. Nothing is
  installed until a recorder is entered, so a run without one is untouched. Where the running torch
  lacks an API, that half is off and :attr:`Recorder.reasons` says why.
* :func:`universe`: what the running torch offers (see its docstring for the rules).
* :class:`Ledger`: folds per-test usage into per-section and total figures, a JSON-able dict for the run
  record (key ``"coverage"``), and :func:`diff` compares two such dicts ("ops that exist in the candidate
  torch but no test touches").

The oracle rule: a callable/overload/class counts as *exercised* only when it was used inside a test
that recorded at least one :mod:`harness.checks` assertion (``Ledger.add(..., checks=n)`` with ``n >= 1``).
Usage inside tests with no check is kept apart (``touched_without_check``): it ran, but nothing compared
it with an oracle. A test's outcome does not matter (a failing check is still an oracle applied).

What the recorder does not see (documented limits): calls made inside another callable's
implementation (the function mode is suspended while the outer call runs, so ``F.cross_entropy`` counts,
its internal ``log_softmax`` does not); ops inside ``torch.compile``d graphs (the dispatch half sets
``ignore_compile_internals`` so compile keeps compiling rather than falling back to eager: the compiled
kernels are not aten overloads run eagerly); work in other processes (DataLoader workers, spawned ranks);
TorchScript modules' forward (no Python hooks); a module's ``forward`` called directly instead of
``module(x)``.
"""
from __future__ import annotations

from harness.coverage.ledger import FORMAT_VERSION, RULE, Ledger, diff, merge, section_of, summary_lines
from harness.coverage.recorder import Recorder, Usage
from harness.coverage.universe import KINDS, Universe, callable_name, normalize_op_name, universe

__all__ = ["FORMAT_VERSION", "KINDS", "RULE", "Ledger", "Recorder", "Universe", "Usage", "callable_name", "diff",
           "merge", "normalize_op_name", "section_of", "summary_lines", "universe"]
