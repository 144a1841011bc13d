"""The Dockerfile and docker-compose.yml only run commands that exist, as a non-root user.

No Docker engine is needed: both files are parsed and every command they run
is checked against the `asyncflow` command line itself.
"""

import fnmatch
import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from asyncflow_backend.cli import app
from asyncflow_backend.config.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    result = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    return document


def _exec_form(arguments: str) -> list[str]:
    """The argv of an instruction written as a JSON array (exec form)."""
    argv = json.loads(arguments)
    assert isinstance(argv, list), f"not in exec form: {arguments}"
    return [str(a) for a in argv]


def _assert_asyncflow_command(argv: list[str]) -> None:
    """`argv` is an `asyncflow` invocation whose sub-command and options all exist."""
    assert argv[0] == "asyncflow", argv
    # --help is eager, but the parser still refuses unknown sub-commands and options first.
    outcome = CliRunner().invoke(app, [*argv[1:], "--help"])
    assert outcome.exit_code == 0, f"{shlex.join(argv)}: {outcome.output}"
    for option in (a for a in argv[1:] if a.startswith("--")):
        assert option in outcome.output, f"{option} not in the help of {shlex.join(argv)}"


def test_dockerfile_is_multi_stage_and_copies_the_build_into_the_runtime() -> None:
    stages = [args.split()[-1] for kind, args in _instructions() if kind == "FROM"]
    assert len(stages) >= 2
    copies = [args for kind, args in _instructions() if kind == "COPY"]
    assert any(f"--from={stages[0]}" in args for args in copies)


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [args for kind, args in _instructions() if kind == "USER"]
    assert users, "no USER instruction: the container would run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_dockerfile_health_check_hits_health() -> None:
    checks = [args for kind, args in _instructions() if kind == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "/health" in checks[0]
    assert "CMD" in checks[0].split()


def test_dockerfile_starts_the_api() -> None:
    (cmd,) = [args for kind, args in _instructions() if kind == "CMD"]
    argv = _exec_form(cmd)
    assert argv[:2] == ["asyncflow", "serve"]
    _assert_asyncflow_command(argv)


def test_dockerfile_copies_nothing_the_dockerignore_excludes() -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for kind, args in _instructions():
        if kind != "COPY" or args.startswith("--from"):
            continue
        *sources, _ = args.split()
        for source in sources:
            assert (ROOT / source).exists(), source
            hits = [p for p in ignored if fnmatch.fnmatch(source.rstrip("/"), p)]
            assert not hits, f"{source} is excluded by .dockerignore ({hits})"


def test_compose_has_the_four_services_and_a_one_shot_migration() -> None:
    services = _compose()["services"]
    assert {"api", "worker", "postgres", "redis", "migrate"} <= set(services)
    assert services["migrate"]["command"] == ["asyncflow", "db", "upgrade"]
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]


def test_compose_gives_the_api_the_cpu_before_the_workers() -> None:
    services = _compose()["services"]
    # Docker's default weight is 1024; the API keeps it.
    assert services["worker"]["cpu_shares"] < services["api"].get("cpu_shares", 1024)
    serve = services["api"]["command"]
    assert serve[serve.index("--processes") + 1] == "2"


def _asyncflow_services() -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, service)
        for name, service in _compose()["services"].items()
        if service.get("image", "").startswith("asyncflow-backend")
    ]


@pytest.mark.parametrize("name", ["api", "worker", "migrate"])
def test_compose_commands_exist(name: str) -> None:
    service = dict(_asyncflow_services())[name]
    _assert_asyncflow_command(service["command"])


def test_compose_sets_only_variables_the_settings_read() -> None:
    known = {f"{ENV_PREFIX}{field.upper()}" for field in Settings.model_fields}
    for name, service in _asyncflow_services():
        variables = set(service["environment"])
        assert {"ASYNCFLOW_DATABASE_URL", "ASYNCFLOW_REDIS_URL"} <= variables, name
        assert variables <= known, f"{name}: unknown {variables - known}"
        # Every value is one the settings accept.
        Settings.model_validate(
            {key.removeprefix(ENV_PREFIX).lower(): v for key, v in service["environment"].items()}
        )
