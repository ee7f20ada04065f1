# The two commands a newcomer needs: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test unit integration stop kafka-start kafka-stop bench quality clean compose-test integration-container \
        lint system-deps screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

# docker-compose (v1, from PyPI) validates docker-compose.yml in the tests where the compose
# plugin is absent. Its own venv: it pins jsonschema<4 and PyYAML<6 (whose sdist needs Cython<3).
COMPOSE_VENV := .cache/compose-venv
$(COMPOSE_VENV)/bin/docker-compose:
	$(PYTHON) -m venv $(COMPOSE_VENV)
	$(COMPOSE_VENV)/bin/pip install --quiet "cython<3" wheel setuptools
	$(COMPOSE_VENV)/bin/pip install --quiet --no-build-isolation "pyyaml==5.4.1"
	$(COMPOSE_VENV)/bin/pip install --quiet "docker-compose==1.29.2"

## make run: install, start Kafka (docker compose if a Docker engine runs, else the local broker),
## create topics, start the worker, replay seeds/, print the enriched articles.
run: $(STAMP)
	@bash scripts/run-demo.sh

## make test: install, fetch Kafka, run unit + integration tests against a real broker.
test: $(STAMP) $(COMPOSE_VENV)/bin/docker-compose system-deps
	$(BIN)/ingest kafka fetch
	$(BIN)/pytest -q tests/unit tests/integration

unit: $(STAMP) $(COMPOSE_VENV)/bin/docker-compose
	$(BIN)/pytest -q tests/unit

integration: $(STAMP) system-deps
	$(BIN)/ingest kafka fetch
	$(BIN)/pytest -q tests/integration

## make compose-test: the compose stack end to end on a Docker engine (installed and started when
## none answers and the machine allows it; skipped, saying why, when none can be had), then the
## integration tests through the container path. See scripts/compose-test.sh.
compose-test: $(STAMP)
	@bash scripts/compose-test.sh

## make integration-container: tests/integration against docker-compose.yml's kafka service.
integration-container: $(STAMP)
	KAFKA_TEST_BROKER=container $(BIN)/pytest -q tests/integration

## make lint: ruff (worker, topics, bench, tests) and mypy (worker, topics), as CI runs them.
lint: $(STAMP)
	$(BIN)/ruff check worker topics bench tests
	$(BIN)/mypy

## chromium and kcat, which integration tests drive (Debian packages; see the script).
system-deps:
	@bash scripts/system-deps.sh

## make screenshots: docs/status.png, the status page after the seeds (needs chromium).
screenshots: $(STAMP) system-deps
	$(BIN)/ingest kafka fetch
	@bash scripts/status-screenshot.sh docs/status.png

## make stop: stop what `make run` started (worker, local broker or compose stack).
stop:
	@bash scripts/run-demo.sh stop

## make bench: throughput, latency, scaling and recovery in one run → bench/results, BENCHMARKS.md
bench: $(STAMP)
	$(BIN)/python -m bench

## make quality: language, near-duplicate, entity and story quality → docs/quality.md (+ plots)
quality: $(STAMP)
	$(BIN)/python -m worker.quality

clean:
	rm -rf $(VENV) .cache .pytest_cache
