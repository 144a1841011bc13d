"""From the harness's measurements to a scenario: the fitting and the calibration arithmetic."""

from dataclasses import replace

import numpy as np
import pytest

from asyncflow_backend.schemas.scenario import Scenario
from asyncflow_backend.schemas.warnings import find_warnings
from benchmarks.real_system.calibrate import (
    Measurements,
    calibrate,
    one_way_latency,
    timed_cpu_per_visit,
    visits,
)
from benchmarks.real_system.fitting import SMALLEST_S, coefficient_of_variation, fit_duration
from benchmarks.real_system.loopcost import WakeupCost, ping_split
from benchmarks.real_system.spec import Cpu, Duration
from benchmarks.real_system.topologies import topology

RNG_SEED = 11


def test_constant_durations_fit_a_deterministic_variable() -> None:
    assert fit_duration([0.004, 0.004, 0.004]) == {"mean": 0.004, "distribution": "deterministic"}


def test_exponential_durations_fit_an_exponential_with_their_mean() -> None:
    draws = np.random.default_rng(RNG_SEED).exponential(0.01, size=5_000)

    fitted = fit_duration(draws)

    assert fitted == {"mean": pytest.approx(draws.mean()), "distribution": "exponential"}


def test_other_spreads_fit_a_log_normal_with_their_mean_and_variance() -> None:
    # Uniform on [0, 2m] has cv = 1/sqrt(3) = 0.58: neither constant nor exponential.
    draws = np.random.default_rng(RNG_SEED).uniform(0, 0.02, size=5_000)

    fitted = fit_duration(draws)

    assert fitted["distribution"] == "log_normal"
    assert fitted["mean"] == pytest.approx(draws.mean())
    assert fitted["variance"] == pytest.approx(draws.var(ddof=1))


def test_one_sample_is_deterministic_and_none_is_an_error() -> None:
    assert fit_duration([0.002])["distribution"] == "deterministic"
    with pytest.raises(ValueError, match="no samples"):
        fit_duration([])


def test_the_coefficient_of_variation_is_the_sample_sd_over_the_mean() -> None:
    assert coefficient_of_variation([1.0, 3.0]) == pytest.approx(np.std([1, 3], ddof=1) / 2)
    with pytest.raises(ValueError, match="two samples"):
        coefficient_of_variation([1.0])


def test_one_way_latency_takes_the_servers_cpu_out_of_the_round_trip() -> None:
    assert one_way_latency(0.0010, 0.0004) == pytest.approx(0.0003)
    # A round trip shorter than the CPU (clock noise) never gives a latency <= 0.
    assert one_way_latency(0.0003, 0.0004) == SMALLEST_S


def _cpu_io_measurements(requests: int = 400) -> Measurements:
    rng = np.random.default_rng(RNG_SEED)
    cpu = rng.exponential(0.004, size=requests)
    sleep = rng.exponential(0.010, size=requests)
    parts = [{"api.0.cpu": c, "api.1.sleep": s} for c, s in zip(cpu, sleep, strict=True)]
    return Measurements(
        topology=topology("cpu_io"),
        parts=parts,
        # 1 ms of CPU per request beyond the timed bursts: the framework's overhead.
        cpu_s={"api": float(cpu.sum()) + requests * 0.001},
        ping_rtt_s=0.0010,
        ping_cpu_s=0.0004,
        server_cores=1,
    )


def _steps(scenario: dict[str, object], server: str) -> list[dict[str, object]]:
    servers = scenario["topology_graph"]["nodes"]["servers"]  # type: ignore[index]
    (found,) = [s for s in servers if s["id"] == server]
    return found["endpoints"][0]["steps"]  # type: ignore[no-any-return]


def test_the_overhead_is_cpu_per_request_less_the_timed_bursts() -> None:
    # Shared by the arrival's callback and the answer's, which resumes after the sleep.
    measured = _cpu_io_measurements()

    steps = _steps(calibrate(measured).template, "api")

    assert [step["kind"] for step in steps] == [
        "initial_parsing",
        "cpu_bound_operation",
        "io_wait",
        "cpu_bound_operation",
    ]
    for callback in (steps[0], steps[3]):
        assert callback["step_operation"]["cpu_time"] == {  # type: ignore[index]
            "mean": pytest.approx(0.0005),
            "distribution": "deterministic",
        }


def test_an_endpoint_that_ends_on_its_cpu_gets_no_answer_callback() -> None:
    measured = _cpu_io_measurements()
    ends_on_cpu = [{**row, "api.2.cpu": 0.001} for row in measured.parts]
    spec = replace(
        measured.topology,
        services=(
            replace(
                measured.topology.services[0],
                parts=(*measured.topology.services[0].parts, Cpu(Duration(0.001))),
            ),
        ),
    )

    # The last burst is timed: 1 ms more CPU per request, the overhead unchanged.
    cpu_s = {"api": measured.cpu_s["api"] + 0.001 * len(ends_on_cpu)}
    ends = replace(measured, topology=spec, parts=ends_on_cpu, cpu_s=cpu_s)

    steps = _steps(calibrate(ends).template, "api")

    assert [step["kind"] for step in steps][-1] == "cpu_bound_operation"
    assert len(steps) == 4
    assert steps[0]["step_operation"]["cpu_time"]["mean"] == pytest.approx(0.001)  # type: ignore[index]


