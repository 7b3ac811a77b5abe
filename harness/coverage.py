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

import functools
import inspect
import re
from dataclasses import dataclass, field

FORMAT_VERSION = 1

RULE = ("exercised = called while a test that recorded at least one harness.checks assertion ran "
        "(any outcome); callables: the keys of torch.overrides.get_testing_overrides() called directly "
        "by the test (not from inside another torch callable); overloads: aten overloads that reached the "
        "Python dispatcher eagerly; nn_modules: public torch.nn classes with a forward of their own whose "
        "forward ran through module(...)")

KINDS = ("callables", "overloads", "nn_modules")


# ------------------------------------------------------------------------------------------- universe
@dataclass(frozen=True)
class Universe:
    """What the running torch offers.

    ``callables``: name -> func object, the keys of :func:`torch.overrides.get_testing_overrides`, named by
    :func:`torch.overrides.resolve_name` (else ``__module__ + '.' + __qualname__``, with torch's
    ``_VariableFunctionsClass`` spelled ``torch``).
    ``overloads``: every registered overload in the ``aten`` namespace as ``str(OpOverload)`` spells it
    (``aten.add.Tensor``, ``aten.relu.default``), from ``torch._C._dispatch_get_all_op_names()`` where
    present, else ``torch._C._jit_get_all_schemas()`` (both list what the dispatcher has registered in this
    process; ``overloads_source`` says which was used).
    ``nn_modules``: public name (``torch.nn.Linear``) -> class, for every name in ``dir(torch.nn)`` not
    starting with ``_`` that is a subclass of ``torch.nn.Module`` and has a ``forward`` of its own; the
    public classes without one (``Module``, ``Container``, ``ModuleList``, ``ModuleDict``,
    ``ParameterList``, ``ParameterDict``, ``RNNBase``, ``RNNCellBase``: base classes and containers whose
    forward raises) are in ``nn_excluded`` with the reason. Private abstract bases (``_ConvNd``, ``_Loss``)
    are not public names, so they never enter. ``torch.nn.quantized``/``intrinsic``/``qat`` are deprecated
    aliases of ``torch.ao.nn`` packages, not names in ``torch.nn``, so their classes are not counted.
    """

    torch_version: str
    callables: dict
    overloads: frozenset
    overloads_source: str
    nn_modules: dict
    nn_excluded: dict
    _names_by_func: dict = field(default_factory=dict, repr=False, compare=False)
    _names_by_class: dict = field(default_factory=dict, repr=False, compare=False)

    def name_of(self, func) -> str:
        """The name of a callable seen by the function mode (a universe name when it is one)."""
        try:
            name = self._names_by_func.get(func)
        except TypeError:  # an unhashable callable
            name = None
        return name if name is not None else callable_name(func)

    def nn_name_of(self, cls) -> str | None:
        """``torch.nn.X`` for a universe class, None for any other class (user subclasses included)."""
        return self._names_by_class.get(cls)

    def sizes(self) -> dict:
        return {"callables": len(self.callables), "overloads": len(self.overloads), "nn_modules": len(self.nn_modules)}

    def names(self, kind: str) -> frozenset:
        if kind == "overloads":
            return self.overloads
        return frozenset(getattr(self, kind))


_VF = re.compile(r"^_VariableFunctionsClass\.")


def callable_name(func) -> str:
    """A stable dotted name for a torch callable: :func:`torch.overrides.resolve_name` where it knows it,
    else ``__module__ + '.' + __qualname__`` (``torch._VariableFunctionsClass.x`` spelled ``torch.x``), else
    ``str(func)`` (higher-order operators, partials)."""
    import torch.overrides

    try:
        name = torch.overrides.resolve_name(func)
    except Exception:  # noqa: BLE001 - resolve_name reads attributes; a foreign object is just unnamed
        name = None
    if name:
        return name
    mod = getattr(func, "__module__", None)
    qual = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if mod and qual:
        qual = _VF.sub("", qual)
        return f"{mod}.{qual}"
    return str(func)


def _aten_overloads() -> tuple[frozenset, str]:
    import torch

    if hasattr(torch._C, "_dispatch_get_all_op_names"):
        raw = torch._C._dispatch_get_all_op_names()
        return frozenset(normalize_op_name(n) for n in raw if n.startswith("aten::")), "torch._C._dispatch_get_all_op_names"
    if hasattr(torch._C, "_jit_get_all_schemas"):
        out = set()
        for s in torch._C._jit_get_all_schemas():
            if s.name.startswith("aten::"):
                out.add(normalize_op_name(s.name + (("." + s.overload_name) if s.overload_name else "")))
        return frozenset(out), "torch._C._jit_get_all_schemas"
    return frozenset(), "unavailable: this torch has neither torch._C._dispatch_get_all_op_names nor _jit_get_all_schemas"


