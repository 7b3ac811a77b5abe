"""HTML renderer: one self-contained file from a Jinja2 template shipped as package data.

Autoescaping is on for every value: test ids, messages and hostnames come from the run and are
never trusted as markup.
"""
from __future__ import annotations

import jinja2

from harness.numfmt import num, pct

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("harness.report", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


_ENV.filters["pct"] = pct
_ENV.filters["num"] = num


def render(model: dict, template: str = "report.html.j2") -> str:
    return _ENV.get_template(template).render(m=model)
