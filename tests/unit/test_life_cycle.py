"""The node life cycle: every node is built, connected, probed, started and summarised
through the same protocol, and what a node can do (answer calls, make them) is a
protocol too, not a class."""

from asyncflow_backend.builder import ScenarioBuilder, deterministic, exponential
from asyncflow_backend.runtime.actors import Answering, Calling
from asyncflow_backend.runtime.actors.server import ServerRuntime
from asyncflow_backend.runtime.runner import SimulationRunner
from asyncflow_backend.runtime.summary import Reading


def calling_pair() -> ScenarioBuilder:
    """An API with a pool that calls a database, both servers, behind one client."""
    return (
        ScenarioBuilder()
        .generator("gen", users=deterministic(20), rpm=60)
        .client("client")
        .server("api", cores=1, db_pool=2)
        .endpoint("/work")
        .cpu(exponential(0.004))
        .io("io_db", exponential(0.01))
        .call("db")
        .server("db", cores=1)
        .endpoint("/query")
        .cpu(exponential(0.002))
        .chain("gen", "client", "api", "client", latency=deterministic(0.001))
        .edge("api", "db", latency=deterministic(0.001))
        .edge("db", "api", latency=deterministic(0.001))
        .settings(horizon=20)
        .seed(3)
    )


def test_the_results_are_the_blocks_each_node_summarises() -> None:
    runner = SimulationRunner(calling_pair().build())
    results = runner.run()
    model = runner.model
    probes = {(p.metric, p.component_id): p for p in model.sampler.probes}
    reading = Reading(20.0, probes, lambda _: model.collector.latencies)

    blocks = {node_id: node.summarise(reading) for node_id, node in model.nodes.items()}

    assert blocks["api"].servers == {"api": results.servers["api"]}
    assert blocks["api"].pools == {"api:db": results.pools["api:db"]}
    assert list(blocks["api"].calls) == list(results.calls) == ["api:/work#2->db"]
    assert blocks["db"].calls == {}
    for node_id in ("gen", "client"):  # their numbers are the collector's
        assert blocks[node_id].servers == blocks[node_id].pools == {}


def test_answering_and_calling_are_protocols_the_nodes_meet() -> None:
    model = SimulationRunner(calling_pair().build()).model
    api, db = model.nodes["api"], model.nodes["db"]

    assert isinstance(db, Answering)
    assert isinstance(api, Calling)
    assert isinstance(api, ServerRuntime)
    assert api.reply_port is api.calls  # answers go to its call dispatcher
    assert isinstance(db, ServerRuntime)
    assert db.reply_port is None  # it makes no calls
    assert not isinstance(model.nodes["client"], Answering)
    assert not isinstance(model.nodes["gen"], Calling)