def normalize_op_name(name: str) -> str:
    """``aten::add.Tensor`` -> ``aten.add.Tensor``; ``aten::relu`` -> ``aten.relu.default`` (the spelling of
    ``str(torch.ops.aten.relu.default)``). Already normalized names pass unchanged."""
    if "::" not in name:
        return name
    ns, rest = name.split("::", 1)
    if "." not in rest:
        rest += ".default"
    return f"{ns}.{rest}"


def _nn_classes() -> tuple[dict, dict]:
    import torch.nn as nn

    seen: dict = {}
    for name in sorted(dir(nn)):
        if name.startswith("_"):
            continue
        obj = getattr(nn, name, None)
        if inspect.isclass(obj) and issubclass(obj, nn.Module) and obj not in seen:
            seen[obj] = f"torch.nn.{name}"
    base_forward = nn.Module.forward
    modules, excluded = {}, {}
    for cls, name in seen.items():
        if getattr(cls, "forward", base_forward) is base_forward:
            excluded[name] = "no forward of its own (a base class or container: its forward raises NotImplementedError)"
        else:
            modules[name] = cls
    return modules, excluded


@functools.lru_cache(maxsize=1)
def universe() -> Universe:
    """The universe of the running torch (computed once per process, a few milliseconds)."""
    import torch
    import torch.overrides

    callables: dict = {}
    by_func: dict = {}
    for func in torch.overrides.get_testing_overrides():
        name = callable_name(func)
        callables.setdefault(name, func)
        by_func[func] = name
    overloads, source = _aten_overloads()
    modules, excluded = _nn_classes()
    return Universe(torch_version=str(torch.__version__), callables=callables, overloads=overloads,
                    overloads_source=source, nn_modules=modules, nn_excluded=excluded,
                    _names_by_func=by_func, _names_by_class={c: n for n, c in modules.items()})


# ------------------------------------------------------------------------------------------- recorder
@dataclass(frozen=True)
class Usage:
    """What one recorded block used, by name. ``callables`` may hold names outside the universe (factory
    functions like ``torch.empty`` that the function mode also sees); the ledger keeps those apart."""

    callables: frozenset = frozenset()
    overloads: frozenset = frozenset()
    nn_modules: frozenset = frozenset()

    def __or__(self, other: "Usage") -> "Usage":
        return Usage(self.callables | other.callables, self.overloads | other.overloads, self.nn_modules | other.nn_modules)


def _function_mode_class():
    from torch.overrides import TorchFunctionMode

    class _FunctionRecorder(TorchFunctionMode):
        """Records each func object and calls it unchanged (the mode is suspended during the call)."""

        def __init__(self, sink: set, unhashable: list):
            super().__init__()
            self._sink = sink
            self._unhashable = unhashable

        def __torch_function__(self, func, types, args=(), kwargs=None):
            try:
                self._sink.add(func)
            except TypeError:
                self._unhashable.append(callable_name(func))
            return func(*args, **(kwargs or {}))

    return _FunctionRecorder


def _dispatch_mode_class():
    """The dispatch recorder class, or a reason string when this torch has no usable TorchDispatchMode."""
    try:
        from torch.utils import _python_dispatch
    except ImportError as exc:  # a version fact: reported as the reason, the function half still runs
        return f"torch.utils._python_dispatch is not importable ({exc})"
    base = getattr(_python_dispatch, "TorchDispatchMode", None)
    if base is None:
        return "torch.utils._python_dispatch.TorchDispatchMode is missing in this torch"

    class _DispatchRecorder(base):
        """Records each OpOverload (and higher-order operator) and runs it unchanged."""

        # Higher-order operators (torch.cond, ...) reach __torch_dispatch__ instead of raising
        # "no rule registered for HigherOrderOperator" (the attribute is ignored where it does not exist).
        supports_higher_order_operators = True

        def __init__(self, sink: set):
            super().__init__()
            self._sink = sink

        @classmethod
        def ignore_compile_internals(cls) -> bool:
            # torch.compile keeps compiling under the recorder (instead of skipping to eager), and the mode
            # is off while it compiles; absent on older torch, where compile falls back to eager.
            return True

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self._sink.add(func)
            return func(*args, **(kwargs or {}))

    return _DispatchRecorder


