"""The coverage recorder: a context manager that records the public callables, aten overloads and
torch.nn module classes used inside it, passing every call through unchanged.

Plain Python, no pytest import; torch is imported lazily.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.coverage.universe import Universe, callable_name, universe


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
