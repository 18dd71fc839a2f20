"""What a learner sees, in a real browser: JupyterLab in headless Chromium runs notebook 00 and the student version of
notebook 01 through its own "Run All Cells", and the test reads the rendered page.

Needs Debian's ``chromium`` and ``requirements-browser.txt`` (JupyterLab, Playwright); ``make test-browser`` runs
it. Without them it is skipped, unless ``CNN_REQUIRE_BROWSER=1`` (set by CI), where it fails. Screenshots go to
``build/browser/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.notebook_tools import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = ROOT / "build" / "browser"
TF_LOG = re.compile(r"absl::InitializeLog|^[IWE]\d{4} |oneDNN custom operations|cuda drivers|cuInit|cpu_feature_guard",
                    re.MULTILINE)
PLOTS = re.compile(r"\bplt\.|\bhelpers\.plots\.|\bhelpers\.gradcam\.show|\bfig\s*=")


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return "Debian's chromium is not installed (apt-get install chromium)"
    for module in ("playwright", "jupyterlab"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (pip install -r requirements-browser.txt)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on the loopback address, serving a folder with notebook 00 and the student version of 01."""
    missing = _missing()
    if missing:
        if os.environ.get("CNN_REQUIRE_BROWSER") == "1":
            pytest.fail(f"the browser test is required here, but {missing}")
        pytest.skip(missing)
    from helpers import assignments

    folder = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "notebooks" / "00_cnn_basics.ipynb", folder)
    student = tmp_path_factory.mktemp("student")
    assignments.build(ROOT / "notebooks", student)
    shutil.copy(student / "01_lenet5.ipynb", folder / "01_lenet5_student.ipynb")
    settings = tmp_path_factory.mktemp("settings")
    for plugin, values in {
        # every cell in the page (no virtual scrolling), so that the whole notebook can be read and pictured
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                           "checkForUpdates": False},
    }.items():
        path = settings / plugin
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = _free_port(), "browser-test"
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env.update(CNN_QUICK="1", JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTER_RUNTIME_DIR=str(settings / "runtime"),
               CNN_RESULTS_DIR=str(folder / "results"), CNN_RUNS_DIR=str(folder / "runs"))
    for variable in ("CNN_NONINTERACTIVE", "CI", "MPLBACKEND"):  # a learner's session: progress bars, inline plots
        env.pop(variable, None)
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}", "--allow-root",
         "--LabApp.news_url=", f"--LabApp.workspaces_dir={settings / 'workspaces'}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("JupyterLab did not start within a minute")
    yield url, token
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


def _run_all(browser, lab, name: str, timeout_s: float = 600):
    """Open ``name`` in JupyterLab, Run → Run All Cells, wait until no cell is queued or running; the page."""
    url, token = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/lab/tree/{name}?token={token}&reset")  # a fresh workspace: this notebook alone
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    # The kernel is ready when the status bar says so (the notebook's own indicator is idle before it starts).
    page.wait_for_function("() => /\\| Idle/.test(document.querySelector('#jp-main-statusbar').innerText)",
                           timeout=120_000)
    started = ("() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
               ".some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))")
    page.click(".lm-MenuBar-itemLabel:text-is('Run')")
    page.click("li.lm-Menu-item[data-command='runmenu:run-all']")
    page.wait_for_function(started, timeout=60_000)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        busy = page.evaluate("""() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                                      .some(p => p.textContent.includes('*'))
                                  || !/\\| Idle/.test(document.querySelector('#jp-main-statusbar').innerText)""")
        if not busy:
            break
        time.sleep(1)
    else:
        pytest.fail(f"{name}: cells still running after {timeout_s} s")
    return page


def _cells(page) -> list[dict]:
    """Each code cell as the page shows it: its source, prompt, and the text, kind and images of its outputs."""
    return page.evaluate("""() => [...document.querySelectorAll('.jp-CodeCell')].map(cell => ({
        source: [...cell.querySelectorAll('.cm-line')].map(l => l.textContent).join('\\n'),
        prompt: (cell.querySelector('.jp-InputPrompt') || {}).textContent || '',
        outputs: [...cell.querySelectorAll('.jp-OutputArea-output')].map(o => ({
            mime: o.getAttribute('data-mime-type') || '',
            text: o.innerText,
            images: o.querySelectorAll('img').length,
        })),
    }))""")


def _screenshots(page, name: str, cells: list[dict], picks) -> None:
    """The screen where Run All ended, the notebook's first screen, and the code cells ``picks``, as pictures."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}_end.png"))
    page.query_selector(".jp-Cell").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / f"{name}_top.png"))
    elements = page.query_selector_all(".jp-CodeCell")
    for index in picks:
        elements[index].scroll_into_view_if_needed()
        elements[index].screenshot(path=str(SCREENSHOTS / f"{name}_cell{index:02d}.png"))


def test_notebook_00_reads_cleanly_in_jupyterlab(browser, lab):
    page = _run_all(browser, lab, "00_cnn_basics.ipynb")
    cells = _cells(page)
    errors = [c["source"][:80] for c in cells for o in c["outputs"] if "error" in o["mime"] or "Traceback" in o["text"]]
    assert not errors, f"cells with an error output: {errors}"
    logs = [o["text"][:200] for c in cells for o in c["outputs"] if "stderr" in o["mime"] and TF_LOG.search(o["text"])]
    assert not logs, f"TensorFlow's C++ log on the page: {logs}"
    unexecuted = [c["source"][:60] for c in cells if not re.search(r"\[\d+\]", c["prompt"])]
    assert not unexecuted, f"cells that did not run: {unexecuted}"
    plotting = [i for i, c in enumerate(cells) if PLOTS.search(c["source"])]
    assert plotting, "no plotting cell found: the page was not read"
    without = [cells[i]["source"][:60] for i in plotting if not sum(o["images"] for o in cells[i]["outputs"])]
    assert not without, f"plotting cells without a rendered image: {without}"
    training = [i for i, c in enumerate(cells) if "helpers.training.fit(" in c["source"]]
    _screenshots(page, "00_cnn_basics", cells, plotting[:3] + training[:1])


def test_student_check_reads_as_one_short_message(browser, lab):
    page = _run_all(browser, lab, "01_lenet5_student.ipynb")
    cells = _cells(page)
    failed = [(i, o) for i, c in enumerate(cells) for o in c["outputs"] if "c3_table is not written yet" in o["text"]]
    assert len(failed) == 1, "the first unfinished exercise's check did not report it"
    index, output = failed[0]
    lines = [line for line in output["text"].splitlines() if line.strip()]
    assert len(lines) <= 4, f"the check's failure takes {len(lines)} lines:\n" + "\n".join(lines)
    assert "helpers/checks.py" not in output["text"] and "Traceback" not in output["text"]
    logs = [o["text"][:200] for c in cells for o in c["outputs"] if "stderr" in o["mime"] and TF_LOG.search(o["text"])]
    assert not logs, f"TensorFlow's C++ log on the page: {logs}"
    _screenshots(page, "01_lenet5_student", cells, [index])
