"""The gate policy: what blocks a change and what only advises, read from a TOML file.

See docs/policy.md for the file format and ``harness/schema/policy-v1.schema.json`` for its schema
(checked with jsonschema: unknown keys are errors, since a typo must not silently turn a blocking
rule into no rule); ``policy/torchconform-policy.toml`` at the root of the checkout is the documented
default. :func:`load` returns a :class:`Policy`; :func:`default` the built-in one used when no file is
given and the checkout's file is absent.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness import schema
from harness.errors import HarnessError
from harness.manifest import Expectation, ManifestError, glob_match, parse_entries

POLICY_ENV = "TORCHCONFORM_POLICY"
CHECKOUT_POLICY = Path(__file__).resolve().parent.parent / "policy" / "torchconform-policy.toml"
MODES = ("gating", "advisory")


class PolicyError(HarnessError):
    """The policy file is missing, not TOML, or says something the gate cannot apply."""


def _toml():
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    try:
        import tomli
    except ImportError:  # pragma: no cover - 3.10 without the 'all' extra
        raise PolicyError("reading a policy file on Python 3.10 needs tomli (pip install tomli)") from None
    return tomli


@dataclass(frozen=True)
class BenchRule:
    pattern: str = "*"
    threshold: float = 0.05  # relative slowdown that counts as a regression (0.05 = 5 %)
    alpha: float = 0.01      # significance level (false-discovery rate across benchmarks)
    mode: str = "gating"     # 'gating': a regression fails the gate; 'advisory': reported only

    @property
    def gating(self) -> bool:
        return self.mode == "gating"

    def matches(self, bench: dict) -> bool:
        return glob_match(self.pattern, bench.get("group")) or glob_match(self.pattern, bench.get("name"))

    def as_dict(self) -> dict:
        return {"pattern": self.pattern, "threshold": self.threshold, "alpha": self.alpha, "mode": self.mode}


# the built-in defaults equal policy/torchconform-policy.toml (a test keeps them in step)
DEFAULT_RULES = (BenchRule("data.*", 0.15, 0.01, "advisory"), BenchRule("distributed.*", 0.20, 0.01, "advisory"),
                 BenchRule("memory.*", 0.10, 0.01, "gating"))


@dataclass
class Policy:
    source: str = "built-in defaults"
    # [gate]
    fail_on_incomplete: bool = True
    fail_on_improved: bool = True
    persistent_failures: str = "advise"   # failing in baseline and candidate alike: 'advise' | 'block'
    vanished_or_skipped: str = "block"    # baseline tests missing from the candidate or newly skipped
    max_vanished_fraction: float = 0.05   # with 'advise': more vanished than this share still fails
    require_same_hardware: bool = True    # benchmark regressions gate only on the same CPU/GPU model
    # [sections]
    blocking_sections: list = field(default_factory=lambda: ["*"])
    advisory_sections: list = field(default_factory=lambda: ["distributed", "ecosystem"])
    # [precision]
    drift_factor: float = 3.0
    drift_min_ratio: float = 0.1
    drift_blocks: bool = False
    # [benchmarks]
    bench_default: BenchRule = field(default_factory=BenchRule)
    bench_rules: list = field(default_factory=lambda: list(DEFAULT_RULES))
    bench_noise: str | None = None  # a noise file from `torchconform bench calibrate` (path)
    # [[expected_failure]] (and included manifests)
    expectations: list = field(default_factory=list)

    def section_mode(self, section: str | None) -> str:
        s = section or "-"
        if any(glob_match(p, s) for p in self.advisory_sections):
            return "advisory"
        if any(glob_match(p, s) for p in self.blocking_sections):
            return "blocking"
        return "advisory"

    def bench_rule(self, bench: dict) -> BenchRule:
        for r in self.bench_rules:
            if r.matches(bench):
                return r
        return self.bench_default

    def as_dict(self) -> dict:
        return {"source": self.source, "fail_on_incomplete": self.fail_on_incomplete,
                "fail_on_improved": self.fail_on_improved, "persistent_failures": self.persistent_failures,
                "max_vanished_fraction": self.max_vanished_fraction,
                "require_same_hardware": self.require_same_hardware,
                "blocking_sections": list(self.blocking_sections), "advisory_sections": list(self.advisory_sections),
                "precision": {"growth_factor": self.drift_factor, "min_ratio": self.drift_min_ratio,
                              "blocking": self.drift_blocks},
                "benchmarks": {"default": self.bench_default.as_dict(),
                               "rules": [r.as_dict() for r in self.bench_rules], "noise": self.bench_noise},
                "expected_failures": len(self.expectations),
                "vanished_or_skipped": self.vanished_or_skipped}


def default() -> Policy:
    return Policy()


# --------------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------------

def _strs(v) -> list:
    return [v] if isinstance(v, str) else list(v)


def _rule(d: dict, base: BenchRule) -> BenchRule:
    return BenchRule(pattern=d.get("pattern", base.pattern), threshold=float(d.get("threshold", base.threshold)),
                     alpha=float(d.get("alpha", base.alpha)), mode=d.get("mode", base.mode))


def from_dict(data: dict, source: str = "<policy>", base_dir: Path | None = None) -> Policy:
    """The policy a parsed TOML document describes; PolicyError (one line) when it breaks the schema."""
    schema.validate("policy", data, source=source, error=PolicyError)
    try:
        return _from_valid_dict(data, source, base_dir)
    except (TypeError, ValueError, AttributeError) as exc:  # only without jsonschema (bare machines)
        raise PolicyError(f"{source}: malformed policy ({type(exc).__name__}: {exc}); install jsonschema "
                          "for a precise message") from None


def _from_valid_dict(data: dict, source: str, base_dir: Path | None) -> Policy:
    p = Policy(source=source)
    g = data.get("gate", {})
    for key in ("fail_on_incomplete", "fail_on_improved", "persistent_failures", "vanished_or_skipped",
                "require_same_hardware"):
        setattr(p, key, g.get(key, getattr(p, key)))
    p.max_vanished_fraction = float(g.get("max_vanished_fraction", p.max_vanished_fraction))
    s = data.get("sections", {})
    p.blocking_sections = _strs(s.get("blocking", p.blocking_sections))
    p.advisory_sections = _strs(s.get("advisory", p.advisory_sections))
    pr = data.get("precision", {})
    p.drift_factor = float(pr.get("growth_factor", p.drift_factor))
    p.drift_min_ratio = float(pr.get("min_ratio", p.drift_min_ratio))
    p.drift_blocks = pr.get("blocking", p.drift_blocks)
    b = data.get("benchmarks", {})
    if "default" in b:
        p.bench_default = _rule(b["default"], BenchRule())
    if b.get("noise"):
        path = Path(b["noise"])
        p.bench_noise = str(base_dir / path if base_dir is not None and not path.is_absolute() else path)
    if "rule" in b:  # a file's rules replace the built-in ones (an empty list: no rules at all)
        p.bench_rules = [_rule(r, p.bench_default) for r in b["rule"]]
    try:
        p.expectations = parse_entries(data.get("expected_failure"), source)
        for inc in _strs(data.get("manifests", [])):
            path = Path(inc)
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            p.expectations += load_manifest(path)
    except ManifestError as exc:
        raise PolicyError(str(exc)) from None
    return p


def _read_toml(path: Path) -> dict:
    if not path.is_file():
        raise PolicyError(f"{path}: no such policy file")
    try:
        with open(path, "rb") as fh:
            return _toml().load(fh)
    except OSError as exc:
        raise PolicyError(f"{path}: cannot be read ({exc})") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise PolicyError(f"{path}: not valid TOML: {exc}") from None


def load_manifest(path: str | os.PathLike) -> list[Expectation]:
    """A manifest file on its own: only ``[[expected_failure]]`` tables (schema ``manifest``)."""
    path = Path(path)
    data = _read_toml(path)
    schema.validate("manifest", data, source=str(path), error=PolicyError)
    try:
        return parse_entries(data.get("expected_failure", []), str(path))
    except ManifestError as exc:
        raise PolicyError(str(exc)) from None


def load(path: str | os.PathLike | None = None, *, manifests=()) -> Policy:
    """The policy in ``path``; without one, $TORCHCONFORM_POLICY, then the checkout's
    ``policy/torchconform-policy.toml``, then the built-in defaults. ``manifests`` adds the
    expected failures of more manifest files."""
    if path is None:
        env = os.environ.get(POLICY_ENV)
        if env:
            path = env
        elif CHECKOUT_POLICY.is_file():
            path = CHECKOUT_POLICY
    if path is None:
        p = default()
    else:
        path = Path(path)
        p = from_dict(_read_toml(path), source=str(path), base_dir=path.parent)
    for m in manifests or ():
        p.expectations = p.expectations + load_manifest(m)
    return p
