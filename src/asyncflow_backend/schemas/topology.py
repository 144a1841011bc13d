"""The system under study: a client, load balancers (none, one or several tiers), servers
and edges."""

import itertools
from collections.abc import Iterator
from typing import Annotated, Any, Literal, Self

from pydantic import (
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from asyncflow_backend.config.constants import (
    DEFAULT_CPU_CORES,
    DEFAULT_DROPOUT_RATE,
    DEFAULT_RAM_MB,
    MAX_ADMISSION_LIMIT,
    MAX_CAPACITY_CHANGES,
    MAX_CPU_CORES,
    MAX_DURATION_S,
    MAX_POOL_SIZE,
    MAX_RAM_MB,
    MAX_WEIGHT,
    MIN_FAILURE_CYCLE_S,
    MIN_RAM_MB,
    CacheStepKind,
    CallStepKind,
    CpuStepKind,
    IoStepKind,
    LoadBalancerAlgorithm,
    RamStepKind,
    StepOperation,
    TimeoutAction,
    WhenDown,
    WorkInProgress,
)
from asyncflow_backend.schemas.base import (
    EndpointName,
    Id,
    Integer,
    Number,
    PositiveFinite,
    PositiveInteger,
    StrictModel,
    readable,
)
from asyncflow_backend.schemas.random_variables import RVConfig, check_mean_at_most
from asyncflow_backend.schemas.resilience import CircuitBreaker, RateLimit
from asyncflow_backend.schemas.retries import Retry

StepKind = CpuStepKind | IoStepKind | RamStepKind | CallStepKind | CacheStepKind
DB_POOL = "db"
"""The pool `db_connection_pool` makes, which `io_db` steps hold unless they name another."""

_OPERATION_OF_KIND: dict[type[StepKind], StepOperation] = {
    CpuStepKind: StepOperation.CPU_TIME,
    IoStepKind: StepOperation.IO_WAITING_TIME,
    RamStepKind: StepOperation.NECESSARY_RAM,
}
_STEP_KINDS = [kind.value for kinds in _OPERATION_OF_KIND for kind in kinds] + [
    CallStepKind.CALL.value,
    CacheStepKind.CACHE.value,
]


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


class Step(StrictModel):
    """One stage of an endpoint: CPU work, an I/O wait, a RAM reservation, or a call.

    `step_operation` holds exactly one key, the one that fits `kind`. CPU and
    I/O durations may be a random variable instead of a number (an extension).
    A `call` step (an extension) has no `step_operation`: it names its `target`.
    """

    kind: StepKind
    step_operation: dict[StepOperation, StepAmount] = Field(default_factory=dict)
    target: Id | None = Field(
        default=None,
        description="A `call` step only: the server or load balancer the sub-request goes "
        "to, over the edge from this server to it; the answer comes back over the edge "
        "from the server that served it to this one.",
    )
    targets: list[Id] | None = Field(
        default=None,
        min_length=2,
        description="A `call` step only, instead of `target`: nodes called in parallel, "
        "one sub-request each, sent together.",
    )
    wait_for: PositiveInteger | None = Field(
        default=None,
        description="With `targets`: how many answers the step waits for (the first k); "
        "all of them when left out (fork-join).",
    )
    hit_ratio: Number | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="A `cache` step only: the probability that a lookup hits.",
    )
    hit: list["Step"] = Field(
        default_factory=list, description="A `cache` step only: the steps run on a hit."
    )
    miss: list["Step"] = Field(
        default_factory=list,
        description="A `cache` step only: the steps run on a miss (a call to the database, "
        "then a write back, say).",
    )
    pool: Id | None = Field(
        default=None,
        description="An I/O or call step only: the connection pool of the server whose connection "
        "the step holds for its wait. An `io_db` step of a server with "
        "`db_connection_pool` holds a connection of the pool `db` by default.",
    )
    timeout_s: Timeout | None = Field(
        default=None,
        description="A `call` step only: seconds the step waits for its answers (a number or "
        "a random variable); then the call fails (`call_timed_out`).",
    )
    on_timeout: TimeoutAction | None = Field(
        default=None,
        description="A `call` step with `timeout_s` only: `keep_working` (the default) lets "
        "the called servers finish the sub-requests; `cancel` withdraws them.",
    )
    retry: Retry | None = Field(
        default=None,
        description="A `call` step only: the caller's retry policy for each sub-request. A "
        "sub-request lost or refused is sent again after a backoff; with `timeout_s` and "
        "`timed_out` in `retry_on`, the sub-requests still out when the timeout fires are "
        "abandoned and sent again, each round with a fresh timeout.",
    )
    circuit_breaker: CircuitBreaker | None = Field(
        default=None,
        description="A `call` step only: a circuit breaker around the step (its retries "
        "included); while open, the call fails at once (`circuit_open`) without being sent.",
    )

    @field_validator("kind", mode="before")
    @classmethod
    def _known_kind(cls, value: Any) -> Any:
        # One message listing every kind, rather than one per family of kinds.
        if not isinstance(value, str) or value not in _STEP_KINDS:
            raise ValueError(f"kind must be one of {', '.join(_STEP_KINDS)}")
        return value

    @model_validator(mode="after")
    def _operation_fits_kind(self) -> Self:
        if self.kind is CacheStepKind.CACHE:
            if self.hit_ratio is None:
                raise ValueError("a cache step needs a 'hit_ratio'")
            if (
                self.step_operation
                or self.call_targets
                or self.pool is not None
                or self.timeout_s is not None
                or self.retry is not None
                or self.circuit_breaker is not None
            ):
                raise ValueError("a cache step takes only hit_ratio, hit and miss")
            for branch in (self.hit, self.miss):
                if any(isinstance(step.kind, RamStepKind) for step in branch):
                    raise ValueError(
                        "RAM steps belong to the endpoint, not to a cache step's hit or miss"
                    )
            return self
        if self.hit_ratio is not None or self.hit or self.miss:
            raise ValueError(f"only a cache step has hit_ratio, hit and miss, not '{self.kind}'")
        if self.kind is not CallStepKind.CALL and (
            self.timeout_s is not None or self.on_timeout is not None
        ):
            raise ValueError(f"only a call step has timeout_s and on_timeout, not '{self.kind}'")
        if self.kind is not CallStepKind.CALL and (
            self.retry is not None or self.circuit_breaker is not None
        ):
            raise ValueError(
                f"only a call step has a retry policy or a circuit breaker, not '{self.kind}'"
            )
        if self.on_timeout is not None and self.timeout_s is None:
            raise ValueError("on_timeout goes with timeout_s, which this call step lacks")
        check_timeout(self.timeout_s)
        if self.kind is CallStepKind.CALL:
            if (self.target is None) == (self.targets is None):
                raise ValueError(
                    "a call step needs a 'target', or 'targets' to call several nodes at once"
                )
            if self.step_operation:
                raise ValueError("a call step takes no step_operation, only a 'target'")
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
        if self.target is not None or self.targets is not None or self.wait_for is not None:
            raise ValueError(f"only a call step has targets, not '{self.kind}'")
        expected = _OPERATION_OF_KIND[type(self.kind)]
        keys = set(self.step_operation)
        if keys != {expected}:
            given = ", ".join(sorted(keys)) or "nothing"
            raise ValueError(
                f"a step of kind '{self.kind}' needs exactly the operation '{expected}', "
                f"got {given}"
            )
        if self.pool is not None and not isinstance(self.kind, IoStepKind):
            raise ValueError(
                f"only an I/O or call step may hold a pool connection, not '{self.kind}'"
            )
        value = self.step_operation[expected]
        if isinstance(value, RVConfig):
            if expected is StepOperation.NECESSARY_RAM:
                raise ValueError("necessary_ram must be a number of megabytes")
            if value.mean <= 0:
                raise ValueError(f"the mean of '{expected}' must be greater than 0")
            check_mean_at_most(value, MAX_DURATION_S, " s")
        elif expected is StepOperation.NECESSARY_RAM and value > MAX_RAM_MB:
            raise ValueError(
                f"necessary_ram must be at most {MAX_RAM_MB} MB, got {readable(value)}"
            )
        elif expected is not StepOperation.NECESSARY_RAM and value > MAX_DURATION_S:
            raise ValueError(
                f"'{expected}' must be at most {MAX_DURATION_S} s, got {readable(value)}"
            )
        return self

    @property
    def call_targets(self) -> list[str]:
        """The nodes a call step calls (empty for other steps)."""
        if self.targets is not None:
            return list(self.targets)
        return [self.target] if self.target is not None else []

    @property
    def answers_needed(self) -> int:
        """How many answers a call step waits for."""
        return self.wait_for if self.wait_for is not None else len(self.call_targets)

    @property
    def operation(self) -> StepOperation | None:
        """The single operation key of this step; None for a call or a cache step."""
        if self.kind is CallStepKind.CALL or self.kind is CacheStepKind.CACHE:
            return None
        return _OPERATION_OF_KIND[type(self.kind)]

    @property
    def value(self) -> float | RVConfig:
        """The amount of the operation: seconds, a random duration, or megabytes (0 for a
        call step, whose time is the answer's)."""
        operation = self.operation
        return 0.0 if operation is None else self.step_operation[operation]


