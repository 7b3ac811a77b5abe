"""Planted bugs for § 2 autograd: activation checkpointing (test_checkpoint.py) and the torch.func
transforms (test_func.py)."""
from __future__ import annotations

import torch

from tests.mutants.base import _patch, mutant

AG = "suites/autograd/"
_CKPT_OWN = ("preserve_rng_state", "context_fn", "determinism_check", "debug", "early_stop")


# --- torch.utils.checkpoint ------------------------------------------------------------------------------
@mutant("autograd", "checkpoint ignores preserve_rng_state=True: the recomputation draws a fresh dropout mask",
        paths=AG + "test_checkpoint.py", select="test_checkpoint_rng_state")
def checkpoint_recompute_fresh_rng():
    import torch.utils.checkpoint as C

    def make(orig):
        def bad(function, *args, **kw):
            kw["preserve_rng_state"] = False
            return orig(function, *args, **kw)
        return bad
    _patch(C, "checkpoint", make)


@mutant("autograd", "the non-reentrant checkpoint drops keyword arguments meant for the function",
        paths=AG + "test_checkpoint.py", select="test_checkpoint_nonreentrant_features")
def checkpoint_nonreentrant_drops_kwargs():
    import torch.utils.checkpoint as C

    def make(orig):
        def bad(function, *args, use_reentrant=None, **kw):
            if use_reentrant is False:
                kw = {k: v for k, v in kw.items() if k in _CKPT_OWN}
            return orig(function, *args, use_reentrant=use_reentrant, **kw)
        return bad
    _patch(C, "checkpoint", make)


@mutant("autograd", "checkpoint_sequential checkpoints its last chunk too (every module is recomputed in backward)",
        paths=AG + "test_checkpoint.py", select="test_checkpoint_sequential")
def checkpoint_sequential_checkpoints_last_chunk():
    import torch.utils.checkpoint as C

    orig_seq, orig_ckpt = C.checkpoint_sequential, C.checkpoint

    def bad(functions, segments, input, use_reentrant=None, **kw):
        reentrant = True if use_reentrant is None else use_reentrant
        return orig_ckpt(lambda t: orig_seq(functions, segments, t, use_reentrant=reentrant, **kw), input,
                         use_reentrant=reentrant)
    C.checkpoint_sequential = bad


# --- torch.func ------------------------------------------------------------------------------------------
def _zero_dims(d):
    if isinstance(d, int):
        return 0
    if isinstance(d, (tuple, list)):
        return type(d)(_zero_dims(x) for x in d)
    if isinstance(d, dict):
        return {k: _zero_dims(v) for k, v in d.items()}
    return d


@mutant("autograd", "vmap ignores in_dims (always maps over dim 0; None still broadcasts)",
        paths=AG + "test_func.py", select="test_vmap_in_out_dims")
def vmap_ignores_in_dims():
    import torch.func as tf

    def make(orig):
        def bad(func, in_dims=0, *a, **kw):
            return orig(func, _zero_dims(in_dims), *a, **kw)
        return bad
    _patch(tf, "vmap", make)
    torch.vmap = tf.vmap


@mutant("autograd", "vmap(chunk_size=c) computes the last, partial chunk from the first chunk's inputs",
        paths=AG + "test_func.py", select="test_vmap_in_out_dims")
def vmap_chunked_tail_wrong():
    import torch.func as tf

    def make(orig):
        def bad(func, in_dims=0, out_dims=0, randomness="error", *, chunk_size=None, **kw):
            f = orig(func, in_dims, out_dims, randomness, chunk_size=chunk_size, **kw)
            if chunk_size is None or out_dims != 0:
                return f

            def g(*a, **k):
                r = f(*a, **k)
                if isinstance(r, torch.Tensor) and r.dim() and r.shape[0] % chunk_size:
                    t = r.shape[0] % chunk_size
                    r = r.clone()
                    r[-t:] = r[:t]
                return r
            return g
        return bad
    _patch(tf, "vmap", make)
    torch.vmap = tf.vmap


@mutant("autograd", "jacfwd returns the transposed Jacobian (rows = inputs) for a vector function",
        paths=AG + "test_func.py", select="test_jacrev_jacfwd")
def jacfwd_transposed():
    import torch.func as tf

    def make(orig):
        def bad(func, argnums=0, has_aux=False, **kw):
            j = orig(func, argnums, has_aux, **kw)

            def g(*a, **k):
                r = j(*a, **k)
                jac, aux = (r[0], r[1]) if has_aux else (r, None)
                if isinstance(jac, torch.Tensor) and jac.dim() == 2:
                    jac = jac.T
                return (jac, aux) if has_aux else jac
            return g
        return bad
    _patch(tf, "jacfwd", make)


@mutant("autograd", "functional_call swaps in parameters but not buffers (an eval BatchNorm keeps its own running stats)",
        paths=AG + "test_func.py", select="test_functional_call")
def functional_call_ignores_buffers():
    import torch.func as tf

    def make(orig):
        def bad(module, parameter_and_buffer_dicts, *a, **kw):
            buffers = {n for n, _ in module.named_buffers()}

            def keep(d):
                return {k: v for k, v in d.items() if k not in buffers}
            dicts = parameter_and_buffer_dicts
            dicts = keep(dicts) if isinstance(dicts, dict) else type(dicts)(keep(d) for d in dicts)
            return orig(module, dicts, *a, **kw)
        return bad
    _patch(tf, "functional_call", make)
