"""The Python builder produces the same validated scenarios, and the same errors, as files."""

from pathlib import Path

import pytest

from asyncflow_backend.builder import (
    BuilderUsageError,
    ScenarioBuilder,
    deterministic,
    exponential,
    log_normal,
    normal,
    poisson,
    uniform,
)
from asyncflow_backend.config.constants import Distribution, LoadBalancerAlgorithm
from asyncflow_backend.runtime.runner import run_scenario
from asyncflow_backend.schemas import (
    ScenarioValidationError,
    load_scenario_file,
    parse_scenario,
    parse_scenario_text,
)
from asyncflow_backend.schemas.random_variables import RVConfig

EXAMPLES = Path(__file__).parents[2] / "example"
ALL_SAMPLED = ["ready_queue_len", "event_loop_io_sleep", "ram_in_use", "edge_concurrent_connection"]


def quickstart() -> ScenarioBuilder:
    return (
        ScenarioBuilder()
        .generator("visitors", users=poisson(80), rpm=60, window=60)
        .client("browser")
        .server("api-1", cores=1, ram_mb=2048)
        .endpoint("/orders")
        .parse(0.003)
        .ram(96)
        .io("io_db", 0.015)
        .chain("visitors", "browser", "api-1", "browser", latency=exponential(0.002))
        .settings(
            horizon=300,
            sample_period=0.05,
            sample_metrics=ALL_SAMPLED,
            event_metrics=["rqs_clock"],
        )
    )


def two_identical_servers(builder: ScenarioBuilder, *server_ids: str) -> ScenarioBuilder:
    for server_id in server_ids:
        (
            builder.server(server_id, cores=1, ram_mb=2048)
            .endpoint("/items")
            .parse(0.003)
            .ram(64)
            .io("io_cache", 0.010)
            .io("io_db", 0.020)
        )
    return builder


def test_quickstart_equals_the_yaml_file() -> None:
    assert quickstart().build() == load_scenario_file(EXAMPLES / "quickstart.yml")


def test_load_balanced_topology_equals_the_yaml_file() -> None:
    builder = (
        ScenarioBuilder()
        .generator("load-gen", users=250, rpm=24)
        .client("frontend")
        .load_balancer("lb", covers=["web-a", "web-b"], algorithm="round_robin")
    )
    two_identical_servers(builder, "web-a", "web-b")
    fast, slow = exponential(0.001), exponential(0.002)
    builder.edge("load-gen", "frontend", latency=slow, dropout=0.0, edge_id="gen-frontend")
    builder.edge("frontend", "lb", latency=fast, dropout=0.0)
    builder.edge("lb", "web-a", latency=fast, dropout=0.0)
    builder.edge("lb", "web-b", latency=fast, dropout=0.0)
    builder.edge("web-a", "frontend", latency=slow, dropout=0.0)
    builder.edge("web-b", "frontend", latency=slow, dropout=0.0)
    builder.settings(horizon=300, sample_period=0.05)

    assert builder.build() == load_scenario_file(EXAMPLES / "two_servers_lb.yml")


def test_pools_equal_the_yaml_file() -> None:
    fixed = deterministic(0.0005)
    builder = (
        ScenarioBuilder()
        .generator("gen", users=deterministic(250), rpm=60)
        .client("client")
        .server("api", cores=2, ram_mb=2048, db_pool=4)
        .endpoint("/orders")
        .parse(0.002)
        .io("io_db", exponential(0.015))
        .chain("gen", "client", "api", "client", latency=fixed, dropout=0.0)
        .settings(horizon=240, sample_period=0.05)
    )
    assert builder.build() == load_scenario_file(EXAMPLES / "db_pool.yml")


def test_named_pools_and_weights_reach_the_document() -> None:
    builder = (
        ScenarioBuilder()
        .generator("gen", users=deterministic(10), rpm=60)
        .client("client")
        .load_balancer("lb", covers=["a", "b"], algorithm="weighted_round_robin", weights={"a": 3})
    )
    for server in ("a", "b"):
        builder.server(server, pools={"cache": 2}).endpoint("/").io("io_cache", 0.001, pool="cache")
    builder.chain("gen", "client", "lb", latency=0.001, dropout=0.0)
    for server in ("a", "b"):
        builder.chain("lb", server, "client", latency=0.001, dropout=0.0)
    scenario = builder.build()
    assert scenario.topology_graph.nodes.load_balancer is not None
    assert scenario.topology_graph.nodes.load_balancer.weights == {"a": 3}
    server = scenario.topology_graph.nodes.servers[0]
    assert server.server_resources.connection_pools == {"cache": 2}
    assert server.endpoints[0].steps[0].pool == "cache"