def test_with_loop_cost_the_overhead_becomes_the_event_loop() -> None:
    # 1 ms of overhead per request and 2 wake-ups per request at the calibration load; the
    # endpoint is two bursts: parsing + CPU, then the answer after the sleep.
    measured = _cpu_io_measurements()
    measured = replace(measured, wakeups={"api": 2.0 * len(measured.parts)})

    calibration = calibrate(measured, loop_cost=True)

    (server,) = calibration.template["topology_graph"]["nodes"]["servers"]
    assert server["event_loop"] == {
        "per_wakeup_s": pytest.approx((0.001 - 2 * SMALLEST_S) / 2),
        "per_callback_s": 0.0,
    }
    assert server["endpoints"][0]["steps"][0]["step_operation"]["cpu_time"]["mean"] == SMALLEST_S
    assert any("api: event_loop" in note for note in calibration.notes)
    scenario = Scenario.model_validate(calibration.scenario(50.0, 120.0, seed=3))
    assert find_warnings(scenario) == []


def test_with_loop_cost_a_fit_splits_the_overhead() -> None:
    measured = _cpu_io_measurements()
    measured = replace(measured, wakeups={"api": 2.0 * len(measured.parts)})
    fit = WakeupCost(per_request_s=0.0045, per_wakeup_s=0.0003, r_squared=0.9, runs=6)

    calibration = calibrate(measured, loop_cost=True, fits={"api": fit})

    (server,) = calibration.template["topology_graph"]["nodes"]["servers"]
    assert server["event_loop"] == {
        "per_wakeup_s": pytest.approx(0.0006 / 2),
        "per_callback_s": pytest.approx((0.0004 - 2 * SMALLEST_S) / 2),
    }


def test_with_loop_cost_the_idle_ping_splits_the_overhead_at_one_load() -> None:
    # The endpoint: 1 ms of overhead at 2 wake-ups per request; the idle /ping: 0.6 ms of CPU
    # at 1 wake-up. So a wake-up costs (1 - 0.6) / (2 - 1) = 0.4 ms, 0.8 ms per request,
    # spread over the request's two bursts.
    measured = _cpu_io_measurements()
    measured = replace(
        measured,
        wakeups={"api": 2.0 * len(measured.parts)},
        ping_cpu_s=0.0006,
        ping_wakeups=1.0,
    )

    calibration = calibrate(measured, loop_cost=True)

    (server,) = calibration.template["topology_graph"]["nodes"]["servers"]
    assert server["event_loop"] == {
        "per_wakeup_s": pytest.approx(0.0008 / 2),
        "per_callback_s": pytest.approx((0.0002 - 2 * SMALLEST_S) / 2),
    }
    assert any("/ping at 1.00 wake-ups" in note for note in calibration.notes)


def test_a_ping_that_woke_the_loop_as_often_leaves_no_split() -> None:
    assert ping_split(0.001, 1.1, 0.0006, 1.0) is None
    assert ping_split(0.0005, 2.0, 0.0006, 1.0) is None  # a slope below 0


def test_the_calibrated_scenario_is_valid_and_draws_no_warning() -> None:
    calibration = calibrate(_cpu_io_measurements())

    scenario = Scenario.model_validate(calibration.scenario(50.0, 120.0, seed=3))

    assert find_warnings(scenario) == []
    edges = {edge.id: edge.latency.mean for edge in scenario.topology_graph.edges}
    assert edges["client-api"] == pytest.approx(0.0003)
    assert edges["api-client"] == pytest.approx(0.0003)


def test_the_scenario_carries_the_asked_rate_and_horizon_and_leaves_the_template() -> None:
    calibration = calibrate(_cpu_io_measurements())

    scenario = calibration.scenario(75.0, 300.0)

    assert scenario["rqs_input"]["arrival_rate"]["points"] == [{"at_s": 0, "rate_per_s": 75.0}]
    assert scenario["sim_settings"]["total_simulation_time"] == 300.0
    assert calibration.template["rqs_input"]["arrival_rate"]["points"][0]["rate_per_s"] == 1.0


def test_utilisation_is_rate_times_cpu_per_request_over_cores() -> None:
    measured = _cpu_io_measurements()
    calibration = calibrate(measured)
    cpu_per_request = measured.cpu_s["api"] / len(measured.parts)

    rho, where = calibration.utilisation(100.0)

    assert rho == pytest.approx(100.0 * cpu_per_request)
    assert where == "api cores"
    assert calibration.rate_at(0.8) == pytest.approx(0.8 / cpu_per_request)