def walk_steps(
    steps: list[Step], loc: tuple[str | int, ...] = (), label: str = ""
) -> Iterator[tuple[str, tuple[str | int, ...], Step]]:
    """Every step, cache branches included, depth first in document order, with its label
    (`2`, or `2.miss.0` for the first step of the miss branch of step 2) and its location
    under `loc`."""
    for k, step in enumerate(steps):
        step_label = f"{label}.{k}" if label else str(k)
        step_loc = (*loc, k)
        yield step_label, step_loc, step
        for branch, steps_of_branch in (("hit", step.hit), ("miss", step.miss)):
            yield from walk_steps(steps_of_branch, (*step_loc, branch), f"{step_label}.{branch}")


class Endpoint(StrictModel):
    """A route of a server, made of steps run in order."""

    endpoint_name: EndpointName
    probability: PositiveFinite | None = Field(
        default=None,
        le=MAX_WEIGHT,
        description="Relative weight of this endpoint; endpoints without one share equally.",
    )
    steps: list[Step] = Field(min_length=1)


class ServerResources(StrictModel):
    """Hardware of a server."""

    cpu_cores: PositiveInteger = Field(default=DEFAULT_CPU_CORES, le=MAX_CPU_CORES)
    ram_mb: Integer = Field(default=DEFAULT_RAM_MB, ge=MIN_RAM_MB, le=MAX_RAM_MB)
    db_connection_pool: PositiveInteger | None = Field(
        default=None,
        le=MAX_POOL_SIZE,
        description="Connections to the database: each `io_db` step holds one for its wait "
        "and queues FIFO for a free one. The pool is named `db`.",
    )
    connection_pools: dict[Id, Annotated[PositiveInteger, Field(le=MAX_POOL_SIZE)]] = Field(
        default_factory=dict,
        description="Named pools of connections (pool name: size) that I/O steps of this "
        "server hold by naming them in `pool`.",
    )

    def pool_sizes(self) -> dict[str, int]:
        """Every pool of the server by name: `db` (from `db_connection_pool`) first."""
        pools = {DB_POOL: self.db_connection_pool} if self.db_connection_pool else {}
        return pools | self.connection_pools


