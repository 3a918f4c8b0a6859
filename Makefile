# aeexp: common tasks. `make help` lists them.
PYTHON ?= python3
# Offline MNIST: the shared copy beside the repository, if there is one and the caller set none.
SHARED_MNIST := $(wildcard $(abspath ../shared/data/mnist.npz))
ifneq ($(SHARED_MNIST),)
export AEEXP_DATA ?= $(SHARED_MNIST)
endif

comma := ,

.PHONY: help install install-latest lock run test test-all lint format docs docs-serve notebook \
	bench bench-executors bench-device tune-bench tune-replay gradcheck reproduce beta backends \
	mutate

help:  ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# The lock of this Python (requirements/lock-py3.X.txt): the versions that made the results.
PY_MINOR = $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
LOCK = requirements/lock-py$(PY_MINOR).txt
# The extras 'make install' and the docs offer; the locks cover all of them.
EXTRAS = dev,tune,ray,mlflow,docs
# The Pythons the locks are made for (requires-python >= 3.11), each at a patch release that
# every locked package accepts.
LOCK_PYTHONS = 3.11.7 3.12.1 3.13.0
# UPGRADE=1: let 'make lock' move every pin the constraints allow (default: keep them).
UPGRADE ?=
# What installs: pip, unless told otherwise (.ci/pythons passes uv's pip for speed).
PIP_INSTALL ?= $(PYTHON) -m pip install
# uv comes with the dev extra; UV=path/to/uv uses another.
UV ?= $(PYTHON) -m uv

install:  ## Install aeexp and its dev tools, exactly as locked for this Python (editable).
	@test -f $(LOCK) || { echo "no lock for Python $(PY_MINOR): $(LOCK) (supported: 3.11-3.13)"; exit 2; }
	$(PIP_INSTALL) --require-hashes --no-deps -r $(LOCK)
	$(PIP_INSTALL) --no-deps -e .

install-latest:  ## Install aeexp and its dev tools at the newest versions the ranges allow.
	$(PYTHON) -m pip install --upgrade --upgrade-strategy eager -e '.[$(EXTRAS)]'

lock:  ## Re-resolve requirements/lock-py3.*.txt (UPGRADE=1 moves pins) and aeexp/env/locked.json.
	$(foreach v,$(LOCK_PYTHONS),$(UV) pip compile pyproject.toml --quiet \
		$(foreach e,$(subst $(comma), ,$(EXTRAS)),--extra $(e)) --generate-hashes \
		--python-version $(v) --python-platform x86_64-manylinux_2_28 \
		--constraint requirements/results.txt $(if $(UPGRADE),--upgrade) \
		--custom-compile-command 'make lock' \
		--output-file requirements/lock-py$(basename $(v)).txt &&) true
	$(PYTHON) -m aeexp.env.pinned requirements/lock-py3.*.txt

CONFIG ?= configs/thesis/mse_relu-sigmoid_adam.yaml
ARGS ?=

run:  ## Train one config (CONFIG=..., default a thesis cell; ARGS='--set k=v ...').
	aeexp run $(CONFIG) $(ARGS)

test:  ## Run the default (fast) test suite.
	$(PYTHON) -m pytest

test-all:  ## Run every test, the slow ones too (what CI runs).
	$(PYTHON) -m pytest -m ''

lint:  ## ruff (lint and format check) and the layer rules (lint-imports, pyproject.toml).
	ruff check aeexp tests bench docs
	ruff format --check aeexp tests bench docs
	lint-imports

# MkDocs 1.x and its plugins print notices about MkDocs 2 on every build; they are not ours.
DOCS_ENV = NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true

docs:  ## Build the docs site into site/, strictly: a broken link or a failing page is an error.
	$(DOCS_ENV) $(PYTHON) -m mkdocs build --strict

docs-serve:  ## Serve the docs site at http://127.0.0.1:8000, rebuilt as pages change.
	$(DOCS_ENV) $(PYTHON) -m mkdocs serve

notebook:  ## Execute the quickstart notebook on all of MNIST, keeping its outputs for the docs (minutes).
	$(PYTHON) docs/notebook.py

format:  ## ruff: apply formatting and safe fixes.
	ruff check --fix aeexp tests bench docs
	ruff format aeexp tests bench docs

bench:  ## Engine and evaluation benchmark on real MNIST (prints a table, writes JSON).
	$(PYTHON) bench/engine.py

bench-executors:  ## Local vs Ray executors on the thesis grid (prints a table, writes JSON).
	$(PYTHON) bench/executors.py

