"""Every sampled metric, declared once.

Each definition says which kind of component has the metric, how to read it
(a typed reader over the component's gauges), its unit, the fields of the
component's summary that hold its mean and peak, and the title of its chart.
The probes, the limits, the analyser, the plots and the web page all read this
table; adding a metric means adding a row here and a gauge on its component.
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from asyncflow_backend.config.constants import SampledMetric


class ComponentKind(StrEnum):
    """The kinds of component that carry sampled metrics."""

    SERVER = "server"
    EDGE = "edge"
    POOL = "pool"


class ServerGauges(Protocol):
    """What a server shows at any instant."""

    @property
    def ready_queue_len(self) -> int:
        """Requests waiting for a core."""

    @property
    def io_waiting(self) -> int:
        """Requests sleeping on I/O."""

    @property
    def ram_in_use(self) -> float:
        """Megabytes reserved."""


class EdgeGauges(Protocol):
    """What an edge shows at any instant."""

    @property
    def open_connections(self) -> int:
        """Requests on the wire."""


class PoolGauges(Protocol):
    """What a connection pool shows at any instant."""

    @property
    def in_use(self) -> float:
        """Connections held."""

    @property
    def queued(self) -> int:
        """Requests waiting for a connection."""


G = TypeVar("G")


@dataclass(frozen=True)
class MetricDefinition(Generic[G]):
    """One sampled metric: where it lives, how it is read and how it is shown."""

    metric: SampledMetric
    kind: ComponentKind
    read: Callable[[G], float]
    unit: str
    """Unit of the values, e.g. `requests`, `MB`."""
    title: str
    """Chart title."""
    mean_field: str
    """Field of the component's summary (ServerStats, EdgeStats, PoolStats) with the mean."""
    max_field: str
    """Field of the component's summary with the peak."""
    chart: str
    """Name of the chart that shows it (`/plots/{chart}`, the page's chart)."""
    capacity_field: str | None = None
    """Field of the component's summary with the ceiling of the metric (a server's `ram_mb`,
    a pool's `size`), drawn as a capacity line; None for a metric without one."""


SERVER_METRICS: tuple[MetricDefinition[ServerGauges], ...] = (
    MetricDefinition(
        SampledMetric.READY_QUEUE_LEN,
        ComponentKind.SERVER,
        lambda s: s.ready_queue_len,
        "requests",
        "Ready queue: requests waiting for a core",
        "ready_queue_mean",
        "ready_queue_max",
        "ready_queue",
    ),
    MetricDefinition(
        SampledMetric.EVENT_LOOP_IO_SLEEP,
        ComponentKind.SERVER,
        lambda s: s.io_waiting,
        "requests",
        "I/O queue: requests waiting on I/O",
        "io_queue_mean",
        "io_queue_max",
        "io_queue",
    ),
    MetricDefinition(
        SampledMetric.RAM_IN_USE,
        ComponentKind.SERVER,
        lambda s: s.ram_in_use,
        "MB",
        "RAM in use",
        "ram_mean_mb",
        "ram_peak_mb",
        "ram",
        capacity_field="ram_mb",
    ),
)

EDGE_METRICS: tuple[MetricDefinition[EdgeGauges], ...] = (
    MetricDefinition(
        SampledMetric.EDGE_CONCURRENT_CONNECTION,
        ComponentKind.EDGE,
        lambda e: e.open_connections,
        "connections",
        "Open connections per edge",
        "connections_mean",
        "connections_max",
        "connections",
    ),
)

POOL_METRICS: tuple[MetricDefinition[PoolGauges], ...] = (
    MetricDefinition(
        SampledMetric.POOL_IN_USE,
        ComponentKind.POOL,
        lambda p: p.in_use,
        "connections",
        "Pool connections in use",
        "in_use_mean",
        "in_use_max",
        "pool_in_use",
        capacity_field="size",
    ),
    MetricDefinition(
        SampledMetric.POOL_WAITING,
        ComponentKind.POOL,
        lambda p: p.queued,
        "requests",
        "Pool queue: requests waiting for a connection",
        "waiting_mean",
        "waiting_max",
        "pool_waiting",
    ),
)

_ALL: tuple[MetricDefinition[Any], ...] = (*SERVER_METRICS, *EDGE_METRICS, *POOL_METRICS)
METRICS: dict[SampledMetric, MetricDefinition[Any]] = {d.metric: d for d in _ALL}
"""Every sampled metric by name, in the order charts show them."""


def catalogue_document() -> list[dict[str, str | None]]:
    """The table without its readers, as JSON-ready rows (the web page reads this)."""
    return [
        {
            "metric": d.metric.value,
            "kind": d.kind.value,
            "unit": d.unit,
            "title": d.title,
            "mean_field": d.mean_field,
            "max_field": d.max_field,
            "chart": d.chart,
            "capacity_field": d.capacity_field,
        }
        for d in METRICS.values()
    ]
