"""The parts of a scenario document as plain dicts, the shape a YAML file holds.

Amounts are seconds (latencies, CPU and I/O times) or megabytes (RAM). A
number where a random variable is allowed is written as given: the language
reads it as a fixed value, except edge latencies, which are always written
out (a number becomes a `deterministic` variable, as in `ScenarioBuilder.edge`).
Every builder copies what it is given, so no two results share a mutable part.
"""

import copy
import itertools
from typing import Any

from asyncflow_backend.builder import deterministic, exponential

__all__ = [
    "balancer",
    "cache",
    "call",
    "cpu",
    "deterministic",
    "edge",
    "edge_slowdown",
    "endpoint",
    "exponential",
    "generator",
    "io",
    "outage",
    "poisson_arrivals",
    "ram",
    "route",
    "scenario_document",
    "server",
    "slowdown",
    "spike",
]

Document = dict[str, Any]
Amount = float | Document


def generator(
    users: Amount, *, rpm: float = 60, generator_id: str = "gen", **extra: Any
) -> Document:
    """`rqs_input`: `users` active users, each sending `rpm` requests a minute.

    `users` is a random variable, or a number written as `{"mean": users}` (the
    language's default distribution, Poisson). `extra` adds fields
    (`user_sampling_window`, `endpoint_mix`, ...).
    """
    return {
        "id": generator_id,
        "avg_active_users": {"mean": users} if isinstance(users, int | float) else users,
        "avg_request_per_minute_per_user": {"mean": rpm},
        **copy.deepcopy(extra),
    }


def poisson_arrivals(
    users: float, *, rpm: float = 60, generator_id: str = "gen", **extra: Any
) -> Document:
    """`rqs_input` whose arrivals are a Poisson process of `users * rpm / 60` per second.

    The `users` are `deterministic`; at the default 60 requests a minute each,
    the rate is the number of users.
    """
    return generator(deterministic(users), rpm=rpm, generator_id=generator_id, **extra)


def edge(
    source: str,
    target: str,
    *,
    latency: Amount = 0.001,
    dropout: float | None = 0.0,
    edge_id: str | None = None,
    **extra: Any,
) -> Document:
    """An edge named `source-target` unless `edge_id`; a number as `latency` is a fixed delay.

    `dropout` is the `dropout_rate`; `None` leaves it out (the language's default, 1%).
    """
    document: Document = {
        "id": edge_id or f"{source}-{target}",
        "source": source,
        "target": target,
        "latency": deterministic(latency) if isinstance(latency, int | float) else latency,
    }
    if dropout is not None:
        document["dropout_rate"] = dropout
    return copy.deepcopy(document | extra)


def route(*node_ids: str, latency: Amount = 0.001, dropout: float | None = 0.0) -> list[Document]:
    """Edges along a path, `route("gen", "client", "srv", "client")`, each as `edge` makes it."""
    return [
        edge(source, target, latency=latency, dropout=dropout)
        for source, target in itertools.pairwise(node_ids)
    ]


def cpu(seconds: Amount, *, kind: str = "cpu_bound_operation") -> Document:
    """A CPU step of `seconds` of one core (`kind` may be `initial_parsing`)."""
    return {"kind": kind, "step_operation": {"cpu_time": copy.deepcopy(seconds)}}


def io(seconds: Amount, *, kind: str = "io_db", **extra: Any) -> Document:
    """An I/O wait of `seconds` (`extra` adds fields such as `pool`)."""
    step = {"kind": kind, "step_operation": {"io_waiting_time": seconds}, **extra}
    return copy.deepcopy(step)


def ram(megabytes: float) -> Document:
    """A step that holds `megabytes` of the server's RAM until the request leaves."""
    return {"kind": "ram", "step_operation": {"necessary_ram": megabytes}}


def call(*targets: str, **extra: Any) -> Document:
    """A call step: to one `target`, or in parallel to several `targets`.

    `extra` adds fields (`timeout_s`, `retry`, `wait_for`, `pool`, ...).
    """
    aim: Document = {"target": targets[0]} if len(targets) == 1 else {"targets": list(targets)}
    return copy.deepcopy({"kind": "call", **aim, **extra})


def cache(
    hit_ratio: float, *, hit: list[Document] | None = None, miss: list[Document] | None = None
) -> Document:
    """A cache step: with probability `hit_ratio` the `hit` steps run, else the `miss` steps
    (a branch left as None is left out)."""
    step: Document = {"kind": "cache", "hit_ratio": hit_ratio}
    if hit is not None:
        step["hit"] = hit
    if miss is not None:
        step["miss"] = miss
    return copy.deepcopy(step)


