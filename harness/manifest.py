"""The expectation manifest: failures that are known and accepted on some builds.

Each entry names tests (a glob over pytest node ids), the builds it applies to (``backend``:
``cpu``, ``cuda12.8``, ``rocm6.3``... as a glob; ``torch``: a version specifier such as ``<2.8``
or ``>=2.6,<2.8``, or a glob such as ``2.13.*``), optionally a device and dtype glob, and a
``reason`` (required: an expectation without a reason is a silenced bug).

Against a candidate run, :func:`evaluate` sorts the tests an entry matches into

* ``EXPECTED``: the test fails as the manifest says (fine);
* ``IMPROVED``: the test passes although the manifest says it fails; the gate fails until the
  entry is removed or narrowed, so the manifest never silently outlives the bug it covers;
* ``SKIPPED``: the test did not run, so it says nothing;

and reports entries that apply to this build but match no test of the run as *stale*.

Version matching needs no third-party package: :func:`version_matches` understands the
PEP 440 forms torch uses (``2.8.0``, ``2.8.0a0+gitabc``, ``2.9.0.dev20250601+cu128``,
``2.13.0+cpu``; the ``+local`` part is ignored) and the operators ``== != < <= > >= ~=`` plus
``==X.*`` / ``!=X.*`` prefixes and plain globs. A nightly ``2.8.0.dev…`` sorts below ``2.8.0``,
so ``<2.8`` includes it; write ``2.8.*`` to mean "every 2.8 build, nightlies included".
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from harness.errors import HarnessError

FAILING = ("failed", "error")
PASSING = ("passed", "xpassed")

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
    out = []
    for ch in pattern:
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
    return re.compile("".join(out), re.S)


def glob_match(pattern: str, text: str | None) -> bool:
    """``*`` matches any run of characters, ``?`` one; everything else is literal."""
    if pattern in ("*", ""):
        return True
    if text is None:
        return False
    return _glob_re(pattern).fullmatch(text) is not None


_VERSION_RE = re.compile(
    r"^\s*v?(?P<release>\d+(?:\.\d+)*)"
    r"(?:[-_.]?(?P<pre>a|alpha|b|beta|rc|c)[-_.]?(?P<pre_n>\d*))?"
    r"(?:[-_.]?post[-_.]?(?P<post>\d*))?"
    r"(?:[-_.]?dev[-_.]?(?P<dev>\d*))?"
    r"(?:\+(?P<local>[a-z0-9.]+))?\s*$",
    re.I,
)
_PRE = {"a": -3, "alpha": -3, "b": -2, "beta": -2, "rc": -1, "c": -1}


def parse_version(text: str) -> tuple:
    """A sort key for a PEP 440 version (local label ignored); ManifestError if unparsable."""
    m = _VERSION_RE.match(str(text))
    if not m:
        raise ManifestError(f"not a version: {text!r}")
    release = tuple(int(x) for x in m["release"].split("."))
    release = release + (0,) * (6 - len(release)) if len(release) < 6 else release
    if m["pre"]:
        phase = (_PRE[m["pre"].lower()], int(m["pre_n"] or 0))
    elif m["dev"] is not None and m["post"] is None:
        phase = (-4, 0)  # 2.8.0.dev1 < 2.8.0a0 < 2.8.0
    else:
        phase = (0, 0)
    post = int(m["post"] or 0) if m["post"] is not None else -1
    dev = (0, int(m["dev"] or 0)) if m["dev"] is not None else (1, 0)
    return (release, phase, post, dev)


def _public(text: str) -> str:
    return str(text).split("+", 1)[0].strip()


def _release(text: str) -> list[int]:
    m = _VERSION_RE.match(text)
    if not m:
        raise ManifestError(f"not a version: {text!r}")
    return [int(x) for x in m["release"].split(".")]


def _clause_matches(clause: str, version: str) -> bool:
    m = re.match(r"^\s*(===|==|!=|<=|>=|<|>|~=)\s*(.+?)\s*$", clause)
    if not m:
        # a bare glob ("2.13.*") or an exact version ("2.7.1"); compared with the public part
        if "*" in clause or "?" in clause:
            return glob_match(clause.strip(), _public(version)) or glob_match(clause.strip(), version)
        return parse_version(version) == parse_version(clause)
    op, target = m.groups()
    if target.endswith(".*"):
        if op not in ("==", "!="):
            raise ManifestError(f"'{clause}': a '.*' suffix only works with == and !=")
        prefix = _release(target[:-2])
        rel = _release(_public(version))
        rel = rel + [0] * (len(prefix) - len(rel))
        hit = rel[:len(prefix)] == prefix
        return hit if op == "==" else not hit
    if op == "===":
        return _public(version) == target
    v, t = parse_version(version), parse_version(target)
    if op == "==":
        return v == t
    if op == "!=":
        return v != t
    if op == "<":
        return v < t
    if op == "<=":
        return v <= t
    if op == ">":
        return v > t
    if op == ">=":
        return v >= t
    # ~=X.Y.Z: >= X.Y.Z and == X.Y.*
    rel = _release(target)
    if len(rel) < 2:
        raise ManifestError(f"'{clause}': ~= needs at least two release numbers")
    prefix = ".".join(str(x) for x in rel[:-1]) + ".*"
    return v >= t and _clause_matches("==" + prefix, version)


def version_matches(spec: str | None, version: str | None) -> bool:
    """Whether torch ``version`` satisfies ``spec`` ('*'/empty: always; comma: all clauses)."""
    if spec is None or spec.strip() in ("", "*"):
        return True
    if version is None:
        return False
    return all(_clause_matches(c, version) for c in spec.split(",") if c.strip())


def check_specifier(spec: str) -> None:
    """Raise ManifestError now (at load time) for a specifier that can never be evaluated."""
    version_matches(spec, "0.0.0")


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


_KEYS = {"test", "reason", "backend", "torch", "device", "dtype", "strict", "issue"}


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
        if not isinstance(d, dict):
            raise ManifestError(f"{source}: an expected failure must be a table, not {type(d).__name__}")
        unknown = set(d) - _KEYS
        if unknown:
            raise ManifestError(f"{source}: unknown key(s) {', '.join(sorted(unknown))} "
                                f"(allowed: {', '.join(sorted(_KEYS))})")
        if not str(d.get("test") or "").strip():
            raise ManifestError(f"{source}: an expected failure needs 'test' (a node-id glob)")
        if not str(d.get("reason") or "").strip():
            raise ManifestError(f"{source}: expected failure {d['test']!r} has no 'reason'; say why it is accepted")
        for k in ("test", "reason", "backend", "torch", "device", "dtype"):
            if k in d and not isinstance(d[k], str):
                raise ManifestError(f"{source}: '{k}' must be a string, not {type(d[k]).__name__}")
        if "strict" in d and not isinstance(d["strict"], bool):
            raise ManifestError(f"{source}: 'strict' must be true or false")
        torch_spec = d.get("torch", "*")
        try:
            check_specifier(torch_spec)
        except ManifestError as exc:
            raise ManifestError(f"{source}: torch = {torch_spec!r}: {exc}") from None
        return cls(test=d["test"].strip(), reason=d["reason"].strip(), backend=d.get("backend", "*"),
                   torch=torch_spec, device=d.get("device", "*"), dtype=d.get("dtype", "*"),
                   strict=d.get("strict", True), issue=d.get("issue"), source=source)

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
    if items is None:
        return []
    if not isinstance(items, list):
        raise ManifestError(f"{source}: 'expected_failure' must be an array of tables ([[expected_failure]])")
    return [Expectation.from_dict(d, f"{source}: expected_failure #{i + 1}") for i, d in enumerate(items)]


@dataclass
class ManifestResult:
    torch_version: str | None
    backend: str
    active: list[Expectation] = field(default_factory=list)
    inactive: int = 0
    outcomes: dict = field(default_factory=dict)  # nodeid -> (EXPECTED|IMPROVED|SKIPPED, Expectation)
    stale: list[Expectation] = field(default_factory=list)

    def of(self, nodeid: str):
        return self.outcomes.get(nodeid)

    def nodeids(self, kind: str) -> list[str]:
        return [n for n, (k, _) in self.outcomes.items() if k == kind]

    def as_dict(self) -> dict:
        return {"torch": self.torch_version, "backend": self.backend, "active": len(self.active),
                "inactive": self.inactive,
                "expected": [{"nodeid": n, **e.as_dict()} for n, (k, e) in self.outcomes.items() if k == EXPECTED],
                "improved": [{"nodeid": n, **e.as_dict()} for n, (k, e) in self.outcomes.items() if k == IMPROVED],
                "skipped": [{"nodeid": n, **e.as_dict()} for n, (k, e) in self.outcomes.items() if k == SKIPPED],
                "stale": [e.as_dict() for e in self.stale]}


def evaluate(entries: list[Expectation], rec: dict) -> ManifestResult:
    """Match the manifest against the tests of run record ``rec`` (the candidate)."""
    fp = rec.get("fingerprint") or {}
    version = (fp.get("torch") or {}).get("version")
    backend = backend_of(fp)
    res = ManifestResult(torch_version=version, backend=backend)
    res.active = [e for e in entries if e.applies_to(version, backend)]
    res.inactive = len(entries) - len(res.active)
    used: set[int] = set()
    for t in rec.get("tests", []):
        for i, e in enumerate(res.active):
            if e.matches(t):
                used.add(i)
                status = t["status"]
                if status in FAILING or status == "xfailed":
                    kind = EXPECTED
                elif status in PASSING:
                    if not e.strict:
                        break  # a flaky entry (strict = false) may pass: an ordinary pass
                    kind = IMPROVED
                else:
                    kind = SKIPPED
                res.outcomes[t["nodeid"]] = (kind, e)
                break
    res.stale = [e for i, e in enumerate(res.active) if i not in used]
    return res