class Recorder:
    """Records what the block uses. Re-entrant use of one instance is not supported; make one per block
    (they are cheap). ``reasons`` maps a half that is off to why (``{"overloads": "..."}``).

    >>> with Recorder() as rec:
    ...     torch.add(x, 1)
    >>> rec.usage().callables  # frozenset({'torch.add'})
    """

    def __init__(self, *, callables: bool = True, overloads: bool = True, nn_modules: bool = True):
        self._want = {"callables": callables, "overloads": overloads, "nn_modules": nn_modules}
        self._funcs: set = set()
        self._unhashable: list = []
        self._ops: set = set()
        self._classes: set = set()
        self._stack: list = []
        self.reasons: dict[str, str] = {k: "not requested" for k, on in self._want.items() if not on}
        self._active = False

    def __enter__(self) -> "Recorder":
        if self._active:
            raise RuntimeError("this Recorder is already active; use a new one per block")
        self._active = True
        try:
            if self._want["nn_modules"]:
                from torch.nn.modules import module as _module

                classes = self._classes

                def _pre_hook(mod, args):
                    classes.add(type(mod))

                self._stack.append(_module.register_module_forward_pre_hook(_pre_hook))
            if self._want["callables"]:
                mode = _function_mode_class()(self._funcs, self._unhashable)
                mode.__enter__()
                self._stack.append(mode)
            if self._want["overloads"]:
                cls = _dispatch_mode_class()
                if isinstance(cls, str):
                    self.reasons["overloads"] = cls
                else:
                    mode = cls(self._ops)
                    mode.__enter__()
                    self._stack.append(mode)
        except BaseException:
            self._unwind(None, None, None)
            raise
        return self

    def _unwind(self, et, ev, tb) -> None:
        while self._stack:
            item = self._stack.pop()
            if hasattr(item, "__exit__"):
                item.__exit__(et, ev, tb)
            else:
                item.remove()
        self._active = False

    def __exit__(self, et, ev, tb) -> bool:
        self._unwind(et, ev, tb)
        return False

    def usage(self, uni: Universe | None = None) -> Usage:
        """The names of what was used so far."""
        uni = uni or universe()
        funcs = frozenset({uni.name_of(f) for f in self._funcs} | set(self._unhashable))
        ops = frozenset(str(op) for op in self._ops)
        classes = frozenset(n for n in (uni.nn_name_of(c) for c in self._classes) if n is not None)
        return Usage(funcs, ops, classes)


# ------------------------------------------------------------------------------------------- ledger
def section_of(path: str) -> str | None:
    """``suites/<section>/...`` (a node id or file path) -> ``<section>``; None outside ``suites/``."""
    parts = re.split(r"[/\\]", path.split("::", 1)[0])
    for i, p in enumerate(parts[:-2]):
        if p == "suites":
            return parts[i + 1]
    return None


def _pct(n: int, total: int) -> float:
    return round(100.0 * n / total, 2) if total else 0.0


