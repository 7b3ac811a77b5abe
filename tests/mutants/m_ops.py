"""Planted bugs for § 3 the operator library (suites/ops): linalg, fft, special, distributions, random,
searching/histograms, scans, bitwise/integer arithmetic and the OpInfo lane. Each one is wrong only on a
path production code takes: a strided input, past the 32,768-element grain, one dtype, one argument."""
from __future__ import annotations

import math

import torch

from tests.mutants.base import _both, _patch, dense_view, mutant, reads_dense

GRAIN = 32_768  # ATen's parallel grain: kernels split work into chunks of this many elements
OPS = "suites/ops/"
OPINFO = (OPS + "test_opinfo_reference.py", OPS + "test_opinfo_consistency.py", OPS + "test_opinfo_autograd.py")


def _flat_index(t):
    return torch.arange(t.numel(), device=t.device).view(t.shape)


# --- linalg ----------------------------------------------------------------------------------------------
@mutant("ops", "linalg.solve reads a non-contiguous A as if it were dense (a LAPACK call given the wrong "
        "leading dimension for a strided batch)", paths=OPS + "test_linalg.py", select="test_solve")
def linalg_solve_strided_reads_dense():
    def make(orig):
        def bad(A, B, *a, **kw):
            return orig(dense_view(A) if reads_dense(A) else A, B, *a, **kw)
        return bad
    _patch(torch.linalg, "solve", make)


@mutant("ops", "linalg.eigh/eigvalsh ignore UPLO='U' and always read the lower triangle",
        paths=OPS + "test_linalg.py", select="test_eigh")
def linalg_eigh_ignores_uplo():
    for name in ("eigh", "eigvalsh"):
        _patch(torch.linalg, name, lambda orig: (lambda A, UPLO="L", **kw: orig(A, UPLO="L", **kw)))


@mutant("ops", "linalg.svd of a complex matrix returns Vh without the conjugate (V^T instead of V^H)",
        paths=OPS + "test_linalg.py", select="test_svd")
def linalg_svd_complex_vh_not_conjugated():
    def make(orig):
        def bad(A, full_matrices=True, **kw):
            U, S, Vh = orig(A, full_matrices=full_matrices, **kw)
            return torch.return_types.linalg_svd((U, S, Vh.conj() if Vh.is_complex() else Vh))
        return bad
    _patch(torch.linalg, "svd", make)


@mutant("ops", "linalg.vector_norm(dtype=float64) reduces in the input's float32 and only casts the result",
        paths=OPS + "test_linalg.py", select="test_vector_norm_dtype")
def linalg_vector_norm_dtype_casts_after():
    def make(orig):
        def bad(x, ord=2, dim=None, keepdim=False, *, dtype=None, out=None):
            if dtype is None or out is not None:
                return orig(x, ord, dim, keepdim, dtype=dtype, out=out)
            real = torch.empty(0, dtype=dtype).real.dtype
            return orig(x, ord, dim, keepdim).to(real)
        return bad
    _patch(torch.linalg, "vector_norm", make)


# --- fft -------------------------------------------------------------------------------------------------
@mutant("ops", "fft of more than 32,768 points (the large-transform plan) uses the conjugate twiddles: "
        "computes n * ifft", paths=OPS + "test_fft.py", select="test_fft_large")
def fft_large_conjugate_twiddles():
    def make(orig):
        def bad(input, n=None, dim=-1, norm=None, **kw):
            length = n if n is not None else input.shape[dim]
            if length > GRAIN and not kw:
                return orig(input.conj(), n=n, dim=dim, norm=norm).conj()
            return orig(input, n=n, dim=dim, norm=norm, **kw)
        return bad
    _patch(torch.fft, "fft", make)


@mutant("ops", "rfft reads a strided real input as if it were dense (ignores the input's stride)",
        paths=OPS + "test_fft.py", select="test_rfft_irfft")
def rfft_strided_reads_dense():
    def make(orig):
        def bad(input, *a, **kw):
            return orig(dense_view(input) if reads_dense(input) else input, *a, **kw)
        return bad
    _patch(torch.fft, "rfft", make)


@mutant("ops", "irfft with an odd n treats the last used bin as a Nyquist bin and drops its imaginary part",
        paths=OPS + "test_fft.py", select="test_rfft_irfft")
