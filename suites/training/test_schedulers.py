"""§ 6 Model training: learning-rate schedulers (StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR,
LinearLR, LambdaLR, OneCycleLR, ReduceLROnPlateau, SequentialLR, ChainedScheduler): whole lr trajectories
against closed forms and a plain-Python reference of ReduceLROnPlateau's documented rule, per-group lrs,
get_last_lr and state_dict save/restore mid-way.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import bisect
import copy
import math
import warnings

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as S

from harness.checks import assert_close, assert_equal, assert_raises, assert_true

BASE = (0.1, 0.02)  # two parameter groups with their own base lr


def _optimizer(lrs=BASE, momentum=0.9):
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr} for lr in lrs]
    return torch.optim.SGD(groups, lr=lrs[0], momentum=momentum)


def _trajectory(opt, sched, n):
    """lr of every group at epochs 0..n (epoch t = after t scheduler steps), stepping the optimiser first
    as documented."""
    out = [[g["lr"] for g in opt.param_groups]]
    last = [list(sched.get_last_lr())]
    for _ in range(n):
        opt.step()
        sched.step()
        out.append([g["lr"] for g in opt.param_groups])
        last.append(list(sched.get_last_lr()))
    assert_equal("LRScheduler.get_last_lr", np.array(last), np.array(out), args="get_last_lr equals the groups' lr")
    return np.array(out)


def _closed(fn, n, lrs=BASE):
    return np.array([[fn(base, t) for base in lrs] for t in range(n + 1)])


# exact-in-float64 schedules are compared with a tolerance of a few ulps of their own arithmetic
SCHED_TOL = {"rtol": 1e-12, "atol": 1e-15}  # python-float recurrences vs closed forms: rounding only

CASES = {
    "StepLR(step_size=3,gamma=0.5)": (lambda o: S.StepLR(o, step_size=3, gamma=0.5), lambda b, t: b * 0.5 ** (t // 3)),
    "MultiStepLR([2,5,6],gamma=0.1)": (lambda o: S.MultiStepLR(o, milestones=[2, 5, 6], gamma=0.1),
                                       lambda b, t: b * 0.1 ** bisect.bisect_right([2, 5, 6], t)),
    "MultiStepLR(repeated milestone)": (lambda o: S.MultiStepLR(o, milestones=[3, 3, 7], gamma=0.5),
                                        lambda b, t: b * 0.5 ** bisect.bisect_right([3, 3, 7], t)),
    "ExponentialLR(gamma=0.9)": (lambda o: S.ExponentialLR(o, gamma=0.9), lambda b, t: b * 0.9 ** t),
    "LinearLR(0.25,1.0,total=4)": (lambda o: S.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=4),
                                   lambda b, t: b * (0.25 + 0.75 * min(t, 4) / 4)),
    "LinearLR(1.0,0.1,total=5)": (lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=5),
                                  lambda b, t: b * (1.0 - 0.9 * min(t, 5) / 5)),
    "LambdaLR(1/(t+1))": (lambda o: S.LambdaLR(o, lr_lambda=lambda t: 1.0 / (t + 1)), lambda b, t: b / (t + 1)),
    "LambdaLR(per-group)": (lambda o: S.LambdaLR(o, lr_lambda=[lambda t: 0.9 ** t, lambda t: 1.0 + t]), None),
    "MultiplicativeLR(0.8)": (lambda o: S.MultiplicativeLR(o, lr_lambda=lambda t: 0.8), lambda b, t: b * 0.8 ** t),
    "ConstantLR(0.5,total=3)": (lambda o: S.ConstantLR(o, factor=0.5, total_iters=3), lambda b, t: b * (0.5 if t < 3 else 1.0)),
    "PolynomialLR(total=6,power=2)": (lambda o: S.PolynomialLR(o, total_iters=6, power=2.0),
                                      lambda b, t: b * (1 - min(t, 6) / 6) ** 2),
}


@pytest.mark.smoke
@pytest.mark.parametrize("name", list(CASES))
def test_scheduler_closed_form(name):
    """Every epoch's lr (per parameter group) equals the documented closed form for 12 epochs; catches an
    off-by-one epoch, a gamma applied every step instead of every step_size, a milestone counted twice
    wrongly, or groups sharing one lr."""
    make, fn = CASES[name]
    if fn is None:  # per-group lambdas
        lams = [lambda t: 0.9 ** t, lambda t: 1.0 + t]
        exp = np.array([[BASE[i] * lams[i](t) for i in range(2)] for t in range(13)])
    else:
        exp = _closed(fn, 12)
    opt = _optimizer()
    got = _trajectory(opt, make(opt), 12)
    assert_close(f"lr_scheduler.{name.split('(')[0]}", got, exp, op="exact", args=name, **SCHED_TOL)


@pytest.mark.parametrize("eta_min", [0.0, 0.005])
@pytest.mark.parametrize("t_max", [5, 8])
def test_cosine_annealing_lr(t_max, eta_min):
    """CosineAnnealingLR follows eta_min + (eta_max - eta_min)(1 + cos(pi t / T_max))/2 for t <= T_max, and its
    recurrence keeps following the same cosine beyond T_max (rising back); catches a wrong period, eta_min
    ignored, or a schedule clamped at T_max."""
    opt = _optimizer()
    got = _trajectory(opt, S.CosineAnnealingLR(opt, T_max=t_max, eta_min=eta_min), 3 * t_max)
    exp = _closed(lambda b, t: eta_min + (b - eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2, 3 * t_max)
    # the recurrence accumulates rounding over ~20 steps; 1e-10 is still far below any real schedule error
    assert_close("lr_scheduler.CosineAnnealingLR", got, exp, op="exact", rtol=1e-10, atol=1e-12, args=f"T_max={t_max}, eta_min={eta_min}")
    assert_close("lr_scheduler.CosineAnnealingLR", got[t_max], np.array([eta_min, eta_min]), op="exact", rtol=1e-10, atol=1e-12,
                 args="lr at T_max is eta_min")


def test_cosine_annealing_warm_restarts():
    """CosineAnnealingWarmRestarts(T_0=3, T_mult=2): cosine within each period, restart to the base lr at
    epochs 3, 9, 21; catches restarts at the wrong epochs or T_mult ignored."""
    opt = _optimizer()
    got = _trajectory(opt, S.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.001), 22)

    def closed(b, t):
        start, period = 0, 3
        while t >= start + period:
            start, period = start + period, period * 2
        return 0.001 + (b - 0.001) * (1 + math.cos(math.pi * (t - start) / period)) / 2
    assert_close("lr_scheduler.CosineAnnealingWarmRestarts", got, _closed(closed, 22), op="exact", rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("anneal", ["cos", "linear"])
def test_one_cycle_lr(anneal):
    """OneCycleLR: warm up from max_lr/div_factor to max_lr over pct_start of total_steps, then anneal to
    initial_lr/final_div_factor at the last step, with cos or linear annealing; momentum cycles inversely
    between max_momentum and base_momentum; catches wrong phase boundaries or annealing shape."""
    total, pct, div, fdiv, max_lr = 20, 0.3, 25.0, 1e4, 0.5
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=0.9)
    sched = S.OneCycleLR(opt, max_lr=max_lr, total_steps=total, pct_start=pct, anneal_strategy=anneal,
                         div_factor=div, final_div_factor=fdiv, base_momentum=0.85, max_momentum=0.95)
    lrs, moms = [], []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"]); moms.append(opt.param_groups[0]["momentum"])
        opt.step(); sched.step()

    def ann(start, end, frac):
        if anneal == "cos":
            return end + (start - end) / 2 * (1 + math.cos(math.pi * frac))
        return start + (end - start) * frac
    init, final = max_lr / div, max_lr / div / fdiv
    p1 = pct * total - 1
    exp_lr, exp_m = [], []
    for s in range(total):
        if s <= p1:
            f = s / p1
            exp_lr.append(ann(init, max_lr, f)); exp_m.append(ann(0.95, 0.85, f))
        else:
            f = (s - p1) / (total - 1 - p1)
            exp_lr.append(ann(max_lr, final, f)); exp_m.append(ann(0.85, 0.95, f))
    assert_close("lr_scheduler.OneCycleLR", np.array(lrs), np.array(exp_lr), op="exact", rtol=1e-10, atol=1e-14, args=f"anneal={anneal}")
    assert_close("lr_scheduler.OneCycleLR", np.array(moms), np.array(exp_m), op="exact", rtol=1e-10, atol=1e-14, args="momentum")
    assert_raises("lr_scheduler.OneCycleLR", ValueError, lambda: (opt.step(), sched.step(), sched.step()), args="stepping past total_steps")


# ---------------------------------------------------------------------------- ReduceLROnPlateau
class _PlateauRef:
    """ReduceLROnPlateau's documented rule in plain Python."""

    def __init__(self, lrs, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0.0, eps=1e-8):
        self.lrs, self.mode, self.factor, self.patience = list(lrs), mode, factor, patience
        self.threshold, self.tmode, self.cooldown, self.eps = threshold, threshold_mode, cooldown, eps
        self.min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * len(lrs)
        self.best = math.inf if mode == "min" else -math.inf
        self.bad = 0
        self.cool = 0

    def better(self, a):
        if self.mode == "min" and self.tmode == "rel":
            return a < self.best * (1 - self.threshold)
        if self.mode == "min":
            return a < self.best - self.threshold
        if self.tmode == "rel":
            return a > self.best * (1 + self.threshold)
        return a > self.best + self.threshold

    def step(self, metric):
        if self.better(metric):
            self.best, self.bad = metric, 0
        else:
            self.bad += 1
        if self.cool > 0:
            self.cool -= 1
            self.bad = 0
        if self.bad > self.patience:
            for i, lr in enumerate(self.lrs):
                new = max(lr * self.factor, self.min_lrs[i])
                if lr - new > self.eps:
                    self.lrs[i] = new
            self.cool = self.cooldown
            self.bad = 0
        return list(self.lrs)


