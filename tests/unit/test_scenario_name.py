"""A scenario's optional name and description: bounds, defaults from the file name, and
where they show (the CLI summary; the API and the page have their own tests)."""

from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from test_cli import invoke

from asyncflow_backend import cli
from asyncflow_backend.runtime.runner import run_scenario
from asyncflow_backend.schemas import parse_scenario
from asyncflow_backend.schemas.loading import ScenarioValidationError
from asyncflow_backend.schemas.results import SimulationResults
from asyncflow_backend.schemas.scenario import (
    DESCRIPTION_MAX_CHARS,
    NAME_MAX_CHARS,
    name_from_file,
)
from support.scenarios import one_server_builder, small_scenario


def test_name_and_description_are_optional_and_trimmed() -> None:
    assert parse_scenario(small_scenario()).name is None
    scenario = parse_scenario(
        small_scenario(name="  checkout  ", description="Line one\nline two\n")
    )
    assert scenario.name == "checkout"
    assert scenario.description == "Line one\nline two"
    assert list(scenario.model_dump())[:2] == ["name", "description"]


def test_the_length_limits_count_the_trimmed_text() -> None:
    name, description = f"  {'n' * NAME_MAX_CHARS}\t ", f"\n{'d' * DESCRIPTION_MAX_CHARS} "
    at_limit = parse_scenario(small_scenario(name=name, description=description))
    assert at_limit.name == "n" * NAME_MAX_CHARS
    assert at_limit.description == "d" * DESCRIPTION_MAX_CHARS
    with pytest.raises(ScenarioValidationError) as raised:
        parse_scenario(small_scenario(name=f" {'n' * (NAME_MAX_CHARS + 1)} "))
    (problem,) = raised.value.problems
    assert problem.path == "name"
    assert f"at most {NAME_MAX_CHARS} characters once trimmed" in problem.message


@pytest.mark.parametrize(
    ("fields", "path", "message"),
    [
        ({"name": "   "}, "name", "must not be blank"),
        ({"name": "two\nlines"}, "name", "one line"),
        ({"name": "x" * (NAME_MAX_CHARS + 1)}, "name", f"at most {NAME_MAX_CHARS}"),
        ({"name": 7}, "name", "valid string"),
        ({"description": "bell\x07"}, "description", "control characters"),
        (
            {"description": "x" * (DESCRIPTION_MAX_CHARS + 1)},
            "description",
            f"at most {DESCRIPTION_MAX_CHARS}",
        ),
    ],
)
def test_bad_names_and_descriptions_are_located(
    fields: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(ScenarioValidationError) as raised:
        parse_scenario(small_scenario(**fields))
    (problem,) = raised.value.problems
    assert str(problem).startswith(f"{path}:")
    assert message in str(problem)


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        ("example/ram_pressure.yml", "ram_pressure"),
        ("mm2.json", "mm2"),
        ("two words.yaml", "two words"),
        ("a" * 200 + ".yml", "a" * NAME_MAX_CHARS),
        ("tab\there.yml", "tabhere"),
    ],
)
def test_the_default_name_is_the_file_stem(file_name: str, expected: str) -> None:
    assert name_from_file(file_name) == expected


def test_the_cli_summary_is_titled_by_the_name_or_the_file(tmp_path: Path) -> None:
    unnamed = tmp_path / "checkout_flow.yml"
    unnamed.write_text(one_server_builder(seed=3).to_yaml(), encoding="utf-8")
    outcome = invoke("run", unnamed, "-q")
    assert outcome.exit_code == 0, outcome.output
    assert "Results: checkout_flow" in outcome.output

    document = one_server_builder(seed=3).to_dict()
    document.update(name="[bold]Checkout[/] at peak", description="Friday evening load.")
    named = tmp_path / "named.yml"
    named.write_text(yaml.safe_dump(document), encoding="utf-8")
    outcome = invoke("run", named, "-q")
    assert outcome.exit_code == 0, outcome.output
    # Shown as written: a name is text, never console markup.
    assert "Results: [bold]Checkout[/] at peak" in outcome.output
    assert "Friday evening load." in outcome.output


@pytest.fixture(scope="module")
def many_servers() -> SimulationResults:
    """Fourteen servers with distinct CPU loads and a nearly empty ready queue."""
    base = run_scenario(parse_scenario(one_server_builder(seed=5).to_dict()))
    document = base.model_dump()
    template = document["servers"]["srv"]
    document["servers"] = {
        f"srv-{k:02d}": {
            **template,
            "cpu_utilisation": k / 100,
            "ready_queue_mean": 0.001,
            "ram_peak_mb": 100.0 + k,
            "ram_mb": 512.0,
        }
        for k in range(14)
    }
    return SimulationResults.model_validate(document)


def _summary(results: SimulationResults) -> str:
    console = Console(width=200, record=True)
    original = cli.console
    cli.console = console
    try:
        cli._print_summary(results, "fleet")
    finally:
        cli.console = original
    text = console.export_text()
    # The servers table alone.
    return text[text.index("Servers, busiest first") : text.index("Time on the server")]


def test_the_summary_lists_the_busiest_servers_and_counts_the_rest(
    many_servers: SimulationResults,
) -> None:
    text = _summary(many_servers)
    shown = [f"srv-{k:02d}" for k in range(14) if f"srv-{k:02d}" in text]
    assert shown == [f"srv-{k:02d}" for k in range(14 - cli.SUMMARY_MAX_SERVERS, 14)]
    assert f"... and {14 - cli.SUMMARY_MAX_SERVERS} more" in text
    # Busiest first.
    assert text.index("srv-13") < text.index("srv-02")


def test_the_summary_keeps_small_values_and_ram_against_capacity(
    many_servers: SimulationResults,
) -> None:
    text = _summary(many_servers)
    line = next(row for row in text.splitlines() if "srv-13" in row)
    assert "13 % of 1" in line
    assert "0.001 /" in line  # a mean queue of 0.001 is not rounded to 0
    assert "113 / 512 MB (22 %)" in line


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.001, "0.001"),
        (0.0000833, "0.0000833"),
        (0.0, "0"),
        (2.0, "2"),
        (12.345, "12.3"),
        (1234.5, "1,234"),
        (3.14159e9, "3.14e+09"),
    ],
)
def test_significant_digits(value: float, shown: str) -> None:
    assert cli._sig(value) == shown
