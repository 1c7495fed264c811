# salesops: every target sets up what it needs (virtualenv, dependencies, stubs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
PROTOS := $(shell find protos -name '*.proto')
GENSTAMP := gen/.stamp
PYTEST_WORKERS ?= 2

.PHONY: all setup proto web run test test-fast lint bench bench-quick clean token

all: proto

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) tools/install_pth.py
	@touch $(STAMP)

proto: $(GENSTAMP)

$(GENSTAMP): $(STAMP) $(PROTOS) tools/gen_protos.py
	$(PY) tools/gen_protos.py
	@touch $(GENSTAMP)

# The web console (web/, Node.js 20.19+): rebuilt only when its sources changed. `make run` builds it
# itself (saying so when Node.js is missing); `make test` builds it first so no stack test pays for it.
web: proto
	$(PY) tools/build_web.py

run: proto
	MALLOC_ARENA_MAX=$${MALLOC_ARENA_MAX:-2} exec $(PY) -m deploy.local

test: proto
	@$(PY) tools/build_web.py || echo "web: the console is not built; its tests will say why"
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

test-fast: proto
	$(PY) -m pytest -n $(PYTEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

lint: proto
	$(BIN)/buf lint --path protos/salesops
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy kit services gateway deploy tools bench
	$(BIN)/lint-imports --no-cache --no-logo

bench: proto
	$(PY) -m bench

# Reduced sizes, under 3 minutes: for use while developing (make bench is the figure of record).
bench-quick: proto
	$(PY) -m bench --quick

token: proto
	$(PY) -m kit.tokens $(ARGS)

clean:
	rm -rf gen build var .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info
