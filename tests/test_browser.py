"""The alignment debugger in a real browser: JupyterLab on a loopback port,
driven by Playwright with Debian's Chromium.

The test runs every cell of ``03_alignment_debugger`` (fast mode), changes a
control of the panel, presses Run and checks that the live figure in the
page changed. Screenshots go to ``test-artifacts/`` (ignored by git).

Chromium is installed with apt-get when it is missing and the test runs as
root (CI); Playwright comes with the ``dev`` extra (its own browser download
is not used).
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

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# JupyterLab settings for a quiet, deterministic page: no news or update
# toasts, every cell kept in the DOM.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def _chromium() -> str:
    """Path of Debian's Chromium, installing it with apt-get when missing (as root)."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"{CHROMIUM} is missing and cannot be installed here (needs root and apt-get): "
                    "run `apt-get install -y chromium` as root")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            pytest.fail(f"`{' '.join(cmd)}` failed ({r.returncode}): {r.stderr[-2000:]}")
    assert os.path.exists(CHROMIUM), f"apt-get installed chromium but {CHROMIUM} is missing"
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:  # loopback only
        return json.loads(r.read().decode())


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    """JupyterLab on 127.0.0.1 with a token, serving a copy of the notebooks."""
    root = tmp_path_factory.mktemp("lab")
    for nb in NOTEBOOKS.glob("*.ipynb"):
        shutil.copy(nb, root / nb.name)  # the page may autosave outputs: never into the repo
    settings_dir = tmp_path_factory.mktemp("lab-settings")
    for rel, value in LAB_SETTINGS.items():
        p = settings_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(value))
    port, token = _free_port(), os.urandom(16).hex()
    env = dict(os.environ, CMKD_LAB_FAST="1", JUPYTER_RUNTIME_DIR=str(tmp_path_factory.mktemp("runtime")),
               PYTHONUNBUFFERED="1")
    log = open(root / "jupyterlab.log", "w")
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--ServerApp.allow_root=True",
           f"--LabApp.user_settings_dir={settings_dir}",
           f"--LabApp.workspaces_dir={tmp_path_factory.mktemp('workspaces')}"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            if proc.poll() is not None:
                log.flush()
                tail = (root / "jupyterlab.log").read_text()[-3000:]
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{tail}")
            try:
                _get(f"{base}/api/status?token={token}")
                break
            except OSError:
                if time.time() > deadline:
                    pytest.fail("JupyterLab did not answer within 180 s")
                time.sleep(0.5)
        yield {"base": base, "token": token, "root": root}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
        shutil.copy(root / "jupyterlab.log", _artifacts() / "jupyterlab.log")


def _artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def _kernels_idle(server) -> bool:
    ks = _get(f"{server['base']}/api/kernels?token={server['token']}")
    return bool(ks) and all(k.get("execution_state") == "idle" for k in ks)


# The live figure as plotted in the page: trace names and their y values.
FIGURE_JS = """(sel) => {
  // the plotly div carries the widget's class (or sits inside it)
  const gd = document.querySelector(sel + '.js-plotly-plot, ' + sel + ' .js-plotly-plot');
  if (!gd || !gd.data) return null;
  return gd.data.map(t => ({name: t.name, y: Array.from(t.y || [])}));
}"""


