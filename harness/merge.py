"""Merging run records: shards of one run, or runs of several machines, into one record.

:func:`merge` refuses records whose fingerprints are not comparable (other torch build, CPU model,
GPUs, Python) unless told otherwise, keeps the more severe outcome of a test that two records hold,
gives the merged record one expectation manifest, and keeps each benchmark case once (with the
instruction counts and counters another record holds for it; the ceilings probed per device). The
records' coverage ledgers (``coverage``, from ``torchconform run --coverage``) of one torch build are
merged with :func:`harness.coverage.merge`; where only some records carry one, the merged ledger is
marked ``partial`` (a lower bound); ledgers of different torch builds (``--allow-mixed``) are not merged.
"""
from __future__ import annotations

import uuid

from harness import coverage
from harness.errors import RecordError
from harness.fingerprint import comparability_key, mixed_keys
from harness.record import severity

def merge(records: list[dict], *, allow_mixed: bool = False, sources: list[str] | None = None) -> dict:
    """Merge shards or machines' records into one. Records whose fingerprints are not comparable
    (other torch build, CPU model, GPUs, Python) are refused unless ``allow_mixed``; then the merged
    fingerprint's ``mixed`` says which keys differed (key -> distinct values), so a later comparison
    knows its benchmarks came from several machines. A test that appears in two records keeps the more
    severe outcome."""
    
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
    renumber = _merge_manifests(records, out)
    tests: dict[str, dict] = {}
    for r, ids in zip(records, renumber):
        for t in r["tests"]:
            prev = tests.get(t["nodeid"])
            if prev is None or severity(t["status"]) > severity(prev["status"]):
                exp = t.get("expectation")
                tests[t["nodeid"]] = dict(t, expectation=dict(exp, id=ids[exp["id"]])) if exp and ids else t
    out["tests"] = list(tests.values())
    out["benchmarks"] = _merge_benchmarks(records)
    ceilings: dict = {}
    for r in records:
        ceilings.update(r.get("ceilings") or {})
    out["ceilings"] = ceilings
    probes = {d: p for r in records for d, p in ((r.get("bench") or {}).get("probes") or {}).items()}
    if probes:
        out["bench"] = dict(out.get("bench") or {}, probes=probes)
    mixed = mixed_keys([r.get("fingerprint") or {} for r in records])
    if mixed:
        out["fingerprint"] = dict(out.get("fingerprint") or {}, mixed=mixed)
    _merge_coverage(records, out)
    return out


def _merge_coverage(records: list[dict], out: dict) -> None:
    """``out["coverage"]``: the records' ledgers merged (none when no record has one, or when they are of
    different torch builds: ``--allow-mixed`` only; the CLI warns)."""
    out.pop("coverage", None)
    covs = [r["coverage"] for r in records if r.get("coverage")]
    if not covs or len({c["torch"] for c in covs}) > 1:
        return
    try:
        cov = coverage.merge(covs)
    except ValueError as exc:
        raise RecordError(f"cannot merge the records' coverage: {exc}") from None
    notes = [c["partial"] for c in covs if c.get("partial")]
    if len(covs) < len(records):
        notes.append(f"{len(records) - len(covs)} of {len(records)} merged records carry no coverage: "
                     "their tests are not counted")
    if notes:
        cov["partial"] = "; ".join(notes)
    out["coverage"] = cov


def _merge_benchmarks(records: list[dict]) -> list[dict]:
    """Every benchmark entry once. Shards hold disjoint cases; where two records hold the same case (a
    wall-time run and a separate instruction-lane run of it), the entry with samples is kept and takes
    the other's ``instructions`` and ``counters`` when it has none (schema version 2 fields)."""
    out: dict[str, dict] = {}
    for r in records:
        for b in r["benchmarks"]:
            prev = out.get(b["name"])
            if prev is None:
                out[b["name"]] = b
                continue
            keep, other = (prev, b) if prev.get("samples") or not b.get("samples") else (b, prev)
            out[b["name"]] = dict(keep, **{k: other[k] for k in ("instructions", "counters")
                                           if other.get(k) and not keep.get(k)})
    return list(out.values())


def _merge_manifests(records: list[dict], out: dict) -> list[dict | None]:
    """One ``manifest`` for the merged record: the union of the records' active entries (shards of
    one run carry the same list). Returns, per record, its entries' old -> new index (None: unchanged)."""
    manifests = [r.get("manifest") for r in records]
    if all(m is None for m in manifests) or all(m == manifests[0] for m in manifests):
        return [None] * len(records)
    active: list[dict] = []
    renumber = []
    for m in manifests:
        ids = {}
        for i, e in enumerate((m or {}).get("active", [])):
            if e not in active:
                active.append(e)
            ids[i] = active.index(e)
        renumber.append(ids)
    first = next(m for m in manifests if m is not None)
    out["manifest"] = dict(first, active=active, source=", ".join(dict.fromkeys(m["source"] for m in manifests if m)))
    return renumber
