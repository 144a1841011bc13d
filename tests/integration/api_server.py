"""An `asyncflow serve` process on a free port, and a TCP proxy that can cut a dependency off."""

import contextlib
import os
import signal
import socket
import subprocess
import threading
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

    def __init__(self, settings: Settings, log_path: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_path.open("ab")
        self.process = subprocess.Popen(
            [str(ASYNCFLOW), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
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


def wait_for_status(
    client: httpx.Client, run_id: str, statuses: set[str], timeout_s: float = 120.0
) -> dict[str, Any]:
    """Poll the run through the API until its status is in `statuses`."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = client.get(f"/api/v1/simulations/{run_id}")
        assert answer.status_code == 200, answer.text
        run: dict[str, Any] = answer.json()
        if run["status"] in statuses:
            return run
        assert run["status"] not in FINAL, f"run ended {run['status']}: {run['error']}"
        assert time.monotonic() < deadline, f"run still {run['status']} after {timeout_s} s"
        time.sleep(0.1)


class TcpProxy:
    """Forwards a local port to a server; `cut()` drops every connection and refuses new ones.

    Stands in for a database or a queue going down and coming back, without
    touching the real server that other tests share.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        """Accept and forward connections again."""
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Stop listening and reset every open connection, as a crashed server would."""
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by cut()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._sockets.discard(source)
            source.close()
