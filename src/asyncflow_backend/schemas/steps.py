"""The steps of an endpoint: one model per kind of step, told apart by `kind`.

A step is CPU work (`cpu_time`), an I/O wait (`io_waiting_time`), a RAM reservation
(`necessary_ram`), a call to other nodes, or a cache lookup with its hit and miss
steps. Each kind is its own model with only its own fields, in a union tagged by
`kind` (`Step`); each builds its own runtime step through a `StepBuilder`
(`runtime/plans.py` is the one the engine uses), so the schema never imports the
runtime. Adding a kind: a member of a step-kind enum (`config/constants.py`), a model
here in `STEP_MODELS` with its `to_runtime`, the `StepBuilder` method it calls, and its
implementation in `runtime/plans.py`.

Errors name the field: a field of another kind is refused at its own path ("only a call
step has timeout_s, not 'io_db'"), an unknown kind at `kind`. A field of another kind
left empty (null, [] or {}), as scenarios stored by earlier versions write every field,
is read as left out.
"""

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Protocol, Self

from pydantic import (
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from asyncflow_backend.config.constants import (
    MAX_DURATION_S,
    MAX_RAM_MB,
    CacheStepKind,
    CallStepKind,
    CpuStepKind,
    DrawScope,
    IoStepKind,
    RamStepKind,
    StepOperation,
    TimeoutAction,
)
from asyncflow_backend.schemas.base import (
    Id,
    Number,
    PositiveFinite,
    PositiveInteger,
    StrictModel,
    readable,
)
from asyncflow_backend.schemas.random_variables import RVConfig, check_mean_at_most
from asyncflow_backend.schemas.resilience import CircuitBreaker
from asyncflow_backend.schemas.retries import Retry, attempts_alive

StepKind = CpuStepKind | IoStepKind | RamStepKind | CallStepKind | CacheStepKind


def _amount_form(value: Any) -> str:
    return "RandomVariable" if isinstance(value, dict | RVConfig) else "Number"


# A number or a random variable, told apart by the input's shape so that a bad
# value gets the one error of the form it was written in, not one per form.
# The tags are capitalised so that error paths leave them out, like class names.
StepAmount = Annotated[
    Annotated[PositiveFinite, Tag("Number")] | Annotated[RVConfig, Tag("RandomVariable")],
    Discriminator(_amount_form),
]


Timeout = StepAmount
"""A timeout: fixed seconds, or a random variable (exponential patience gives Erlang A)."""


def check_timeout(value: "float | RVConfig | None") -> None:
    """Raises ValueError if a random timeout has a mean of 0 or beyond `MAX_DURATION_S`, or a
    fixed one is beyond it."""
    if isinstance(value, RVConfig):
        if value.mean <= 0:
            raise ValueError("the mean of timeout_s must be greater than 0")
        check_mean_at_most(value, MAX_DURATION_S, " s")
    elif value is not None and value > MAX_DURATION_S:
        raise ValueError(f"timeout_s must be at most {MAX_DURATION_S} s, got {readable(value)}")


class StepBuilder(Protocol):
    """What turns scenario steps into runtime steps: one method per kind, which each step
    model calls with itself (`to_runtime`). `label` is the step's place in its endpoint
    (`2`, or `2.miss.0` inside a cache step), which names its random streams."""

    def cpu(self, step: "CpuStep", label: str) -> None:
        """A CPU burst."""

    def io(self, step: "IoStep", label: str) -> None:
        """An I/O wait, holding a pool connection or not."""

    def ram(self, step: "RamStep", label: str) -> None:
        """A RAM reservation (held for the whole request, so it adds no runtime step)."""

    def call(self, step: "CallStep", label: str) -> None:
        """A call to one node or several."""

    def cache(self, step: "CacheStep", label: str) -> None:
        """A cache lookup and its hit and miss steps."""


class StepModel(StrictModel):
    """What every kind of step has: a `kind`, a family name for messages, and a way to
    build its runtime step."""

    family: ClassVar[str]
    """How messages name the kind's family: `CPU`, `I/O`, `RAM`, `call`, `cache`."""
    kinds: ClassVar[type[StrEnum]]
    """The `kind` values of this model."""
    kind: StepKind

    @abstractmethod
    def to_runtime(self, builder: StepBuilder, label: str) -> None:
        """Build this step's runtime step with `builder`."""

    def branches(self) -> Iterator[tuple[str, "list[Step]"]]:
        """The named lists of steps this step holds (a cache step's `hit` and `miss`)."""
        return iter(())


class OperationStep(StepModel):
    """A step with an amount: `step_operation` holds exactly one key, the one of its kind."""

    operation: ClassVar[StepOperation]
    step_operation: dict[StepOperation, StepAmount] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_operation(self) -> Self:
        expected = self.operation
        keys = set(self.step_operation)
        if keys != {expected}:
            given = ", ".join(sorted(keys)) or "nothing"
            raise ValueError(
                f"a step of kind '{self.kind}' needs exactly the operation '{expected}', "
                f"got {given}"
            )
        self._check_amount(self.step_operation[expected])
        return self

    def _check_amount(self, value: "float | RVConfig") -> None:
        operation = self.operation
        if isinstance(value, RVConfig):
            if value.mean <= 0:
                raise ValueError(f"the mean of '{operation}' must be greater than 0")
            check_mean_at_most(value, MAX_DURATION_S, " s")
        elif value > MAX_DURATION_S:
            raise ValueError(
                f"'{operation}' must be at most {MAX_DURATION_S} s, got {readable(value)}"
            )

    @property
    def value(self) -> "float | RVConfig":
        """The amount: seconds, a random duration, or megabytes."""
        return self.step_operation[self.operation]


class CpuStep(OperationStep):
    """Keeps a core busy for `cpu_time` seconds (a number or a random variable)."""

    family: ClassVar[str] = "CPU"
    kinds: ClassVar[type[StrEnum]] = CpuStepKind
    operation: ClassVar[StepOperation] = StepOperation.CPU_TIME
    kind: CpuStepKind

    def to_runtime(self, builder: StepBuilder, label: str) -> None:
        """A CPU burst."""
        builder.cpu(self, label)


class IoStep(OperationStep):
    """Waits `io_waiting_time` seconds without a core, holding a pool connection if it
    names one (or, for `io_db`, if its server has `db_connection_pool`)."""

    family: ClassVar[str] = "I/O"
    kinds: ClassVar[type[StrEnum]] = IoStepKind
    operation: ClassVar[StepOperation] = StepOperation.IO_WAITING_TIME
    kind: IoStepKind
    pool: Id | None = Field(
        default=None,
        description="The connection pool of the server whose connection the step holds for "
        "its wait. An `io_db` step of a server with `db_connection_pool` holds a connection "
        "of the pool `db` by default.",
    )

    def to_runtime(self, builder: StepBuilder, label: str) -> None:
        """An I/O wait."""
        builder.io(self, label)


class RamStep(OperationStep):
    """Reserves `necessary_ram` megabytes (a number) for the life of the request on the
    server."""

    family: ClassVar[str] = "RAM"
    kinds: ClassVar[type[StrEnum]] = RamStepKind
    operation: ClassVar[StepOperation] = StepOperation.NECESSARY_RAM
    kind: RamStepKind

    def _check_amount(self, value: "float | RVConfig") -> None:
        if isinstance(value, RVConfig):
            raise ValueError("necessary_ram must be a number of megabytes")
        if value > MAX_RAM_MB:
            raise ValueError(
                f"necessary_ram must be at most {MAX_RAM_MB} MB, got {readable(value)}"
            )

    @property
    def megabytes(self) -> float:
        """The megabytes reserved."""
        value = self.value
        assert not isinstance(value, RVConfig)  # refused by _check_amount
        return value

    def to_runtime(self, builder: StepBuilder, label: str) -> None:
        """A RAM reservation."""
        builder.ram(self, label)


class CallStep(StepModel):
    """Sends a sub-request to a node, or to several at once, and waits for the answers
    (an extension)."""

    family: ClassVar[str] = "call"
    kinds: ClassVar[type[StrEnum]] = CallStepKind
    kind: CallStepKind
    target: Id | None = Field(
        default=None,
        description="The server or load balancer the sub-request goes to, over the edge "
        "from this server to it; the answer comes back over the edge from the server that "
        "served it to this one.",
    )
    targets: list[Id] | None = Field(
        default=None,
        min_length=2,
        description="Instead of `target`: nodes called in parallel, one sub-request each, "
        "sent together.",
    )
    wait_for: PositiveInteger | None = Field(
        default=None,
        description="With `targets`: how many answers the step waits for (the first k); "
        "all of them when left out (fork-join).",
    )
    pool: Id | None = Field(
        default=None,
        description="The connection pool of the server whose connection the step holds "
        "while it waits for its answers.",
    )
    timeout_s: Timeout | None = Field(
        default=None,
        description="Seconds the step waits for its answers (a number or a random "
        "variable); then the call fails (`call_timed_out`).",
    )
    on_timeout: TimeoutAction | None = Field(
        default=None,
        description="With `timeout_s`: `keep_working` (the default) lets the called servers "
        "finish the sub-requests; `cancel` withdraws them.",
    )
    retry: Retry | None = Field(
        default=None,
        description="The caller's retry policy for each sub-request. A sub-request lost or "
        "refused is sent again after a backoff; with `timeout_s` and `timed_out` in "
        "`retry_on`, the sub-requests still out when the timeout fires are abandoned and "
        "sent again, each round with a fresh timeout.",
    )
    circuit_breaker: CircuitBreaker | None = Field(
        default=None,
        description="A circuit breaker around the step (its retries included); while open, "
        "the call fails at once (`circuit_open`) without being sent.",
    )

    @model_validator(mode="after")
    def _targets_and_timeout(self) -> Self:
        if self.on_timeout is not None and self.timeout_s is None:
            raise ValueError("on_timeout goes with timeout_s, which this call step lacks")
        check_timeout(self.timeout_s)
        if (self.target is None) == (self.targets is None):
            raise ValueError(
                "a call step needs a 'target', or 'targets' to call several nodes at once"
            )
        if self.targets is not None:
            if len(set(self.targets)) < len(self.targets):
                raise ValueError("a call step lists a target more than once")
            if self.wait_for is not None and self.wait_for > len(self.targets):
                raise ValueError(
                    f"wait_for is {self.wait_for} but the step calls only "
                    f"{len(self.targets)} targets"
                )
        elif self.wait_for is not None:
            raise ValueError("wait_for goes with 'targets', the nodes called in parallel")
        return self

    @property
    def call_targets(self) -> list[str]:
        """The nodes the step calls, in order."""
        if self.targets is not None:
            return list(self.targets)
        assert self.target is not None  # one or the other, validated
        return [self.target]

    @property
    def attempts_alive(self) -> int:
        """Most attempts of one sub-request that may be alive at once: every allowed
        attempt when timed-out rounds are sent again while the called servers keep
        working on the abandoned ones (see `retries.attempts_alive`)."""
        return attempts_alive(self.retry, self.timeout_s is not None, self.on_timeout)

    @property
    def answers_needed(self) -> int:
        """How many answers the step waits for."""
        return self.wait_for if self.wait_for is not None else len(self.call_targets)

    def to_runtime(self, builder: StepBuilder, label: str) -> None:
        """A call."""
        builder.call(self, label)


class CacheStep(StepModel):
    """Looks something up in a cache: with probability `hit_ratio` it hits and runs the
    `hit` steps, else the `miss` steps (an extension)."""

    family: ClassVar[str] = "cache"
    kinds: ClassVar[type[StrEnum]] = CacheStepKind
    kind: CacheStepKind
    hit_ratio: Number = Field(ge=0.0, le=1.0, description="The probability that a lookup hits.")
    hit: "list[Step]" = Field(default_factory=list, description="The steps run on a hit.")
    miss: "list[Step]" = Field(
        default_factory=list,
        description="The steps run on a miss (a call to the database, then a write back, say).",
    )
    outcome_per: DrawScope = Field(
        default=DrawScope.REQUEST,
        description="`request` (the default): a retried attempt asks for the same key, so it "
        "keeps its request's outcome, and a miss turns into a hit once an earlier attempt has "
        "run the miss steps to their end (the write-back). `attempt`: each attempt draws "
        "afresh, as for keys that differ between attempts.",
    )

    @model_validator(mode="after")
    def _no_ram_in_branches(self) -> Self:
        for branch in (self.hit, self.miss):
            if any(isinstance(step, RamStep) for step in branch):
                raise ValueError(
                    "RAM steps belong to the endpoint, not to a cache step's hit or miss"
                )
        return self

    def branches(self) -> Iterator[tuple[str, "list[Step]"]]:
        """`hit`, then `miss`."""
        yield "hit", self.hit
        yield "miss", self.miss

    def to_runtime(self, builder: StepBuilder, label: str) -> None:
        """A lookup and its branches."""
        builder.cache(self, label)


STEP_MODELS: tuple[type[StepModel], ...] = (CpuStep, IoStep, RamStep, CallStep, CacheStep)
"""Every kind of step, in the order messages list their kinds."""

_MODEL_OF_KIND: dict[str, type[StepModel]] = {
    kind.value: model for model in STEP_MODELS for kind in model.kinds
}
STEP_KINDS = list(_MODEL_OF_KIND)
"""Every `kind` a step may have."""
_FIELDS_OF: dict[type[StepModel], frozenset[str]] = {
    model: frozenset(model.model_fields) for model in STEP_MODELS
}
_ANY_FIELD = frozenset().union(*_FIELDS_OF.values())
_TAGS = frozenset(model.__name__ for model in STEP_MODELS)
_EMPTY: tuple[object, ...] = (None, [], {})


def _tag_of(value: Any) -> str | None:
    """The model name of a step's `kind` (capitalised, so error paths leave it out)."""
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    model = _MODEL_OF_KIND.get(kind) if isinstance(kind, str) else None
    return None if model is None else model.__name__


def _validate_step(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    if isinstance(value, dict):
        value = _without_empty_foreign_fields(value)
    try:
        return handler(value)
    except ValidationError as exc:
        raise _located(value, exc) from None


def _without_empty_foreign_fields(value: dict[Any, Any]) -> dict[Any, Any]:
    kind = value.get("kind")
    model = _MODEL_OF_KIND.get(kind) if isinstance(kind, str) else None
    if model is None or value.keys() <= _FIELDS_OF[model]:
        return value
    fields = _FIELDS_OF[model]
    return {k: v for k, v in value.items() if k in fields or k not in _ANY_FIELD or v not in _EMPTY}


def _located(value: Any, exc: ValidationError) -> ValidationError:
    """`exc`'s errors with the model's tag taken out of their paths, a field of another
    kind named as such, and an unknown or missing kind reported at `kind`."""
    details: list[InitErrorDetails] = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        if not loc and error["type"] in ("union_tag_not_found", "union_tag_invalid"):
            details.append(_kind_error(value))
            continue
        if loc and loc[0] in _TAGS:
            loc = loc[1:]
        message = error["msg"]
        if error["type"] == "extra_forbidden" and len(loc) == 1 and isinstance(value, dict):
            message = _foreign_field(str(loc[0]), value.get("kind")) or message
        details.append(
            InitErrorDetails(
                type=PydanticCustomError(error["type"], message), loc=loc, input=error["input"]
            )
        )
    return ValidationError.from_exception_data(exc.title, details)


def _kind_error(value: Any) -> InitErrorDetails:
    if not isinstance(value, dict):
        error = PydanticCustomError("model_type", "Input should be a valid dictionary")
        return InitErrorDetails(type=error, loc=(), input=value)
    if "kind" not in value:
        error = PydanticCustomError("missing", "Field required")
        return InitErrorDetails(type=error, loc=("kind",), input=value)
    error = PydanticCustomError("enum", f"kind must be one of {', '.join(STEP_KINDS)}")
    return InitErrorDetails(type=error, loc=("kind",), input=value["kind"])


def _foreign_field(field: str, kind: Any) -> str | None:
    """'only a call step has timeout_s, not 'io_db'', or None if no kind has `field`."""
    owners = [model.family for model in STEP_MODELS if field in _FIELDS_OF[model]]
    if not owners:
        return None
    article = "an" if owners[0][0] in "AEIOU" else "a"
    return f"only {article} {_one_of(owners)} step has {field}, not '{kind}'"


def _one_of(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


Step = Annotated[
    Annotated[CpuStep, Tag("CpuStep")]
    | Annotated[IoStep, Tag("IoStep")]
    | Annotated[RamStep, Tag("RamStep")]
    | Annotated[CallStep, Tag("CallStep")]
    | Annotated[CacheStep, Tag("CacheStep")],
    Discriminator(_tag_of),
    WrapValidator(_validate_step),
]
"""One step of an endpoint, its model chosen by its `kind`."""

CacheStep.model_rebuild()

TimedStep = CpuStep | IoStep
"""A step that takes time on the server: a CPU burst or an I/O wait."""


def walk_steps(
    steps: "list[Step]", loc: tuple[str | int, ...] = (), label: str = ""
) -> "Iterator[tuple[str, tuple[str | int, ...], Step]]":
    """Every step, cache branches included, depth first in document order, with its label
    (`2`, or `2.miss.0` for the first step of the miss branch of step 2) and its location
    under `loc`."""
    for k, step in enumerate(steps):
        step_label = f"{label}.{k}" if label else str(k)
        step_loc = (*loc, k)
        yield step_label, step_loc, step
        for branch, steps_of_branch in step.branches():
            yield from walk_steps(steps_of_branch, (*step_loc, branch), f"{step_label}.{branch}")