PLATEAU = [
    {"mode": "min", "factor": 0.5, "patience": 2},
    {"mode": "max", "factor": 0.1, "patience": 1},
    {"mode": "min", "factor": 0.5, "patience": 1, "threshold": 0.1, "threshold_mode": "rel"},
    {"mode": "min", "factor": 0.5, "patience": 1, "threshold": 0.3, "threshold_mode": "abs"},
    {"mode": "max", "factor": 0.5, "patience": 0, "threshold": 0.2, "threshold_mode": "abs"},
    {"mode": "min", "factor": 0.5, "patience": 0, "cooldown": 2},
    {"mode": "min", "factor": 0.2, "patience": 0, "min_lr": 0.004},
    {"mode": "min", "factor": 0.2, "patience": 0, "min_lr": [0.01, 0.0001]},
    {"mode": "min", "factor": 0.9, "patience": 0, "eps": 0.005},
]


@pytest.mark.parametrize("kw", PLATEAU, ids=[",".join(f"{k}={v}" for k, v in kw.items()) for kw in PLATEAU])
def test_reduce_lr_on_plateau(kw):
    """ReduceLROnPlateau against its documented rule on a metric sequence with improvements, small (below
    threshold) improvements and plateaus: mode, factor, patience, threshold rel/abs, cooldown, min_lr
    (scalar and per group) and eps; catches patience off by one, threshold ignored, cooldown ignored,
    lr going below min_lr."""
    metrics = [10.0, 9.0, 8.95, 8.9, 9.5, 7.0, 7.0, 6.99, 7.2, 8.0, 5.0, 5.0, 5.0, 5.0, 4.9, 6.0, 6.0, 6.0, 6.0, 6.0]
    if kw["mode"] == "max":
        metrics = [-m for m in metrics]
    opt = _optimizer()
    sched = S.ReduceLROnPlateau(opt, **kw)
    r = _PlateauRef(BASE, **kw)
    for i, m in enumerate(metrics):
        opt.step()
        sched.step(m)
        exp = r.step(m)
        assert_close("lr_scheduler.ReduceLROnPlateau", np.array([g["lr"] for g in opt.param_groups]), np.array(exp),
                     op="exact", rtol=1e-12, atol=0, args=f"{kw}, after metric #{i} = {m}")
    assert_true("lr_scheduler.ReduceLROnPlateau", r.lrs != list(BASE), "metric sequence never triggered a reduction (test is vacuous)")


