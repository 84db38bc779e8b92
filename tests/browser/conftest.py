"""Fixtures of the browser suite: the two places a learner runs the course -- a
JupyterLab server on a copy of notebooks/, and the course's JupyterLite site (JupyterLab
and a Pyodide kernel in the browser, built by scripts/build_lite.py and served from
127.0.0.1) -- and the system Chromium driven by Playwright.

These tests never download a browser: Playwright drives the Chromium given by the
environment variable ``TXLIB_CHROMIUM``, else ``/usr/bin/chromium`` (Debian's package
``chromium``), else ``chromium`` or ``chromium-browser`` on ``PATH``. Without Chromium or
without the ``playwright`` Python package they are skipped with the reason, except
under CI (``CI`` set to ``true`` or ``1``), where they fail: CI installs both.

JupyterLab serves a temporary copy of notebooks/ (running all cells never rewrites the
committed notebooks), on a free port of 127.0.0.1, with an empty token, and with its
own empty config, data, runtime, settings and workspace directories, so nothing in the
user's ~/.jupyter changes what is tested. The JupyterLite site is built into
``build/lite/`` (skipped while up to date; the first build fetches Pyodide from npm and
wheels from PyPI, so it needs ``npm``: without it the site's tests are skipped, or fail
under CI) and served by ``scripts/build_lite.py --serve``. Screenshots are written to
``tests/browser/artifacts/`` (git-ignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

# Flags for Chromium here: no sandbox as root (containers), and nothing that reaches for
# the network on its own (the machine's network is closed; background connections fail).
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_TIMEOUT = 90.0  # seconds for `jupyter lab` to answer its HTTP API
SITE_BUILD_TIMEOUT = 900.0  # seconds to build (first time: fetch) and serve the site
SERVER_STOP_TIMEOUT = 20.0
POLL_INTERVAL = 0.2  # between polls of the starting server (an external process)

# JupyterLab settings for the test server: no news or update pop-ups (they cover the page
# and would try to reach the network).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "browser: drives JupyterLab in the system Chromium through Playwright "
        "(deselect with '-m \"not browser\"')",
    )


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> None:
    """Skip the browser tests for ``reason``, or fail them loudly under CI."""
    if in_ci():
        pytest.fail(f"CI=true but the browser tests cannot run: {reason}. .ci/run must "
                    "install Debian's chromium and the project's test extra.", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}")


def find_chromium() -> str | None:
    """The system Chromium (never a downloaded one), or None."""
    chosen = os.environ.get("TXLIB_CHROMIUM")
    if chosen:
        return chosen if os.access(chosen, os.X_OK) else None
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


# --- timings, reported at the end of the run -----------------------------------------
@dataclass
class Timings:
    rows: dict[str, dict[str, float]] = field(default_factory=dict)

    def record(self, notebook: str, what: str, seconds: float) -> None:
        self.rows.setdefault(notebook, {})[what] = round(seconds, 2)


TIMINGS = Timings()
_SESSION_START = time.monotonic()


def pytest_sessionstart(session: pytest.Session) -> None:
    global _SESSION_START
    _SESSION_START = time.monotonic()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TIMINGS.rows:
        return
    tr = terminalreporter
    tr.section("browser timings (seconds)")
    for name, row in TIMINGS.rows.items():
        tr.write_line(f"{name}: " + ", ".join(f"{k} {v:.1f}" for k, v in row.items()))
    tr.write_line(f"whole pytest session: {time.monotonic() - _SESSION_START:.1f}")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "timings.json").write_text(json.dumps(TIMINGS.rows, indent=1) + "\n")


@pytest.fixture(scope="session")
def timings() -> Timings:
    return TIMINGS


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """tests/browser/artifacts/, without the failure screenshots of an earlier run."""
    ARTIFACTS.mkdir(exist_ok=True)
    for stale in ARTIFACTS.glob("*-failure.png"):
        stale.unlink()
    return ARTIFACTS


# --- JupyterLab ----------------------------------------------------------------------
@dataclass
class LabServer:
    url: str  # http://127.0.0.1:PORT (no trailing slash)
    notebooks: Path  # the served copy of notebooks/
    log: Path

    def api(self, method: str, path: str) -> Any:
        request = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        """End every session and kernel (so the next notebook has both cores)."""
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}")
        for kernel in self.api("GET", "/api/kernels"):
            self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    base = tmp_path_factory.mktemp("jupyterlab")
    served = base / "notebooks"
    shutil.copytree(NOTEBOOKS, served, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = base / "settings"
    for name, values in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(os.environ)
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
        (base / sub).mkdir()
        env[var] = str(base / sub)
    env["JUPYTER_PREFER_ENV_PATH"] = "1"  # kernels and extensions of this Python only
    env.pop("JUPYTER_TOKEN", None)
    port = free_port()
    cmd = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser", "--ServerApp.open_browser=False",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.token=", "--ServerApp.password=",
        # Loopback only, no token: let the fixture's plain HTTP calls end kernels.
        "--ServerApp.disable_check_xsrf=True",
        f"--ServerApp.root_dir={served}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
        # window.jupyterapp: the tests read the notebook's outputs from JupyterLab's model.
        "--LabApp.expose_app_in_browser=True",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = base / "jupyterlab.log"
    server = LabServer(url=f"http://127.0.0.1:{port}", notebooks=served, log=log)
    with log.open("wb") as log_file:
        process = subprocess.Popen(cmd, cwd=served, env=env, stdin=subprocess.DEVNULL,
                                   stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"jupyter lab exited with code {process.returncode} before "
                            f"answering:\n{server.log_tail()}", pytrace=False)
            with contextlib.suppress(OSError, ValueError):
                server.api("GET", "/api/status")
                break
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer on {server.url} within "
                            f"{SERVER_START_TIMEOUT:.0f} s:\n{server.log_tail()}",
                            pytrace=False)
            time.sleep(POLL_INTERVAL)
        yield server
    finally:
        with contextlib.suppress(OSError, ValueError, urllib.error.URLError):
            server.shut_down_kernels()
        process.terminate()
        try:
            process.wait(timeout=SERVER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the course's JupyterLite site ------------------------------------------------------
@dataclass
class LiteSite:
    url: str  # http://127.0.0.1:PORT (no trailing slash)
    folder: Path  # the built site
    log: Path

    @property
    def notebooks(self) -> Path:
        """The lessons as the site serves them."""
        return self.folder / "files"

    def shut_down_kernels(self) -> None:
        """Nothing to do: a kernel lives in its page's web worker and ends with the page."""


