"""§ 2 Autograd: grad modes: ``torch.no_grad``, ``torch.enable_grad``, ``torch.set_grad_enabled``,
``torch.inference_mode`` and ``torch.is_grad_enabled``.

Inside ``no_grad`` no graph is recorded (results do not require grad, values are unchanged); the
modes nest, work as decorators, are thread-local and are restored on exceptions.
Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_raises, assert_true


@pytest.mark.smoke
def test_no_grad(device, np_rng):
    """Inside torch.no_grad() results do not require grad and have no grad_fn, values are unchanged, and
    is_grad_enabled() is False; outside, recording resumes; catches a no_grad that still records (memory
    leak, wrong grads) or that changes values."""
    xn = np_rng.standard_normal(4)
    x = torch.tensor(xn, device=device, requires_grad=True)
    assert_true("torch.is_grad_enabled", torch.is_grad_enabled(), "grad mode must be on by default")
    with torch.no_grad():
        assert_true("torch.no_grad", not torch.is_grad_enabled(), "is_grad_enabled() True inside no_grad")
        y = x * 2 + 1
        assert_true("torch.no_grad", not y.requires_grad and y.grad_fn is None, "no_grad recorded a graph")
        assert_close("torch.no_grad", y, 2 * xn + 1, op="elementwise", args="values")
        assert_true("torch.no_grad", x.requires_grad, "no_grad must not change a leaf's requires_grad")
    assert_true("torch.no_grad", torch.is_grad_enabled(), "grad mode not restored on exit")
    z = x * 2
    assert_true("torch.no_grad", z.requires_grad and z.grad_fn is not None, "recording did not resume after no_grad")


def test_no_grad_inplace_on_leaf(device, np_rng):
    """Under no_grad an in-place update of a leaf requiring grad is allowed (the parameter-update idiom)
    and does not make it a non-leaf; outside no_grad the same update raises 'a leaf Variable that requires
    grad is being used in an in-place operation'."""
    xn = np_rng.standard_normal(3)
    x = torch.tensor(xn, device=device, requires_grad=True)
    with torch.no_grad():
        x -= 0.5
    assert_true("torch.no_grad", x.is_leaf and x.requires_grad and x.grad_fn is None,
                "in-place update under no_grad must keep x a grad leaf")
    assert_close("torch.no_grad", x, xn - 0.5, op="elementwise", args="x -= 0.5")

    def _inplace():
        x.mul_(2)
    assert_raises("Tensor.mul_", RuntimeError, _inplace, match="leaf Variable that requires grad",
                  args="leaf requiring grad, grad mode on")
    (x * x).sum().backward()
    assert_close("torch.no_grad", x.grad, 2 * (xn - 0.5), op="gradient", args="grad after update")


def test_no_grad_decorator_and_nesting(device):
    """no_grad works as a decorator (also on generator functions' bodies), nests with enable_grad
    (innermost wins) and restores each level on exit."""
    x = torch.ones(2, device=device, requires_grad=True)

    @torch.no_grad()
    def f(t):
        return t * 3, torch.is_grad_enabled()

    y, enabled = f(x)
    assert_true("torch.no_grad", not enabled and not y.requires_grad, "decorator did not disable grad")
    assert_true("torch.no_grad", torch.is_grad_enabled(), "decorator leaked disabled grad mode")

    @torch.no_grad()
    def gen(t):
        for _ in range(2):
            yield torch.is_grad_enabled(), t * 2

    for enabled, out in gen(x):
        assert_true("torch.no_grad", not enabled and not out.requires_grad, "decorator on a generator ignored")
        assert_true("torch.no_grad", torch.is_grad_enabled(), "generator decorator leaked into caller")

    with torch.no_grad():
        with torch.enable_grad():
            assert_true("torch.enable_grad", torch.is_grad_enabled(), "enable_grad inside no_grad")
            a = x * 2
            with torch.no_grad():
                b = x * 2
            assert_true("torch.no_grad", torch.is_grad_enabled(), "inner no_grad did not restore enable_grad")
        c = x * 2
        assert_true("torch.enable_grad", not torch.is_grad_enabled(), "enable_grad did not restore no_grad")
    assert_true("torch.enable_grad", a.requires_grad and not b.requires_grad and not c.requires_grad,
                "nested modes recorded the wrong ops")
    a.sum().backward()
    assert_close("torch.enable_grad", x.grad, np.full(2, 2.0), op="gradient", args="graph built in enable_grad")


def test_enable_grad_decorator(device):
    """enable_grad as a decorator re-enables recording inside a no_grad block."""
    x = torch.ones(2, device=device, requires_grad=True)

    @torch.enable_grad()
    def f(t):
        return t * 4

    with torch.no_grad():
        y = f(x)
    assert_true("torch.enable_grad", y.requires_grad and y.grad_fn is not None, "decorator ignored under no_grad")


