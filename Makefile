# The two commands a newcomer needs: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test unit integration stop kafka-start kafka-stop bench quality clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## make run: install, start Kafka (docker compose if a Docker engine runs, else the local broker),
## create topics, start the worker, replay seeds/, print the enriched articles.
run: $(STAMP)
	@bash scripts/run-demo.sh

## make test: install, fetch Kafka, run unit + integration tests against a real broker.
test: $(STAMP)
	$(BIN)/ingest kafka fetch
	$(BIN)/pytest -q tests/unit tests/integration

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/ingest kafka fetch
	$(BIN)/pytest -q tests/integration

## make stop: stop what `make run` started (worker, local broker or compose stack).
stop:
	@bash scripts/run-demo.sh stop

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .cache .pytest_cache
