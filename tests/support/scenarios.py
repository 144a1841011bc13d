"""Whole scenarios that several test files run, each call a fresh copy."""

import copy
from typing import Any

from asyncflow_backend.api.examples import SMALL_SCENARIO
from asyncflow_backend.builder import ScenarioBuilder, deterministic, exponential
from support.documents import (
    balancer,
    cpu,
    edge,
    generator,
    io,
    outage,
    ram,
    scenario_document,
    server,
    spike,
)


def small_scenario(
    *,
    horizon_s: float | None = None,
    sample_period_s: float | None = 0.1,
    users: float | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A deep copy of `SMALL_SCENARIO` (the API's example), as a JSON-ready dict.

    `horizon_s` replaces its `sim_settings` with that horizon, sampled every
    `sample_period_s` (None: the default period); `users` sets the mean number of
    active users; `fields` replace top-level fields (`events`, `name`, `seed`).
    """
    document: dict[str, Any] = copy.deepcopy(SMALL_SCENARIO)
    if horizon_s is not None:
        document["sim_settings"] = {"total_simulation_time": horizon_s}
        if sample_period_s is not None:
            document["sim_settings"]["sample_period_s"] = sample_period_s
    if users is not None:
        document["rqs_input"]["avg_active_users"]["mean"] = users
    return document | copy.deepcopy(fields)


def one_server_builder(seed: int | None = None) -> ScenarioBuilder:
    """gen -> client -> srv -> client over exponential 2 ms links for 20 s, sampled every
    50 ms: 20 users of 60 requests a minute; exponential 3 ms parsing, 64 MB, 10 ms of I/O."""
    builder = (
        ScenarioBuilder()
        .generator("gen", users=20, rpm=60)
        .client("client")
        .server("srv")
        .endpoint("/api")
        .parse(exponential(0.003))
        .ram(64)
        .io("io_db", 0.01)
        .chain("gen", "client", "srv", "client", latency=exponential(0.002))
        .settings(horizon=20, sample_period=0.05)
    )
    return builder.seed(seed) if seed is not None else builder


def api_calling_db(
    *,
    rate: float = 10,
    api_cpu_s: float | None = 0.001,
    db_cpu_s: Any = 0.002,
    db_options: dict[str, Any] | None = None,
    api_options: dict[str, Any] | None = None,
    call_dropout: float = 0.0,
    horizon_s: float = 30,
    **call: Any,
) -> ScenarioBuilder:
    """Poisson `rate` requests/s into `api`, which runs `api_cpu_s` of CPU (none if None)
    and calls `db` (`call`: `retry`, `circuit_breaker`, `timeout_s`, `pool`, ...); `db` runs
    `db_cpu_s` of CPU; `db_options` and `api_options` are the builder's server options of
    each (caps, cores, `cores_at`, pools).

    Links are fixed 1 ms delays that lose nothing, except api -> db, which loses
    `call_dropout` of the calls.
    """
    builder = (
        ScenarioBuilder()
        .generator("gen", users=deterministic(rate), rpm=60)
        .client("client")
        .server("api", **(api_options or {}))
        .endpoint("/api")
    )
    if api_cpu_s is not None:
        builder.cpu(api_cpu_s)
    link = deterministic(0.001)
    return (
        builder.call("db", **call)
        .server("db", **(db_options or {}))
        .endpoint("/q")
        .cpu(db_cpu_s)
        .chain("gen", "client", "api", "client", latency=link, dropout=0.0)
        .edge("api", "db", latency=link, dropout=call_dropout)
        .edge("db", "api", latency=link, dropout=0.0)
        .settings(horizon=horizon_s)
    )


def cpu_station(
    *,
    rate: float,
    cpu: Any,
    horizon_s: float,
    seed: int | None = None,
    failures: tuple[Any, Any, str] | None = None,
    endpoint: str = "/work",
    dropout: float | None = None,
    sample_metrics: list[str] | None = None,
    **server: Any,
) -> ScenarioBuilder:
    """Poisson `rate` requests/s into `srv`, whose one `endpoint` runs `cpu` seconds of CPU,
    over fixed 1 ms links that lose `dropout` (None: the language's default, 1%).

    `failures` is (time to failure, time to repair, work in progress); `server` are the
    builder's server options (`cores`, `when_down`, caps, a `capacity_schedule`);
    `sample_metrics` None keeps the default metrics; `seed` None writes no seed.
    """
    builder = (
        ScenarioBuilder()
        .generator("gen", users=deterministic(rate), rpm=60)
        .client("client")
        .server("srv", **server)
    )
    if failures is not None:
        builder.failures(failures[0], failures[1], work_in_progress=failures[2])
    builder.endpoint(endpoint).cpu(cpu)
    builder.chain("gen", "client", "srv", "client", latency=deterministic(0.001), dropout=dropout)
    builder.settings(horizon=horizon_s, sample_metrics=sample_metrics)
    return builder if seed is None else builder.seed(seed)


def server_to_feed(*, cpu_mean_s: float, horizon_s: float) -> ScenarioBuilder:
    """client -> srv -> client with no workload yet (add `arrival_rate`, `closed_users`, ...
    for a generator `gen`): one `/api` endpoint of exponential CPU of mean `cpu_mean_s`,
    exponential 1 ms links that lose nothing, sampled every 0.1 s."""
    return (
        ScenarioBuilder()
        .client("client")
        .server("srv")
        .endpoint("/api")
        .cpu(exponential(cpu_mean_s))
        .chain("gen", "client", "srv", "client", latency=exponential(0.001), dropout=0.0)
        .settings(horizon=horizon_s, sample_period=0.1)
    )


def looped_server(
    *,
    cpu_s: float,
    per_wakeup_s: float,
    per_callback_s: float,
    horizon_s: float,
    io_s: float | None = None,
    cores: int = 1,
) -> ScenarioBuilder:
    """client -> srv -> client with no workload yet (add `closed_users` or `arrival_rate` for
    a generator `gen`): srv has an `event_loop` of these costs and one `/work` endpoint of
    deterministic `cpu_s` of CPU (then `io_s` of I/O, if given), over fixed 1 ms links that
    lose nothing; nothing sampled."""
    builder = (
        ScenarioBuilder()
        .client("client")
        .server("srv", cores=cores)
        .event_loop(per_wakeup_s=per_wakeup_s, per_callback_s=per_callback_s)
        .endpoint("/work")
        .cpu(deterministic(cpu_s))
    )
    if io_s is not None:
        builder.io("io_wait", deterministic(io_s))
    builder.chain("gen", "client", "srv", "client", latency=deterministic(0.001), dropout=0.0)
    return builder.settings(horizon=horizon_s, sample_metrics=[])


def parsing_server(*, users: int, horizon_s: float) -> dict[str, Any]:
    """gen -> client -> srv -> client over exponential 1 ms links; `users` users of 60
    requests a minute each; one endpoint of exponential 5 ms parsing; sampled every 0.1 s."""
    return (
        ScenarioBuilder()
        .generator("gen", users=users, rpm=60)
        .client("client")
        .server("srv")
        .endpoint("/api")
        .parse(exponential(0.005))
        .chain("gen", "client", "srv", "client", latency=exponential(0.001))
        .settings(horizon=horizon_s, sample_period=0.1)
        .to_dict()
    )


def plotted_scenario() -> dict[str, Any]:
    """Two servers behind a balancer for 30 s at seed 11, sampled every 10 ms, with a spike
    on `client-lb` and an outage of `srv-1`: the run the chart tests draw."""
    link = exponential(0.002)
    steps = (cpu(0.004, kind="initial_parsing"), ram(64), io(0.02))
    edges = [
        edge("gen", "client", latency=link, dropout=None),
        edge("client", "lb", latency=link, dropout=None),
        edge("lb", "srv-1", latency=link, dropout=None, edge_id="lb-srv1"),
        edge("lb", "srv-2", latency=link, dropout=None, edge_id="lb-srv2"),
        edge("srv-1", "client", latency=link, dropout=None, edge_id="srv1-client"),
        edge("srv-2", "client", latency=link, dropout=None, edge_id="srv2-client"),
    ]
    servers = [
        server(s, *steps, endpoint_name="/api", cpu_cores=1, ram_mb=2048)
        for s in ("srv-1", "srv-2")
    ]
    return scenario_document(
        generator(60, user_sampling_window=10),
        servers,
        edges,
        horizon_s=30.0,
        load_balancer=balancer("srv-1", "srv-2"),
        settings={
            # 3,000 samples per series: more than the charts draw, so they are bucketed.
            "sample_period_s": 0.01,
            "enabled_sample_metrics": [
                "ready_queue_len",
                "event_loop_io_sleep",
                "ram_in_use",
                "edge_concurrent_connection",
            ],
            "enabled_event_metrics": ["rqs_clock"],
        },
        # Two windows that start 1 s apart, so their captions must not share a row.
        events=[
            spike("ev-spike", "client-lb", start=5.0, end=12.0, spike_s=0.05),
            outage("ev-down", "srv-1", start=6.0, end=15.0),
        ],
        seed=11,
    )
