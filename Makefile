# `make demo` and `make test` work on a fresh machine: each builds .venv from pyproject.toml when it is missing or stale.
# What is tested is what ships: every package is installed at the version the image pins (requirements.lock), and the
# development tools at theirs (requirements-dev.lock); `deploy/docker/lock.py` regenerates both.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
LOCKS := deploy/docker/requirements.lock deploy/docker/requirements-dev.lock
PROVIDER ?= local
# POOL=1: the demo claims its agent's VM from a warm pool (on hetzner unless PROVIDER=vultr).
POOL ?=
# Lifecycles in `make chaos` (CI runs N=30).
N ?= 200

.PHONY: demo test lint fmt dev clean bench chaos histories

# Our packages, compiled to bytecode before anything runs, as pip does in the image: each workflow runs in a fresh
# sandbox that imports its module again, which costs a full compile per workflow where no .pyc exists (a shell with
# PYTHONDONTWRITEBYTECODE=1 never writes one). A stale .pyc is only ignored, never run.
PACKAGES := activities bridge clients cloudsim connection contracts devstack gateway store workers workflows
COMPILE = $(BIN)/python -m compileall -q -j 0 $(PACKAGES)

$(STAMP): pyproject.toml $(LOCKS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(addprefix -c ,$(LOCKS)) -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(COMPILE)
	$(BIN)/lobstack demo --provider $(PROVIDER) $(if $(POOL),--pool)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(COMPILE)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

dev: $(STAMP)
	$(BIN)/lobstack dev

# About 30 minutes on 2 cores (the warm pool bench about 6); each bench prints its figures and writes its plot to docs/bench/.
bench: $(STAMP)
	$(COMPILE)
	$(BIN)/python bench/lifecycle_throughput.py
	$(BIN)/python bench/orchestration_latency.py
	$(BIN)/python bench/fleet_health.py
	$(BIN)/python bench/api_budget.py
	$(BIN)/python bench/warm_pool.py

chaos: $(STAMP)
	$(COMPILE)
	$(BIN)/python -m chaos --n $(N)

# Record the histories of every workflow that the replay suite (tests/replay/) replays; run when a version is cut.
histories: $(STAMP)
	$(BIN)/python -m tests.replay.record

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
