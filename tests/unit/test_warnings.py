"""Warnings: legal input that is almost never meant gets a located warning, and still runs.

Each warning names the field by its path, like a problem, and says what the
engine will do with the input as written.
"""

from pathlib import Path
from typing import Any

import pytest
import yaml

from asyncflow_backend.config.constants import LoadBalancerAlgorithm
from asyncflow_backend.schemas import parse_scenario
from asyncflow_backend.schemas.warnings import find_warnings
from support.documents import (
    cache,
    call,
    cpu,
    edge,
    endpoint,
    exponential,
    io,
    poisson_arrivals,
    route,
    server,
)
from support.topologies import balanced, direct

EXAMPLES = Path(__file__).parents[2] / "example"
LINK = exponential(0.001)
"""The latency of every edge; the edges drop nothing."""
Mix = float | list[tuple[float, float]]


def cpu_server(sid: str, cpu_s: Mix, cores: int = 1) -> dict[str, Any]:
    """A server whose endpoints cost `cpu_s` seconds, or (weight, seconds) per endpoint,
    each followed by 50 ms of database I/O."""
    mix = [(None, cpu_s)] if isinstance(cpu_s, float) else cpu_s
    endpoints = [
        endpoint(f"/e{i}", cpu(seconds), io(0.05), probability=weight)
        for i, (weight, seconds) in enumerate(mix)
    ]
    return server(sid, endpoints=endpoints, cpu_cores=cores)


def single(rate: float, cpu_s: Mix, cores: int = 1) -> dict[str, Any]:
    """gen -> client -> srv -> client at `rate` requests/s, without losses."""
    return direct(
        poisson_arrivals(rate), [cpu_server("srv", cpu_s, cores)], horizon_s=60, latency=LINK
    )


def behind_balancer(rate: float, cpus: list[float], algorithm: str) -> dict[str, Any]:
    """`rate` requests/s over an `algorithm` balancer to servers srv-0, srv-1, ... of `cpus`."""
    servers = [cpu_server(f"srv-{i}", seconds) for i, seconds in enumerate(cpus)]
    return balanced(
        poisson_arrivals(rate), servers, horizon_s=60, algorithm=algorithm, latency=LINK
    )


def warned(data: dict[str, Any]) -> dict[str, str]:
    return {w.path: w.message for w in find_warnings(parse_scenario(data))}


def test_a_lossless_scenario_within_capacity_has_no_warning() -> None:
    assert warned(single(rate=50, cpu_s=0.01)) == {}


# durations without a distribution


def test_an_edge_latency_without_a_distribution_is_a_warning_naming_it() -> None:
    data = single(rate=50, cpu_s=0.01)
    data["topology_graph"]["edges"][1]["latency"] = {"mean": 0.002}

    found = warned(data)

    message = found["topology_graph.edges[1].latency"]
    assert message.startswith("edge 'client-srv': no distribution given, so this duration is ")
    assert "Poisson with mean 0.002 s" in message
    assert "whole number of seconds, 100% of them 0 s" in message
    assert "distribution: exponential" in message


def test_an_explicit_poisson_latency_is_what_was_asked_for() -> None:
    data = single(rate=50, cpu_s=0.01)
    data["topology_graph"]["edges"][1]["latency"] = {"mean": 0.002, "distribution": "poisson"}

    assert warned(data) == {}


def test_a_random_step_duration_without_a_distribution_is_a_warning_too() -> None:
    data = single(rate=50, cpu_s=0.01)
    steps = data["topology_graph"]["nodes"]["servers"][0]["endpoints"][0]["steps"]
    steps[1]["step_operation"] = {"io_waiting_time": {"mean": 0.05}}

    found = warned(data)

    path = "topology_graph.nodes.servers[0].endpoints[0].steps[1].step_operation.io_waiting_time"
    assert "Poisson with mean 0.05 s" in found[path]
    assert "95% of them 0 s" in found[path]


# distributions clipped at zero