def endpoint(name: str, *steps: Document, probability: float | None = None) -> Document:
    """An endpoint running `steps` in order, chosen with `probability` when one is given."""
    document: Document = {"endpoint_name": name}
    if probability is not None:
        document["probability"] = probability
    document["steps"] = copy.deepcopy(list(steps))
    return document


def server(
    server_id: str,
    *steps: Document,
    endpoint_name: str = "/",
    endpoints: list[Document] | None = None,
    replicas: int | None = None,
    **resources: Any,
) -> Document:
    """A server with one endpoint of `steps`, or the given `endpoints` (then no `steps`).

    `resources` are its `server_resources` (`cpu_cores`, `ram_mb`, pools, caps), left
    out when none is given; `replicas` makes it a replica group.
    """
    if endpoints is not None and steps:
        raise ValueError("give steps or endpoints, not both")
    document: Document = {"id": server_id}
    if replicas is not None:
        document["replicas"] = replicas
    if resources:
        document["server_resources"] = resources
    document["endpoints"] = (
        endpoints if endpoints is not None else [endpoint(endpoint_name, *steps)]
    )
    return copy.deepcopy(document)


def balancer(
    *server_ids: str, algorithm: str | None = None, balancer_id: str = "lb", **extra: Any
) -> Document:
    """A load balancer covering `server_ids`; no `algorithm` leaves the default (round robin)."""
    document: Document = {"id": balancer_id, "server_covered": list(server_ids)}
    if algorithm is not None:
        document["algorithms"] = algorithm
    return copy.deepcopy(document | extra)


def outage(event_id: str, server_id: str, *, start: float, end: float) -> Document:
    """An injected event: `server_id` is down from `start` to `end` seconds."""
    return {
        "event_id": event_id,
        "target_id": server_id,
        "start": {"kind": "server_down", "t_start": start},
        "end": {"kind": "server_up", "t_end": end},
    }


def spike(event_id: str, edge_id: str, *, start: float, end: float, spike_s: float) -> Document:
    """An injected event: `edge_id` takes `spike_s` seconds longer from `start` to `end`."""
    return {
        "event_id": event_id,
        "target_id": edge_id,
        "start": {"kind": "network_spike_start", "t_start": start, "spike_s": spike_s},
        "end": {"kind": "network_spike_end", "t_end": end},
    }


def slowdown(
    event_id: str,
    server_id: str,
    *,
    start: float,
    end: float,
    factor: float,
    applies_to: str | None = None,
) -> Document:
    """An injected event: the step times `server_id` draws from `start` to `end` are
    `factor` times as long (its CPU steps, its I/O steps or, as when `applies_to` is
    None, both)."""
    opening: Document = {"kind": "server_slowdown_start", "t_start": start, "factor": factor}
    if applies_to is not None:
        opening["applies_to"] = applies_to
    return {
        "event_id": event_id,
        "target_id": server_id,
        "start": opening,
        "end": {"kind": "server_slowdown_end", "t_end": end},
    }


def edge_slowdown(
    event_id: str, edge_id: str, *, start: float, end: float, factor: float
) -> Document:
    """An injected event: the latencies `edge_id` draws from `start` to `end` are `factor`
    times as long."""
    return {
        "event_id": event_id,
        "target_id": edge_id,
        "start": {"kind": "edge_slowdown_start", "t_start": start, "factor": factor},
        "end": {"kind": "edge_slowdown_end", "t_end": end},
    }


def scenario_document(
    workload: Document,
    servers: list[Document],
    edges: list[Document],
    *,
    horizon_s: float,
    load_balancer: Document | None = None,
    load_balancers: list[Document] | None = None,
    settings: Document | None = None,
    **sections: Any,
) -> Document:
    """A whole scenario: `workload` as `rqs_input`, a client `client`, `servers` and `edges`.

    `load_balancer` is the entry balancer, `load_balancers` the internal ones (called by
    servers); `settings` adds to `sim_settings` (after `total_simulation_time`);
    `sections` are further top-level fields (`events`, `seed`, `workload_classes`, ...).
    """
    nodes: Document = {"client": {"id": "client"}}
    if load_balancer is not None:
        nodes["load_balancer"] = load_balancer
    if load_balancers is not None:
        nodes["load_balancers"] = load_balancers
    nodes["servers"] = servers
    return copy.deepcopy(
        {
            "rqs_input": workload,
            "topology_graph": {"nodes": nodes, "edges": edges},
            "sim_settings": {"total_simulation_time": horizon_s, **(settings or {})},
            **sections,
        }
    )
