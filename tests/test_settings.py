"""The MODE knob (and the older QUICK flag): one table of run sizes, reached identically by papermill, the
environment and the cell."""

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


def test_quick_and_cpu_only_shrink_sizes():
    for profile in settings.PROFILES:
        full = settings.run_config(profile, mode="full")
        for mode in ("quick", "cpu"):
            small = settings.run_config(profile, mode=mode)
            assert small.epochs <= full.epochs
            assert small.image_size <= full.image_size
            assert small.width <= full.width
            assert (small.train_samples or 10**9) <= (full.train_samples or 10**9)
            # the same training call, only fewer or smaller steps: notebook 08's QUICK steps are batches of 256, not
            # 1,024 (with oneDNN off, steps of 1,024 took the notebook to 178 s); every other profile keeps its batch
            assert small.batch_size == full.batch_size or (profile.startswith("speedrun") and mode == "quick"
                                                           and small.batch_size == 256), (profile, mode)


def test_every_profile_has_all_three_modes():
    for profile, rows in settings.PROFILES.items():
        assert set(rows) == {"full", "cpu", "quick"}, profile


@pytest.mark.parametrize("raw, expected", [("quick", "quick"), ("CPU", "cpu"), (" full ", "full")])
def test_cnn_mode_sets_the_default(monkeypatch, raw, expected):
    monkeypatch.setenv("CNN_QUICK", "1")  # CNN_MODE wins over the older knob
    monkeypatch.setenv("CNN_MODE", raw)
    assert settings.mode_default() == expected


def test_the_default_is_cpu_without_an_accelerator_and_quick_under_cnn_quick(monkeypatch):
    from helpers import training

    monkeypatch.delenv("CNN_MODE", raising=False)
    monkeypatch.delenv("CNN_QUICK", raising=False)
    assert settings.mode_default() == ("cpu" if training.accelerator() == "cpu" else "full")
    monkeypatch.setattr(settings, "_accelerator_present", lambda: True)
    assert settings.mode_default() == "full"
    monkeypatch.setenv("CNN_QUICK", "1")
    assert settings.mode_default() == "quick"


def test_a_mode_that_does_not_exist_is_named(monkeypatch):
    monkeypatch.setenv("CNN_MODE", "fast")
    with pytest.raises(ValueError, match="CNN_MODE='fast'.*quick, cpu, full"):
        settings.mode_default()
    with pytest.raises(ValueError, match="MODE must be one of"):
        settings.run_config("lenet5", mode="fast")


def test_quick_true_means_quick_and_a_bare_quick_false_means_full():
    assert settings.resolve_mode("cpu", True) == "quick"
    assert settings.resolve_mode("cpu", False) == "cpu"  # papermill's -p QUICK False leaves MODE to decide
    assert settings.resolve_mode(None, False) == "full"  # run_config(profile, quick=False), as code wrote it
    assert settings.run_config("lenet5", quick=True) == settings.run_config("lenet5", mode="quick")


def test_overrides_win_and_none_means_default():
    cfg = settings.run_config("cnn_basics", quick=True, epochs=None, batch_size=7)
    assert cfg.epochs == settings.PROFILES["cnn_basics"]["quick"]["epochs"]
    assert cfg.batch_size == 7


def test_bad_arguments_are_named():
    with pytest.raises(KeyError, match="Unknown run profile"):
        settings.run_config("no_such_notebook", quick=True)
    with pytest.raises(TypeError, match="unknown size"):
        settings.run_config("cnn_basics", quick=True, epochz=3)
    with pytest.raises(TypeError, match="True, False or None"):
        settings.run_config("cnn_basics", quick="yes")
    with pytest.raises(TypeError, match="unknown size 'MODE'"):
        settings.run_config("cnn_basics", mode="quick", **{"MODE": "cpu"})


def test_env_and_explicit_quick_give_the_same_config(monkeypatch):
    monkeypatch.delenv("CNN_MODE", raising=False)
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


DEFAULT_LINE = "MODE = helpers.settings.mode_default()"


