"""Capacity schedules: a server's cores change at set times; utilisation counts the cores it had."""

from typing import Any

import pytest

from asyncflow_backend.builder import ScenarioBuilder, exponential
from asyncflow_backend.resources import CoreSet
from asyncflow_backend.runtime.runner import run_scenario
from asyncflow_backend.schemas import ScenarioValidationError, parse_scenario
from asyncflow_backend.schemas.warnings import find_warnings
from support.scenarios import api_calling_db, cpu_station


def one_server(
    rate: float = 50, cpu_s: float = 0.01, horizon: float = 60, **server: Any
) -> ScenarioBuilder:
    """Poisson `rate`/s into one server of exponential `cpu_s` of CPU, at seed 11."""
    return cpu_station(
        rate=rate,
        cpu=exponential(cpu_s),
        horizon_s=horizon,
        seed=11,
        sample_metrics=["ready_queue_len"],
        **server,
    )


def test_added_cores_are_granted_to_the_waiters_at_once() -> None:
    cores: CoreSet[str] = CoreSet(1)
    granted: list[str] = []
    for holder in "abc":
        cores.request(holder, granted.append)

    cores.set_capacity(3)

    assert granted == ["a", "b", "c"]
    assert (cores.busy, cores.free, cores.queued) == (3, 0, 0)


def test_cores_taken_away_stay_with_their_holders_until_released() -> None:
    cores: CoreSet[str] = CoreSet(3)
    granted: list[str] = []
    for holder in "abcd":
        cores.request(holder, granted.append)

    cores.set_capacity(1)
    assert (cores.busy, cores.free) == (3, -2)
    cores.release()
    cores.release()
    assert granted == ["a", "b", "c"]  # still two held for one core: nobody is granted
    cores.release()
    assert granted == ["a", "b", "c", "d"]
    assert (cores.busy, cores.free, cores.queued) == (1, 0, 0)


def test_a_schedule_giving_the_same_cores_from_the_start_changes_nothing() -> None:
    plain = run_scenario(one_server(cores=2).build())
    scheduled = run_scenario(one_server(cores=1, cores_at={0: 2}).build())

    assert scheduled.latency == plain.latency
    assert scheduled.requests == plain.requests
    assert scheduled.servers["srv"].cpu_utilisation == plain.servers["srv"].cpu_utilisation
    assert scheduled.servers["srv"].mean_cores == 2
    assert scheduled.servers["srv"].cores == 1  # as written in server_resources


def test_a_server_with_no_core_for_a_while_lets_requests_wait_then_catches_up() -> None:
    # 50 requests/s of 10 ms: with no core from 20 s to 30 s nothing completes there,
    # about 500 requests queue, and two cores clear them after.
    results = run_scenario(one_server(cores=1, horizon=60, cores_at={20: 0, 30: 2}).build())
    per_second = results.throughput.per_second

    assert sum(per_second[21:30]) == 0
    assert 40 <= sum(per_second[10:20]) / 10 <= 60
    assert results.servers["srv"].ready_queue_max == pytest.approx(500, rel=0.15)
    assert sum(per_second[30:40]) / 10 > 60  # the backlog drains faster than it arrives
    assert results.servers["srv"].mean_cores == pytest.approx((20 * 1 + 30 * 2) / 60)
    # Busy core-seconds over the core-seconds it had, not over 1 core x 60 s.
    expected = results.requests.completed * 0.01 / (20 + 60)
    assert results.servers["srv"].cpu_utilisation == pytest.approx(expected, rel=0.1)


def test_changes_must_come_in_time_order() -> None:
    document = one_server(cores_at={5: 2}).to_dict()
    document["topology_graph"]["nodes"]["servers"][0]["capacity_schedule"] = [
        {"at_s": 10, "cpu_cores": 2},
        {"at_s": 10, "cpu_cores": 1},
    ]
    with pytest.raises(ScenarioValidationError) as refused:
        parse_scenario(document)
    assert "topology_graph.nodes.servers[0].capacity_schedule" in str(refused.value)
    assert "increasing at_s" in str(refused.value)


@pytest.mark.parametrize(
    ("change", "field"),
    [({"at_s": -1, "cpu_cores": 1}, "at_s"), ({"at_s": 1, "cpu_cores": -1}, "cpu_cores")],
)
def test_a_change_needs_a_time_and_a_core_count_not_below_zero(
    change: dict[str, float], field: str
) -> None:
    document = one_server().to_dict()
    document["topology_graph"]["nodes"]["servers"][0]["capacity_schedule"] = [change]
    with pytest.raises(ScenarioValidationError) as refused:
        parse_scenario(document)
    assert f"servers[0].capacity_schedule[0].{field}" in str(refused.value)


