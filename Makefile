# ecap-ops: `make run` (local Kafka + catalog + Dagster UI on :3000) and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Overridable: `make run DAGSTER_PORT=3001 KAFKA_PORT=19092`.
DAGSTER_PORT ?= 3000
KAFKA_PORT ?= 9092
# `make run-secure`: the secured local cluster's client port and data.
KAFKA_SECURE_PORT ?= 9094
SECURE_DATA_DIR ?= $(CURDIR)/.cache/secure-broker
# ecap-ops keeps its files (DR and pre-change snapshots, the change log, cleanup's
# observations) where the CLI run in this shell keeps them: under $$DAGSTER_HOME when your
# environment sets it, else under ~/.ecap-ops. `make run`'s own Dagster instance
# (.dagster_home) holds only Dagster's runs and events, so `make clean` keeps snapshots.
ifeq ($(origin DAGSTER_HOME),environment)
ECAP_FILES := $(DAGSTER_HOME)
else
ECAP_FILES := $(HOME)/.ecap-ops
endif
ECAP_SNAPSHOT_DIR ?= $(ECAP_FILES)/snapshots
ECAP_STATE_DIR ?= $(ECAP_FILES)/state
DAGSTER_HOME ?= $(CURDIR)/.dagster_home
override DAGSTER_HOME := $(abspath $(DAGSTER_HOME))
# Dagster's start-up notices that are not problems under `make run`: `dagster dev` is
# superseded by `dg dev` (same server; we pin Dagster 1.13), and the sensors' `owners`
# parameter is a beta API. setuptools' editable install reminds that a folder named like
# the package shadows it (this checkout is that folder, on purpose).
QUIET_NOTICES := ignore:Function `dev_command` is superseded,ignore:Parameter `owners`
QUIET_SETUPTOOLS := ignore:Editable installation

.PHONY: setup system-deps system-deps-run run run-secure stop test test-fast bench bench-scale validate lint format clean