def irfft_odd_n_drops_last_imag():
    def make(orig):
        def bad(input, n=None, dim=-1, norm=None, **kw):
            if n is not None and n % 2 == 1 and input.is_complex() and n // 2 < input.shape[dim]:
                input = input.clone()
                input.narrow(dim, n // 2, 1).imag.zero_()
            return orig(input, n=n, dim=dim, norm=norm, **kw)
        return bad
    _patch(torch.fft, "irfft", make)


# --- special ---------------------------------------------------------------------------------------------
@mutant("ops", "special.erfcx loses its asymptotic branch: exp(x^2) * erfc(x) past x = 9 (float32) / 26 "
        "(float64), which overflows to inf * 0 = NaN", paths=OPS + "test_special.py", select="erfcx")
def special_erfcx_large_naive():
    def make(orig):
        def bad(x, **kw):
            r = orig(x, **kw)
            cut = 9.0 if x.dtype in (torch.float32, torch.bfloat16, torch.float16) else 26.0
            return torch.where(x > cut, torch.exp(x * x) * torch.special.erfc(x), r)
        return bad
    _patch(torch.special, "erfcx", make)


@mutant("ops", "special.xlog1py(0, -1) is NaN: computed as x * log1p(y) without the x == 0 case",
        paths=OPS + "test_special.py", select="xlog1py")
def special_xlog1py_zero_times_inf():
    def make(orig):
        def bad(x, y, **kw):
            x, y = torch.as_tensor(x), torch.as_tensor(y)
            return torch.where(torch.isnan(y), y, x * torch.log1p(y)).to(orig(x, y).dtype)
        return bad
    _patch(torch.special, "xlog1py", make)


@mutant("ops", "special.i0e on float64 input computes in float32 (a float64 kernel dispatching to the "
        "float32 implementation)", paths=OPS + "test_special.py", select="i0e")
def special_i0e_float64_in_float32():
    def make(orig):
        def bad(x, **kw):
            if isinstance(x, torch.Tensor) and x.dtype == torch.float64 and not kw:
                return orig(x.float()).double()
            return orig(x, **kw)
        return bad
    _patch(torch.special, "i0e", make)


# --- distributions ---------------------------------------------------------------------------------------
@mutant("ops", "the implicit reparameterization gradient of the standard gamma sampler is halved "
        "(Gamma/Chi2/StudentT/InverseGamma rsample gradients w.r.t. the concentration)",
        paths=OPS + "test_distributions.py", select="test_rsample_gradient")
def dist_standard_gamma_grad_halved():
    import torch.distributions.gamma as G

    orig = G._standard_gamma

    def bad(concentration):
        s = orig(concentration)
        return s.detach() + 0.5 * (s - s.detach())
    G._standard_gamma = bad


@mutant("ops", "Normal.cdf standardises with the variance instead of the standard deviation",
        paths=OPS + "test_distributions.py", select="test_distribution_oracle and Normal")
def dist_normal_cdf_uses_variance():
    import torch.distributions as D

    def bad(self, value):
        return 0.5 * (1 + torch.erf((value - self.loc) / (self.scale ** 2 * math.sqrt(2))))
    D.Normal.cdf = bad


@mutant("ops", "Categorical(logits=...) keeps the raw logits: log_prob is not normalised by logsumexp",
        paths=OPS + "test_distributions.py", select="test_categorical_and_one_hot")
def dist_categorical_logits_unnormalised():
    import torch.distributions as D

    orig = D.Categorical.__init__

    def bad(self, probs=None, logits=None, validate_args=None):
        orig(self, probs, logits, validate_args)
        if logits is not None:
            self.logits = logits
    D.Categorical.__init__ = bad


@mutant("ops", "MultivariateNormal(precision_matrix=P) treats P as the covariance matrix",
        paths=OPS + "test_distributions.py", select="test_multivariate_normal")
def dist_mvn_precision_as_covariance():
    import torch.distributions as D

    orig = D.MultivariateNormal.__init__

    def bad(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None, validate_args=None):
        if precision_matrix is not None:
            covariance_matrix, precision_matrix = precision_matrix, None
        orig(self, loc, covariance_matrix, precision_matrix, scale_tril, validate_args)
    D.MultivariateNormal.__init__ = bad


# --- random ----------------------------------------------------------------------------------------------
def _numel(args):
    size = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list, torch.Size)) else args
    return math.prod(int(s) for s in size)


