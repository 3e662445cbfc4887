# ecap-ops: `make run` (local Kafka + catalog + Dagster UI on :3000) and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DAGSTER_PORT ?= 3000
KAFKA_PORT ?= 9092
DAGSTER_HOME ?= $(CURDIR)/.dagster_home
KAFKA_BOOTSTRAP_SERVERS ?= 127.0.0.1:$(KAFKA_PORT)

.PHONY: setup system-deps run stop test bench validate lint format clean

# Idempotent: creates the venv, installs the package with its pinned dependencies when
# pyproject.toml changed, and fetches the Kafka jars once into .cache/.
setup: $(VENV)/.installed
	@$(BIN)/ecap-ops broker fetch

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

# Debian packages the tests use (kcat, chromium, chromedriver, docker-compose) and Java/Maven.
system-deps:
	bash scripts/install-system-deps.sh

run: setup
	@mkdir -p $(DAGSTER_HOME) && cp local/dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/ecap-ops broker start --port $(KAFKA_PORT)
	KAFKA_BOOTSTRAP_SERVERS=$(KAFKA_BOOTSTRAP_SERVERS) $(BIN)/ecap-ops create-topics
	@echo "Dagster UI: http://127.0.0.1:$(DAGSTER_PORT)  (Ctrl-C stops Dagster; 'make stop' stops Kafka)"
	DAGSTER_HOME=$(DAGSTER_HOME) KAFKA_BOOTSTRAP_SERVERS=$(KAFKA_BOOTSTRAP_SERVERS) \
	  $(BIN)/dagster dev -h 127.0.0.1 -p $(DAGSTER_PORT) -w local/workspace.yaml

stop:
	-$(BIN)/ecap-ops broker stop

test: setup
	$(BIN)/python -m pytest

bench: setup
	@set -e; for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b $(BENCH_ARGS); done

# The code location loads with no broker; a throwaway DAGSTER_HOME keeps the deployment's
# top-level dagster.yaml (PostgreSQL) out of it.
validate: setup
	@tmp=$$(mktemp -d) && DAGSTER_HOME=$$tmp $(BIN)/dagster definitions validate -m ecap_ops -a defs; rc=$$?; rm -rf $$tmp; exit $$rc

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean: stop
	rm -rf $(VENV) .cache .dagster_home .pytest_cache artifacts