def test_a_uniform_clipped_enough_to_move_its_mean_is_a_warning_naming_it() -> None:
    data = single(rate=50, cpu_s=0.01)
    data["topology_graph"]["edges"][1]["latency"] = {
        "mean": 1.0,
        "distribution": "uniform",
        "variance": 3.0,
    }

    message = warned(data)["topology_graph.edges[1].latency"]

    # Uniform on [-2, 4] clipped at 0: 1/3 of the draws are 0, and they average 16 / 12.
    assert "uniform with mean 1 and variance 3 is below 0 for 33% of its draws" in message
    assert "average 1.33 instead of 1 (+33%)" in message
    assert "log_normal" in message


@pytest.mark.parametrize(("variance", "warns"), [(0.30, False), (0.36, True)])
def test_a_normal_step_is_warned_about_once_clipping_raises_its_mean_by_one_percent(
    variance: float, warns: bool
) -> None:
    # Mean 1: clipping raises the mean by 0.73% at variance 0.30 and by 1.19% at 0.36.
    data = single(rate=50, cpu_s=0.001)
    steps = data["topology_graph"]["nodes"]["servers"][0]["endpoints"][0]["steps"]
    step = {"mean": 1.0, "distribution": "normal", "variance": variance}
    steps[1]["step_operation"] = {"io_waiting_time": step}

    found = warned(data)

    path = "topology_graph.nodes.servers[0].endpoints[0].steps[1].step_operation.io_waiting_time"
    assert (path in found) is warns
    assert len(found) == int(warns)


def test_a_uniform_that_stays_non_negative_is_not_clipped() -> None:
    data = single(rate=50, cpu_s=0.01)
    data["topology_graph"]["edges"][1]["latency"] = {
        "mean": 1.0,
        "distribution": "uniform",
        "variance": 1 / 3,
    }
    data["topology_graph"]["edges"][2]["latency"] = {"mean": 1.0, "distribution": "uniform"}

    assert warned(data) == {}


# the default dropout


def test_dropout_left_at_its_default_on_every_edge_is_one_warning() -> None:
    data = single(rate=50, cpu_s=0.01)
    for each in data["topology_graph"]["edges"]:
        del each["dropout_rate"]

    found = warned(data)

    assert list(found) == ["topology_graph.edges"]
    assert "every edge drops 1% of the requests" in found["topology_graph.edges"]
    assert (
        "about 3.0% of the requests are lost on a route of 3 edges" in found["topology_graph.edges"]
    )


def test_one_edge_with_a_dropout_rate_shows_dropout_was_considered() -> None:
    data = single(rate=50, cpu_s=0.01)
    for each in data["topology_graph"]["edges"][1:]:
        del each["dropout_rate"]

    assert warned(data) == {}


# utilisation over 100%


def test_a_server_offered_more_cpu_work_than_its_cores_is_a_warning() -> None:
    # 100 requests/s x 12 ms = 1.2 core-seconds per second on one core.
    found = warned(single(rate=100, cpu_s=0.012))

    assert found == {
        "topology_graph.nodes.servers[0]": "server 'srv' is offered 1.2 core-seconds of CPU "
        "work per second (100 requests/s) for 1 core(s): utilisation 120%, above 100%, so "
        "its ready queue grows without bound"
    }


def test_more_cores_bring_the_utilisation_under_100_percent() -> None:
    assert warned(single(rate=100, cpu_s=0.012, cores=2)) == {}


def test_utilisation_weighs_the_endpoint_mix() -> None:
    # 100/s x (0.75 x 4 ms + 0.25 x 40 ms) = 1.3; an equal mix would give 2.2.
    found = warned(single(rate=100, cpu_s=[(3.0, 0.004), (1.0, 0.04)]))

    assert "offered 1.3 core-seconds" in found["topology_graph.nodes.servers[0]"]
    assert warned(single(rate=100, cpu_s=[(9.0, 0.004), (1.0, 0.04)])) == {}  # 0.76


def test_utilisation_counts_the_requests_lost_before_the_server() -> None:
    data = single(rate=100, cpu_s=0.0105)  # 105% without losses
    data["topology_graph"]["edges"][1]["dropout_rate"] = 0.1  # 90 requests/s reach it: 94.5%

    assert warned(data) == {}


@pytest.mark.parametrize("policy", ["round_robin", "random"])
def test_round_robin_and_random_split_the_arrivals_evenly(policy: str) -> None:
    # 150/s dealt over three servers: 50/s each; only the 25 ms one is over (125%).
    found = warned(behind_balancer(150, [0.01, 0.025, 0.01], policy))

    assert list(found) == ["topology_graph.nodes.servers[1]"]
    assert "utilisation 125%" in found["topology_graph.nodes.servers[1]"]


