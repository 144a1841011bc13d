"""Slowdowns of a server's step times and of an edge's latency: the language's checks, the
builder, the warnings, what the engine scales (exactly), and a sweep over the factor."""

import types
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure

from asyncflow_backend.builder import ScenarioBuilder, deterministic
from asyncflow_backend.experiments import ExperimentSpec, prepare, run_experiment
from asyncflow_backend.experiments.prepare import ExperimentValidationError
from asyncflow_backend.plots.events import shade_events
from asyncflow_backend.runtime.runner import SimulationRunner
from asyncflow_backend.runtime.steps import Step
from asyncflow_backend.schemas import ScenarioValidationError, parse_scenario
from asyncflow_backend.schemas.warnings import find_warnings
from support.documents import (
    cpu,
    edge_slowdown,
    io,
    outage,
    poisson_arrivals,
    server,
    slowdown,
    spike,
)
from support.scenarios import api_calling_db
from support.topologies import direct

LINK_S = 0.001
"""Every edge's fixed latency."""
CPU_S = 0.01
IO_S = 0.1
WINDOW = (20.0, 40.0)


def scenario(*events: dict[str, Any], cores: int = 64, **resources: Any) -> dict[str, Any]:
    """gen -> client -> srv -> client, 5 requests/s, a fixed CPU step then a fixed I/O step
    on more cores than ever busy, so nothing waits and a latency is its parts exactly."""
    srv = server("srv", cpu(CPU_S), io(IO_S), cpu_cores=cores, **resources)
    return direct(poisson_arrivals(5), [srv], horizon_s=60, events=list(events))


def problems(document: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ScenarioValidationError) as caught:
        parse_scenario(document)
    return {p.path: p.message for p in caught.value.problems}


