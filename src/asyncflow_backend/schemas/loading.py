"""Turning text or data into a validated `Scenario`, or into a list of located problems."""

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from asyncflow_backend.schemas.base import shorten
from asyncflow_backend.schemas.scenario import Scenario
from asyncflow_backend.schemas.validation import Loc, Problem, find_problems

__all__ = [
    "Problem",
    "ScenarioValidationError",
    "load_scenario_file",
    "load_yaml",
    "parse_scenario",
    "parse_scenario_text",
]


class ScenarioYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading `1e-3` as a number as YAML 1.2 and JSON do.

    YAML 1.1 wants a dot in a float (`1.0e-3`), so PyYAML reads `1e-3` as text,
    which the scenario's strict number fields would then refuse.
    """


ScenarioYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str) -> Any:
    """YAML text as data, with `ScenarioYamlLoader` (no Python objects)."""
    return yaml.load(text, Loader=ScenarioYamlLoader)


class ScenarioValidationError(ValueError):
    """A scenario was rejected; `problems` lists every reason with its path."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def parse_scenario(data: Any) -> Scenario:
    """Validate already-decoded data (a dict) into a `Scenario`."""
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "nothing"
        raise ScenarioValidationError([Problem((), f"a scenario must be a mapping, got {kind}")])
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioValidationError(_problems_of(exc, data)) from None
    problems = find_problems(scenario)
    if problems:
        raise ScenarioValidationError(problems)
    return scenario


def parse_scenario_text(text: str, fmt: str | None = None) -> Scenario:
    """Decode YAML or JSON text (YAML when `fmt` is None: JSON is YAML too) and validate it."""
    try:
        data = json.loads(text) if fmt == "json" else load_yaml(text)
    except json.JSONDecodeError as exc:
        raise ScenarioValidationError(
            [Problem((), f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")]
        ) from None
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        reason = getattr(exc, "problem", None) or "not valid YAML"
        raise ScenarioValidationError([Problem((), f"invalid YAML{where}: {reason}")]) from None
    return parse_scenario(data)


def load_scenario_file(path: str | Path) -> Scenario:
    """Read and validate a `.yml`, `.yaml` or `.json` scenario file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioValidationError([Problem((), f"cannot read {file}: {exc}")]) from None
    return parse_scenario_text(text, "json" if file.suffix.lower() == ".json" else None)


def _problems_of(exc: ValidationError, data: Any) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = _clean_loc(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        owner = _owner_id(data, loc)
        if owner:
            owner = shorten(owner)
        if owner and owner not in message:
            message = f"{message} (in '{owner}')"
        problems.append(Problem(loc, message))
    return problems


def _clean_loc(loc: tuple[int | str, ...]) -> Loc:
    # Union members add their class name to the path (`function-after[...]`, `RVConfig`);
    # users wrote field names, so keep only those.
    # An unknown key is part of the path: shorten it, it may be a megabyte long.
    return tuple(
        p if isinstance(p, int) else shorten(p)
        for p in loc
        if isinstance(p, int) or ("[" not in p and not p[:1].isupper())
    )


def _owner_id(data: Any, loc: Loc) -> str | None:
    """The id of the innermost object on the path, so messages say which node or edge."""
    owner = None
    node = data
    for part in loc:
        if isinstance(node, dict):
            owner = node.get("id") or node.get("event_id") or node.get("endpoint_name") or owner
            node = node.get(part) if isinstance(part, str) else None
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            break
    if isinstance(node, dict):
        owner = node.get("id") or node.get("event_id") or node.get("endpoint_name") or owner
    return owner if isinstance(owner, str) else None
