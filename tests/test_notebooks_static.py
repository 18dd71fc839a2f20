"""House rules every course notebook keeps: valid nbformat 4, one parameters cell, no outputs, right links."""

import re
import tomllib

import nbformat
import pytest

from tests.notebook_tools import COURSE_NOTEBOOKS, ROOT, parameters_cell

REPOSITORY = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


def test_the_course_has_its_notebooks():
    assert COURSE_NOTEBOOKS and COURSE_NOTEBOOKS[0].name == "00_cnn_basics.ipynb"


@pytest.mark.parametrize("path", COURSE_NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_follows_the_template(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    parameters_cell(nb)
    assert not [c for c in nb.cells if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert nb.cells[0].cell_type == "markdown"
    github_path = REPOSITORY.removeprefix("https://github.com/")
    badge = f"https://colab.research.google.com/github/{github_path}/blob/main/notebooks/{path.name}"
    assert badge in nb.cells[0].source, "Colab badge must point at this notebook in the repository"
    assert nb.metadata["course"] == {"notebook": path.stem}, "the id grading recognises a renamed copy by"
    remote_images = re.findall(r"!\[[^\]]*\]\((https?://[^)]+)\)|<img[^>]+src=[\"']https?://",
                               "".join(c.source for c in nb.cells if c.cell_type == "markdown"))
    assert not remote_images, f"images that need the network (blank offline): {remote_images}"
    installs = re.findall(r"pip install[^\n]*git\+(https://[^\"'\s]+?)(?:\.git)?[\"'\s]", "".join(
        c.source for c in nb.cells if c.cell_type == "code"))
    assert installs == [REPOSITORY], "the Colab setup cell installs the package from pyproject's Repository URL"
