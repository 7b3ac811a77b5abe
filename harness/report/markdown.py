"""Markdown renderer: fits a GitHub Actions step summary ($GITHUB_STEP_SUMMARY, limit 1 MiB).

Compact on top (verdict, reasons, counts), long lists folded into ``<details>``. Every value that
comes from a run (node ids, messages, hostnames) is HTML-escaped, since GitHub renders inline
HTML in step summaries, and ``|`` is escaped so it cannot break a table.
"""
from __future__ import annotations

import html as _html

from harness.numfmt import num, pct as _pct
from harness.report import markdown_coverage

LIMIT_BYTES = 1024 * 1024 - 4096  # GitHub refuses step summaries over 1 MiB


def _esc(s) -> str:
    return _html.escape(str(s if s is not None else "–"), quote=False).replace("|", "&#124;").replace("\n", " ").replace("\r", " ")


def _code(s) -> str:
    return f"<code>{_esc(s)}</code>"


def _first_line(msg, n=240) -> str:
    lines = (msg or "").strip().splitlines()
    return _esc(lines[0][:n]) if lines else ""


def _num(x, spec=".3g") -> str:
    return _esc(num(x, spec))


def _frac(n, d) -> str:
    return f"{n}/{d}"


def render(model: dict, *, max_items: int = 200) -> str:
    text = _render(model, max_items)
    while len(text.encode("utf-8")) > LIMIT_BYTES and max_items > 5:
        max_items //= 4
        text = _render(model, max_items)
    if len(text.encode("utf-8")) > LIMIT_BYTES:  # pathological: cut, keeping the top
        text = text.encode("utf-8")[:LIMIT_BYTES].decode("utf-8", "ignore") + "\n\n*(truncated)*\n"
    return text


