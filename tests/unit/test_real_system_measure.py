"""One measured run of the harness: what counts as answered, failed, and the parts it read."""

import pytest

from benchmarks.real_system.load import LatenessPolicy, Record
from benchmarks.real_system.measure import Measured


def _record(at: float, status: int = 200, latency: float = 0.01, late: float = 0.0) -> Record:
    parts = '{"api.0.cpu":0.004}' if status == 200 else "{}"
    return Record(at, late, latency, status, 0.009, parts)


def test_the_warmup_is_left_out_of_the_latencies_and_failures_after_it_count() -> None:
    records = [
        _record(0.5, latency=9.0),  # in the warm-up: a cold start, left out
        _record(1.5, latency=0.02),
        _record(2.0, status=-1),  # failed after the warm-up
        _record(0.2, status=500),  # failed in the warm-up: not counted
        _record(3.0, latency=0.03),
    ]
    run = Measured(50.0, 0, records, {"api": 0.02}, "0.1 0.1 0.1", {"api": 7})

    real = run.real_run(warmup_s=1.0, policy=LatenessPolicy())

    assert list(real.latencies_s) == [0.02, 0.03]
    assert real.failed == 1
    assert real.refusal() == "1 of 3 requests failed"
    assert [r.scheduled_s for r in run.answered()] == [0.5, 1.5, 3.0]
    # The CPU covers the whole run, so the parts do too: warm-up included, failures not.
    assert run.parts() == [{"api.0.cpu": 0.004}] * 3


def test_lateness_is_judged_over_every_send_warmup_included() -> None:
    records = [_record(0.1, late=0.05)] * 50 + [_record(2.0)] * 50
    run = Measured(50.0, 0, records, {"api": 0.0}, "0 0 0")

    real = run.real_run(warmup_s=1.0, policy=LatenessPolicy())

    assert not real.verdict.kept
    assert real.refusal() is not None
    assert real.refusal().startswith("load generator behind schedule")  # type: ignore[union-attr]


@pytest.mark.parametrize("warmup", [0.0, 10.0])
def test_a_run_without_answers_after_its_warmup_is_refused(warmup: float) -> None:
    run = Measured(50.0, 0, [_record(1.0, status=-1)], {"api": 0.0}, "0 0 0")

    assert run.real_run(warmup, LatenessPolicy()).refusal() is not None
