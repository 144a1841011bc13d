"""Arrival-rate traces kept in a CSV file beside the scenario file.

The file has two columns, the time in seconds and the rate in requests per
second (`at_s,rate_per_s`), one point per row, with an optional header row.
It is read when the scenario file is loaded, so a `Scenario` always holds its
trace inline and means the same wherever it is sent.
"""

import csv
import math
from pathlib import Path
from typing import Any

from asyncflow_backend.config.constants import MAX_SCHEDULE_POINTS
from asyncflow_backend.schemas.validation import Problem

TRACE_FILE_LOC = ("rqs_input", "arrival_rate", "file")
MAX_TRACE_FILE_BYTES = 10_000_000


class TraceFileError(ValueError):
    """A trace file could not be read into points; the message says where and why, and
    `problem` locates it in the scenario once known."""

    def __init__(self, message: str, problem: Problem | None = None) -> None:
        super().__init__(message)
        self.problem = problem


def read_trace_file(data: Any, folder: Path) -> Any:
    """`data` with a trace `file` at `rqs_input.arrival_rate` replaced by its `points`,
    read relative to `folder`; `data` itself when it names no trace file.

    Raises `TraceFileError` (its `problem` at `rqs_input.arrival_rate.file`) when the
    file cannot be read or a row is not two finite numbers.
    """
    workload = data.get("rqs_input") if isinstance(data, dict) else None
    if not isinstance(workload, dict):
        return data
    schedule = workload.get("arrival_rate")
    if not isinstance(schedule, dict) or not isinstance(schedule.get("file"), str):
        return data
    name = schedule["file"]
    try:
        points = parse_trace_csv(folder / name)
    except TraceFileError as exc:
        raise TraceFileError(str(exc), Problem(TRACE_FILE_LOC, f"trace '{name}': {exc}")) from None
    rest = {key: value for key, value in schedule.items() if key != "file"}
    return {**data, "rqs_input": {**workload, "arrival_rate": {**rest, "points": points}}}


def parse_trace_csv(path: Path) -> list[dict[str, float]]:
    """The points of the CSV trace at `path`. Raises `TraceFileError` naming the row."""
    try:
        if path.stat().st_size > MAX_TRACE_FILE_BYTES:
            raise TraceFileError(f"larger than {MAX_TRACE_FILE_BYTES:,} bytes")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceFileError(f"cannot read it: {exc}") from None
    points: list[dict[str, float]] = []
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if len(cells) != 2:
            raise TraceFileError(
                f"row {number} has {len(cells)} columns, expected 2 (at_s,rate_per_s)"
            )
        try:
            at_s, rate = float(cells[0]), float(cells[1])
        except ValueError:
            if not points and number == 1:
                continue  # a header row
            raise TraceFileError(
                f"row {number} is not two numbers: {','.join(cells)[:80]}"
            ) from None
        if not (math.isfinite(at_s) and math.isfinite(rate)):
            raise TraceFileError(f"row {number} holds a number that is not finite")
        points.append({"at_s": at_s, "rate_per_s": rate})
        if len(points) > MAX_SCHEDULE_POINTS:
            raise TraceFileError(f"more than {MAX_SCHEDULE_POINTS:,} points")
    if not points:
        raise TraceFileError("it holds no point")
    return points