# The search's budget: trials per cell and trials per cell per lock-step batch; one search
# per sampler seed.
TRIALS ?= 8
BATCH ?= 2
SEARCH_SEEDS ?= 0,1,2

tune-bench:  ## aeexp tune vs the author's grid on the six cells, picks scored by regret, with the grid on seed 1 for the replay (about 50 min on 2 cores; TRIALS=, BATCH=, SEARCH_SEEDS=, EXECUTOR=).
	$(PYTHON) bench/tune_vs_grid.py --trials $(TRIALS) --batch $(BATCH) \
		--search-seeds $(SEARCH_SEEDS) $(EXECUTOR_ARGS)

tune-replay:  ## 100 searches per setting replayed on tune-bench's recorded grid, each pick scored by its regret (2 min, trains nothing).
	$(PYTHON) bench/tune_replay.py

bench-device:  ## The thesis grid on whatever accelerator JAX sees (bench/device.sh; JSON).
	bash bench/device.sh

# Mutation testing (bench/mutate.py, mutmut): GROUPS=losses,verdicts runs some groups (the
# others keep their last results); SAMPLE=1 tests every mutant, not each group's sample (hours).
GROUPS ?=
SAMPLE ?=

mutate:  ## Mutation-test the modules that decide the numbers into bench/mutation.md (mutmut; ~25 min on 2 cores; not in CI).
	$(PYTHON) bench/mutate.py $(subst $(comma), ,$(GROUPS)) $(if $(SAMPLE),--sample $(SAMPLE))

gradcheck:  ## Hand-derived gradients vs autodiff, into results/gradcheck.md.
	aeexp gradcheck --format md > results/gradcheck.md

RUNS := results/thesis/runs
# Where the studies train: EXECUTOR=ray [ADDRESS=auto|host:port] [CPUS_PER_WORKER=n].
EXECUTOR ?= local
ADDRESS ?=
CPUS_PER_WORKER ?=
EXECUTOR_ARGS = --executor $(EXECUTOR) $(if $(ADDRESS),--address $(ADDRESS)) \
	$(if $(CPUS_PER_WORKER),--cpus-per-worker $(CPUS_PER_WORKER))
# A sweep exits 1 when some run diverged; that is a result to report, not a reason to stop.
SWEEP = aeexp sweep --out $(or $(2),$(RUNS)) --quiet $(EXECUTOR_ARGS) $(1) || [ $$? -eq 1 ]

reproduce:  ## The whole thesis: both sweeps, then results/thesis/REPORT.md and verdicts.csv.
	$(call SWEEP,configs/sweeps/thesis-optimizers.yaml)
	$(call SWEEP,configs/sweeps/thesis-tuned.yaml)
	aeexp report thesis $(RUNS)/thesis-optimizers $(RUNS)/thesis-tuned --out results/thesis

BETA_RUNS := results/beta/runs

beta:  ## The beta-divergence study: holdout tuning, 5 seeds, results/beta/REPORT.md (EXECUTOR=...).
	$(call SWEEP,configs/sweeps/beta-tune.yaml,$(BETA_RUNS))
	aeexp select $(BETA_RUNS)/beta-tune --metric ssim_mean --seeds 0-4 --name beta \
		--tune-sweep configs/sweeps/beta-tune.yaml --out configs/sweeps/beta.yaml
	$(call SWEEP,configs/sweeps/beta.yaml,$(BETA_RUNS))
	aeexp report beta $(BETA_RUNS)/beta $(BETA_RUNS)/beta-tune --out results/beta

BACKEND_RUNS := results/backends/runs

# The paired sweeps train the same cells from a shared start (train.init: shared) on each
# engine, one sweep per engine: a process holds one Keras backend.
backends:  ## The six thesis cells on JAX against TensorFlow, unpaired (5 seeds) and paired seed by seed from a shared start: results/backends/REPORT.md.
	$(call SWEEP,configs/sweeps/thesis-cells-jax.yaml,$(BACKEND_RUNS))
	$(call SWEEP,configs/sweeps/thesis-cells-paired-tf.yaml,$(BACKEND_RUNS))
	$(call SWEEP,configs/sweeps/thesis-cells-paired-jax.yaml,$(BACKEND_RUNS))
	aeexp report backends $(RUNS)/thesis-optimizers $(BACKEND_RUNS)/thesis-cells-jax \
		--paired $(BACKEND_RUNS)/thesis-cells-paired-tf $(BACKEND_RUNS)/thesis-cells-paired-jax \
		--out results/backends
