"""Benchmark cases (a definition, its parameters, a device) and choosing them: devices, tier,
``--section`` and pytest-like ``-k`` expressions."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from harness.bench.definition import Benchmark
from harness.errors import HarnessError


@dataclass(frozen=True)
class Case:
    bench: Benchmark
    params: dict
    device: str

    @property
    def name(self) -> str:
        return self.bench.case_id(self.params, self.device)

    @property
    def group(self) -> str:
        return self.bench.group or self.bench.full_name


def keyword_matcher(expr: str | None) -> Callable[[str], bool]:
    """A predicate for a pytest-like ``-k`` expression: words match as case-insensitive substrings of
    the text, combined with ``and``, ``or``, ``not`` and parentheses (e.g. ``"matmul and not bfloat16"``)."""
    if expr is None or not expr.strip():
        return lambda text: True
    tokens = re.findall(r"\(|\)|[^\s()]+", expr)
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take():
        nonlocal pos
        tok = peek()
        pos += 1
        return tok

    def parse_or():
        left = parse_and()
        while peek() == "or":
            take()
            right = parse_and()
            left = (lambda a, b: lambda t: a(t) or b(t))(left, right)
        return left

    def parse_and():
        left = parse_not()
        while peek() == "and":
            take()
            right = parse_not()
            left = (lambda a, b: lambda t: a(t) and b(t))(left, right)
        return left

    def parse_not():
        if peek() == "not":
            take()
            inner = parse_not()
            return lambda t: not inner(t)
        return parse_atom()

    def parse_atom():
        tok = take()
        if tok is None:
            raise HarnessError(f"-k {expr!r}: expression ends unexpectedly")
        if tok == "(":
            inner = parse_or()
            if take() != ")":
                raise HarnessError(f"-k {expr!r}: missing ')'")
            return inner
        if tok in (")", "and", "or"):
            raise HarnessError(f"-k {expr!r}: unexpected {tok!r}")
        word = tok.lower()
        return lambda t: word in t

    pred = parse_or()
    if pos != len(tokens):
        raise HarnessError(f"-k {expr!r}: unexpected {tokens[pos]!r}")
    return lambda text: pred(text.lower())


def select_cases(benchmarks: list[Benchmark], devices: list[str], *, keyword: str | None = None,
                 sections: list[str] | None = None, tier: str = "default") -> list[Case]:
    """Cases in a stable order (definition, parameters, device).

    ``tier``: 'full' runs every benchmark; 'default' leaves out ``tier='full'`` benchmarks; 'smoke'
    additionally keeps only the first parameter combination of each benchmark."""
    if tier not in ("smoke", "default", "full"):
        raise HarnessError(f"unknown tier {tier!r} (smoke, default, full)")
    match = keyword_matcher(keyword)
    wanted = None
    if sections:
        wanted = {s.strip() for item in sections for s in item.split(",") if s.strip()}
        known = {b.section for b in benchmarks}
        unknown = sorted(wanted - known)
        if unknown:
            raise HarnessError(f"--section {', '.join(unknown)}: no benchmarks in that section "
                               f"(sections with benchmarks: {', '.join(sorted(known)) or 'none'})")
    cases: list[Case] = []
    for b in benchmarks:
        if wanted is not None and b.section not in wanted:
            continue
        if b.tier == "full" and tier != "full":
            continue
        combos = b.cases()
        if tier == "smoke":
            combos = combos[:1]
        for params in combos:
            for dev in devices:
                c = Case(b, params, dev)
                if match(" ".join([c.name, c.group, b.section, b.description or ""])):
                    cases.append(c)
    return cases
