"""Reference optimiser updates in NumPy float64, written from the update rules in PyTorch's
documentation (torch.optim.SGD, Adam, AdamW, RMSprop, Adagrad). ``step(p, g, state, hp)`` updates one
parameter array in place; ``state`` is a dict the reference keeps per parameter.

``maximize`` is modelled as documented: the optimiser maximises the objective, i.e. it minimises the
negated objective, so the gradient is negated before weight decay and everything else.
"""
from __future__ import annotations

import numpy as np


def sgd(p, g, st, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    g = -g if maximize else g.copy()
    if weight_decay:
        g = g + weight_decay * p
    if momentum:
        if "buf" not in st:
            st["buf"] = g.copy()
        else:
            st["buf"] = momentum * st["buf"] + (1 - dampening) * g
        g = g + momentum * st["buf"] if nesterov else st["buf"]
    p -= lr * g


def adam(p, g, st, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False,
         decoupled=False):
    b1, b2 = betas
    g = -g if maximize else g.copy()
    st["t"] = t = st.get("t", 0) + 1
    if decoupled:
        p *= 1 - lr * weight_decay
    elif weight_decay:
        g = g + weight_decay * p
    st["m"] = b1 * st.get("m", np.zeros_like(p)) + (1 - b1) * g
    st["v"] = b2 * st.get("v", np.zeros_like(p)) + (1 - b2) * g * g
    bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
    v = st["v"]
    if amsgrad:
        st["vmax"] = np.maximum(st.get("vmax", np.zeros_like(p)), st["v"])
        v = st["vmax"]
    denom = np.sqrt(v) / np.sqrt(bc2) + eps
    p -= (lr / bc1) * st["m"] / denom


def adamw(p, g, st, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, maximize=False):
    adam(p, g, st, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize, decoupled=True)


def rmsprop(p, g, st, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, maximize=False):
    g = -g if maximize else g.copy()
    if weight_decay:
        g = g + weight_decay * p
    st["v"] = alpha * st.get("v", np.zeros_like(p)) + (1 - alpha) * g * g
    if centered:
        st["gavg"] = alpha * st.get("gavg", np.zeros_like(p)) + (1 - alpha) * g
        avg = np.sqrt(st["v"] - st["gavg"] ** 2) + eps
    else:
        avg = np.sqrt(st["v"]) + eps
    if momentum > 0:
        st["buf"] = momentum * st.get("buf", np.zeros_like(p)) + g / avg
        p -= lr * st["buf"]
    else:
        p -= lr * g / avg


def adagrad(p, g, st, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10, maximize=False):
    g = -g if maximize else g.copy()
    st["t"] = t = st.get("t", 0) + 1
    if weight_decay:
        g = g + weight_decay * p
    clr = lr / (1 + (t - 1) * lr_decay)
    st["sum"] = st.get("sum", np.full_like(p, initial_accumulator_value)) + g * g
    p -= clr * g / (np.sqrt(st["sum"]) + eps)


REFERENCES = {"SGD": sgd, "Adam": adam, "AdamW": adamw, "RMSprop": rmsprop, "Adagrad": adagrad}