def timed_latencies(document: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(creation time, latency) of every completed request of a run at seed 1."""
    runner = SimulationRunner(parse_scenario(document), seed=1)
    collector = runner.model.collector
    collector.keep_completion_times()
    runner.run()
    latencies = np.frombuffer(collector.latencies, dtype=np.float64)
    assert collector.completion_times is not None
    completed = np.frombuffer(collector.completion_times, dtype=np.float64)
    assert len(latencies) > 200
    return completed - latencies, latencies


def within(times: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    return (times >= window[0]) & (times < window[1])


# The language.


@pytest.mark.parametrize(
    ("start", "path", "words"),
    [
        ({"factor": 0}, "events[0].start.factor", "greater than 0"),
        ({"factor": -2}, "events[0].start.factor", "greater than 0"),
        ({"factor": float("inf")}, "events[0].start.factor", "finite"),
        ({"factor": 1001}, "events[0].start.factor", "1000"),
        ({"factor": "3"}, "events[0].start.factor", "number"),
        ({"factor": 3, "applies_to": "disk"}, "events[0].start.applies_to", "'cpu'"),
        ({}, "events[0]", "a server slowdown needs factor"),
        ({"factor": 3, "spike_s": 0.1}, "events[0]", "spike_s only applies to network spikes"),
    ],
)
def test_a_server_slowdowns_fields_are_checked_where_they_are(
    start: dict[str, Any], path: str, words: str
) -> None:
    event = slowdown("db-slow", "srv", start=1, end=2, factor=3)
    event["start"] = {"kind": "server_slowdown_start", "t_start": 1, **start}

    found = problems(scenario(event))

    assert list(found) == [path]
    assert words in found[path]


@pytest.mark.parametrize(
    ("event", "words"),
    [
        (outage("down", "srv", start=1, end=2), "factor only applies to slowdowns"),
        (spike("slow", "client-srv", start=1, end=2, spike_s=0.1), "factor only applies to"),
    ],
)
def test_only_slowdowns_take_a_factor(event: dict[str, Any], words: str) -> None:
    event["start"]["factor"] = 2

    assert words in problems(scenario(event))["events[0]"]


def test_applies_to_is_for_server_slowdowns_only_and_ends_must_match() -> None:
    on_edge = edge_slowdown("slow", "client-srv", start=1, end=2, factor=2)
    on_edge["start"]["applies_to"] = "cpu"
    assert "applies_to only applies to server slowdowns" in problems(scenario(on_edge))["events[0]"]

    mismatched = slowdown("db-slow", "srv", start=1, end=2, factor=3)
    mismatched["end"]["kind"] = "edge_slowdown_end"
    assert "must end with 'server_slowdown_end'" in problems(scenario(mismatched))["events[0]"]

    needs = edge_slowdown("slow", "client-srv", start=1, end=2, factor=2)
    del needs["start"]["factor"]
    assert "an edge slowdown needs factor" in problems(scenario(needs))["events[0]"]


def test_a_slowdown_targets_a_server_or_an_edge_as_its_kind_says() -> None:
    found = problems(
        scenario(
            slowdown("db-slow", "client-srv", start=1, end=2, factor=3),
            edge_slowdown("link-slow", "srv", start=1, end=2, factor=3),
        )
    )

    assert found == {
        "events[0].target_id": "event 'db-slow' slows down 'client-srv', which is not a server",
        "events[1].target_id": "event 'link-slow' slows down 'srv', which is not an edge",
    }


def test_slowdowns_may_overlap_and_speed_ups_are_legal() -> None:
    parsed = parse_scenario(
        scenario(
            slowdown("a", "srv", start=10, end=30, factor=2),
            slowdown("b", "srv", start=20, end=40, factor=0.5, applies_to="cpu"),
        )
    )

    assert parsed.events is not None
    assert [e.scope for e in parsed.events] == ["both", "cpu"]
    assert find_warnings(parsed) == []


def test_the_builder_writes_both_slowdowns() -> None:
    built = (
        ScenarioBuilder()
        .generator("gen", users=deterministic(5), rpm=60)
        .client("client")
        .server("srv")
        .endpoint("/")
        .cpu(CPU_S)
        .io("io_db", IO_S)
        .chain("gen", "client", "srv", "client", latency=LINK_S, dropout=0.0)
        .slowdown("srv", start=10, end=20, factor=3, event_id="db-slow")
        .slowdown("srv", start=30, end=40, factor=2, applies_to="io")
        .edge_slowdown("client-srv", start=10, end=20, factor=4)
        .settings(horizon=60)
        .to_dict()
    )

    assert built["events"] == [
        slowdown("db-slow", "srv", start=10, end=20, factor=3),
        slowdown("slowdown-2", "srv", start=30, end=40, factor=2, applies_to="io"),
        edge_slowdown("edge-slowdown-3", "client-srv", start=10, end=20, factor=4),
    ]


# Warnings.


def test_a_slowdown_of_steps_the_server_lacks_changes_nothing() -> None:
    document = scenario(slowdown("db-slow", "srv", start=1, end=2, factor=3, applies_to="io"))
    document["topology_graph"]["nodes"]["servers"][0]["endpoints"][0]["steps"].pop()

    warnings = {w.path: w.message for w in find_warnings(parse_scenario(document))}

    assert warnings == {
        "events[0].start.applies_to": "slowdown 'db-slow': server 'srv' has no I/O steps, so "
        "the slowdown changes nothing"
    }


def test_a_slowdown_past_the_cores_warns_that_the_queue_grows_while_it_lasts() -> None:
    # 5 requests/s x 10 ms = 0.05 core-seconds per second on one core: 30x is 1.5.
    document = scenario(slowdown("db-slow", "srv", start=1, end=11, factor=30), cores=1)

    warnings = {w.path: w.message for w in find_warnings(parse_scenario(document))}

    assert list(warnings) == ["events[0].start.factor"]
    assert "0.05 core-seconds" in warnings["events[0].start.factor"]
    assert "1.5, more than its 1 core(s)" in warnings["events[0].start.factor"]
    assert "(10 s)" in warnings["events[0].start.factor"]
    io_only = scenario(slowdown("db-slow", "srv", start=1, end=11, factor=30, applies_to="io"))
    assert find_warnings(parse_scenario(io_only)) == []


def test_a_slowdown_behind_a_callers_pool_blames_the_pool() -> None:
    # 150 queries/s x 10 ms on 2 cores is 1.5 core-seconds per second; 2x slower is 3. At
    # most 4 queries reach the database at once (each holds one of the API's connections),
    # so the backlog is the API's requests waiting for a connection.
    builder = api_calling_db(
        rate=150,
        db_cpu_s=0.01,
        api_options={"cores": 2, "db_pool": 4},
        db_options={"cores": 2},
        pool="db",
    ).slowdown("db", start=10, end=30, factor=2, event_id="db-slow")

    warnings = {w.path: w.message for w in find_warnings(builder.build())}

    assert warnings == {
        "events[0].start.factor": "slowdown 'db-slow' makes the 1.5 core-seconds of CPU work "
        "offered per second to server 'db' 3, more than its 2 core(s): the requests waiting "
        "for a connection of pool 'db' of server 'api' grow for as long as the slowdown lasts "
        "(20 s); its ready queue stays bounded, since those connections cap the requests "
        "that reach it"
    }


# The engine.


def test_a_run_without_slowdowns_binds_no_factor_into_its_draws() -> None:
    events = [slowdown("db-slow", "srv", start=1, end=2, factor=3, applies_to="io")]
    document = direct(
        poisson_arrivals(5),
        [server("srv", cpu(CPU_S), io(IO_S)), server("other", cpu(CPU_S))],
        horizon_s=10,
        events=events,
    )
    model = SimulationRunner(parse_scenario(document), seed=1).model
    steps = {sid: s.endpoints[0].steps for sid, s in model.servers.items()}

    def scaled(step: Step) -> bool:
        return isinstance(step.duration, types.FunctionType)

    assert [scaled(step) for step in steps["srv"]] == [False, True]
    assert [scaled(step) for step in steps["other"]] == [False]
    assert not any(isinstance(e._latency, types.FunctionType) for e in model.edges.values())


@pytest.mark.parametrize(
    ("applies_to", "cpu_factor", "io_factor"),
    [("cpu", 3.0, 1.0), ("io", 1.0, 3.0), (None, 3.0, 3.0)],
)
def test_a_step_that_starts_in_the_window_takes_factor_times_its_draw(
    applies_to: str | None, cpu_factor: float, io_factor: float
) -> None:
    event = slowdown("db-slow", "srv", start=WINDOW[0], end=WINDOW[1], factor=3)
    if applies_to is not None:
        event["start"]["applies_to"] = applies_to

    created, latencies = timed_latencies(scenario(event))

    cpu_starts = created + 2 * LINK_S
    cpu_s = CPU_S * np.where(within(cpu_starts, WINDOW), cpu_factor, 1.0)
    io_s = IO_S * np.where(within(cpu_starts + cpu_s, WINDOW), io_factor, 1.0)
    np.testing.assert_allclose(latencies, 3 * LINK_S + cpu_s + io_s, rtol=0, atol=1e-9)
    plain = 3 * LINK_S + CPU_S + IO_S
    assert (latencies[within(created, (21, 39))] > plain + 0.01).all()
    assert np.allclose(latencies[~within(created, (19, 40))], plain, rtol=0, atol=1e-9)


def test_overlapping_slowdowns_multiply_on_pooled_io_too() -> None:
    both = slowdown("twice", "srv", start=20, end=40, factor=2)
    cpu_only = slowdown("thrice", "srv", start=30, end=50, factor=3, applies_to="cpu")
    document = scenario(both, cpu_only, db_connection_pool=64)

    created, latencies = timed_latencies(document)

    cpu_starts = created + 2 * LINK_S
    cpu_factor = np.where(within(cpu_starts, (20, 40)), 2.0, 1.0)
    cpu_factor *= np.where(within(cpu_starts, (30, 50)), 3.0, 1.0)
    cpu_s = CPU_S * cpu_factor
    io_s = IO_S * np.where(within(cpu_starts + cpu_s, (20, 40)), 2.0, 1.0)
    np.testing.assert_allclose(latencies, 3 * LINK_S + cpu_s + io_s, rtol=0, atol=1e-9)
    assert set(np.round(cpu_factor, 9)) == {1.0, 2.0, 3.0, 6.0}


# Results: the charts shade and caption slowdowns as they do the other events.


def test_charts_caption_slowdowns_and_shade_them_in_their_own_colour() -> None:
    parsed = parse_scenario(
        scenario(
            slowdown("db-slow", "srv", start=10, end=30, factor=3),
            slowdown("cpu-fast", "srv", start=35, end=40, factor=0.5, applies_to="cpu"),
            edge_slowdown("link-slow", "client-srv", start=12, end=20, factor=2),
            spike("link-spike", "srv-client", start=5, end=8, spike_s=0.05),
            outage("down", "srv", start=50, end=55),
        )
    )
    assert parsed.events is not None
    ax = Figure().add_subplot()
    ax.set_xlim(0, 60)

    entries = shade_events(ax, parsed.events)

    colours = {entry.get_label(): entry.get_facecolor()[:3] for entry in entries}
    assert list(colours) == [
        "link-spike: srv-client +50 ms",
        "db-slow: srv x3",
        "link-slow: client-srv x2",
        "cpu-fast: srv x0.5 cpu",
        "down: srv down",
    ]
    assert colours["db-slow: srv x3"] == colours["link-slow: client-srv x2"]
    assert len(set(colours.values())) == 3
    assert "event-db-slow" in {patch.get_gid() for patch in ax.patches}


# Experiments.


def slowdown_sweep(values: list[float]) -> ExperimentSpec:
    event = slowdown("db-slow", "srv", start=0, end=60, factor=1)
    return ExperimentSpec.model_validate(
        {
            "scenario": scenario(event),
            "seed": 1,
            "replications": 2,
            "sweep": [{"path": "events.db-slow.start.factor", "values": values}],
        }
    )


def test_an_experiment_sweeps_a_slowdowns_factor_by_its_path() -> None:
    report = run_experiment(prepare(slowdown_sweep([1, 2, 4])))

    means = [point.summary["latency.mean"].mean for point in report.points]
    expected = [3 * LINK_S + factor * (CPU_S + IO_S) for factor in (1, 2, 4)]
    assert means == pytest.approx(expected, rel=1e-9)


def test_a_swept_factor_out_of_bounds_is_refused_naming_the_field() -> None:
    with pytest.raises(ExperimentValidationError) as caught:
        prepare(slowdown_sweep([2, 0]))

    (problem,) = caught.value.problems
    assert "events.db-slow.start.factor=0" in str(problem)
    assert "events[0].start.factor" in str(problem)
