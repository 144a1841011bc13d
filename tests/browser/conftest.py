"""A real `asyncflow serve` on a free port and a headless Chromium driven by Playwright.

The browser is the system's Chromium (`/usr/bin/chromium`, or the path in
`ASYNCFLOW_CHROMIUM`); Playwright's own browser downloads are never used.
Without Chromium the tests are skipped on a workstation but fail under
`CI=true`, where `.ci/run` installs it.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0


def chromium_path() -> str:
    """The Chromium executable; fails under CI and skips elsewhere when there is none."""
    path = os.environ.get("ASYNCFLOW_CHROMIUM", "/usr/bin/chromium")
    if Path(path).is_file() and os.access(path, os.X_OK):
        return path
    found = shutil.which("chromium")
    if found:
        return found
    message = f"no Chromium at {path} (install it: apt-get install -y chromium)"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


API_KEY = "browser-test-key-4f8a2c"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of an open `asyncflow serve` (no API keys), SQLite file and local pool."""
    yield from serve(tmp_path_factory.mktemp("serve"), {})


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same, with `API_KEY` as its one API key."""
    yield from serve(tmp_path_factory.mktemp("serve-keyed"), {"ASYNCFLOW_API_KEYS": API_KEY})


@pytest.fixture(scope="module")
def api_key() -> str:
    """The API key of `keyed_server`."""
    return API_KEY


def serve(directory: Path, extra_env: dict[str, str]) -> Iterator[str]:
    """Runs `asyncflow serve` in `directory` until the generator is closed; yields its URL."""
    # The service migrates a fresh SQLite file itself when it starts.
    url = f"sqlite+aiosqlite:///{directory / 'asyncflow.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASYNCFLOW_")}
    env.update(ASYNCFLOW_DATABASE_URL=url, ASYNCFLOW_LOCAL_WORKERS="1", **extra_env)
    port = free_port()
    log = (directory / "serve.log").open("w")
    command = [str(Path(sys.executable).with_name("asyncflow")), "serve", "--port", str(port)]
    process = subprocess.Popen(
        command,
        cwd=directory,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, process, directory / "serve.log")
        yield base
    finally:
        stop(process)
        log.close()


def wait_until_up(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"asyncflow serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"asyncflow serve did not answer within {START_TIMEOUT_S} s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn shuts its pool down), then SIGKILL whatever is left of its session.

    The server leads its own session, so its process group holds its pool
    workers and nothing else: no worker outlives the test.
    """
    process.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
