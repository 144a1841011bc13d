"""Building the actors of a scenario on a SimPy environment and wiring them together."""

import bisect
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from asyncflow_backend.config.constants import (
    CpuStepKind,
    Distribution,
    RamStepKind,
    SampledMetric,
)
from asyncflow_backend.metrics.collector import MetricsCollector
from asyncflow_backend.metrics.sampler import Probe, TimeSeriesSampler
from asyncflow_backend.runtime.actors import Node
from asyncflow_backend.runtime.actors.client import ClientRuntime
from asyncflow_backend.runtime.actors.edge import EdgeRuntime
from asyncflow_backend.runtime.actors.generator import RequestGenerator
from asyncflow_backend.runtime.actors.load_balancer import Backend, LoadBalancerRuntime
from asyncflow_backend.runtime.actors.server import EndpointPlan, ServerRuntime
from asyncflow_backend.runtime.events import EventInjector
from asyncflow_backend.samplers import RandomStreams, Sampler, variate
from asyncflow_backend.samplers.variates import batched
from asyncflow_backend.schemas.random_variables import RVConfig
from asyncflow_backend.schemas.scenario import Scenario
from asyncflow_backend.schemas.topology import Server


@dataclass
class SimulationModel:
    """Every actor of one run, ready to be driven by `SimulationRunner`."""

    env: simpy.Environment
    collector: MetricsCollector
    generator: RequestGenerator
    client: ClientRuntime
    servers: dict[str, ServerRuntime]
    edges: dict[str, EdgeRuntime]
    balancers: list[LoadBalancerRuntime]
    sampler: TimeSeriesSampler

    @classmethod
    def build(cls, scenario: Scenario, streams: RandomStreams) -> "SimulationModel":
        """Create the actors, connect each to its out edge and start the processes."""
        env = simpy.Environment()
        settings = scenario.sim_settings
        collector = MetricsCollector(env, settings.total_simulation_time)
        nodes = scenario.topology_graph.nodes

        client = ClientRuntime(nodes.client.id, collector)
        servers = {s.id: _server(env, s, streams) for s in nodes.servers}
        targets: dict[str, Node] = {client.id: client, **servers}
        lb_spec = nodes.load_balancer

        edges: dict[str, EdgeRuntime] = {}
        # The balancer needs its edges and the edges need their targets: build the
        # edges into the balancer last.
        lb_edges: dict[str, EdgeRuntime] = {}
        late: list[tuple[str, EdgeRuntime]] = []
        for spec in scenario.topology_graph.edges:
            edge = EdgeRuntime(
                env,
                spec.id,
                client,
                variate(spec.latency, streams.generator(f"edge:{spec.id}")),
                spec.dropout_rate,
                _uniform(streams.generator(f"dropout:{spec.id}")),
                collector,
            )
            if spec.target in targets:
                edge.target = targets[spec.target]
            else:
                late.append((spec.target, edge))
            edges[spec.id] = edge
            if lb_spec is not None and spec.source == lb_spec.id:
                lb_edges[spec.target] = edge
        balancers: list[LoadBalancerRuntime] = []
        if lb_spec is not None:
            ordered = {sid: Backend(lb_edges[sid], servers[sid]) for sid in lb_spec.server_covered}
            balancer = LoadBalancerRuntime(lb_spec.id, lb_spec.algorithms, ordered)
            balancers.append(balancer)
            targets[balancer.id] = balancer
        for target_id, edge in late:
            edge.target = targets[target_id]

        out_edge = {spec.source: edges[spec.id] for spec in scenario.topology_graph.edges}
        client.out_edge = out_edge[client.id]
        # A server no edge reaches may have no out edge either: it never gets a request.
        for server in servers.values():
            server.out_edge = out_edge.get(server.id)

        workload = scenario.rqs_input
        generator = RequestGenerator(
            env,
            workload.id,
            _users(workload.avg_active_users, streams.generator("users")),
            workload.avg_request_per_minute_per_user.mean,
            workload.user_sampling_window,
            variate(
                RVConfig(mean=1.0, distribution=Distribution.EXPONENTIAL),
                streams.generator("arrivals"),
            ),
            collector,
        )
        generator.out_edge = out_edge[workload.id]

        sampler = TimeSeriesSampler(
            env, settings.sample_period_s, _probes(settings.enabled_sample_metrics, servers, edges)
        )
        env.process(generator.run())
        env.process(sampler.run())
        if scenario.events:
            EventInjector(env, edges, balancers).start(scenario.events)
        return cls(env, collector, generator, client, servers, edges, balancers, sampler)


