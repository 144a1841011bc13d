"""Size limits on a scenario, so one request cannot occupy a worker or the database forever.

The limits are configuration (see `asyncflow_backend.config.settings`); each
problem names the environment variable that raises the limit.
"""

from dataclasses import dataclass

from asyncflow_backend.metrics.catalogue import METRICS, ComponentKind
from asyncflow_backend.schemas.scenario import Scenario
from asyncflow_backend.schemas.validation import Problem

_ENV_PREFIX = "ASYNCFLOW_"


@dataclass(frozen=True)
class ScenarioLimits:
    """The largest scenario a run may have; field names match the settings' fields."""

    max_nodes: int = 100
    max_edges: int = 200
    max_endpoints: int = 100
    max_steps: int = 1000
    max_events: int = 200
    max_horizon_s: float = 86_400
    max_expected_requests: float = 5_000_000
    max_samples: int = 5_000_000


def _var(field: str) -> str:
    return f"{_ENV_PREFIX}{field.upper()}"


def _num(value: float) -> str:
    """A number as a person writes it: no exponent, no trailing `.0`."""
    value = float(value)
    return f"{value:.0f}" if value.is_integer() or abs(value) >= 1e5 else f"{value:.6g}"


def sampled_series_count(scenario: Scenario) -> int:
    """How many time series the run will sample: one per enabled metric and component."""
    servers = scenario.topology_graph.nodes.servers
    components = {
        ComponentKind.SERVER: len(servers),
        ComponentKind.EDGE: len(scenario.topology_graph.edges),
        ComponentKind.POOL: sum(len(s.server_resources.pool_sizes()) for s in servers),
    }
    return sum(
        components[METRICS[metric].kind]
        for metric in set(scenario.sim_settings.enabled_sample_metrics)
    )


def check_limits(scenario: Scenario, limits: ScenarioLimits) -> list[Problem]:
    """Every limit the scenario exceeds, each located at the field that makes it too large."""
    problems: list[Problem] = []
    nodes = scenario.topology_graph.nodes
    servers = nodes.servers

    def over(loc: tuple[str, ...], what: str, field: str, unit: str = "") -> None:
        limit = getattr(limits, field)
        problems.append(
            Problem(loc, f"{what} exceeds the limit of {_num(limit)}{unit} ({_var(field)})")
        )

    node_count = 1 + (nodes.load_balancer is not None) + len(servers)
    if node_count > limits.max_nodes:
        over(("topology_graph", "nodes"), f"{node_count} nodes", "max_nodes")
    edge_count = len(scenario.topology_graph.edges)
    if edge_count > limits.max_edges:
        over(("topology_graph", "edges"), f"{edge_count} edges", "max_edges")
    endpoint_count = sum(len(server.endpoints) for server in servers)
    if endpoint_count > limits.max_endpoints:
        over(("topology_graph", "nodes", "servers"), f"{endpoint_count} endpoints", "max_endpoints")
    step_count = sum(len(ep.steps) for server in servers for ep in server.endpoints)
    if step_count > limits.max_steps:
        over(("topology_graph", "nodes", "servers"), f"{step_count} steps", "max_steps")
    event_count = len(scenario.events or ())
    if event_count > limits.max_events:
        over(("events",), f"{event_count} events", "max_events")

    horizon = scenario.sim_settings.total_simulation_time
    if horizon > limits.max_horizon_s:
        over(
            ("sim_settings", "total_simulation_time"),
            f"horizon {_num(horizon)} s",
            "max_horizon_s",
            " s",
        )
    rate = scenario.peak_arrival_rate
    expected = horizon * rate
    if expected > limits.max_expected_requests:
        over(
            ("rqs_input",),
            f"{_num(expected)} expected requests (horizon {_num(horizon)} s x peak rate "
            f"{_num(rate)}/s)",
            "max_expected_requests",
        )
    period = scenario.sim_settings.sample_period_s
    series = sampled_series_count(scenario)
    samples = horizon / period * series
    if samples > limits.max_samples:
        over(
            ("sim_settings", "sample_period_s"),
            f"{_num(samples)} samples ({_num(horizon / period)} ticks x {series} series)",
            "max_samples",
        )
    return problems
