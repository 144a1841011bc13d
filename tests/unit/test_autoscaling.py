"""The horizontal autoscaler against Kubernetes' documented HPA algorithm, exactly.

`Reference` below is written from kubernetes.io ("Horizontal Pod Autoscaling":
algorithm details, stabilisation window, scaling policies) without the engine's code;
the tests drive both with the same metrics and compare the replica count at every sync.
The engine tests run scripted loads (a rate schedule stepping at sync ticks, a
deterministic CPU step) whose utilisation per ready replica is known: the arrival rate
times the CPU step over the replicas taking traffic. The loads keep every ratio and every
replica product well away from the tolerance and from whole numbers, so the Poisson noise
of a 15 s window (under 1%) cannot change a decision.
"""

import math
from dataclasses import dataclass, field
from typing import Any

import pytest

from asyncflow_backend.builder import ScenarioBuilder
from asyncflow_backend.plots import build_figure
from asyncflow_backend.runtime.policies.horizontal_scaling import HorizontalScaling, recommend
from asyncflow_backend.runtime.runner import run_scenario
from asyncflow_backend.schemas.autoscaling import Autoscaler
from asyncflow_backend.schemas.loading import ScenarioValidationError, parse_scenario
from asyncflow_backend.schemas.replicas import expand_replicas
from asyncflow_backend.schemas.results import AutoscalingStats
from support.documents import cpu, io, route, scenario_document, server
from support.topologies import balanced

CPU_S = 0.002


@dataclass
class Reference:
    """The HPA as the Kubernetes docs state it, for one metric, ready pods only."""

    target: float
    min_replicas: int
    max_replicas: int
    tolerance: float = 0.1
    up_window: float = 0
    down_window: float = 300
    up_policies: list[tuple[str, int, int]] = field(
        default_factory=lambda: [("percent", 100, 15), ("pods", 4, 15)]
    )
    down_policies: list[tuple[str, int, int]] = field(
        default_factory=lambda: [("percent", 100, 15)]
    )
    up_select: str = "max"
    down_select: str = "max"
    history: list[tuple[float, int]] = field(default_factory=list)
    changes: list[tuple[float, int]] = field(default_factory=list)
    """(time, signed change)."""

    def desired(self, ready_values: list[float], unready: int, current: int) -> int:
        ratio = sum(ready_values) / len(ready_values) / self.target
        if unready and ratio > 1:
            # Not-yet-ready pods count as using 0% on a scale-up.
            ratio = sum(ready_values) / (len(ready_values) + unready) / self.target
            if ratio <= 1 + self.tolerance:
                return current
            return max(current, math.ceil(round(ratio * (len(ready_values) + unready), 6)))
        if abs(ratio - 1) <= self.tolerance:
            return current
        return math.ceil(round(ratio * len(ready_values), 6))

    def sync(self, now: float, ready_values: list[float], unready: int, current: int) -> int:
        raw = self.desired(ready_values, unready, current)
        in_up = [r for t, r in self.history if now - t < self.up_window] + [raw]
        in_down = [r for t, r in self.history if now - t < self.down_window] + [raw]
        self.history.append((now, raw))
        proposal = min(max(current, min(in_up)), max(in_down))
        if proposal > current:
            bounds = [self._bound(now, current, p, +1) for p in self.up_policies]
            allowed = (
                current
                if self.up_select == "disabled"
                else (max(bounds) if self.up_select == "max" else min(bounds))
            )
            proposal = min(proposal, self.max_replicas, max(allowed, current))
        elif proposal < current:
            bounds = [self._bound(now, current, p, -1) for p in self.down_policies]
            allowed = (
                current
                if self.down_select == "disabled"
                else (min(bounds) if self.down_select == "max" else max(bounds))
            )
            proposal = max(proposal, self.min_replicas, min(allowed, current))
        if proposal != current:
            self.changes.append((now, proposal - current))
        return proposal

    def _bound(self, now: float, current: int, policy: tuple[str, int, int], sign: int) -> int:
        kind, value, period = policy
        added = sum(c for t, c in self.changes if now - t < period and c > 0)
        removed = -sum(c for t, c in self.changes if now - t < period and c < 0)
        start = current - added + removed
        if kind == "pods":
            return start + sign * value
        change = start * value / 100
        return (
            math.ceil(round(start + change, 6))
            if sign > 0
            else math.floor(round(start - change, 6))
        )


def engine(spec: Autoscaler) -> HorizontalScaling:
    return HorizontalScaling(spec)