def _render(model: dict, max_items: int) -> str:
    t = model["totals"]
    cmp = model.get("comparison")
    L = [f"# {_esc(model['title'])}", ""]
    if model.get("gate"):
        g = model["gate"]
        icon = "✅" if g["verdict"] == "PASS" else "❌"
        L += [f"{icon} **{_esc(g['line'])}**", ""]
        if g["reasons"]:
            L += ["**Blocking:**", ""] + [f"- {_esc(r)}" for r in g["reasons"]] + [""]
        if g["warnings"]:
            L += ["**Warnings:**", ""] + [f"- {_esc(w)}" for w in g["warnings"]] + [""]
    else:
        L += [f"**Verdict: {model['verdict']}**", ""]
    if model.get("incomplete"):
        L += [f"⚠️ **INCOMPLETE**: the run was interrupted or crashed; {t['total']} tests recorded.", ""]
    L += [f"{t['passed']} passed, {t['failed']} failed, {t['error']} errors, {t['skipped']} skipped, "
          f"{t['xfailed']} xfailed, {t['xpassed']} xpassed of {t['total']} "
          f"(tier {_esc(model['run']['tier'])}, devices {_esc(', '.join(model['run']['devices'] or []))}"
          f"{', label ' + _esc(model['run']['label']) if model['run'].get('label') else ''})", ""]
    if cmp:
        L += _changes(cmp, model["change_kinds"], max_items)
        L += _drift(cmp, max_items)
        L += _benchmarks(cmp, max_items, model.get("signals", ()), model.get("counter_kinds", ()))
    L += _sections(model)
    L += ["<details><summary>By section × device × dtype</summary>", "",
          "| section | device | dtype | passed | failed+error | skipped | xfailed | total |",
          "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in model["conformance"][: max_items * 5]:
        L.append(f"| {_esc(r['section'])} | {_esc(r['device'])} | {_esc(r['dtype'])} | {_frac(r['passed'], r['total'])} | "
                 f"{r['failed'] + r['error']} | {r['skipped']} | {r['xfailed']} | {r['total']} |")
    L += ["", "</details>", ""]
    L += markdown_coverage.lines(model.get("coverage"), max_items, _esc, _code)
    if model["failures"] and not cmp:
        L += [f"<details><summary>Failures ({len(model['failures'])})</summary>", ""]
        for f in model["failures"][:max_items]:
            L.append(f"- {_code(f['nodeid'])} ({f['status']}): {_first_line(f['message'])}")
        L += ["", "</details>", ""]
    if model["precision"]:
        L += ["<details><summary>Closest to tolerance</summary>", "",
              "| test | api | dtype | op | max abs err | error/allowed |", "|---|---|---|---|---:|---:|"]
        for p in model["precision"][:15]:
            L.append(f"| {_code(p['nodeid'])} | {_esc(p['api'])} | {_esc(p['dtype'])} | {_esc(p['op'])} | "
                     f"{_num(p['max_abs_err'])} | {_num(p['ratio'], '.3f')} |")
        L += ["", "</details>", ""]
    if model["skips"]:
        L += [f"<details><summary>Skip reasons ({sum(n for _, n in model['skips'])} skipped)</summary>", ""]
        for reason, n in model["skips"][:20]:
            L.append(f"- {n} × {_esc(str(reason)[:200])}")
        L += ["", "</details>", ""]
    if model.get("history"):
        L += _history(model["history"], max_items)
    L += _environment(model)
    return "\n".join(L) + "\n"


def _sections(model) -> list[str]:
    cmp = model.get("comparison")
    if cmp:
        L = ["## Conformance by section", "",
             "| section | passed | failed | error | skipped | xfailed | xpassed | baseline passed | time (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in model["sections"]:
            b = r.get("baseline")
            L.append(f"| {_esc(r['section'])} | {_frac(r['passed'], r['total'])} | {r['failed']} | {r['error']} | "
                     f"{r['skipped']} | {r['xfailed']} | {r['xpassed']} | "
                     f"{_frac(b['passed'], b['total']) if b else '–'} | {r['duration']} |")
    else:
        L = ["## Conformance by section", "",
             "| section | passed | failed | error | skipped | xfailed | xpassed | total | time (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in model["sections"]:
            L.append(f"| {_esc(r['section'])} | {r['passed']} | {r['failed']} | {r['error']} | {r['skipped']} | "
                     f"{r['xfailed']} | {r['xpassed']} | {r['total']} | {r['duration']} |")
    return L + [""]


def _changes(cmp, kinds, max_items) -> list[str]:
    counts = cmp["counts"]
    b, c = cmp["baseline"], cmp["candidate"]
    L = ["## What changed", "",
         f"Baseline: torch {_esc(b['torch'])} on {_esc(b['hostname'])}, {b['tests']} tests"
         f"{', label ' + _esc(b['label']) if b.get('label') else ''}. "
         f"Candidate: torch {_esc(c['torch'])} on {_esc(c['hostname'])}, {c['tests']} tests"
         f"{', label ' + _esc(c['label']) if c.get('label') else ''}.", ""]
    if not counts:
        return L + ["No test changed its outcome.", ""]
    L += ["| change | tests |", "|---|---:|"]
    for kind in kinds:
        if counts.get(kind["key"]):
            L.append(f"| {kind['title']} | {counts[kind['key']]} |")
    L.append("")
    for kind in kinds:
        k, title = kind["key"], kind["title"]
        rows = [r for r in cmp["tests"] if r["change"] == k]
        if not rows:
            continue
        open_ = " open" if k in ("new_failure", "improved") else ""
        L += [f"<details{open_}><summary>{title} ({len(rows)})</summary>", ""]
        for r in rows[:max_items]:
            extra = ""
            if r.get("expectation"):
                extra = f" — {_esc(r['expectation']['reason'])}"
            elif r["change"] in ("new_failure", "still_failing"):
                extra = f" — {_first_line(r['message'])}"
            mode = " *(advisory section)*" if r["change"] == "new_failure" and r["mode"] != "blocking" else ""
            was = f"{r['baseline'] or 'absent'} → {r['candidate'] or 'absent'}"
            L.append(f"- {_code(r['nodeid'])} ({was}){mode}{extra}")
        if len(rows) > max_items:
            L.append(f"- … and {len(rows) - max_items} more (see index.html / comparison.json)")
        L += ["", "</details>", ""]
    stale = cmp["manifest"]["stale"]
    if stale:
        L += [f"<details><summary>Stale manifest entries ({len(stale)})</summary>", ""]
        L += [f"- {_code(e['description'])} — {_esc(e['reason'])} ({_esc(e['source'])})" for e in stale[:max_items]]
        L += ["", "</details>", ""]
    return L


def _drift(cmp, max_items) -> list[str]:
    rows = cmp["drift"]
    if not rows:
        return []
    pol = cmp["policy"]["precision"]
    L = [f"## Precision drift ({len(rows)})", "",
         f"Tests whose worst error/allowance grew ≥ {pol['growth_factor']:g}× and is above {pol['min_ratio']:g} "
         "(above 1 fails).", "",
         "<details><summary>Tests</summary>", "",
         "| test | baseline | candidate | growth | status |", "|---|---:|---:|---:|---|"]
    for r in rows[:max_items]:
        L.append(f"| {_code(r['nodeid'])} | {_num(r['baseline_ratio'])} | {_num(r['candidate_ratio'])} | "
                 f"{_num(r['growth'], '.3g')}× | {r['status']} |")
    return L + ["", "</details>", ""]


def _instructions(r) -> str:
    ins = r.get("instructions")
    if not ins:
        return "–"
    if ins.get("ratio") is None:
        return _esc(ins.get("reason"))
    return f"{_pct(ins['ratio'])} (margin {ins['margin']:.2%})"


def _counters(r, kinds) -> str:
    cnt = r.get("counters")
    if not cnt:
        return "–"
    titles = {k["key"]: k["title"] for k in kinds}
    return "; ".join(f"{titles[k]} {cnt['values'][k]['baseline']} → {cnt['values'][k]['candidate']}"
                     for k in cnt["changed"]) or "none"


def _benchmarks(cmp, max_items, signals=(), kinds=()) -> list[str]:
    rows = cmp["benchmarks"]
    if not rows:
        return []
    n = {}
    for r in rows:
        n[r.get("verdict")] = n.get(r.get("verdict"), 0) + 1
    L = ["## Performance", "",
         ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(n.items(), key=lambda kv: -kv[1]))
         + f" (statistics: {_esc(cmp.get('bench_stats'))})", ""]
    L += [f"- **{_esc(sg['title'])}**: {_esc(sg['note'])}" for sg in signals] + ([""] if signals else [])
    head = ["| benchmark | verdict | time ratio | CI | q | by | instructions | counters changed | "
            "roofline (base → cand) | gates |",
            "|---|---|---:|---|---:|---|---|---|---|---|"]

    def line(r):
        ci = f"{_pct(r.get('ci_low'))} … {_pct(r.get('ci_high'))}" if r.get("ci_low") is not None else "–"
        roof = f"{_num(r.get('roofline_fraction_baseline'), '.0%')} → {_num(r.get('roofline_fraction_candidate'), '.0%')}"
        gates = "**yes**" if r.get("gating") else ("advisory" + (f": {_esc(r['advisory_reason'])}" if r.get("advisory_reason") else ""))
        ratio = _pct(r.get("ratio")) + (f" ({_pct(r.get('raw_ratio'))} raw)" if r.get("normalised_by") else "")
        return (f"| {_code(r['name'])} | {_esc(r.get('verdict'))} | {ratio} | {ci} | {_num(r.get('q_value'), '.2g')} | "
                f"{_esc(r.get('signal'))} | {_instructions(r)} | {_esc(_counters(r, kinds))} | {roof} | {gates} |")

    notable = [r for r in rows if r.get("verdict") not in ("unchanged",)]
    if notable:
        L += head + [line(r) for r in notable[:max_items]] + [""]
    L += [f"<details><summary>All benchmarks ({len(rows)})</summary>", ""] + head
    L += [line(r) for r in rows[: max_items * 2]] + ["", "</details>", ""]
    return L


def _history(hist, max_items) -> list[str]:
    runs = hist["runs"]
    L = [f"<details><summary>History ({len(runs)} runs)</summary>", "",
         "| run | created | torch | passed | failed+error | skipped | total |", "|---|---|---|---:|---:|---:|---:|"]
    for r in runs[-max_items:]:
        L.append(f"| {_esc(r.get('label') or (r.get('run_id') or '')[:8])} | {_esc(r.get('created'))} | "
                 f"{_esc(r.get('torch'))} | {r['passed']} | {r['failed'] + r['error']} | {r['skipped']} | {r['total']} |")
    L += ["", "</details>", ""]
    if not hist.get("changes"):
        return L
    steps = hist["steps"]
    L += [f"### Change-points ({len(steps)})", ""]
    if steps:
        L += ["| benchmark | series | step | first run after it | created | torch | before → after |",
              "|---|---|---:|---|---|---|---:|"]
        for st in steps[:max_items]:
            L.append(f"| {_code(st['name'])} | {st['kind']} | {_pct(1 + st['change'])} | "
                     f"{_esc(st.get('label') or (st.get('run_id') or '')[:8])} | {_esc(st.get('created'))} | "
                     f"{_esc(st.get('torch'))} | {_num(st['before'], '.4g')} → {_num(st['after'], '.4g')} |")
    else:
        L.append("No step in any series.")
    if hist["insufficient"]:
        L += ["", f"Insufficient data (fewer than {hist['min_points']} points): "
              + ", ".join(f"{_code(x['name'])} ({x['kind']})" for x in hist["insufficient"][:max_items])]
    return L + [""]


def _environment(model) -> list[str]:
    rows = model["environment"]
    has_base = any(r.get("baseline") is not None for r in rows) or any(r.get("differs") for r in rows)
    if not has_base:
        L = ["## Environment", "", "| | value |", "|---|---|"]
        return L + [f"| {r['key']} | {_esc(r['value'])} |" for r in rows]
    diff = [r for r in rows if r["differs"]]
    L = ["## Environment", ""]
    if diff:
        L += ["| differs | candidate | baseline |", "|---|---|---|"]
        L += [f"| **{r['key']}** | {_esc(r['value'])} | {_esc(r['baseline'])} |" for r in diff]
    else:
        L.append("Both runs have the same environment fingerprint.")
    L += ["", "<details><summary>Full fingerprints</summary>", "", "| | candidate | baseline |", "|---|---|---|"]
    L += [f"| {r['key']} | {_esc(r['value'])} | {_esc(r['baseline'])} |" for r in rows]
    return L + ["", "</details>"]
