"""Run asv on the installed torch, offline, with every asv file under ``.asv/`` (never ``$HOME``).

    python -m harness.bench.asv_run run [-b REGEX] [ASV ARGS...]   # benchmark this torch build
    python -m harness.bench.asv_run publish                        # build the dashboard .asv/html
    python -m harness.bench.asv_run preview                        # serve it
    python -m harness.bench.asv_run --config asv.virtualenv.conf.json continuous main HEAD

``run`` uses ``asv.conf.json`` (environment_type ``existing``: the Python running this module and
its torch). asv keys results by (machine, commit): the commit is a commit of the local history
repository ``.asv/torch-history`` made once per torch build (message and tag name the torch
version and git version), so each new torch build benchmarked appends one point to every
benchmark's history and a re-run of the same build updates its point. The machine name is this
host's (``--machine``), its description written by ``asv machine --yes`` into ``.asv/home``
(``HOME`` is pointed there for asv only). ``scripts/asv-run`` is a shell wrapper for this module.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# TORCHCONFORM_ASV_DIR moves every asv file elsewhere (the tests use a temporary folder): the config
# is then rewritten into that folder with its paths pointing there.
ASV_DIR = Path(os.environ.get("TORCHCONFORM_ASV_DIR") or ROOT / ".asv").resolve()
HISTORY = ASV_DIR / "torch-history"


def _relocated_config(config: str) -> str:
    if not os.environ.get("TORCHCONFORM_ASV_DIR"):
        return config
    from asv import util

    conf = util.load_json(str(ROOT / config), js_comments=True)
    for key in ("env_dir", "results_dir", "html_dir"):
        conf[key] = str(ASV_DIR / Path(conf[key]).name)
    conf["repo"] = str(HISTORY) if conf.get("environment_type") == "existing" else str(ROOT)
    conf["benchmark_dir"] = str(ROOT / conf.get("benchmark_dir", "benchmarks"))
    ASV_DIR.mkdir(parents=True, exist_ok=True)
    out = ASV_DIR / Path(config).name
    out.write_text(json.dumps(conf, indent=1))
    return str(out)


def _git(*args, cwd=HISTORY, env=None) -> str:
    e = dict(os.environ)
    e.update({"GIT_AUTHOR_NAME": "torchconform", "GIT_AUTHOR_EMAIL": "torchconform@localhost",
              "GIT_COMMITTER_NAME": "torchconform", "GIT_COMMITTER_EMAIL": "torchconform@localhost"})
    e.update(env or {})
    out = subprocess.run(["git", *args], cwd=cwd, env=e, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"asv-run: git {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


def torch_build(python: str) -> tuple[str, str]:
    out = subprocess.run([python, "-c", "import torch; print(torch.__version__); "
                          "print(getattr(torch.version, 'git_version', None) or 'unknown')"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"asv-run: {python} cannot import torch: {out.stderr.strip().splitlines()[-1:]}")
    version, git_version = out.stdout.split()[:2]
    return version, git_version


def history_commit(version: str, git_version: str) -> str:
    """The history repository's commit for this torch build (created on first use)."""
    if not (HISTORY / ".git").is_dir():
        HISTORY.mkdir(parents=True, exist_ok=True)
        _git("init", "-q", "-b", "main")
    tag = "torch-" + re.sub(r"[^0-9A-Za-z._-]+", "_", f"{version}-{git_version[:12]}")
    existing = subprocess.run(["git", "rev-parse", "-q", "--verify", f"refs/tags/{tag}^{{commit}}"], cwd=HISTORY,
                              capture_output=True, text=True)
    if existing.returncode == 0:
        return existing.stdout.strip()
    (HISTORY / "TORCH_BUILD").write_text(f"{version}\n{git_version}\n")
    _git("add", "TORCH_BUILD")
    _git("commit", "-q", "--allow-empty", "-m", f"torch {version} (git {git_version})")
    _git("tag", tag)
    return _git("rev-parse", "HEAD")


def asv_env(machine: str) -> dict:
    home = ASV_DIR / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["HOME"] = str(home)  # asv machine files go to $HOME/.asv-machine.json: keep them in .asv/
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _asv(args: list[str], env: dict) -> int:
    cmd = [sys.executable, "-m", "asv", *args]
    print("asv-run:", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT, env=env)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    config = "asv.conf.json"
    if len(argv) >= 2 and argv[0] == "--config":
        config, argv = argv[1], argv[2:]
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    verb, rest = argv[0], argv[1:]
    existing = Path(config).name == "asv.conf.json"
    config = _relocated_config(config)
    machine = os.environ.get("TORCHCONFORM_ASV_MACHINE") or socket.gethostname()
    env = asv_env(machine)
    if "--machine" not in rest and verb in ("run", "continuous"):
        rc = _asv(["machine", "--config", config, "--yes", "--machine", machine], env)
        if rc != 0:
            return rc
        rest = ["--machine", machine, *rest]
    if verb == "run" and existing:
        version, git_version = torch_build(sys.executable)
        commit = history_commit(version, git_version)
        print(f"asv-run: torch {version} (git {git_version[:12]}) is history commit {commit[:12]}", flush=True)
        return _asv(["run", "--config", config, "--environment", f"existing:{sys.executable}",
                     "--set-commit-hash", commit, *rest], env)
    if verb in ("publish", "preview") and existing and not (HISTORY / ".git").is_dir():
        print("asv-run: nothing measured yet (run `asv-run run` first)", file=sys.stderr)
        return 2
    if verb == "clean":
        shutil.rmtree(ASV_DIR, ignore_errors=True)
        return 0
    return _asv([verb, "--config", config, *rest], env)


if __name__ == "__main__":
    sys.exit(main())