def _wait_for(predicate, timeout: float, what: str, step: float = 1.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_debugger_panel_in_jupyterlab(lab_server):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser test needs playwright: pip install -e '.[dev]'")
    from cmkd_lab.widgets import settings

    chromium = _chromium()
    epochs = settings(fast=True).epochs
    out = _artifacts()
    url = f"{lab_server['base']}/lab/tree/03_alignment_debugger.ipynb?token={lab_server['token']}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1500})
        try:
            page.goto(url, timeout=120_000)
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
            _wait_for(lambda: _kernels_idle(lab_server), 180, "the kernel to start")

            # Run > Run All Cells, as a person would.
            page.click(".lm-MenuBar-item:has-text('Run')")
            page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")

            def all_ran():
                prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
                done = prompts and all(re.search(r"\[\d+\]", t) for t in prompts)
                return done and _kernels_idle(lab_server)

            _wait_for(all_ran, 600, "every cell of the notebook to run", step=2.0)
            tracebacks = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                                      has_text="Traceback")
            stubs = tracebacks.filter(has_text="NotImplementedError: Exercise").count()  # unfilled exercises
            assert stubs >= 1, "Run All did not go past the exercise stubs (tagged raises-exception)"
            errors = tracebacks.count() - stubs
            assert errors == 0, "a cell raised an error (see test-artifacts/debugger_failure.png)"

            panel = page.locator(".cmkd-debugger")
            panel.scroll_into_view_if_needed()
            page.wait_for_selector(".cmkd-fig-losses.js-plotly-plot, .cmkd-fig-losses .js-plotly-plot",
                                   timeout=240_000)  # a loaded two-core machine needed more than 60 s
            before = page.evaluate(FIGURE_JS, ".cmkd-fig-losses")
            assert before is not None, "the live loss figure did not render"

            # Change a control, press Run, wait for the run to end.
            page.select_option(".cmkd-ctl-method select", "fa")
            page.click("button.cmkd-run")
            page.wait_for_function(
                "() => (document.querySelector('.cmkd-status') || {}).innerText?.includes('done')",
                timeout=600_000, polling=1000)
            after = page.evaluate(FIGURE_JS, ".cmkd-fig-losses")
            panel.evaluate("e => e.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(500)
            page.screenshot(path=str(out / "debugger_panel.png"))
        except Exception:
            page.screenshot(path=str(out / "debugger_failure.png"), full_page=True)
            raise
        finally:
            browser.close()

    assert after != before, "the live figure did not change after Run"
    names = {t["name"]: t["y"] for t in after}  # loss terms are labelled as terms, not as methods
    assert "FA term" in names and "CE term" in names, f"the fa run's loss terms are not plotted: {sorted(names)}"
    assert len(names["FA term"]) == epochs, f"expected one point per epoch ({epochs}); got {names['FA term']}"
    assert all(v is not None and v > 0 for v in names["FA term"]), names["FA term"]


def test_saved_notebook_shows_figures_offline_without_a_kernel(tmp_path):
    """Static fallback: a notebook executed with the notebooks' renderer, exported to HTML
    (:func:`cmkd_lab.offline.notebook_html`), draws its plotly figure and its mathematics in a browser
    whose every request off the machine is aborted and recorded: none is made."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("nbconvert")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser test needs playwright: pip install -e '.[dev]'")
    from cmkd_lab.offline import notebook_html
    chromium = _chromium()
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                          "language": "python"}})
    nb.cells = [nbformat.v4.new_markdown_cell("The student's error $\\mathrm{err}_S$ and $\\tilde\\varphi$."),
                nbformat.v4.new_code_cell(
        "import cmkd_lab.widgets as W\nlab = W.setup_notebook(quiet=True)\n"
        "W.curve_figure([{'epoch': 1, 'ce': 2.0}, {'epoch': 2, 'ce': 1.0}], ['ce'], title='offline check').show()")]
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    page_path = tmp_path / "static.html"
    page_path.write_text(notebook_html(nb), encoding="utf-8")
    blocked = []

    def route(r):
        if r.request.url.startswith(("file:", "data:", "blob:", "about:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        ctx = browser.new_context()
        ctx.route("**/*", route)
        page = ctx.new_page()
        try:
            page.goto(page_path.as_uri())
            page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
            page.wait_for_selector("mjx-container", timeout=60_000)
            title = page.evaluate("() => document.querySelector('.js-plotly-plot').layout.title.text")
            text = page.evaluate("() => { const c = document.body.cloneNode(true); c.querySelectorAll("
                                 "'script, style, pre, code, mjx-container').forEach(e => e.remove()); "
                                 "return c.innerText; }")
            page.screenshot(path=str(_artifacts() / "static_fallback.png"))
        finally:
            browser.close()
    assert title == "offline check"
    assert blocked == [], f"the page asked the network for {blocked}"
    assert "$" not in text and "err}_S" not in text  # the mathematics is drawn, not shown as TeX
