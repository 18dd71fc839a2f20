# The README's two commands: `make run` (every notebook, QUICK) and `make test` (unit tests + nbval).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test test-colab test-browser student lab clean

setup: $(STAMP)

# Re-install only when the dependency lists change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -e .
	touch $(STAMP)

# make run MODE=cpu for results on a laptop CPU, MODE=full (or FULL=1) for the paper-scale course on a GPU;
# NOTEBOOKS="01 03" for a subset.
MODE ?= quick
run: setup
	$(PY) -m helpers.run_notebooks --mode $(if $(FULL),full,$(MODE)) $(NOTEBOOKS)

test: setup
	CNN_QUICK=1 CNN_NONINTERACTIVE=1 MPLBACKEND=Agg $(PY) -m pytest tests notebooks --nbval-lax --nbval-cell-timeout=600 $(PYTEST_ARGS)

# Colab's stack (requirements-colab.txt) in a second environment, built with COLAB_PYTHON (a Python 3.13).
COLAB_PYTHON ?= python3.13
COLAB_VENV ?= .venv-colab
test-colab:
	test -x $(COLAB_VENV)/bin/python || $(COLAB_PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COLAB_VENV)/bin/python -m pip install --quiet -r requirements.txt -c requirements-colab.txt -e .
	$(COLAB_VENV)/bin/python -c "import sys, tensorflow as tf, keras; print('Colab stack: Python', sys.version.split()[0], '/ TensorFlow', tf.__version__, '/ Keras', keras.__version__)"
	CNN_QUICK=1 CNN_NONINTERACTIVE=1 MPLBACKEND=Agg $(COLAB_VENV)/bin/python -m pytest tests --ignore=tests/test_browser.py $(PYTEST_ARGS)

# What a learner sees: JupyterLab in headless Chromium runs notebook 00 and the student version of 01 through its own
# "Run All Cells" (tests/test_browser.py); screenshots in build/browser/. Needs Debian's chromium (apt-get install
# chromium); installs JupyterLab and Playwright (requirements-browser.txt) into the environment.
test-browser: setup
	$(PY) -m pip install --quiet -r requirements-browser.txt
	CNN_REQUIRE_BROWSER=1 MPLBACKEND=Agg $(PY) -m pytest tests/test_browser.py $(PYTEST_ARGS)

# Student versions of the notebooks (solutions stubbed, hidden tests removed) in build/student/.
student: setup
	$(PY) -m helpers.assignments build

lab: setup
	$(PY) -m pip install --quiet "jupyterlab>=4.2"
	$(PY) -m jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root)  # root: as in many containers

clean:
	rm -rf build .pytest_cache