class CoreChange(StrictModel):
    """From `at_s` on, the server has `cpu_cores` cores (0: none, requests wait)."""

    at_s: Number = Field(ge=0, allow_inf_nan=False)
    cpu_cores: Integer = Field(ge=0, le=MAX_CPU_CORES)


class Admission(StrictModel):
    """Admission control: caps checked when a request arrives; a request that would exceed
    one is rejected at once (`requests.rejected`), and nothing it would have done happens."""

    max_ready_queue: Integer | None = Field(
        default=None,
        ge=0,
        le=MAX_ADMISSION_LIMIT,
        description="Most requests waiting for a core: an arrival that finds this many "
        "waiting, and no core free, is rejected (reason `queue_full`). 0: never wait.",
    )
    max_concurrency: PositiveInteger | None = Field(
        default=None,
        le=MAX_ADMISSION_LIMIT,
        description="Most requests in the server at once (waiting for RAM or a core, "
        "running, in I/O or waiting for calls): an arrival that finds this many is "
        "rejected (reason `concurrency_limit`).",
    )

    @model_validator(mode="after")
    def _some_cap(self) -> Self:
        if self.max_ready_queue is None and self.max_concurrency is None:
            raise ValueError("admission needs max_ready_queue, max_concurrency or both")
        return self