def test_fan_out_equals_the_yaml_file() -> None:
    services = {"users": 0.010, "orders": 0.015, "stock": 0.020, "prices": 0.030}
    fixed, near = deterministic(0.001), deterministic(0.0002)
    builder = (
        ScenarioBuilder()
        .generator("gen", users=deterministic(100), rpm=60)
        .client("client")
        .server("gateway", cores=2)
        .endpoint("/dashboard")
        .parse(0.0005)
        .call(*services)
        .cpu(0.001)
    )
    for name, mean in services.items():
        builder.server(name).endpoint(f"/{name.rstrip('s') if name == 'users' else name}")
        builder.io("io_db", exponential(mean))
    builder.chain("gen", "client", "gateway", "client", latency=fixed, dropout=0.0)
    for name in services:
        builder.chain("gateway", name, "gateway", latency=near, dropout=0.0)
    builder.settings(horizon=300, sample_period=0.05)
    assert builder.build() == load_scenario_file(EXAMPLES / "fan_out.yml")


def test_a_call_names_its_targets_and_how_many_answers_it_waits_for() -> None:
    with pytest.raises(BuilderUsageError, match="at least one target"):
        ScenarioBuilder().call()
    with pytest.raises(BuilderUsageError, match="a 'call' step needs a server"):
        ScenarioBuilder().call("db")


def test_events_equal_the_yaml_file() -> None:
    builder = (
        ScenarioBuilder()
        .generator("shoppers", users=150, rpm=16)
        .client("storefront")
        .load_balancer("gateway", covers=["node-1", "node-2"])
    )
    for node in ("node-1", "node-2"):
        builder.server(node, ram_mb=2048).endpoint("/cart").parse(0.0025).ram(150).io(
            "io_db", 0.015
        )
    builder.chain("shoppers", "storefront", "gateway", latency=exponential(0.002))
    builder.edge("gateway", "node-1", latency=exponential(0.001))
    builder.edge("gateway", "node-2", latency=exponential(0.001))
    builder.edge("node-1", "storefront", latency=exponential(0.002))
    builder.edge("node-2", "storefront", latency=exponential(0.002))
    builder.settings(horizon=480, sample_period=0.05)
    builder.spike(
        "storefront-gateway", start=60, end=120, extra_s=0.025, event_id="slow-entry"
    ).outage("node-1", start=150, end=210, event_id="node-1-maintenance").spike(
        "gateway-node-2", start=270, end=330, extra_s=0.040, event_id="slow-node-2-link"
    ).outage("node-2", start=330, end=390, event_id="node-2-crash")

    assert builder.build() == load_scenario_file(EXAMPLES / "event_injection_lb.yml")


def test_builder_errors_are_the_errors_of_the_same_document() -> None:
    builder = quickstart().edge("api-1", "nowhere", latency=0.001)

    with pytest.raises(ScenarioValidationError) as built:
        builder.build()
    with pytest.raises(ScenarioValidationError) as parsed:
        parse_scenario(builder.to_dict())

    assert built.value.problems == parsed.value.problems
    paths = [p.path for p in built.value.problems]
    assert "topology_graph.edges[3].target" in paths
    assert any("nowhere" in p.message for p in built.value.problems)


def test_a_bad_random_variable_is_reported_at_build_with_its_path() -> None:
    builder = quickstart()
    builder.edge("browser", "api-1", latency=exponential(-0.5), edge_id="negative")

    with pytest.raises(ScenarioValidationError) as caught:
        builder.build()

    problem = next(p for p in caught.value.problems if p.path.startswith("topology_graph.edges[3]"))
    assert problem.path == "topology_graph.edges[3].latency.mean"
    assert "negative" in problem.message


def test_missing_sections_are_validation_errors() -> None:
    with pytest.raises(ScenarioValidationError) as caught:
        ScenarioBuilder().client("c").build()

    paths = {p.path for p in caught.value.problems}
    assert "rqs_input" in paths
    assert "topology_graph.nodes.servers" in paths


