"""The expectation manifest: failures that are known and accepted on some builds.

Each entry names tests (a glob over pytest node ids), the builds it applies to (``backend``:
``cpu``, ``cuda12.8``, ``rocm6.3``... as a glob; ``torch``: a PEP 440 version specifier such as
``<2.8`` or ``>=2.6,<2.8``, or a glob such as ``2.13.*``), optionally a device and dtype glob, and a
``reason`` (required: an expectation without a reason is a silenced bug). The file format is
``harness/schema/manifest-v1.schema.json`` (the policy file shares its entry type).

The manifest is applied once, where it changes what pytest reports: the plugin marks the tests an
active entry matches as expected failures and records in the run record which entry applied to which
test (the record's ``manifest`` and each test's ``expectation``). :func:`from_record` reads that back;
:func:`evaluate` applies entries to a record that carries none (a record from an older torchconform,
or one the plugin did not write). Either way, each matched test of the candidate is

* ``EXPECTED``: it failed (or errored, or xfailed) as the manifest says (fine);
* ``IMPROVED``: it passed although the manifest says it fails; the gate fails until the entry is
  removed or narrowed, so the manifest never silently outlives the bug it covers;
* ``SKIPPED``: it did not run, so it says nothing;

and entries that apply to the build but match no test of the run are reported as *stale*.

Versions and specifiers are ``packaging``'s (PEP 440): local labels (``+cpu``) are ignored, and
``<2.8`` does not match 2.8's own pre-releases and nightlies (``2.8.0.dev20250601``); write ``2.8.*``
for every 2.8 build, nightlies included, or ``<2.8.0.dev0`` for "before any 2.8 build".
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from functools import lru_cache

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from harness.errors import HarnessError

EXPECTED = "EXPECTED"
IMPROVED = "IMPROVED"
SKIPPED = "SKIPPED"


class ManifestError(HarnessError):
    """An expectation entry is malformed (missing reason, bad specifier, unknown key)."""


# --------------------------------------------------------------------------------------------
# globs and versions
# --------------------------------------------------------------------------------------------

@lru_cache(maxsize=4096)
def _glob_re(pattern: str) -> re.Pattern:
    # Only '*' and '?' are wildcards: node ids are full of '[' and ']' (parametrize ids), which
    # fnmatch would take for character classes.
    return re.compile("".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern), re.S)


def glob_match(pattern: str, text: str | None) -> bool:
    """``*`` matches any run of characters, ``?`` one; everything else is literal."""
    if pattern in ("*", ""):
        return True
    if text is None:
        return False
    return _glob_re(pattern).fullmatch(text) is not None


def parse_version(text: str) -> Version:
    """A PEP 440 version (comparable, sortable); ManifestError if unparsable."""
    try:
        return Version(str(text).strip())
    except InvalidVersion:
        raise ManifestError(f"not a version: {text!r}") from None


@lru_cache(maxsize=512)
def _specifier(spec: str) -> SpecifierSet | str:
    """The parsed form of a ``torch`` field: a SpecifierSet, or a bare glob (returned as is)."""
    s = spec.strip()
    if not re.match(r"^(===|==|!=|<=|>=|<|>|~=)", s):
        if "*" in s or "?" in s:
            return s
        s = "==" + s  # a bare version means exactly that version
    try:
        return SpecifierSet(s)
    except InvalidSpecifier:
        raise ManifestError(f"not a version specifier (PEP 440, e.g. '<2.8', '>=2.6,<2.8', '==2.7.*'): {spec!r}") from None


def version_matches(spec: str | None, version: str | None) -> bool:
    """Whether torch ``version`` satisfies ``spec`` ('*'/empty: always; a bare glob matches the
    public version; otherwise a PEP 440 specifier set, pre-releases allowed)."""
    if spec is None or spec.strip() in ("", "*"):
        return True
    if version is None:
        return False
    s = _specifier(spec)
    if isinstance(s, str):
        return glob_match(s, str(version).split("+", 1)[0].strip()) or glob_match(s, version)
    return s.contains(parse_version(version), prereleases=True)


def check_specifier(spec: str) -> None:
    """Raise ManifestError now (at load time) for a specifier that can never be evaluated."""
    if spec is not None and spec.strip() not in ("", "*"):
        _specifier(spec)


# --------------------------------------------------------------------------------------------
# entries
# --------------------------------------------------------------------------------------------

def backend_of(fingerprint: dict) -> str:
    """The build flavour of the torch that produced a record: 'cuda12.8', 'rocm6.3' or 'cpu'."""
    t = (fingerprint or {}).get("torch") or {}
    if t.get("hip"):
        return f"rocm{'.'.join(str(t['hip']).split('.')[:2])}"
    if t.get("cuda"):
        return f"cuda{t['cuda']}"
    return "cpu"


@dataclass(frozen=True)
class Expectation:
    test: str
    reason: str
    backend: str = "*"
    torch: str = "*"
    device: str = "*"
    dtype: str = "*"
    strict: bool = True  # an unexpected pass fails the gate; false: flaky, may pass or fail
    issue: str | None = None
    source: str = ""

    @classmethod
    def from_dict(cls, d: dict, source: str = "") -> "Expectation":
        """An entry from a table that passed the schema (:mod:`harness.schema`, ``manifest``); the
        torch specifier is checked here, where it is parsed."""
        torch_spec = d.get("torch", "*")
        try:
            check_specifier(torch_spec)
        except ManifestError as exc:
            raise ManifestError(f"{source}: torch = {torch_spec!r}: {exc}") from None
        return cls(test=d["test"].strip(), reason=d["reason"].strip(), backend=d.get("backend", "*"),
                   torch=torch_spec, device=d.get("device", "*"), dtype=d.get("dtype", "*"),
                   strict=d.get("strict", True), issue=d.get("issue"), source=source)

    @classmethod
    def from_record(cls, d: dict) -> "Expectation":
        """An entry as a run record stores it (:meth:`as_dict`)."""
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})

    def applies_to(self, torch_version: str | None, backend: str) -> bool:
        return glob_match(self.backend, backend) and version_matches(self.torch, torch_version)

    def matches(self, test: dict) -> bool:
        return (glob_match(self.test, test["nodeid"]) and glob_match(self.device, test.get("device"))
                and glob_match(self.dtype, test.get("dtype")))

    def describe(self) -> str:
        where = ", ".join(f"{k} {v}" for k, v in (("backend", self.backend), ("torch", self.torch),
                                                  ("device", self.device), ("dtype", self.dtype)) if v != "*")
        return f"{self.test}" + (f" ({where})" if where else "")

    def as_dict(self) -> dict:
        return {"test": self.test, "reason": self.reason, "backend": self.backend, "torch": self.torch,
                "device": self.device, "dtype": self.dtype, "strict": self.strict, "issue": self.issue,
                "source": self.source, "description": self.describe()}


def parse_entries(items, source: str) -> list[Expectation]:
    """Entries of a schema-checked ``expected_failure`` array."""
    return [Expectation.from_dict(d, f"{source}: expected_failure #{i + 1}") for i, d in enumerate(items or [])]


def active_entries(entries: list[Expectation], torch_version: str | None, backend: str) -> list[Expectation]:
    return [e for e in entries if e.applies_to(torch_version, backend)]


def first_match(active: list[Expectation], test: dict) -> int | None:
    """The index of the first active entry matching ``test`` (nodeid, device, dtype), or None."""
    return next((i for i, e in enumerate(active) if e.matches(test)), None)


def kind_of(status: str, strict: bool) -> str | None:
    """What a matched test's outcome means: EXPECTED when it failed (failed, error, xfailed), IMPROVED
    when its body passed (passed, or xpassed: its expected-failure marker was not met), SKIPPED when it
    did not run; None for a pass under a flaky (``strict = false``) entry: an ordinary pass."""
    if status in ("passed", "xpassed"):
        return IMPROVED if strict else None
    if status == "skipped":
        return SKIPPED
    return EXPECTED


# --------------------------------------------------------------------------------------------
# against a run
# --------------------------------------------------------------------------------------------

@dataclass
class ManifestResult:
    torch_version: str | None
    backend: str
    active: list[Expectation] = field(default_factory=list)
    inactive: int = 0
    outcomes: dict = field(default_factory=dict)  # nodeid -> (EXPECTED|IMPROVED|SKIPPED, Expectation)
    stale: list[Expectation] = field(default_factory=list)
    flaky_passes: set = field(default_factory=set)  # nodeids: a flaky entry's test that passed
    applied_by_run: str | None = None  # the policy the run applied (from the record), else None

    def of(self, nodeid: str):
        return self.outcomes.get(nodeid)

    def nodeids(self, kind: str) -> list[str]:
        return [n for n, (k, _) in self.outcomes.items() if k == kind]

    def as_dict(self) -> dict:
        d = {"torch": self.torch_version, "backend": self.backend, "active": len(self.active),
             "inactive": self.inactive,
             "expected": [{"nodeid": n, **e.as_dict()} for n, (k, e) in self.outcomes.items() if k == EXPECTED],
             "improved": [{"nodeid": n, **e.as_dict()} for n, (k, e) in self.outcomes.items() if k == IMPROVED],
             "skipped": [{"nodeid": n, **e.as_dict()} for n, (k, e) in self.outcomes.items() if k == SKIPPED],
             "stale": [e.as_dict() for e in self.stale]}
        if self.applied_by_run is not None:
            d["applied_at"] = "run"
            d["source"] = self.applied_by_run
        return d


def _fill(res: ManifestResult, matches) -> ManifestResult:
    """``matches``: (test, index into res.active) for every matched test."""
    used: set[int] = set()
    for t, i in matches:
        used.add(i)
        e = res.active[i]
        kind = kind_of(t["status"], e.strict)
        if kind is None:
            res.flaky_passes.add(t["nodeid"])
        else:
            res.outcomes[t["nodeid"]] = (kind, e)
    res.stale = [e for i, e in enumerate(res.active) if i not in used]
    return res


def evaluate(entries: list[Expectation], rec: dict) -> ManifestResult:
    """Match ``entries`` against the tests of run record ``rec`` (the candidate)."""
    fp = rec.get("fingerprint") or {}
    version = (fp.get("torch") or {}).get("version")
    backend = backend_of(fp)
    res = ManifestResult(torch_version=version, backend=backend)
    res.active = active_entries(entries, version, backend)
    res.inactive = len(entries) - len(res.active)
    matches = ((t, first_match(res.active, t)) for t in rec.get("tests", []))
    return _fill(res, [(t, i) for t, i in matches if i is not None])


def from_record(rec: dict) -> ManifestResult | None:
    """The manifest the run applied, as its record says (None when the record carries none)."""
    m = rec.get("manifest")
    if m is None:
        return None
    res = ManifestResult(torch_version=m.get("torch"), backend=m.get("backend", "cpu"),
                         active=[Expectation.from_record(e) for e in m.get("active", [])],
                         inactive=int(m.get("inactive", 0)), applied_by_run=m.get("source", "?"))
    return _fill(res, [(t, t["expectation"]["id"]) for t in rec.get("tests", []) if t.get("expectation")])


def recorded(source: str, torch_version: str | None, backend: str, active: list[Expectation], inactive: int) -> dict:
    """The run record's ``manifest``: what the run applied."""
    return {"source": source, "torch": torch_version, "backend": backend,
            "active": [e.as_dict() for e in active], "inactive": inactive}


def expectation_field(i: int, e: Expectation) -> dict:
    """A test's ``expectation`` in the run record: entry ``i`` of the record's ``manifest.active``."""
    return {"id": i, "reason": e.reason, "entry": e.describe(), "issue": e.issue, "strict": e.strict}
