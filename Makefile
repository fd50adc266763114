# The two commands: `make run` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test chromium references lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/countersign dev

test: $(STAMP) chromium references lint typecheck unit

# The browser tests drive Debian's Chromium; nothing is downloaded from elsewhere.
chromium:
	@command -v chromium >/dev/null || { \
		echo "installing Debian's chromium package for the browser tests"; \
		apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; }

# The platforms' own libraries (npm twitter-text, @atproto/api), which the reference tests
# run under node; pinned by tests/reference/package-lock.json.
REFERENCES := tests/reference/node_modules/.package-lock.json
references: $(REFERENCES)
$(REFERENCES): tests/reference/package.json tests/reference/package-lock.json
	npm ci --prefix tests/reference --no-audit --no-fund --ignore-scripts --loglevel=error

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Three workers on two cores: much of the suite waits on servers (Temporal, PostgreSQL, the
# browser, the chaos test's processes), so with two the cores sat idle a third of the time
# (9.5 minutes with three here, 11.5-12 with two). Each worker has its own databases and
# Temporal dev server. Each starts with its share of the long tests, and one that runs out
# takes half of another's remaining tests (`worksteal`; tests/scheduling.py lays them out):
# with xdist's default, one worker was handed every long test and ran three minutes after
# the others had finished. `make test PYTEST_WORKERS=0` runs it serially.
PYTEST_WORKERS ?= 3
unit: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/post_list.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache tests/reference/node_modules
