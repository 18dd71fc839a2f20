"""The installable package declares lower bounds only; the tested versions live in requirements.txt."""

import re
import tomllib

from tests.notebook_tools import ROOT


def test_package_never_caps_tensorflow_but_the_tested_pins_do():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=!~ ]", d, maxsplit=1)[0]: d for d in project["dependencies"]}
    # A cap here would make `pip install git+…` on a machine with a newer TensorFlow (Colab) downgrade it.
    for name in ("tensorflow", "keras"):
        assert ">=" in declared[name] and "<" not in declared[name], declared[name]
    pinned = {re.split(r"[<>=!~ ]", line, maxsplit=1)[0]: line for line in (ROOT / "requirements.txt").read_text()
              .splitlines() if line and not line.startswith("#")}
    assert "<" in pinned["tensorflow"] and "<" in pinned["keras"]  # what CI and `make setup` test
    assert project["requires-python"] == ">=3.11"  # tomllib in the tests; Colab has 3.13
