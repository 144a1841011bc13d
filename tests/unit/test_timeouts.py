"""Client and call timeouts: the schema, the builder, what is built, and how requests end."""

from typing import Any

import pytest

from asyncflow_backend.builder import ScenarioBuilder, deterministic, exponential
from asyncflow_backend.metrics.breakdown import HopCategory, HopKind
from asyncflow_backend.resources import CoreSet
from asyncflow_backend.runtime.actors.client import ClientRuntime, TimingOutClient
from asyncflow_backend.runtime.admission import AdmissionGate
from asyncflow_backend.runtime.model import SimulationModel
from asyncflow_backend.runtime.runner import SimulationRunner, run_scenario
from asyncflow_backend.runtime.steps import CallStep
from asyncflow_backend.samplers import RandomStreams
from asyncflow_backend.schemas import ScenarioValidationError, parse_scenario
from asyncflow_backend.schemas.results import SimulationResults
from support.scenarios import api_calling_db, cpu_station

STEP = "topology_graph.nodes.servers[0].endpoints[0].steps[0]"


def slow_server(cpu_s: float = 0.1, **caps: int) -> ScenarioBuilder:
    """~20 requests/s into one core that needs `cpu_s` each, over 1 ms links."""
    return cpu_station(rate=20, cpu=cpu_s, horizon_s=20, endpoint="/api", dropout=0.0, **caps)


def calling(timeout_s: float, on_timeout: str | None = None) -> ScenarioBuilder:
    """api calls db (50 ms of CPU on one core) with a call timeout, ~10 requests/s."""
    return api_calling_db(
        api_cpu_s=None, db_cpu_s=0.05, horizon_s=20, timeout_s=timeout_s, on_timeout=on_timeout
    )


def problems(document: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ScenarioValidationError) as caught:
        parse_scenario(document)
    return {p.path: p.message for p in caught.value.problems}


def by_reason(results: SimulationResults) -> dict[tuple[str, str, str], int]:
    return {(e.outcome, e.place, e.reason): e.count for e in results.requests.ends}


def test_the_builder_writes_timeouts_on_the_workload_and_on_calls() -> None:
    document = slow_server().timeout(exponential(0.5), on_timeout="cancel").to_dict()
    assert document["rqs_input"]["timeout_s"] == exponential(0.5)
    assert document["rqs_input"]["on_timeout"] == "cancel"
    step = calling(0.2, "cancel").to_dict()["topology_graph"]["nodes"]["servers"][0]
    assert step["endpoints"][0]["steps"][0] | {} == {
        "kind": "call",
        "target": "db",
        "timeout_s": 0.2,
        "on_timeout": "cancel",
    }


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (lambda d: d["rqs_input"].update(on_timeout="cancel"), "rqs_input", "goes with timeout_s"),
        (lambda d: d["rqs_input"].update(timeout_s=0), "rqs_input.timeout_s", "greater than 0"),
        (
            lambda d: d["rqs_input"].update(timeout_s={"mean": 0, "distribution": "exponential"}),
            "rqs_input.timeout_s",
            "mean of timeout_s must be greater than 0",
        ),
        (
            lambda d: d["rqs_input"].update(timeout_s=1, on_timeout="drop"),
            "rqs_input.on_timeout",
            "keep_working",
        ),
        (
            lambda d: d["topology_graph"]["nodes"]["servers"][0]["endpoints"][0]["steps"][0].update(
                timeout_s=1
            ),
            f"{STEP}.timeout_s",
            "only a call step has timeout_s, not 'cpu_bound_operation'",
        ),
    ],
)
def test_bad_timeouts_are_refused_at_their_path(change: Any, path: str, words: str) -> None:
    document = slow_server().to_dict()
    change(document)

    found = problems(document)

    assert path in found, found
    assert words in found[path]


def test_what_is_built_follows_the_timeouts_of_the_scenario() -> None:
    plain = SimulationRunner(slow_server().build(), seed=1).model
    assert type(plain.client) is ClientRuntime
    assert plain.servers["srv"].book is None

    patient = SimulationRunner(slow_server().timeout(1.0).build(), seed=1).model
    assert isinstance(patient.client, TimingOutClient)
    assert patient.servers["srv"].book is None

    cancelling = SimulationRunner(
        slow_server(max_concurrency=5).timeout(1.0, on_timeout="cancel").build(), seed=1
    ).model
    book = cancelling.servers["srv"].book
    assert book is not None
    assert cancelling.servers["srv"].receive == book.receive  # the book comes first,
    assert isinstance(getattr(book._receive, "__self__", None), AdmissionGate)  # then the caps
    calls = SimulationRunner(calling(0.01, "cancel").build(), seed=1).model
    assert type(calls.client) is ClientRuntime
    assert all(s.book is not None for s in calls.servers.values())


