"""The run record: one versioned JSON document per run, and the vocabulary every layer reads it with.

* Vocabulary, defined once: the outcome :data:`STATUSES` and what counts as :data:`FAILING`,
  :data:`PASSING` or :data:`NOT_RUN`; :func:`severity` (which outcome wins when a test has two);
  :data:`CHANGE_KINDS`, the ways a test's outcome can change between two records (key, order, title);
  :func:`median` of a benchmark's samples; :func:`environment_rows`, the fingerprint as report rows.
* :func:`new_record` starts one; :func:`save` writes atomically (temp file in the same folder, fsync,
  rename), so an interrupted run never leaves a truncated record; :func:`plain` turns values into the
  plain JSON types the record holds (at the boundary where data enters it).
* :func:`load` reads and validates against ``schema/run-record-v<N>.schema.json`` and turns every way
  a file can be wrong (missing, unreadable, not JSON, foreign, unknown schema version, invalid) into one
  :class:`~harness.errors.RecordError` with a one-line message. Records of an older supported schema
  version are upgraded on load (:data:`UPGRADES`), so every layer sees the current one.
* Benchmark vocabulary: :data:`BENCH_SIGNALS` (what decided a benchmark's verdict: the instruction
  count or the wall time) and :data:`COUNTERS` (the exact per-call counters), each with its title, for
  every renderer.

Schema version 2 (issue 15) adds optional benchmark fields: ``rounds`` (interleaved rounds and the
ceilings probed beside them), ``counters`` and ``instructions``, and ``bench.rounds``/``probes``/
``instructions``. A version-1 record is valid version 2 once its version says so (:func:`_v1_to_v2`).
An optional top-level ``coverage`` (``torchconform run --coverage``) holds the coverage ledger of
:mod:`harness.coverage` (its keys are described in the schema); a record without it stays valid.

Combining records (shards, machines) is :mod:`harness.merge`.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import statistics
import tempfile
import uuid
from pathlib import Path
from typing import Callable, NamedTuple

from harness import schema as _schema
from harness.errors import RecordError

SCHEMA_VERSION = 2


def _v1_to_v2(data: dict) -> dict:
    """Version 2 only adds optional fields: a version-1 record is a version-2 record without them."""
    return dict(data, schema_version=2)


# schema_version N -> a function upgrading an N document to N + 1
UPGRADES: dict[int, Callable[[dict], dict]] = {1: _v1_to_v2}
KIND = "torchconform.run-record"
RECORD_FILENAME = "record.json"

# ---------------------------------------------------------------------------------------- vocabulary

STATUSES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
#: outcomes that count against a run. An xpass is one: the test did not do what its marker (or the
#: expectation manifest) said, so the marker or the manifest is out of date.
FAILING = ("failed", "error", "xpassed")
PASSING = ("passed",)
NOT_RUN = ("skipped", "xfailed")
_SEVERITY = {"passed": 0, "xpassed": 1, "skipped": 1, "xfailed": 1, "failed": 2, "error": 3}


def severity(status: str) -> int:
    """Which outcome wins when one test has two (its phases, or two shards): error > failed > the rest."""
    return _SEVERITY[status]


class ChangeKind(NamedTuple):
    key: str
    title: str   # a heading for the tests of this kind
    short: str   # a count's label ("2 new failures")
    card: bool   # shown among the headline counts


#: How a test's outcome changed from the baseline to the candidate, in report order.
CHANGE_KINDS = (
    ChangeKind("new_failure", "New failures", "new failures", True),
    ChangeKind("improved", "Unexpected passes of expected failures (update the manifest)", "unexpected passes", True),
    ChangeKind("fixed", "Fixed", "fixed", True),
    ChangeKind("still_failing", "Still failing (not in the manifest)", "still failing", True),
    ChangeKind("newly_skipped", "Newly skipped", "newly skipped", True),
    ChangeKind("expected", "Expected failures (manifest)", "expected", True),
    ChangeKind("appeared", "Tests that appeared", "appeared", True),
    ChangeKind("vanished", "Tests that vanished", "vanished", True),
    ChangeKind("unskipped", "Now running (skipped in the baseline)", "now running", False),
    ChangeKind("expected_skipped", "Manifest entries whose test was skipped", "expected, skipped", False),
)
CHANGE_ORDER = tuple(k.key for k in CHANGE_KINDS)


class SignalKind(NamedTuple):
    key: str
    title: str   # a column or heading
    note: str    # what the signal can and cannot see, for the reports


#: What decided a benchmark's verdict, in order of precedence (harness.bench.significance).
BENCH_SIGNALS = (
    SignalKind("instructions", "instructions", "instructions executed per call (callgrind, one thread): exact and "
           "load-independent; blind to memory-bound slowdowns, threading and clock frequency"),
    SignalKind("wall", "wall time", "seconds per call; between-run noise decides whether it may gate (advisory "
           "where its minimum detectable effect is above the threshold or there is no between-run evidence)"),
)


class CounterKind(NamedTuple):
    key: str
    title: str
    unit: str


#: Exact per-call counters recorded beside the samples (a change is reported exactly, no statistics).
COUNTERS = (
    CounterKind("dispatcher_calls", "dispatcher calls", "aten ops"),
    CounterKind("bytes_allocated", "bytes allocated", "B"),
    CounterKind("allocations", "allocations", ""),
    CounterKind("graph_nodes", "graph nodes", "nodes"),
)


def median(samples) -> float | None:
    """The median of the finite numbers in ``samples`` (the mean of the middle two for an even count);
    None when there are none. Every median of benchmark samples in torchconform is this one."""
    xs = [float(x) for x in samples if isinstance(x, (int, float)) and math.isfinite(x)]
    return statistics.median(xs) if xs else None


def environment_rows(fp: dict, base: dict | None = None) -> list[dict]:
    """The fingerprint as report rows (key, value); with ``base`` also the baseline's value and whether
    the two differ."""
    def pick(f):
        if not f:
            return {}
        t = f.get("torch") or {}
        c = f.get("cpu") or {}
        return {
            "torch": t.get("version"), "torch git": t.get("git_version"), "CUDA": t.get("cuda"), "cuDNN": t.get("cudnn"),
            "driver": (f.get("driver") or {}).get("driver_version"),
            "GPUs": ", ".join(g.get("name", "") for g in f.get("gpus") or []) or "none",
            "CPU": c.get("model"), "CPU flags": " ".join(c.get("flags") or []),
            "CPU capability": t.get("cpu_capability"), "logical CPUs": c.get("logical_cpus"),
            "torch threads": t.get("num_threads"), "Python": (f.get("python") or {}).get("version"),
            "numpy": (f.get("packages") or {}).get("numpy"),
            "hostname": f.get("hostname"), "git": ((f.get("git") or {}).get("commit") or "")[:12] or None,
        }
    cur, old = pick(fp), pick(base)
    return [{"key": k, "value": v, "baseline": old.get(k) if base else None,
             "differs": bool(base) and old.get(k) != v} for k, v in cur.items()]


# ---------------------------------------------------------------------------------------- writing

def utcnow() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def new_record(*, fingerprint: dict, tier: str | None = None, devices: list[str] | None = None,
               argv: list[str] | None = None, label: str | None = None, shard: str | None = None) -> dict:
    return {
        "kind": KIND,
        "schema_version": SCHEMA_VERSION,
        "run_id": uuid.uuid4().hex,
        "created": utcnow(),
        "finished": None,
        "complete": False,
        "exit_status": None,
        "tier": tier,
        "devices": list(devices or []),
        "argv": list(argv or []),
        "label": label,
        "shard": shard,
        "fingerprint": fingerprint,
        "ceilings": {},
        "tests": [],
        "benchmarks": [],
    }


def plain(o):
    """``o`` with plain JSON types only: NumPy (and other) scalars become Python numbers via
    ``.item()``, tuples and sets lists, paths strings. Applied where data enters a record (e.g. the
    plugin's payload on a test report, which pytest-xdist must serialise)."""
    if o is None or type(o) in (bool, int, float, str):  # exact types: numpy.float64 subclasses float
        return o
    if isinstance(o, str):
        return str(o)
    if isinstance(o, dict):
        return {str(k): plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, set, frozenset)):
        return [plain(v) for v in o]
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    if hasattr(o, "item") and callable(o.item):
        return plain(o.item())
    return str(o)


