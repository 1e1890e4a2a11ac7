"""Notebook 07's explorer in a real browser: JupyterLab served on localhost, driven by
Playwright in headless Chromium (Debian's ``chromium`` package; no browser is downloaded).

The notebook runs against a results tree holding one small explainer; the test moves the α
slider and checks that the counterfactual image and its score change. Skipped when Chromium or
Playwright is missing, except where ``CFX_REQUIRE_BROWSER=1`` (set by ``.ci/run``), where that
is a failure: CI must run it.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CFX_CHROMIUM", "/usr/bin/chromium")
TOKEN = "cfx-browser-test"
# flags for a closed network and a root user (see the machine notes in the README)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def _missing() -> str | None:
    if not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CFX_CHROMIUM)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="module")
def browser_ready():
    reason = _missing()
    if reason and os.environ.get("CFX_REQUIRE_BROWSER") == "1":
        pytest.fail(f"the browser test must run here (CFX_REQUIRE_BROWSER=1) but {reason}")
    if reason:
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyter_lab(browser_ready, tmp_path, toy_explainer):
    """A JupyterLab server on a copy of notebook 07 (so that no autosave touches the repository),
    whose kernels see a results tree with one explainer."""
    results = tmp_path / "results"
    toy_explainer(results)
    (tmp_path / "notebooks").mkdir()
    shutil.copy(REPO / "notebooks" / "07_explorer.ipynb", tmp_path / "notebooks")
    port = _free_port()
    env = os.environ | {"CFX_RESULTS_ROOT": str(results), "CFX_OFFLINE": "1", "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
                        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    log = open(tmp_path / "jupyter.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1", "--allow-root",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={tmp_path}", "--LabApp.news_url=", "--LabApp.expose_app_in_browser=True",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("JupyterLab did not start:\n" + (tmp_path / "jupyter.log").read_text()[-3000:])
            time.sleep(0.5)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_explorer_slider_changes_the_counterfactual_and_its_score(jupyter_lab, tmp_path):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(90_000)
        expect.set_options(timeout=90_000)  # the kernel starts and loads the dataset first
        try:
            page.goto(f"{jupyter_lab}/lab/tree/notebooks/07_explorer.ipynb?token={TOKEN}")
            page.locator(".jp-Notebook").first.wait_for()
            # JupyterLab may ask which kernel to start: accept its choice (the notebook's python3)
            accept = page.locator(".jp-Dialog button.jp-mod-accept")
            try:
                accept.wait_for(timeout=15_000)
                accept.click()
            except PlaywrightTimeout:
                pass
            # Run > Run All Cells, through JupyterLab's command registry (the menu's own command),
            # once the kernel is connected; not awaited, as its promise ends only with the run
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.isEnabled('notebook:run-all-cells')"
                                   " && document.querySelector('.jp-Notebook-ExecutionIndicator[data-status=\\'idle\\']')")
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

            score = page.locator(".cfx-score")
            expect(score).to_contain_text("φ(counterfactual)")
            expect(score).to_contain_text("α = 0.00")
            image = page.locator("img.cfx-counterfactual")
            before_score, before_src = score.inner_text(), image.get_attribute("src")
            page.screenshot(path=str(tmp_path / "explorer-alpha0.png"))

            # move the α slider to its maximum with the keyboard, as a user would
            handle = page.locator(".cfx-alpha .noUi-handle")
            handle.focus()
            handle.press("End")
            expect(score).to_contain_text("α = 1.00")
            after_score, after_src = score.inner_text(), image.get_attribute("src")
            page.screenshot(path=str(tmp_path / "explorer-alpha1.png"))
            assert after_score != before_score
            assert after_src != before_src  # a new image was drawn
            expect(page.locator(".cfx-at-zero img")).to_have_count(2)  # K = 2 counterfactuals at α = 0
        finally:
            shot = os.environ.get("CFX_BROWSER_SCREENSHOT")
            if shot:
                page.screenshot(path=shot)
            browser.close()
