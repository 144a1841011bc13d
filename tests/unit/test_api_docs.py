"""The README's configuration table and API walk-through agree with the code."""

import re
from pathlib import Path

from asyncflow_backend.config.settings import ENV_PREFIX, Settings
from asyncflow_backend.main import create_app

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _table_rows() -> dict[str, str]:
    """Variable -> default cell of the README's configuration table."""
    rows = {}
    for line in README.splitlines():
        match = re.match(r"\| `(ASYNCFLOW_[A-Z_]+)` \| ([^|]+) \|", line)
        if match:
            rows[match.group(1)] = match.group(2).strip()
    return rows


def test_every_setting_is_documented_with_its_default() -> None:
    rows = _table_rows()
    documented = set(rows)
    expected = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    assert documented == expected
    for name, field in Settings.model_fields.items():
        cell = rows[f"{ENV_PREFIX}{name.upper()}"]
        if field.default is None or field.default == ():
            assert cell == "unset", name
        elif isinstance(field.default, bool):  # as written in the environment
            assert cell == f"`{str(field.default).lower()}`", name
        else:
            assert cell == f"`{field.default}`", name


def test_the_walk_through_uses_endpoints_that_exist() -> None:
    section = README.split("## Use the REST API", 1)[1].split("\n## ", 1)[0]
    section = section.replace("$RUN", "http://127.0.0.1:8000/api/v1/simulations/3f2b9c0e")
    used = set(re.findall(r"127\.0\.0\.1:8000(/[^\s'\"?;,)]*)", section))
    assert "/api/v1/simulations/3f2b9c0e/timeseries" in used
    paths = create_app(Settings()).openapi()["paths"]
    templates = [re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$") for p in paths]
    for path in used - {"/docs"}:
        assert any(template.match(path) for template in templates), path
