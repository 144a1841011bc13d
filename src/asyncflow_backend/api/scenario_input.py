"""Reading a scenario out of a request: a bounded body, JSON or YAML, then every check.

The order matters for safety: the body is never read past the size limit,
the decoded document is measured before anything walks it recursively (a few
YAML aliases can expand into billions of values), and the scenario limits
are checked before anything is stored. Each step reports every problem it
finds, located by path.
"""

import math
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.requests import Request

from asyncflow_backend.api.errors import (
    INVALID_SCENARIO,
    LIMIT_EXCEEDED,
    PayloadTooLarge,
    ScenarioRejected,
    UnsupportedMediaType,
)
from asyncflow_backend.api.parser_process import INLINE_YAML_CHARS, run_elsewhere
from asyncflow_backend.api.rate_limit import charge_body
from asyncflow_backend.schemas.limits import ScenarioLimits, check_limits
from asyncflow_backend.schemas.loading import (
    ScenarioValidationError,
    decode_text,
    parse_scenario,
)
from asyncflow_backend.schemas.scenario import Scenario
from asyncflow_backend.schemas.validation import Loc, Problem

JSON = "json"
YAML = "yaml"
JSON_MEDIA_TYPE = "application/json"
YAML_MEDIA_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")

INLINE_JSON_BYTES = 16 * 1024
"""JSON bodies up to this size are checked on the event loop: well under a millisecond of
work, where a hop to a worker thread costs more in waiting for the GIL. YAML bodies up to
`INLINE_YAML_CHARS` (a slower parser) are checked in a thread. Larger bodies are checked
in the parser process (`parser_process`): their hundreds of milliseconds of CPU, GIL
held, would otherwise stall every other request."""

MAX_REPORTED = 50
"""Problems reported at most by the document walk; a broken file should not flood the answer."""


def body_format(content_type: str | None) -> str:
    """`json` or `yaml` from a Content-Type header; no header means JSON."""
    if not content_type:
        return JSON
    media = content_type.split(";", 1)[0].strip().lower()
    if media in YAML_MEDIA_TYPES:
        return YAML
    if media == JSON_MEDIA_TYPE or (media.startswith("application/") and media.endswith("+json")):
        return JSON
    accepted = ", ".join((JSON_MEDIA_TYPE, *YAML_MEDIA_TYPES))
    if not media:
        raise UnsupportedMediaType(
            f"the Content-Type {content_type[:100]!r} names no media type; send one of "
            f"{accepted} (or no Content-Type, for JSON)"
        )
    raise UnsupportedMediaType(f"cannot read a scenario sent as '{media}'; send one of {accepted}")


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, refusing it as soon as it is known to exceed `max_bytes`, and
    charged to the caller's submission allowance by its size (`charge_body`)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(max_bytes)
    # Content-Length may be absent (chunked) or wrong: count what actually arrives.
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(max_bytes)
        chunks.append(chunk)
    body = b"".join(chunks)
    await charge_body(request, len(body), body_format(request.headers.get("content-type")))
    return body


async def receive_scenario(request: Request, limits: ScenarioLimits, max_bytes: int) -> Scenario:
    """The valid scenario in the request's body, or the 413, 415 or 422 that says why not.

    `max_bytes` bounds the body and, as a count of values, the decoded document.
    """
    fmt = body_format(request.headers.get("content-type"))
    refuse_encoded(request.headers.get("content-encoding"))
    body = await read_body(request, max_bytes)
    if fmt == JSON and len(body) <= INLINE_JSON_BYTES:
        return decode_scenario(body, fmt, limits, max_bytes)
    if fmt == YAML and len(body) <= INLINE_YAML_CHARS:
        return await anyio.to_thread.run_sync(decode_scenario, body, fmt, limits, max_bytes)
    scenario, problems = await run_elsewhere(_decode_elsewhere, body, fmt, limits, max_bytes)
    if scenario is None:
        raise ScenarioRejected(problems)
    return scenario


def decode_scenario(body: bytes, fmt: str, limits: ScenarioLimits, max_values: int) -> Scenario:
    """A valid scenario within `limits`, or `ScenarioRejected` listing every problem.

    CPU-bound on large bodies: `receive_scenario` calls it from a worker thread then.
    """
    data = _load(body, fmt)
    problems = document_problems(data, max_values)
    if problems:
        raise ScenarioRejected([(p, INVALID_SCENARIO) for p in problems])
    try:
        scenario = parse_scenario(data)
    except ScenarioValidationError as exc:
        raise ScenarioRejected([(p, INVALID_SCENARIO) for p in exc.problems]) from None
    breached = check_limits(scenario, limits)
    if breached:
        raise ScenarioRejected([(p, LIMIT_EXCEEDED) for p in breached])
    return scenario


