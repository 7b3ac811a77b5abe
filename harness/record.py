"""The run record: one versioned JSON document per run.

* :func:`new_record` starts one; :class:`OutcomeFolder` folds pytest-like phase reports
  (setup/call/teardown) into one status per test; :func:`save` writes atomically (temp file in
  the same folder, fsync, rename), so an interrupted run never leaves a truncated record.
* :func:`load` reads and validates against ``schema/run-record-v1.schema.json`` and turns every
  way a file can be wrong (missing, unreadable, not JSON, foreign, another schema version,
  invalid) into one :class:`~harness.errors.RecordError` with a one-line message.
* :func:`merge` combines shards or machines' records, refusing incomparable fingerprints.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
import uuid
from functools import lru_cache
from importlib import resources
from pathlib import Path

from harness.errors import RecordError

SCHEMA_VERSION = 1
KIND = "torchconform.run-record"
RECORD_FILENAME = "record.json"
STATUSES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


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


class OutcomeFolder:
    """Folds phase reports into one outcome per test, in the order tests finish.

    Rules (as pytest's own summary counts them): a failing setup or teardown is ``error``; a
    skip in any phase is ``skipped`` unless it is an expected failure (``xfailed``); a call that
    passes while marked xfail is ``xpassed`` (non-strict) or ``failed`` (strict, reported by pytest
    as a failure); otherwise the call's outcome.
    """

    def __init__(self):
        self._tests: dict[str, dict] = {}

    def add_phase(self, nodeid: str, phase: str, outcome: str, duration: float, *, message: str | None = None,
                  wasxfail: bool = False, meta: dict | None = None) -> None:
        t = self._tests.get(nodeid)
        if t is None:
            t = {"nodeid": nodeid, "section": None, "device": None, "dtype": None, "status": "passed",
                 "duration": 0.0, "message": None, "markers": []}
            t.update(meta or {})
            self._tests[nodeid] = t
        t["duration"] = round(t["duration"] + max(float(duration), 0.0), 6)
        status = None
        if outcome == "failed":
            status = "failed" if phase == "call" else "error"
        elif outcome == "skipped":
            status = "xfailed" if wasxfail else "skipped"
        elif outcome == "passed" and phase == "call" and wasxfail:
            status = "xpassed"
        if status is not None and _severity(status) >= _severity(t["status"]):
            t["status"] = status
            if message:
                t["message"] = message[:4000]

    def set_checks(self, nodeid: str, checks: dict) -> None:
        if nodeid in self._tests:
            self._tests[nodeid]["checks"] = checks

    def tests(self) -> list[dict]:
        return list(self._tests.values())


def _severity(status: str) -> int:
    return {"passed": 0, "xpassed": 1, "skipped": 1, "xfailed": 1, "failed": 2, "error": 3}[status]


def _default(o):
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    return str(o)


def dumps(record: dict) -> str:
    return json.dumps(record, indent=1, default=_default, allow_nan=False)


def save(record: dict, path: str | os.PathLike) -> Path:
    """Write ``record`` to ``path`` atomically; parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = dumps(_sanitize(record))
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


def _sanitize(o):
    """Replace non-finite floats (not valid JSON) with the strings 'inf', '-inf', 'nan'."""
    if isinstance(o, float):
        if o != o:
            return "nan"
        if o in (float("inf"), float("-inf")):
            return "inf" if o > 0 else "-inf"
        return o
    if isinstance(o, dict):
        return {k: _sanitize(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_sanitize(v) for v in o]
    return o


@lru_cache(maxsize=None)
def schema() -> dict:
    text = resources.files("harness").joinpath(f"schema/run-record-v{SCHEMA_VERSION}.schema.json").read_text("utf-8")
    return json.loads(text)


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
    if not isinstance(data, dict) or data.get("kind") != KIND:
        what = type(data).__name__ if not isinstance(data, dict) else "JSON without kind='torchconform.run-record'"
        raise RecordError(f"{source}: not a torchconform run record (found {what})")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise RecordError(f"{source}: run record schema version {version!r} is not supported "
                          f"(this torchconform reads version {SCHEMA_VERSION})")
    try:
        import jsonschema
    except ImportError:  # bare machines (e.g. a GPU runner without extras): structural check only
        _minimal_check(data, source)
        return data
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = "/".join(str(x) for x in err.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise RecordError(f"{source}: invalid run record at {where}: {err.message[:300]}{more}")
    return data


def _minimal_check(data: dict, source: str) -> None:
    for key in schema()["required"]:
        if key not in data:
            raise RecordError(f"{source}: invalid run record at (top level): {key!r} is a required property")
    for i, t in enumerate(data["tests"]):
        if not isinstance(t, dict) or "nodeid" not in t or t.get("status") not in STATUSES:
            raise RecordError(f"{source}: invalid run record at tests/{i}: needs nodeid and a known status")


def merge(records: list[dict], *, allow_mixed: bool = False, sources: list[str] | None = None) -> dict:
    """Merge shards or machines' records into one. Records whose fingerprints are not comparable
    (other torch build, CPU model, GPUs, Python) are refused unless ``allow_mixed``; a test that
    appears in two records keeps the more severe outcome."""
    from harness.fingerprint import comparability_key

    if not records:
        raise RecordError("merge needs at least one record")
    sources = sources or [r.get("run_id", "?") for r in records]
    base_key = comparability_key(records[0]["fingerprint"])
    if not allow_mixed:
        for rec, src in zip(records[1:], sources[1:]):
            key = comparability_key(rec["fingerprint"])
            diff = [k for k in base_key if base_key[k] != key[k]]
            if diff:
                k = diff[0]
                raise RecordError(f"refusing to merge {src} with {sources[0]}: fingerprints differ in "
                                  f"{', '.join(diff)} ({base_key[k]!r} vs {key[k]!r}); pass --allow-mixed to merge anyway")
    out = dict(records[0])
    out["run_id"] = uuid.uuid4().hex
    out["merged_from"] = [r["run_id"] for r in records]
    out["shard"] = None
    out["complete"] = all(r.get("complete") for r in records)
    out["created"] = min(r["created"] for r in records)
    out["finished"] = max((r.get("finished") or "") for r in records) or None
    out["devices"] = sorted({d for r in records for d in r.get("devices", [])})
    statuses = [r.get("exit_status") for r in records]
    out["exit_status"] = max((s for s in statuses if s is not None), default=None)
    tests: dict[str, dict] = {}
    for r in records:
        for t in r["tests"]:
            prev = tests.get(t["nodeid"])
            if prev is None or _severity(t["status"]) > _severity(prev["status"]):
                tests[t["nodeid"]] = t
    out["tests"] = list(tests.values())
    out["benchmarks"] = [b for r in records for b in r["benchmarks"]]
    ceilings: dict = {}
    for r in records:
        ceilings.update(r.get("ceilings") or {})
    out["ceilings"] = ceilings
    return out