@pytest.mark.parametrize("policy", [a.value for a in LoadBalancerAlgorithm if a.reads_load])
def test_adaptive_balancers_are_checked_over_their_pool_of_servers(policy: str) -> None:
    # They send less to the slow server: 150/s x mean 15 ms over 3 cores is 75%, no warning.
    assert warned(behind_balancer(150, [0.01, 0.025, 0.01], policy)) == {}

    found = warned(behind_balancer(300, [0.01, 0.025, 0.01], policy))

    assert list(found) == ["topology_graph.nodes.load_balancer"]
    assert "offered 4.5 core-seconds" in found["topology_graph.nodes.load_balancer"]
    assert "for 3 cores: utilisation 150%" in found["topology_graph.nodes.load_balancer"]


def test_weighted_round_robin_splits_by_weight() -> None:
    data = behind_balancer(200, [0.008, 0.008], "weighted_round_robin")
    assert warned(data) == {}  # 100/s each: 80%

    data["topology_graph"]["nodes"]["load_balancer"]["weights"] = {"srv-0": 3}
    found = warned(data)

    # srv-0 gets 3/4 of 200/s: 150/s x 8 ms = 120%; srv-1 50/s, 40%.
    assert list(found) == ["topology_graph.nodes.servers[0]"]
    assert "(150 requests/s)" in found["topology_graph.nodes.servers[0]"]


def test_a_connection_pool_offered_more_than_its_size_is_a_warning() -> None:
    data = single(rate=50, cpu_s=0.001)
    server = data["topology_graph"]["nodes"]["servers"][0]
    server["server_resources"] |= {"db_connection_pool": 2, "connection_pools": {"pay": 1}}
    steps = server["endpoints"][0]["steps"]
    steps[1]["kind"] = "io_db"  # holds `db` for 50 ms: 50/s x 0.05 s = 2.5 for 2
    steps.append(io(0.01, kind="io_wait", pool="pay"))

    found = warned(data)

    resources = "topology_graph.nodes.servers[0].server_resources"
    assert list(found) == [f"{resources}.db_connection_pool"]
    assert found[f"{resources}.db_connection_pool"] == (
        "pool 'db' of server 'srv' is offered 2.5 connection-seconds per second for 2 "
        "connection(s): utilisation 125%, above 100%, so the requests waiting for a "
        "connection grow without bound"
    )
    steps[-1]["step_operation"]["io_waiting_time"] = 0.03  # 1.5 for 1
    assert f"{resources}.connection_pools.pay" in warned(data)


def test_warnings_never_refuse_a_scenario() -> None:
    data = single(rate=1000, cpu_s=0.5)
    data["topology_graph"]["edges"][0]["latency"] = {"mean": 0.002}
    for each in data["topology_graph"]["edges"]:
        del each["dropout_rate"]

    scenario = parse_scenario(data)

    assert len(find_warnings(scenario)) == 3


