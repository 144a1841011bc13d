"""Does it recover? The rule on synthetic series, exactly; the triggers a scenario has; the
settings' checks; and the verdict in a run's results."""

import numpy as np
import pytest

from asyncflow_backend.metrics.recovery import QueueSeries, judge
from asyncflow_backend.runtime.runner import run_scenario
from asyncflow_backend.schemas.loading import ScenarioValidationError, parse_scenario
from asyncflow_backend.schemas.settings import RecoverySettings
from asyncflow_backend.schemas.triggers import Trigger, scenario_triggers
from support.documents import cpu, exponential, outage, poisson_arrivals, server, slowdown, spike
from support.topologies import balanced, direct

SETTINGS = RecoverySettings(window_s=10, tolerance=0.1, baseline_s=60)
HORIZON = 300.0


def series(*pieces: tuple[int, float]) -> np.ndarray:
    """Per-second values: each piece is (seconds, value), in order."""
    return np.concatenate([np.full(n, v, dtype=np.float64) for n, v in pieces])


def trigger(start: float = 100.0, end: float = 130.0, trigger_id: str = "t") -> Trigger:
    return Trigger(trigger_id, "server_down", start, end)


def test_recovered_at_the_first_window_that_meets_the_baseline() -> None:
    # 40/s before, nothing during, 20/s for 15 s after, then 40/s again: the window
    # [142, 152) averages (3 x 20 + 7 x 40) / 10 = 34 < 36, [143, 153) exactly 36.
    goodput = series((100, 40), (30, 0), (15, 20), (155, 40))
    [verdict] = judge([trigger()], goodput, None, HORIZON, SETTINGS)
    assert verdict.recovered is True
    assert verdict.recovered_at_s == 143.0
    assert verdict.recovery_s == 13.0
    assert verdict.baseline_goodput_rps == 40.0
    assert verdict.baseline_queue is None
    assert verdict.judged_until_s == HORIZON


def test_a_goodput_that_stays_low_is_a_metastable_failure() -> None:
    goodput = series((100, 40), (200, 35))  # 87.5 % of the baseline: under the 90 % floor
    [verdict] = judge([trigger()], goodput, None, HORIZON, SETTINGS)
    assert verdict.recovered is False
    assert verdict.recovered_at_s is None
    assert verdict.recovery_s is None
    assert verdict.note.startswith("metastable failure")


def test_the_tolerance_is_inclusive() -> None:
    goodput = series((100, 40), (200, 36))
    [verdict] = judge([trigger()], goodput, None, HORIZON, SETTINGS)
    assert verdict.recovered_at_s == 130.0


def test_the_queue_must_come_back_too() -> None:
    # Goodput is back at once, but the queue (sampled every 0.5 s) drains linearly from 60
    # requests at 130 s to 0 at 190 s; the baseline's highest window mean is 2, so the bound
    # is 1.1 x 2 + 1 = 3.2.
    goodput = series((300, 40))
    t = np.arange(0, 300, 0.5)
    queue = np.where(t < 100, 2.0, np.where(t < 130, 60.0, np.clip(60 - (t - 130), 0, None)))
    [verdict] = judge([trigger()], goodput, QueueSeries(0.5, queue), HORIZON, SETTINGS)
    assert verdict.baseline_queue == 2.0
    # The samples of [s, s + 10) average 60 - (s - 130) - 4.75, at most 3.2 once s >= 182.05.
    assert verdict.recovered_at_s == 183.0


def test_an_all_but_empty_baseline_allows_one_request() -> None:
    goodput = series((300, 40))
    queue = series((100, 0), (30, 50), (170, 0.9)).repeat(1)
    [verdict] = judge([trigger()], goodput, QueueSeries(1.0, queue), HORIZON, SETTINGS)
    assert verdict.baseline_queue == 0.0
    assert verdict.recovered_at_s == 130.0


def test_no_baseline_before_an_early_trigger() -> None:
    [verdict] = judge([trigger(5, 30)], series((300, 40)), None, HORIZON, SETTINGS)
    assert verdict.recovered is None
    assert "cannot be judged" in verdict.note


def test_no_whole_window_before_the_horizon() -> None:
    [verdict] = judge([trigger(100, 295)], series((300, 40)), None, HORIZON, SETTINGS)
    assert verdict.recovered is None
    assert verdict.baseline_goodput_rps == 40.0


def test_the_baseline_is_the_seconds_just_before_the_trigger() -> None:
    # 10/s long before, 40/s in the 60 s before: the baseline is 40.
    goodput = series((40, 10), (60, 40), (30, 0), (170, 37))
    [verdict] = judge([trigger()], goodput, None, HORIZON, SETTINGS)
    assert verdict.baseline_goodput_rps == 40.0
    assert verdict.recovered_at_s == 130.0


def test_a_trigger_before_the_previous_one_recovered_keeps_its_baseline() -> None:
    # The first trigger leaves goodput at 20/s; the second is judged against the 40/s
    # before the first, not the 20/s before itself, and is not judged past the horizon.
    goodput = series((100, 40), (30, 0), (70, 20), (20, 0), (80, 40))
    first, second = trigger(100, 130, "a"), trigger(200, 220, "b")
    one, two = judge([first, second], goodput, None, HORIZON, SETTINGS)
    assert one.recovered is False
    assert one.judged_until_s == 200.0
    assert "next trigger" in one.note
    assert two.baseline_goodput_rps == 40.0
    assert two.recovered_at_s == 220.0