class Failures(StrictModel):
    """Random failures and repairs of a server: it is up for a draw of `time_to_failure`
    seconds, down for a draw of `time_to_repair`, and so on. The clock runs whether the
    server is busy or idle (time-based failures)."""

    time_to_failure: RVConfig = Field(
        description="Seconds from a repair (or the start) to the next failure; its mean is "
        "the MTTF."
    )
    time_to_repair: RVConfig = Field(
        description="Seconds from a failure to the repair; its mean is the MTTR."
    )
    work_in_progress: WorkInProgress = Field(
        default=WorkInProgress.RESUME,
        description="`resume`: the requests on the server wait for the repair and carry on "
        "(a CPU burst resumes its remaining time); `lose`: they all fail at once "
        "(`failed`, reason `server_failure`).",
    )

    @field_validator("time_to_failure", "time_to_repair")
    @classmethod
    def _positive_mean(cls, value: RVConfig) -> RVConfig:
        if value.mean <= 0:
            raise ValueError("the mean must be greater than 0")
        return check_mean_at_most(value, MAX_DURATION_S, " s")

    @model_validator(mode="after")
    def _cycle_long_enough(self) -> Self:
        cycle = self.time_to_failure.mean + self.time_to_repair.mean
        if cycle < MIN_FAILURE_CYCLE_S:
            raise ValueError(
                f"the mean time to failure plus the mean time to repair must be at least "
                f"{readable(MIN_FAILURE_CYCLE_S)} s, got {readable(cycle)} s"
            )
        return self

    @property
    def availability(self) -> float:
        """MTTF / (MTTF + MTTR): the long-run fraction of time the server is up."""
        up = self.time_to_failure.mean
        return up / (up + self.time_to_repair.mean)


class Server(StrictModel):
    """A node that serves requests with its cores, RAM and endpoints."""

    id: Id
    type: Literal["server"] = "server"
    server_resources: ServerResources = ServerResources()
    endpoints: list[Endpoint] = Field(min_length=1)
    capacity_schedule: list[CoreChange] = Field(
        default_factory=list,
        max_length=MAX_CAPACITY_CHANGES,
        description="Cores over time: each change sets the server's cores from its `at_s` "
        "on (`server_resources.cpu_cores` before the first). Cores taken away finish the "
        "CPU step they are running; requests wait for a core while none is free.",
    )

    @field_validator("capacity_schedule")
    @classmethod
    def _changes_in_time_order(cls, value: list[CoreChange]) -> list[CoreChange]:
        for before, after in itertools.pairwise(value):
            if after.at_s <= before.at_s:
                raise ValueError(
                    f"changes must be in increasing at_s: {readable(after.at_s)} s comes "
                    f"after {readable(before.at_s)} s"
                )
        return value

    admission: Admission | None = Field(
        default=None,
        description="Caps on the ready queue and on the requests in the server; without "
        "it, every request is admitted and waits as long as it takes.",
    )
    failures: Failures | None = Field(
        default=None,
        description="Random failures and repairs; without it, the server never fails.",
    )
    when_down: WhenDown | None = Field(
        default=None,
        description="A request that reaches the server while it is down (failed, or in an "
        "outage no balancer routes around): `wait` (the default) until it is back up, or "
        "`reject` at once (`rejected`, reason `server_down`).",
    )

    def pool_of(self, step: Step) -> str | None:
        """The pool whose connection `step` holds, if any."""
        if step.pool is not None:
            return step.pool
        if step.kind is IoStepKind.DB and self.server_resources.db_connection_pool:
            return DB_POOL
        return None