def _decode_elsewhere(
    body: bytes, fmt: str, limits: ScenarioLimits, max_values: int
) -> tuple[Scenario | None, list[tuple[Problem, str]]]:
    # In the parser process: `decode_scenario`, its refusal as data (an exception sent
    # back must rebuild from its arguments, which ScenarioRejected's do not give).
    try:
        return decode_scenario(body, fmt, limits, max_values), []
    except ScenarioRejected as exc:
        return None, exc.problems


def _reject(message: str) -> ScenarioRejected:
    return ScenarioRejected([(Problem((), message), INVALID_SCENARIO)])


COMPRESSED_PREFIXES = {
    b"\x1f\x8b": "gzip",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"PK\x03\x04": "zip",
}


def _text_of(body: bytes) -> str:
    """The body as text, or 415: a scenario is UTF-8 text, never compressed or binary."""
    for prefix, kind in COMPRESSED_PREFIXES.items():
        if body.startswith(prefix):
            raise UnsupportedMediaType(
                f"the body is {kind}-compressed; send the scenario as uncompressed UTF-8 text"
            )
    try:
        return body.decode("utf-8-sig")  # a byte-order mark is not an error
    except UnicodeDecodeError as exc:
        raise UnsupportedMediaType(
            f"the body is not UTF-8 text (bad byte at offset {exc.start}); "
            "send the scenario as UTF-8 JSON or YAML"
        ) from None


def _load(body: bytes, fmt: str) -> Any:
    text = _text_of(body)
    if not text.strip():
        raise _reject("the body is empty; send a scenario")
    try:
        return decode_text(text, JSON if fmt == JSON else YAML)
    except ScenarioValidationError as exc:
        raise ScenarioRejected([(p, INVALID_SCENARIO) for p in exc.problems]) from None


def refuse_encoded(content_encoding: str | None) -> None:
    """415 for a compressed body (`Content-Encoding` other than identity), before reading it."""
    encoding = (content_encoding or "").strip().lower()
    if encoding and encoding != "identity":
        raise UnsupportedMediaType(
            f"cannot read a body with Content-Encoding '{encoding}'; send the scenario uncompressed"
        )


@dataclass(frozen=True)
class _Place:
    """A position in the document as a linked list to the root, so each step is O(1)."""

    key: str | int
    parent: "_Place | None"

    def loc(self) -> Loc:
        parts: list[str | int] = []
        place: _Place | None = self
        while place is not None:
            parts.append(place.key)
            place = place.parent
        return tuple(reversed(parts))


def _key(key: object) -> str | int:
    return key if isinstance(key, str) or type(key) is int else str(key)


def _bad_text(text: str) -> str | None:
    if "\x00" in text:
        return "text must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "text must not contain unpaired surrogate characters"
    return None


def document_problems(data: Any, max_values: int) -> list[Problem]:
    """Values no scenario may hold (NaN, infinity, NUL), or a document too big once expanded.

    Walks without recursion and stops after `max_values` values, so its cost is
    bounded however the document was built (YAML aliases share sub-trees, which a
    naive walk would visit once per reference).
    """
    problems: list[Problem] = []
    stack: list[tuple[_Place | None, Any]] = [(None, data)]
    visited = 0
    while stack and len(problems) < MAX_REPORTED:
        place, value = stack.pop()
        visited += 1
        if visited > max_values:
            return [
                Problem(
                    (),
                    f"the document holds more than {max_values} values once YAML aliases are "
                    "expanded; write the scenario without aliases or make it smaller",
                )
            ]
        message = None
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and (bad := _bad_text(key)) is not None:
                    problems.append(Problem(_Place(_key(key), place).loc(), f"key: {bad}"))
                stack.append((_Place(_key(key), place), item))
        elif isinstance(value, list):
            stack.extend((_Place(i, place), item) for i, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            message = f"{value} is not allowed; numbers must be finite"
        elif isinstance(value, str):
            message = _bad_text(value)
        if message is not None:
            problems.append(Problem(place.loc() if place else (), message))
    return sorted(problems, key=lambda p: p.path)