@mutant("ops", "randn ignores generator= past 32,768 elements (the vectorised path draws from the global stream)",
        paths=OPS + "test_random.py")
def rng_randn_large_ignores_generator():
    def make(orig):
        def bad(*args, generator=None, **kw):
            if generator is not None and _numel(args) > GRAIN:
                return orig(*args, **kw)
            return orig(*args, generator=generator, **kw)
        return bad
    _patch(torch, "randn", make)


@mutant("ops", "manual_seed does not reset the cached second Box-Muller sample: after reseeding, a small randn "
        "(< 16 values, the scalar path) is shifted by one draw if normals were drawn before",
        paths=OPS + "test_random.py")
def rng_manual_seed_stale_normal_cache():
    state = {"drawn": False, "stale": False}
    orig_seed, orig_randn = torch.manual_seed, torch.randn

    def seed(s):
        state["stale"] = state["stale"] or state["drawn"]
        state["drawn"] = False
        return orig_seed(s)

    def randn(*args, **kw):
        if kw.get("generator") is None and kw.get("out") is None:
            if state["stale"] and _numel(args) < 16:
                orig_randn(1)  # the stale cached value is served first: the stream is one draw behind
            state["stale"] = False
            state["drawn"] = True
        return orig_randn(*args, **kw)
    torch.manual_seed = seed
    torch.random.manual_seed = seed
    torch.randn = randn


@mutant("ops", "randn of fewer than 16 values (the scalar Box-Muller path; 16 and more take the vectorised one) "
        "draws with variance 1/2", paths=OPS + "test_random.py")
def rng_randn_scalar_path_half_variance():
    def make(orig):
        def bad(*args, **kw):
            r = orig(*args, **kw)
            if 0 < r.numel() < 16 and r.is_floating_point():
                with torch.no_grad():
                    r.mul_(math.sqrt(0.5))
            return r
        return bad
    _patch(torch, "randn", make)


@mutant("ops", "bernoulli(p) with a non-contiguous p compares the wrong way on the strided kernel (draws 1 - p)",
        paths=OPS + "test_random.py", select="test_bernoulli")
def rng_bernoulli_strided_p_inverted():
    def make(orig):
        def bad(input, *a, **kw):
            if not a and "p" not in kw and isinstance(input, torch.Tensor) and not input.is_contiguous():
                input = 1 - input
            return orig(input, *a, **kw)
        return bad
    _patch(torch, "bernoulli", make)


@mutant("ops", "randperm(n) past 32,768 shuffles only the first 32,768 positions (the rest stay in order)",
        paths=OPS + "test_random.py", select="test_randperm")
def rng_randperm_large_partial_shuffle():
    def make(orig):
        def bad(n, *a, **kw):
            if n <= GRAIN or a or kw.get("out") is not None:
                return orig(n, *a, **kw)
            p = torch.arange(n, dtype=kw.get("dtype") or torch.int64, device=kw.get("device"))
            p[:GRAIN] = orig(GRAIN, **kw)
            return p
        return bad
    _patch(torch, "randperm", make)


# --- searching, sorting, histograms ----------------------------------------------------------------------
def _sort_args(args, kw, names):
    vals = dict(zip(names, args))
    vals.update({k: v for k, v in kw.items() if k in names})
    return vals


@mutant("ops", "stable descending sort is the reversed ascending sort: tied elements come out in reverse input order",
        paths=OPS + "test_search_hist.py", select="test_sort_stable")
def sort_stable_descending_reverses_ties():
    def make_sort(orig):
        def bad(input, *args, **kw):
            a = _sort_args(args, kw, ("dim", "descending"))
            if kw.get("stable") and a.get("descending") and kw.get("out") is None and input.dim() > 0:
                dim = a.get("dim", -1)
                v, i = orig(input, dim=dim, descending=False, stable=True)
                return torch.return_types.sort((v.flip(dim), i.flip(dim)))
            return orig(input, *args, **kw)
        return bad

    def make_argsort(orig):
        def bad(input, *args, **kw):
            a = _sort_args(args, kw, ("dim", "descending", "stable"))
            if a.get("stable") and a.get("descending") and input.dim() > 0:
                dim = a.get("dim", -1)
                return orig(input, dim=dim, descending=False, stable=True).flip(dim)
            return orig(input, *args, **kw)
        return bad
    _both("sort", make_sort)
    _both("argsort", make_argsort)


