"""An `asyncflow serve` process on a free port."""

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from run_support import ASYNCFLOW, settings_env

from asyncflow_backend.config.settings import Settings

FINAL = {"succeeded", "failed", "cancelled"}


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ApiServer:
    """`asyncflow serve` in its own process group, configured by `settings`."""

    def __init__(
        self, settings: Settings, log_path: Path, port: int | None = None, processes: int = 1
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_path.open("ab")
        serve = [str(ASYNCFLOW), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(
            [*serve, "--processes", str(processes)],
            env={**os.environ, **settings_env(settings)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_until_up()

    def _wait_until_up(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"asyncflow serve exited with {self.process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"asyncflow serve did not answer within {timeout_s} s")

    def client(self) -> httpx.Client:
        """A client whose base URL is this server."""
        return httpx.Client(base_url=self.url, timeout=30)

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM (a graceful shutdown), then SIGKILL after `grace_s`."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()


def submit_run(client: httpx.Client, scenario: dict[str, Any]) -> str:
    """Submit `scenario` as JSON and return the new run's id (asserting the `202`)."""
    answer = client.post("/api/v1/simulations", json=scenario)
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["id"]
    return run_id


def wait_for_status(client: httpx.Client, run_id: str, statuses: set[str]) -> dict[str, Any]:
    """Poll the run through the API until its status is in `statuses`.

    No deadline of its own: the test's ceiling (pytest-timeout) fails a wait that
    never ends, and the last state printed here is in its report.
    """
    last = None
    while True:
        answer = client.get(f"/api/v1/simulations/{run_id}")
        assert answer.status_code == 200, answer.text
        run: dict[str, Any] = answer.json()
        if run["status"] in statuses:
            return run
        assert run["status"] not in FINAL, f"run ended {run['status']}: {run['error']}"
        if (run["status"], run["progress"]) != last:
            print("run", run_id, run["status"], run["progress"])
            last = (run["status"], run["progress"])
        time.sleep(0.1)
