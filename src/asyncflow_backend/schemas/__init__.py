"""Pydantic models of scenarios (the input language) and of results."""

from asyncflow_backend.schemas.loading import (
    Problem,
    ScenarioValidationError,
    load_scenario_file,
    parse_scenario,
    parse_scenario_text,
)
from asyncflow_backend.schemas.scenario import Scenario

__all__ = [
    "Problem",
    "Scenario",
    "ScenarioValidationError",
    "load_scenario_file",
    "parse_scenario",
    "parse_scenario_text",
]
