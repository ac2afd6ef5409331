# The two commands a user needs: `make demo` and `make test`. Everything else is a step they call.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?=

.PHONY: demo test test-unit test-integration lint format install broker broker-secure broker-cluster broker-stop bench clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

broker:
	scripts/kafka-local start

broker-stop:
	scripts/kafka-local stop
	scripts/kafka-local stop --secure
	scripts/kafka-local stop --brokers 3

# Three brokers beside a dedicated KRaft controller; topics get replication 3 and min.insync.replicas 2.
broker-cluster:
	scripts/kafka-local start --brokers 3

# The secure broker (SASL_SSL, ACLs, a principal per role; docs/security.md). Needs `make install`:
# it grants the roles with nids-topics --acls.
broker-secure: install
	scripts/kafka-local start --secure

demo: install
	$(BIN)/python scripts/demo.py $(if $(DATA),--data $(DATA))

# The whole suite, unit and integration; the integration tests start the local broker themselves
# unless KAFKA_BOOTSTRAP names one.
test: install
	scripts/ensure-system-deps
	$(BIN)/python -m pytest -q tests

# ruff (lint, import order, format) and mypy (strict on nids_common, nids_model and the detector).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

test-integration: install
	scripts/ensure-system-deps
	$(BIN)/python -m pytest -q tests/integration

# Every benchmark in turn (about an hour: bench.memory and bench.incidents_memory run 10 minutes each,
# then the faults on three brokers).
# Figures, not pass/fail.
bench: install broker
	$(BIN)/python -m bench.model_throughput
	$(BIN)/python -m bench.model_quality
	$(BIN)/python -m bench.detector_throughput
	$(BIN)/python -m bench.detector_profile --flame bench-detector-profile.svg
	$(BIN)/python -m bench.latency
	$(BIN)/python -m bench.producer_throughput
	$(BIN)/python -m bench.memory
	$(BIN)/python -m bench.drift
	$(BIN)/python -m bench.reload
	$(BIN)/python -m bench.chaos
	$(BIN)/python -m bench.incidents_throughput
	$(BIN)/python -m bench.incidents_memory
	$(BIN)/python -m bench.incidents_restore
	$(BIN)/python -m bench.rebalance
	for fault in leader transaction-coordinator group-coordinator two-down rolling-restart; do \
		$(BIN)/python -m bench.chaos --cluster --fault $$fault --flows 200000 --kills 2 --malformed 500 || exit 1; \
	done

clean:
	-scripts/kafka-local stop
	-scripts/kafka-local stop --secure
	-scripts/kafka-local stop --brokers 3
	rm -rf $(VENV) .cache .kafka-local build *.egg-info
