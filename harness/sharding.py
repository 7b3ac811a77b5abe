"""Split a test run across runners: a pure, stable selection of node ids for shard ``i`` of ``n``.

``select_shard(nodeids, i, n)`` keeps the node ids whose hash (SHA-1 of the key, not Python's
per-process ``hash``) falls in shard ``i`` (1-based, as in ``--shard 2/4``). The assignment of a
test never depends on which other tests exist, so adding or removing tests does not move the rest
between shards, and every runner computes the same split without talking to the others. The
shards are disjoint and together hold every node id exactly once.

``by="module"`` keys on the file part of the node id (before ``::``), keeping a module's tests on
one runner (module-scoped fixtures are built once); ``by="test"`` (the default) keys on the whole
node id, which balances better. The records of the shards are combined with
``torchconform merge`` (each record's ``shard`` field says ``i/n``).
"""
from __future__ import annotations

import hashlib
from typing import Iterable

from harness.errors import HarnessError


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' → (i, n) with 1 <= i <= n; HarnessError otherwise."""
    try:
        a, b = str(text).split("/")
        i, n = int(a), int(b)
    except ValueError:
        raise HarnessError(f"--shard {text!r}: expected I/N, e.g. 2/4 (shard 2 of 4, counting from 1)") from None
    if n < 1 or not 1 <= i <= n:
        raise HarnessError(f"--shard {text!r}: need 1 <= I <= N")
    return i, n


def shard_of(nodeid: str, n: int, *, by: str = "test") -> int:
    """The 1-based shard that ``nodeid`` belongs to among ``n``."""
    if by == "module":
        key = nodeid.split("::", 1)[0]
    elif by == "test":
        key = nodeid
    else:
        raise ValueError(f"by must be 'test' or 'module', not {by!r}")
    digest = hashlib.sha1(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n + 1


def select_shard(nodeids: Iterable[str], i: int, n: int, *, by: str = "test") -> list[str]:
    """The node ids of shard ``i`` of ``n`` (1-based), in their original order."""
    if n < 1 or not 1 <= i <= n:
        raise ValueError(f"shard {i}/{n}: need 1 <= i <= n")
    return [nid for nid in nodeids if shard_of(nid, n, by=by) == i]
