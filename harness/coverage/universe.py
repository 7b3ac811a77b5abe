"""The coverage universe: what the running torch offers (public callables, aten overloads, torch.nn
module classes), the rules that define each set, and the names the recorder reports.

Plain Python, no pytest import; torch is imported lazily.
"""
from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass, field

KINDS = ("callables", "overloads", "nn_modules")


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
    ``callables_excluded``: name -> reason for the override-list entries no recorder can observe under their
    own name, kept out of the total: the Tensor operator dunders whose calls reach ``__torch_function__`` as
    another callable (``x + y`` arrives as ``torch.Tensor.add``, so ``__add__`` and ``add`` cannot be told
    apart; found by probing each dunder once, see :func:`_observed_as`), and the ROCm-only ``miopen_*``
    kernels on a build that is not a ROCm build.
    """

    torch_version: str
    callables: dict
    overloads: frozenset
    overloads_source: str
    nn_modules: dict
    nn_excluded: dict
    callables_excluded: dict = field(default_factory=dict)
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


class _Seen(Exception):
    pass


def _observed_as(callables: dict) -> dict:
    """For each C-implemented ``torch.Tensor`` method or property in ``callables``: the name under which a call of it reaches a
    :class:`torch.overrides.TorchFunctionMode`, where that differs from its own (``Tensor.__add__`` ->
    ``torch.Tensor.add``, ``Tensor.ndimension`` -> ``torch.Tensor.dim``). Each is called on small probe
    tensors under a mode that raises as soon as it sees a call, so nothing is computed and no other mode
    sees it; one whose probe arguments never fit keeps its place."""
    import torch
    from torch.overrides import TorchFunctionMode

    class _Probe(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            raise _Seen(callable_name(func))

    x, xi = torch.ones(2, 2), torch.ones(2, 2, dtype=torch.int64)
    probes = ((x, x), (xi, xi), (x,), (xi,), (x, 0), (x, ""), (x, {}), (x, 0, 1.0))
    out = {}
    for name, func in callables.items():
        if not name.startswith("torch.Tensor.") or not callable(func) or inspect.isfunction(func):
            continue  # torch.* functions and Python-level methods dispatch under their own names
        for args in probes:
            try:
                with _Probe():
                    func(*args)
            except _Seen as seen:
                if str(seen) != name:
                    out[name] = str(seen)
                break
            except Exception:  # noqa: BLE001 - the probe arguments do not fit: try the next ones
                continue
    return out


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
    excluded_callables = {name: f"its calls reach the recorder as {seen}: the two cannot be told apart"
                          for name, seen in _observed_as(callables).items()}
    if getattr(torch.version, "hip", None) is None:
        excluded_callables.update({name: "ROCm-only MIOpen kernel: this torch is not a ROCm build"
                                   for name in callables if name.startswith("torch.miopen_")})
    for name in excluded_callables:
        del callables[name]
    overloads, source = _aten_overloads()
    modules, excluded = _nn_classes()
    return Universe(torch_version=str(torch.__version__), callables=callables, overloads=overloads,
                    overloads_source=source, nn_modules=modules, nn_excluded=excluded,
                    callables_excluded=dict(sorted(excluded_callables.items())),
                    _names_by_func=by_func, _names_by_class={c: n for n, c in modules.items()})
