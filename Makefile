# The README's two commands: `make run` (every notebook, QUICK) and `make test` (unit tests + nbval).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test student lab clean

setup: $(STAMP)

# Re-install only when the dependency lists change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -e .
	touch $(STAMP)

# make run FULL=1 for the full-length course; NOTEBOOKS="01 03" for a subset.
run: setup
	$(PY) -m helpers.run_notebooks $(if $(FULL),--full) $(NOTEBOOKS)

test: setup
	CNN_QUICK=1 CNN_NONINTERACTIVE=1 MPLBACKEND=Agg $(PY) -m pytest tests notebooks --nbval-lax $(PYTEST_ARGS)

# Student versions of the notebooks (solutions stubbed, hidden tests removed) in build/student/.
student: setup
	$(PY) -m helpers.assignments build

lab: setup
	$(PY) -m pip install --quiet "jupyterlab>=4"
	$(PY) -m jupyter lab notebooks

clean:
	rm -rf build .pytest_cache