def test_a_change_past_the_end_and_a_stretch_short_of_cores_are_warned_of() -> None:
    # 50/s x 30 ms = 1.5 core-seconds of work per second.
    scenario = one_server(cpu_s=0.03, cores=2, horizon=60, cores_at={10: 1, 20: 3, 60: 1}).build()
    warnings = {w.path: w.message for w in find_warnings(scenario)}

    short = warnings["topology_graph.nodes.servers[0].capacity_schedule[0].cpu_cores"]
    assert "1 core(s) from 10 s" in short
    assert "never happens" in warnings["topology_graph.nodes.servers[0].capacity_schedule[2].at_s"]
    assert not any(".capacity_schedule[1]" in path for path in warnings)


def db_scaled_down(pool: int | None) -> ScenarioBuilder:
    """Poisson 150/s into `api` (2 cores, 1 ms of CPU), which calls `db` holding one of its
    `pool` connections (no pool if None); `db` runs exponential 10 ms of CPU on 2 cores,
    1 from 10 s on: 1.5 core-seconds of work per second for one core, for 30 s."""
    api: dict[str, Any] = {"cores": 2} if pool is None else {"cores": 2, "db_pool": pool}
    held = {} if pool is None else {"pool": "db"}
    builder = api_calling_db(
        rate=150,
        db_cpu_s=exponential(0.01),
        api_options=api,
        db_options={"cores": 2, "cores_at": {10: 1}},
        horizon_s=40,
        **held,
    )
    return builder.settings(sample_metrics=["ready_queue_len", "pool_waiting"]).seed(11)


SCALED_DOWN = "topology_graph.nodes.servers[1].capacity_schedule[0].cpu_cores"


def test_a_stretch_short_of_cores_behind_a_callers_pool_blames_the_pool() -> None:
    # At most 4 queries are ever at the database: the callers hold a connection each
    # while they wait, so the backlog is the API's requests waiting for a connection.
    builder = db_scaled_down(pool=4)
    warnings = {w.path: w.message for w in find_warnings(builder.build())}

    assert warnings[SCALED_DOWN] == (
        "server 'db' is offered 1.5 core-seconds of CPU work per second; with 1 core(s) from "
        "10 s the requests waiting for a connection of pool 'db' of server 'api' grow for as "
        "long as the change lasts; its ready queue stays bounded, since those connections cap "
        "the requests that reach it"
    )
    results = run_scenario(builder.build())
    assert results.servers["db"].ready_queue_max <= 4
    assert results.pools["api:db"].waiting_max > 1000


def test_a_stretch_short_of_cores_without_a_pool_blames_the_ready_queue() -> None:
    builder = db_scaled_down(pool=None)
    warnings = {w.path: w.message for w in find_warnings(builder.build())}

    assert warnings[SCALED_DOWN] == (
        "server 'db' is offered 1.5 core-seconds of CPU work per second; with 1 core(s) from "
        "10 s its ready queue grows for as long as the change lasts"
    )
    results = run_scenario(builder.build())
    assert results.servers["db"].ready_queue_max > 1000


def test_the_backlog_moves_up_a_chain_of_pooled_calls() -> None:
    # api holds a `svc` connection while mid works, and mid a `db` one while db works:
    # mid's requests all come through `svc`, so api's requests are the ones that wait.
    link = exponential(0.001)
    scenario = (
        ScenarioBuilder()
        .generator("gen", users=150, rpm=60)
        .client("client")
        .server("api", pools={"svc": 4})
        .endpoint("/api")
        .call("mid", pool="svc")
        .server("mid", db_pool=3)
        .endpoint("/m")
        .call("db", pool="db")
        .server("db", cores=2, cores_at={10: 1})
        .endpoint("/q")
        .cpu(0.01)
        .chain("gen", "client", "api", "client", latency=link, dropout=0.0)
        .chain("api", "mid", "api", latency=link, dropout=0.0)
        .chain("mid", "db", "mid", latency=link, dropout=0.0)
        .settings(horizon=40)
        .build()
    )
    warnings = {w.path: w.message for w in find_warnings(scenario)}

    message = warnings["topology_graph.nodes.servers[2].capacity_schedule[0].cpu_cores"]
    assert "the requests waiting for a connection of pool 'svc' of server 'api' grow" in message
