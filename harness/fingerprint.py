"""The environment fingerprint of a run: what a result depends on besides the code under test.

Collected once per run; every field is best-effort (a missing tool yields ``None``, never an
error), so the fingerprint can be taken on any machine the suite runs on.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from harness.tolerances import dtype_name

# CPU flags that change which kernels torch runs; the full list is noise in a report.
_CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
              "avx512_fp16", "amx_bf16", "amx_int8", "amx_tile", "asimd", "sve", "sve2", "neon")
_PACKAGES = ("numpy", "torchvision", "torchaudio", "torchtext", "torchrl", "onnx", "onnxruntime",
             "onnxscript", "hypothesis", "pytest", "pytest-benchmark", "asv", "triton")


def _run(cmd: list[str], timeout: float = 10.0) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def cpu_info() -> dict:
    info: dict = {"machine": platform.machine(), "logical_cpus": os.cpu_count(), "model": None, "flags": []}
    try:
        info["affinity_cpus"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        info["affinity_cpus"] = None
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model", "cpu model") and not info["model"]:
            info["model"] = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    info["flags"] = [f for f in _CPU_FLAGS if f in flags]
    if not info["model"]:
        info["model"] = platform.processor() or None
    return info


def torch_info() -> dict:
    try:
        import torch
    except Exception as exc:  # torch missing or broken: the fingerprint says so
        return {"version": None, "error": f"{type(exc).__name__}: {exc}"}
    info = {
        "version": torch.__version__,
        "git_version": getattr(torch.version, "git_version", None),
        "debug": bool(getattr(torch.version, "debug", False)),
        "cuda": torch.version.cuda,
        "hip": getattr(torch.version, "hip", None),
        "cudnn": None,
        "mkl": torch.backends.mkl.is_available(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "openmp": torch.backends.openmp.is_available(),
        "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(),
        "default_dtype": dtype_name(torch.get_default_dtype()),
    }
    try:
        if torch.backends.cudnn.is_available():
            info["cudnn"] = torch.backends.cudnn.version()
    except Exception:
        pass
    try:
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except Exception:
        info["cpu_capability"] = None
    return info


def gpu_info() -> list[dict]:
    try:
        import torch

        if not torch.cuda.is_available():
            return []
        gpus = []
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            gpus.append({"index": i, "name": p.name, "capability": f"{p.major}.{p.minor}",
                         "memory_bytes": int(p.total_memory), "multiprocessors": p.multi_processor_count})
        return gpus
    except Exception:
        return []


def nvidia_driver() -> dict | None:
    out = _run(["nvidia-smi", "--query-gpu=driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.limit",
                "--format=csv,noheader,nounits"])
    if not out:
        return None
    first = [s.strip() for s in out.splitlines()[0].split(",")]
    keys = ("driver_version", "sm_clock_mhz", "max_sm_clock_mhz", "mem_clock_mhz", "power_limit_w")
    return dict(zip(keys, first))


def git_info(start: Path | None = None) -> dict | None:
    start = start or Path(__file__).resolve().parent.parent
    commit = _run(["git", "-C", str(start), "rev-parse", "HEAD"])
    if commit is None:
        return None
    dirty = _run(["git", "-C", str(start), "status", "--porcelain", "--untracked-files=no"])
    return {"commit": commit, "dirty": bool(dirty)}


def package_versions() -> dict:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def collect() -> dict:
    """The whole fingerprint as a JSON-ready dict."""
    return {
        "hostname": socket.gethostname(),
        "platform": {"system": platform.system(), "release": platform.release(), "machine": platform.machine()},
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                   "executable": sys.executable},
        "cpu": cpu_info(),
        "torch": torch_info(),
        "gpus": gpu_info(),
        "driver": nvidia_driver(),
        "threads_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
        "packages": package_versions(),
        "git": git_info(),
    }


def comparability_key(fp: dict) -> dict:
    """The fields that must agree for two records to be merged as shards of one run."""
    torch = fp.get("torch") or {}
    cpu = fp.get("cpu") or {}
    return {
        "torch": torch.get("version"),
        "torch_git": torch.get("git_version"),
        "cuda": torch.get("cuda"),
        "cpu_model": cpu.get("model"),
        "gpus": sorted(g.get("name", "") for g in fp.get("gpus") or []),
        "python": (fp.get("python") or {}).get("version"),
    }


def mixed_keys(fingerprints: list[dict]) -> dict:
    """The comparability keys whose values differ between ``fingerprints`` (key -> the distinct values,
    in order of appearance): what a record merged from several machines stores as ``fingerprint.mixed``."""
    keys = [comparability_key(fp or {}) for fp in fingerprints]
    mixed = {}
    for k in keys[0] if keys else {}:
        values = []
        for kk in keys:
            if kk[k] not in values:
                values.append(kk[k])
        if len(values) > 1:
            mixed[k] = values
    return mixed


HARDWARE_KEYS = ("cpu_model", "gpus")


def hardware_differences(baseline: dict, candidate: dict) -> list[str]:
    """Hardware keys (CPU model, GPUs) that differ between two fingerprints, or within one merged from
    several machines (its ``mixed``); benchmark ratios across them are advisory."""
    fb, fc = baseline or {}, candidate or {}
    kb, kc = comparability_key(fb), comparability_key(fc)
    out = [k for k in HARDWARE_KEYS if kb.get(k) != kc.get(k)]
    for side, fp in (("baseline", fb), ("candidate", fc)):
        out += [f"{k} within the {side}" for k in HARDWARE_KEYS if k in (fp.get("mixed") or {})]
    return out
