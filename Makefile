# Every target does its own set-up: a fresh machine needs nothing but python3 (and node/npm for interop).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PG_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
# `make migrate` target; `make run` reads DATABASE_URL itself (SQLite unless set).
DATABASE_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/oauth_server

.PHONY: run test lint typecheck bench migrate postgres clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

postgres:
	@scripts/ensure_postgres.sh

run: $(STAMP)
	$(BIN)/python -m example.server

migrate: $(STAMP) postgres
	$(BIN)/python scripts/create_database.py '$(DATABASE_URL)'
	$(BIN)/python -m oauth_server.migrate upgrade --url '$(DATABASE_URL)'

typecheck: $(STAMP)
	$(BIN)/mypy

lint: $(STAMP)
	$(BIN)/ruff check oauth_server tests example bench scripts

test: $(STAMP) postgres
	$(BIN)/ruff check oauth_server tests example bench scripts
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: $(STAMP) postgres
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
