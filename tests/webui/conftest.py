"""Browser-test fixtures: the lab's web app in a subprocess, Debian's Chromium through Playwright.

Playwright's own browser download does not work offline, so the tests drive
``/usr/bin/chromium`` (``apt-get install chromium fonts-noto-cjk``). Every request the page
makes is recorded, so a test can check that nothing left the machine. Screenshots go to
``test-artifacts/webui/``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("LLMLAB_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "webui"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                 "--disable-component-update", "--disable-sync"]
START_TIMEOUT_S = 120


def _serve(tmp_path_factory, **extra_env: str):
    """Base URL of a fresh app (its own LLMLAB_HOME, 1 thread), stopped when the generator ends."""
    pytest.importorskip("gradio", reason="the web UI needs gradio")
    pytest.importorskip("fastapi", reason="the web UI is served by FastAPI")
    home = tmp_path_factory.mktemp("webui-home")
    env = {**os.environ, "LLMLAB_HOME": str(home), "LLMLAB_THREADS": "1", "OMP_NUM_THREADS": "1",
           "OMP_WAIT_POLICY": "passive", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "PYTHONUNBUFFERED": "1", **extra_env}
    env.pop("GRADIO_TEMP_DIR", None)  # the app's uploads go under its own home
    log = (home / "server.log").open("w")
    port_file = home / "port"
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("serve_app.py")), str(port_file)], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{_wait_for_port(proc, port_file, home / 'server.log')}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def webui_url(tmp_path_factory):
    """Base URL of a fresh app on the bundled model, stopped after the module."""
    yield from _serve(tmp_path_factory)


#: the keys of the ``keyed_url`` app: an admin key and a user key
ADMIN_KEY, USER_KEY = "sk-browser-admin-0123", "sk-browser-user-0123"


@pytest.fixture(scope="module")
def keyed_url(tmp_path_factory):
    """Like ``webui_url``, but the server checks keys (an admin and a user key): the page asks to log in."""
    import json

    yield from _serve(tmp_path_factory, LLMLAB_SERVER_API_KEYS=json.dumps([ADMIN_KEY, f"user:{USER_KEY}"]))


@pytest.fixture(scope="module")
def scripted_training_url(tmp_path_factory):
    """Like ``webui_url``, but fine-tuning runs serve_app's scripted trainer (300 steps, 50 ms each)."""
    yield from _serve(tmp_path_factory, LLMLAB_TEST_SCRIPTED_TRAINER="300")


def _wait_for_port(proc: subprocess.Popen, port_file: Path, log_path: Path) -> int:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        if port_file.exists() and _answers(f"http://127.0.0.1:{int(port_file.read_text())}/"):
            return int(port_file.read_text())
        time.sleep(0.3)
    pytest.fail(f"the web app did not start; its log:\n{log_path.read_text()[-3000:]}")


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=5).status_code in (200, 401)  # 401: up, and checking keys
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def chromium():
    """Playwright driving Debian's Chromium (skipped where either is missing)."""
    pw = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium fonts-noto-cjk (make system-deps)")
    with pw.sync_playwright() as p:
        yield p.chromium


@pytest.fixture
def page(chromium, tmp_path):
    """A page in a fresh browser profile; ``page.requests`` lists every URL it fetched."""
    ctx = chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=str(CHROMIUM),
                                             args=CHROMIUM_ARGS, headless=True,
                                             viewport={"width": 1400, "height": 1000}, locale="ko-KR")
    pg = ctx.pages[0] if ctx.pages else ctx.new_page()
    pg.set_default_timeout(30_000)
    pg.requests = []
    ctx.on("request", lambda r: pg.requests.append(r.url))
    yield pg
    ctx.close()


@pytest.fixture
def screenshot(page):
    """``screenshot(name)`` saves the full page as test-artifacts/webui/NAME.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def shoot(name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return shoot