def autoscaler(**fields: Any) -> Autoscaler:
    return Autoscaler.model_validate(
        {"metric": "cpu_utilisation", "target": 0.5, "max_replicas": 10} | fields
    )


def both(spec: Autoscaler, reference: Reference, loads: list[float], start: int) -> list[int]:
    """Sync both every 15 s with `loads` (total busy cores, shared by the ready replicas),
    asserting they agree at each tick; returns the counts."""
    ours = engine(spec)
    current = theirs = start
    counts = []
    for k, load in enumerate(loads, 1):
        now = 15.0 * k
        values = [load / current] * current
        recommended = recommend(current, values, 0, spec.target, spec.tolerance)
        assert recommended is not None
        current = ours.decide(now, current, recommended)
        theirs = reference.sync(now, [load / theirs] * theirs, 0, theirs)
        assert current == theirs, f"tick {k}"
        counts.append(current)
    return counts


# The recommendation.


def test_the_recommendation_is_ceil_of_replicas_times_metric_over_target() -> None:
    assert recommend(4, [0.9] * 4, 0, 0.6, 0.1) == 6  # 4 * 1.5
    assert recommend(4, [0.3] * 4, 0, 0.6, 0.1) == 2  # 4 * 0.5
    assert recommend(3, [0.7] * 3, 0, 0.5, 0.1) == 5  # ceil(4.2)
    assert recommend(3, [0.0] * 3, 0, 0.5, 0.1) == 0


def test_a_ratio_within_the_tolerance_keeps_the_count() -> None:
    assert recommend(10, [0.54] * 10, 0, 0.5, 0.1) == 10  # ratio 1.08: skipped
    assert recommend(10, [0.56] * 10, 0, 0.5, 0.1) == 12  # ratio 1.12: ceil(11.2)
    assert recommend(10, [0.46] * 10, 0, 0.5, 0.1) == 10  # ratio 0.92: skipped
    assert recommend(10, [0.56] * 10, 0, 0.5, 0.15) == 10


def test_unready_replicas_count_as_zero_on_a_scale_up_and_are_set_aside_otherwise() -> None:
    # Two ready at 0.9 over 0.5: 1.8 alone; with two starting, 0.9 over all four: the
    # ratio is within the tolerance, so no change.
    assert recommend(4, [0.9, 0.9], 2, 0.5, 0.1) == 4
    # With one starting: 1.8 / 3 / 0.5 = 1.2 -> ceil(3.6).
    assert recommend(3, [0.9, 0.9], 1, 0.5, 0.1) == 4
    # Reversed direction once the unready count: no change.
    assert recommend(6, [0.6, 0.6], 4, 0.5, 0.1) == 6
    # A scale-down sets them aside: ceil(0.4 * 2).
    assert recommend(4, [0.2, 0.2], 2, 0.5, 0.1) == 1
    assert recommend(4, [], 4, 0.5, 0.1) is None


# Stabilisation and policies, step by step against the reference.