@pytest.fixture(scope="session")
def lite_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiteSite]:
    """The course's JupyterLite site, built from this checkout and served on 127.0.0.1."""
    if shutil.which("npm") is None and not (ROOT / "build" / "lite" / "index.html").exists():
        unavailable("building the JupyterLite site needs npm (Debian/Ubuntu: "
                    "`sudo apt install npm`)")
    log = tmp_path_factory.mktemp("jupyterlite") / "build_lite.log"
    cmd = [sys.executable, "-u", str(ROOT / "scripts" / "build_lite.py"), "--serve",
           "--port", "0"]
    with log.open("w") as log_file:
        process = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=log_file, text=True)
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()  # the build's progress, then the site's URL
    threading.Thread(target=lambda: [lines.put(line.rstrip()) for line in process.stdout],
                     daemon=True).start()
    seen: list[str] = []
    started = time.monotonic()
    try:
        while not (seen and seen[-1].startswith("http://127.0.0.1:")):
            if time.monotonic() - started > SITE_BUILD_TIMEOUT:
                break
            try:
                seen.append(lines.get(timeout=1.0))
            except queue.Empty:
                if process.poll() is not None:  # the build failed
                    break
        if not seen or not seen[-1].startswith("http://127.0.0.1:"):
            process.kill()
            process.wait()
            pytest.fail("scripts/build_lite.py did not serve the site:\n"
                        + "\n".join(seen[-30:]) + "\n" + log.read_text(errors="replace"),
                        pytrace=False)
        TIMINGS.record("site", "build+serve", time.monotonic() - started)
        yield LiteSite(url=seen[-1].rstrip("/"), folder=ROOT / "build" / "lite", log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=SERVER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


# --- Chromium through Playwright -------------------------------------------------------
@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the Python package playwright is not installed "
                    "(pip install -e '.[test]' installs it)")
    executable = find_chromium()
    if executable is None and os.environ.get("TXLIB_CHROMIUM"):
        unavailable(f"TXLIB_CHROMIUM={os.environ['TXLIB_CHROMIUM']} is not an executable")
    if executable is None:
        unavailable("no Chromium found (Debian/Ubuntu: `sudo apt install chromium`, or set "
                    "TXLIB_CHROMIUM to a Chromium executable)")
    # Any host but 127.0.0.1 fails to resolve: nothing can leave the machine, even if
    # the page asks (the tests also assert that it never asks).
    args = [*CHROMIUM_ARGS, "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium's sandbox cannot start as root
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=args)
        try:
            yield chromium
        finally:
            chromium.close()
