# `make run` installs only what the service needs; `make test` and `make bench` add their tools.
# Everything installs into .venv from pyproject.toml, one stamp file per set of extras.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench clean kinesalite

# The whole development set: the service, its tests and the linters.
install: $(VENV)/.installed-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# Each extra holds the runtime too, so its stamp also stands for `make run`'s.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/firehose serve --config configs/

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# kinesalite, the second Kinesis server the source tests run against (npm, into .kinesalite/).
KINESALITE := .kinesalite/node_modules/.bin/kinesalite
kinesalite: $(KINESALITE)
$(KINESALITE):
	npm install --no-audit --no-fund --prefix .kinesalite kinesalite@3.3.3

test: lint $(KINESALITE)
	$(BIN)/pytest -q

bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench.ingest

clean:
	rm -rf $(VENV) data .pytest_cache .kinesalite
