"""The catalogue of planted bugs. Each entry patches torch in the test process (and in forked
children); ``sections`` says which suite folders should catch it, ``paths`` (optional) where the runner
looks for the catch (see tests/mutants/base.py). The first mutants live here; later families in
tests/mutants/m_*.py, imported at the end so that MUTANTS holds them all."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from tests.mutants.base import MUTANTS, Mutant, _both, _NoOpContext, _patch, mutant  # noqa: F401 (re-exported)


# --- § 1 tensors ---------------------------------------------------------------------------------
@mutant("tensors", "argmax returns the last of tied maxima instead of the first",
        paths="suites/tensors/test_reductions.py")
def argmax_last_tie():
    def make(orig):
        def bad(input, dim=None, keepdim=False):
            if dim is None:
                flat = input.reshape(-1)
                return (flat.numel() - 1) - orig(flat.flip(0))
            d = dim % max(input.dim(), 1)
            return (input.shape[d] - 1) - orig(input.flip(d), dim=d, keepdim=keepdim)
        return bad
    _both("argmax", make)


@mutant("tensors", "sum ignores keepdim=True",
        paths="suites/tensors/test_reductions.py")
def sum_ignores_keepdim():
    def make(orig):
        def bad(input, *args, **kwargs):
            kwargs.pop("keepdim", None)
            if len(args) >= 2 and isinstance(args[1], bool):
                args = (args[0],) + args[2:]
            return orig(input, *args, **kwargs)
        return bad
    _both("sum", make)


@mutant("tensors", "view returns a copy (breaks aliasing with the base tensor)",
        paths="suites/tensors/test_shape_ops.py suites/tensors/test_properties.py")
def view_copies():
    def make(orig):
        def bad(self, *shape):
            return orig(self, *shape).clone() if not isinstance(shape[0] if shape else None, torch.dtype) else orig(self, *shape)
        return bad
    _patch(torch.Tensor, "view", make)


@mutant("tensors", "transpose returns a contiguous copy instead of a strided view",
        paths="suites/tensors/test_shape_ops.py suites/tensors/test_properties.py")
def transpose_copies():
    _both("transpose", lambda orig: (lambda input, d0, d1: orig(input, d0, d1).contiguous()))


@mutant("tensors", "matmul of batched operands ignores broadcasting of the batch dims (uses the first batch)",
        paths="suites/tensors/test_matmul.py")
def matmul_batch_broadcast():
    def make(orig):
        def bad(a, b, **kw):
            if a.dim() >= 3 and b.dim() >= 3 and a.shape[:-2] != b.shape[:-2]:
                return orig(a[(0,) * (a.dim() - 2)], b, **kw)
            return orig(a, b, **kw)
        return bad
    _both("matmul", make)


@mutant("tensors", "div with rounding_mode='floor' truncates toward zero",
        paths="suites/tensors/test_elementwise.py")
def div_floor_truncates():
    def make(orig):
        def bad(a, b, *, rounding_mode=None, **kw):
            return orig(a, b, rounding_mode="trunc" if rounding_mode == "floor" else rounding_mode, **kw)
        return bad
    _both("div", make)


@mutant("tensors", "max over a dim skips NaN (returns the max of the other values)",
        paths="suites/tensors/test_reductions.py")
def max_ignores_nan():
    def make(orig):
        def bad(input, *args, **kwargs):
            if input.is_floating_point() and torch.isnan(input).any():
                input = torch.nan_to_num(input, nan=float("-inf"))
            return orig(input, *args, **kwargs)
        return bad
    _both("max", make)


@mutant("tensors", "cumsum is exclusive (shifted by one)",
        paths="suites/tensors/test_reductions.py")
def cumsum_exclusive():
    def make(orig):
        def bad(input, dim, **kw):
            return orig(input, dim, **kw) - input.to(orig(input, dim, **kw).dtype)
        return bad
    _both("cumsum", make)


@mutant("tensors", "zeros ignores the dtype argument",
        paths="suites/tensors/test_creation.py")
def zeros_ignores_dtype():
    def make(orig):
        def bad(*size, dtype=None, **kw):
            return orig(*size, **kw)
        return bad
    _patch(torch, "zeros", make)


@mutant("tensors", "add ignores alpha",
        paths="suites/tensors/test_elementwise.py")
def add_ignores_alpha():
    def make(orig):
        def bad(a, b, *, alpha=1, **kw):
            return orig(a, b, **kw)
        return bad
    _both("add", make)


@mutant("tensors", "unsqueeze with a negative dim inserts one position too far left",
        paths="suites/tensors/test_shape_ops.py")
def unsqueeze_negative_off_by_one():
    def make(orig):
        def bad(input, dim):
            return orig(input, dim - 1 if dim < -1 else dim) if dim < 0 and dim - 1 >= -(input.dim() + 1) else orig(input, dim)
        return bad
    _both("unsqueeze", make)


@mutant("tensors", "clamp with only max= also clamps below at 0",
        paths="suites/tensors/test_elementwise.py")
def clamp_max_only_floors_at_zero():
    def make(orig):
        def bad(input, min=None, max=None, **kw):
            if min is None and max is not None:
                min = 0
            return orig(input, min=min, max=max, **kw)
        return bad
    _both("clamp", make)


@mutant("tensors", "std uses the biased estimator whatever correction says",
        paths="suites/tensors/test_reductions.py")
def std_biased():
    def make(orig):
        def bad(input, *args, **kwargs):
            kwargs.pop("unbiased", None)
            kwargs["correction"] = 0
            args = tuple(a for a in args if not isinstance(a, bool))
            return orig(input, *args, **kwargs)
        return bad
    _both("std", make)


@mutant("tensors", "softmax normalises over the wrong dimension (dim 0)",
        paths="suites/tensors/test_reductions.py")
def softmax_wrong_dim():
    def make(orig):
        def bad(input, dim=None, *a, **kw):
            return orig(input, 0, *a, **kw)
        return bad
    _both("softmax", make)
    _patch(F, "softmax", make)


@mutant("tensors", "from_numpy copies instead of sharing memory",
        paths="suites/tensors/test_creation.py")
def from_numpy_copies():
    _patch(torch, "from_numpy", lambda orig: (lambda arr: orig(arr).clone()))


# --- § 2/3 autograd --------------------------------------------------------------------------------
@mutant("autograd dynamic_graph", "backward overwrites .grad instead of accumulating",
        paths="suites/autograd/test_backward.py suites/autograd/test_graph.py")
def grad_overwrites():
    def make(orig):
        def bad(self, *args, **kwargs):
            leaves = []
            def walk(fn, seen):
                if fn is None or fn in seen:
                    return
                seen.add(fn)
                if hasattr(fn, "variable"):
                    leaves.append(fn.variable)
                for nxt, _ in getattr(fn, "next_functions", ()):
                    walk(nxt, seen)
            walk(self.grad_fn, set())
            for leaf in leaves:
                leaf.grad = None
            return orig(self, *args, **kwargs)
        return bad
    _patch(torch.Tensor, "backward", make)


@mutant("autograd dynamic_graph", "no_grad does not disable gradient recording",
        paths="suites/autograd/test_grad_modes.py")
def no_grad_noop():
    torch.no_grad = _NoOpContext
    torch.autograd.no_grad = _NoOpContext


@mutant("autograd", "sigmoid's gradient is computed as s instead of s*(1-s)",
        paths="suites/autograd/test_gradcheck.py")
def sigmoid_bad_grad():
    class BadSigmoid(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            s = _orig_sigmoid(x)
            ctx.save_for_backward(s)
            return s
        @staticmethod
        def backward(ctx, g):
            (s,) = ctx.saved_tensors
            return g * s
    _orig_sigmoid = torch.sigmoid
    _both("sigmoid", lambda orig: (lambda x, **kw: BadSigmoid.apply(x)))


@mutant("autograd", "detach returns a copy instead of sharing storage",
        paths="suites/autograd/test_backward.py")
def detach_copies():
    _both("detach", lambda orig: (lambda self: orig(self).clone()))


# --- § 4 nn ---------------------------------------------------------------------------------------------
@mutant("nn", "linear ignores its bias",
        paths="suites/nn/test_linear.py")
def linear_ignores_bias():
    _patch(F, "linear", lambda orig: (lambda input, weight, bias=None: orig(input, weight)))


@mutant("nn", "conv2d ignores padding",
        paths="suites/nn/test_conv.py")
def conv2d_ignores_padding():
    def make(orig):
        def bad(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
            return orig(input, weight, bias, stride, 0 if not isinstance(padding, str) else padding, dilation, groups)
        return bad
    _patch(F, "conv2d", make)


@mutant("nn", "batch_norm updates running_var with the biased batch variance",
        paths="suites/nn/test_normalization.py")
def batchnorm_biased_running_var():
    def make(orig):
        def bad(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
            out = orig(input, running_mean, running_var, weight, bias, training, momentum, eps)
            if training and running_var is not None and momentum is not None:
                dims = [0] + list(range(2, input.dim()))
                n = input.numel() / input.shape[1]
                v = input.detach().var(dim=dims, unbiased=False)
                with torch.no_grad():
                    running_var.add_(momentum * (v - v * n / max(n - 1, 1)))
            return out
        return bad
    _patch(F, "batch_norm", make)


@mutant("nn", "layer_norm ignores eps",
        paths="suites/nn/test_normalization.py")
def layernorm_ignores_eps():
    def make(orig):
        def bad(input, normalized_shape, weight=None, bias=None, eps=1e-5):
            return orig(input, normalized_shape, weight, bias, 1e-12)
        return bad
    _patch(F, "layer_norm", make)


@mutant("nn", "dropout in training mode does not rescale survivors by 1/(1-p)",
        paths="suites/nn/test_dropout.py")
def dropout_no_rescale():
    def make(orig):
        def bad(input, p=0.5, training=True, inplace=False):
            out = orig(input, p, training, inplace)
            return out * (1 - p) if training and 0 < p < 1 else out
        return bad
    _patch(F, "dropout", make)


@mutant("nn", "kaiming_normal_ ignores mode='fan_out'",
        paths="suites/nn/test_init.py")
def kaiming_ignores_mode():
    def make(orig):
        def bad(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
            return orig(tensor, a=a, mode="fan_in", nonlinearity=nonlinearity)
        return bad
    _patch(torch.nn.init, "kaiming_normal_", make)


@mutant("nn", "leaky_relu ignores negative_slope (always 0.01)",
        paths="suites/nn/test_activations.py")
def leaky_relu_fixed_slope():
    def make(orig):
        def bad(input, negative_slope=0.01, inplace=False):
            return orig(input, 0.01, inplace)
        return bad
    _patch(F, "leaky_relu", make)


@mutant("nn", "scaled_dot_product_attention forgets the 1/sqrt(d) scale",
        paths="suites/nn/test_attention.py")
def sdpa_no_scale():
    def make(orig):
        def bad(q, k, v, *args, scale=None, **kw):
            return orig(q, k, v, *args, scale=1.0, **kw)
        return bad
    _patch(F, "scaled_dot_product_attention", make)


# --- § 6 training --------------------------------------------------------------------------------------
@mutant("training", "SGD ignores momentum",
        paths="suites/training/test_optimizers.py")
def sgd_ignores_momentum():
    orig_init = torch.optim.SGD.__init__
    def bad(self, params, lr=1e-3, momentum=0, *a, **kw):
        if kw.get("nesterov"):  # nesterov needs momentum > 0: keep it there so construction still works
            return orig_init(self, params, lr, momentum, *a, **kw)
        return orig_init(self, params, lr, 0, *a, **kw)
    torch.optim.SGD.__init__ = bad


@mutant("training", "Adam skips bias correction (betas applied, no 1/(1-beta^t))",
        paths="suites/training/test_optimizers.py")
def adam_no_bias_correction():
    orig_step = torch.optim.Adam.step
    def bad(self, closure=None):
        snapshot = {id(p): p.detach().clone() for g in self.param_groups for p in g["params"]}
        loss = orig_step(self, closure)
        with torch.no_grad():
            for g in self.param_groups:
                for p in g["params"]:
                    st = self.state.get(p, {})
                    if "step" in st and int(st["step"]) <= 3:
                        p.copy_(snapshot[id(p)] + (p - snapshot[id(p)]) * 0.5)
        return loss
    torch.optim.Adam.step = bad


@mutant("training", "StepLR decays by gamma twice at each step boundary",
        paths="suites/training/test_schedulers.py")
def steplr_double_gamma():
    orig = torch.optim.lr_scheduler.StepLR.__init__
    def bad(self, optimizer, step_size, gamma=0.1, *a, **kw):
        orig(self, optimizer, step_size, gamma * gamma, *a, **kw)
    torch.optim.lr_scheduler.StepLR.__init__ = bad


@mutant("training", "cross_entropy ignores label_smoothing",
        paths="suites/training/test_losses.py")
def ce_ignores_label_smoothing():
    def make(orig):
        def bad(input, target, *args, label_smoothing=0.0, **kw):
            return orig(input, target, *args, **kw)
        return bad
    _patch(F, "cross_entropy", make)


@mutant("training", "Optimizer.zero_grad leaves gradients in place",
        paths="suites/training/test_optimizers.py suites/training/test_training_loop.py")
def zero_grad_noop():
    torch.optim.Optimizer.zero_grad = lambda self, set_to_none=True: None


@mutant("training", "clip_grad_norm_ returns the norm after clipping instead of before",
        paths="suites/training/test_training_loop.py")
def clip_returns_clipped_norm():
    import torch.nn.utils as U

    orig = U.clip_grad_norm_
    def bad(parameters, max_norm, *a, **kw):
        params = [p for p in parameters] if not isinstance(parameters, torch.Tensor) else [parameters]
        total = orig(params, max_norm, *a, **kw)
        return torch.clamp(total, max=max_norm)
    U.clip_grad_norm_ = bad
    torch.nn.utils.clip_grad.clip_grad_norm_ = bad


# --- § 5 data ------------------------------------------------------------------------------------------
@mutant("data", "DataLoader ignores drop_last",
        paths="suites/data/test_dataloader.py")
def dataloader_ignores_drop_last():
    import torch.utils.data as D

    orig = D.DataLoader.__init__
    def bad(self, dataset, *a, drop_last=False, **kw):
        orig(self, dataset, *a, **kw)
    D.DataLoader.__init__ = bad


@mutant("data", "RandomSampler ignores its generator",
        paths="suites/data/test_samplers.py")
def random_sampler_ignores_generator():
    import torch.utils.data as D

    orig = D.RandomSampler.__init__
    def bad(self, data_source, replacement=False, num_samples=None, generator=None):
        orig(self, data_source, replacement, num_samples, None)
    D.RandomSampler.__init__ = bad


@mutant("data", "default_collate turns Python floats into float32 instead of float64",
        paths="suites/data/test_collate.py")
def collate_float32():
    import torch.utils.data._utils.collate as C

    orig = C.default_collate
    def bad(batch):
        if batch and all(isinstance(b, float) for b in batch):
            return torch.tensor(batch, dtype=torch.float32)
        return orig(batch)
    C.default_collate = bad
    torch.utils.data.default_collate = bad
    import torch.utils.data.dataloader as DL

    DL.default_collate = bad


@mutant("data", "DistributedSampler.set_epoch has no effect on the shuffle",
        paths="suites/data/test_samplers.py")
def distsampler_ignores_epoch():
    from torch.utils.data.distributed import DistributedSampler

    DistributedSampler.set_epoch = lambda self, epoch: None


# --- § 7 serialization -------------------------------------------------------------------------------
@mutant("serialization", "load_state_dict ignores strict=True (missing keys pass silently)",
        paths="suites/serialization/test_save_load.py")
def load_state_dict_not_strict():
    orig = torch.nn.Module.load_state_dict
    def bad(self, state_dict, strict=True, *a, **kw):
        return orig(self, state_dict, False, *a, **kw)
    torch.nn.Module.load_state_dict = bad


@mutant("serialization", "torch.load ignores map_location",
        paths="suites/serialization/test_save_load.py")
def load_ignores_map_location():
    def make(orig):
        def bad(f, map_location=None, *a, **kw):
            return orig(f, None, *a, **kw)
        return bad
    _patch(torch, "load", make)


@mutant("serialization", "torch.load defaults to weights_only=False (unsafe unpickling)",
        paths="suites/serialization/test_save_load.py")
def load_unsafe_default():
    def make(orig):
        def bad(f, *a, weights_only=None, **kw):
            return orig(f, *a, weights_only=False if weights_only is None else weights_only, **kw)
        return bad
    _patch(torch, "load", make)


# --- § 9.2 amp ------------------------------------------------------------------------------------------
@mutant("amp", "GradScaler.update never backs off after an overflow",
        paths="suites/amp/test_grad_scaler.py")
def scaler_no_backoff():
    orig = torch.amp.GradScaler.__init__
    def bad(self, *a, backoff_factor=0.5, **kw):
        orig(self, *a, backoff_factor=0.999999, **kw)
    torch.amp.GradScaler.__init__ = bad


@mutant("amp", "autocast is a no-op (matmul stays float32)",
        paths="suites/amp/test_autocast.py")
def autocast_noop():
    torch.autocast = _NoOpContext
    torch.amp.autocast = _NoOpContext
    torch.cpu.amp.autocast = _NoOpContext


# --- § 9.1 export ---------------------------------------------------------------------------------------
@mutant("export", "torch.jit.trace returns a module whose outputs drift by 1e-3",
        paths="suites/export/test_torchscript.py")
def jit_trace_drift():
    orig = torch.jit.trace

    class _Drift(torch.nn.Module):  # traced in place of the model: a real ScriptModule whose outputs drift
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *x):
            out = self.inner(*x)
            return out + 1e-3 if isinstance(out, torch.Tensor) else out

    def bad(func, *a, **kw):
        if isinstance(func, torch.nn.Module) and not isinstance(func, torch.jit.ScriptModule):
            func = _Drift(func)
        return orig(func, *a, **kw)
    torch.jit.trace = bad


# --- § 10 memory ----------------------------------------------------------------------------------------
@mutant("memory", "out= arguments are ignored (result allocated fresh, out untouched)",
        paths="suites/memory")
def out_ignored():
    def make(orig):
        def bad(*a, out=None, **kw):
            res = orig(*a, **kw)
            return res
        return bad
    _patch(torch, "add", make)
    _patch(torch, "mul", make)
    _patch(torch, "matmul", make)


# --- later families register themselves on import (one module per section) ----------------------------
from tests.mutants import m_autograd, m_export, m_nn, m_ops, m_serialization, m_tensors  # noqa: E402,F401