def test_without_a_timeout_nothing_times_out_and_goodput_is_throughput() -> None:
    results = run_scenario(slow_server(cpu_s=0.04).build(), seed=2)

    assert results.requests.timed_out == results.requests.late_answers == 0
    assert results.throughput.goodput_rps == results.throughput.mean_rps


def test_keep_working_times_out_at_the_client_and_the_answers_come_late() -> None:
    # 20 requests/s into a core that serves 10/s: almost every request waits past 0.3 s.
    results = run_scenario(slow_server().timeout(0.3).build(), seed=3)
    requests = results.requests

    assert requests.timed_out > 0.8 * requests.generated
    assert by_reason(results)[("timed_out", "client", "client_timeout")] == requests.timed_out
    # The server kept working: its one core stayed busy and the answers came back late.
    assert results.servers["srv"].cpu_utilisation > 0.95
    assert requests.late_answers > 0
    assert results.throughput.mean_rps > results.throughput.goodput_rps
    assert results.latency.max is not None
    assert results.latency.max <= 0.3


def test_cancel_withdraws_from_the_ready_queue_and_frees_the_core() -> None:
    results = run_scenario(slow_server().timeout(0.3, on_timeout="cancel").build(), seed=3)
    requests = results.requests
    reasons = by_reason(results)

    withdrawn = reasons[("timed_out", "srv", "withdrawn_from_ready_queue")]
    assert withdrawn > 0.3 * requests.generated
    assert requests.timed_out == sum(requests.timed_out_at.values())
    # Withdrawn requests never run; those that reached the core ran their step to its end
    # (completed, or stopped after it when their time ran out meanwhile): 10 a second.
    stopped = reasons[("timed_out", "srv", "stopped_after_cpu_step")]
    assert requests.completed + stopped == pytest.approx(10 * 20, abs=5)
    # Only the arrivals of the last 0.3 s can be waiting; kept, the queue would reach ~200.
    assert results.servers["srv"].ready_queue_max is not None
    assert results.servers["srv"].ready_queue_max < 25
    assert requests.generated == requests.completed + requests.timed_out + requests.in_flight


def test_a_call_timeout_fails_the_caller_and_keep_working_lets_the_callee_finish() -> None:
    results = run_scenario(calling(0.02).build(), seed=4)
    site = results.calls["api:/api#0->db"]

    assert results.requests.failed_at == {"api:/api#0": results.requests.failed}
    assert results.requests.failed > 0.9 * results.requests.generated
    assert site.timed_out == results.requests.failed
    # The database served every call, answering after the caller had given up.
    assert results.servers["db"].endpoints["/q"].count >= site.sent - 2
    assert site.answered >= site.sent - 2


def test_a_call_timeout_that_cancels_withdraws_the_waiting_sub_requests() -> None:
    kept = run_scenario(calling(0.02).build(), seed=4)
    cancelled = run_scenario(calling(0.02, "cancel").build(), seed=4)

    served = cancelled.servers["db"].endpoints["/q"].count
    assert served < 0.6 * kept.servers["db"].endpoints["/q"].count
    assert cancelled.calls["api:/api#0->db"].timed_out == cancelled.requests.failed
    assert cancelled.servers["db"].cpu_utilisation < kept.servers["db"].cpu_utilisation


def test_a_withdrawn_waiter_is_never_granted() -> None:
    cores: CoreSet[str] = CoreSet(1)
    granted: list[str] = []
    cores.request("a", granted.append)
    cores.request("b", granted.append)
    cores.request("c", granted.append)

    assert cores.withdraw("b")
    assert not cores.withdraw("b")
    assert not cores.withdraw("a")  # granted already: nothing to withdraw
    cores.release()
    cores.release()

    assert granted == ["a", "c"]
    assert cores.queued == 0


def io_server(timeout_s: float, on_timeout: str) -> ScenarioBuilder:
    """~20 requests/s, each holding one of 50 `db` connections for 1 s of I/O."""
    return (
        ScenarioBuilder()
        .generator("gen", users=deterministic(20), rpm=60)
        .timeout(timeout_s, on_timeout=on_timeout)  # type: ignore[arg-type]
        .client("client")
        .server("srv", db_pool=50)
        .endpoint("/api")
        .io("io_db", 1.0)
        .chain("gen", "client", "srv", "client", latency=deterministic(0.001), dropout=0.0)
        .settings(horizon=20)
    )


