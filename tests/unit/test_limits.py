"""Scenario size limits: each problem points at the field and names the limit and its variable."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from asyncflow_backend.runtime.runner import SimulationRunner
from asyncflow_backend.schemas import parse_scenario
from asyncflow_backend.schemas.limits import (
    ScenarioLimits,
    check_limits,
    events_per_request,
    sampled_series_count,
    scheduled_events,
)
from support.documents import (
    balancer,
    cache,
    call,
    cpu,
    edge,
    endpoint,
    exponential,
    io,
    poisson_arrivals,
    route,
    scenario_document,
    server,
)

CPU = {"cpu_time": 0.001}
IO = {"io_waiting_time": 0.01}

EXAMPLES = Path(__file__).parents[2] / "example"


def scenario_data(
    *, servers: int = 1, horizon: float = 600, users: float = 10, rpm: float = 60, **sim: Any
) -> dict[str, Any]:
    """`users` users of `rpm` requests a minute over a balancer to `servers` servers of
    1 ms of parsing and 10 ms of database I/O; exponential 1 ms links."""
    steps = (cpu(0.001, kind="initial_parsing"), io(0.01))
    server_ids = [f"srv-{i}" for i in range(servers)]
    link = exponential(0.001)
    edges = route("gen", "client", "lb", latency=link, dropout=None)
    for sid in server_ids:
        edges += [edge("lb", sid, latency=link, dropout=None)]
        edges += [edge(sid, "client", latency=link, dropout=None)]
    return scenario_document(
        poisson_arrivals(users, rpm=rpm),
        [server(sid, *steps, endpoint_name="/a") for sid in server_ids],
        edges,
        horizon_s=horizon,
        load_balancer=balancer(*server_ids),
        settings={"sample_period_s": 0.1, **sim},
    )


def messages(data: dict[str, Any], **limits: Any) -> dict[str, str]:
    problems = check_limits(parse_scenario(data), ScenarioLimits(**limits))
    return {problem.path: problem.message for problem in problems}


def test_a_scenario_within_the_default_limits_has_no_problem() -> None:
    assert messages(scenario_data()) == {}


def test_the_defaults_are_the_documented_ones() -> None:
    limits = ScenarioLimits()
    assert (limits.max_nodes, limits.max_edges, limits.max_endpoints, limits.max_steps) == (
        100,
        200,
        100,
        1000,
    )
    assert (limits.max_events, limits.max_horizon_s) == (200, 86_400)
    assert (limits.max_expected_requests, limits.max_samples) == (5_000_000, 5_000_000)
    assert limits.max_scheduled_events == 100_000_000


def test_a_horizon_over_the_limit_is_reported_on_the_horizon_field() -> None:
    found = messages(scenario_data(horizon=90_000, users=0.1, sample_period_s=0.1))

    assert found["sim_settings.total_simulation_time"] == (
        "horizon 90000 s exceeds the limit of 86400 s (ASYNCFLOW_MAX_HORIZON_S)"
    )


def test_expected_requests_use_the_horizon_and_the_peak_arrival_rate() -> None:
    data = scenario_data(horizon=1000, users=100, rpm=60)
    data["rqs_input"]["avg_active_users"] = {"mean": 100, "distribution": "poisson"}
    # The peak rate counts the spread of the user count: (100 + 4 x sqrt(100)) x 60 / 60.
    assert parse_scenario(data).peak_arrival_rate == pytest.approx(140.0)

    assert messages(data, max_expected_requests=140_000) == {}
    found = messages(data, max_expected_requests=110_000)

    assert found == {
        "rqs_input": "140000 expected requests (horizon 1000 s x peak rate 140/s) exceeds "
        "the limit of 110000 (ASYNCFLOW_MAX_EXPECTED_REQUESTS)"
    }


def test_samples_count_every_sampled_series_of_every_component() -> None:
    data = scenario_data(servers=2, horizon=1000, sample_period_s=0.01)
    scenario = parse_scenario(data)
    # 3 server metrics x 2 servers + 1 edge metric x 6 edges.
    assert sampled_series_count(scenario) == 12
    assert messages(data, max_samples=1_200_000) == {}

    found = messages(data, max_samples=1_199_999)

    assert found["sim_settings.sample_period_s"] == (
        "1200000 samples (100000 ticks x 12 series) exceeds the limit of 1199999 "
        "(ASYNCFLOW_MAX_SAMPLES)"
    )


def test_fewer_enabled_metrics_mean_fewer_samples() -> None:
    data = scenario_data(servers=2, enabled_sample_metrics=["ram_in_use"])
    assert sampled_series_count(parse_scenario(data)) == 2


@pytest.mark.parametrize(
    ("limit", "path", "message"),
    [
        (
            "max_nodes",
            "topology_graph.nodes",
            "5 nodes exceeds the limit of 4 (ASYNCFLOW_MAX_NODES)",
        ),
        (
            "max_edges",
            "topology_graph.edges",
            "8 edges exceeds the limit of 4 (ASYNCFLOW_MAX_EDGES)",
        ),
        (
            "max_endpoints",
            "topology_graph.nodes.servers",
            "3 endpoints exceeds the limit of 2 (ASYNCFLOW_MAX_ENDPOINTS)",
        ),
        (
            "max_steps",
            "topology_graph.nodes.servers",
            "6 steps exceeds the limit of 5 (ASYNCFLOW_MAX_STEPS)",
        ),
    ],
)
def test_structure_limits_point_at_the_part_that_is_too_big(
    limit: str, path: str, message: str
) -> None:
    data = scenario_data(servers=3)  # client + lb + 3 servers; 8 edges; 3 endpoints; 6 steps
    allowed = {"max_nodes": 4, "max_edges": 4, "max_endpoints": 2, "max_steps": 5}

    found = messages(data, **{limit: allowed[limit]})

    assert found == {path: message}


def test_too_many_events_are_reported_on_events() -> None:
    data = scenario_data(servers=2)
    data["events"] = [
        {
            "event_id": f"spike-{i}",
            "target_id": "client-lb",
            "start": {"kind": "network_spike_start", "t_start": 10 * i + 1, "spike_s": 0.01},
            "end": {"kind": "network_spike_end", "t_end": 10 * i + 5},
        }
        for i in range(3)
    ]

    assert messages(data, max_events=3) == {}
    assert messages(data, max_events=2) == {
        "events": "3 events exceeds the limit of 2 (ASYNCFLOW_MAX_EVENTS)"
    }


def test_every_exceeded_limit_is_reported_at_once() -> None:
    data = scenario_data(servers=3, horizon=90_000, users=1000)

    found = messages(data, max_nodes=2, max_edges=2)

    assert set(found) == {
        "topology_graph.nodes",
        "topology_graph.edges",
        "sim_settings.total_simulation_time",
        "rqs_input",
        "sim_settings.sample_period_s",
        "sim_settings",
    }


def _run(data: dict[str, Any]) -> int:
    from asyncflow_backend.runtime.runner import SimulationRunner

    return SimulationRunner(parse_scenario(data), seed=3).run().meta.events_processed


@pytest.mark.parametrize(
    "metrics",
    [[], ["ready_queue_len"], ["ready_queue_len", "edge_concurrent_connection"]],
    ids=["no-metric", "one-metric", "two-metrics"],
)
def test_the_count_of_scheduled_events_bounds_what_the_engine_schedules(
    metrics: list[str],
) -> None:
    data = scenario_data(
        servers=2, horizon=60, users=5, sample_period_s=0.01, enabled_sample_metrics=metrics
    )
    data["events"] = [
        {
            "event_id": "spike",
            "target_id": "client-lb",
            "start": {"kind": "network_spike_start", "t_start": 10, "spike_s": 0.01},
            "end": {"kind": "network_spike_end", "t_end": 20},
        }
    ]
    counted = scheduled_events(parse_scenario(data))

    processed = _run(data)

    # 5 users x 1/s x 60 s = 300 requests of 2 + 3 edges + 2 steps = 7 events each.
    assert counted.per_request == 7
    assert counted.sampler_ticks == (6000 if metrics else 0)
    assert counted.generator_windows == 1
    assert counted.injections == 2
    # The count uses the peak rate; with an exact user count that is the mean rate, which
    # a Poisson stream of 300 arrivals exceeds by a few standard deviations at most.
    assert 0.5 * counted.total <= processed <= 1.2 * counted.total


def test_without_sampled_metrics_the_sampler_schedules_nothing() -> None:
    # The 1 ms period over the horizon would be 600,000 ticks reading nothing.
    data = scenario_data(horizon=600, users=0.1, sample_period_s=0.001, enabled_sample_metrics=[])

    assert scheduled_events(parse_scenario(data)).sampler_ticks == 0
    assert _run(data) < 2_000


def test_events_per_request_follow_the_longest_route() -> None:
    data = scenario_data(servers=2)
    slow = data["topology_graph"]["nodes"]["servers"][1]["endpoints"]
    slow.append(
        {
            "endpoint_name": "/long",
            "steps": [{"kind": "io_wait", "step_operation": {"io_waiting_time": 0.01}}] * 5
            + [{"kind": "ram", "step_operation": {"necessary_ram": 10}}],
        }
    )

    # Arrival, gen-client, client-lb, lb-srv, five I/O steps, srv-client; RAM costs no event.
    assert events_per_request(parse_scenario(data)) == 10


def test_scheduled_events_over_the_limit_name_every_source_and_the_variable() -> None:
    data = scenario_data(horizon=1000, users=10, rpm=60, sample_period_s=0.1)

    assert messages(data, max_scheduled_events=200_000) == {}
    found = messages(data, max_scheduled_events=50_000)

    message = found["sim_settings"]
    assert message.startswith("80017 scheduled events (10000 requests x 7 events each")
    assert "10000 sampler ticks" in message
    assert message.endswith("exceeds the limit of 50000 (ASYNCFLOW_MAX_SCHEDULED_EVENTS)")


def test_a_huge_horizon_is_printed_readably() -> None:
    data = scenario_data(horizon=31_536_000, users=0.001)

    found = messages(data)

    assert found["sim_settings.total_simulation_time"] == (
        "horizon 31536000 s exceeds the limit of 86400 s (ASYNCFLOW_MAX_HORIZON_S)"
    )
    assert all(len(message) < 400 for message in found.values())


def test_events_per_request_count_calls_and_cache_misses() -> None:
    data = scenario_data(servers=2)
    nodes = data["topology_graph"]["nodes"]
    wait = io(0.01, kind="io_wait")
    lookup = cache(0.9, hit=[wait], miss=[call("db"), wait])
    nodes["servers"][0]["endpoints"] = [endpoint("/", lookup)]
    nodes["servers"].append(server("db", wait, wait, endpoint_name="/q"))
    data["topology_graph"]["edges"] += route("srv-0", "db", "srv-0", dropout=None)
    scenario = parse_scenario(data)

    # Arrival, gen-client, client-lb, lb-srv-0, then the miss: two edges and the db's two
    # steps for the call, one I/O step; srv-0-client.
    assert events_per_request(scenario) == 4 + (2 + 2) + 1 + 1
    SimulationRunner(scenario)  # a valid scenario


def test_events_per_request_count_the_timers_of_timeouts() -> None:
    data = scenario_data(servers=2)
    plain = events_per_request(parse_scenario(data))
    data["rqs_input"]["timeout_s"] = 0.5
    nodes = data["topology_graph"]["nodes"]
    nodes["servers"].append(server("db", io(0.01, kind="io_wait"), endpoint_name="/q"))
    for caller in nodes["servers"][:2]:
        caller["endpoints"][0]["steps"].append(call("db", timeout_s=0.1))
        data["topology_graph"]["edges"] += route(caller["id"], "db", caller["id"], dropout=None)

    # The client's timer, then per request the call's timer, its two edges and the db's step.
    assert events_per_request(parse_scenario(data)) == plain + 1 + (1 + 2 + 1)


def test_a_call_through_a_balancer_counts_the_edge_to_it() -> None:
    document = yaml.safe_load((EXAMPLES / "tiers.yml").read_text(encoding="utf-8"))
    document["sim_settings"]["total_simulation_time"] = 10
    scenario = parse_scenario(document)

    # Arrival, gen-client, client-edge-lb, edge-lb-api, the parse, the miss (api-db-lb,
    # db-lb-db, the query, db-api), the render, api-client.
    assert events_per_request(scenario) == 4 + 1 + (3 + 1) + 1 + 1
    processed = _run(document)
    assert processed <= scheduled_events(scenario).total


def test_failures_and_repairs_are_counted_per_cycle_and_bound_what_the_engine_schedules() -> None:
    # Nearly no requests: what the engine schedules is the failures and repairs.
    data = scenario_data(servers=2, horizon=600, users=0.01, enabled_sample_metrics=[])
    for srv in data["topology_graph"]["nodes"]["servers"]:
        srv["failures"] = {
            "time_to_failure": {"mean": 0.2, "distribution": "exponential"},
            "time_to_repair": {"mean": 0.1, "distribution": "exponential"},
        }
    counted = scheduled_events(parse_scenario(data))

    # Two servers x 600 s / 0.3 s per cycle x a failure and a repair.
    assert counted.failures == 2 * 2 * 2000
    processed = _run(data)
    assert 0.8 * counted.total <= processed <= 1.2 * counted.total
    found = messages(data, max_scheduled_events=1000)
    assert "8000 failures and repairs" in found["sim_settings"]


def retry_pile_up(on_timeout: str = "keep_working", attempts: int = 70) -> dict[str, Any]:
    """55 requests/s for an hour, a 10 ms client timeout and `attempts` attempts: 97 M
    scheduled events at 70, just under the limit."""
    data = scenario_data(horizon=3600, users=55, rpm=60)
    data["rqs_input"] |= {
        "timeout_s": 0.01,
        "on_timeout": on_timeout,
        "retry": {"max_attempts": attempts, "retry_on": ["timed_out"]},
    }
    return data


def test_retried_attempts_that_keep_working_count_against_the_expected_requests() -> None:
    # Just under the event cap, but every late attempt stays in memory: ~4 GB.
    scenario = parse_scenario(retry_pile_up())
    assert scheduled_events(scenario).total < ScenarioLimits().max_scheduled_events

    problems = check_limits(scenario, ScenarioLimits())

    assert [p.path for p in problems] == ["rqs_input.retry.max_attempts"]
    message = problems[0].message
    assert "13860000 expected requests and late attempts (198000 requests, up to 70" in message
    assert "(ASYNCFLOW_MAX_EXPECTED_REQUESTS)" in message


@pytest.mark.parametrize(
    "data",
    [retry_pile_up(on_timeout="cancel"), retry_pile_up(attempts=2)],
    ids=["cancelled attempts end", "few attempts"],
)
def test_attempts_that_cannot_pile_up_past_the_limit_pass(data: dict[str, Any]) -> None:
    assert check_limits(parse_scenario(data), ScenarioLimits()) == []


def call_retry_pile_up(
    on_timeout: str = "keep_working",
    attempts: int = 100,
    retry_on: tuple[str, ...] = ("timed_out",),
) -> dict[str, Any]:
    """25 requests/s for an hour; the server calls a database with a 1 ms timeout and
    `attempts` attempts, whose answers take 10 ms: 46 M scheduled events at 100 attempts,
    under the cap."""
    data = scenario_data(horizon=3600, users=25, rpm=60)
    nodes = data["topology_graph"]["nodes"]
    nodes["servers"].append(server("db", io(0.01, kind="io_wait"), endpoint_name="/q"))
    retry = {"max_attempts": attempts, "retry_on": list(retry_on)}
    step = call("db", timeout_s=0.001, on_timeout=on_timeout, retry=retry)
    nodes["servers"][0]["endpoints"][0]["steps"].append(step)
    data["topology_graph"]["edges"] += route("srv-0", "db", "srv-0", dropout=None)
    return data


def test_a_call_steps_retried_sub_requests_that_keep_working_count_against_the_limit() -> None:
    # Every timed-out sub-request is sent again while the database keeps working on it:
    # 90,000 requests, each with up to 100 sub-requests alive at once: the request and
    # 99 late attempts.
    scenario = parse_scenario(call_retry_pile_up())
    assert scheduled_events(scenario).total < ScenarioLimits().max_scheduled_events

    problems = check_limits(scenario, ScenarioLimits())

    path = "topology_graph.nodes.servers[0].endpoints[0].steps[2].retry.max_attempts"
    assert [p.path for p in problems] == [path]
    message = problems[0].message
    assert message.startswith("9000000 expected requests and late attempts (90000 requests")
    assert "up to 100 attempts" in message
    assert "(ASYNCFLOW_MAX_EXPECTED_REQUESTS)" in message


@pytest.mark.parametrize(
    "data",
    [
        call_retry_pile_up(on_timeout="cancel"),
        call_retry_pile_up(attempts=2),
        call_retry_pile_up(retry_on=("failed", "dropped")),
    ],
    ids=["cancelled sub-requests end", "few attempts", "timeouts not retried"],
)
def test_call_attempts_that_cannot_pile_up_past_the_limit_pass(data: dict[str, Any]) -> None:
    assert check_limits(parse_scenario(data), ScenarioLimits()) == []


def test_late_attempts_of_the_client_and_of_a_call_multiply() -> None:
    # Each of the client's 5 attempts alive drives its own call, with 3 sub-requests alive.
    data = call_retry_pile_up(attempts=3)
    data["rqs_input"] |= {
        "timeout_s": 0.002,
        "retry": {"max_attempts": 5, "retry_on": ["timed_out"]},
    }

    found = messages(data, max_expected_requests=1_000_000)

    # 90,000 requests x 5 client attempts x (the attempt + 2 late sub-requests); the
    # client keeps more attempts alive than the call, so its retry policy is named.
    assert found["rqs_input.retry.max_attempts"].startswith(
        "1350000 expected requests and late attempts (90000 requests"
    )
    assert messages(data, max_expected_requests=1_350_000) == {}


def test_scheduled_events_count_every_attempt_of_a_call_late_or_not() -> None:
    # A late sub-request still crosses both edges and runs the database's step.
    data = call_retry_pile_up(attempts=3)
    data["sim_settings"]["total_simulation_time"] = 20
    scenario = parse_scenario(data)
    plain = events_per_request(parse_scenario(scenario_data()))

    # Per attempt the call's timer, two edges and the db's step; a backoff per retry.
    assert events_per_request(scenario) == plain + 3 * (1 + 2 + 1) + 2
    # Every call times out (1 ms against 10 ms of I/O), so every attempt is sent.
    counted = scheduled_events(scenario).total
    assert 0.8 * counted <= _run(data) <= counted