def test_the_scale_down_window_holds_the_highest_recommendation() -> None:
    spec = autoscaler(min_replicas=1, behavior={"scale_down": {"stabilisation_window_s": 60}})
    loads = [2.0, 2.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    counts = both(spec, Reference(0.5, 1, 10, down_window=60), loads, start=4)
    # 4 ready at 0.5 each is on target; the drop to 0.125 each asks for 1, held at 4 while
    # a recommendation of 4 is less than 60 s old (made at 30 s: until 90 s).
    assert counts == [4, 4, 4, 4, 4, 1, 1, 1]


def test_the_default_scale_down_window_is_five_minutes() -> None:
    spec = autoscaler(min_replicas=1)
    counts = both(spec, Reference(0.5, 1, 10), [2.0] + [0.5] * 21, start=4)
    assert counts[:20] == [4] * 20
    assert counts[20:] == [1, 1]


def test_the_scale_up_window_takes_the_lowest_recommendation() -> None:
    spec = autoscaler(behavior={"scale_up": {"stabilisation_window_s": 30}})
    reference = Reference(0.5, 1, 10, up_window=30)
    counts = both(spec, reference, [1.0, 2.0, 2.0, 2.0, 2.0], start=2)
    # At 30 s the window still holds the 2 recommended at 15 s; at 45 s that one is 30 s
    # old, out of the window.
    assert counts == [2, 2, 4, 4, 4]


def test_a_pods_policy_caps_the_scale_up_per_period() -> None:
    spec = autoscaler(
        behavior={"scale_up": {"policies": [{"type": "pods", "value": 1, "period_s": 30}]}}
    )
    reference = Reference(0.5, 1, 10, up_policies=[("pods", 1, 30)])
    counts = both(spec, reference, [4.0] * 8, start=2)
    # One replica per 30 s: a change at 15 s still counts at 30 s, not at 45 s.
    assert counts == [3, 3, 4, 4, 5, 5, 6, 6]


def test_a_percent_policy_and_select_min() -> None:
    behavior = {
        "scale_up": {
            "select_policy": "min",
            "policies": [
                {"type": "percent", "value": 50, "period_s": 15},
                {"type": "pods", "value": 4, "period_s": 15},
            ],
        }
    }
    spec = autoscaler(max_replicas=20, behavior=behavior)
    reference = Reference(
        0.5, 1, 20, up_policies=[("percent", 50, 15), ("pods", 4, 15)], up_select="min"
    )
    counts = both(spec, reference, [8.0] * 5, start=2)
    assert counts == [3, 5, 8, 12, 16]


def test_the_default_scale_up_is_the_larger_of_doubling_and_four_more() -> None:
    spec = autoscaler(max_replicas=40)
    counts = both(spec, Reference(0.5, 1, 40), [15.0] * 4, start=1)
    assert counts == [5, 10, 20, 30]


def test_a_disabled_direction_never_moves_and_max_replicas_caps() -> None:
    spec = autoscaler(max_replicas=6, behavior={"scale_down": {"select_policy": "disabled"}})
    reference = Reference(0.5, 1, 6, down_select="disabled")
    counts = both(spec, reference, [10.0, 10.0, 0.1, 0.1], start=2)
    assert counts == [6, 6, 6, 6]


def test_a_percent_scale_down_rounds_down_and_stops_at_min_replicas() -> None:
    behavior = {
        "scale_down": {
            "stabilisation_window_s": 0,
            "policies": [{"type": "percent", "value": 30, "period_s": 15}],
        }
    }
    spec = autoscaler(min_replicas=2, behavior=behavior)
    reference = Reference(0.5, 2, 10, down_window=0, down_policies=[("percent", 30, 15)])
    counts = both(spec, reference, [0.1] * 5, start=10)
    assert counts == [7, 4, 2, 2, 2]


# The engine on scripted loads.


def steps(*points: tuple[float, float]) -> dict[str, Any]:
    return {
        "id": "gen",
        "arrival_rate": {
            "shape": "steps",
            "points": [{"at_s": t, "rate_per_s": r} for t, r in points],
        },
    }


def scaled_group(rates: dict[str, Any], horizon_s: float, **scaler: Any) -> dict[str, Any]:
    api = server("api", cpu(CPU_S), replicas=scaler.pop("replicas", 2))
    api["autoscaler"] = {"metric": "cpu_utilisation", "target": 0.5, "max_replicas": 6} | scaler
    return balanced(rates, [api], horizon_s=horizon_s, seed=11)


def run_autoscaled(document: dict[str, Any]) -> AutoscalingStats:
    results = run_scenario(parse_scenario(document), seed=11)
    stats = results.replica_groups["api"].autoscaling
    assert stats is not None
    return stats


def test_a_load_step_scales_up_by_policy_skips_within_tolerance_and_holds_a_scale_down() -> None:
    # 500/s x 2 ms = 1 core: 0.5 on each of 2 (on target). 780/s: 0.78 each, ratio 1.56,
    # ceil(3.12) = 4, capped to 3 by one pod per 15 s; then 1.56/3 = 0.52, ratio 1.04:
    # within the tolerance. 200/s: 0.4/3, ratio 0.27, asks for 1; the 60 s window holds 3
    # until the last recommendation of 3 (150 s) is 60 s old.
    document = scaled_group(
        steps((0, 500), (60, 780), (150, 200)),
        240,
        min_replicas=1,
        behavior={
            "scale_up": {"policies": [{"type": "pods", "value": 1, "period_s": 15}]},
            "scale_down": {"stabilisation_window_s": 60},
        },
    )
    stats = run_autoscaled(document)

    reference = Reference(0.5, 1, 6, up_policies=[("pods", 1, 15)], down_window=60)
    expected, current = [], 2
    for k in range(1, 16):
        rate = 500 if k <= 4 else 780 if k <= 10 else 200
        current = reference.sync(15.0 * k, [rate * CPU_S / current] * current, 0, current)
        expected.append(current)
    assert expected == [2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 1]
    assert stats.ticks.t == [15.0 * k for k in range(1, 16)]
    assert stats.ticks.replicas == expected
    assert stats.ticks.recommended[4:6] == [4, 3]
    assert [(e.t, e.replicas_before, e.replicas_after) for e in stats.events] == [
        (75.0, 2, 3),
        (210.0, 3, 1),
    ]
    assert stats.replicas_over_time == [(0.0, 2), (75.0, 3), (210.0, 1), (240.0, 1)]
    assert stats.replicas_mean == pytest.approx((2 * 75 + 3 * 135 + 1 * 30) / 240)


def test_starting_replicas_take_no_traffic_and_count_as_zero_on_a_scale_up() -> None:
    # 400/s: 0.8 cores, 0.4 on each of 2, on target. 850/s: 0.85 each, ratio 2.125,
    # ceil(4.25) = 5. The three new replicas start for 15 s (no traffic) and are ready for
    # CPU a whole period later. At 60 s the two ready ones still ran at 0.85 (ratio
    # 2.125 > 1), so the three unready count as 0: 1.7 / 5 / 0.4 = 0.85 < 1 reverses the
    # direction, no change (taking the ready ones times all five would ask for 11). At
    # 75 s all five are ready at 0.34: ratio 0.85, ceil(4.25) = 5.
    document = scaled_group(
        steps((0, 400), (30, 850)), 120, target=0.4, max_replicas=12, startup_delay_s=15
    )
    stats = run_autoscaled(document)

    assert stats.ticks.replicas == [2, 2, 5, 5, 5, 5, 5]
    assert stats.ticks.ready == [2, 2, 2, 2, 5, 5, 5]
    assert stats.ticks.recommended[2:5] == [5, 5, 5]
    assert stats.ready_over_time == [(0.0, 2), (60.0, 5), (120.0, 5)]
    metric = stats.ticks.metric
    assert metric[3] == pytest.approx(0.85, rel=0.03)
    assert metric[4] == pytest.approx(0.34, rel=0.03)


def test_a_removed_replica_drains_its_requests_and_gets_no_new_ones() -> None:
    # 1 s of I/O per request: a replica removed at 30 s still holds about a second of
    # requests, which finish; none fails, none arrives after.
    api = server("api", io(1.0), replicas=3)
    api["autoscaler"] = {
        "metric": "in_flight_requests",
        "target": 10,
        "min_replicas": 1,
        "max_replicas": 3,
        "behavior": {"scale_down": {"stabilisation_window_s": 0}},
    }
    document = balanced(steps((0, 6)), [api], horizon_s=90, seed=3)
    results = run_scenario(parse_scenario(document), seed=3)

    stats = results.replica_groups["api"].autoscaling
    assert stats is not None
    assert stats.events[0].t == 15.0
    assert stats.events[0].replicas_after == 1
    assert results.requests.completed == results.requests.generated - results.requests.in_flight
    removed = [results.servers[f"api-{k}"].latency for k in (2, 3)]
    kept = results.servers["api-1"].latency
    assert kept is not None
    assert all(s is None or s.count < 0.3 * kept.count for s in removed)


def test_in_flight_requests_scale_a_group_up() -> None:
    # Little: 40/s x 1 s = 40 in flight over 2 replicas, 20 each over a target of 5.
    api = server("api", io(1.0), replicas=2)
    api["autoscaler"] = {"metric": "in_flight_requests", "target": 5, "max_replicas": 10}
    document = balanced(steps((0, 40)), [api], horizon_s=60, seed=5)
    stats = run_autoscaled_any(document)

    assert stats.ticks.metric[0] == pytest.approx(20, rel=0.3)
    assert stats.ticks.replicas[-1] >= 6


def run_autoscaled_any(document: dict[str, Any]) -> AutoscalingStats:
    stats = run_scenario(parse_scenario(document), seed=5).replica_groups["api"].autoscaling
    assert stats is not None
    return stats


def test_a_group_is_written_out_at_max_replicas_and_the_others_wait_out_of_rotation() -> None:
    document = scaled_group(steps((0, 100)), 30, max_replicas=5)
    built = expand_replicas(parse_scenario(document))

    assert [s.id for s in built.topology_graph.nodes.servers] == [f"api-{k}" for k in range(1, 6)]
    results = run_scenario(parse_scenario(document), seed=1)
    served = [results.servers[f"api-{k}"].latency for k in range(1, 6)]
    assert all(s is not None and s.count > 0 for s in served[:2])
    assert all(s is None or s.count == 0 for s in served[2:])
    assert results.replica_groups["api"].replicas == 5


def test_a_scenario_without_an_autoscaler_has_none_in_its_results() -> None:
    results = run_scenario(
        parse_scenario(
            balanced(steps((0, 10)), [server("api", cpu(0.001), replicas=2)], horizon_s=10)
        ),
        seed=1,
    )
    assert results.replica_groups["api"].autoscaling is None


# Validation.


def problems(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ScenarioValidationError) as caught:
        parse_scenario(document)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("change", "where", "words"),
    [
        ({"replicas": 1, "min_replicas": 2}, "replicas", "outside"),
        ({"replicas": 7}, "replicas", "outside"),
        ({"min_replicas": 4, "max_replicas": 3}, "max_replicas", "below min_replicas"),
        ({"target": 1.5}, "target", "at most 1"),
        ({"tolerance": 1.5}, "tolerance", "less than 1"),
        ({"sync_period_s": 0}, "sync_period_s", ""),
        ({"behavior": {"scale_up": {"policies": []}}}, "policies", ""),
        ({"behavior": {"scale_down": {"select_policy": "sometimes"}}}, "select_policy", ""),
        ({"metric": "memory"}, "metric", ""),
    ],
)
def test_bad_autoscalers_are_refused_naming_the_field(
    change: dict[str, Any], where: str, words: str
) -> None:
    replicas = change.pop("replicas", 2)
    document = scaled_group(steps((0, 10)), 30, replicas=replicas, **change)

    found = problems(document)
    assert any(where in p and words in p for p in found), found


