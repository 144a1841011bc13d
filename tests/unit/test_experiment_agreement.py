"""`asyncflow experiment` and the service give the same report for the same experiment and seed.

The command line runs each replication in one piece; a worker cuts it into
progress slices (as many as the scenario needs): the warm-up cut, and so every
number, must not depend on that.
"""

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from api_support import api_client, sqlite_settings
from typer.testing import CliRunner

from asyncflow_backend.builder import ScenarioBuilder, exponential
from asyncflow_backend.cli import app
from asyncflow_backend.config.settings import Settings


def experiment(warmup: float | str) -> dict[str, Any]:
    scenario = (
        ScenarioBuilder()
        .generator("gen", users=20, rpm=60)
        .client("client")
        .server("srv")
        .endpoint("/api")
        .cpu(exponential(0.03))
        .chain("gen", "client", "srv", "client", latency=exponential(0.001))
        .settings(horizon=30, sample_period=0.1)
        .to_dict()
    )
    # 7.3 s falls between the progress reports of both ways of slicing the run.
    return {"scenario": scenario, "seed": 11, "replications": 3, "warmup_s": warmup}


def without_wall_clock(report: dict[str, Any]) -> dict[str, Any]:
    for point in report["points"]:
        for replication in point["replications"]:
            del replication["wall_seconds"]
    return report


def by_the_command_line(document: dict[str, Any], directory: Path) -> dict[str, Any]:
    source, out = directory / "experiment.yml", directory / "report.json"
    source.write_text(yaml.safe_dump(document), encoding="utf-8")
    outcome = CliRunner().invoke(app, ["experiment", str(source), "--json", str(out), "-q"])
    assert outcome.exit_code == 0, outcome.output
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return report


async def by_the_service(documents: list[dict[str, Any]], settings: Settings) -> list[Any]:
    async with api_client(settings) as client:
        answers = [await client.post("/api/v1/experiments", json=d) for d in documents]
        assert [a.status_code for a in answers] == [202] * len(documents)
        views = []
        for answer in answers:
            location = answer.headers["location"]
            while (view := (await client.get(location)).json())["status"] in {"queued", "running"}:
                await asyncio.sleep(0.05)
            assert view["status"] == "succeeded", view
            views.append(view["report"])
    return views


@pytest.fixture
def embedded(tmp_path: Path) -> Settings:
    return sqlite_settings(tmp_path)


async def test_the_command_line_and_the_service_report_the_same_numbers(
    embedded: Settings, tmp_path: Path
) -> None:
    documents = [experiment(7.3), experiment("mser5")]

    local = [by_the_command_line(d, tmp_path) for d in documents]
    served = await by_the_service(documents, embedded)

    assert [without_wall_clock(r) for r in served] == [without_wall_clock(r) for r in local]
    assert {r["warmup_s"] for r in local[0]["points"][0]["replications"]} == {7.3}
    assert local[1]["warmup"] == "mser5"
