"""The run record: round trip, schema validation, atomic writes, merge, bad input."""
from __future__ import annotations

import json
import os

import pytest

from harness import merge, outcomes, record
from harness.errors import RecordError
from tests.conftest import make_record, write_json


def test_round_trip(tmp_path, sample_record):
    path = record.save(sample_record, tmp_path / "a" / "record.json")
    assert record.load(path) == json.loads(json.dumps(sample_record))
    # a folder holding record.json is accepted wherever a record is
    assert record.load(tmp_path / "a")["run_id"] == sample_record["run_id"]


def test_non_finite_floats_are_saved_as_strings_and_validate(tmp_path, sample_record):
    sample_record["tests"][0]["checks"]["worst_ratio"] = float("inf")
    sample_record["tests"][0]["checks"]["entries"][0]["ratio"] = float("nan")
    path = record.save(sample_record, tmp_path / "r.json")
    text = path.read_text()
    assert "Infinity" not in text and "NaN" not in text
    loaded = record.load(path)
    assert loaded["tests"][0]["checks"]["worst_ratio"] == "inf"


def test_schema_rejects_bad_status(tmp_path, sample_record):
    sample_record["tests"][0]["status"] = "sorta-passed"
    path = write_json(tmp_path / "r.json", sample_record)
    with pytest.raises(RecordError, match=r"invalid run record at tests/0/status"):
        record.load(path)


def test_schema_rejects_missing_samples(tmp_path):
    rec = make_record(benchmarks=[{"name": "x"}])
    with pytest.raises(RecordError, match="samples"):
        record.load(write_json(tmp_path / "r.json", rec))


@pytest.mark.parametrize("content,match", [
    (None, "no such file"),
    ("", "corrupt JSON .*empty file"),
    ('{"kind": "torchconform.run-record", "schema_version": 1, "tests": [', "corrupt JSON at line 1"),
    ('{"results": []}', "not a torchconform run record"),
    ("[1, 2, 3]", "not a torchconform run record .*list"),
    ('{"kind": "torchconform.run-record", "schema_version": 99}', "schema version 99 is not supported"),
])
def test_bad_input_is_one_clear_error(tmp_path, content, match):
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(RecordError, match=match) as info:
        record.load(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_folder_without_record(tmp_path):
    with pytest.raises(RecordError, match="no record.json"):
        record.load(tmp_path)


def test_binary_garbage(tmp_path):
    path = tmp_path / "r.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(RecordError, match="cannot be read|corrupt JSON"):
        record.load(path)


def test_atomic_save_keeps_old_file_on_failure(tmp_path, sample_record, monkeypatch):
    path = record.save(sample_record, tmp_path / "record.json")
    before = path.read_text()

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    changed = dict(sample_record, label="new")
    with pytest.raises(OSError, match="disk full"):
        record.save(changed, path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"], "temp file left behind"


def test_atomic_save_interrupted_during_write(tmp_path, sample_record, monkeypatch):
    """A KeyboardInterrupt while serialising leaves neither a truncated record nor a temp file."""
    path = tmp_path / "record.json"

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(record, "dumps", interrupted)
    with pytest.raises(KeyboardInterrupt):
        record.save(sample_record, path)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_outcome_fold_statuses():
    f = outcomes.OutcomeFold()
    f.add_phase("a", "setup", "passed", 0.1)
    f.add_phase("a", "call", "passed", 0.2)
    f.add_phase("a", "teardown", "passed", 0.0)
    f.add_phase("b", "setup", "passed", 0)
    f.add_phase("b", "call", "failed", 0, message="boom")
    f.add_phase("b", "teardown", "passed", 0)
    f.add_phase("c", "setup", "skipped", 0, message="why")
    f.add_phase("c", "teardown", "passed", 0)
    f.add_phase("d", "setup", "passed", 0)
    f.add_phase("d", "call", "skipped", 0, wasxfail=True, message="expected failure: r")
    f.add_phase("e", "setup", "passed", 0)
    f.add_phase("e", "call", "passed", 0, wasxfail=True)
    f.add_phase("g", "setup", "passed", 0)
    f.add_phase("g", "call", "passed", 0)
    f.add_phase("g", "teardown", "failed", 0, message="teardown broke")
    got = {t["nodeid"]: (t["status"], t["message"]) for t in f.tests()}
    assert got == {"a": ("passed", None), "b": ("failed", "boom"), "c": ("skipped", "why"),
                   "d": ("xfailed", "expected failure: r"), "e": ("xpassed", None), "g": ("error", "teardown broke")}
    assert f.tests()[0]["duration"] == pytest.approx(0.3)


def test_merge_shards_and_refuse_incomparable():
    a = make_record(tests=[{"nodeid": "x", "status": "passed", "duration": 0}])
    b = make_record(tests=[{"nodeid": "y", "status": "failed", "duration": 0},
                           {"nodeid": "x", "status": "failed", "duration": 0}])
    merged = merge.merge([a, b])
    assert {t["nodeid"]: t["status"] for t in merged["tests"]} == {"x": "failed", "y": "failed"}
    assert merged["merged_from"] == [a["run_id"], b["run_id"]]
    record.validate(json.loads(record.dumps(merged)))
    c = make_record()
    c["fingerprint"]["torch"]["version"] = "2.14.1+cpu"
    with pytest.raises(RecordError, match="fingerprints differ in torch"):
        merge.merge([a, c])
    assert merge.merge([a, c], allow_mixed=True)["tests"]
