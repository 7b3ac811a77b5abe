"""Write the golden input records with a coverage ledger (``python -m tests.golden.make_coverage``):
``coverage-baseline.json`` and ``coverage-candidate.json`` are ``baseline.json`` (torch 2.12.0) and
``candidate.json`` (torch 2.13.0) with a ``"coverage"`` entry built by :class:`harness.coverage.Ledger`
over small made-up universes (no torch import), deterministic:

* callables: the candidate torch adds ``torch.fft.hfft2`` and ``torch.special.xlog1py`` (no checked test
  uses them: *new and untested*); its run no longer exercises ``torch.sub`` (*lost*), newly exercises
  ``torch.mul`` (*gained*), and touches ``torch.cos`` only in a test without a check;
* overloads: the same story with ``aten.sub.Tensor`` lost, ``aten.mul.Tensor`` gained, ``aten._fft_c2r.default``
  new and untested; ``aten.empty.memory_format`` used but outside the universe;
* nn_modules: ``torch.nn.Linear`` exercised in both; ``torch.nn.Module`` excluded (no forward of its own);
* the candidate's ledger is ``partial`` (an xdist worker went down), so the reports' banner shows.
"""
from __future__ import annotations

import json
from pathlib import Path

from harness.coverage import Ledger, Universe, Usage

GOLDEN = Path(__file__).resolve().parent

BASE_CALLABLES = ("torch.add", "torch.sub", "torch.mul", "torch.cos", "torch.fft.fft", "torch.nn.functional.relu")
BASE_OVERLOADS = ("aten.add.Tensor", "aten.sub.Tensor", "aten.mul.Tensor", "aten.cos.default", "aten._fft_c2c.default",
                  "aten.relu.default")
NN = ("torch.nn.Linear", "torch.nn.ReLU", "torch.nn.Conv2d")


def _universe(version: str, callables, overloads) -> Universe:
    return Universe(torch_version=version, callables={n: n for n in callables}, overloads=frozenset(overloads),
                    overloads_source="torch._C._dispatch_get_all_op_names", nn_modules={n: n for n in NN},
                    nn_excluded={"torch.nn.Module": "no forward of its own (a base class or container: its forward "
                                                    "raises NotImplementedError)"})


def _usage(callables=(), overloads=(), nn=()) -> Usage:
    return Usage(frozenset(callables), frozenset(overloads), frozenset(nn))


def baseline_coverage() -> dict:
    led = Ledger(_universe("2.12.0+cpu", BASE_CALLABLES, BASE_OVERLOADS))
    led.add(_usage(("torch.add", "torch.sub"), ("aten.add.Tensor", "aten.sub.Tensor")), checks=3, section="tensors")
    led.add(_usage(("torch.fft.fft",), ("aten._fft_c2c.default",)), checks=1, section="tensors")
    led.add(_usage(("torch.nn.functional.relu",), ("aten.relu.default",), ("torch.nn.Linear", "torch.nn.ReLU")),
            checks=2, section="nn")
    return led.as_dict()


def candidate_coverage() -> dict:
    led = Ledger(_universe("2.13.0+cpu", BASE_CALLABLES + ("torch.fft.hfft2", "torch.special.xlog1py"),
                           BASE_OVERLOADS + ("aten._fft_c2r.default",)))
    led.add(_usage(("torch.add", "torch.mul"), ("aten.add.Tensor", "aten.mul.Tensor", "aten.empty.memory_format")),
            checks=4, section="tensors")
    led.add(_usage(("torch.fft.fft",), ("aten._fft_c2c.default",)), checks=1, section="tensors")
    led.add(_usage(("torch.cos",), ("aten.cos.default",)), checks=0, section="tensors")
    led.add(_usage(("torch.nn.functional.relu",), ("aten.relu.default",), ("torch.nn.Linear",)), checks=2, section="nn")
    cov = led.as_dict()
    cov["partial"] = ("1 xdist worker(s) (gw1) went down without their ledger: the tests they ran are not counted")
    return cov


def main() -> None:
    for name, cov in (("baseline", baseline_coverage()), ("candidate", candidate_coverage())):
        rec = json.loads((GOLDEN / f"{name}.json").read_text())
        rec["run_id"] = rec["run_id"][:-4] + "c0v0"
        rec["coverage"] = cov
        (GOLDEN / f"coverage-{name}.json").write_text(json.dumps(rec, indent=1) + "\n", encoding="utf-8")
    print("wrote coverage-baseline.json and coverage-candidate.json")


if __name__ == "__main__":
    main()
