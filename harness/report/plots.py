"""Plots for the HTML report, rendered with matplotlib's Agg backend into base64 PNG data URIs
(so the report stays one self-contained file, and no user-controlled text ever becomes markup).

Every function returns ``None`` when there is nothing to draw; :func:`unavailable` says why
plots cannot be drawn at all (matplotlib missing), for the report to print instead.
"""
from __future__ import annotations

import base64
import io
import math

MAX_BARS = 40
MAX_PANELS = 12
_COLORS = {"regression": "#c0392b", "improvement": "#1f8a4c", "unchanged": "#4a6fa5", "noisy": "#c77c02"}


def unavailable() -> str | None:
    try:
        import matplotlib  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install
        return f"plots unavailable: matplotlib cannot be imported ({type(exc).__name__}: {exc})"
    return None


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _data_uri(fig) -> str:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _short(s: str, n: int = 64) -> str:
    s = str(s)
    return s if len(s) <= n else s[: n - 1] + "…"


def _finite(*xs) -> bool:
    return all(isinstance(x, (int, float)) and math.isfinite(x) for x in xs)


def bench_ratio(rows: list[dict]) -> str | None:
    """Candidate/baseline time ratio per benchmark with its confidence interval as horizontal
    error bars, the 1.0 line and each benchmark's threshold band (grey); where both runs counted
    instructions, their ratio as an open diamond on the same line."""
    rows = [r for r in rows if _finite(r.get("ratio"))]
    if not rows:
        return None
    # the interesting ones first: gating regressions, then by distance from 1
    rows = sorted(rows, key=lambda r: (not r.get("gating"), -abs(math.log(r["ratio"]))))[:MAX_BARS]
    rows = rows[::-1]  # matplotlib draws y=0 at the bottom
    plt = _pyplot()
    height = 1.2 + 0.32 * len(rows)
    fig, ax = plt.subplots(figsize=(9.5, height))
    ys = list(range(len(rows)))
    for y, r in zip(ys, rows):
        t = r.get("threshold")
        if _finite(t):
            lo, hi = 1 / (1 + t), 1 + t
            ax.barh(y, hi - lo, left=lo, height=0.8, color="#e8ebf2", zorder=0)
    for y, r in zip(ys, rows):
        color = _COLORS.get(r.get("verdict"), "#778")
        lo, hi = r.get("ci_low"), r.get("ci_high")
        if _finite(lo, hi):
            ax.errorbar(r["ratio"], y, xerr=[[max(r["ratio"] - lo, 0)], [max(hi - r["ratio"], 0)]], fmt="o",
                        color=color, ecolor=color, capsize=3, markersize=5, zorder=3)
        else:
            ax.plot(r["ratio"], y, "o", color=color, markersize=5, zorder=3)
        if r.get("gating") and r.get("verdict") == "regression":
            ax.plot(r["ratio"], y, "o", markersize=11, markerfacecolor="none", markeredgecolor=color, zorder=4)
        ins = r.get("instructions") or {}
        if _finite(ins.get("ratio")):  # the exact signal beside the timed one
            ax.plot(ins["ratio"], y, "D", markersize=5, markerfacecolor="white", markeredgecolor=color, zorder=5)
    ax.axvline(1.0, color="#333", linewidth=1, zorder=1)
    ax.set_yticks(ys)
    ax.set_yticklabels([_short(r["name"]) for r in rows], fontsize=8)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel("candidate time / baseline time  (>1 slower; bars: confidence interval; grey: threshold band)")
    ax.grid(axis="x", color="#eee", zorder=0)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=v) for v, c in _COLORS.items()
               if any(r.get("verdict") == v for r in rows)]
    if any(_finite((r.get("instructions") or {}).get("ratio")) for r in rows):
        handles.append(Line2D([], [], marker="D", linestyle="", color="#333", markerfacecolor="white",
                              label="instructions ratio"))
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return _data_uri(fig)


