"""A worker thread keeps one database loop across runs, and replaces it for another database."""

import threading
from pathlib import Path

from asyncflow_backend.jobs.execution import database_loop, discard_database_loop


def _url(directory: Path, name: str) -> str:
    return f"sqlite+aiosqlite:///{directory / name}"


def test_a_thread_reuses_its_loop_for_the_same_database(tmp_path: Path) -> None:
    first = database_loop(_url(tmp_path, "a.db"))
    try:
        assert database_loop(_url(tmp_path, "a.db")) is first
        assert not first.loop.is_closed()
    finally:
        discard_database_loop()


def test_another_database_closes_the_previous_loop(tmp_path: Path) -> None:
    first = database_loop(_url(tmp_path, "a.db"))
    second = database_loop(_url(tmp_path, "b.db"))
    try:
        assert second is not first
        assert first.loop.is_closed()
        assert second.url.endswith("b.db")
    finally:
        discard_database_loop()


def test_each_thread_has_its_own_loop(tmp_path: Path) -> None:
    url = _url(tmp_path, "a.db")
    here = database_loop(url)
    seen = []

    def other() -> None:
        seen.append(database_loop(url))
        discard_database_loop()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    try:
        assert len(seen) == 1
        assert seen[0] is not here
    finally:
        discard_database_loop()


def test_a_discarded_loop_is_never_handed_out_again(tmp_path: Path) -> None:
    url = _url(tmp_path, "a.db")
    first = database_loop(url)
    discard_database_loop()
    second = database_loop(url)
    try:
        assert second is not first
        assert first.loop.is_closed()
    finally:
        discard_database_loop()
