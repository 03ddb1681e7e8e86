# The two set-up commands of the README:
#   make repro  - create .venv, install requirements, rebuild the whole pipeline with `dvc repro`
#   make test   - create .venv, install requirements, run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed

.PHONY: setup browser repro test test-fast lint bench studio clean-venv

# The project itself is installed editable (pyproject.toml), so every script imports motion/models/...
# without sys.path tricks.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

repro: $(STAMP)
	$(BIN)/dvc config core.analytics false
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

lint: $(STAMP)
	$(BIN)/ruff check .

# Debian's headless browser for the studio tests (installed only when chromedriver is missing; needs root or sudo).
browser:
	test -x /usr/bin/chromedriver || { SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y chromium chromium-driver; }

studio: $(STAMP)
	$(BIN)/python -m tools.studio

test: lint browser
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

test-fast: lint browser
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	for b in benchmarks/*.py; do m=$$(basename $$b .py); echo "== $$m"; $(BIN)/python -m benchmarks.$$m || echo "== $$m failed (part_energy needs a trained model: make repro)"; done

clean-venv:
	rm -rf $(VENV)