@pytest.mark.parametrize("path", COURSE_NOTEBOOKS, ids=lambda p: p.stem)
def test_every_way_to_ask_for_a_mode_gives_identical_parameters(path, monkeypatch):
    """Env var, papermill's injected cell, the older QUICK knob and an edited cell all end in the same run."""
    source = parameters_cell(nbformat.read(path, as_version=4)).source
    assert source.splitlines()[0].startswith(DEFAULT_LINE)
    assert source.splitlines()[1].startswith("QUICK = None")
    from papermill.translators import PythonTranslator  # papermill must read both, or it warns and injects blind

    names = [p.name for p in PythonTranslator.inspect(parameters_cell(nbformat.read(path, as_version=4)))]
    assert {"MODE", "QUICK"} <= set(names)
    monkeypatch.delenv("CNN_QUICK", raising=False)

    def mode_of(namespace):
        return settings.resolve_mode(namespace["MODE"], namespace["QUICK"])

    for mode in settings.MODES:
        monkeypatch.setenv("CNN_MODE", mode)
        by_env = _namespace_after(source)
        monkeypatch.delenv("CNN_MODE")
        by_papermill = _namespace_after(source, injected=f"MODE = {mode!r}")
        by_editing = _namespace_after(source.replace(DEFAULT_LINE, f"MODE = {mode!r}", 1))
        assert by_env == by_papermill == by_editing
        assert mode_of(by_env) == mode
    monkeypatch.setenv("CNN_QUICK", "1")
    by_old_env = _namespace_after(source)
    monkeypatch.delenv("CNN_QUICK")
    assert mode_of(by_old_env) == mode_of(_namespace_after(source, injected="QUICK = True")) == "quick"
    assert mode_of(_namespace_after(source)) == settings.mode_default()  # nothing set: this machine's default


PROBE = [
    "import json, helpers.settings",
    "MODE = helpers.settings.mode_default()\nQUICK = None\nEPOCHS = None",
    "cfg = helpers.settings.run_config('resnet_cifar10', mode=MODE, quick=QUICK, epochs=EPOCHS)\n"
    "print(json.dumps(cfg.as_dict()))",
]


def _run_probe(tmp_path, name, env, parameters, edit=None):
    import papermill

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in PROBE])
    nb.cells[1].metadata["tags"] = ["parameters"]
    if edit:
        nb.cells[1].source = nb.cells[1].source.replace(DEFAULT_LINE, edit)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source, output = tmp_path / f"{name}.ipynb", tmp_path / f"{name}.out.ipynb"
    nbformat.write(nb, source)
    saved = {k: os.environ.pop(k, None) for k in ("CNN_QUICK", "CNN_MODE")}
    os.environ.update(env)
    try:
        papermill.execute_notebook(str(source), str(output), parameters=parameters, progress_bar=False)
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None)
            if value is not None:
                os.environ[key] = value
    executed = nbformat.read(output, as_version=4)
    return json.loads(executed.cells[-1].outputs[0]["text"])


def test_papermill_environment_and_cell_reach_the_same_run_config(tmp_path):
    """End to end in real kernels: `-p MODE cpu`, `CNN_MODE=cpu` and an edited cell print the same config, and
    so do the older `-p QUICK True` and `CNN_QUICK=1`."""
    by_papermill = _run_probe(tmp_path, "papermill", {}, {"MODE": "cpu"})
    by_env = _run_probe(tmp_path, "env", {"CNN_MODE": "cpu"}, {})
    by_cell = _run_probe(tmp_path, "cell", {}, {}, edit="MODE = 'cpu'")
    assert by_papermill == by_env == by_cell == settings.run_config("resnet_cifar10", mode="cpu").as_dict()
    assert by_env["mode"] == "cpu" and by_env["epochs"] == settings.PROFILES["resnet_cifar10"]["cpu"]["epochs"]
    old_papermill = _run_probe(tmp_path, "old_papermill", {}, {"QUICK": True})
    old_env = _run_probe(tmp_path, "old_env", {"CNN_QUICK": "1"}, {})
    assert old_papermill == old_env == settings.run_config("resnet_cifar10", mode="quick").as_dict()
    assert old_env["quick"] is True


def test_data_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path))
    assert settings.data_dir() == tmp_path
    monkeypatch.delenv("CNN_DATA_DIR")
    assert settings.data_dir() == settings.repo_root() / "data"


@pytest.mark.parametrize("size, value", [("epochs", -1), ("epochs", 0), ("batch_size", 0), ("epochs", 2.5),
                                         ("train_samples", 0), ("width", 0), ("width", -0.5), ("minutes", 0)])
def test_impossible_sizes_fail_at_once(size, value):
    with pytest.raises(ValueError, match=size.upper()):
        settings.run_config("comparison", mode="full", **{size: value})


def test_each_notebook_says_its_mode_what_it_trains_and_its_recorded_time():
    line = settings.run_config("resnet_degradation", mode="cpu").describe()
    assert line.startswith("Mode 'cpu': 5 epoch(s) on 10,000 training images at 32 px, batch 128.")
    assert "The whole notebook in this mode: 1,219 s on a 2-core AMD EPYC" in line  # MEASURED's cpu row
    assert "The whole notebook in this mode: not yet recorded" in settings.run_config("resnet_degradation",
                                                                                    mode="full").describe()
    assert "3 epoch(s) on all training images" in settings.run_config("cnn_basics", mode="full").describe()
    assert "2 minutes per network" in settings.run_config("comparison", mode="cpu").describe()
    assert "whole notebook" not in settings.run_config("resnet_cifar10", mode="cpu").describe()  # 05's second line
    for profile, times in settings.MEASURED.items():
        assert profile in settings.PROFILES and set(times) <= set(settings.MODES)
