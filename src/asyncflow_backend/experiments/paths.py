"""Scenario fields addressed by dotted path, and copies of a scenario with fields overridden.

A path is segments separated by dots. On a mapping a segment is a key; on a
list it is an index (`edges.0`) or the id of an element (`servers.srv-1`,
matched against `id`, `event_id` or `endpoint_name`). For example
`topology_graph.nodes.servers.srv-1.server_resources.cpu_cores`.
"""

import copy
from collections.abc import Mapping
from typing import Any

ID_FIELDS = ("id", "event_id", "endpoint_name")


class PathError(ValueError):
    """A path does not lead to a field of the scenario; the message says where it stops."""


def _step(node: Any, segment: str, walked: str) -> Any:
    if isinstance(node, dict):
        if segment not in node:
            known = ", ".join(sorted(map(str, node))) or "none"
            raise PathError(f"{walked or '(scenario)'} has no field '{segment}' (fields: {known})")
        return node[segment]
    if isinstance(node, list):
        if segment.isdigit() and int(segment) < len(node):
            return node[int(segment)]
        for element in node:
            if isinstance(element, dict) and any(element.get(f) == segment for f in ID_FIELDS):
                return element
        raise PathError(f"{walked} has no element with index or id '{segment}'")
    raise PathError(f"{walked} is a value, not a mapping or a list")


def _segments(path: str) -> list[str]:
    segments = path.split(".")
    if not all(segments):
        raise PathError(f"'{path}' has an empty segment")
    return segments


def read_path(data: Mapping[str, Any], path: str) -> Any:
    """The value at `path`; raises `PathError` if there is none."""
    node: Any = data
    walked = ""
    for segment in _segments(path):
        node = _step(node, segment, walked)
        walked = f"{walked}.{segment}" if walked else segment
    return node


def with_overrides(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of `data` with each path set to its value; the paths must exist.

    Raises `PathError` naming the first path that does not lead to a field.
    """
    result: dict[str, Any] = copy.deepcopy(dict(data))
    for path, value in overrides.items():
        *parents, last = _segments(path)
        node: Any = result
        walked = ""
        for segment in parents:
            node = _step(node, segment, walked)
            walked = f"{walked}.{segment}" if walked else segment
        if isinstance(node, dict):
            if last not in node:
                raise PathError(f"{walked or '(scenario)'} has no field '{last}'")
            node[last] = value
        elif isinstance(node, list):
            target = _step(node, last, walked)
            node[node.index(target)] = value
        else:
            raise PathError(f"{walked} is a value, not a mapping or a list")
    return result