class Ledger:
    """Per-test usage folded into per-section and total coverage against a :class:`Universe`."""

    def __init__(self, uni: Universe | None = None, *, reasons: dict | None = None):
        self.universe = uni or universe()
        self.reasons: dict[str, str] = dict(reasons or {})
        self._checked: dict[str, dict[str, set]] = {}
        self._touched: dict[str, dict[str, set]] = {}
        self._tests: dict[str, list[int]] = {}

    def add(self, usage: Usage, *, checks: int, section: str | None = None) -> None:
        """Add one test's usage. ``checks``: how many harness.checks assertions the test recorded (the usage
        counts as exercised only when >= 1); ``section``: ``suites/<section>`` (None: ``"(other)"``)."""
        sec = section or "(other)"
        counts = self._tests.setdefault(sec, [0, 0])
        counts[0] += 1
        target = self._touched
        if checks >= 1:
            counts[1] += 1
            target = self._checked
        bucket = target.setdefault(sec, {k: set() for k in KINDS})
        for k in KINDS:
            bucket[k] |= getattr(usage, k)

    def note(self, kind: str, reason: str) -> None:
        """Record why a kind was not measured (e.g. the dispatch half was unavailable)."""
        self.reasons[kind] = reason

    def _union(self, which: dict, kind: str) -> set:
        out: set = set()
        for b in which.values():
            out |= b[kind]
        return out

    def as_dict(self, *, section_names: bool = True) -> dict:
        """The ``"coverage"`` entry of a run record (JSON-able; see the module docstring for the rule)."""
        uni = self.universe
        kinds = {}
        for k in KINDS:
            names = uni.names(k)
            checked = self._union(self._checked, k)
            touched = self._union(self._touched, k) | checked
            covered = sorted(checked & names)
            entry = {"total": len(names), "covered": len(covered), "percent": _pct(len(covered), len(names)),
                     "covered_names": covered, "uncovered": sorted(names - checked),
                     "touched_without_check": sorted((touched - checked) & names),
                     "outside_universe": sorted(touched - names)}
            if k in self.reasons:
                entry["not_measured"] = self.reasons[k]
            kinds[k] = entry
        kinds["overloads"]["source"] = uni.overloads_source
        kinds["nn_modules"]["excluded"] = dict(sorted(uni.nn_excluded.items()))
        sections = {}
        for sec in sorted(self._tests):
            n_tests, n_checked = self._tests[sec]
            s = {"tests": n_tests, "tests_with_checks": n_checked}
            for k in KINDS:
                names = uni.names(k)
                got = sorted(self._checked.get(sec, {}).get(k, set()) & names)
                s[k] = {"covered": len(got), "percent": _pct(len(got), len(names))}
                if section_names:
                    s[k]["names"] = got
            sections[sec] = s
        return {"version": FORMAT_VERSION, "torch": uni.torch_version, "rule": RULE, "totals": {
            k: {"covered": kinds[k]["covered"], "total": kinds[k]["total"], "percent": kinds[k]["percent"]} for k in KINDS},
            "kinds": kinds, "sections": sections}


def summary_lines(cov: dict, *, show_uncovered: tuple = ("nn_modules",), limit: int = 400) -> list[str]:
    """Plain-text lines for a terminal: totals, per section, and the uncovered names of ``show_uncovered``."""
    lines = [f"coverage (torch {cov['torch']}), exercised by a check with an oracle:"]
    for k in KINDS:
        t = cov["kinds"][k]
        extra = f"  [not measured: {t['not_measured']}]" if "not_measured" in t else ""
        lines.append(f"  {k:<11} {t['covered']:>5} / {t['total']:<5} {t['percent']:6.2f}%"
                     f"  (+{len(t['touched_without_check'])} touched without a check){extra}")
    for sec, s in cov["sections"].items():
        figs = "  ".join(f"{k} {s[k]['covered']} ({s[k]['percent']:.1f}%)" for k in KINDS)
        lines.append(f"  section {sec}: {s['tests']} tests ({s['tests_with_checks']} with checks)  {figs}")
    for k in show_uncovered:
        unc = cov["kinds"][k]["uncovered"]
        lines.append(f"  uncovered {k} ({len(unc)}):")
        lines += [f"    {n}" for n in unc[:limit]]
        if len(unc) > limit:
            lines.append(f"    ... {len(unc) - limit} more")
    return lines


def diff(baseline: dict | None, candidate: dict) -> dict:
    """Compare two ``"coverage"`` dicts (baseline may be None). Per kind:

    ``untested``: in the candidate torch, exercised by no checked test of the candidate run;
    ``new_untested``: of those, the ones the baseline torch did not have (new API nobody tests yet);
    ``lost``: exercised in the baseline run, present but not exercised in the candidate run;
    ``gained``: exercised in the candidate run, not in the baseline run;
    ``removed``: in the baseline torch's universe, gone from the candidate's;
    plus both runs' ``covered``/``total``/``percent``.
    """
    out: dict = {"baseline_torch": baseline["torch"] if baseline else None, "candidate_torch": candidate["torch"], "kinds": {}}
    for k in KINDS:
        c = candidate["kinds"][k]
        c_cov, c_unc = set(c["covered_names"]), set(c["uncovered"])
        entry = {"candidate": {x: c[x] for x in ("covered", "total", "percent")}, "untested": sorted(c_unc)}
        if baseline is not None:
            b = baseline["kinds"][k]
            b_cov = set(b["covered_names"])
            b_all = b_cov | set(b["uncovered"])
            c_all = c_cov | c_unc
            entry["baseline"] = {x: b[x] for x in ("covered", "total", "percent")}
            entry["new_untested"] = sorted(c_unc - b_all)
            entry["lost"] = sorted((b_cov & c_all) - c_cov)
            entry["gained"] = sorted(c_cov - b_cov)
            entry["removed"] = sorted(b_all - c_all)
        out["kinds"][k] = entry
    return out
