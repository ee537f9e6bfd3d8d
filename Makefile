# Two commands: `make run` (start guard with its built-in rules) and `make test`.
# Both create the virtual environment in .venv first if it is missing or stale.

PYTHON ?= $(shell command -v python3.12 2>/dev/null || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: run test venv lint bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "guard needs Python >= 3.12 (mitmproxy 12); found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	@touch $@

run: venv
	$(BIN)/guard run $(ARGS)

test: venv
	$(BIN)/python -m pytest -n auto $(ARGS)

lint: venv
	$(BIN)/ruff check guard tests
	$(BIN)/mypy guard

bench: venv
	$(BIN)/python bench/bench.py $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
