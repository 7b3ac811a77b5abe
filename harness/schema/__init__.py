"""One JSON Schema per file format (``<kind>-v<version>.schema.json`` beside this module), one validator.

* ``run-record``: the run record (:mod:`harness.record`);
* ``policy``: the gate policy TOML, after parsing (:mod:`harness.policy`);
* ``manifest``: a file of ``[[expected_failure]]`` tables, and the entry type the policy shares.

:func:`validate` checks a document with jsonschema and turns the first problem into one line such as
``policy.toml: [gate] fail_on_incomplete: 'maybe' is not a boolean``, raised as the caller's error class
(a :class:`~harness.errors.HarnessError`: exit status 2, never a traceback).

Bare machines (a GPU runner with torch and pytest only, see ``scripts/gpu-check``) may lack jsonschema;
there :func:`validate` checks only the top-level ``required`` and unknown keys, so a run record or policy
still loads, and a typo in a top-level policy key is still an error.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from harness.errors import HarnessError

BASE_URI = "https://torchconform.invalid/schema/"


def filename(kind: str, version: int = 1) -> str:
    return f"{kind}-v{version}.schema.json"


@lru_cache(maxsize=None)
def load(kind: str, version: int = 1) -> dict:
    """The schema document of ``kind`` at ``version``."""
    return json.loads(resources.files(__name__).joinpath(filename(kind, version)).read_text("utf-8"))


def _validator(kind: str, version: int):
    import jsonschema

    schema = load(kind, version)
    cls = jsonschema.Draft202012Validator
    try:  # jsonschema >= 4.18: cross-file $refs through a registry
        from referencing import Registry, Resource

        names = ("run-record", "policy", "manifest")
        registry = Registry().with_resources(
            (BASE_URI + filename(k), Resource.from_contents(load(k))) for k in names)
        return cls(schema, registry=registry)
    except ImportError:  # older jsonschema: a resolver with the same documents
        store = {BASE_URI + filename(k): load(k) for k in ("run-record", "policy", "manifest")}
        return cls(schema, resolver=jsonschema.RefResolver.from_schema(schema, store=store))


@lru_cache(maxsize=None)
def _cached_validator(kind: str, version: int):
    return _validator(kind, version)


_TYPE_NAMES = {"boolean": "a boolean (true or false)", "string": "a string", "number": "a number",
               "integer": "an integer", "array": "an array", "object": "a table", "null": "null"}


def _type_name(sub: dict) -> str:
    if sub.get("type") == "array" and "type" in (sub.get("items") or {}):
        return f"an array of {sub['items']['type']}s"
    return _TYPE_NAMES.get(sub["type"], str(sub["type"]))


def _where(path, table_style: bool) -> str:
    parts = [str(p) for p in path]
    if not parts:
        return "top level"
    if not table_style:
        return "/".join(parts)
    out = []
    for p in parts:
        if p.isdigit() and out:
            out[-1] += f" #{int(p) + 1}"
        else:
            out.append(p)
    return ".".join(out)


def describe(err, table_style: bool = True) -> str:
    """One line for a jsonschema error: where, then what is wrong."""
    path = list(err.absolute_path)
    v = err.validator
    if table_style and path and not str(path[-1]).isdigit() and v not in ("additionalProperties", "required"):
        key, where = str(path[-1]), _where(path[:-1], True)
        prefix = (f"[{where}] " if where != "top level" else "") + f"{key}: "
    elif not path:
        prefix = ""
    else:
        prefix = f"[{_where(path, table_style)}] " if table_style else f"at {_where(path, False)}: "
    inst = err.instance
    if v == "additionalProperties":
        allowed = sorted((err.schema.get("properties") or {}))
        unknown = sorted(set(inst) - set(allowed)) if isinstance(inst, dict) else []
        return (f"{prefix}unknown key(s) {', '.join(unknown)}" + (f" (allowed: {', '.join(allowed)})" if allowed else ""))
    if v == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        hint = ((err.schema.get("properties") or {}).get(missing) or {}).get("description")
        return f"{prefix}needs '{missing}'" + (f" ({hint})" if hint else "")
    if v == "type":
        want = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        return f"{prefix}{inst!r} is not {' or '.join(_TYPE_NAMES.get(t, t) for t in want)}"
    if v == "const":
        return f"{prefix}must be {err.validator_value!r}, not {inst!r}"
    if v == "enum":
        return f"{prefix}{inst!r} is not one of {', '.join(repr(c) for c in err.validator_value)}"
    if v == "anyOf" and all("type" in alt for alt in err.validator_value):
        return f"{prefix}{inst!r} is not {' or '.join(_type_name(alt) for alt in err.validator_value)}"
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[v]
        return f"{prefix}{inst!r} must be {op} {err.validator_value}" + (
            f" ({err.schema['description']})" if err.schema.get("description") else "")
    if v in ("minLength", "pattern"):
        return f"{prefix}must not be empty"
    return f"{prefix}{err.message[:300]}"


def validate(kind: str, data, *, source: str, error: type[HarnessError] = HarnessError,
             version: int = 1, what: str | None = None) -> None:
    """Check ``data`` against the ``kind`` schema; raise ``error`` with one line naming ``source``.

    ``what`` (e.g. "invalid run record") replaces the ``[table] key:`` style of config files by a JSON
    path (``at tests/0/status:``), as JSON documents are addressed."""
    try:
        import jsonschema  # noqa: F401
    except ImportError:
        _minimal(kind, data, source=source, error=error, version=version, what=what)
        return
    errors = list(_cached_validator(kind, version).iter_errors(data))
    if not errors:
        return
    if what:  # a JSON document: the first problem in document order, addressed by its path
        errors.sort(key=lambda e: list(e.absolute_path))
        err = errors[0]
        where = "/".join(str(x) for x in err.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise error(f"{source}: {what} at {where}: {err.message[:300]}{more}")
    from jsonschema.exceptions import best_match  # the most specific problem (inside anyOf alternatives)

    raise error(f"{source}: {describe(best_match(errors))}")


def _minimal(kind: str, data, *, source: str, error, version: int, what: str | None) -> None:
    schema = load(kind, version)
    if not isinstance(data, dict):
        raise error(f"{source}: expected a table, found {type(data).__name__}")
    for key in schema.get("required", []):
        if key not in data:
            raise error(f"{source}: {what + ' at (top level): ' if what else ''}'{key}' is a required property")
    if schema.get("additionalProperties") is False:
        unknown = sorted(set(data) - set(schema.get("properties", {})))
        if unknown:
            raise error(f"{source}: unknown key(s) {', '.join(unknown)}")