class Client(StrictModel):
    """Where requests enter the system and where they must come back to complete."""

    id: Id
    type: Literal["client"] = "client"


class LoadBalancer(StrictModel):
    """Spreads requests over the servers it covers."""

    id: Id
    type: Literal["load_balancer"] = "load_balancer"
    algorithms: LoadBalancerAlgorithm = LoadBalancerAlgorithm.ROUND_ROBIN
    server_covered: list[Id] = Field(min_length=1)
    weights: dict[Id, Annotated[PositiveFinite, Field(le=MAX_WEIGHT)]] | None = Field(
        default=None,
        description="`weighted_round_robin` only: relative share of each covered server "
        "(server id: weight); servers left out weigh 1.",
    )
    when_none_up: WhenDown | None = Field(
        default=None,
        description="A request that reaches the balancer while every server it covers is "
        "down: `wait` (the default) until one is back up, or `reject` at once (`rejected`, "
        "reason `no_server_up`).",
    )
    rate_limit: RateLimit | None = Field(
        default=None,
        description="A token-bucket rate limit: a request that finds no token is rejected "
        "at once at the balancer (reason `rate_limited`). None: no limit.",
    )

    @field_validator("server_covered")
    @classmethod
    def _no_duplicates(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for server_id in value:
            if server_id in seen:
                raise ValueError(f"server '{server_id}' is listed twice")
            seen.add(server_id)
        return value


BalancerLoc = tuple[str | int, ...]


class TopologyNodes(StrictModel):
    """Every node of the graph except the generator."""

    client: Client
    load_balancer: LoadBalancer | None = Field(
        default=None, description="A load balancer (AsyncFlow's single one)."
    )
    load_balancers: list[LoadBalancer] = Field(
        default_factory=list,
        description="More load balancers, for tiers: an edge tier in front of the API servers, "
        "an internal tier in front of a database's replicas (reached by call steps).",
    )
    servers: list[Server] = Field(min_length=1)

    def balancers(self) -> list[tuple[BalancerLoc, LoadBalancer]]:
        """Every load balancer with its location in the scenario: `load_balancer` first,
        then `load_balancers` in order."""
        where: BalancerLoc = ("topology_graph", "nodes")
        found: list[tuple[BalancerLoc, LoadBalancer]] = []
        if self.load_balancer is not None:
            found.append(((*where, "load_balancer"), self.load_balancer))
        found += [((*where, "load_balancers", i), lb) for i, lb in enumerate(self.load_balancers)]
        return found

    def balancer(self, node_id: str) -> LoadBalancer | None:
        """The load balancer `node_id`, or None if no balancer has that id."""
        return next((lb for _, lb in self.balancers() if lb.id == node_id), None)


class Edge(StrictModel):
    """A directed network link that delays, and may drop, the requests crossing it."""

    id: Id
    source: Id
    target: Id
    latency: RVConfig
    edge_type: Literal["network_connection"] = "network_connection"
    dropout_rate: Number = Field(default=DEFAULT_DROPOUT_RATE, ge=0.0, le=1.0)

    @field_validator("latency")
    @classmethod
    def _positive_latency(cls, value: RVConfig) -> RVConfig:
        if value.mean <= 0:
            raise ValueError("the mean latency must be greater than 0")
        return check_mean_at_most(value, MAX_DURATION_S, " s")


class TopologyGraph(StrictModel):
    """Nodes and the edges between them."""

    nodes: TopologyNodes
    edges: list[Edge] = Field(min_length=1)