def test_steps_need_a_server_and_an_endpoint() -> None:
    with pytest.raises(BuilderUsageError, match="endpoint"):
        ScenarioBuilder().server("s").cpu(0.001)
    with pytest.raises(BuilderUsageError, match="server"):
        ScenarioBuilder().endpoint("/x")
    with pytest.raises(BuilderUsageError, match="io_db"):
        ScenarioBuilder().io("io_db", 0.01)


def test_numbers_are_fixed_and_helpers_are_random() -> None:
    scenario = (
        quickstart()
        .endpoint("/report", probability=0.25)
        .cpu(exponential(0.004))
        .cpu(normal(0.01, 1e-6), kind="initial_parsing")
        .io("io_llm", log_normal(0.2, 0.01))
        .io("io_wait", uniform(0.05))
        .build()
    )
    server = scenario.topology_graph.nodes.servers[0]
    report = server.endpoints[1]
    assert report.probability == 0.25
    assert [step.kind.value for step in report.steps] == [
        "cpu_bound_operation",
        "initial_parsing",
        "io_llm",
        "io_wait",
    ]
    values = [step.value for step in report.steps]
    assert all(isinstance(v, RVConfig) for v in values)
    distributions = [v.distribution for v in values if isinstance(v, RVConfig)]
    assert distributions == ["exponential", "normal", "log_normal", "uniform"]
    assert server.endpoints[0].steps[0].value == 0.003

    fixed = ScenarioBuilder().edge("a", "b", latency=0.004).to_dict()
    latency = fixed["topology_graph"]["edges"][0]["latency"]
    assert latency == {"mean": 0.004, "distribution": "deterministic"}


def test_user_counts_and_rates() -> None:
    plain = quickstart().generator("visitors", users=80, rpm=60).build().rqs_input
    assert plain.avg_active_users.distribution is Distribution.POISSON
    assert plain.avg_active_users.mean == 80
    assert plain.user_sampling_window == 60

    exact = quickstart().generator("visitors", users=deterministic(5), rpm=12, window=10).build()
    assert exact.rqs_input.avg_active_users.distribution is Distribution.DETERMINISTIC
    assert exact.rqs_input.avg_request_per_minute_per_user.mean == 12
    assert exact.rqs_input.user_sampling_window == 10

    model = RVConfig(mean=50, distribution=Distribution.NORMAL, variance=16)
    spread = quickstart().generator("visitors", users=model, rpm=60).build()
    assert spread.rqs_input.avg_active_users == model


def test_defaults_are_the_language_defaults() -> None:
    scenario = quickstart().settings(horizon=120).build()
    document = quickstart().to_dict()
    del document["sim_settings"]
    defaults = parse_scenario(document).sim_settings

    assert scenario.sim_settings.total_simulation_time == 120
    assert scenario.sim_settings.sample_period_s == 0.05  # kept from the first call
    assert defaults.sample_period_s == 0.01
    assert scenario.topology_graph.edges[0].dropout_rate == 0.01
    assert scenario.seed is None


def test_least_connection_and_seed() -> None:
    scenario = (
        quickstart()
        .load_balancer("lb", covers=["api-1"], algorithm=LoadBalancerAlgorithm.LEAST_CONNECTION)
        .seed(11)
    )
    document = scenario.to_dict()
    assert document["topology_graph"]["nodes"]["load_balancer"]["algorithms"] == "least_connection"
    assert document["seed"] == 11


def test_to_dict_is_a_copy() -> None:
    builder = quickstart()
    document = builder.to_dict()
    document["topology_graph"]["nodes"]["servers"].clear()

    assert builder.build().topology_graph.nodes.servers[0].id == "api-1"


def test_yaml_export_round_trips() -> None:
    builder = quickstart().spike("browser-api-1", start=10, end=20, extra_s=0.5).seed(3)

    assert parse_scenario_text(builder.to_yaml()) == builder.build()


def test_built_scenario_runs_with_its_seed() -> None:
    scenario = quickstart().settings(horizon=10).seed(5).build()

    first = run_scenario(scenario)
    second = run_scenario(scenario)

    assert first.meta.seed == 5
    assert first.requests.completed > 0
    assert first.latency == second.latency


