"""Markdown renderer: fits a GitHub Actions step summary."""
from __future__ import annotations


def _esc(s) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def render(model: dict) -> str:
    t = model["totals"]
    lines = [f"# {model['title']}", "",
             f"**Verdict: {model['verdict']}** — {t['passed']} passed, {t['failed']} failed, {t['error']} errors, "
             f"{t['skipped']} skipped, {t['xfailed']} xfailed, {t['xpassed']} xpassed of {t['total']} "
             f"(tier {model['run']['tier']}, devices {', '.join(model['run']['devices'] or [])})", "",
             "## Conformance by section", "",
             "| section | passed | failed | error | skipped | xfailed | xpassed | total | time (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in model["sections"]:
        lines.append(f"| {_esc(r['section'])} | {r['passed']} | {r['failed']} | {r['error']} | {r['skipped']} | "
                     f"{r['xfailed']} | {r['xpassed']} | {r['total']} | {r['duration']} |")
    lines += ["", "<details><summary>By section × device × dtype</summary>", "",
              "| section | device | dtype | passed | failed | skipped | xfailed | total |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in model["conformance"]:
        lines.append(f"| {_esc(r['section'])} | {_esc(r['device'])} | {_esc(r['dtype'])} | {r['passed']} | "
                     f"{r['failed'] + r['error']} | {r['skipped']} | {r['xfailed']} | {r['total']} |")
    lines += ["", "</details>", ""]
    if model["failures"]:
        lines += ["## Failures", ""]
        for f in model["failures"][:100]:
            first = (f["message"] or "").strip().splitlines()[:1]
            lines.append(f"- `{_esc(f['nodeid'])}` ({f['status']}): {_esc(first[0] if first else '')[:300]}")
        lines.append("")
    if model["precision"]:
        lines += ["## Closest to tolerance", "", "| test | api | dtype | op | max abs err | error/allowed |", "|---|---|---|---|---:|---:|"]
        for p in model["precision"][:15]:
            lines.append(f"| `{_esc(p['nodeid'])}` | {_esc(p['api'])} | {p['dtype']} | {p['op']} | {p['max_abs_err']:.3g} | {p['ratio']:.3f} |")
        lines.append("")
    if model["skips"]:
        lines += ["## Skip reasons", ""]
        for reason, n in model["skips"][:20]:
            lines.append(f"- {n} × {_esc(reason)[:200]}")
        lines.append("")
    lines += ["## Environment", "", "| | value |", "|---|---|"]
    for r in model["environment"]:
        lines.append(f"| {r['key']} | {_esc(r['value'])} |")
    return "\n".join(lines) + "\n"
