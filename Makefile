# Every target creates the virtual environment it needs on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MAIL ?=

.PHONY: help demo test test-unit test-e2e bench reliability clean

help:  ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | \
		awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

demo: $(BIN)/.installed  ## Run the worker on a local AWS endpoint and SMTP server (MAIL=folder of .eml files)
	$(BIN)/python -m devstack.demo $(if $(MAIL),--mail "$(MAIL)")

test: $(BIN)/.installed  ## Run the whole test suite
	$(BIN)/python -m pytest -n 2

test-unit: $(BIN)/.installed  ## Run the unit tests only
	$(BIN)/python -m pytest -n 2 tests/unit

test-e2e: $(BIN)/.installed  ## Run the end-to-end tests only
	$(BIN)/python -m pytest -n 2 tests/e2e

bench: $(BIN)/.installed  ## Benchmark the worker against the floor; appends to docs/BENCHMARKS.md
	$(BIN)/python -m bench.run

reliability: $(BIN)/.installed  ## Run the fault-injection tests and write docs/RELIABILITY.md
	RELIABILITY_REPORT=.reliability.json $(BIN)/python -m pytest -n 2 \
		tests/faults -q; status=$$?; \
		$(BIN)/python tools/reliability_report.py .reliability.json \
		docs/RELIABILITY.md && exit $$status

clean:  ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .hypothesis .reliability.json demo-output
