"""Start a topology's real services as pinned server processes, and stop them.

Each service is a uvicorn process (``--loop uvloop --http httptools``, as deployed) or a
gunicorn master with N ``uvicorn.workers.UvicornWorker`` workers, serving `app.create_app`;
a topology with ``balanced`` services gets a `proxy` in front of them. Every server process is
pinned to the plan's server cores before it starts (its workers inherit the affinity). Called
services start before their callers, and each must answer ``/ping`` before the next starts.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.real_system.pinning import CorePlan, affinity, pinned
from benchmarks.real_system.spec import Cache, Call, ServiceSpec, TopologySpec, service_to_json
from benchmarks.real_system.stores import Stores, stores

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
BACKLOG = 4096


def free_port() -> int:
    """A TCP port free on loopback right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_command(app: str, port: int, server: str, workers: int) -> list[str]:
    """The command line serving the ASGI factory ``app`` (``module:function``) on ``port``."""
    if server == "gunicorn":
        return [
            sys.executable, "-m", "gunicorn", f"{app}()",
            "--workers", str(workers), "--worker-class", "uvicorn.workers.UvicornWorker",
            "--bind", f"127.0.0.1:{port}", "--backlog", str(BACKLOG), "--log-level", "warning",
        ]  # fmt: skip
    return [
        sys.executable, "-m", "uvicorn", app, "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
        "--backlog", str(BACKLOG), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


@dataclass
class ServerProcess:
    """One running server process (a gunicorn master counts its workers with it)."""

    name: str
    url: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


def _environment(extra: dict[str, str]) -> dict[str, str]:
    paths = [str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), **extra}


def _wait_ready(server: ServerProcess) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with status {server.process.returncode}")
        try:
            if httpx.get(f"{server.url}/ping", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not answer /ping within {READY_TIMEOUT_S:.0f} s")


def _stop(server: ServerProcess) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@contextmanager
def start_server(
    name: str, app: str, server: str, workers: int, cores: frozenset[int], env: dict[str, str]
) -> Iterator[ServerProcess]:
    """Run one server process pinned to ``cores`` until the block ends."""
    port = free_port()
    process = subprocess.Popen(
        pinned(server_command(app, port, server, workers), cores),
        env=_environment(env),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    running = ServerProcess(name, f"http://127.0.0.1:{port}", process)
    try:
        _wait_ready(running)
        yield running
    finally:
        _stop(running)


@dataclass
class Deployment:
    """A running topology: where the load goes and which processes to read CPU time from."""

    entry_url: str
    servers: dict[str, ServerProcess] = field(default_factory=dict)
    proxy: ServerProcess | None = None

    def cores(self) -> dict[str, list[int]]:
        """The cores each server process may use, read back from the kernel."""
        processes = list(self.servers.values()) + ([self.proxy] if self.proxy else [])
        return {p.name: sorted(affinity(p.pid)) for p in processes}


def call_order(topology: TopologySpec) -> list[ServiceSpec]:
    """Services ordered so that each comes after every service it calls.

    ValueError on a call to an unknown service or a cycle of calls.
    """
    names = {service.name for service in topology.services}
    ordered: list[ServiceSpec] = []
    placed: set[str] = set()

    def targets(parts: tuple[object, ...]) -> set[str]:
        found: set[str] = set()
        for part in parts:
            if isinstance(part, Call):
                found.add(part.target)
            elif isinstance(part, Cache):
                found |= targets(part.miss)
        return found

    pending = list(topology.services)
    while pending:
        ready = [s for s in pending if targets(s.parts) <= placed]
        unknown = set().union(*(targets(s.parts) for s in pending)) - names
        if unknown:
            raise ValueError(f"calls to unknown services: {sorted(unknown)}")
        if not ready:
            raise ValueError(f"calls form a cycle among {[s.name for s in pending]}")
        for service in ready:
            ordered.append(service)
            placed.add(service.name)
            pending.remove(service)
    return ordered


def _redis_keys(topology: TopologySpec) -> int | None:
    spaces = [
        part.key_space
        for service in topology.services
        for part in service.parts
        if isinstance(part, Cache)
    ]
    return max(spaces) if spaces else None


@contextmanager
def deploy(topology: TopologySpec, plan: CorePlan) -> Iterator[Deployment]:
    """Make the stores, start every server on the plan's server cores, and tear all down."""
    with ExitStack() as stack:
        made: Stores = stack.enter_context(
            stores(postgres=topology.uses("postgres"), redis_keys=_redis_keys(topology))
        )
        deployment = Deployment(entry_url="")
        peers: dict[str, str] = {}
        for service in call_order(topology):
            env = {
                "REAL_SYSTEM_SERVICE": service_to_json(service),
                "REAL_SYSTEM_PEERS": json.dumps(peers),
                "REAL_SYSTEM_REDIS_PREFIX": made.redis_prefix,
            }
            if made.postgres_dsn:
                env["REAL_SYSTEM_POSTGRES_DSN"] = made.postgres_dsn
            if made.redis_url:
                env["REAL_SYSTEM_REDIS_URL"] = made.redis_url
            server = stack.enter_context(
                start_server(
                    service.name,
                    "benchmarks.real_system.app:create_app",
                    service.server,
                    service.workers,
                    plan.server_cores,
                    env,
                )
            )
            deployment.servers[service.name] = server
            peers[service.name] = server.url
        if topology.balanced:
            backends = [deployment.servers[name].url for name in topology.balanced]
            deployment.proxy = stack.enter_context(
                start_server(
                    "proxy",
                    "benchmarks.real_system.proxy:create_proxy",
                    "uvicorn",
                    1,
                    plan.server_cores,
                    {"REAL_SYSTEM_BACKENDS": json.dumps(backends)},
                )
            )
            deployment.entry_url = deployment.proxy.url
        else:
            deployment.entry_url = deployment.servers[topology.entry].url
        yield deployment