def _server(env: simpy.Environment, spec: Server, streams: RandomStreams) -> ServerRuntime:
    plans = []
    for e, endpoint in enumerate(spec.endpoints):
        ram = 0.0
        steps: list[tuple[bool, Sampler]] = []
        for s, step in enumerate(endpoint.steps):
            if isinstance(step.kind, RamStepKind):
                value = step.value
                assert not isinstance(value, RVConfig)
                ram += value
            else:
                rng = streams.generator(f"step:{spec.id}:{e}:{s}")
                steps.append((isinstance(step.kind, CpuStepKind), variate(step.value, rng)))
        plans.append(EndpointPlan(endpoint.endpoint_name, ram, tuple(steps)))
    return ServerRuntime(
        env,
        spec.id,
        spec.server_resources.cpu_cores,
        spec.server_resources.ram_mb,
        plans,
        _endpoint_picker(spec, streams.generator(f"endpoint:{spec.id}")),
    )


def _endpoint_picker(spec: Server, rng: np.random.Generator) -> Callable[[], int]:
    """Index of the endpoint each request calls, weighted by `probability`."""
    if len(spec.endpoints) == 1:
        return itertools.repeat(0).__next__
    equal_share = 1.0 / len(spec.endpoints)
    weights = [ep.probability or equal_share for ep in spec.endpoints]
    total = sum(weights)
    cumulative = list(itertools.accumulate(w / total for w in weights))
    uniform = _uniform(rng)
    last = len(cumulative) - 1
    return lambda: min(bisect.bisect_right(cumulative, uniform()), last)


def _uniform(rng: np.random.Generator) -> Sampler:
    return batched(rng.random)


def _users(spec: RVConfig, rng: np.random.Generator) -> Sampler:
    """Active users in a window: Poisson, a normal rounded to whole users, or exactly the mean."""
    draw = variate(spec, rng)
    if spec.distribution is Distribution.NORMAL:
        return lambda: float(round(draw()))
    return draw


def _probes(
    metrics: list[SampledMetric], servers: dict[str, ServerRuntime], edges: dict[str, EdgeRuntime]
) -> list[Probe]:
    probes: list[Probe] = []
    enabled = set(metrics)
    for server in servers.values():
        if SampledMetric.READY_QUEUE_LEN in enabled:
            probes.append(
                Probe(SampledMetric.READY_QUEUE_LEN, server.id, _reader(server, "ready_queue_len"))
            )
        if SampledMetric.EVENT_LOOP_IO_SLEEP in enabled:
            probes.append(
                Probe(SampledMetric.EVENT_LOOP_IO_SLEEP, server.id, _reader(server, "io_waiting"))
            )
        if SampledMetric.RAM_IN_USE in enabled:
            probes.append(Probe(SampledMetric.RAM_IN_USE, server.id, _reader(server.ram, "in_use")))
    if SampledMetric.EDGE_CONCURRENT_CONNECTION in enabled:
        for edge in edges.values():
            probes.append(
                Probe(
                    SampledMetric.EDGE_CONCURRENT_CONNECTION,
                    edge.id,
                    _reader(edge, "open_connections"),
                )
            )
    return probes


def _reader(component: object, attribute: str) -> Callable[[], float]:
    """Reads `component.attribute` (a counter or a property) as a float."""
    return lambda: float(getattr(component, attribute))
