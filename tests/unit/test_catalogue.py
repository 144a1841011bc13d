"""The catalogue of sampled metrics is complete and agrees with what reads it."""

import pytest

from asyncflow_backend.config.constants import SampledMetric
from asyncflow_backend.metrics.catalogue import METRICS, ComponentKind, catalogue_document
from asyncflow_backend.plots import PLOT_NAMES
from asyncflow_backend.schemas.results import EdgeStats, PoolStats, ServerStats

SUMMARY_OF_KIND = {
    ComponentKind.SERVER: ServerStats,
    ComponentKind.EDGE: EdgeStats,
    ComponentKind.POOL: PoolStats,
}


def test_every_sampled_metric_is_declared_once() -> None:
    assert list(METRICS) == list(SampledMetric)


@pytest.mark.parametrize("definition", METRICS.values(), ids=lambda d: d.metric.value)
def test_summary_fields_and_charts_exist(definition: object) -> None:
    d = METRICS[definition.metric]  # type: ignore[attr-defined]
    fields = SUMMARY_OF_KIND[d.kind].model_fields
    assert d.mean_field in fields
    assert d.max_field in fields
    assert d.chart in PLOT_NAMES
    assert d.capacity_field is None or d.capacity_field in fields


def test_the_page_gets_the_table_without_readers() -> None:
    rows = catalogue_document()
    assert [row["metric"] for row in rows] == [m.value for m in SampledMetric]
    assert all(
        set(row)
        == {"metric", "kind", "unit", "title", "mean_field", "max_field", "chart", "capacity_field"}
        for row in rows
    )


def test_ram_and_pool_connections_have_their_ceiling() -> None:
    capacities = {d.chart: d.capacity_field for d in METRICS.values() if d.capacity_field}
    assert capacities == {"ram": "ram_mb", "pool_in_use": "size"}
