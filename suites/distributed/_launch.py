"""Launch the ranks of a ``torch.distributed`` job as real processes, for the § 8 suites.

:class:`World` starts ``world_size`` ranks with ``torch.multiprocessing`` (spawn start method), each
of which joins one process group (``gloo`` on CPU, ``nccl`` with one GPU per rank) and then waits
for work: the parent sends a picklable function (by reference) and arguments, every rank runs it
with a :class:`RankContext` and sends back its value. One World serves many checks, so process
start-up (the dominant cost) is paid once per test session or module, not per check; assertions
run in the parent test against oracles computed there.

Rendezvous: a FREE loopback port is picked per launch by binding a socket to port 0 on
127.0.0.1 (``MASTER_ADDR=127.0.0.1``); there is never a fixed ``MASTER_PORT``. Every call has a
hard timeout (default 60 s): ranks that do not answer in time are killed and the call raises
:class:`LaunchError` naming the function, the silent ranks and the timeout, so nothing hangs CI.
The process group itself is created with a shorter collective timeout, so a rank stuck in a
collective whose peer failed errors out instead of waiting forever.

Multi-node runs on hardware runners
-----------------------------------
When the test process itself was started by ``torchrun`` (``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT`` already in the environment, ``LOCAL_RANK`` optional), the
World starts no processes: it joins the process group from the environment (``env://``), runs
each function in this process, and gathers every rank's value with ``all_gather_object``, so each
rank's pytest sees the same per-rank list and runs the same assertions. For example, on each of
N hosts with G GPUs::

    torchrun --nnodes N --nproc-per-node G --rdzv-backend c10d --rdzv-endpoint HOST:PORT \\
        -m pytest suites/distributed -q -p no:cacheprovider

(``--device cuda`` selects the nccl cases; the gloo cases run too.) Checks are written for any
world size: the parent's oracles take the world size from the World.
"""
from __future__ import annotations

import datetime
import os
import queue as _queue
import socket
import time
import traceback
from dataclasses import dataclass

DEFAULT_TIMEOUT = 60.0
START_TIMEOUT = 90.0
COLLECTIVE_TIMEOUT = 30.0


class LaunchError(RuntimeError):
    """A rank failed to start, died, or did not answer within the timeout."""


class Unsupported(Exception):
    """Raised inside a rank by a check whose operation the backend does not implement (documented
    gap such as reduce_scatter on gloo); the parent test skips with this reason."""