def test_reduce_lr_on_plateau_invalid():
    """factor >= 1, an unknown mode or threshold_mode, and a min_lr list of the wrong length raise ValueError."""
    opt = _optimizer()
    assert_raises("lr_scheduler.ReduceLROnPlateau", ValueError, S.ReduceLROnPlateau, opt, factor=1.0, args="factor=1.0")
    assert_raises("lr_scheduler.ReduceLROnPlateau", ValueError, S.ReduceLROnPlateau, opt, mode="up", args="mode='up'")
    assert_raises("lr_scheduler.ReduceLROnPlateau", ValueError, S.ReduceLROnPlateau, opt, threshold_mode="pct", args="threshold_mode='pct'")
    assert_raises("lr_scheduler.ReduceLROnPlateau", ValueError, S.ReduceLROnPlateau, opt, min_lr=[0.1], args="min_lr of length 1 for 2 groups")


# ---------------------------------------------------------------------------- composition
def test_sequential_lr():
    """SequentialLR(LinearLR warm-up for 3 epochs, then ExponentialLR): the second scheduler starts from the
    base lr at the milestone with its own epoch count restarted; catches a milestone off by one."""
    opt = _optimizer()
    warm = S.LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=3)
    decay = S.ExponentialLR(opt, gamma=0.5)
    got = _trajectory(opt, S.SequentialLR(opt, schedulers=[warm, decay], milestones=[3]), 8)
    exp = _closed(lambda b, t: b * (0.1 + 0.9 * t / 3) if t < 3 else b * 0.5 ** (t - 3), 8)
    assert_close("lr_scheduler.SequentialLR", got, exp, op="exact", rtol=1e-12, atol=1e-15)


