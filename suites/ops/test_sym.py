"""Operator library: the SymInt-aware helpers (torch.sym_max/sym_min/sym_not/sym_sqrt/sym_sum/sym_ite,
torch._sym_<trig>, torch.nn.functional._sym_int) on plain Python numbers, where they are documented to fall
back to ``math``/builtins: values against ``math`` in float64 and the documented result types (sym_max and
sym_min promote to float when either argument is a float, unlike builtins.max; _sym_int truncates toward
zero like int()).

These helpers are what torch.compile and the shape machinery call on sizes; on plain numbers a wrong
fallback (max returning the smaller argument, a type kept int where float is documented, sin mapped to cos)
changes shapes and strides computed in eager code too.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from harness.checks import assert_close, assert_equal, assert_raises, assert_true

TRIG = ("cos", "sin", "tan", "acos", "asin", "atan", "cosh", "sinh", "tanh")
# points inside every function's domain (acos/asin need |x| <= 1), ints included: an int argument is
# documented to go through math, which returns a float
TRIG_POINTS = (0, 1, -1, 0.5, -0.75, 1e-8, 0.999999, -0.3333333333333333)
WIDE_POINTS = (2.5, -3.0, 10, 300.0, -20.25)  # outside [-1, 1]: for everything except acos/asin


def _need(name):
    if not hasattr(torch, name):
        pytest.skip(f"torch {torch.__version__} has no torch.{name}")
    return getattr(torch, name)


@pytest.mark.parametrize("name", TRIG)
def test_sym_trig(name):
    """torch._sym_<f> on Python numbers is math.<f> (float result): catches a swapped or dropped fallback
    (sin computing cos, tanh computing tan, an int argument returned unconverted)."""
    fn = _need(f"_sym_{name}")
    ref = getattr(math, name)
    points = TRIG_POINTS + (() if name in ("acos", "asin") else WIDE_POINTS)
    for x in points:
        got = fn(x)
        assert_true(f"torch._sym_{name}", isinstance(got, float), f"got {type(got).__name__}, expected float", args=repr(x))
        assert_close(f"torch._sym_{name}", got, ref(float(x)), op="transcendental", dtype=torch.float64, args=repr(x))


@pytest.mark.parametrize("name", ("acos", "asin"))
def test_sym_trig_domain_error(name):
    """Outside [-1, 1] the math fallback raises ValueError (math domain error): catches a fallback that
    clamps or returns NaN silently for sizes computed from out-of-range values."""
    fn = _need(f"_sym_{name}")
    assert_raises(f"torch._sym_{name}", ValueError, fn, 1.5, args="1.5")


MINMAX = [(2, 3), (3, 2), (-5, -5), (2.0, 3), (2, 3.5), (4, 3.0), (-0.5, -0.25), (7, 7.0), (10**18, 10**18 + 1)]


@pytest.mark.parametrize("which", ("sym_max", "sym_min"))
def test_sym_max_min(which):
    """sym_max/sym_min equal builtins max/min, and the result is a float when either argument is a float
    (documented: it 'always promotes to float', unlike builtins.max): catches a max returning the smaller
    argument, an int result for a mixed pair, and a float result for two ints (which would lose precision on
    sizes near 2**63)."""
    fn = _need(which)
    ref = max if which == "sym_max" else min
    for a, b in MINMAX:
        got = fn(a, b)
        want_float = isinstance(a, float) or isinstance(b, float)
        expected = float(ref(a, b)) if want_float else ref(a, b)
        assert_equal(f"torch.{which}", type(got), float if want_float else int, args=f"{a!r}, {b!r}")
        assert_equal(f"torch.{which}", got, expected, args=f"{a!r}, {b!r}")


def test_sym_not():
    """sym_not on a bool is ``not``: catches an identity or an int-flipping (~x) fallback."""
    fn = _need("sym_not")
    for a in (True, False):
        got = fn(a)
        assert_equal("torch.sym_not", got, not a, args=repr(a))
        assert_true("torch.sym_not", isinstance(got, bool), f"got {type(got).__name__}, expected bool", args=repr(a))


@pytest.mark.smoke
def test_sym_sqrt():
    """sym_sqrt is math.sqrt (float result for int input, ValueError for a negative number): catches an
    integer square root, a missing float conversion and a silent NaN."""
    fn = _need("sym_sqrt")
    for x in (0, 1, 2, 4, 9, 10**12, 0.25, 2.0, 1e-300, 1e300):
        got = fn(x)
        assert_true("torch.sym_sqrt", isinstance(got, float), f"got {type(got).__name__}, expected float", args=repr(x))
        assert_close("torch.sym_sqrt", got, math.sqrt(x), op="transcendental", dtype=torch.float64, args=repr(x))
    assert_raises("torch.sym_sqrt", ValueError, fn, -1.0, args="-1.0")


def test_sym_sum():
    """sym_sum of Python numbers is builtins.sum, both as sym_sum([a, b, c]) and (where this torch
    documents it) sym_sum(a, b, c); an int list stays int, a float term makes it float, [] is 0: catches a
    dropped first/last term and a float result for ints."""
    fn = _need("sym_sum")
    cases = ([1, 2, 3], [5], [], [1, 2.5, -3], [10**18, 10**18, 7], [0.1] * 10, (4, -4, 9))
    for xs in cases:
        got = fn(list(xs))
        expected = math.fsum(xs) if any(isinstance(x, float) for x in xs) else sum(xs)
        want = float if any(isinstance(x, float) for x in xs) else int
        assert_equal("torch.sym_sum", type(got), want, args=repr(xs))
        if want is int:
            assert_equal("torch.sym_sum", got, expected, args=repr(xs))
        else:  # K-term float sum: builtins.sum rounds each step; fsum is the exact oracle
            assert_close("torch.sym_sum", got, expected, op="reduction", dtype=torch.float64, k=len(xs),
                         scale=sum(abs(x) for x in xs), args=repr(xs))


def test_sym_ite():
    """sym_ite(b, t, f) is ``t if b else f``; mixing types of t and f is rejected (an AssertionError in the
    documented implementation): catches swapped branches."""
    fn = _need("sym_ite")
    for b, t, f in ((True, 1, 2), (False, 1, 2), (True, 1.5, -2.5), (False, "a", "b")):
        assert_equal("torch.sym_ite", fn(b, t, f), t if b else f, args=f"{b}, {t!r}, {f!r}")
    assert_raises("torch.sym_ite", AssertionError, fn, True, 1, 2.0, args="True, 1, 2.0 (type mismatch)")


def test_sym_int():
    """torch.nn.functional._sym_int truncates toward zero like int() (not floor): catches floor for
    negative values and rounding to nearest; the result is an int."""
    fn = getattr(F, "_sym_int", None)
    if fn is None:
        pytest.skip(f"torch {torch.__version__} has no torch.nn.functional._sym_int")
    for x in (3.7, -3.7, 0.0, -0.2, 5, -5, 2.5, -2.5, 1e15 + 0.5, 2**60):
        got = fn(x)
        assert_equal("torch.nn.functional._sym_int", type(got), int, args=repr(x))
        assert_equal("torch.nn.functional._sym_int", got, math.trunc(x), args=repr(x))