def test_a_saturating_pool_is_the_busiest_resource() -> None:
    # 2 connections each held 10 ms per request, 2.5 ms of CPU: the pool saturates at 200/s,
    # the core at 400/s.
    parts = [
        {"api.0.cpu": 0.002, "api.1.pg_wait": 0.0001, "api.1.pg_query": 0.010} for _ in range(100)
    ]
    measured = Measurements(topology("db_pool"), parts, {"api": 0.25}, 0.001, 0.0004, 1)

    calibration = calibrate(measured)

    assert calibration.utilisation(100.0) == (pytest.approx(0.5), "api pool")
    resources = calibration.template["topology_graph"]["nodes"]["servers"][0]["server_resources"]
    assert resources == {"cpu_cores": 1, "db_connection_pool": 2}


def _cached_call_rows() -> list[dict[str, float]]:
    rows = []
    for index in range(100):
        hit = index % 4 != 0  # 75 % hits
        row = {
            "api.0.cpu": 0.002,
            "api.1.call": 0.006,
            "api.1.remote_server": 0.004,
            "store.0.cpu": 0.001,
            "store.1.cache_get": 0.0002 if hit else 0.0003,
            "store.1.cache_hit": 1.0 if hit else 0.0,
        }
        if not hit:
            row |= {
                "store.1.miss.0.pg_wait": 0.0,
                "store.1.miss.0.pg_query": 0.0005,
                "store.1.cache_set": 0.0002,
            }
        rows.append(row)
    return rows


def test_a_cache_gets_its_measured_hit_ratio_and_branches() -> None:
    rows = _cached_call_rows()
    measured = Measurements(
        topology("cached_call"), rows, {"api": 0.3, "store": 0.15}, 0.001, 0.0004, 1
    )

    calibration = calibrate(measured)
    (cache,) = [s for s in _steps(calibration.template, "store") if s["kind"] == "cache"]

    assert cache["hit_ratio"] == pytest.approx(0.75)
    assert [s["kind"] for s in cache["miss"]] == ["io_cache", "io_db", "io_cache"]  # type: ignore[index]
    hit_get = cache["hit"][0]["step_operation"]["io_waiting_time"]  # type: ignore[index]
    assert hit_get == {"mean": pytest.approx(0.0002), "distribution": "deterministic"}
    Scenario.model_validate(calibration.scenario(40.0, 60.0))


def test_call_edges_are_the_call_less_the_called_handler_and_overhead_halved() -> None:
    # store: 1.5 ms CPU per visit - 1 ms timed = 0.5 ms overhead;
    # (6 ms call - 4 ms handler - 0.5 ms overhead) / 2 = 0.75 ms each way.
    measured = Measurements(
        topology("cached_call"), _cached_call_rows(), {"api": 0.3, "store": 0.15}, 0.001, 0.0, 1
    )

    edges = calibrate(measured).template["topology_graph"]["edges"]

    latency = {edge["id"]: edge["latency"]["mean"] for edge in edges}
    assert latency["api-store"] == pytest.approx(0.00075)
    assert latency["store-api"] == pytest.approx(0.00075)


def test_visits_and_timed_cpu_count_only_the_requests_a_service_saw() -> None:
    rows = [{"a.0.cpu": 0.002}, {"b.0.cpu": 0.004}, {"a.0.cpu": 0.004, "a.1.sleep": 0.01}]

    assert visits(rows, "a") == 2
    assert timed_cpu_per_visit(rows, "a") == pytest.approx(0.003)


def test_a_balanced_topology_gets_a_round_robin_balancer_over_its_servers() -> None:
    rows = [{f"api-{1 + i % 2}.0.cpu": 0.004, f"api-{1 + i % 2}.1.sleep": 0.01} for i in range(100)]
    measured = Measurements(
        topology("balanced"), rows, {"api-1": 0.25, "api-2": 0.25, "proxy": 0.1}, 0.002, 0.0, 1
    )

    calibration = calibrate(measured)

    balancer = calibration.template["topology_graph"]["nodes"]["load_balancer"]
    assert balancer["server_covered"] == ["api-1", "api-2"]
    assert calibration.utilisation(100.0)[0] == pytest.approx(100 * 0.5 * 0.005)
    Scenario.model_validate(calibration.scenario(100.0, 60.0))


def test_cpu_per_request_under_the_timed_bursts_is_noted_and_floored() -> None:
    measured = _cpu_io_measurements()
    coarse = Measurements(measured.topology, measured.parts, {"api": 0.0}, 0.001, 0.0004, 1)

    calibration = calibrate(coarse)

    assert (
        _steps(calibration.template, "api")[0]["step_operation"]["cpu_time"]["mean"] == SMALLEST_S
    )  # type: ignore[index]
    assert any("too coarse" in note for note in calibration.notes)


def test_calibration_needs_requests() -> None:
    measured = _cpu_io_measurements()
    empty = Measurements(measured.topology, [], measured.cpu_s, 0.001, 0.0, 1)

    with pytest.raises(ValueError, match="no answered requests"):
        calibrate(empty)
