# Two commands do all the set-up on a fresh clone:
#   make start RECORD=5   install into .venv, then open the co-pilot app on record 5 (CPU micro track, offline provider)
#   make test             install with test extras into .venv, then run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU build by default. On a GPU box, pick the torch build that matches your CUDA, e.g. TORCH=torch==2.10.0
TORCH ?= torch==2.13.0
RECORD ?= 0
ARGS ?=
# setuptools announces every editable install of a package-dir layout (records/ -> copilot.records) with a
# multi-line "Editable installation." notice; it is information only, so keep `make start` quiet.
QUIET_EDITABLE := PYTHONWARNINGS="ignore:Editable installation"

.PHONY: start test install install-test clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q "$(TORCH)"
	$(QUIET_EDITABLE) $(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(QUIET_EDITABLE) $(PY) -m pip install -q -e ".[test,plot]"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

start: install
	$(VENV)/bin/speedcopilot start --record $(RECORD) $(ARGS)

test: install-test
	$(PY) -m pytest -q $(ARGS)

clean-venv:
	rm -rf $(VENV)