def test_chained_scheduler():
    """ChainedScheduler([ConstantLR, ExponentialLR]) multiplies both factors every step; catches only the last
    scheduler taking effect."""
    opt = _optimizer()
    chain = S.ChainedScheduler([S.ConstantLR(opt, factor=0.5, total_iters=2), S.ExponentialLR(opt, gamma=0.9)])
    got = _trajectory(opt, chain, 6)
    exp = _closed(lambda b, t: b * (0.5 if t < 2 else 1.0) * 0.9 ** t, 6)
    assert_close("lr_scheduler.ChainedScheduler", got, exp, op="exact", rtol=1e-12, atol=1e-15)


def test_two_schedulers_stepped_together():
    """Two schedulers stepped one after the other on the same optimiser compose multiplicatively
    (the documented chaining pattern): StepLR then ExponentialLR."""
    opt = _optimizer()
    s1, s2 = S.StepLR(opt, step_size=2, gamma=0.1), S.ExponentialLR(opt, gamma=0.9)
    got = [[g["lr"] for g in opt.param_groups]]
    for _ in range(6):
        opt.step(); s1.step(); s2.step()
        got.append([g["lr"] for g in opt.param_groups])
    exp = _closed(lambda b, t: b * 0.1 ** (t // 2) * 0.9 ** t, 6)
    assert_close("lr_scheduler", np.array(got), exp, op="exact", rtol=1e-12, atol=1e-15, args="StepLR + ExponentialLR")


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "OneCycleLR", "ReduceLROnPlateau", "LinearLR"])
def test_scheduler_state_dict_resume(name):
    """state_dict() after 4 epochs loaded into a fresh scheduler (on a fresh optimiser whose lr was restored
    from the optimiser state_dict) reproduces the rest of the trajectory exactly; catches a scheduler that
    loses last_epoch, its best/num_bad_epochs or its cooldown counter."""
    def make(o):
        return {"StepLR": lambda: S.StepLR(o, 3, 0.5), "CosineAnnealingLR": lambda: S.CosineAnnealingLR(o, T_max=6, eta_min=0.001),
                "OneCycleLR": lambda: S.OneCycleLR(o, max_lr=[0.5, 0.1], total_steps=14),
                "ReduceLROnPlateau": lambda: S.ReduceLROnPlateau(o, factor=0.5, patience=1, cooldown=1),
                "LinearLR": lambda: S.LinearLR(o, start_factor=0.2, total_iters=6)}[name]()
    metrics = [5.0, 4.0, 4.0, 4.0, 3.0, 3.0, 3.0, 3.0, 3.5, 3.0, 2.0, 2.0, 2.0]

    def step(o, s, i):
        o.step()
        s.step(metrics[i]) if name == "ReduceLROnPlateau" else s.step()
    oa = _optimizer(); sa = make(oa)
    for i in range(4):
        step(oa, sa, i)
    o_sd, s_sd = copy.deepcopy(oa.state_dict()), copy.deepcopy(sa.state_dict())
    ob = _optimizer(lrs=(0.7, 0.7)); sb = make(ob)
    ob.load_state_dict(o_sd); sb.load_state_dict(s_sd)
    for i in range(4, 13):
        step(oa, sa, i); step(ob, sb, i)
        assert_equal(f"lr_scheduler.{name}.load_state_dict", [g["lr"] for g in ob.param_groups], [g["lr"] for g in oa.param_groups],
                     args=f"epoch {i + 1} after restore at 4")


def test_scheduler_initial_lr_and_last_epoch():
    """Constructing a scheduler stores 'initial_lr' in each group and sets last_epoch to 0; a scheduler
    built with last_epoch=k on a group without 'initial_lr' raises KeyError (documented resume contract)."""
    opt = _optimizer()
    sched = S.StepLR(opt, step_size=2)
    assert_equal("lr_scheduler.StepLR", [g["initial_lr"] for g in opt.param_groups], list(BASE))
    assert_equal("lr_scheduler.StepLR", sched.last_epoch, 0)
    assert_raises("lr_scheduler.StepLR", KeyError, S.StepLR, _optimizer(), step_size=2, last_epoch=3, args="last_epoch=3 without initial_lr")


def test_scheduler_step_order_warning():
    """Calling scheduler.step() before any optimizer.step() warns (UserWarning): the documented order check."""
    opt = _optimizer()
    sched = S.StepLR(opt, step_size=1)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        sched.step()
    assert_true("lr_scheduler.StepLR.step", any("optimizer.step()" in str(x.message) for x in w),
                "no warning for scheduler.step() before optimizer.step()")
