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
# -qq: pip's errors only. Its warnings (an index location a machine's pip.conf names but lacks: 90-odd lines
# on our build VMs) are not the user's business; a failed install still prints pip's error and stops make.
PIP := $(PY) -m pip install -qq
# An editable install leaves the package as source; compile it here so that no start pays for compiling it,
# also where PYTHONDONTWRITEBYTECODE keeps Python from caching it (0.13 s of each start on our VM).
COMPILE := $(PY) -m compileall -q copilot

.PHONY: start test install install-test clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) "$(TORCH)"
	$(QUIET_EDITABLE) $(PIP) -e .
	$(COMPILE)
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(QUIET_EDITABLE) $(PIP) -e ".[test,plot]"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# compiling again is ~50 ms when nothing changed; it refreshes what a pull or an edit of the code changed
start: install
	@$(COMPILE)
	$(VENV)/bin/speedcopilot start --record $(RECORD) $(ARGS)

test: install-test
	$(PY) -m pytest -q $(ARGS)

clean-venv:
	rm -rf $(VENV)