def test_an_autoscaler_needs_replicas_and_a_balancer() -> None:
    document = scaled_group(steps((0, 10)), 30)
    del document["topology_graph"]["nodes"]["servers"][0]["replicas"]
    assert any("give `replicas`" in p for p in problems(document))

    api = server("api", cpu(0.001), replicas=2)
    api["autoscaler"] = {"metric": "cpu_utilisation", "target": 0.5, "max_replicas": 4}
    other = server("other", cpu(0.001))
    lonely = scenario_document(
        steps((0, 10)),
        [other, api],
        [*route("gen", "client", "lb", "other", "client")],
        horizon_s=30,
        load_balancer={"id": "lb", "server_covered": ["other"]},
    )
    assert any(
        "servers[1].autoscaler" in p and "no load balancer covers it" in p for p in problems(lonely)
    )


def test_the_builder_writes_an_autoscaler() -> None:
    scenario = (
        ScenarioBuilder()
        .generator("gen", users=5, rpm=60)
        .client("client")
        .load_balancer("lb", covers=["api"])
        .server("api", replicas=2)
        .autoscaler(
            "cpu_utilisation",
            0.6,
            min_replicas=2,
            max_replicas=8,
            startup_delay_s=30,
            scale_up={"policies": [{"type": "pods", "value": 2, "period_s": 60}]},
        )
        .endpoint("/")
        .cpu(0.001)
        .chain("gen", "client", "lb", latency=0.001)
        .edge("lb", "api", latency=0.001)
        .edge("api", "client", latency=0.001)
        .settings(horizon=5)
        .build()
    )

    scaler = scenario.topology_graph.nodes.servers[0].autoscaler
    assert scaler is not None
    assert scaler.max_replicas == 8
    assert scaler.behavior.down.stabilisation_window_s == 300
    assert scaler.behavior.up.policies is not None
    assert scaler.behavior.up.policies[0].value == 2


# Charts.


def test_the_replicas_chart_draws_the_count_in_service_and_ready() -> None:
    document = scaled_group(
        steps((0, 400), (30, 850)), 120, target=0.4, max_replicas=12, startup_delay_s=15
    )
    results = run_scenario(parse_scenario(document), seed=11)

    (ax, *_) = build_figure("replicas", results).axes
    lines = {line.get_gid(): line for line in ax.get_lines()}
    in_service, ready = lines["replicas-api"], lines["ready-api"]
    assert list(in_service.get_ydata()) == [2, 5, 5]
    assert list(ready.get_xdata()) == [0.0, 60.0, 120.0]
    empty = build_figure(
        "replicas",
        run_scenario(
            parse_scenario(balanced(steps((0, 10)), [server("api", cpu(0.001))], horizon_s=10)),
            seed=1,
        ),
    )
    assert any(t.get_gid() == "no-data" for t in empty.axes[0].texts)