def test_a_trigger_after_a_recovery_measures_its_own_baseline_from_it() -> None:
    goodput = series((100, 40), (30, 0), (70, 50), (20, 0), (80, 50))
    one, two = judge(
        [trigger(100, 130, "a"), trigger(200, 220, "b")], goodput, None, HORIZON, SETTINGS
    )
    assert one.recovered_at_s == 130.0
    assert two.baseline_goodput_rps == 50.0


def scenario(**options: object) -> dict[str, object]:
    return direct(poisson_arrivals(20), [server("srv", cpu(0.01))], horizon_s=200, **options)


def test_triggers_of_events_capacity_dips_and_load_spikes() -> None:
    document = balanced(
        poisson_arrivals(20),
        [server("a", cpu(0.01), cpu_cores=4), server("b", cpu(0.01))],
        horizon_s=400,
        events=[
            outage("down", "a", start=50, end=60),
            spike("slow", "lb-b", start=55, end=70, spike_s=0.1),
        ],
    )
    servers = document["topology_graph"]["nodes"]["servers"]  # type: ignore[index]
    servers[0]["capacity_schedule"] = [
        {"at_s": 100, "cpu_cores": 2},
        {"at_s": 110, "cpu_cores": 1},
        {"at_s": 120, "cpu_cores": 4},
        {"at_s": 300, "cpu_cores": 1},  # never given back: a change of level
    ]
    document["rqs_input"] = {
        "id": "gen",
        "arrival_rate": {
            "shape": "steps",
            "points": [
                {"at_s": 0, "rate_per_s": 10},
                {"at_s": 150, "rate_per_s": 30},
                {"at_s": 160, "rate_per_s": 10},
                {"at_s": 200, "rate_per_s": 40},
                {"at_s": 210, "rate_per_s": 5},  # settles lower: a change of level
            ],
        },
    }
    triggers = scenario_triggers(parse_scenario(document))
    assert triggers == [
        Trigger("down+slow", "server_down+network_spike_start", 50, 70),
        Trigger("a:capacity@100", "capacity_dip", 100, 120),
        Trigger("gen:rate@150", "load_spike", 150, 160),
    ]


def test_a_ramp_spike_starts_where_the_rate_starts_rising() -> None:
    document = scenario()
    document["rqs_input"] = {
        "id": "gen",
        "arrival_rate": {
            "shape": "ramp",
            "points": [
                {"at_s": 0, "rate_per_s": 10},
                {"at_s": 50, "rate_per_s": 10},
                {"at_s": 60, "rate_per_s": 30},
                {"at_s": 80, "rate_per_s": 10},
            ],
        },
    }
    assert scenario_triggers(parse_scenario(document)) == [
        Trigger("gen:rate@50", "load_spike", 50, 80)
    ]


@pytest.mark.parametrize(
    ("field", "value"), [("window_s", 0), ("window_s", 2.5), ("tolerance", 1), ("baseline_s", 0)]
)
def test_bad_settings_name_the_field(field: str, value: float) -> None:
    document = scenario(settings={"recovery": {field: value}})
    with pytest.raises(ScenarioValidationError) as caught:
        parse_scenario(document)
    assert any(p.loc[:3] == ("sim_settings", "recovery", field) for p in caught.value.problems)


def test_a_run_without_a_trigger_has_no_recovery() -> None:
    assert run_scenario(parse_scenario(scenario()), seed=1).recovery is None


def test_a_run_recovers_from_an_outage_that_waits() -> None:
    document = scenario(
        events=[outage("down", "srv", start=60, end=70)],
        settings={"sample_period_s": 0.1, "recovery": {"window_s": 5, "tolerance": 0.2}},
    )
    document["topology_graph"]["nodes"]["servers"][0]["when_down"] = "wait"  # type: ignore[index]
    [verdict] = run_scenario(parse_scenario(document), seed=3).recovery or []
    assert verdict.trigger == "down"
    assert verdict.recovered is True
    assert verdict.recovery_s is not None
    assert verdict.recovery_s < 10


def test_a_run_recovers_once_a_slowdown_has_drained_its_backlog() -> None:
    # 20 requests/s of exponential 25 ms work: half busy; three times slower from 60 s to
    # 90 s, 150 % busy: some 300 requests queue, and drain at the 20/s to spare after it.
    document = direct(
        poisson_arrivals(20),
        [server("srv", cpu(exponential(0.025)))],
        horizon_s=200,
        events=[slowdown("slow", "srv", start=60, end=90, factor=3)],
        settings={"sample_period_s": 0.1},
    )
    [verdict] = run_scenario(parse_scenario(document), seed=2).recovery or []
    assert (verdict.trigger, verdict.kind) == ("slow", "server_slowdown_start")
    assert verdict.recovered is True
    assert verdict.recovery_s is not None
    assert 5 <= verdict.recovery_s <= 40
