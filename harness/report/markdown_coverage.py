"""The Markdown report's Coverage section (a record of ``torchconform run --coverage``), from the model's
``coverage`` (:func:`harness.report.model.coverage_model`). Kept apart from :mod:`harness.report.markdown`
(which calls :func:`lines` with its own escaping functions) so that module stays under 300 lines.

With a comparison, the names new in the candidate torch that no checked test uses and the names the
baseline run exercised but the candidate's does not are listed, marked advisory: coverage never decides
the gate.
"""
from __future__ import annotations


def _names(names: list, n_all: int, max_items: int, code) -> str:
    shown = ", ".join(code(n) for n in names[:max_items])
    more = n_all - min(len(names), max_items)
    return shown + (f" … and {more} more (`torchconform coverage RECORD --uncovered`)" if more > 0 else "")


def lines(cov: dict | None, max_items: int, esc, code) -> list[str]:
    """The section's lines (none without coverage). ``esc``/``code``: the Markdown renderer's escaping."""
    if not cov:
        return []
    base = cov["baseline_has"]
    L = ["## Coverage", "",
         f"Exercised by a test that made a check, of what torch {esc(cov['torch'])} offers"
         + (f"; baseline torch {esc(cov['baseline_torch'])}" if base else "") + ".", ""]
    if cov["partial"]:
        L += [f"⚠️ **Partial** (the figures are a lower bound): {esc(cov['partial'])}", ""]
    L += ["| kind | exercised | total | % | touched without a check |" + (" baseline | gained | lost |" if base else ""),
          "|---|---:|---:|---:|---:|" + ("---:|---:|---:|" if base else "")]
    for k in cov["kinds"]:
        row = f"| {k['title']} | {k['covered']} | {k['total']} | {k['percent']:.2f}% | {k['touched']} |"
        if base:
            b = k["baseline"]
            row += f" {b['covered']}/{b['total']} ({b['percent']:.2f}%) | {k['gained']} | {len(k['lost'])} |"
        L.append(row)
    L.append("")
    missing = [f"- {k['title']}: not measured ({esc(k['not_measured'])})" for k in cov["kinds"] if k["not_measured"]]
    L += missing + ([""] if missing else [])
    if base:
        lists = [(k["title"], what, names) for k in cov["kinds"]
                 for what, names in (("new in the candidate torch and untested", k["new_untested"]),
                                     ("exercised by the baseline run, not by this one", k["lost"])) if names]
        L += ["Advisory (coverage never decides the gate): "
              + ("the lists below." if lists else "nothing new in the candidate torch is untested, and nothing "
                 "the baseline run exercised is lost."), ""]
        for title, what, names in lists:
            L += [f"<details open><summary>{title} {what} ({len(names)})</summary>", "",
                  _names(names, len(names), max_items, code), "", "</details>", ""]
    heads = " | ".join(k["key"] for k in cov["kinds"])
    L += ["<details><summary>Coverage by section</summary>", "",
          f"| section | tests | with checks | {heads} |", "|---|---:|---:|" + "---:|" * len(cov["kinds"])]
    for s in cov["sections"]:
        figs = " | ".join(f"{f['covered']} ({f['percent']:.1f}%)" for f in s["figures"])
        L.append(f"| {esc(s['section'])} | {s['tests']} | {s['tests_with_checks']} | {figs} |")
    L += ["", "</details>", ""]
    for k in cov["kinds"]:
        if k["n_uncovered"]:
            L += [f"<details><summary>Uncovered {k['title']} ({k['n_uncovered']})</summary>", "",
                  _names(k["uncovered"], k["n_uncovered"], max_items * 10, code), "", "</details>", ""]
    return L