def api_with_cache(
    builder: ScenarioBuilder, server_id: str, hit_ratio: float, target: str, *, three_tier: bool
) -> None:
    """An API server: parse, look up a cache whose misses call `target` holding a `db`
    connection, render; `three_tier` adds its RAM step and the write back after a miss."""
    builder.server(server_id, cores=2, ram_mb=2048, db_pool=8).endpoint("/products").parse(0.001)
    if three_tier:
        builder.ram(16)

    def miss(b: ScenarioBuilder) -> None:
        b.call(target, pool="db")
        if three_tier:
            b.io("io_cache", 0.0005)

    builder.cache(hit_ratio, hit=lambda b: b.io("io_cache", 0.0005), miss=miss).cpu(0.002)


def test_three_tiers_with_a_cache_equal_the_yaml_file() -> None:
    builder = (
        ScenarioBuilder()
        .generator("gen", users=deterministic(300), rpm=60)
        .client("client")
        .load_balancer("lb", covers=["api-1", "api-2"])
    )
    for api in ("api-1", "api-2"):
        api_with_cache(builder, api, 0.8, "db", three_tier=True)
    builder.server("db", cores=2, ram_mb=4096).endpoint("/query").cpu(exponential(0.004))
    builder.edge("gen", "client", latency=exponential(0.002), dropout=0.0)
    builder.edge("client", "lb", latency=exponential(0.001), dropout=0.0)
    for api in ("api-1", "api-2"):
        builder.edge("lb", api, latency=0.0002, dropout=0.0)
    for api in ("api-1", "api-2"):
        builder.edge(api, "client", latency=exponential(0.002), dropout=0.0)
    for api in ("api-1", "api-2"):
        builder.chain(api, "db", api, latency=0.0005, dropout=0.0)
    builder.settings(horizon=120, sample_period=0.05)
    assert builder.build() == load_scenario_file(EXAMPLES / "three_tier.yml")


def test_two_tiers_of_balancers_equal_the_yaml_file() -> None:
    apis, replicas = ["api-1", "api-2"], ["db-1", "db-2"]
    builder = (
        ScenarioBuilder()
        .generator("gen", users=deterministic(300), rpm=60)
        .client("client")
        .load_balancer("edge-lb", covers=apis)
        .load_balancer("db-lb", covers=replicas)
    )
    for api in apis:
        api_with_cache(builder, api, 0.5, "db-lb", three_tier=False)
    for replica in replicas:
        builder.server(replica).endpoint("/query").cpu(exponential(0.006))
    builder.edge("gen", "client", latency=exponential(0.002), dropout=0.0)
    builder.edge("client", "edge-lb", latency=exponential(0.001), dropout=0.0)
    for api in apis:
        builder.edge("edge-lb", api, latency=0.0002, dropout=0.0)
    for api in apis:
        builder.edge(api, "client", latency=exponential(0.002), dropout=0.0)
    for api in apis:
        builder.edge(api, "db-lb", latency=0.0003, dropout=0.0)
    for replica in replicas:
        builder.edge("db-lb", replica, latency=0.0002, dropout=0.0)
    for replica in replicas:
        for api in apis:
            builder.edge(replica, api, latency=0.0005, dropout=0.0)
    builder.settings(horizon=60, sample_period=0.05)
    assert builder.build() == load_scenario_file(EXAMPLES / "tiers.yml")


def test_cache_branches_nest_and_refuse_what_a_file_refuses() -> None:
    builder = ScenarioBuilder().server("api").endpoint("/").cache(0.5, miss=lambda b: b.ram(10))
    steps = builder.to_dict()["topology_graph"]["nodes"]["servers"][0]["endpoints"][0]["steps"]
    assert steps == [
        {
            "kind": "cache",
            "hit_ratio": 0.5,
            "miss": [{"kind": "ram", "step_operation": {"necessary_ram": 10}}],
        }
    ]
    nested = (
        ScenarioBuilder()
        .server("api")
        .endpoint("/")
        .cache(0.9, miss=lambda b: b.cache(0.5, hit=lambda c: c.cpu(0.001)).io("io_db", 0.01))
        .cpu(0.002)
    )
    steps = nested.to_dict()["topology_graph"]["nodes"]["servers"][0]["endpoints"][0]["steps"]
    assert [step["kind"] for step in steps] == ["cache", "cpu_bound_operation"]
    assert [step["kind"] for step in steps[0]["miss"]] == ["cache", "io_db"]
    assert steps[0]["miss"][0]["hit"][0]["kind"] == "cpu_bound_operation"
    with pytest.raises(BuilderUsageError, match="a 'cache' step needs a server"):
        ScenarioBuilder().cache(0.5)
