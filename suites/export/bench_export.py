"""§ 9.1 benchmarks: inference latency of each deployment lane against eager.

One definition, ``export.inference``: params model x lane x batch; lanes are eager, TorchScript
(``jit_trace``, ``jit_script``), torch.export (``ep.module()`` of a batch-dynamic export) and ONNX
Runtime (``onnxruntime``: the dynamo ONNX export, batch-dynamic, run by an InferenceSession on
NumPy inputs prepared once). Each model/lane is exported once per process (module-level cache);
the artefacts live in a temporary folder removed at exit. Unsupported pairs raise
``NotImplementedError`` with the reason. :func:`graph_nodes` gives the runner each lane's graph size
(an exact counter recorded beside the samples).

:func:`speed_relative_to_eager` produces the "speed of each lane relative to eager" table without
pytest (the benchmark runner uses it); ``python -m suites.export.bench_export`` prints it.
"""
from __future__ import annotations

import atexit
import contextlib
import io
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from harness.bench import Benchmark

MODELS = ["mlp", "cnn", "rnn", "transformer"]
LANES = ["eager", "jit_trace", "jit_script", "export", "onnxruntime"]
BATCHES = [1, 32]
SEQ = 16

_CACHE: dict = {}
_TMP: dict = {}


def _folder() -> Path:
    if "dir" not in _TMP:
        _TMP["dir"] = Path(tempfile.mkdtemp(prefix="torchconform-export-bench-"))
        atexit.register(shutil.rmtree, _TMP["dir"], True)
    return _TMP["dir"]


def _export(model: str, lane: str, device: str):
    """The runnable artefact of (model, lane, device), exported once per process."""
    key = (model, lane, device)
    if key in _CACHE:
        got = _CACHE[key]
        if isinstance(got, NotImplementedError):
            raise got
        return got
    import torch

    from suites.export._lanes import jit_quiet, ort_session
    from suites.export._zoo import ZOO

    entry = ZOO[model]
    reason = entry.unsupported.get(lane) or (entry.unsupported.get("onnx_dynamo") if lane == "onnxruntime" else None)
    try:
        if reason:
            raise NotImplementedError(f"{model} through {lane}: {reason}")
        net = entry.build(device)
        example = entry.inputs(batch=4, seq=SEQ, device=device)
        batch_only = tuple({a: "batch" for a, lbl in d.items() if lbl == "batch"} for d in entry.dims)
        if lane == "eager":
            art = net
        elif lane in ("jit_trace", "jit_script"):
            with jit_quiet(), torch.no_grad():
                art = torch.jit.trace(net, example) if lane == "jit_trace" else torch.jit.script(net)
        elif lane == "export":
            if not hasattr(getattr(torch, "export", None), "Dim"):
                raise NotImplementedError("torch.export / torch.export.Dim are missing in this torch")
            dim = torch.export.Dim("batch", min=1, max=64)
            ds = tuple({a: dim for a in d} for d in batch_only)
            art = torch.export.export(net, example, dynamic_shapes=ds).module()
        elif lane == "onnxruntime":
            try:
                import onnxruntime  # noqa: F401
                import onnxscript  # noqa: F401
            except ImportError as exc:
                raise NotImplementedError(f"onnxruntime/onnxscript not installed: {exc}") from None
            dim = torch.export.Dim("batch", min=1, max=64)
            path = _folder() / f"{model}-{device}" / "model.onnx"
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
                torch.onnx.export(net, example, str(path), dynamo=True,
                                  dynamic_shapes=tuple({a: dim for a in d} for d in batch_only))
            art = ort_session(path, device)
        else:
            raise NotImplementedError(f"unknown lane {lane!r}")
    except NotImplementedError as exc:
        _CACHE[key] = exc
        raise
    _CACHE[key] = art
    return art