@dataclass(frozen=True)
class RankContext:
    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def device(self) -> str:
        return f"cuda:{self.local_rank}" if self.backend == "nccl" else "cpu"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (bind to port 0 and read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def launched_by_torchrun() -> bool:
    """True when this process is one rank of a job whose environment torchrun already set."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def _init_group(backend: str, rank: int, world_size: int, local_rank: int):
    import torch
    import torch.distributed as dist

    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(seconds=COLLECTIVE_TIMEOUT))


def _worker(rank, world_size, backend, addr, port, threads, inbox, outbox):
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)  # deprecation notes of renamed collectives
    os.environ.update(MASTER_ADDR=addr, MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_RANK=str(rank))
    try:
        import torch

        torch.set_num_threads(threads)
        _init_group(backend, rank, world_size, rank)
        ctx = RankContext(rank, world_size, rank, backend)
        outbox.put((rank, "ready", True, None))
    except BaseException:  # noqa: BLE001 - reported to the parent verbatim
        outbox.put((rank, "ready", False, traceback.format_exc()))
        return
    while True:
        msg = inbox.get()
        if msg is None:
            break
        call_id, fn, args, kwargs = msg
        try:
            outbox.put((rank, call_id, True, fn(ctx, *args, **kwargs)))
        except BaseException:  # noqa: BLE001
            outbox.put((rank, call_id, False, traceback.format_exc()))
    # No destroy_process_group(): it may wait on peers that are already gone; the parent reaps us.
    outbox.close()
    outbox.join_thread()


class World:
    """``world_size`` ranks in one process group, serving function calls until :meth:`close`."""

    def __init__(self, world_size: int = 2, backend: str = "gloo", timeout: float = DEFAULT_TIMEOUT,
                 threads: int = 1):
        self.backend = backend
        self.timeout = timeout
        self.threads = threads
        self._procs = []
        self._calls = 0
        self.external = launched_by_torchrun()
        if self.external:
            self.world_size = int(os.environ["WORLD_SIZE"])
            self.rank = int(os.environ["RANK"])
            self._ctx = RankContext(self.rank, self.world_size, int(os.environ.get("LOCAL_RANK", self.rank)), backend)
            _init_group(backend, self.rank, self.world_size, self._ctx.local_rank)
        else:
            self.world_size = world_size
            self._start()

    # -- process management -------------------------------------------------------------
    def _start(self):
        import torch.multiprocessing as mp

        mpctx = mp.get_context("spawn")
        self.port = free_port()
        self._outbox = mpctx.Queue()
        self._inboxes = [mpctx.Queue() for _ in range(self.world_size)]
        for r in range(self.world_size):
            p = mpctx.Process(target=_worker, name=f"torchconform-rank{r}", daemon=True,
                              args=(r, self.world_size, self.backend, "127.0.0.1", self.port, self.threads,
                                    self._inboxes[r], self._outbox))
            p.start()
            self._procs.append(p)
        self._collect("ready", START_TIMEOUT, what="process-group start-up")

    def _collect(self, call_id, timeout, what):
        deadline = time.monotonic() + timeout
        got: dict[int, object] = {}
        errors: dict[int, str] = {}
        while len(got) + len(errors) < self.world_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                silent = sorted(set(range(self.world_size)) - set(got) - set(errors))
                self.kill()
                raise LaunchError(f"{what}: ranks {silent} did not answer within {timeout:.0f} s "
                                  f"(backend {self.backend}, world size {self.world_size}); all ranks were killed")
            try:
                rank, cid, ok, value = self._outbox.get(timeout=min(0.5, remaining))
            except _queue.Empty:
                dead = [(i, p.exitcode) for i, p in enumerate(self._procs)
                        if p.exitcode is not None and i not in got and i not in errors]
                if dead:
                    self.kill()
                    raise LaunchError(f"{what}: rank(s) died without answering (rank, exit code): {dead}") from None
                continue
            if cid != call_id:
                continue  # a late answer to an earlier, abandoned call
            (got if ok else errors)[rank] = value
        if errors:
            if call_id == "ready":
                self.kill()
            first = min(errors)
            raise LaunchError(f"{what} raised on rank(s) {sorted(errors)}; rank {first}:\n{errors[first]}")
        return [got[r] for r in range(self.world_size)]

    def kill(self):
        for p in self._procs:
            if p.is_alive():
                p.kill()
        for p in self._procs:
            p.join(5)
        self._procs = []

    def close(self):
        if self.external:
            return
        for q in getattr(self, "_inboxes", []):
            try:
                q.put(None)
            except Exception:  # noqa: BLE001
                pass
        deadline = time.monotonic() + 3
        for p in self._procs:
            p.join(max(0.1, deadline - time.monotonic()))
        self.kill()

    @property
    def alive(self) -> bool:
        return self.external or (bool(self._procs) and all(p.is_alive() for p in self._procs))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- calls -----------------------------------------------------------------------------
    def run(self, fn, *args, timeout: float | None = None, **kwargs) -> list:
        """``fn(ctx, *args, **kwargs)`` on every rank; the list of values, indexed by rank."""
        timeout = self.timeout if timeout is None else timeout
        name = getattr(fn, "__qualname__", repr(fn))
        if self.external:
            import torch.distributed as dist

            value = fn(self._ctx, *args, **kwargs)
            out = [None] * self.world_size
            dist.all_gather_object(out, value)
            return out
        if not self.alive:
            raise LaunchError(f"{name}: the ranks of this World are no longer running")
        self._calls += 1
        call_id = self._calls
        for q in self._inboxes:
            q.put((call_id, fn, args, kwargs))
        return self._collect(call_id, timeout, what=name)

    def run_checks(self, checks, *args, timeout: float | None = None) -> dict:
        """Run many named checks in one round trip: ``checks`` maps name -> (fn, args). Returns
        name -> list (per rank) of ``("ok", value)``, ``("skip", reason)`` or ``("error", traceback)``."""
        return _regroup(self.run(_run_many, list(checks.items()), timeout=timeout), list(checks))


def _run_many(ctx, items):
    out = {}
    for name, (fn, args) in items:
        try:
            out[name] = ("ok", fn(ctx, *args))
        except Unsupported as exc:
            out[name] = ("skip", str(exc))
        except BaseException:  # noqa: BLE001
            out[name] = ("error", traceback.format_exc())
    return out


def _regroup(per_rank: list, names: list) -> dict:
    return {n: [r[n] for r in per_rank] for n in names}


def values(results: dict, name: str) -> list:
    """The per-rank values of check ``name``; skips the calling test (with the rank's reason) when
    the backend does not support the operation, fails it with the rank's traceback on an error."""
    import pytest

    outcomes = results[name]
    for rank, (kind, value) in enumerate(outcomes):
        if kind == "error":
            pytest.fail(f"{name} raised on rank {rank}:\n{value}", pytrace=False)
    for kind, value in outcomes:
        if kind == "skip":
            pytest.skip(f"{name}: not supported by this backend: {value}")
    return [v for _, v in outcomes]


def to_numpy(t):
    """A CPU NumPy copy of a tensor (what a rank sends back to the parent)."""
    return t.detach().cpu().numpy().copy()
