# Onlooker: `make demo` runs the whole path on this machine, `make test` runs every test.
# Both create .venv on first use and reinstall only when pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
ARGS ?=

.PHONY: demo test install models lint clean help mutate

help:
	@echo "make demo   install into $(VENV) if needed, fetch the model, run 'onlooker demo' (ARGS=...)"
	@echo "make test   install with test extras, fetch model and media, run every test (PYTEST_ARGS=...)"
	@echo "make lint   ruff check and format check"
	@echo "make mutate mutation run over the privacy path (cosmic-ray, ~45 min; ARGS=--only MODULE)"
	@echo "make clean  remove $(VENV) and caches (the model cache in ~/.cache/onlooker stays)"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
		|| { echo "Onlooker needs Python >= 3.10; set PYTHON=python3.x"; exit 1; }
	@echo ">> creating the virtual environment $(VENV) with $$($(PYTHON) --version)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo ">> installing onlooker and its dependencies into $(VENV)"
	$(BIN)/python -m pip install --quiet --editable .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	@echo ">> installing onlooker with its test extras into $(VENV)"
	$(BIN)/python -m pip install --quiet --editable '.[test]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed

models: $(VENV)/.installed
	@echo ">> fetching the face model and sample media (hash-pinned, cached)"
	$(BIN)/onlooker models fetch

demo: models
	@echo ">> running: onlooker demo $(ARGS)"
	$(BIN)/onlooker demo $(ARGS)

test: $(VENV)/.installed-test models
	@echo ">> running the test suite"
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Not part of `make test` (tens of minutes): see docs/testing.md for what it runs and found.
mutate: $(VENV)/.installed-test models
	@echo ">> mutation run over the privacy path (one mutant at a time, in a scratch copy of HEAD)"
	nice -n 10 $(BIN)/python tests/mutate_privacy.py $(ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