def make_callable(device: str, model: str, lane: str, batch: int):
    """The timed zero-argument callable for one case (inputs built once, outside the timing)."""
    import torch

    from suites.export._lanes import jit_quiet
    from suites.export._zoo import ZOO

    if model not in MODELS or lane not in LANES:
        raise NotImplementedError(f"unknown model/lane {model}/{lane}")
    art = _export(model, lane, device)
    inputs = ZOO[model].inputs(batch=batch, seq=SEQ, device=device)
    if lane == "onnxruntime":
        feeds = {i.name: t.cpu().numpy() for i, t in zip(art.get_inputs(), inputs)}
        return lambda: art.run(None, feeds)

    def call():
        with torch.no_grad():
            return art(*inputs)

    if lane.startswith("jit"):
        def jit_call():
            with jit_quiet():
                return call()
        return jit_call
    return call


def _setup(device, model, lane, batch):
    return make_callable(device, model, lane, batch)


def graph_nodes(device, model, lane, batch):
    """The size of the artefact each lane runs, for the runner's exact counters: nodes of the inlined
    TorchScript graph, of the exported FX graph, of the ONNX graph (eager has no graph)."""
    art = _export(model, lane, device)
    if lane in ("jit_trace", "jit_script"):
        return {"graph_nodes": sum(1 for _ in art.inlined_graph.nodes())}
    if lane == "export":
        return {"graph_nodes": len(art.graph.nodes)}
    if lane == "onnxruntime":
        import onnx

        path = _folder() / f"{model}-{device}" / "model.onnx"
        return {"graph_nodes": len(onnx.load(str(path), load_external_data=False).graph.node)}
    return {}


BENCHMARKS = [
    Benchmark(name="inference", section="export", group="export.inference", setup=_setup,
              params={"model": MODELS, "lane": LANES, "batch": BATCHES},
              items=lambda model, lane, batch: batch, throughput_unit="samples/s", counters=graph_nodes,
              description="forward latency of a zoo model in eager, TorchScript, torch.export and ONNX Runtime"),
]


def _median_time(fn, rounds: int, warmup: int = 5) -> float:  # TorchScript optimises on its 2nd call
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def speed_relative_to_eager(device: str = "cpu", models=MODELS, lanes=LANES, batches=BATCHES, rounds: int = 20,
                            sync=None) -> list[dict]:
    """Median latency of every (model, lane, batch) and its speed relative to eager (>1: faster).

    Rows: {"model", "batch", "lane", "seconds", "speedup"}; an unsupported lane has seconds None and
    a "reason". Eager and every lane are timed alternately per model/batch, the same number of rounds.
    """
    rows = []
    for model in models:
        for batch in batches:
            eager = None
            for lane in ["eager"] + [ln for ln in lanes if ln != "eager"]:
                try:
                    fn = make_callable(device, model, lane, batch)
                except NotImplementedError as exc:
                    rows.append({"model": model, "batch": batch, "lane": lane, "seconds": None, "speedup": None,
                                 "reason": str(exc)})
                    continue
                body = fn if sync is None else (lambda f=fn: (f(), sync()))
                sec = _median_time(body, rounds)
                eager = sec if lane == "eager" else eager
                rows.append({"model": model, "batch": batch, "lane": lane, "seconds": sec,
                             "speedup": (eager / sec) if eager else None})
    return rows


def format_table(rows: list[dict]) -> str:
    """A Markdown table: one line per model/batch, one column per lane (median ms and x eager)."""
    lanes = list(dict.fromkeys(r["lane"] for r in rows))
    out = ["| model | batch | " + " | ".join(lanes) + " |", "|---|---|" + "---|" * len(lanes)]
    keys = list(dict.fromkeys((r["model"], r["batch"]) for r in rows))
    for model, batch in keys:
        cells = []
        for lane in lanes:
            r = next((r for r in rows if (r["model"], r["batch"], r["lane"]) == (model, batch, lane)), None)
            if r is None or r["seconds"] is None:
                cells.append("n/a")
            else:
                cells.append(f"{r['seconds'] * 1e3:.3f} ms ({r['speedup']:.2f}x)")
        out.append(f"| {model} | {batch} | " + " | ".join(cells) + " |")
    return "\n".join(out)


if __name__ == "__main__":  # python -m suites.export.bench_export [rounds] [threads]
    import sys

    import torch

    if len(sys.argv) > 2:
        torch.set_num_threads(int(sys.argv[2]))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(format_table(speed_relative_to_eager(rounds=int(sys.argv[1]) if len(sys.argv) > 1 else 20)))
