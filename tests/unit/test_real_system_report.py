"""The harness's table: real percentiles over repeats against the prediction, or a refusal."""

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks.real_system.load import LatenessPolicy, check_schedule
from benchmarks.real_system.predict import Prediction, horizon_for
from benchmarks.real_system.report import (
    TABLE_COLUMNS,
    RealRun,
    errors,
    format_table,
    plot,
    table_rows,
    write_table,
)

ON_TIME = check_schedule([0.0] * 100, LatenessPolicy())
BEHIND = check_schedule([0.02] * 100, LatenessPolicy())


def _run(rate: float, repeat: int, scale: float, verdict=ON_TIME, failed: int = 0) -> RealRun:
    # Latencies 1..1000 x scale: p50 = 500.5 x scale, p99 = 990.01 x scale.
    return RealRun(rate, repeat, np.arange(1, 1001) * scale, failed, verdict)


def test_errors_are_in_percent_of_the_mean_and_in_half_ranges() -> None:
    # Real 9, 10, 11: mean 10, half-range 1; predicted 12 is +20 % and +2 spreads.
    percent, spreads = errors([9.0, 10.0, 11.0], 12.0)

    assert percent == pytest.approx(20.0)
    assert spreads == pytest.approx(2.0)


def test_errors_with_a_zero_spread_are_infinite_unless_exact() -> None:
    assert errors([5.0, 5.0], 5.0) == (0.0, 0.0)
    assert errors([5.0, 5.0], 4.0)[1] == -math.inf
    with pytest.raises(ValueError, match="no real values"):
        errors([], 1.0)


def test_the_table_has_a_row_per_load_and_percentile_with_the_real_range() -> None:
    runs = [_run(10.0, 0, 0.001), _run(10.0, 1, 0.002), _run(30.0, 0, 0.004)]
    predictions = [Prediction(10.0, 0.6, 0.75, 1.5, 1.6, 1000), Prediction(30.0, 2, 2, 4, 4, 9)]

    rows = table_rows(runs, predictions, {10.0: 0.1, 30.0: 0.3})

    assert [(r["rate_per_s"], r["stat"]) for r in rows] == [
        (10.0, "p50"), (10.0, "p95"), (10.0, "p99"), (30.0, "p50"), (30.0, "p95"), (30.0, "p99"),
    ]  # fmt: skip
    p50 = rows[0]
    assert p50["real_mean_s"] == pytest.approx(0.5005 * 1.5)
    assert (p50["real_min_s"], p50["real_max_s"]) == (pytest.approx(0.5005), pytest.approx(1.001))
    assert p50["error_pct"] == pytest.approx(100 * (0.75 - 0.75075) / 0.75075)
    assert p50["utilisation"] == 0.1
    assert p50["repeats"] == 2
    assert all(set(row) == set(TABLE_COLUMNS) and row["status"] == "ok" for row in rows)


def test_a_load_whose_generator_fell_behind_is_refused_without_numbers() -> None:
    runs = [_run(10.0, 0, 0.001), _run(10.0, 1, 0.001, verdict=BEHIND)]

    rows = table_rows(runs, [Prediction(10.0, 1, 1, 1, 1, 10)], {})

    assert all(str(row["status"]).startswith("refused: load generator behind") for row in rows)
    assert all(math.isnan(row["real_mean_s"]) and math.isnan(row["error_pct"]) for row in rows)


def test_a_load_with_failed_requests_is_refused() -> None:
    rows = table_rows([_run(10.0, 0, 0.001, failed=5)], [], {})

    assert rows[0]["status"] == "refused: 5 of 1005 requests failed"


def test_the_printed_table_shows_milliseconds_and_dashes_for_what_is_missing(
    tmp_path: Path,
) -> None:
    rows = table_rows([_run(10.0, 0, 0.001)], [], {10.0: 0.25})

    text = format_table(rows)
    write_table(rows, tmp_path / "table.csv")
    plot(rows, tmp_path / "chart.png", "test")

    p50_line = text.splitlines()[2]
    assert "500.50 (500.50-500.50)" in p50_line  # seconds shown as milliseconds
    assert p50_line.split()[1] == "0.25"
    assert "—" in p50_line  # no prediction
    with (tmp_path / "table.csv").open() as handle:
        assert tuple(csv.DictReader(handle).fieldnames or ()) == TABLE_COLUMNS
    assert (tmp_path / "chart.png").stat().st_size > 0


def test_a_prediction_holds_about_the_asked_requests_and_at_least_a_minute() -> None:
    assert horizon_for(100.0, requests=40_000) == 400.0
    assert horizon_for(1_000.0, requests=40_000) == 60.0
    with pytest.raises(ValueError, match="> 0"):
        horizon_for(0.0)