@mutant("ops", "histc's last bin is half-open: values equal to max are not counted",
        paths=OPS + "test_search_hist.py", select="test_histc")
def histc_max_not_counted():
    def make(orig):
        def bad(input, bins=100, min=0, max=0, **kw):
            if min < max:
                input = input[input != max]
            return orig(input, bins=bins, min=min, max=max, **kw)
        return bad
    _both("histc", make)


@mutant("ops", "searchsorted ignores side='right' / right=True when sorted_sequence is not contiguous",
        paths=OPS + "test_search_hist.py", select="test_searchsorted")
def searchsorted_strided_sequence_ignores_side():
    def make(orig):
        def bad(sorted_sequence, input, *a, **kw):
            if not sorted_sequence.is_contiguous():
                kw.pop("right", None)
                kw["side"] = "left"
            return orig(sorted_sequence, input, *a, **kw)
        return bad
    _patch(torch, "searchsorted", make)


# --- scans and elementwise -------------------------------------------------------------------------------
@mutant("ops", "cumsum past 32,768 elements along the dim scans each chunk without the carry of the previous ones",
        paths=OPS + "test_cumulative.py", select="test_cumsum")
def cumsum_chunks_lose_carry():
    def make(orig):
        def bad(input, dim, *a, **kw):
            if kw.get("out") is None and input.dim() and input.shape[dim] > GRAIN:
                return torch.cat([orig(c, dim, *a, **kw) for c in torch.split(input, GRAIN, dim)], dim)
            return orig(input, dim, *a, **kw)
        return bad
    _both("cumsum", make)


@mutant("ops", "cummax/cummin past 32,768 elements return indices relative to their chunk (index % 32768)",
        paths=OPS + "test_cumulative.py", select="test_cummax_cummin")
def cummax_chunk_relative_index():
    def make(kind):
        def wrap(orig):
            def bad(input, dim, **kw):
                v, i = orig(input, dim, **kw)
                if input.dim() and input.shape[dim] > GRAIN and not kw:
                    i = i % GRAIN
                return getattr(torch.return_types, kind)((v, i))
            return bad
        return wrap
    _both("cummax", make("cummax"))
    _both("cummin", make("cummin"))


@mutant("ops", "logcumsumexp computed naively as log(cumsum(exp(x))) (overflows past x = 88 in float32 / 709 in float64)",
        paths=OPS + "test_cumulative.py", select="test_logcumsumexp")
def logcumsumexp_naive():
    _both("logcumsumexp", lambda orig: (lambda input, dim, **kw: torch.log(torch.cumsum(torch.exp(input), dim))))


@mutant("ops", "hypot computed as sqrt(a*a + b*b): overflows (and underflows) where the result is representable",
        paths=OPS + "test_cumulative.py", select="test_hypot")
def hypot_naive():
    _both("hypot", lambda orig: (lambda a, b, **kw: torch.sqrt(a * a + b * b)))


# --- bitwise and integer arithmetic ----------------------------------------------------------------------
@mutant("ops", "bitwise_xor computes OR for the elements past the first 32,768 (a later chunk runs another kernel)",
        paths=OPS + "test_bitwise.py", select="test_bitwise_logic")
def xor_past_grain_is_or():
    def make(orig):
        def bad(a, b, *args, **kw):
            r = orig(a, b, *args, **kw)
            if isinstance(r, torch.Tensor) and r.numel() > GRAIN and not kw.get("out"):
                r = torch.where(_flat_index(r) >= GRAIN, torch.bitwise_or(a, b), r)
            return r
        return bad
    _both("bitwise_xor", make)
    _patch(torch.Tensor, "__xor__", make)


_BITS = {torch.int8: 8, torch.int16: 16, torch.int32: 32}


@mutant("ops", "right shift of int8/int16/int32 is logical (zero-filling) instead of arithmetic on negative values",
        paths=OPS + "test_bitwise.py", select="test_shifts")