@pytest.mark.parametrize("mode", [False, True])
def test_set_grad_enabled(device, mode):
    """set_grad_enabled(mode) as a context manager sets the mode inside and restores the previous mode;
    as a function call it sets the mode until changed; catches an ignored argument (always False/True)."""
    x = torch.ones(2, device=device, requires_grad=True)
    with torch.no_grad():
        with torch.set_grad_enabled(mode):
            assert_equal("torch.set_grad_enabled", torch.is_grad_enabled(), mode, args=f"{mode} inside no_grad")
            y = x * 2
        assert_equal("torch.set_grad_enabled", torch.is_grad_enabled(), False, args="restored to no_grad")
    assert_equal("torch.set_grad_enabled", y.requires_grad, mode, args=f"{mode}: result requires_grad")
    with torch.set_grad_enabled(mode):
        z = x * 2
    assert_equal("torch.set_grad_enabled", z.requires_grad, mode, args=f"{mode} with grad on")
    assert_true("torch.set_grad_enabled", torch.is_grad_enabled(), "context did not restore grad mode")
    try:
        torch.set_grad_enabled(mode)
        assert_equal("torch.set_grad_enabled", torch.is_grad_enabled(), mode, args=f"function call {mode}")
        assert_equal("torch.set_grad_enabled", (x * 2).requires_grad, mode, args=f"function call {mode}")
    finally:
        torch.set_grad_enabled(True)


def test_grad_mode_restored_after_exception(device):
    """An exception inside no_grad / set_grad_enabled(False) / inference_mode still restores grad mode."""
    for ctx in (torch.no_grad, lambda: torch.set_grad_enabled(False), torch.inference_mode):
        try:
            with ctx():
                raise ValueError("boom")
        except ValueError:
            pass
        assert_true("torch.is_grad_enabled", torch.is_grad_enabled(), "grad mode not restored after an exception")
        assert_true("torch.is_inference_mode_enabled", not torch.is_inference_mode_enabled(),
                    "inference mode not restored after an exception")
    x = torch.ones(1, device=device, requires_grad=True)
    assert_true("torch.no_grad", (x * 2).requires_grad, "recording broken after exception in no_grad")


def test_grad_mode_thread_local(device):
    """Grad mode is thread-local: a new thread starts with grad enabled even while the main thread is in
    no_grad, and a thread disabling grad does not affect the main thread."""
    seen = {}

    def worker():
        seen["enabled_at_start"] = torch.is_grad_enabled()
        x = torch.ones(1, device=device, requires_grad=True)
        seen["records"] = (x * 2).requires_grad
        torch.set_grad_enabled(False)
        seen["disabled"] = torch.is_grad_enabled()

    with torch.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    assert_equal("torch.is_grad_enabled", seen["enabled_at_start"], True, args="new thread under main no_grad")
    assert_equal("torch.is_grad_enabled", seen["records"], True, args="new thread records")
    assert_equal("torch.set_grad_enabled", seen["disabled"], False, args="in worker")
    assert_true("torch.is_grad_enabled", torch.is_grad_enabled(), "worker's set_grad_enabled(False) leaked")


def test_inference_mode(device, np_rng):
    """inference_mode: results are inference tensors (is_inference() True), don't require grad, have the
    right values; using them in a recorded op outside the mode raises (they cannot be saved for backward);
    in-place updates to them outside the mode raise; inference_mode(False) is a no-op context."""
    xn = np_rng.standard_normal(3)
    w = torch.tensor(xn, device=device, requires_grad=True)
    with torch.inference_mode():
        assert_true("torch.inference_mode", torch.is_inference_mode_enabled() and not torch.is_grad_enabled(),
                    "inference mode flags wrong inside")
        y = w * 2
    assert_true("torch.inference_mode", y.is_inference() and not y.requires_grad and y.grad_fn is None,
                "result of inference_mode must be an inference tensor without grad")
    assert_close("torch.inference_mode", y, 2 * xn, op="elementwise", args="values")
    assert_true("torch.inference_mode", not w.is_inference(), "a normal tensor must not be an inference tensor")
    assert_raises("torch.inference_mode", RuntimeError, lambda: (w * y).sum().backward(),
                  match="[Ii]nference tensor", args="inference tensor saved for backward")
    yc = y.clone()   # before the in-place attempt (torch 2.x applies it before raising)

    def _inplace():
        y.add_(1)
    assert_raises("torch.inference_mode", RuntimeError, _inplace, match="[Ii]nference tensor|InferenceMode",
                  args="in-place on inference tensor outside the mode")
    with torch.inference_mode(False):
        z = w * 2
    assert_true("torch.inference_mode", z.requires_grad and not z.is_inference(), "inference_mode(False) not a no-op")
    # a clone outside the mode is a normal tensor usable by autograd
    assert_true("torch.inference_mode", not yc.is_inference(), "clone outside the mode must be a normal tensor")
    (w * yc).sum().backward()
    assert_close("torch.inference_mode", w.grad, 2 * xn, op="gradient", args="clone of inference tensor")


def test_inference_mode_decorator(device):
    """inference_mode works as a decorator."""
    @torch.inference_mode()
    def f(t):
        return t + 1

    x = torch.ones(2, device=device, requires_grad=True)
    y = f(x)
    assert_true("torch.inference_mode", y.is_inference() and not y.requires_grad, "decorator ignored")
    assert_true("torch.inference_mode", not torch.is_inference_mode_enabled(), "decorator leaked")


def test_no_grad_does_not_affect_backward_of_earlier_graph(device, np_rng):
    """A graph built before entering no_grad can still be backpropagated inside it (backward itself is not
    recorded but still runs), with correct gradients."""
    xn = np_rng.standard_normal(3)
    x = torch.tensor(xn, device=device, requires_grad=True)
    y = (x ** 2).sum()
    with torch.no_grad():
        y.backward()
    assert_close("Tensor.backward", x.grad, 2 * xn, op="gradient", args="called under no_grad")
