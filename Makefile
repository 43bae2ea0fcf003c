# The two commands: `make demo` and `make test`. Both create .venv and install into it when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test lint bench clean schema fuzz

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/gateway demo

# On every core (at most 4 workers: the database and the subprocesses the tests start share the machine);
# TEST_ARGS adds pytest options, e.g. make test TEST_ARGS="-n 0 -k dispatch" for one process.
test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider -n auto --maxprocesses 4 $(TEST_ARGS)

# The property tests (marked `fuzz`) with many more examples than the suite gives them: a few minutes, on
# SQLite and, when GATEWAY_TEST_DATABASE_URL is set, PostgreSQL. The statistics say how many cases ran.
fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q -p no:cacheprovider -m fuzz --hypothesis-show-statistics tests

lint: install
	$(BIN)/ruff check gateway connectors kpi tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python -m bench

schema: install
	$(BIN)/gateway schema > graphql/schema.graphql

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache gateway.db gateway.db-*
