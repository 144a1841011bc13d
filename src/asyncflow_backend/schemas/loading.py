"""Turning text or data into a validated `Scenario`, or into a list of located problems."""

import json
import re
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import ValidationError

from asyncflow_backend.schemas.base import shorten
from asyncflow_backend.schemas.scenario import Scenario
from asyncflow_backend.schemas.trace_files import TraceFileError, read_trace_file
from asyncflow_backend.schemas.validation import Loc, Problem, find_problems

__all__ = [
    "DuplicateKeyError",
    "Problem",
    "ScenarioValidationError",
    "decode_text",
    "load_json",
    "load_scenario_file",
    "load_yaml",
    "parse_scenario",
    "parse_scenario_text",
]


_YamlBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser where PyYAML was built with it (about ten times faster), else PyYAML's own."""

CORE_TAGS = tuple(
    f"tag:yaml.org,2002:{name}" for name in ("null", "bool", "int", "float", "str", "seq", "map")
)


class DuplicateKeyError(ValueError):
    """A mapping of a JSON document holds the same key twice."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key '{key}'")
        self.key = key


MIN_EXPANDED_VALUES = 10_000
"""Values any YAML document may expand to, however short its text."""


def check_expansion(root: yaml.Node, max_values: int) -> None:
    """Refuse a node graph that holds more than `max_values` nodes once aliases are expanded.

    Linear in the number of distinct nodes: each node's expanded size is
    computed once, from its children's, without recursion. A node that
    contains itself (`&a [*a]`) is refused too. Raises
    `yaml.constructor.ConstructorError` marked at the node that overflows.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if not children_done:
            if id(node) in on_path:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    "a YAML alias (*name) refers to a value that holds it",
                    node.start_mark,
                )
            on_path.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        on_path.discard(id(node))
        size = 1 + sum(sizes[id(child)] for child in children)
        if size > max_values:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"the document holds more than {max_values} values once its YAML aliases "
                "(*name) are expanded; write it with fewer aliases or make it smaller",
                node.start_mark,
            )
        sizes[id(node)] = size


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


class ScenarioYamlLoader(_YamlBase):  # type: ignore[misc]
    """Scenario YAML as the YAML 1.2 core schema reads it, aliases bounded, no duplicate keys.

    PyYAML follows YAML 1.1, where `1:30` is the number 90, `yes` is true,
    `012` is octal and `1e-3` is text; here they are the text `1:30`, the
    text `yes`, 12 and 0.001, as in YAML 1.2 and JSON. Tags other than the
    core ones (`!!binary`, `!!timestamp`, `!!set`, ...) are refused.
    Aliases (`*name`, which `yaml.dump` writes for a shared object) are
    read, but a few of them can stand for billions of values: the document,
    aliases expanded, may hold at most as many values as its text has
    characters (`check_expansion`, counted on the parsed nodes before
    anything is built), so reading costs what the text's size suggests.

    Raises `yaml.YAMLError` (with a mark: line and column) for all of these.
    """

    yaml_implicit_resolvers: ClassVar[dict[str, list[tuple[str, re.Pattern[str]]]]] = {}
    yaml_constructors: ClassVar[dict[str | None, Any]] = {
        **{tag: yaml.SafeLoader.yaml_constructors[tag] for tag in CORE_TAGS},
        # Any other tag: "could not determine a constructor", rather than read as text.
        None: yaml.constructor.SafeConstructor.construct_undefined,
    }
    yaml_multi_constructors: ClassVar[dict[str, Any]] = {}

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.max_values = max(MIN_EXPANDED_VALUES, len(stream))

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        check_expansion(node, self.max_values)
        return self.construct_document(node)

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, f"expected a mapping, found {type(node).__name__}", node.start_mark
            )
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in mapping
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    "a key must be text or a number, not a list or a mapping",
                    key_node.start_mark,
                ) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"duplicate key '{key}'",
                    key_node.start_mark,
                )
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = str(self.construct_scalar(node))
        if text.startswith(("0o", "0x")):
            return int(text[2:], 8 if text[1] == "o" else 16)
        return int(text, 10)


ScenarioYamlLoader.add_constructor("tag:yaml.org,2002:int", ScenarioYamlLoader.construct_yaml_int)

# The YAML 1.2 core schema's resolvers (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
for _tag, _pattern, _first in (
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+.0123456789"),
    ),
):
    ScenarioYamlLoader.add_implicit_resolver(
        f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), _first
    )


