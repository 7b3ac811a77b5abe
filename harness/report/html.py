"""HTML renderer: one self-contained file from a Jinja2 template shipped as package data.

Autoescaping is on for every value: test ids, messages and hostnames come from the run and are
never trusted as markup.
"""
from __future__ import annotations

import jinja2

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("harness.report", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _fmt(x, spec=".3g"):
    if x is None:
        return "–"
    if isinstance(x, (int, float)):
        return format(x, spec)
    return str(x)


def _pct(x):
    if x is None:
        return "–"
    return f"{(float(x) - 1) * 100:+.1f}%"


def _num(x, spec=".3g"):
    if x is None:
        return "–"
    try:
        return format(float(x), spec)
    except (TypeError, ValueError):
        return str(x)


_ENV.filters["fmt"] = _fmt
_ENV.filters["pct"] = _pct
_ENV.filters["num"] = _num


def render(model: dict, template: str = "report.html.j2") -> str:
    return _ENV.get_template(template).render(m=model)
