# torchconform: two commands do all set-up on a fresh machine with Python 3.10+ and make.
#   make report   the main job: all suites at the default tier on every available device,
#                 then reports/latest/{record.json,index.html,summary.md,junit.xml}
#   make test     the project's own tests (tests/) and the default run of suites/
# The torch under test is a variable; the default is the CPU build 2.13.0:
#   make report TORCH='torch==2.14.1' VENV=.venv-2.14
# Set TORCH=none to use whatever torch is already installed in VENV (or PYTHON).

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
EXTRAS ?= all
TIER ?= default
DEVICE ?= all
OUT ?= reports/latest
PYTEST_ARGS ?=

VPY := $(VENV)/bin/python
# The stamp names what was installed, so changing TORCH or pyproject.toml reinstalls.
STAMP := $(VENV)/.torchconform-$(shell printf '%s|%s|%s' '$(TORCH)' '$(EXTRAS)' "$$(cat pyproject.toml 2>/dev/null)" | cksum | cut -d' ' -f1)

.PHONY: report test setup clean gpu-check bench bench-pr bench-nightly asv mutants help
.DEFAULT_GOAL := help

help:
	@echo "make report   run every suite on every available device and write reports to $(OUT)"
	@echo "make test     run the harness tests and the default-tier suites (what CI runs)"
	@echo "make bench    run the benchmarks (reports/bench/record.json); make asv: asv run + publish"
	@echo "make bench-pr / bench-nightly   smoke tier + its instruction counts / everything + the nightly change-points"
	@echo "make mutants  plant realistic torch bugs and count how many the suites catch"
	@echo "variables: TORCH='$(TORCH)' VENV=$(VENV) TIER=$(TIER) DEVICE=$(DEVICE) OUT=$(OUT)"

$(STAMP):
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
ifneq ($(TORCH),none)
	@# Install the torch under test first and on its own, so the extras below never pull another build.
	$(VPY) -m pip install --quiet $(TORCH)
endif
	$(VPY) -m pip install --quiet -e ".[$(EXTRAS)]"
	@rm -f $(VENV)/.torchconform-*
	@touch $@
	@$(VPY) -c "import torch, sys; print('torchconform: set up', sys.executable, 'with torch', torch.__version__)"

setup: $(STAMP)

# The main job records the coverage ledger (the reports' Coverage section); COVERAGE=0 runs without the recorder.
report: $(STAMP)
	$(VENV)/bin/torchconform run --tier $(TIER) --device $(DEVICE) --out $(OUT) $(if $(filter 0 no off,$(COVERAGE)),,--coverage) -- $(PYTEST_ARGS)

test: $(STAMP)
	@bash scripts/run-tests $(VPY) $(PYTEST_ARGS)

gpu-check:
	@bash scripts/gpu-check

# Benchmarks: every definition in suites/*/bench_*.py, samples and ceilings in reports/bench/record.json.
bench: $(STAMP)
	$(VENV)/bin/torchconform bench run --out reports/bench $(BENCH_ARGS)

# Pull-request lane: wall time of the smoke tier in rounds + its instruction counts (docs/ci.md), ~6 min.
bench-pr: $(STAMP)
	$(VENV)/bin/torchconform bench run --tier smoke --out reports/bench --instructions smoke $(BENCH_ARGS)

# Nightly lane: every CPU case counted too, one record per night, then the change-points of the history.
bench-nightly: $(STAMP)
	$(VENV)/bin/torchconform bench run --out reports/nightly/$$(date +%Y-%m-%dT%H%M) --instructions $(BENCH_ARGS)
	$(VENV)/bin/torchconform history reports/nightly --out reports/history

# asv on the installed torch (files under .asv/, dashboard .asv/html/index.html).
asv: $(STAMP)
	PYTHON=$(VPY) scripts/asv-run run $(ASV_ARGS)
	PYTHON=$(VPY) scripts/asv-run publish

# Planted bugs: how many realistic torch bugs the suites catch (slow: runs each section per bug).
mutants: $(STAMP)
	$(VPY) -m tests.mutants.run --out reports/mutants.json

clean:
	rm -rf $(OUT) .pytest_cache .hypothesis .benchmarks
