"""One short run of the real-system harness, end to end: services, load, calibration, table.

A few seconds of load on the simplest topology, with the schedule check relaxed (the test
machine is shared): it shows the pipeline produces its table, nothing about accuracy.
"""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.real_system.report import STATS, TABLE_COLUMNS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LOADS = (20, 40)
"""The calibration load, then the second load the event loop's two costs are split by."""
COMMAND = [
    sys.executable, str(ROOT / "benchmarks" / "real_system" / "run.py"),
    "--topology", "cpu_io", "--repeats", "1", "--duration", "3", "--warmup", "0.5",
    "--requests", "2000", "--max-lateness-p99-ms", "10000", "--late-ms", "10000",
]  # fmt: skip


def test_a_short_run_produces_the_table_raw_data_and_chart(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            *COMMAND,
            "--loads",
            str(LOADS[0]),
            "--loop-cost-load",
            str(LOADS[1]),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "load generator on cores" in completed.stdout
    assert "load average" in completed.stdout
    assert "api: event_loop: per_wakeup_s" in completed.stdout
    assert "event_loop:" in (tmp_path / "scenario.yml").read_text()
    with (tmp_path / "table.csv").open() as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames or ()) == TABLE_COLUMNS
    assert [(float(r["rate_per_s"]), r["stat"]) for r in rows] == [
        (float(load), stat) for load in LOADS for stat in STATS
    ]
    with (tmp_path / "raw.csv").open() as handle:
        latencies = [float(row["latency_s"]) for row in csv.DictReader(handle)]
    # Read from a clock finer than uvloop's, whose loop.time() counts whole milliseconds.
    whole_ms = [abs(x * 1e3 - round(x * 1e3)) < 1e-9 for x in latencies]
    assert sum(whole_ms) < len(latencies) / 2
    for name in ("raw.csv", "runs.csv", "scenario.yml", "calibration.txt", "chart.png"):
        assert (tmp_path / name).stat().st_size > 0