def rshift_narrow_logical():
    def make(orig):
        def bad(a, b, *args, **kw):
            if isinstance(a, torch.Tensor) and a.dtype in _BITS and not kw.get("out") and not args:
                n = _BITS[a.dtype]
                ua = a.to(torch.int64) & ((1 << n) - 1)
                bb = b.to(torch.int64) if isinstance(b, torch.Tensor) else b
                return orig(ua, bb).to(a.dtype)
            return orig(a, b, *args, **kw)
        return bad
    _both("bitwise_right_shift", make)
    _patch(torch.Tensor, "__rshift__", make)


@mutant("ops", "int8/int16 multiplication saturates at the dtype's limits instead of wrapping modulo 2^bits",
        paths=OPS + "test_bitwise.py", select="test_integer_wraparound")
def mul_narrow_int_saturates():
    def make(orig):
        def bad(a, b, *args, **kw):
            if (isinstance(a, torch.Tensor) and a.dtype in (torch.int8, torch.int16) and not args and not kw
                    and (not isinstance(b, torch.Tensor) or b.dtype == a.dtype)):
                info = torch.iinfo(a.dtype)
                bb = b.to(torch.int64) if isinstance(b, torch.Tensor) else b
                return orig(a.to(torch.int64), bb).clamp(info.min, info.max).to(a.dtype)
            return orig(a, b, *args, **kw)
        return bad
    _both("mul", make)
    _patch(torch.Tensor, "__mul__", make)


@mutant("ops", "gcd keeps the sign of its first operand (C remainder semantics) instead of being non-negative",
        paths=OPS + "test_bitwise.py", select="test_gcd_lcm")
def gcd_signed():
    def make(orig):
        def bad(a, b, **kw):
            r = orig(a, b, **kw)
            return torch.where(torch.as_tensor(a) < 0, -r, r)
        return bad
    _both("gcd", make)


# --- the OpInfo lane -------------------------------------------------------------------------------------
@mutant("ops", "mul(out=) with a non-contiguous out computes into a temporary and returns it (out left untouched)",
        paths=OPINFO, select="test_out and float32-mul]")
def opinfo_mul_strided_out_ignored():
    def make(orig):
        def bad(a, b, *args, out=None, **kw):
            if out is not None and not out.is_contiguous():
                return orig(a, b, *args, **kw)
            return orig(a, b, *args, **kw) if out is None else orig(a, b, *args, out=out, **kw)
        return bad
    _patch(torch, "mul", make)


class _BadTanh(torch.autograd.Function):
    orig = None

    @staticmethod
    def forward(ctx, x):
        y = _BadTanh.orig(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        d = g * (1 - y * y)
        return d * 1.01 if d.dtype == torch.float32 else d


@mutant("ops", "tanh's float32 backward kernel is 1% off (the vectorised float32 path only; float64 is right)",
        paths=OPINFO, select="test_backward and float32-tanh]")
def opinfo_tanh_backward_float32_off():
    _BadTanh.orig = torch.tanh

    def make(orig):
        def bad(x, *a, **kw):
            if a or kw or not isinstance(x, torch.Tensor) or not x.requires_grad:
                return orig(x, *a, **kw)
            return _BadTanh.apply(x)
        return bad
    _both("tanh", make)


@mutant("ops", "clamp's batching rule drops max= under torch.func.vmap (the plain call is right)",
        paths=OPINFO, select="test_vmap and float32-clamp]")
def opinfo_clamp_vmap_drops_max():
    from torch._C._functorch import is_batchedtensor

    def make(orig):
        def bad(input, min=None, max=None, **kw):
            if isinstance(input, torch.Tensor) and is_batchedtensor(input) and min is not None:
                max = None
            return orig(input, min, max, **kw)
        return bad
    _both("clamp", make)


@mutant("ops", "the logsumexp kernel ignores keepdim=True (torch.logsumexp, Tensor.logsumexp and torch.special.logsumexp "
        "alike)", paths=OPINFO + (OPS + "test_special.py",), select="logsumexp")
def logsumexp_ignores_keepdim():
    def make(orig):
        def bad(input, dim, keepdim=False, **kw):
            return orig(input, dim, **kw)
        return bad
    _both("logsumexp", make)
    _patch(torch.special, "logsumexp", make)