def _default(o):
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def dumps(record: dict) -> str:
    return json.dumps(record, indent=1, default=_default, allow_nan=False)


def save(record: dict, path: str | os.PathLike) -> Path:
    """Write ``record`` to ``path`` atomically; parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = dumps(sanitize(record))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def sanitize(o):
    """Replace non-finite floats (not valid JSON) with the strings 'inf', '-inf', 'nan'."""
    if isinstance(o, float):
        if o != o:
            return "nan"
        if o in (float("inf"), float("-inf")):
            return "inf" if o > 0 else "-inf"
        return o
    if isinstance(o, dict):
        return {k: sanitize(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [sanitize(v) for v in o]
    return o


# ---------------------------------------------------------------------------------------- reading

def resolve_path(path: str | os.PathLike) -> Path:
    """A record path, or a folder holding ``record.json`` (what ``run``/``bench --out`` write)."""
    p = Path(path)
    if p.is_dir():
        candidate = p / RECORD_FILENAME
        if not candidate.is_file():
            raise RecordError(f"{p}: is a folder with no {RECORD_FILENAME} in it")
        return candidate
    return p


def load(path: str | os.PathLike) -> dict:
    """Read and validate a run record; every failure is one :class:`RecordError` line."""
    p = resolve_path(path)
    if not p.exists():
        raise RecordError(f"{p}: no such file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordError(f"{p}: cannot be read ({exc.__class__.__name__}: {exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " (empty file)" if not text.strip() else ""
        raise RecordError(f"{p}: not a run record: corrupt JSON at line {exc.lineno} column {exc.colno}: {exc.msg}{hint}") from None
    return validate(data, source=str(p))


def validate(data, *, source: str = "<record>") -> dict:
    """``data`` checked against its schema version and upgraded to the current one."""
    if not isinstance(data, dict) or data.get("kind") != KIND:
        what = type(data).__name__ if not isinstance(data, dict) else "JSON without kind='torchconform.run-record'"
        raise RecordError(f"{source}: not a torchconform run record (found {what})")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION and version not in UPGRADES:
        raise RecordError(f"{source}: run record schema version {version!r} is not supported "
                          f"(this torchconform reads version {SCHEMA_VERSION})")
    try:
        _schema.validate("run-record", data, source=source, error=RecordError, version=version,
                         what="invalid run record")
    except RecordError as exc:
        raise RecordError(f"{exc} (schema version {version})") from None
    for i, t in enumerate(data["tests"]):  # what a bare machine without jsonschema still checks
        if not isinstance(t, dict) or "nodeid" not in t or t.get("status") not in STATUSES:
            raise RecordError(f"{source}: invalid run record at tests/{i}: needs nodeid and a known status")
    while data["schema_version"] != SCHEMA_VERSION:
        data = UPGRADES[data["schema_version"]](data)
    return data
