"""Outcome accounting: every end counted by outcome, place and reason, and per second."""

from dataclasses import dataclass

import simpy

from asyncflow_backend.config.constants import EndReason, Outcome
from asyncflow_backend.metrics import analyzer
from asyncflow_backend.metrics.collector import MetricsCollector


@dataclass
class Sent:
    """A request as the collector reads it."""

    returning: bool = True
    created_at: float = 0.0

    def __hash__(self) -> int:
        return id(self)


def collector_at(times_and_ends: list[tuple[float, Outcome, str, str]]) -> MetricsCollector:
    """A collector that saw the given ends at the given times, and nothing else."""
    env = simpy.Environment()
    collector = MetricsCollector(env, horizon_s=5)
    collector.generated = len(times_and_ends) + 3

    def script() -> simpy.events.ProcessGenerator:
        for at, outcome, place, reason in times_and_ends:
            yield env.timeout(at - env.now)
            collector.record_end(Sent(), outcome, place, reason)

    env.process(script())
    env.run()
    return collector


def test_every_end_is_counted_by_outcome_place_reason_and_second() -> None:
    collector = collector_at(
        [
            (0.5, Outcome.DROPPED, "e1", EndReason.DROPOUT),
            (1.5, Outcome.REJECTED, "srv", EndReason.QUEUE_FULL),
            (1.7, Outcome.REJECTED, "srv", EndReason.QUEUE_FULL),
            (1.9, Outcome.REJECTED, "srv", EndReason.CONCURRENCY_LIMIT),
            (3.2, Outcome.FAILED, "e2", EndReason.CALL_DROPPED),
        ]
    )
    collector.record_completion(Sent())

    counts = analyzer.request_counts(collector, "client", horizon_s=5)

    assert (counts.completed, counts.dropped, counts.rejected, counts.failed) == (1, 1, 3, 1)
    assert counts.timed_out == 0
    assert counts.in_flight == counts.generated - 6
    assert counts.rejected_at == {"srv": 3}
    assert counts.dropped_at == {"e1": 1}
    assert counts.failed_at == {"e2": 1}
    rows = [(e.outcome, e.place, e.reason, e.count) for e in counts.ends]
    assert rows == [
        ("completed", "client", "answered", 1),
        ("dropped", "e1", "dropout", 1),
        ("rejected", "srv", "concurrency_limit", 1),
        ("rejected", "srv", "queue_full", 2),
        ("failed", "e2", "call_dropped", 1),
    ]
    assert counts.per_second == {
        "completed": [0, 0, 0, 1, 0],
        "dropped": [1, 0, 0, 0, 0],
        "rejected": [0, 3, 0, 0, 0],
        "failed": [0, 0, 0, 1, 0],
    }


def test_an_end_of_a_request_no_longer_awaited_is_not_counted() -> None:
    env = simpy.Environment()
    collector = MetricsCollector(env, horizon_s=5)
    awaited, gone, unseen = Sent(), Sent(), Sent(returning=False)
    collector.awaited = {awaited}

    collector.record_end(gone, Outcome.DROPPED, "e1", EndReason.DROPOUT)
    collector.record_end(awaited, Outcome.DROPPED, "e1", EndReason.DROPOUT)
    collector.record_end(awaited, Outcome.FAILED, "e1", EndReason.CALL_DROPPED)
    # Lost before the client saw it: it had no timer, so its end counts.
    collector.record_end(unseen, Outcome.DROPPED, "e0", EndReason.DROPOUT)

    assert collector.ends == {
        (Outcome.DROPPED, "e1", EndReason.DROPOUT): 1,
        (Outcome.DROPPED, "e0", EndReason.DROPOUT): 1,
    }
    assert collector.awaited == set()


def test_goodput_leaves_late_answers_out_and_equals_throughput_without_them() -> None:
    env = simpy.Environment()
    collector = MetricsCollector(env, horizon_s=4)
    for _ in range(6):
        collector.record_completion(Sent())

    on_time = analyzer.throughput(collector, 4)
    assert on_time.goodput_rps == on_time.mean_rps == 1.5

    collector.record_late_answer()
    collector.record_late_answer()
    late = analyzer.throughput(collector, 4)
    assert late.mean_rps == 2.0
    assert late.goodput_rps == 1.5
    assert late.per_second == [8, 0, 0, 0]
    assert analyzer.request_counts(collector, "client", 4).late_answers == 2
