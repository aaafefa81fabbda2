# The two commands of the README: `make demo` and `make test` do all the set-up themselves.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: demo test bench screenshots sim clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Stamps record what was installed, so a changed pyproject.toml re-installs.
$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/batchtui demo

sim: $(VENV)/.installed
	$(VENV)/bin/batchtui sim

test: $(VENV)/.installed-dev
	$(PY) -m pytest

# Our modules byte-compiled first, as a regular (wheel) install has them: an editable install
# leaves that to the first import, and where PYTHONDONTWRITEBYTECODE is set every process of
# the benchmark would compile them again (~50 ms of each `batchtui` start-up).
bench: $(VENV)/.installed-dev
	$(PY) -m compileall -q batchtui
	$(PY) -m pytest tests/bench -q -s --bench

screenshots: $(VENV)/.installed-dev
	$(PY) -m batchtui.screenshots screenshots

clean:
	rm -rf $(VENV) .pytest_cache
