# Two commands: `make run` (start guard with its built-in rules) and `make test`.
# Both create the virtual environment in .venv first if it is missing or stale.
# `make install` then puts a `guard` launcher on the PATH (/usr/local/bin, which sudo's
# secure_path includes, so `sudo guard jail` finds it too; PREFIX=~/.local for a user-only one).

PYTHON ?= $(shell command -v python3.12 2>/dev/null || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=
PREFIX ?= /usr/local
LAUNCHER := $(PREFIX)/bin/guard

.PHONY: run test venv install uninstall lint bench clean

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

# A two-line shell script that runs this checkout's guard (the venv's, so nothing else on
# the machine changes); written with sudo only when PREFIX/bin is not writable.
install: venv
	@printf '#!/bin/sh\n# guard launcher written by make install in %s\nexec "%s/$(BIN)/guard" "$$@"\n' \
		"$(CURDIR)" "$(CURDIR)" > $(VENV)/guard-launcher
	@chmod 755 $(VENV)/guard-launcher
	@if mkdir -p "$(PREFIX)/bin" 2>/dev/null && [ -w "$(PREFIX)/bin" ]; then \
		install -m 755 $(VENV)/guard-launcher "$(LAUNCHER)"; \
	else \
		echo "$(PREFIX)/bin is not writable: installing the launcher with sudo"; \
		sudo install -m 755 $(VENV)/guard-launcher "$(LAUNCHER)"; \
	fi
	@echo "installed $(LAUNCHER) -> $(CURDIR)/$(BIN)/guard"
	@case ":$$PATH:" in *":$(PREFIX)/bin:"*) ;; \
		*) echo "note: $(PREFIX)/bin is not on your PATH";; esac

uninstall:
	@if grep -qs 'written by make install' "$(LAUNCHER)"; then rm -f "$(LAUNCHER)" && \
		echo "removed $(LAUNCHER)"; else echo "no guard launcher at $(LAUNCHER)"; fi

lint: venv
	$(BIN)/ruff check guard tests
	$(BIN)/mypy guard

bench: venv
	$(BIN)/python bench/bench.py $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
