"""The load a capacity search scales: the fields a load factor multiplies, per workload model.

A factor f on the load of a scenario multiplies, in every workload class
(`rqs_input`, then each of `workload_classes`):

- with users per window, the requests per minute per user (`arrival_rate`)
  or the mean number of users (`users`);
- with an arrival-rate schedule, every rate of the schedule (its points, or
  a daily curve's peak and trough): `arrival_rate` only;
- with a closed population, the number of users, or each point of its
  schedule, rounded to a whole user and never below one where there was one
  (`users` only).
"""

import copy
from collections.abc import Iterator, Mapping
from typing import Any, Literal

LoadKind = Literal["arrival_rate", "users"]


class LoadError(ValueError):
    """A workload class has no load of the kind asked for; the message names the class."""


def load_overrides(scenario: Mapping[str, Any], load: LoadKind, factor: float) -> dict[str, Any]:
    """Path to scaled value, for `paths.with_overrides`, of `load` times `factor`.

    `scenario` is a scenario document. Raises `LoadError` if a workload class
    cannot be scaled that way (a closed class has no arrival rate, a
    schedule's users are not a field).
    """
    overrides: dict[str, Any] = {}
    for prefix, workload in _classes(scenario):
        overrides.update(_scaled(prefix, workload, load, factor))
    return overrides


def _classes(scenario: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    workload = scenario.get("rqs_input")
    if isinstance(workload, Mapping):
        yield "rqs_input", workload
    for i, extra in enumerate(scenario.get("workload_classes") or ()):
        if isinstance(extra, Mapping):
            yield f"workload_classes.{i}", extra


def _scaled(
    prefix: str, workload: Mapping[str, Any], load: LoadKind, factor: float
) -> dict[str, Any]:
    name = f"{prefix} ('{workload.get('id', '?')}')"
    if "avg_active_users" in workload:
        field = "avg_request_per_minute_per_user" if load == "arrival_rate" else "avg_active_users"
        mean = workload[field]["mean"]
        return {f"{prefix}.{field}.mean": mean * factor}
    if "arrival_rate" in workload:
        if load != "arrival_rate":
            raise LoadError(f"{name} has an arrival-rate schedule: search on load arrival_rate")
        return {f"{prefix}.arrival_rate": _scaled_rates(workload["arrival_rate"], factor)}
    if "users" in workload:
        if load != "users":
            raise LoadError(
                f"{name} is a closed population, which has no arrival rate: search on load users"
            )
        return {f"{prefix}.users": _scaled_users(workload["users"], factor)}
    raise LoadError(f"{name} has no workload to scale")


def _scaled_rates(schedule: Mapping[str, Any], factor: float) -> dict[str, Any]:
    scaled = copy.deepcopy(dict(schedule))
    if "file" in scaled:
        raise LoadError("a trace file must be read into points before its rates are scaled")
    for point in scaled.get("points") or ():
        point["rate_per_s"] = point["rate_per_s"] * factor
    for field in ("peak_rate_per_s", "trough_rate_per_s"):
        if field in scaled:
            scaled[field] = scaled[field] * factor
    return scaled


def _scaled_users(users: Any, factor: float) -> Any:
    if isinstance(users, Mapping):
        scaled = copy.deepcopy(dict(users))
        for point in scaled.get("points") or ():
            point["users"] = _whole_users(point["users"], factor)
        return scaled
    return _whole_users(users, factor)


def _whole_users(users: int, factor: float) -> int:
    if users <= 0:
        return users
    return max(1, round(users * factor))
