"""Planted bugs for § 4 nn: the production-kernel grids (suites/nn/test_kernels_*), the module zoo
(test_module_zoo.py, test_zoo_*.py), torch.nn.functional's resampling/padding/folding (test_functional.py)
and parametrizations (test_parametrizations.py). Most are wrong on one layout, one dtype or one argument
only, the way real kernel bugs are."""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from tests.mutants.base import ScaleGrad, _patch, channels_last, mutant

NN = "suites/nn/"
CONV = NN + "test_kernels_conv.py"
POOL_NORM = NN + "test_kernels_pool_norm.py"
ATTN = NN + "test_kernels_attention.py"


# --- production kernels: convolution, linear -------------------------------------------------------------
@mutant("nn", "grouped conv2d/conv3d on a channels_last input applies each group's filters to the next group's "
        "channels (the NHWC kernel offsets the filter block by one group)",
        paths=CONV + "::test_conv_forward", select="channels_last and (groups2 or depthwise)")
def conv_channels_last_groups_shifted():
    for nd in (2, 3):
        def make(orig):
            def bad(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
                if groups > 1 and channels_last(input):
                    weight = weight.roll(weight.shape[0] // groups, dims=0)
                return orig(input, weight, bias, stride, padding, dilation, groups)
            return bad
        _patch(F, f"conv{nd}d", make)


@mutant("nn", "bfloat16 convolution backward returns half the weight gradient (float32 is right)",
        paths=CONV + "::test_conv_backward", select="bfloat16")
def conv_bf16_grad_weight_halved():
    for nd in (1, 2, 3):
        def make(orig):
            def bad(input, weight, bias=None, *a, **kw):
                if input.dtype == torch.bfloat16 and weight.requires_grad:
                    weight = ScaleGrad.apply(weight, 0.5)
                return orig(input, weight, bias, *a, **kw)
            return bad
        _patch(F, f"conv{nd}d", make)


@mutant("nn", "F.linear drops the bias when the input is not contiguous (the strided fallback runs matmul only)",
        paths=CONV + "::test_linear_forward_backward")
def linear_strided_input_drops_bias():
    def make(orig):
        def bad(input, weight, bias=None):
            if bias is not None and not input.is_contiguous():
                return orig(input, weight)
            return orig(input, weight, bias)
        return bad
    _patch(F, "linear", make)


# --- production kernels: pooling, normalization ----------------------------------------------------------
@mutant("nn", "max_pool2d/3d(return_indices=True) on channels_last input returns memory offsets (h*W*C + w*C + c) "
        "instead of flat spatial indices", paths=POOL_NORM + "::test_max_pool", select="channels_last")
def maxpool_channels_last_indices_memory_order():
    for nd in (2, 3):
        def make(orig, nd=nd):
            def bad(input, *a, **kw):
                out = orig(input, *a, **kw)
                if isinstance(out, tuple) and channels_last(input):
                    v, i = out
                    c = torch.arange(input.shape[1], device=i.device).view((1, -1) + (1,) * nd)
                    return v, i * input.shape[1] + c
                return out
            return bad
        _patch(F, f"max_pool{nd}d", make)


@mutant("nn", "batch_norm in training on a channels_last input normalises with the unbiased batch variance "
        "(the NHWC kernel divides by n - 1)", paths=POOL_NORM + "::test_norm", select="batch and channels_last and train")
def batchnorm_channels_last_unbiased_normalisation():
    def make(orig):
        def bad(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
            y = orig(input, running_mean, running_var, weight, bias, training, momentum, eps)
            if training and channels_last(input):
                n = input.numel() // input.shape[1]
                shift = 0 if bias is None else bias.view((1, -1) + (1,) * (input.dim() - 2))
                y = shift + (y - shift) * math.sqrt((n - 1) / n)
            return y
        return bad
    _patch(F, "batch_norm", make)


@mutant("nn", "layer_norm's bfloat16 backward returns half the input gradient (float32 is right)",
        paths=POOL_NORM + "::test_norm", select="bfloat16 and layer_")
def layer_norm_bf16_grad_input_halved():
    def make(orig):
        def bad(input, normalized_shape, weight=None, bias=None, eps=1e-5):
            if input.dtype == torch.bfloat16 and input.requires_grad:
                input = ScaleGrad.apply(input, 0.5)
            return orig(input, normalized_shape, weight, bias, eps)
        return bad
    _patch(F, "layer_norm", make)


# --- production kernels: attention -----------------------------------------------------------------------
@mutant("nn", "scaled_dot_product_attention(enable_gqa=True) repeats the key/value heads tiled (0,1,0,1) instead of "
        "interleaved (0,0,1,1)", paths=ATTN + "::test_sdpa_forward", select="gqa")
def sdpa_gqa_heads_tiled():
    def make(orig):
        def bad(q, k, v, *a, enable_gqa=False, **kw):
            if enable_gqa and k.shape[-3] != q.shape[-3]:
                rep = q.shape[-3] // k.shape[-3]
                lead = (1,) * (k.dim() - 3)
                k, v = k.repeat(*lead, rep, 1, 1), v.repeat(*lead, rep, 1, 1)
                enable_gqa = False
            return orig(q, k, v, *a, enable_gqa=enable_gqa, **kw) if enable_gqa else orig(q, k, v, *a, **kw)
        return bad
    _patch(F, "scaled_dot_product_attention", make)


@mutant("nn", "scaled_dot_product_attention's bfloat16 backward returns half the value gradient",
        paths=ATTN + "::test_sdpa_backward", select="bfloat16")
def sdpa_bf16_grad_value_halved():
    def make(orig):
        def bad(q, k, v, *a, **kw):
            if v.dtype == torch.bfloat16 and v.requires_grad:
                v = ScaleGrad.apply(v, 0.5)
            return orig(q, k, v, *a, **kw)
        return bad
    _patch(F, "scaled_dot_product_attention", make)


# --- the module zoo --------------------------------------------------------------------------------------
@mutant("nn", "ChannelShuffle(g) shuffles with C/g groups (g and C/g confused: the inverse permutation)",
        paths=NN + "test_module_zoo.py", select="test_channel_shuffle")
def channel_shuffle_groups_confused():
    _patch(F, "channel_shuffle", lambda orig: (lambda input, groups: orig(input, input.shape[1] // groups)))


@mutant("nn", "GLU gates the wrong half: a's sigmoid times b instead of a * sigmoid(b)",
        paths=NN + "test_module_zoo.py", select="test_glu")
def glu_gates_first_half():
    def make(orig):
        def bad(input, dim=-1):
            if input.shape[dim] % 2:
                return orig(input, dim)
            a, b = input.chunk(2, dim)
            return torch.sigmoid(a) * b
        return bad
    _patch(F, "glu", make)


@mutant("nn", "ctc_loss ignores blank= (always uses class 0 as the blank)",
        paths=NN + "test_zoo_losses.py", select="test_ctc_loss")
def ctc_loss_ignores_blank():
    def make(orig):
        def bad(log_probs, targets, input_lengths, target_lengths, blank=0, *a, **kw):
            return orig(log_probs, targets, input_lengths, target_lengths, 0, *a, **kw)
        return bad
    _patch(F, "ctc_loss", make)


@mutant("nn", "kl_div(reduction='batchmean') divides by the element count (like 'mean') instead of the batch size",
        paths=NN + "test_zoo_losses.py", select="test_kl_div_loss")
def kl_div_batchmean_is_mean():
    def make(orig):
        def bad(input, target, *a, reduction="mean", **kw):
            return orig(input, target, *a, reduction="mean" if reduction == "batchmean" else reduction, **kw)
        return bad
    _patch(F, "kl_div", make)


@mutant("nn", "TransformerDecoderLayer ignores memory_key_padding_mask (padded memory positions are attended)",
        paths=NN + "test_zoo_transformer.py")
def transformer_decoder_ignores_memory_padding_mask():
    orig = nn.TransformerDecoderLayer.forward

    def bad(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
            memory_key_padding_mask=None, *a, **kw):
        return orig(self, tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask, None, *a, **kw)
    nn.TransformerDecoderLayer.forward = bad


@mutant("nn", "lp_pool1d/2d/3d ignore norm_type (always the 2-norm)",
        paths=NN + "test_zoo_pooling.py", select="test_lp_pool")
def lp_pool_ignores_norm_type():
    for nd in (1, 2, 3):
        if hasattr(F, f"lp_pool{nd}d"):
            _patch(F, f"lp_pool{nd}d", lambda orig: (lambda input, norm_type, *a, **kw: orig(input, 2.0, *a, **kw)))


# --- torch.nn.functional ---------------------------------------------------------------------------------
@mutant("nn", "interpolate (bilinear/bicubic) on a channels_last input inverts align_corners (the NHWC kernel "
        "uses the other source-coordinate formula)", paths=NN + "test_functional.py",
        select="test_interpolate_large_channels_last")
def interpolate_channels_last_align_corners_inverted():
    def make(orig):
        def bad(input, size=None, scale_factor=None, mode="nearest", align_corners=None, *a, **kw):
            if channels_last(input) and mode in ("bilinear", "bicubic") and align_corners is not None:
                align_corners = not align_corners
            return orig(input, size, scale_factor, mode, align_corners, *a, **kw)
        return bad
    _patch(F, "interpolate", make)


@mutant("nn", "F.fold averages overlapping blocks instead of summing them",
        paths=NN + "test_functional.py", select="test_unfold_fold")
def fold_overlaps_averaged():
    def make(orig):
        def bad(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
            s = orig(input, output_size, kernel_size, dilation, padding, stride)
            c = orig(torch.ones_like(input), output_size, kernel_size, dilation, padding, stride)
            return s / c.clamp(min=1)
        return bad
    _patch(F, "fold", make)


@mutant("nn", "F.pad(mode='reflect') includes the edge pixel (symmetric padding: x[1] x[0] | x[0] x[1] ...)",
        paths=NN + "test_functional.py", select="test_pad")
def pad_reflect_is_symmetric():
    def make(orig):
        def bad(input, pad, mode="constant", value=None):
            if mode != "reflect" or any(p < 0 for p in pad):
                return orig(input, pad, mode, value)
            once = orig(input, tuple(1 if p > 0 else 0 for p in pad), "replicate")
            return orig(once, tuple(max(p - 1, 0) for p in pad), "reflect")
        return bad
    _patch(F, "pad", make)


@mutant("nn", "F.embedding(max_norm=) renormalises a copy: the output is right but weight is not updated in place",
        paths=NN + "test_functional.py", select="test_embedding_options")
def embedding_max_norm_not_in_place():
    def make(orig):
        def bad(input, weight, padding_idx=None, max_norm=None, *a, **kw):
            if max_norm is not None:
                weight = weight.detach().clone()
            return orig(input, weight, padding_idx, max_norm, *a, **kw)
        return bad
    _patch(F, "embedding", make)


# --- parametrizations ------------------------------------------------------------------------------------
@mutant("nn", "parametrizations.weight_norm ignores dim= (always normalises over every dim but 0)",
        paths=NN + "test_parametrizations.py", select="test_weight_norm")
def weight_norm_ignores_dim():
    from torch.nn.utils import parametrizations as P

    _patch(P, "weight_norm", lambda orig: (lambda module, name="weight", dim=0: orig(module, name, 0)))


@mutant("nn", "spectral_norm keeps running power iterations in eval mode (u and v drift at inference)",
        paths=NN + "test_parametrizations.py", select="spectral_norm")
def spectral_norm_iterates_in_eval():
    from torch.nn.utils import parametrizations as P

    orig = P._SpectralNorm.forward

    def bad(self, weight):
        if not self.training and weight.ndim > 1:
            self._power_method(self._reshape_weight_to_matrix(weight), self.n_power_iterations)
        return orig(self, weight)
    P._SpectralNorm.forward = bad


@mutant("nn", "parametrize.cached() does nothing: the parametrization is recomputed on every access",
        paths=NN + "test_parametrizations.py", select="test_register_parametrization")
def parametrize_cached_noop():
    from torch.nn.utils import parametrize

    parametrize.cached = contextlib.contextmanager(lambda: (yield))


@mutant("nn", "parametrizations.orthogonal discards the original weight: initialises Q from a random matrix, not "
        "from the QR of the weight", paths=NN + "test_parametrizations.py", select="test_orthogonal")
def orthogonal_init_discards_weight():
    from torch.nn.utils import parametrizations as P

    def make(orig):
        def bad(module, name="weight", orthogonal_map=None, *, use_trivialization=True):
            w = getattr(module, name)
            with torch.no_grad():
                g = torch.Generator(device="cpu").manual_seed(12345)
                w.copy_(torch.randn(w.shape, generator=g, dtype=w.dtype).to(w.device))
            return orig(module, name, orthogonal_map, use_trivialization=use_trivialization)
        return bad
    _patch(P, "orthogonal", make)
