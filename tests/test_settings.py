"""The QUICK flag: one table of run sizes, reached identically by papermill, the environment and the cell."""

import json
import os

import nbformat
import pytest

from helpers import settings
from tests.notebook_tools import COURSE_NOTEBOOKS, parameters_cell


@pytest.mark.parametrize("raw, expected", [("1", True), ("true", True), ("YES", True), ("0", False), ("", False)])
def test_quick_default_reads_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv("CNN_QUICK", raw)
    assert settings.quick_default() is expected


def test_quick_default_rejects_a_value_that_is_not_yes_or_no(monkeypatch):
    monkeypatch.setenv("CNN_QUICK", "maybe")
    with pytest.raises(ValueError, match="CNN_QUICK"):
        settings.quick_default()


def test_quick_only_shrinks_sizes():
    for profile in settings.PROFILES:
        full = settings.run_config(profile, quick=False)
        quick = settings.run_config(profile, quick=True)
        assert quick.epochs <= full.epochs
        assert quick.image_size <= full.image_size
        assert (quick.train_samples or 10**9) <= (full.train_samples or 10**9)
        assert quick.batch_size == full.batch_size  # the same training call, only fewer steps


def test_overrides_win_and_none_means_default():
    cfg = settings.run_config("cnn_basics", quick=True, epochs=None, batch_size=7)
    assert cfg.epochs == settings.PROFILES["cnn_basics"]["quick"]["epochs"]
    assert cfg.batch_size == 7


def test_bad_arguments_are_named():
    with pytest.raises(KeyError, match="Unknown run profile"):
        settings.run_config("no_such_notebook", quick=True)
    with pytest.raises(TypeError, match="unknown size"):
        settings.run_config("cnn_basics", quick=True, epochz=3)
    with pytest.raises(TypeError, match="True or False"):
        settings.run_config("cnn_basics", quick="yes")


def test_env_and_explicit_quick_give_the_same_config(monkeypatch):
    monkeypatch.setenv("CNN_QUICK", "1")
    from_env = settings.run_config("lenet5", quick=settings.quick_default())
    monkeypatch.delenv("CNN_QUICK")
    assert from_env == settings.run_config("lenet5", quick=True)
    assert from_env != settings.run_config("lenet5", quick=False)


def _namespace_after(source: str, injected: str = "") -> dict:
    """Run a notebook's parameters cell (plus papermill-style injected lines) and return its variables."""
    namespace = {"helpers": __import__("helpers.settings")}
    exec(source + "\n" + injected, namespace)
    return {k: v for k, v in namespace.items() if k.isupper()}


@pytest.mark.parametrize("path", COURSE_NOTEBOOKS, ids=lambda p: p.stem)
def test_three_ways_to_ask_for_quick_give_identical_parameters(path, monkeypatch):
    """Env var, papermill's injected cell, and an edited cell all leave the same parameters behind."""
    source = parameters_cell(nbformat.read(path, as_version=4)).source
    assert source.splitlines()[0].startswith("QUICK = helpers.settings.quick_default()")
    monkeypatch.setenv("CNN_QUICK", "1")
    by_env = _namespace_after(source)
    monkeypatch.delenv("CNN_QUICK")
    by_papermill = _namespace_after(source, injected="QUICK = True")
    by_editing = _namespace_after(source.replace("QUICK = helpers.settings.quick_default()", "QUICK = True", 1))
    assert by_env == by_papermill == by_editing
    assert by_env["QUICK"] is True
    assert _namespace_after(source)["QUICK"] is False  # nothing set: the full run


PROBE = [
    "import json, helpers.settings",
    "QUICK = helpers.settings.quick_default()\nEPOCHS = None",
    "cfg = helpers.settings.run_config('lenet5', quick=QUICK, epochs=EPOCHS)\nprint(json.dumps(cfg.as_dict()))",
]


def _run_probe(tmp_path, name, env_quick, parameters):
    import papermill

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in PROBE])
    nb.cells[1].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source, output = tmp_path / f"{name}.ipynb", tmp_path / f"{name}.out.ipynb"
    nbformat.write(nb, source)
    old = os.environ.pop("CNN_QUICK", None)
    if env_quick:
        os.environ["CNN_QUICK"] = "1"
    try:
        papermill.execute_notebook(str(source), str(output), parameters=parameters, progress_bar=False)
    finally:
        os.environ.pop("CNN_QUICK", None)
        if old is not None:
            os.environ["CNN_QUICK"] = old
    executed = nbformat.read(output, as_version=4)
    return json.loads(executed.cells[-1].outputs[0]["text"])


def test_papermill_and_environment_reach_the_same_run_config(tmp_path):
    """End to end in real kernels: `papermill -p QUICK True` and `CNN_QUICK=1` print the same config."""
    by_papermill = _run_probe(tmp_path, "papermill", env_quick=False, parameters={"QUICK": True})
    by_env = _run_probe(tmp_path, "env", env_quick=True, parameters={})
    assert by_papermill == by_env == settings.run_config("lenet5", quick=True).as_dict()
    assert by_env["quick"] is True


def test_data_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path))
    assert settings.data_dir() == tmp_path
    monkeypatch.delenv("CNN_DATA_DIR")
    assert settings.data_dir() == settings.repo_root() / "data"


@pytest.mark.parametrize("size, value", [("epochs", -1), ("epochs", 0), ("batch_size", 0), ("epochs", 2.5),
                                         ("train_samples", 0), ("width", 0), ("width", -0.5), ("minutes", 0)])
def test_impossible_sizes_fail_at_once(size, value):
    with pytest.raises(ValueError, match=size.upper()):
        settings.run_config("comparison", quick=False, **{size: value})
