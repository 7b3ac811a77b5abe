"""The gate policy: what blocks a change and what only advises, read from a TOML file.

See docs/policy.md for the file format; ``policy/torchconform-policy.toml`` at the root of the
checkout is the documented default. Unknown keys are errors (a typo must not silently turn a
blocking rule into no rule). :func:`load` returns a :class:`Policy`; :func:`default` the
built-in one used when no file is given and the checkout's file is absent.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

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
    max_vanished_fraction: float = 0.05   # more baseline tests than this missing from the candidate fails
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
    bench_noise: str | None = None  # a noise file from `torchconform bench` calibration (path)
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
                "expected_failures": len(self.expectations)}


def default() -> Policy:
    return Policy()


# --------------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------------

_TOP = {"version", "gate", "sections", "precision", "benchmarks", "expected_failure", "manifests"}
_GATE = {"fail_on_incomplete", "fail_on_improved", "persistent_failures", "max_vanished_fraction",
         "require_same_hardware"}
_SECTIONS = {"blocking", "advisory"}
_PRECISION = {"growth_factor", "min_ratio", "blocking"}
_BENCH = {"default", "rule", "noise"}
_RULE = {"pattern", "threshold", "alpha", "mode"}


def _check_keys(d, allowed, where, src):
    if not isinstance(d, dict):
        raise PolicyError(f"{src}: [{where}] must be a table")
    unknown = set(d) - allowed
    if unknown:
        raise PolicyError(f"{src}: unknown key(s) in [{where}]: {', '.join(sorted(unknown))} "
                          f"(allowed: {', '.join(sorted(allowed))})")


def _typed(d, key, types, where, src, default):
    if key not in d:
        return default
    v = d[key]
    if isinstance(v, bool) and bool not in types:
        raise PolicyError(f"{src}: [{where}] {key} must be {' or '.join(t.__name__ for t in types)}, not {v!r}")
    if not isinstance(v, types):
        raise PolicyError(f"{src}: [{where}] {key} must be {' or '.join(t.__name__ for t in types)}, not {v!r}")
    return v


def _str_list(d, key, where, src, default):
    v = _typed(d, key, (list, str), where, src, default)
    if isinstance(v, str):
        v = [v]
    if not all(isinstance(x, str) for x in v):
        raise PolicyError(f"{src}: [{where}] {key} must be a list of strings")
    return list(v)


def _rule(d, where, src, base: BenchRule | None = None) -> BenchRule:
    base = base or BenchRule()
    _check_keys(d, _RULE, where, src)
    thr = float(_typed(d, "threshold", (int, float), where, src, base.threshold))
    alpha = float(_typed(d, "alpha", (int, float), where, src, base.alpha))
    mode = _typed(d, "mode", (str,), where, src, base.mode)
    if not 0 <= thr < 10:
        raise PolicyError(f"{src}: [{where}] threshold {thr} is a relative slowdown (0.05 = 5 %), not {thr}")
    if not 0 < alpha < 1:
        raise PolicyError(f"{src}: [{where}] alpha must be between 0 and 1, not {alpha}")
    if mode not in MODES:
        raise PolicyError(f"{src}: [{where}] mode must be one of {', '.join(MODES)}, not {mode!r}")
    return BenchRule(pattern=_typed(d, "pattern", (str,), where, src, base.pattern), threshold=thr, alpha=alpha,
                     mode=mode)


def from_dict(data: dict, source: str = "<policy>", base_dir: Path | None = None) -> Policy:
    src = source
    _check_keys(data, _TOP, "top level", src)
    if data.get("version", 1) != 1:
        raise PolicyError(f"{src}: policy version {data.get('version')!r} is not supported (this torchconform reads 1)")
    p = Policy(source=source)
    g = data.get("gate", {})
    _check_keys(g, _GATE, "gate", src)
    p.fail_on_incomplete = _typed(g, "fail_on_incomplete", (bool,), "gate", src, p.fail_on_incomplete)
    p.fail_on_improved = _typed(g, "fail_on_improved", (bool,), "gate", src, p.fail_on_improved)
    p.persistent_failures = _typed(g, "persistent_failures", (str,), "gate", src, p.persistent_failures)
    if p.persistent_failures not in ("advise", "block"):
        raise PolicyError(f"{src}: [gate] persistent_failures must be 'advise' or 'block'")
    p.max_vanished_fraction = float(_typed(g, "max_vanished_fraction", (int, float), "gate", src,
                                           p.max_vanished_fraction))
    p.require_same_hardware = _typed(g, "require_same_hardware", (bool,), "gate", src, p.require_same_hardware)
    s = data.get("sections", {})
    _check_keys(s, _SECTIONS, "sections", src)
    p.blocking_sections = _str_list(s, "blocking", "sections", src, p.blocking_sections)
    p.advisory_sections = _str_list(s, "advisory", "sections", src, p.advisory_sections)
    pr = data.get("precision", {})
    _check_keys(pr, _PRECISION, "precision", src)
    p.drift_factor = float(_typed(pr, "growth_factor", (int, float), "precision", src, p.drift_factor))
    p.drift_min_ratio = float(_typed(pr, "min_ratio", (int, float), "precision", src, p.drift_min_ratio))
    p.drift_blocks = _typed(pr, "blocking", (bool,), "precision", src, p.drift_blocks)
    if p.drift_factor <= 1:
        raise PolicyError(f"{src}: [precision] growth_factor must be above 1")
    b = data.get("benchmarks", {})
    _check_keys(b, _BENCH, "benchmarks", src)
    if "default" in b:
        p.bench_default = _rule(b["default"], "benchmarks.default", src)
        if p.bench_default.pattern != "*":
            raise PolicyError(f"{src}: [benchmarks.default] takes no pattern (it applies to every other benchmark)")
    noise = _typed(b, "noise", (str,), "benchmarks", src, None)
    if noise:
        path = Path(noise)
        p.bench_noise = str(base_dir / path if base_dir is not None and not path.is_absolute() else path)
    rules = b.get("rule", [])
    if "rule" in b:  # a file's rules replace the built-in ones (an empty list: no rules at all)
        p.bench_rules = []
    if not isinstance(rules, list):
        raise PolicyError(f"{src}: benchmarks.rule must be an array of tables ([[benchmarks.rule]])")
    for i, r in enumerate(rules):
        if not isinstance(r, dict) or "pattern" not in r:
            raise PolicyError(f"{src}: [[benchmarks.rule]] #{i + 1} needs a pattern")
        p.bench_rules.append(_rule(r, f"benchmarks.rule #{i + 1}", src, base=p.bench_default))
    try:
        p.expectations = parse_entries(data.get("expected_failure"), src)
        for inc in _str_list(data, "manifests", "top level", src, []):
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
    """A manifest file on its own: only ``[[expected_failure]]`` tables."""
    path = Path(path)
    data = _read_toml(path)
    unknown = set(data) - {"expected_failure", "version"}
    if unknown:
        raise PolicyError(f"{path}: a manifest holds only [[expected_failure]] tables (found {', '.join(sorted(unknown))})")
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