def _step_marks(ax, fit: dict, cruns: list, run_index: dict, scale: float, top: float) -> None:
    """The fitted levels (orange) and each step (red dashed line between the last record before it and
    the first after it, labelled with its size)."""
    for seg in fit.get("segments") or []:
        x0 = run_index.get(cruns[seg["left"]]["run_id"])
        x1 = run_index.get(cruns[seg["right"] - 1]["run_id"])
        if x0 is not None and x1 is not None:
            ax.hlines(seg["value"] * scale, x0 - 0.4, x1 + 0.4, colors="#c77c02", linewidth=2, alpha=0.8, zorder=2)
    for st in fit.get("steps") or []:
        x = run_index.get(st["run_id"])
        if x is None or not _finite(st.get("change")):
            continue
        color = "#c0392b" if st["change"] > 0 else "#1f8a4c"
        ax.axvline(x - 0.5, color=color, linestyle="--", linewidth=1.2, zorder=1)
        ax.annotate(f"{st['change'] * 100:+.1f}%", (x - 0.5, top * 1.07), fontsize=7, color=color, ha="center",
                    va="center", bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": color,
                                       "linewidth": 0.6})


def history(hist: dict) -> str | None:
    """Median time per benchmark across runs (small multiples, one panel per benchmark, the
    interquartile range as error bars), the benchmarks with a change-point first, then those that moved
    most; where ``hist["changes"]`` (:func:`harness.bench.history.changepoints`) has the series, its
    fitted levels and steps are drawn on top."""
    runs, series = hist.get("runs") or [], hist.get("series") or {}
    if len(runs) < 2 or not series:
        return None
    changes = hist.get("changes") or {}
    fits = (changes.get("series") or {}).get("wall") or {}
    cruns = changes.get("runs") or []
    run_index = {r.get("run_id"): i for i, r in enumerate(runs)}

    def spread(points):
        vals = [p["median"] for p in points if p and _finite(p.get("median"))]
        return (max(vals) / min(vals)) if len(vals) >= 2 and min(vals) > 0 else 1.0

    def stepped(name):
        return bool((fits.get(name) or {}).get("steps"))

    names = sorted(series, key=lambda n: (not stepped(n), -spread(series[n])))[:MAX_PANELS]
    names = [n for n in names if sum(1 for p in series[n] if p) >= 2] or names[:1]
    plt = _pyplot()
    cols = 3 if len(names) > 4 else min(len(names), 2)
    nrows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 2.6 * nrows), squeeze=False)
    labels = [_short(r.get("label") or r.get("created") or r.get("run_id") or str(i), 18) for i, r in enumerate(runs)]
    every = max(1, math.ceil(len(runs) / 12))
    for ax, name in zip([a for row in axes for a in row], names):
        xs, ys, lo, hi = [], [], [], []
        for i, p in enumerate(series[name]):
            if p and _finite(p.get("median")):
                xs.append(i)
                ys.append(p["median"])
                lo.append(max(p["median"] - (p.get("q1") if _finite(p.get("q1")) else p["median"]), 0))
                hi.append(max((p.get("q3") if _finite(p.get("q3")) else p["median"]) - p["median"], 0))
        scale, unit = _time_scale(ys)
        ax.errorbar(xs, [y * scale for y in ys], yerr=[[v * scale for v in lo], [v * scale for v in hi]],
                    fmt="o-", color="#4a6fa5", capsize=2, markersize=4)
        ax.set_title(_short(name, 48), fontsize=8, color="#c0392b" if stepped(name) else "black")
        ax.set_xticks(range(0, len(runs), every))
        ax.set_xticklabels(labels[::every], fontsize=7, rotation=30, ha="right")
        ax.set_ylabel(f"median ({unit})", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        top = max((y + h) * scale for y, h in zip(ys, hi)) if ys else 1.0
        if name in fits and cruns:
            _step_marks(ax, fits[name], cruns, run_index, scale, top)
        ax.set_ylim(0, top * 1.15 or 1.0)
        ax.set_xlim(-0.5, len(runs) - 0.5)
        ax.grid(color="#eee")
    for ax in [a for row in axes for a in row][len(names):]:
        ax.set_visible(False)
    fig.subplots_adjust(hspace=0.75, wspace=0.35)  # cheaper than tight_layout; savefig trims the margins
    return _data_uri(fig)


def _time_scale(values):
    m = max(values) if values else 1.0
    for scale, unit in ((1.0, "s"), (1e3, "ms"), (1e6, "µs"), (1e9, "ns")):
        if m * scale >= 1:
            return scale, unit
    return 1e9, "ns"
