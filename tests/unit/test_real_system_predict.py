"""The engine's predictions from a calibrated scenario, through the `asyncflow` command."""

import pytest

from benchmarks.real_system.calibrate import Measurements, calibrate
from benchmarks.real_system.predict import predict
from benchmarks.real_system.topologies import topology


def _calibration():  # type: ignore[no-untyped-def]
    # Deterministic parts: 1 ms overhead, a 2 ms burst, 5 ms of I/O, 0.5 ms links each way.
    parts = [{"api.0.cpu": 0.002, "api.1.sleep": 0.005} for _ in range(100)]
    measured = Measurements(topology("cpu_io"), parts, {"api": 0.3}, 0.0013, 0.0003, 1)
    return calibrate(measured)


def test_predictions_come_in_rate_order_and_start_at_the_sum_of_steps_and_links() -> None:
    low, high = predict(_calibration(), [5.0, 100.0], seed=3, requests=1_500, jobs=2)

    assert (low.rate_per_s, high.rate_per_s) == (5.0, 100.0)
    # At 5 req/s the core is 1.5 % busy, so waits are rare and the mean is the sum of the
    # steps and links, 1 + 2 + 5 + 2 x 0.5 = 9 ms (M/D/1: the mean wait is
    # rho S / (2 (1 - rho)) = 0.02 ms).
    assert low.mean_s == pytest.approx(0.009, rel=0.01)
    assert low.p50_s <= low.p95_s <= low.p99_s
    assert low.completed > 0
    # At 100 req/s the core is 30 % busy: some requests queue.
    assert high.p95_s > low.p95_s