def test_cancel_cuts_an_io_wait_short_and_gives_its_connection_back() -> None:
    kept = run_scenario(io_server(0.2, "keep_working").build(), seed=6)
    cancelled = run_scenario(io_server(0.2, "cancel").build(), seed=6)

    reasons = by_reason(cancelled)
    assert reasons[("timed_out", "srv", "withdrawn_from_io_wait")] == cancelled.requests.timed_out
    # Each connection is held 0.198 s (the timeout less the two 1 ms links) instead of
    # 1 s, and counted for what it was held, out of 50 connections x 20 s.
    generated = cancelled.requests.generated
    assert kept.pools["srv:db"].utilisation == pytest.approx(generated * 1.0 / 1000, rel=0.03)
    assert cancelled.pools["srv:db"].utilisation == pytest.approx(
        generated * 0.198 / 1000, rel=0.06
    )
    assert cancelled.servers["srv"].io_queue_mean == pytest.approx(generated / 20 * 0.198, rel=0.1)
    assert cancelled.requests.late_answers == 0


def test_cancel_stops_a_request_waiting_for_the_answers_to_its_call() -> None:
    scenario = calling(5.0).timeout(0.03, on_timeout="cancel").build()

    results = run_scenario(scenario, seed=7)
    reasons = by_reason(results)

    assert reasons[("timed_out", "api", "withdrawn_from_call")] > 0.5 * results.requests.generated
    assert results.requests.failed == 0
    # The sub-requests ran on at the database; their answers were counted and ignored.
    site = results.calls["api:/api#0->db"]
    assert site.answered >= 0.9 * site.sent
    assert results.servers["api"].latency is not None


def test_an_io_wait_cut_short_is_booked_in_the_breakdown_for_what_it_lasted() -> None:
    runner = SimulationRunner(io_server(0.2, "cancel").build(), seed=6)
    results = runner.run()
    hops = runner.model.collector.hops
    io = hops.totals[hops.slot(HopKind.SERVER, "srv", HopCategory.IO)]
    # Each I/O wait lasted 0.198 s before its request was withdrawn, not its 1 s; those
    # still waiting at the horizon are booked in full.
    withdrawn = by_reason(results)[("timed_out", "srv", "withdrawn_from_io_wait")]
    lasted = withdrawn * 0.198
    assert lasted - 1e-6 <= io <= lasted + results.requests.in_flight * 1.0 + 1e-6


def test_a_call_lost_as_it_is_sent_leaves_nothing_waiting_for_it() -> None:
    # An edge that drops a sub-request fails the call while it is being sent: the
    # caller must not keep it among the requests waiting for answers.
    scenario = (
        ScenarioBuilder()
        .generator("gen", users=deterministic(50), rpm=60)
        .client("client")
        .timeout(exponential(0.5), on_timeout="cancel")
        .server("api")
        .endpoint("/work")
        .call("db")
        .server("db")
        .endpoint("/query")
        .cpu(exponential(0.001))
        .chain("gen", "client", "api", "client", latency=deterministic(0.001), dropout=0.0)
        .edge("api", "db", latency=deterministic(0.001), dropout=0.5)
        .edge("db", "api", latency=deterministic(0.001), dropout=0.0)
        .settings(horizon=20)
        .seed(2)
        .build()
    )
    runner = SimulationRunner(scenario)
    results = runner.run()
    api = runner.model.servers["api"]

    assert api.book is not None
    assert api.calls is not None
    assert results.requests.failed > 300
    assert all(request.plan is not None for request in api.book.calling)
    assert len(api.book.calling) == api.calls.waiting


def test_call_steps_of_the_same_label_on_two_servers_draw_their_own_timeouts() -> None:
    builder = (
        ScenarioBuilder()
        .generator("gen", users=10, rpm=60)
        .client("client")
        .load_balancer("lb", covers=["a", "b"])
    )
    for server_id in ("a", "b"):
        builder = builder.server(server_id).endpoint("/api").call("db", timeout_s=exponential(0.05))
    builder = builder.server("db").endpoint("/q").cpu(exponential(0.01))
    builder = builder.chain("gen", "client", "lb", latency=exponential(0.001))
    for server_id in ("a", "b"):
        builder = builder.edge("lb", server_id, latency=exponential(0.001))
        builder = builder.edge(server_id, "client", latency=exponential(0.001))
        builder = builder.edge(server_id, "db", latency=exponential(0.001))
        builder = builder.edge("db", server_id, latency=exponential(0.001))
    model = SimulationModel.build(builder.build(), RandomStreams(5))

    draws = []
    for server_id in ("a", "b"):
        (step,) = model.servers[server_id].endpoints[0].steps
        assert isinstance(step, CallStep)
        assert step.timeout is not None
        draws.append([step.timeout() for _ in range(5)])
    assert draws[0] != draws[1]
