"""A client that goes away mid-upload is not an error: no traceback, one short log line."""

import socket
import time
from pathlib import Path

import pytest
from api_server import ApiServer

from asyncflow_backend.config.settings import Settings

pytestmark = pytest.mark.integration


def _abort_upload(port: int, path: str) -> None:
    """Declare a 100 kB body, send 1 kB of it, and close the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/yaml\r\nContent-Length: 100000\r\n\r\n"
        )
        connection.sendall(head.encode() + b"rqs_input: " + b"x" * 1000)
        time.sleep(0.2)  # let the API start reading the body


def test_aborted_uploads_log_no_traceback(sqlite_url: str, tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    server = ApiServer(Settings(database_url=sqlite_url, redis_url=None), log)
    try:
        for path in ("/api/v1/simulations", "/api/v1/scenarios/validate") * 3:
            _abort_upload(server.port, path)
        time.sleep(1.0)
        with server.client() as client:
            assert client.get("/health").status_code == 200
    finally:
        server.stop()

    text = log.read_text(errors="replace")
    assert "Traceback" not in text
    assert "unhandled error" not in text
    assert "Exception in ASGI application" not in text
    assert text.count("client went away") <= 6  # an info line each, where INFO is logged
