"""Shared test set-up: no windows for plots, one line per epoch, and outputs kept out of build/."""

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("CNN_NONINTERACTIVE", "1")


@pytest.fixture(scope="session", autouse=True)
def isolated_outputs(tmp_path_factory):
    """Results, caches and training runs written by tests go to a temporary folder, never to build/."""
    previous = {k: os.environ.get(k) for k in ("CNN_RESULTS_DIR", "CNN_CACHE_DIR", "CNN_RUNS_DIR")}
    base = tmp_path_factory.mktemp("outputs")
    os.environ["CNN_RESULTS_DIR"] = str(base / "results")
    os.environ["CNN_CACHE_DIR"] = str(base / "cache")
    os.environ["CNN_RUNS_DIR"] = str(base / "runs")
    yield base
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
