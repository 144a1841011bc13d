"""Settings come from ASYNCFLOW_* variables, with defaults that need nothing installed."""

import os
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from asyncflow_backend.config.settings import Settings, get_settings
from asyncflow_backend.schemas.limits import ScenarioLimits


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("ASYNCFLOW_"):
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()  # no settings of these tests leak into later ones


def test_defaults_are_the_embedded_setup() -> None:
    settings = Settings()

    assert settings.database_url == "sqlite+aiosqlite:///./asyncflow.db"
    assert settings.redis_url is None
    assert settings.local_workers == 1
    assert settings.queue_name == "asyncflow"
    assert settings.run_time_limit_s == 600.0
    assert settings.lease_s == 30.0
    assert settings.max_body_bytes == 1_048_576


def test_every_field_is_read_from_its_prefixed_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCFLOW_DATABASE_URL", "postgresql+asyncpg://u:p@db:5432/flow")
    monkeypatch.setenv("ASYNCFLOW_REDIS_URL", "redis://queue:6379/1")
    monkeypatch.setenv("ASYNCFLOW_LOCAL_WORKERS", "3")
    monkeypatch.setenv("ASYNCFLOW_RUN_TIME_LIMIT_S", "5")
    monkeypatch.setenv("ASYNCFLOW_MAX_HORIZON_S", "3600")
    monkeypatch.setenv("ASYNCFLOW_WORKER_HEARTBEAT_TIMEOUT_S", "2.5")

    settings = Settings()

    assert settings.database_url == "postgresql+asyncpg://u:p@db:5432/flow"
    assert settings.redis_url == "redis://queue:6379/1"
    assert settings.local_workers == 3
    assert settings.run_time_limit_s == 5.0
    assert settings.max_horizon_s == 3600.0
    assert settings.worker_heartbeat_timeout_s == 2.5


def test_get_settings_reads_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCFLOW_QUEUE_NAME", "first")
    first = get_settings()
    monkeypatch.setenv("ASYNCFLOW_QUEUE_NAME", "second")

    assert get_settings() is first
    assert first.queue_name == "first"


def test_limits_carry_the_configured_values() -> None:
    settings = Settings(max_nodes=7, max_samples=99, max_expected_requests=1e3)

    limits = settings.limits()

    assert limits == ScenarioLimits(
        max_nodes=7,
        max_edges=200,
        max_endpoints=100,
        max_steps=1000,
        max_events=200,
        max_horizon_s=86_400,
        max_expected_requests=1000,
        max_samples=99,
    )
    assert Settings().limits() == ScenarioLimits()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ASYNCFLOW_LOCAL_WORKERS", "0"),
        ("ASYNCFLOW_LEASE_S", "-1"),
        ("ASYNCFLOW_RUN_TIME_LIMIT_S", "0"),
        ("ASYNCFLOW_QUEUE_NAME", "has spaces"),
        ("ASYNCFLOW_WORKER_MAINTENANCE_CHANCE", "1.5"),
        ("ASYNCFLOW_MAX_NODES", "lots"),
    ],
)
def test_invalid_values_are_refused_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ValidationError) as error:
        Settings()

    field = variable.removeprefix("ASYNCFLOW_").lower()
    assert field in str(error.value)


def test_unrelated_prefixed_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCFLOW_SOMETHING_ELSE", "1")

    assert Settings().queue_name == "asyncflow"
