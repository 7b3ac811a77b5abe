"""The coverage recorder: a context manager that records the public callables, aten overloads and
torch.nn module classes used inside it, passing every call through unchanged.

Plain Python, no pytest import; torch is imported lazily.
"""
from __future__ import annotations

import contextlib
import functools
import sys
from dataclasses import dataclass

from harness.coverage.universe import Universe, callable_name, universe

# Tracers and exporters that change meaning or fail when a Python mode or a global module hook is active
# (torch.jit.trace bakes sizes read through a mode in as constants; torch.export/dynamo reject the
# recorder's side effects inside torch.cond branches). While a recorder is active these attributes are
# wrapped so that the recorder steps aside for the call (patched only in modules already imported).
TRACE_ENTRY_POINTS = (("torch.jit", "trace"), ("torch.jit", "trace_module"), ("torch.onnx", "export"),
                      ("torch.export", "export"))


def _compiling() -> bool:
    """True while dynamo traces (torch.compile, torch.export, torch.cond): record nothing then, so the traced
    code has no side effect to reject (dynamo reads this as a constant)."""
    import torch

    fn = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    return bool(fn()) if fn is not None else False


@dataclass(frozen=True)
class Usage:
    """What one recorded block used, by name. ``callables`` may hold names outside the universe (factory
    functions like ``torch.empty`` that the function mode also sees); the ledger keeps those apart."""

    callables: frozenset = frozenset()
    overloads: frozenset = frozenset()
    nn_modules: frozenset = frozenset()

    def __or__(self, other: "Usage") -> "Usage":
        return Usage(self.callables | other.callables, self.overloads | other.overloads, self.nn_modules | other.nn_modules)


# Callables whose results change under any Python dispatch mode on some torch builds (torch 2.13 CPU:
# complex lstsq residuals, complex pinv, matrix_rank(out=) unwritten; suites/ops/test_dispatch_transparency.py).
# The recorder's own dispatch mode steps aside while they run (when it is the innermost mode), so recording
# never changes a result; their aten overloads are then not recorded.
DISPATCH_OPAQUE = ("torch.linalg.lstsq", "torch.linalg.pinv", "torch.pinverse", "torch.Tensor.pinverse",
                   "torch.linalg.matrix_rank")


@functools.lru_cache(maxsize=1)
def _opaque_funcs() -> frozenset:
    """The DISPATCH_OPAQUE callables of this torch (looked up once per process, not per recorded test)."""
    import torch

    out = set()
    for name in DISPATCH_OPAQUE:
        obj = torch
        for part in name.split(".")[1:]:
            obj = getattr(obj, part, None)
        if obj is not None:
            out.add(obj)
    return frozenset(out)


def _hashable_in(func, group: frozenset) -> bool:
    try:
        return func in group
    except TypeError:
        return False


def _function_mode_class():
    from torch.overrides import TorchFunctionMode

    class _FunctionRecorder(TorchFunctionMode):
        """Records each func object and calls it unchanged (the mode is suspended during the call)."""

        def __init__(self, sink: set, unhashable: list, opaque=frozenset(), pause=None):
            super().__init__()
            self._sink = sink
            self._unhashable = unhashable
            self._opaque = opaque
            self._pause = pause

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if not _compiling():
                try:
                    self._sink.add(func)
                except TypeError:
                    self._unhashable.append(callable_name(func))
            if self._pause is not None and _hashable_in(func, self._opaque):
                with self._pause():
                    return func(*args, **(kwargs or {}))
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
        self._modes: list = []
        self._hook = None
        self._patched: list = []
        self.reasons: dict[str, str] = {k: "not requested" for k, on in self._want.items() if not on}
        self._active = False

    def __enter__(self) -> "Recorder":
        if self._active:
            raise RuntimeError("this Recorder is already active; use a new one per block")
        self._active = True
        try:
            if self._want["nn_modules"]:
                self._add_hook()
            dispatch = None
            if self._want["overloads"]:
                cls = _dispatch_mode_class()
                if isinstance(cls, str):
                    self.reasons["overloads"] = cls
                else:
                    dispatch = cls(self._ops)
            if self._want["callables"] or dispatch is not None:
                # the function mode also makes the dispatch mode step aside for DISPATCH_OPAQUE (without
                # the callables half it records nothing: a throwaway sink)
                sink = self._funcs if self._want["callables"] else set()
                pause = (lambda: self._paused(dispatch)) if dispatch is not None else None
                self._modes.append(_function_mode_class()(sink, self._unhashable, _opaque_funcs(), pause))
            if dispatch is not None:
                self._modes.append(dispatch)
            for mode in self._modes:
                mode.__enter__()
                self._stack.append(mode)
            self._patch_entry_points()
            from harness import checklog

            self._remove_pause = checklog.add_pause(self._suspended)  # the checks' own conversions are not the test's
        except BaseException:
            self._unwind(None, None, None)
            raise
        return self

    @contextlib.contextmanager
    def _paused(self, mode):
        """Take the recorder's dispatch ``mode`` off for a block when it is the innermost dispatch mode."""
        from torch.utils import _python_dispatch

        top = getattr(_python_dispatch, "_get_current_dispatch_mode", lambda: None)
        if mode not in self._stack or top() is not mode:
            yield
            return
        mode.__exit__(None, None, None)
        try:
            yield
        finally:
            mode.__enter__()

    def _add_hook(self) -> None:
        from torch.nn.modules import module as _module

        classes = self._classes

        def _pre_hook(mod, args):
            if not _compiling():
                classes.add(type(mod))

        self._hook = _module.register_module_forward_pre_hook(_pre_hook)

    def _patch_entry_points(self) -> None:
        for modname, attr in TRACE_ENTRY_POINTS:
            mod = sys.modules.get(modname)
            orig = getattr(mod, attr, None) if mod is not None else None
            if orig is None:
                continue
            setattr(mod, attr, self._stepping_aside(orig))
            self._patched.append((mod, attr, orig))

    def _stepping_aside(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self._suspended():
                return fn(*args, **kwargs)

        return wrapper

    @contextlib.contextmanager
    def _suspended(self):
        """Take the recorder's modes and hook off for a block, when its modes are the innermost ones (a mode
        the test pushed after entering the recorder cannot be stepped over: then nothing changes)."""
        import torch.overrides
        from torch.utils import _python_dispatch

        top_function = getattr(torch.overrides, "_get_current_function_mode", lambda: None)
        top_dispatch = getattr(_python_dispatch, "_get_current_dispatch_mode", lambda: None)
        on_top = True
        for mode in self._stack:
            on_top &= (top_function() if hasattr(mode, "__torch_function__") else top_dispatch()) is mode
        if not on_top:
            yield
            return
        modes = list(self._stack)
        for mode in reversed(modes):
            mode.__exit__(None, None, None)
        self._stack.clear()
        hook, self._hook = self._hook, None
        if hook is not None:
            hook.remove()
        try:
            yield
        finally:
            if hook is not None:
                self._add_hook()
            for mode in modes:
                mode.__enter__()
                self._stack.append(mode)

    def _unwind(self, et, ev, tb) -> None:
        remove, self._remove_pause = getattr(self, "_remove_pause", None), None
        if remove is not None:
            remove()
        for mod, attr, orig in reversed(self._patched):
            setattr(mod, attr, orig)
        self._patched.clear()
        while self._stack:
            self._stack.pop().__exit__(et, ev, tb)
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
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
