"""Charts of experiments: bands per point, the objective's bound and the capacity found."""

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from asyncflow_backend.cli import app
from asyncflow_backend.experiments import ExperimentSpec, prepare, run_experiment
from asyncflow_backend.experiments.report import ExperimentReport
from asyncflow_backend.plots.experiment import (
    UnknownMetricError,
    headline_metrics,
    render_experiment_plot,
)
from support.scenarios import parsing_server


def report(**fields: Any) -> ExperimentReport:
    spec = ExperimentSpec.model_validate(
        {"scenario": parsing_server(users=30, horizon_s=10.0), "seed": 2, **fields}
    )
    return run_experiment(prepare(spec))


def svg_text(image: bytes) -> str:
    return image.decode("utf-8")


@pytest.fixture(scope="module")
def sweep() -> ExperimentReport:
    return report(
        replications=2,
        sweep=[
            {"path": "rqs_input.avg_active_users.mean", "values": [10, 20, 30]},
            {
                "path": "topology_graph.nodes.servers.srv.server_resources.cpu_cores",
                "values": [1, 2],
            },
        ],
    )


def test_a_sweep_chart_has_one_band_and_line_per_other_value(sweep: ExperimentReport) -> None:
    image = svg_text(render_experiment_plot(sweep, "latency.p95", fmt="svg"))
    assert "rqs_input.avg_active_users.mean" in image
    # One legend entry per combination of the other swept field.
    assert len(re.findall(r"cpu_cores=1", image)) >= 1
    assert len(re.findall(r"cpu_cores=2", image)) >= 1
    assert render_experiment_plot(sweep, "throughput.mean_rps").startswith(b"\x89PNG")


def test_a_search_chart_shows_the_objective_and_the_capacity() -> None:
    search = report(
        replications=3,
        search={"objective": {"metric": "latency.p95", "at_most": 0.02}, "tolerance": 0.1},
    )
    assert search.search is not None
    image = svg_text(render_experiment_plot(search, "latency.p95", fmt="svg"))
    assert "objective ≤ 0.02" in image
    assert f"capacity {search.search.capacity:g}" in image
    assert "load factor on arrival_rate" in image
    assert headline_metrics(search)[0] == "latency.p95"


def test_plain_replications_show_each_replication_and_the_interval() -> None:
    image = svg_text(render_experiment_plot(report(replications=4), "latency.mean", fmt="svg"))
    assert "95% interval" in image
    assert "replications" in image


def test_an_unknown_metric_lists_the_valid_ones(sweep: ExperimentReport) -> None:
    with pytest.raises(UnknownMetricError, match=r"valid names: latency\.mean"):
        render_experiment_plot(sweep, "latency.p97")


def test_cli_writes_experiment_charts(tmp_path: Path) -> None:
    import yaml

    (tmp_path / "s.yml").write_text(yaml.safe_dump(parsing_server(users=30, horizon_s=10.0)))
    (tmp_path / "e.yml").write_text(yaml.safe_dump({"scenario": "s.yml", "replications": 2}))
    result = CliRunner().invoke(
        app,
        [
            "experiment",
            str(tmp_path / "e.yml"),
            "-q",
            "--plots",
            str(tmp_path / "charts"),
            "--plot-format",
            "both",
        ],
    )
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "charts").iterdir())
    assert written == sorted(
        f"{m}.{f}"
        for m in ("latency.p95", "latency.mean", "throughput.mean_rps")
        for f in ("png", "svg")
    )
