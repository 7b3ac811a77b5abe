"""Operator library: torch.distributions against scipy.stats (and closed forms) in float64.

For each distribution with random batched parameters: log_prob on values drawn by NumPy (including far
tails), cdf/icdf/entropy where torch implements them, mean/variance/stddev/mode; sample moments of
40,000 draws per batch member within 6 sigma (mean, variance from the fourth moment, and the empirical
CDF at three quantiles, which also covers heavy tails); rsample gradients against the closed-form (or
float64 finite-difference) derivative of the mean; validate_args (a bad parameter and a value outside
the support raise ValueError); batch_shape/event_shape/expand/sample shapes; kl_divergence for pairs
with closed forms.

Tolerances (derived): a log-density is a sum of a few terms (logs, lgamma, products) each rounded
once, so its error is c*u*(1 + |value|) with c = 256 (float32 8e-6 of the magnitude; float64 6e-14);
a cdf F(x) and an icdf F^-1(p) get that budget in units of their conditioning (u*(|F| + |x f(x)|) and
u*(|x| + p/f(x))). A missing log(sigma) term, a swapped parameter or a wrong normaliser is off by O(1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import torch.distributions as D

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.ops._oracles import to_numpy, unit_roundoff

st = pytest.importorskip("scipy.stats", reason="SciPy (the ops extra) is the oracle of torch.distributions")
sp = pytest.importorskip("scipy.special", reason="SciPy (the ops extra) is the oracle of torch.distributions")
integrate = pytest.importorskip("scipy.integrate", reason="SciPy (the ops extra) integrates the closed-form densities")

BATCH = 3
NS = 40_000  # draws per batch member (past 32,768: the samplers' vectorised paths)
C = 256.0


class _Quad:
    """A continuous distribution on [lo, hi] known only by its closed-form log-density: cdf, moments and
    entropy by adaptive quadrature (scipy.integrate.quad) in float64, an oracle independent of torch."""

    def __init__(self, logpdf, lo, hi, cdf=None, ppf=None):
        self._logpdf, self.lo, self.hi = logpdf, lo, hi
        if cdf is not None:  # a closed form where one exists (quadrature and root finding are slow)
            self.cdf = cdf
        if ppf is not None:
            self.ppf = ppf

    def logpdf(self, x):
        return self._logpdf(np.asarray(x, dtype=np.float64))

    def pdf(self, x):
        return np.exp(self.logpdf(x))

    def _int(self, g):
        f = lambda t: g(t) * math.exp(float(self._logpdf(np.float64(t))))  # noqa: E731
        return integrate.quad(f, self.lo, self.hi, limit=200, epsabs=1e-13, epsrel=1e-12)[0]

    def cdf(self, x):
        return np.vectorize(lambda v: integrate.quad(lambda t: math.exp(float(self._logpdf(np.float64(t)))),
                                                     self.lo, v, epsabs=1e-14, epsrel=1e-12)[0])(x)

    def moment(self, k):
        return self._int(lambda t: t ** k)

    def mean(self):
        return self.moment(1)

    def var(self):
        return self.moment(2) - self.mean() ** 2

    def std(self):
        return math.sqrt(self.var())

    def entropy(self):
        return -self._int(lambda t: float(self._logpdf(np.float64(t))))

    def ppf(self, p):
        from scipy.optimize import brentq
        return np.vectorize(lambda q: brentq(lambda v: self.cdf(v) - q, self.lo + 1e-15, self.hi - 1e-15, xtol=1e-15))(p)

    def stats(self, moments):
        m = self.mean()
        c4 = self.moment(4) - 4 * m * self.moment(3) + 6 * m * m * self.moment(2) - 3 * m ** 4
        return c4 / self.var() ** 2 - 3.0


class _Batch:
    """A batch of frozen oracles, one per batch member (scipy's multivariate/quadrature ones do not
    broadcast); methods return stacked arrays shaped like the batch."""

    def __init__(self, members):
        self.members = members

    def _each(self, name, *a):
        return np.stack([np.asarray(getattr(m, name)(*(x[..., i] for x in a))) for i, m in enumerate(self.members)], -1)

    def logpdf(self, x):
        return self._each("logpdf", x)

    def cdf(self, x):
        return self._each("cdf", x)

    def ppf(self, p):
        return self._each("ppf", p)

    def pdf(self, x):
        return self._each("pdf", x)

    def mean(self):
        return np.array([m.mean() for m in self.members])

    def var(self):
        return np.array([m.var() for m in self.members])

    def std(self):
        return np.sqrt(self.var())

    def entropy(self):
        return np.array([m.entropy() for m in self.members])

    def stats(self, moments):
        return np.array([m.stats(moments) for m in self.members])


def _kumaraswamy(a, b):
    """Density a b x^(a-1) (1 - x^a)^(b-1); F(x) = 1 - (1 - x^a)^b and its inverse in closed form."""
    return _Batch([_Quad(lambda x, a=a_, b=b_: np.log(a * b) + (a - 1) * np.log(x) + (b - 1) * np.log1p(-x ** a), 0, 1,
                         cdf=lambda x, a=a_, b=b_: -np.expm1(b * np.log1p(-np.asarray(x) ** a)),
                         ppf=lambda q, a=a_, b=b_: (-np.expm1(np.log1p(-np.asarray(q)) / b)) ** (1 / a))
                   for a_, b_ in zip(a, b)])


def _continuous_bernoulli(lam):
    """Density C(l) l^x (1 - l)^(1-x) on [0, 1], C(l) = 2 atanh(1 - 2l) / (1 - 2l);
    F(x) = (l^x (1 - l)^(1-x) + l - 1) / (2l - 1) and its inverse in closed form."""
    def logpdf(x, p):
        logc = math.log(2 * math.atanh(1 - 2 * p) / (1 - 2 * p))
        return logc + x * math.log(p) + (1 - x) * math.log1p(-p)

    def cdf(x, p):
        x = np.asarray(x)
        return (np.exp(x * math.log(p) + (1 - x) * math.log1p(-p)) + p - 1) / (2 * p - 1)

    def ppf(q, p):
        q = np.asarray(q)
        return (np.log(q * (2 * p - 1) + 1 - p) - math.log1p(-p)) / (math.log(p) - math.log1p(-p))
    return _Batch([_Quad(lambda x, p=p_: logpdf(x, p), 0, 1, cdf=lambda x, p=p_: cdf(x, p), ppf=lambda q, p=p_: ppf(q, p))
                   for p_ in lam])


@dataclass
class Case:
    """One univariate distribution: torch constructor, random parameters, the scipy oracle, what torch
    implements (cdf/icdf/entropy), the closed-form mode, the documented properties."""
    make: callable
    params: callable
    oracle: callable
    implements: tuple = ("entropy",)
    mode: callable = None
    discrete: bool = False
    heavy: bool = False          # infinite 4th moment: no variance check; Cauchy-like: no mean either
    no_mean: bool = False
    outside: float = float("nan")
    bad: dict = field(default_factory=dict)
    grad: tuple = ()             # parameters whose rsample gradient is checked
    mean_fn: callable = None     # closed-form mean (numpy) for gradient oracles; default oracle.mean()
    available: callable = lambda: True


def _u(r, a, b):
    return r.uniform(a, b, BATCH)


CASES: dict[str, Case] = {
    "Normal": Case(lambda p, **k: D.Normal(p["loc"], p["scale"], **k),
                   lambda r: {"loc": _u(r, -2, 2), "scale": _u(r, 0.5, 2)},
                   lambda p: st.norm(p["loc"], p["scale"]), ("cdf", "icdf", "entropy"), lambda p: p["loc"],
                   bad={"scale": -1.0}, grad=("loc", "scale")),
    "Uniform": Case(lambda p, **k: D.Uniform(p["low"], p["high"], **k),
                    lambda r: (lambda lo: {"low": lo, "high": lo + _u(r, 0.5, 3)})(_u(r, -2, 0)),
                    lambda p: st.uniform(p["low"], p["high"] - p["low"]), ("cdf", "icdf", "entropy"),
                    outside=5.0, bad={"low": 10.0}, grad=("low", "high")),
    "Bernoulli": Case(lambda p, **k: D.Bernoulli(probs=p["probs"], **k), lambda r: {"probs": _u(r, 0.1, 0.9)},
                      lambda p: st.bernoulli(p["probs"]), mode=lambda p: (p["probs"] > 0.5).astype(float),
                      discrete=True, outside=2.0, bad={"probs": 1.5}),
    "Beta": Case(lambda p, **k: D.Beta(p["a"], p["b"], **k), lambda r: {"a": _u(r, 1.5, 5), "b": _u(r, 1.5, 5)},
                 lambda p: st.beta(p["a"], p["b"]), mode=lambda p: (p["a"] - 1) / (p["a"] + p["b"] - 2),
                 outside=1.5, bad={"a": -1.0}, grad=("a", "b")),
    "Gamma": Case(lambda p, **k: D.Gamma(p["alpha"], p["rate"], **k),
                  lambda r: {"alpha": _u(r, 0.5, 5), "rate": _u(r, 0.5, 3)},
                  lambda p: st.gamma(p["alpha"], scale=1 / p["rate"]), ("cdf", "entropy"),
                  mode=lambda p: np.maximum(p["alpha"] - 1, 0) / p["rate"], outside=-1.0, bad={"rate": -1.0},
                  grad=("alpha", "rate")),
    "Exponential": Case(lambda p, **k: D.Exponential(p["rate"], **k), lambda r: {"rate": _u(r, 0.5, 3)},
                        lambda p: st.expon(scale=1 / p["rate"]), ("cdf", "icdf", "entropy"),
                        mode=lambda p: 0 * p["rate"], outside=-1.0, bad={"rate": -1.0}, grad=("rate",)),
    "Poisson": Case(lambda p, **k: D.Poisson(p["rate"], **k), lambda r: {"rate": _u(r, 0.5, 10)},
                    lambda p: st.poisson(p["rate"]), (), mode=lambda p: np.floor(p["rate"]), discrete=True,
                    outside=1.5, bad={"rate": -1.0}),
    "Binomial": Case(lambda p, **k: D.Binomial(p["n"], probs=p["probs"], **k),
                     lambda r: {"n": np.full(BATCH, 10.0), "probs": _u(r, 0.1, 0.9)},
                     lambda p: st.binom(p["n"].astype(np.int64), p["probs"]), mode=lambda p: np.floor((p["n"] + 1) * p["probs"]),
                     discrete=True, outside=11.0, bad={"probs": 1.5}),
    "Laplace": Case(lambda p, **k: D.Laplace(p["loc"], p["scale"], **k),
                    lambda r: {"loc": _u(r, -2, 2), "scale": _u(r, 0.5, 2)},
                    lambda p: st.laplace(p["loc"], p["scale"]), ("cdf", "icdf", "entropy"), lambda p: p["loc"],
                    bad={"scale": -1.0}, grad=("loc", "scale")),
    "Cauchy": Case(lambda p, **k: D.Cauchy(p["loc"], p["scale"], **k),
                   lambda r: {"loc": _u(r, -2, 2), "scale": _u(r, 0.5, 2)},
                   lambda p: st.cauchy(p["loc"], p["scale"]), ("cdf", "icdf", "entropy"), lambda p: p["loc"],
                   heavy=True, no_mean=True, bad={"scale": -1.0}),
    "LogNormal": Case(lambda p, **k: D.LogNormal(p["loc"], p["scale"], **k),
                      lambda r: {"loc": _u(r, -1, 1), "scale": _u(r, 0.2, 0.8)},
                      lambda p: st.lognorm(p["scale"], scale=np.exp(p["loc"])), ("cdf", "icdf", "entropy"),
                      lambda p: np.exp(p["loc"] - p["scale"] ** 2), outside=-1.0, bad={"scale": -1.0},
                      grad=("loc", "scale")),
    "StudentT": Case(lambda p, **k: D.StudentT(p["df"], p["loc"], p["scale"], **k),
                     lambda r: {"df": _u(r, 5, 10), "loc": _u(r, -2, 2), "scale": _u(r, 0.5, 2)},
                     lambda p: st.t(p["df"], p["loc"], p["scale"]), mode=lambda p: p["loc"], bad={"df": -1.0},
                     grad=("loc", "scale")),
    "Geometric": Case(lambda p, **k: D.Geometric(probs=p["probs"], **k), lambda r: {"probs": _u(r, 0.2, 0.8)},
                      lambda p: st.geom(p["probs"], loc=-1), mode=lambda p: 0 * p["probs"], discrete=True,
                      outside=-1.0, bad={"probs": 1.5}),
    "Chi2": Case(lambda p, **k: D.Chi2(p["df"], **k), lambda r: {"df": _u(r, 1, 10)},
                 lambda p: st.chi2(p["df"]), ("cdf", "entropy"), lambda p: np.maximum(p["df"] - 2, 0),
                 outside=-1.0, bad={"df": -1.0}, grad=("df",)),
    "HalfNormal": Case(lambda p, **k: D.HalfNormal(p["scale"], **k), lambda r: {"scale": _u(r, 0.5, 2)},
                       lambda p: st.halfnorm(scale=p["scale"]), ("cdf", "icdf", "entropy"), lambda p: 0 * p["scale"],
                       outside=-1.0, bad={"scale": -1.0}, grad=("scale",)),
    "HalfCauchy": Case(lambda p, **k: D.HalfCauchy(p["scale"], **k), lambda r: {"scale": _u(r, 0.5, 2)},
                       lambda p: st.halfcauchy(scale=p["scale"]), ("cdf", "icdf", "entropy"), lambda p: 0 * p["scale"],
                       heavy=True, no_mean=True, outside=-1.0, bad={"scale": -1.0}),
    "Gumbel": Case(lambda p, **k: D.Gumbel(p["loc"], p["scale"], **k),
                   lambda r: {"loc": _u(r, -2, 2), "scale": _u(r, 0.5, 2)},
                   lambda p: st.gumbel_r(p["loc"], p["scale"]), ("cdf", "icdf", "entropy"), lambda p: p["loc"],
                   bad={"scale": -1.0}, grad=("loc", "scale")),
    "Weibull": Case(lambda p, **k: D.Weibull(p["scale"], p["k"], **k),
                    lambda r: {"scale": _u(r, 0.5, 2), "k": _u(r, 1.2, 4)},
                    lambda p: st.weibull_min(p["k"], scale=p["scale"]), ("cdf", "icdf", "entropy"),
                    lambda p: p["scale"] * ((p["k"] - 1) / p["k"]) ** (1 / p["k"]), outside=-1.0, bad={"k": -1.0},
                    grad=("scale", "k")),
    "Pareto": Case(lambda p, **k: D.Pareto(p["scale"], p["alpha"], **k),
                   lambda r: {"scale": _u(r, 0.5, 2), "alpha": _u(r, 5, 8)},
                   lambda p: st.pareto(p["alpha"], scale=p["scale"]), ("cdf", "icdf", "entropy"),
                   lambda p: p["scale"], outside=0.1, bad={"alpha": -1.0}, grad=("scale", "alpha")),
    "FisherSnedecor": Case(lambda p, **k: D.FisherSnedecor(p["d1"], p["d2"], **k),
                           lambda r: {"d1": _u(r, 3, 10), "d2": _u(r, 12, 20)},
                           lambda p: st.f(p["d1"], p["d2"]), (),
                           lambda p: (p["d1"] - 2) / p["d1"] * p["d2"] / (p["d2"] + 2), outside=-1.0,
                           bad={"d1": -1.0}, grad=("d2",)),
    "NegativeBinomial": Case(lambda p, **k: D.NegativeBinomial(p["r"], probs=p["probs"], **k),
                             lambda r: {"r": _u(r, 1.5, 5), "probs": _u(r, 0.2, 0.7)},
                             lambda p: st.nbinom(p["r"], 1 - p["probs"]), (),
                             lambda p: np.floor((p["r"] - 1) * p["probs"] / (1 - p["probs"])), discrete=True,
                             outside=-1.0, bad={"probs": 1.5}),
    "InverseGamma": Case(lambda p, **k: D.InverseGamma(p["alpha"], p["rate"], **k),
                         lambda r: {"alpha": _u(r, 5, 8), "rate": _u(r, 0.5, 3)},
                         lambda p: st.invgamma(p["alpha"], scale=p["rate"]), ("cdf", "entropy"),
                         lambda p: p["rate"] / (p["alpha"] + 1), outside=-1.0, bad={"alpha": -1.0},
                         grad=("alpha", "rate"), available=lambda: hasattr(D, "InverseGamma")),
    "Kumaraswamy": Case(lambda p, **k: D.Kumaraswamy(p["a"], p["b"], **k),
                        lambda r: {"a": _u(r, 1.5, 4), "b": _u(r, 1.5, 4)},
                        lambda p: _kumaraswamy(p["a"], p["b"]), ("cdf", "icdf", "entropy"),
                        None, outside=1.5,  # mode: test_kumaraswamy_mode (NaN on 2.13)
                        bad={"a": -1.0}, grad=("a", "b"),
                        mean_fn=lambda p: p["b"] * np.exp(sp.betaln(1 + 1 / p["a"], p["b"]))),
    "ContinuousBernoulli": Case(lambda p, **k: D.ContinuousBernoulli(probs=p["lam"], **k),
                                lambda r: {"lam": np.array([0.15, 0.3, 0.8])},
                                lambda p: _continuous_bernoulli(p["lam"]), ("cdf", "icdf", "entropy"),
                                outside=1.5, bad={"lam": 1.5}, grad=("lam",),
                                mean_fn=lambda p: p["lam"] / (2 * p["lam"] - 1) + 1 / (2 * np.arctanh(1 - 2 * p["lam"]))),
    "GeneralizedPareto": Case(lambda p, **k: D.GeneralizedPareto(p["loc"], p["scale"], p["xi"], **k),
                              lambda r: {"loc": _u(r, -1, 1), "scale": _u(r, 0.5, 2), "xi": _u(r, 0.05, 0.2)},
                              lambda p: st.genpareto(p["xi"], p["loc"], p["scale"]), ("cdf", "icdf", "entropy"),
                              lambda p: p["loc"], outside=-5.0, bad={"scale": -1.0}, grad=("loc", "scale"),
                              available=lambda: hasattr(D, "GeneralizedPareto")),
}


def _case(name):
    case = CASES[name]
    if not case.available():
        pytest.skip(f"torch.distributions has no {name} on torch {torch.__version__}")
    return case


def _tensors(p, dtype, device, requires_grad=False):
    return {k: torch.tensor(v, dtype=dtype, device=device, requires_grad=requires_grad) for k, v in p.items()}


def _values(case, p, rng, n=60):
    """Support values drawn by scipy (its own sampler) plus the quantiles 1e-6 and 1 - 1e-6 (far tails)."""
    frozen = case.oracle(p)
    if isinstance(frozen, _Batch):
        u = np.concatenate([rng.uniform(0.01, 0.99, (n - 2, BATCH)), np.full((1, BATCH), 1e-4), np.full((1, BATCH), 1 - 1e-4)])
        return frozen.ppf(u)
    x = frozen.rvs(size=(n - 2, BATCH), random_state=rng)
    tails = frozen.ppf(np.array([[1e-6], [1 - 1e-6]]) * np.ones((1, BATCH)))
    return np.concatenate([x, tails]).astype(np.float64)


def _tol(dtype, ref):
    return C * unit_roundoff(dtype), C * unit_roundoff(dtype) * max(1.0, float(np.max(np.abs(ref[np.isfinite(ref)]), initial=0)))


@pytest.mark.dtypes(torch.float32, torch.float64)
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.smoke) if n == "Normal" else n for n in sorted(CASES)])
def test_distribution_oracle(device, dtype, name, np_rng):
    """log_prob (incl. far tails), cdf/icdf/entropy where torch implements them, mean/variance/stddev and
    the mode against scipy.stats (or quadrature of the closed-form density) for a batch of random
    parameters; catches a log_prob missing a term (log sigma, a normaliser, lgamma), swapped parameters
    (rate vs scale), cdf/icdf of the wrong tail, a wrong entropy constant and a variance returned as std."""
    case = _case(name)
    p = case.params(np_rng)
    p = {k: to_numpy(torch.tensor(v, dtype=dtype)) for k, v in p.items()}  # the dtype-rounded parameters
    d = case.make(_tensors(p, dtype, device))
    frozen = case.oracle(p)
    u = unit_roundoff(dtype)
    x = _values(case, p, np_rng)
    xt = torch.tensor(x, dtype=dtype, device=device)
    X = to_numpy(xt)
    ref = frozen.logpmf(X) if case.discrete else frozen.logpdf(X)
    rtol, atol = _tol(dtype, ref)
    assert_close(f"{name}.log_prob", d.log_prob(xt), ref, rtol=rtol, atol=atol, check_dtype=dtype,
                 args=f"{p}, values incl. 1e-6 tails")
    implements = case.implements
    if "cdf" in implements:
        F = frozen.cdf(X)
        dens = np.exp(frozen.logpdf(X))
        # a probability is computed to absolute accuracy c u, plus the input's conditioning |x f(x)|;
        # relative accuracy in the lower tail is test_cdf_lower_tail's
        scale = 1.0 + np.abs(X * dens)
        got = to_numpy(d.cdf(xt))
        assert_close(f"{name}.cdf", (got - F) / scale, np.zeros_like(F), rtol=0.0, atol=C * u,
                     args=f"{p}: (cdf - F) in units of 1 + |x f(x)|")
    if "icdf" in implements:
        q = np_rng.uniform(0.001, 0.999, (40, BATCH))
        qt = torch.tensor(q, dtype=dtype, device=device)
        Q = to_numpy(qt)
        ref_x = frozen.ppf(Q)
        scale = np.abs(ref_x) + Q / np.exp(frozen.logpdf(ref_x))
        got = to_numpy(d.icdf(qt))
        assert_close(f"{name}.icdf", (got - ref_x) / scale, np.zeros_like(Q), rtol=0.0, atol=C * u,
                     args=f"{p}: (icdf - F^-1) in units of |x| + p/f(x)")
    if "entropy" in implements:
        ref_h = frozen.entropy()
        rtol, atol = _tol(dtype, ref_h)
        assert_close(f"{name}.entropy", d.entropy(), ref_h, rtol=rtol * 4, atol=atol * 4, args=f"{p}")
    if case.no_mean:
        assert_true(f"{name}.mean", torch.isnan(d.mean).all() or torch.isinf(d.mean).all(),
                    f"mean {d.mean} should be undefined (NaN) or infinite", args=str(p))
        assert_true(f"{name}.variance", torch.isinf(d.variance).all(), f"variance {d.variance} should be inf", args=str(p))
    else:
        rm, rv = np.asarray(frozen.mean()), np.asarray(frozen.var())
        for what, got, want in (("mean", d.mean, rm), ("variance", d.variance, rv), ("stddev", d.stddev, np.sqrt(rv))):
            rtol, atol = _tol(dtype, want)
            assert_close(f"{name}.{what}", got, want, rtol=rtol * 4, atol=atol * 4, check_dtype=dtype, args=f"{p}")
    if case.mode is not None:
        rtol, atol = _tol(dtype, case.mode(p))
        assert_close(f"{name}.mode", d.mode, case.mode(p), rtol=rtol, atol=atol, args=f"{p}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_sample_moments(device, name, seed):
    """40,000 float32 draws per batch member: the sample mean within 6 standard errors of the mean, the
    sample variance within 6 standard errors (from the fourth central moment), and the empirical CDF at
    the oracle's 10/50/90 % quantiles within 6 binomial standard errors (heavy tails: the CDF check only);
    catches a sampler with the wrong scale or location, a parameter swap, and a biased or truncated tail."""
    _sample_moments(device, name, seed, torch.float32)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_sample_moments_float64(device, name, seed):
    """The same 6-sigma sample checks with float64 parameters (the samplers' float64 kernels: _standard_gamma,
    binomial, poisson and the transforms run different code per dtype)."""
    _sample_moments(device, name, seed, torch.float64)


def _sample_moments(device, name, seed, dtype):
    case = _case(name)
    rng = np.random.default_rng(seed)
    p = {k: to_numpy(torch.tensor(v, dtype=dtype)) for k, v in case.params(rng).items()}
    d = case.make(_tensors(p, dtype, device))
    gen_seed = seed % (2 ** 31)
    torch.manual_seed(gen_seed)
    s = to_numpy(d.sample((NS,)))
    assert_equal(f"{name}.sample", s.shape, (NS, BATCH), args="sample_shape + batch_shape")
    frozen = case.oracle(p)
    if not case.heavy:
        mean, var = np.asarray(frozen.mean()), np.asarray(frozen.var())
        assert_close(f"{name}.sample", s.mean(0), mean, rtol=0.0, atol=float(np.max(6 * np.sqrt(var / NS))),
                     args=f"{p}: sample mean of {NS} draws, 6 sigma")
        kurt = np.asarray(frozen.stats(moments="k"), dtype=np.float64)
        mu4 = (kurt + 3.0) * var ** 2
        se = np.sqrt(np.maximum(mu4 - var ** 2, 0) / NS)
        assert_close(f"{name}.sample", s.var(0, ddof=1), var, rtol=0.0, atol=float(np.max(6 * se)),
                     args=f"{p}: sample variance, 6 sigma (fourth moment)")
    for q in (0.1, 0.5, 0.9):
        x_q = frozen.ppf(np.full(BATCH, q))
        target = frozen.cdf(x_q)  # discrete: P(X <= x_q) is not q
        frac = (s <= x_q[None, :] + (1e-9 if case.discrete else 0)).mean(0)
        se = np.sqrt(target * (1 - target) / NS)
        assert_close(f"{name}.sample", frac, target, rtol=0.0, atol=float(np.max(6 * se)) + 1e-12,
                     args=f"{p}: empirical CDF at the {q:.0%} quantile, 6 sigma")


def _fd_mean_grad(case, p, key):
    """d mean / d param by a central difference of the float64 closed-form (or scipy) mean."""
    mean_fn = case.mean_fn or (lambda q: np.asarray(case.oracle(q).mean()))
    h = 1e-6 * np.maximum(np.abs(p[key]), 1.0)
    hi = dict(p)
    lo = dict(p)
    hi[key] = p[key] + h
    lo[key] = p[key] - h
    return (mean_fn(hi) - mean_fn(lo)) / (2 * h)


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.grad))
def test_rsample_gradient(device, name, seed):
    """rsample is reparameterized: per-sample gradients of 40,000 draws (one per parameter copy) average to
    the derivative of the closed-form mean within 6 standard errors (implicit reparameterization for
    Gamma/Beta/Chi2/StudentT/InverseGamma); catches a detached sample (no gradient), a gradient of the
    wrong sign or scale, and has_rsample claimed without a working rsample."""
    case = _case(name)
    assert_true(f"{name}.has_rsample", case.make(_tensors(case.params(np.random.default_rng(0)), torch.float64, device)).has_rsample,
                "has_rsample is False", args="")
    rng = np.random.default_rng(seed)
    p1 = {k: v[0] for k, v in case.params(rng).items()}
    torch.manual_seed(seed % (2 ** 31))
    for key in case.grad:
        leaves = {k: torch.full((NS,), float(v), dtype=torch.float64, device=device, requires_grad=(k == key))
                  for k, v in p1.items()}
        x = case.make(leaves).rsample()
        x.sum().backward()
        g = to_numpy(leaves[key].grad)
        assert_true(f"{name}.rsample", np.all(np.isfinite(g)) and np.any(g != 0),
                    f"gradient w.r.t. {key} is zero or non-finite", args=key)
        want = float(_fd_mean_grad(case, {k: np.array([v]) for k, v in p1.items()}, key)[0])
        assert_close(f"{name}.rsample", float(g.mean()), want, rtol=0.0, atol=6 * float(g.std()) / math.sqrt(NS) + 1e-9,
                     args=f"{p1}: mean per-sample d x / d {key}, 6 sigma")


@pytest.mark.parametrize("name", sorted(CASES))
def test_validate_args(device, name, np_rng):
    """validate_args=True: a parameter outside its constraint raises ValueError at construction, and
    log_prob of a value outside the support raises ValueError; catches validation silently skipped."""
    case = _case(name)
    p = case.params(np_rng)
    for key, bad in case.bad.items():
        q = dict(p)
        q[key] = np.full(BATCH, bad)
        assert_raises(f"{name}", ValueError, case.make, _tensors(q, torch.float32, device), validate_args=True,
                      args=f"{key}={bad}")
    d = case.make(_tensors(p, torch.float32, device), validate_args=True)
    out = torch.full((BATCH,), case.outside, dtype=torch.float32, device=device)
    assert_raises(f"{name}.log_prob", ValueError, d.log_prob, out, args=f"value {case.outside} outside the support")


@pytest.mark.parametrize("name", sorted(CASES))
def test_shapes_and_expand(device, name, np_rng):
    """batch_shape equals the broadcast parameter shape and event_shape is () for these; expand((4, 3)) has
    that batch_shape and the same log_prob broadcast; sample((2, 5)) is (2, 5) + batch_shape; catches expand
    that does not broadcast parameters and sample shapes that drop the batch."""
    case = _case(name)
    p = case.params(np_rng)
    d = case.make(_tensors(p, torch.float32, device))
    assert_equal(f"{name}.batch_shape", tuple(d.batch_shape), (BATCH,), args="")
    assert_equal(f"{name}.event_shape", tuple(d.event_shape), (), args="")
    e = d.expand(torch.Size((4, BATCH)))
    assert_equal(f"{name}.expand", tuple(e.batch_shape), (4, BATCH), args="(4, 3)")
    x = torch.tensor(_values(case, p, np_rng, n=6)[:4], dtype=torch.float32, device=device)
    assert_close(f"{name}.expand", e.log_prob(x), to_numpy(d.log_prob(x)), op="elementwise", args="log_prob broadcast")
    assert_equal(f"{name}.sample", tuple(e.sample((2, 5)).shape), (2, 5, 4, BATCH), args="sample((2, 5)) of expanded")


# ----------------------------------------------------------------------------------------- the rest


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_categorical_and_one_hot(device, dtype, np_rng):
    """Categorical (probs and logits, unnormalised probs) and OneHotCategorical(+StraightThrough) against
    the closed forms: log_prob = log p_k, entropy -sum p log p, mode argmax, mean/variance NaN for
    Categorical, event_shape (k,) for the one-hot forms; sample frequencies within 6 sigma;
    straight-through gradient equal to the probability path; catches unnormalised probs used as is and
    logits treated as probs."""
    w = np_rng.uniform(0.1, 3.0, (BATCH, 5))
    pr = w / w.sum(-1, keepdims=True)
    for form, d in (("probs", D.Categorical(probs=torch.tensor(w, dtype=dtype, device=device))),
                    ("logits", D.Categorical(logits=torch.tensor(np.log(w) + 3.0, dtype=dtype, device=device)))):
        k = torch.tensor(np_rng.integers(0, 5, (7, BATCH)), device=device)
        assert_close("Categorical.log_prob", d.log_prob(k), np.log(np.take_along_axis(pr.T, to_numpy(k), 0)),
                     rtol=C * unit_roundoff(dtype), atol=C * unit_roundoff(dtype), args=form)
        assert_close("Categorical.entropy", d.entropy(), -(pr * np.log(pr)).sum(-1), rtol=C * unit_roundoff(dtype),
                     atol=C * unit_roundoff(dtype), args=form)
        assert_equal("Categorical.mode", d.mode, pr.argmax(-1), args=form)
        assert_true("Categorical.mean", torch.isnan(d.mean).all() and torch.isnan(d.variance).all(),
                    "mean/variance of a Categorical should be NaN (undefined)", args=form)
        s = to_numpy(d.sample((NS,)))
        freq = np.stack([(s == j).mean(0) for j in range(5)], -1)
        assert_close("Categorical.sample", freq, pr, rtol=0.0, atol=float(6 * np.sqrt(0.25 / NS)), args=form + ", frequencies")
    oh = D.OneHotCategorical(probs=torch.tensor(pr, dtype=dtype, device=device))
    assert_equal("OneHotCategorical.event_shape", tuple(oh.event_shape), (5,), args="")
    x = oh.sample((4,))
    assert_true("OneHotCategorical.sample", bool(((x == 0) | (x == 1)).all() and (x.sum(-1) == 1).all()),
                "samples are not one-hot", args="")
    assert_close("OneHotCategorical.log_prob", oh.log_prob(x), np.log((to_numpy(x) * pr).sum(-1)),
                 rtol=C * unit_roundoff(dtype), atol=C * unit_roundoff(dtype), args="")
    probs = torch.tensor(pr, dtype=torch.float64, device=device, requires_grad=True)
    sts = D.OneHotCategoricalStraightThrough(probs=probs)
    y = sts.rsample()
    wts = torch.tensor(np_rng.uniform(-1, 1, (BATCH, 5)), dtype=torch.float64, device=device)
    (y * wts).sum().backward()
    # straight-through: d(w . y)/d probs is the gradient of w . p through the normalisation p = r / sum(r)
    W = to_numpy(wts)
    raw = to_numpy(probs)
    pn = raw / raw.sum(-1, keepdims=True)
    want = (W - (W * pn).sum(-1, keepdims=True)) / raw.sum(-1, keepdims=True)
    assert_close("OneHotCategoricalStraightThrough.rsample", probs.grad, want, op="gradient",
                 args="straight-through gradient = gradient of the probabilities")


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_multivariate_normal(device, dtype, np_rng, seed):
    """MultivariateNormal from covariance_matrix, precision_matrix and scale_tril (the same distribution),
    and LowRankMultivariateNormal (cov = W W^T + diag D), against scipy.stats.multivariate_normal:
    log_prob, entropy, mean, variance (the diagonal), event/batch shapes; sample mean and covariance of
    40,000 draws within 6 sigma; rsample gradient of loc is the identity; catches precision_matrix
    treated as a covariance, a Cholesky factor used transposed and a log-det term missing."""
    k = 4
    loc = np_rng.uniform(-1, 1, (BATCH, k))
    A = np_rng.standard_normal((BATCH, k, k))
    cov = A @ np.swapaxes(A, -1, -2) + k * np.eye(k)
    W = np_rng.standard_normal((BATCH, k, 2))
    Dg = np_rng.uniform(0.5, 2, (BATCH, k))
    tt = lambda a: torch.tensor(a, dtype=dtype, device=device)  # noqa: E731
    u = unit_roundoff(dtype)
    forms = {
        "covariance_matrix": D.MultivariateNormal(tt(loc), covariance_matrix=tt(cov)),
        "precision_matrix": D.MultivariateNormal(tt(loc), precision_matrix=tt(np.linalg.inv(cov))),
        "scale_tril": D.MultivariateNormal(tt(loc), scale_tril=tt(np.linalg.cholesky(cov))),
    }
    lr = D.LowRankMultivariateNormal(tt(loc), tt(W), tt(Dg))
    covs = {n: cov for n in forms}
    covs["lowrank"] = W @ np.swapaxes(W, -1, -2) + np.eye(k) * Dg[:, None, :]
    forms["lowrank"] = lr
    x = np_rng.standard_normal((6, BATCH, k)) * 2
    for name, d in forms.items():
        C_ = covs[name]
        api = "LowRankMultivariateNormal" if name == "lowrank" else "MultivariateNormal"
        assert_equal(f"{api}.event_shape", (tuple(d.batch_shape), tuple(d.event_shape)), ((BATCH,), (k,)), args=name)
        ref = np.stack([st.multivariate_normal(loc[b], C_[b]).logpdf(x[:, b]) for b in range(BATCH)], -1)
        tol = C * u * 4 * (1 + float(np.abs(ref).max()))  # inverse/solve of a kappa ~ 10 matrix
        assert_close(f"{api}.log_prob", d.log_prob(tt(x)), ref, rtol=0.0, atol=tol, args=name)
        ent = np.array([st.multivariate_normal(loc[b], C_[b]).entropy() for b in range(BATCH)])
        assert_close(f"{api}.entropy", d.entropy(), ent, rtol=0.0, atol=tol, args=name)
        assert_close(f"{api}.mean", d.mean, loc, rtol=0.0, atol=C * u, args=name)
        assert_close(f"{api}.variance", d.variance, np.diagonal(C_, axis1=-2, axis2=-1), rtol=C * u * 4, atol=C * u * 4,
                     args=name)
    torch.manual_seed(seed % (2 ** 31))
    d = forms["scale_tril"]
    s = to_numpy(d.sample((NS,)))
    var = np.diagonal(cov, axis1=-2, axis2=-1)
    assert_close("MultivariateNormal.sample", s.mean(0), loc, rtol=0.0, atol=float(6 * np.sqrt(var.max() / NS)),
                 args="sample mean, 6 sigma")
    emp = np.einsum("nbi,nbj->bij", s - s.mean(0), s - s.mean(0)) / (NS - 1)
    se = np.sqrt((cov ** 2 + var[..., :, None] * var[..., None, :]) / NS)  # Var of a Gaussian sample covariance
    assert_close("MultivariateNormal.sample", emp, cov, rtol=0.0, atol=float(6 * se.max()), args="sample covariance, 6 sigma")
    L = torch.tensor(np.linalg.cholesky(cov[0]), dtype=torch.float64, device=device)
    locs = torch.zeros(NS, k, dtype=torch.float64, device=device, requires_grad=True)
    D.MultivariateNormal(locs, scale_tril=L).rsample().sum().backward()
    assert_close("MultivariateNormal.rsample", locs.grad, np.ones((NS, k)), op="gradient", args="d x / d loc = 1")


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_dirichlet_multinomial_wishart(device, dtype, np_rng, seed):
    """Dirichlet, Multinomial and Wishart against scipy.stats.dirichlet / multinomial / wishart per batch
    member: log_prob, entropy, mean, variance, mode (Dirichlet, alpha > 1); Dirichlet sample mean within 6
    sigma; Multinomial samples sum to total_count; catches a Dirichlet normaliser with the wrong sign, a
    multinomial coefficient missing and Wishart df off by one."""
    u = unit_roundoff(dtype)
    tt = lambda a: torch.tensor(a, dtype=dtype, device=device)  # noqa: E731
    alpha = np_rng.uniform(1.5, 5, (BATCH, 4))
    d = D.Dirichlet(tt(alpha))
    A = to_numpy(tt(alpha))
    x = np.stack([st.dirichlet(A[b]).rvs(5, random_state=np_rng) for b in range(BATCH)], 1)
    xt = tt(x)
    X = to_numpy(xt)
    X = X / X.sum(-1, keepdims=True)
    ref = np.stack([st.dirichlet(A[b]).logpdf(X[:, b].T) for b in range(BATCH)], -1)
    tol = C * u * (1 + float(np.abs(ref).max()))
    assert_close("Dirichlet.log_prob", d.log_prob(tt(X)), ref, rtol=0.0, atol=tol, args="")
    assert_close("Dirichlet.entropy", d.entropy(), [st.dirichlet(A[b]).entropy() for b in range(BATCH)], rtol=0.0,
                 atol=tol, args="")
    assert_close("Dirichlet.mean", d.mean, np.stack([st.dirichlet(A[b]).mean() for b in range(BATCH)]), rtol=C * u, atol=C * u, args="")
    assert_close("Dirichlet.variance", d.variance, np.stack([st.dirichlet(A[b]).var() for b in range(BATCH)]),
                 rtol=C * u, atol=C * u, args="")
    assert_close("Dirichlet.mode", d.mode, (A - 1) / (A.sum(-1, keepdims=True) - A.shape[-1]), rtol=C * u, atol=C * u, args="")
    torch.manual_seed(seed % (2 ** 31))
    s = to_numpy(d.sample((NS,)))
    mvar = np.stack([st.dirichlet(A[b]).var() for b in range(BATCH)])
    assert_close("Dirichlet.sample", s.mean(0), A / A.sum(-1, keepdims=True), rtol=0.0,
                 atol=float(6 * np.sqrt(mvar.max() / NS)), args="sample mean, 6 sigma")
    probs = np_rng.uniform(0.1, 1, (BATCH, 4))
    probs /= probs.sum(-1, keepdims=True)
    m = D.Multinomial(12, probs=tt(probs))
    P = to_numpy(tt(probs))
    P = P / P.sum(-1, keepdims=True)
    counts = np.stack([st.multinomial(12, P[b]).rvs(5, random_state=np_rng) for b in range(BATCH)], 1).astype(float)
    ref = np.stack([st.multinomial(12, P[b]).logpmf(counts[:, b]) for b in range(BATCH)], -1)
    assert_close("Multinomial.log_prob", m.log_prob(tt(counts)), ref, rtol=0.0, atol=C * u * (1 + float(np.abs(ref).max())), args="")
    assert_close("Multinomial.mean", m.mean, 12 * P, rtol=C * u, atol=C * u, args="")
    assert_close("Multinomial.variance", m.variance, 12 * P * (1 - P), rtol=C * u, atol=C * u, args="")
    ms = m.sample((1000,))
    assert_equal("Multinomial.sample", to_numpy(ms.sum(-1)), np.full((1000, BATCH), 12.0), args="rows sum to total_count")
    S = np.array([[2.0, 0.3], [0.3, 1.0]])
    w = D.Wishart(tt(np.array([5.0, 7.0])), covariance_matrix=tt(np.stack([S, 2 * S])))
    dfs = [5.0, 7.0]
    Ss = [S, 2 * S]
    V = np.stack([st.wishart(dfs[b], Ss[b]).rvs(3, random_state=np_rng) for b in range(2)], 1)
    ref = np.stack([st.wishart(dfs[b], Ss[b]).logpdf(np.moveaxis(V[:, b], 0, -1)) for b in range(2)], -1)
    assert_close("Wishart.log_prob", w.log_prob(tt(V)), ref, rtol=0.0, atol=C * u * 4 * (1 + float(np.abs(ref).max())), args="")
    assert_close("Wishart.entropy", w.entropy(), [st.wishart(dfs[b], Ss[b]).entropy() for b in range(2)], rtol=0.0,
                 atol=C * u * 40, args="")
    assert_close("Wishart.mean", w.mean, np.stack([dfs[b] * Ss[b] for b in range(2)]), rtol=C * u, atol=C * u, args="")
    var = np.stack([dfs[b] * (Ss[b] ** 2 + np.outer(np.diag(Ss[b]), np.diag(Ss[b]))) for b in range(2)])
    assert_close("Wishart.variance", w.variance, var, rtol=C * u, atol=C * u, args="df (S_ij^2 + S_ii S_jj)")


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_composite_distributions(device, dtype, np_rng):
    """Independent (log_prob sums the reinterpreted dims, event_shape grows), MixtureSameFamily of Normals
    (log_prob = logsumexp(log w + log N), mean, variance), TransformedDistribution(Normal, Affine) = Normal,
    RelaxedBernoulli and RelaxedOneHotCategorical against their closed-form densities (LogisticNormal:
    test_logistic_normal_documented_relation);
    catches a mixture that ignores the weights and a transform Jacobian missing or of the wrong sign."""
    u = unit_roundoff(dtype)
    tt = lambda a: torch.tensor(a, dtype=dtype, device=device)  # noqa: E731
    loc = np_rng.uniform(-1, 1, (BATCH, 4))
    scale = np_rng.uniform(0.5, 2, (BATCH, 4))
    ind = D.Independent(D.Normal(tt(loc), tt(scale)), 1)
    assert_equal("Independent.event_shape", (tuple(ind.batch_shape), tuple(ind.event_shape)), ((BATCH,), (4,)), args="")
    x = np_rng.standard_normal((5, BATCH, 4))
    ref = st.norm(loc, scale).logpdf(x).sum(-1)
    assert_close("Independent.log_prob", ind.log_prob(tt(x)), ref, rtol=C * u, atol=C * u * 10, args="")
    w = np_rng.uniform(0.1, 1, (BATCH, 4))
    w /= w.sum(-1, keepdims=True)
    mix = D.MixtureSameFamily(D.Categorical(probs=tt(w)), D.Normal(tt(loc), tt(scale)))
    y = np_rng.standard_normal((6, BATCH)) * 2
    ref = sp.logsumexp(np.log(w) + st.norm(loc, scale).logpdf(y[..., None]), axis=-1)
    assert_close("MixtureSameFamily.log_prob", mix.log_prob(tt(y)), ref, rtol=C * u, atol=C * u * 10, args="")
    mmean = (w * loc).sum(-1)
    assert_close("MixtureSameFamily.mean", mix.mean, mmean, rtol=C * u, atol=C * u, args="")
    assert_close("MixtureSameFamily.variance", mix.variance, (w * (scale ** 2 + loc ** 2)).sum(-1) - mmean ** 2,
                 rtol=C * u, atol=C * u * 10, args="")
    a, s = 1.5, -2.0
    td = D.TransformedDistribution(D.Normal(tt(loc[:, 0]), tt(scale[:, 0])), [D.AffineTransform(a, s)])
    assert_close("TransformedDistribution.log_prob", td.log_prob(tt(y)), st.norm(a + s * loc[:, 0], abs(s) * scale[:, 0]).logpdf(y),
                 rtol=C * u, atol=C * u * 10, args="Affine(1.5, -2) of Normal")
    # RelaxedBernoulli (binary Concrete): p(y) = lam a y^(-lam-1) (1-y)^(-lam-1) / (a y^-lam + (1-y)^-lam)^2
    temp, pr = 0.7, np_rng.uniform(0.2, 0.8, BATCH)
    rb = D.RelaxedBernoulli(tt(temp), probs=tt(pr))
    yb = np_rng.uniform(0.05, 0.95, (6, BATCH))
    al = pr / (1 - pr)
    ref = (np.log(temp * al) - (temp + 1) * (np.log(yb) + np.log1p(-yb))
           - 2 * np.log(al * yb ** -temp + (1 - yb) ** -temp))
    assert_close("RelaxedBernoulli.log_prob", rb.log_prob(tt(yb)), ref, rtol=C * u * 4, atol=C * u * 40, args="")
    # RelaxedOneHotCategorical (Concrete): (n-1)! lam^(n-1) prod(a_k y_k^(-lam-1)) / (sum a_i y_i^-lam)^n
    n = 4
    ro = D.RelaxedOneHotCategorical(tt(temp), probs=tt(w))
    yc = np_rng.dirichlet(np.ones(n), (6, BATCH))
    yc = to_numpy(tt(yc))
    yc /= yc.sum(-1, keepdims=True)
    ref = (math.lgamma(n) + (n - 1) * math.log(temp) + (np.log(w) - (temp + 1) * np.log(yc)).sum(-1)
           - n * np.log((w * yc ** -temp).sum(-1)))
    assert_close("RelaxedOneHotCategorical.log_prob", ro.log_prob(tt(yc)), ref, rtol=C * u * 4, atol=C * u * 40, args="")


@pytest.mark.dtypes(torch.float32, torch.float64)
@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if "cdf" in c.implements))
def test_cdf_lower_tail(device, dtype, name, np_rng):
    """cdf in the lower tail (F between 1e-12 and 1e-3 in float64, 1e-6 and 1e-3 in float32) is RELATIVELY
    accurate (units of |F| + |x f(x)|, as scipy.stats delivers). Computing F as 1 - exp(..), 1 - S(x) or
    0.5 * (1 + erf(..)) cancels there: torch 2.13's Normal/LogNormal/HalfNormal (pytorch/pytorch#187806),
    Exponential, Weibull, Laplace, Cauchy, HalfCauchy, Gumbel, Pareto, Kumaraswamy, InverseGamma and
    ContinuousBernoulli cdfs lose digits (float32: up to 2 % at F = 1e-6); real findings, one test per
    distribution so the expectation manifest names each."""
    case = _case(name)
    p = {k: to_numpy(torch.tensor(v, dtype=dtype)) for k, v in case.params(np_rng).items()}
    frozen = case.oracle(p)
    lo = 1e-12 if dtype == torch.float64 else 1e-6
    q = np.exp(np_rng.uniform(math.log(lo), math.log(1e-3), (20, BATCH)))
    xt = torch.tensor(frozen.ppf(q), dtype=dtype, device=device)
    X = to_numpy(xt)
    F = frozen.cdf(X)
    scale = np.abs(F) + np.abs(X * np.exp(frozen.logpdf(X)))
    d = case.make(_tensors(p, dtype, device))
    assert_close(f"{name}.cdf", (to_numpy(d.cdf(xt)) - F) / scale, np.zeros_like(F), rtol=0.0,
                 atol=C * unit_roundoff(dtype), args=f"{p}: lower tail, units of |F| + |x f(x)|")


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_kumaraswamy_mode(device, dtype, np_rng):
    """Kumaraswamy(a, b).mode = ((a - 1) / (a b - 1))^(1/a) for a, b >= 1. torch 2.13 evaluates log1p(-a) =
    log(1 - a), NaN for every a > 1, so the mode is NaN wherever it exists; a real finding."""
    a, b = np_rng.uniform(1.5, 4, BATCH), np_rng.uniform(1.5, 4, BATCH)
    d = D.Kumaraswamy(torch.tensor(a, dtype=dtype, device=device), torch.tensor(b, dtype=dtype, device=device))
    A, B = to_numpy(d.concentration1), to_numpy(d.concentration0)
    assert_close("Kumaraswamy.mode", d.mode, ((A - 1) / (A * B - 1)) ** (1 / A), rtol=C * unit_roundoff(dtype),
                 atol=C * unit_roundoff(dtype), args=f"a={A}, b={B}")


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_multinomial_entropy(device, dtype, np_rng):
    """Multinomial(12, p).entropy against scipy.stats.multinomial (exact enumeration). torch 2.13 builds
    torch.tensor(total_count), an int64 tensor, so lgamma(n + 1) is evaluated in the default float32 and a
    float64 entropy is off by ~5e-7; a real finding (float32 passes)."""
    probs = np_rng.uniform(0.1, 1, (BATCH, 4))
    probs /= probs.sum(-1, keepdims=True)
    m = D.Multinomial(12, probs=torch.tensor(probs, dtype=dtype, device=device))
    P = to_numpy(m.probs)
    ref = [st.multinomial(12, P[b] / P[b].sum()).entropy() for b in range(BATCH)]
    assert_close("Multinomial.entropy", m.entropy(), ref, rtol=0.0, atol=C * unit_roundoff(dtype) * 10, args="n=12")


def test_logistic_normal_documented_relation(device, seed):
    """The LogisticNormal docstring: X ~ LogisticNormal(loc, scale) and Y = log(X / (1 - X.cumsum(-1)))[..., :-1]
    is Normal(loc, scale). 40,000 draws: Y's sample mean within 6 sigma of loc and its std within 6 sigma of
    scale. torch 2.13's StickBreakingTransform subtracts log(K - i) before the sigmoid, so Y's mean is
    loc - log(K - i) (the last coordinate alone is right): the documented relation does not hold (a doc or
    transform finding)."""
    loc = torch.tensor([0.3, -0.2, 0.5, 0.1], dtype=torch.float64, device=device)
    scale = torch.tensor([1.0, 0.5, 2.0, 1.5], dtype=torch.float64, device=device)
    torch.manual_seed(seed % (2 ** 31))
    x = D.LogisticNormal(loc, scale).sample((NS,))
    y = to_numpy(torch.log(x / (1 - x.cumsum(-1)))[..., :-1])
    S = to_numpy(scale)
    assert_close("LogisticNormal.sample", y.mean(0), to_numpy(loc), rtol=0.0, atol=float(6 * S.max() / math.sqrt(NS)),
                 args="documented Y = log(X / (1 - cumsum X)) ~ Normal(loc, scale): mean")
    assert_close("LogisticNormal.sample", y.std(0), S, rtol=0.0, atol=float(6 * S.max() / math.sqrt(2 * NS)),
                 args="std")


def test_kl_divergence(device, np_rng):
    """kl_divergence for Normal, Bernoulli, Categorical, Exponential, Gamma, Beta, Poisson, Laplace, Uniform
    (nested and not: inf), Dirichlet and MultivariateNormal pairs against their closed forms; an
    unregistered pair raises NotImplementedError; catches a KL with the arguments swapped and a missing
    log-ratio term."""
    f64 = lambda a: torch.tensor(a, dtype=torch.float64, device=device)  # noqa: E731
    r = lambda a, b, n=BATCH: np_rng.uniform(a, b, n)  # noqa: E731
    m1, m2, s1, s2 = r(-1, 1), r(-1, 1), r(0.5, 2), r(0.5, 2)
    pairs = []
    pairs.append(("Normal", D.Normal(f64(m1), f64(s1)), D.Normal(f64(m2), f64(s2)),
                  np.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5))
    p, q = r(0.1, 0.9), r(0.1, 0.9)
    pairs.append(("Bernoulli", D.Bernoulli(f64(p)), D.Bernoulli(f64(q)),
                  p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))))
    P = np_rng.dirichlet(np.ones(5), BATCH)
    Q = np_rng.dirichlet(np.ones(5), BATCH)
    pairs.append(("Categorical", D.Categorical(f64(P)), D.Categorical(f64(Q)), (P * np.log(P / Q)).sum(-1)))
    l1, l2 = r(0.5, 3), r(0.5, 3)
    pairs.append(("Exponential", D.Exponential(f64(l1)), D.Exponential(f64(l2)), np.log(l1 / l2) + l2 / l1 - 1))
    a1, a2, b1, b2 = r(0.5, 5), r(0.5, 5), r(0.5, 3), r(0.5, 3)
    pairs.append(("Gamma", D.Gamma(f64(a1), f64(b1)), D.Gamma(f64(a2), f64(b2)),
                  (a1 - a2) * sp.digamma(a1) - sp.gammaln(a1) + sp.gammaln(a2) + a2 * (np.log(b1) - np.log(b2))
                  + a1 * (b2 - b1) / b1))
    pairs.append(("Beta", D.Beta(f64(a1), f64(b1)), D.Beta(f64(a2), f64(b2)),
                  sp.betaln(a2, b2) - sp.betaln(a1, b1) + (a1 - a2) * sp.digamma(a1) + (b1 - b2) * sp.digamma(b1)
                  + (a2 - a1 + b2 - b1) * sp.digamma(a1 + b1)))
    pairs.append(("Poisson", D.Poisson(f64(l1)), D.Poisson(f64(l2)), l1 * np.log(l1 / l2) - l1 + l2))
    pairs.append(("Laplace", D.Laplace(f64(m1), f64(s1)), D.Laplace(f64(m2), f64(s2)),
                  np.log(s2 / s1) + np.abs(m1 - m2) / s2 + s1 / s2 * np.exp(-np.abs(m1 - m2) / s1) - 1))
    lo1, w1 = r(-1, 0), r(0.5, 1)
    pairs.append(("Uniform", D.Uniform(f64(lo1), f64(lo1 + w1)), D.Uniform(f64(lo1 - 0.5), f64(lo1 + w1 + 1)),
                  np.log((w1 + 1.5) / w1)))
    pairs.append(("Uniform (not nested)", D.Uniform(f64(lo1), f64(lo1 + w1)), D.Uniform(f64(lo1 + 0.1), f64(lo1 + w1 + 1)),
                  np.full(BATCH, np.inf)))
    A1, A2 = np_rng.uniform(0.5, 4, (BATCH, 4)), np_rng.uniform(0.5, 4, (BATCH, 4))
    s1_, s2_ = A1.sum(-1), A2.sum(-1)
    pairs.append(("Dirichlet", D.Dirichlet(f64(A1)), D.Dirichlet(f64(A2)),
                  sp.gammaln(s1_) - sp.gammaln(A1).sum(-1) - sp.gammaln(s2_) + sp.gammaln(A2).sum(-1)
                  + ((A1 - A2) * (sp.digamma(A1) - sp.digamma(s1_)[:, None])).sum(-1)))
    k = 3
    mu1, mu2 = np_rng.standard_normal((BATCH, k)), np_rng.standard_normal((BATCH, k))
    B1, B2 = np_rng.standard_normal((BATCH, k, k)), np_rng.standard_normal((BATCH, k, k))
    C1 = B1 @ np.swapaxes(B1, -1, -2) + k * np.eye(k)
    C2 = B2 @ np.swapaxes(B2, -1, -2) + k * np.eye(k)
    C2i = np.linalg.inv(C2)
    dm = mu2 - mu1
    mvn = 0.5 * (np.trace(C2i @ C1, axis1=-2, axis2=-1) + np.einsum("bi,bij,bj->b", dm, C2i, dm) - k
                 + np.log(np.linalg.det(C2) / np.linalg.det(C1)))
    pairs.append(("MultivariateNormal", D.MultivariateNormal(f64(mu1), f64(C1)), D.MultivariateNormal(f64(mu2), f64(C2)), mvn))
    for name, p_, q_, ref in pairs:
        assert_close("torch.distributions.kl_divergence", D.kl_divergence(p_, q_), ref, rtol=1e-10, atol=1e-10,
                     args=name)
    assert_raises("torch.distributions.kl_divergence", NotImplementedError, D.kl_divergence,
                  D.Poisson(f64(l1)), D.Cauchy(f64(m1), f64(s1)), args="unregistered pair (Poisson, Cauchy)")