def load_yaml(text: str) -> Any:
    """YAML text as data, read by `ScenarioYamlLoader`; raises `yaml.YAMLError`."""
    return yaml.load(text, Loader=ScenarioYamlLoader)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping: dict[str, Any] = {}
    for key, value in pairs:
        if key in mapping:
            raise DuplicateKeyError(key)
        mapping[key] = value
    return mapping


def load_json(text: str) -> Any:
    """JSON text as data; raises `json.JSONDecodeError`, or `DuplicateKeyError` naming a key."""
    return json.loads(text, object_pairs_hook=_unique_keys)


def decode_text(text: str, fmt: str | None = None) -> Any:
    """JSON (`fmt` "json") or YAML text as data, or `ScenarioValidationError` saying where not.

    Reading is linear in the size of the text: no aliases, no tags beyond the core ones.
    """
    try:
        return load_json(text) if fmt == "json" else load_yaml(text)
    except json.JSONDecodeError as exc:
        raise ScenarioValidationError(
            [Problem((), f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")]
        ) from None
    except DuplicateKeyError as exc:
        raise ScenarioValidationError([Problem((), f"invalid JSON: {exc}")]) from None
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        reason = getattr(exc, "problem", None) or "not valid YAML"
        raise ScenarioValidationError([Problem((), f"invalid YAML{where}: {reason}")]) from None
    except RecursionError:
        raise ScenarioValidationError([Problem((), "the document is nested too deeply")]) from None
    except (ValueError, TypeError, OverflowError) as exc:
        kind = "JSON" if fmt == "json" else "YAML"
        raise ScenarioValidationError([Problem((), f"invalid {kind}: {exc}")]) from None


class ScenarioValidationError(ValueError):
    """A scenario was rejected; `problems` lists every reason with its path."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def parse_scenario(data: Any) -> Scenario:
    """Validate already-decoded data (a dict) into a `Scenario`."""
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "nothing"
        raise ScenarioValidationError([Problem((), f"a scenario must be a mapping, got {kind}")])
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioValidationError(_problems_of(exc, data)) from None
    problems = find_problems(scenario)
    if problems:
        raise ScenarioValidationError(problems)
    return scenario


def parse_scenario_text(text: str, fmt: str | None = None) -> Scenario:
    """Decode YAML or JSON text (YAML when `fmt` is None: JSON is YAML too) and validate it."""
    return parse_scenario(decode_text(text, fmt))


def load_scenario_file(path: str | Path) -> Scenario:
    """Read and validate a `.yml`, `.yaml` or `.json` scenario file.

    A trace `file` in it (`rqs_input.arrival_rate.file`) is read here, relative to the
    scenario file, into the trace's `points`. Raises `ScenarioValidationError` for a
    file that cannot be read, is not a scenario, or names a trace that cannot be read.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioValidationError([Problem((), f"cannot read {file}: {exc}")]) from None
    data = decode_text(text, "json" if file.suffix.lower() == ".json" else None)
    try:
        data = read_trace_file(data, file.parent)
    except TraceFileError as exc:
        raise ScenarioValidationError([exc.problem or Problem((), str(exc))]) from None
    return parse_scenario(data)


def _problems_of(exc: ValidationError, data: Any) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = _clean_loc(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        owner = _owner_id(data, loc)
        if owner:
            owner = shorten(owner)
        if owner and owner not in message:
            message = f"{message} (in '{owner}')"
        problems.append(Problem(loc, message))
    return problems


def _clean_loc(loc: tuple[int | str, ...]) -> Loc:
    # Union members add their class name to the path (`function-after[...]`, `RVConfig`);
    # users wrote field names, so keep only those.
    # An unknown key is part of the path: shorten it, it may be a megabyte long.
    return tuple(
        p if isinstance(p, int) else shorten(p)
        for p in loc
        if isinstance(p, int) or ("[" not in p and not p[:1].isupper())
    )


def _owner_id(data: Any, loc: Loc) -> str | None:
    """The id of the innermost object on the path, so messages say which node or edge."""
    owner = None
    node = data
    for part in loc:
        if isinstance(node, dict):
            owner = node.get("id") or node.get("event_id") or node.get("endpoint_name") or owner
            node = node.get(part) if isinstance(part, str) else None
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            break
    if isinstance(node, dict):
        owner = node.get("id") or node.get("event_id") or node.get("endpoint_name") or owner
    return owner if isinstance(owner, str) else None
