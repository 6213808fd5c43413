# The two commands of the README: `make demo` and `make test`. Each builds the virtual
# environment it needs from pyproject.toml, so a fresh clone needs nothing but Python 3.10+.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
DEMO   := $(VENV)/.installed-demo

.PHONY: demo test test-fast security lint typecheck docs bench bench-quick browser wrk clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The demo needs only sessio and its `demo` extra; the tests need the whole `dev` toolchain.
$(DEMO): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	touch $@

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEMO) $@

demo: $(DEMO)
	$(BIN)/sessio demo $(ARGS)

# $(call apt-ensure,COMMAND,PACKAGE,WHAT HAPPENS WITHOUT IT): install Debian's PACKAGE when
# COMMAND (a name on PATH or an absolute path) is missing and we may (root + apt). Otherwise, or
# when apt fails, print a note and carry on: the tool that needs it skips or reports it missing.
apt-ensure = @if ! command -v $(1) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; } \
	      || echo "note: installing Debian's $(2) failed; $(3)"; \
	  else echo "note: $(1) missing; $(3) (install Debian's $(2))"; fi; \
	fi

# Debian's chromium for the browser test.
browser:
	$(call apt-ensure,/usr/bin/chromium,chromium,browser tests will skip)

# Debian's wrk for the benchmarks' HTTP section (redis-server and postgres come from the machine).
wrk:
	$(call apt-ensure,wrk,wrk,the benchmark reports wrk as missing)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# The documentation site into site/ (strict: a broken link or reference fails the build).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

test: $(STAMP) browser lint typecheck
	$(BIN)/pytest $(ARGS)

test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow" $(ARGS)

security: $(STAMP)
	$(BIN)/pytest tests/security $(ARGS)

bench: $(STAMP) wrk
	$(BIN)/python -m benchmarks $(ARGS)

bench-quick: $(STAMP) wrk
	$(BIN)/python -m benchmarks --quick $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache site