# Idempotent: checks the system tools, creates the venv, installs the package with its
# pinned dependencies when pyproject.toml changed, and fetches the Kafka jars once into .cache/.
setup: system-deps-run $(VENV)/.installed
	@printf 'Apache Kafka jars (Maven fetches them once): ' && $(BIN)/ecap-ops broker fetch

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	PYTHONWARNINGS='$(QUIET_SETUPTOOLS)' $(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

# System tools (one list, in scripts/install-system-deps.sh): `make run` needs Java 17+ and
# Maven; `make test` also kcat, Chromium, ChromeDriver, docker-compose and PostgreSQL.
# Missing ones are installed as root or with passwordless sudo; otherwise one message
# names them and the command that installs them.
system-deps:
	@bash scripts/install-system-deps.sh test

system-deps-run:
	@bash scripts/install-system-deps.sh run

# Dagster from $(DAGSTER_HOME), in its own process group (Ctrl-C stops it and everything
# it started), against the Kafka at $$bootstrap with whatever KAFKA_* the shell exported.
START_DAGSTER = echo "Starting Dagster (DAGSTER_HOME=$(DAGSTER_HOME), snapshots in $(ECAP_SNAPSHOT_DIR))..."; \
	DAGSTER_HOME=$(DAGSTER_HOME) KAFKA_BOOTSTRAP_SERVERS=$$bootstrap \
	ECAP_SNAPSHOT_DIR='$(ECAP_SNAPSHOT_DIR)' ECAP_STATE_DIR='$(ECAP_STATE_DIR)' \
	PYTHONWARNINGS='$(QUIET_NOTICES)' \
	  exec $(BIN)/python scripts/run_in_group.py --cwd "$(DAGSTER_HOME)" \
	    --ready-url http://127.0.0.1:$(DAGSTER_PORT) \
	    --ready-message "Dagster UI: http://127.0.0.1:$(DAGSTER_PORT)  (Ctrl-C stops Dagster; 'make stop' stops Kafka)" \
	    --stopped-message "Dagster stopped. Kafka still runs on $$bootstrap: 'make stop' stops it." \
	    -- $(CURDIR)/$(BIN)/dagster dev -h 127.0.0.1 -p $(DAGSTER_PORT) -w $(CURDIR)/local/workspace.yaml

# Kafka on $(KAFKA_PORT) (or the port it already runs on), the catalog's topics, then
# Dagster. Dagster runs from $(DAGSTER_HOME), so the deployment's ./dagster.yaml is not in
# its way, in its own process group: Ctrl-C stops it and everything it started; Kafka
# keeps running until `make stop`.
run: setup
	@mkdir -p "$(DAGSTER_HOME)" && cp local/dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"
	$(BIN)/ecap-ops broker start --port $(KAFKA_PORT)
	@set -eo pipefail; \
	bootstrap=$$($(BIN)/ecap-ops broker status -o json | $(BIN)/python -c 'import json, sys; print(json.load(sys.stdin)["bootstrap_servers"])'); \
	echo "KAFKA_BOOTSTRAP_SERVERS=$$bootstrap $(BIN)/ecap-ops create-topics"; \
	KAFKA_BOOTSTRAP_SERVERS=$$bootstrap $(BIN)/ecap-ops create-topics; \
	export DAGSTER_HOME=$(DAGSTER_HOME); \
	$(START_DAGSTER)

# The same on the secured local cluster (docs/security.md): Kafka with SASL_SSL (SCRAM-SHA-512
# over TLS), the StandardAuthorizer and an `admin` super user, on $(KAFKA_SECURE_PORT) with
# its data in $(SECURE_DATA_DIR); the catalog's topics, then its access (`access apply`,
# each SCRAM user's password made once by scripts/dev_passwords.py into a 0600 file), then
# Dagster connected as admin. No password is printed: the shell reads them from their files.
run-secure: setup
	@mkdir -p "$(DAGSTER_HOME)" && cp local/dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"
	@set -eo pipefail; \
	exports=$$($(BIN)/ecap-ops broker start --secure --data-dir '$(SECURE_DATA_DIR)' --port $(KAFKA_SECURE_PORT)); \
	echo "$$exports"; \
	eval "$$(grep '^export ' <<<"$$exports")"; \
	eval "$$($(BIN)/python scripts/dev_passwords.py '$(SECURE_DATA_DIR)/security/users')"; \
	bootstrap=$$KAFKA_BOOTSTRAP_SERVERS; \
	$(BIN)/ecap-ops create-topics; \
	$(BIN)/ecap-ops access apply; \
	export DAGSTER_HOME=$(DAGSTER_HOME); \
	$(START_DAGSTER)

stop:
	-$(BIN)/ecap-ops broker stop
	-@test ! -d '$(SECURE_DATA_DIR)' || $(BIN)/ecap-ops broker stop --data-dir '$(SECURE_DATA_DIR)'

# Two workers: the tests that need a broker are in two groups (xdist groups `kafka` and
# `kafka-clusters`, added in ecap_ops_tests/conftest.py), each run by one worker in file
# order, one at a time; the pure-logic tests fill in where a worker is free. A plain
# `pytest` runs the same tests serially. The run ends with its 30 slowest tests, to see
# where the time goes.
test: system-deps setup
	@echo 'Kafka Streams and MirrorMaker 2 jars for their tests (fetched once):' && $(BIN)/ecap-ops broker fetch --all
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=30

# Pure logic only: no broker, no Dagster process; seconds, for a quick loop.
test-fast: setup
	$(BIN)/python -m pytest -m "not kafka and not slow" -q -n 2

bench: setup
	@set -e; for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b $(BENCH_ARGS); done

# The scale figures (docs/scale.md): each benchmark at 1,000 and 10,000 topics or groups,
# each size on a fresh local broker with a 2 GiB heap (512m does not hold ~8,000 topics).
SCALE_SIZES ?= 1000 10000
bench-scale: setup
	@set -e; for b in provisioning import dr retention; do echo "== benchmarks/bench_$$b.py"; \
	  $(BIN)/python benchmarks/bench_$$b.py --topics $(SCALE_SIZES) --heap 2g; done; \
	echo "== benchmarks/bench_lag.py"; \
	$(BIN)/python benchmarks/bench_lag.py --groups $(SCALE_SIZES) --runs 3 --heap 2g

# `dg check defs` over pyproject's [tool.dg] project: loads the code location as the code
# server would and checks every definition; needs only the venv (no broker, no Kafka jars).
# A throwaway DAGSTER_HOME (telemetry off) keeps the deployment's top-level dagster.yaml
# (PostgreSQL) out of it.
validate: $(VENV)/.installed
	@tmp=$$(mktemp -d) && printf 'telemetry:\n  enabled: false\n' > "$$tmp/dagster.yaml" && \
	DAGSTER_HOME=$$tmp $(BIN)/dg check defs; rc=$$?; rm -rf "$$tmp"; exit $$rc

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean: stop
	rm -rf $(VENV) .cache .dagster_home .pytest_cache artifacts
