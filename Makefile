# Set-up and everyday commands. Every target creates .venv and installs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 5000
HOST ?= 127.0.0.1
DEV_ENV := APP_ENV=development

.PHONY: install run migrate admin demo test pytest lint typecheck clean bench

$(STAMP): pyproject.toml tests/support/fhir_validator/package-lock.json
	bash infra/system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(DEV_ENV) $(BIN)/flask --app wsgi db upgrade

run: migrate
	@echo ""
	@echo "  Serving on http://$(HOST):$(PORT)  (SQLite and images under ./instance)"
	@echo "  API docs:     http://$(HOST):$(PORT)/api/docs   (OpenAPI: /api/openapi.json)"
	@echo "  First sign-in: make admin EMAIL=you@example.com   (or sample data: make demo)"
	@echo ""
	$(DEV_ENV) $(BIN)/flask --app wsgi run --host $(HOST) --port $(PORT) --no-debugger --no-reload

admin: migrate
	@test -n "$(EMAIL)" || (echo "usage: make admin EMAIL=you@example.com" && exit 2)
	@$(DEV_ENV) $(BIN)/flask --app wsgi create-admin $(EMAIL)

# Two sample practices with people, patients and cases; refused in production.
demo: migrate
	@$(DEV_ENV) $(BIN)/flask --app wsgi demo

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Two worker processes by default (the suite's fixtures give each its own database, S3 server and browser); a
# worker that runs out of tests takes some of the other's, so a few long tests at the end do not leave one idle.
# PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2

pytest: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal

test: lint typecheck pytest

# Benchmarks against baselines measured in the same run (Orthanc, bare Flask...); never part of `make test`.
# QUICK=1 runs a smaller version in a few minutes. Results: bench/results/latest.json, docs/benchmarks.md.
bench: $(STAMP)
	bash bench/setup.sh
	QUICK=$(QUICK) $(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
