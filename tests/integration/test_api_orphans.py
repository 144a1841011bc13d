"""A SIGKILLed `asyncflow serve` leaves no process behind: pool workers die with it."""

import os
import signal
import time
from pathlib import Path

import pytest
from api_server import ApiServer, wait_for_status
from run_support import LONG_RUN, make_scenario
from run_support import _stat_fields as stat_fields

from asyncflow_backend.config.settings import Settings

pytestmark = pytest.mark.integration


def _live_group(group: int) -> dict[int, str]:
    """Processes of the group that still run (zombies are dead, only not yet reaped)."""
    live = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = stat_fields(int(entry.name))
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            live[int(entry.name)] = command
    return live


def test_killing_the_api_with_sigkill_ends_its_pool_processes(
    sqlite_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=sqlite_url, redis_url=None, local_workers=2)
    server = ApiServer(settings, tmp_path / "api.log")
    try:
        with server.client() as client:
            answer = client.post("/api/v1/simulations", json=make_scenario(**LONG_RUN))
            assert answer.status_code == 202, answer.text
            wait_for_status(client, answer.json()["id"], {"running"})
        group = server.process.pid
        children = set(_live_group(group)) - {server.process.pid}
        assert len(children) >= 2  # the pool's processes, the resource tracker among them

        os.kill(server.process.pid, signal.SIGKILL)  # the API alone, not its group
        server.process.wait(timeout=10)
        deadline = time.monotonic() + 30
        while _live_group(group) and time.monotonic() < deadline:
            time.sleep(0.2)

        assert _live_group(group) == {}
    finally:
        server.stop()