@pytest.mark.parametrize(
    "path", sorted(EXAMPLES.glob("*.y*ml")), ids=lambda p: p.name if isinstance(p, Path) else p
)
def test_the_examples_warn_only_about_what_they_document(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    found = warned(yaml.safe_load(text))

    # An overload on purpose (the slowdown of a retry storm) is said in the file.
    slowdowns = [loc for loc in found if ".capacity_schedule[" in loc]
    if slowdowns:
        assert "`asyncflow validate` warns" in text
    dropout = [loc for loc in found if loc not in slowdowns]
    if dropout:
        assert dropout == ["topology_graph.edges"]
        assert "default" in text.lower()
        assert "dropout" in text.lower()


def test_the_quickstart_says_it_drops_3_percent() -> None:
    text = (EXAMPLES / "quickstart.yml").read_text(encoding="utf-8")

    found = warned(yaml.safe_load(text))

    assert "about 3.0% of the requests are lost" in found["topology_graph.edges"]
    assert "3%" in text


def test_a_concurrency_cap_under_the_cores_leaves_cores_idle() -> None:
    data = single(rate=50, cpu_s=0.01, cores=4)
    data["topology_graph"]["nodes"]["servers"][0]["admission"] = {"max_concurrency": 3}

    found = warned(data)

    path = "topology_graph.nodes.servers[0].admission.max_concurrency"
    assert found == {path: found[path]}
    assert "'srv'" in found[path]
    assert "1 of them can never be busy" in found[path]
    data["topology_graph"]["nodes"]["servers"][0]["admission"] = {"max_concurrency": 4}
    assert warned(data) == {}


# utilisation through calls


def calling(
    rate: float, steps: list[dict[str, Any]], called: list[dict[str, Any]]
) -> dict[str, Any]:
    """`api` (1 ms of CPU, then `steps`) at `rate` requests/s, calling the `called` servers
    over lossless edges both ways."""
    api = cpu_server("api", 0.001)
    api["endpoints"][0]["steps"] += steps
    edges = [e for target in called for e in route("api", target["id"], "api", latency=LINK)]
    return direct(poisson_arrivals(rate), [api, *called], horizon_s=60, latency=LINK, edges=edges)


def test_a_server_overloaded_by_calls_is_a_warning_saying_so() -> None:
    # 100 requests/s, each calling db once: 100/s x 12 ms = 120% of its core.
    found = warned(calling(100, [call("db")], [cpu_server("db", 0.012)]))

    assert list(found) == ["topology_graph.nodes.servers[1]"]
    assert "server 'db' is offered 1.2 core-seconds" in found["topology_graph.nodes.servers[1]"]
    assert "(100 requests/s, 100 of them by calls)" in found["topology_graph.nodes.servers[1]"]
    assert warned(calling(80, [call("db")], [cpu_server("db", 0.012)])) == {}  # 96%


def pooled_calls(
    rate: float, before: tuple[dict[str, Any], ...] = (), after: tuple[dict[str, Any], ...] = ()
) -> dict[str, Any]:
    """`calling`: api runs the steps `before`, calls db (12 ms of CPU on one core) holding
    one of the 8 connections of its pool `dbc`, then runs the steps `after`."""
    steps = [*before, call("db", pool="dbc"), *after]
    data = calling(rate, steps, [cpu_server("db", 0.012)])
    data["topology_graph"]["nodes"]["servers"][0]["server_resources"]["connection_pools"] = {
        "dbc": 8
    }
    return data


POOL_GROWS = "the requests waiting for a connection of pool 'dbc' of server 'api' grow"


def test_a_server_overloaded_through_its_callers_pool_names_the_pool_where_requests_wait() -> None:
    # 100/s x 12 ms = 120% of db's core, but db never holds more than the 8 queries of
    # api's connections: api's requests queue for a connection.
    found = warned(pooled_calls(100))

    assert found == {
        "topology_graph.nodes.servers[1]": "server 'db' is offered 1.2 core-seconds of CPU "
        "work per second (100 requests/s, 100 of them by calls) for 1 core(s): utilisation "
        f"120%, above 100%, so {POOL_GROWS} without bound; its ready queue stays bounded, "
        "since those connections cap the requests that reach it"
    }


@pytest.mark.parametrize(
    ("first", "grows"),
    [
        # A call without a pool before the pooled one: an open stream of 100/s x 12 ms,
        # 120% of db's core on its own, and the pooled calls wait behind it.
        (
            True,
            "its ready queue and the requests waiting for a connection of pool 'dbc' of "
            "server 'api' grow",
        ),
        # After the pooled call: requests get there only as fast as through the pool.
        (False, POOL_GROWS),
    ],
    ids=["open stream first", "after the pool"],
)
def test_a_call_without_a_pool_is_open_unless_a_pooled_call_to_its_node_came_first(
    first: bool, grows: str
) -> None:
    unpooled = (call("db"),)
    data = pooled_calls(100, before=unpooled) if first else pooled_calls(100, after=unpooled)

    message = warned(data)["topology_graph.nodes.servers[1]"]

    assert f"above 100%, so {grows} without bound" in message


@pytest.mark.parametrize("hit_ratio", [0.9, 0.2])
def test_an_open_stream_whose_own_work_fits_leaves_the_backlog_at_the_pool(
    hit_ratio: float,
) -> None:
    # 10% misses: 10/s x 12 ms, far from db's core; 80% misses: 80/s x 12 ms = 96% of
    # it. Either way the open queries alone fit, and the pooled ones wait at api.
    unpooled = cache(hit_ratio, hit=[io(0.001, kind="io_cache")], miss=[call("db")])

    message = warned(pooled_calls(100, before=(unpooled,)))["topology_graph.nodes.servers[1]"]

    assert f"above 100%, so {POOL_GROWS} without bound" in message


def test_cache_misses_thin_the_calls_and_weigh_the_cpu_of_their_branch() -> None:
    def cached(hit_ratio: float) -> dict[str, Any]:
        return cache(hit_ratio, hit=[io(0.001, kind="io_cache")], miss=[call("db"), cpu(0.004)])

    # 200/s: 20% misses are 40/s x 12 ms = 48% of db; the api runs 1 ms + 0.2 x 4 ms = 36%.
    assert warned(calling(200, [cached(0.8)], [cpu_server("db", 0.012)])) == {}
    # 10% hits: 180/s x 12 ms = 216% of db; the api 1 ms + 0.9 x 4 ms = 4.6 ms, 92%.
    found = warned(calling(200, [cached(0.1)], [cpu_server("db", 0.012)]))
    assert list(found) == ["topology_graph.nodes.servers[1]"]
    assert "(180 requests/s, 180 of them by calls)" in found["topology_graph.nodes.servers[1]"]
    # 250/s: the api itself runs 250 x 4.6 ms = 115% of its core in its miss branch.
    found = warned(calling(250, [cached(0.1)], [cpu_server("db", 0.012, cores=4)]))
    assert list(found) == ["topology_graph.nodes.servers[0]"]
    assert "utilisation 115%" in found["topology_graph.nodes.servers[0]"]


def test_calls_fan_out_and_chain_through_every_server_they_reach() -> None:
    # Each request calls a and b at once; a calls db: db gets the full 100/s.
    data = calling(
        100,
        [call("a", "b")],
        [cpu_server("a", 0.001), cpu_server("b", 0.011), cpu_server("db", 0.011)],
    )
    a = data["topology_graph"]["nodes"]["servers"][1]
    a["endpoints"][0]["steps"].append(call("db"))
    edges = data["topology_graph"]["edges"]
    edges[:] = [e for e in edges if e["id"] not in ("api-db", "db-api")]
    edges += [edge("a", "db", latency=LINK), edge("db", "a", latency=LINK)]
    found = warned(data)
    assert set(found) == {"topology_graph.nodes.servers[2]", "topology_graph.nodes.servers[3]"}
    assert "server 'db'" in found["topology_graph.nodes.servers[3]"]


def test_calls_to_an_internal_balancer_are_shared_out_and_thinned() -> None:
    data = calling(150, [call("db-lb")], [cpu_server("db-1", 0.014), cpu_server("db-2", 0.014)])
    data["topology_graph"]["nodes"]["load_balancers"] = [
        {"id": "db-lb", "server_covered": ["db-1", "db-2"]}
    ]
    edges = data["topology_graph"]["edges"]
    edges[:] = [e for e in edges if e["source"] != "api" or e["target"] == "client"]
    edges += [
        edge(*pair, latency=LINK)
        for pair in [("api", "db-lb"), ("db-lb", "db-1"), ("db-lb", "db-2")]
    ]
    # 75/s each x 14 ms = 105% of each replica.
    found = warned(data)
    assert set(found) == {"topology_graph.nodes.servers[1]", "topology_graph.nodes.servers[2]"}
    assert "utilisation 105%" in found["topology_graph.nodes.servers[1]"]
    # 10% lost on the way to one replica: it gets 67.5/s, 94.5%.
    edges[-2]["dropout_rate"] = 0.1
    assert list(warned(data)) == ["topology_graph.nodes.servers[2]"]


def test_the_default_dropout_counts_the_route_not_the_call_edges() -> None:
    data = calling(10, [call("db")], [cpu_server("db", 0.001)])
    edges = data["topology_graph"]["edges"]
    # The call edges first: a walk along the first edge out of each node would follow them.
    edges[:] = edges[3:] + edges[:3]
    for e in edges:
        del e["dropout_rate"]
    found = warned(data)
    assert "on a route of 3 edges" in found["topology_graph.edges"]
