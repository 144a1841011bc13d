"""The system under study: a client, load balancers (none, one or several tiers), servers
and edges."""

import itertools
from typing import Annotated, Literal, Self

from pydantic import (
    Field,
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
    MAX_EVENT_LOOP_COST_S,
    MAX_POOL_SIZE,
    MAX_RAM_MB,
    MAX_REPLICAS,
    MAX_WEIGHT,
    MIN_FAILURE_CYCLE_S,
    MIN_RAM_MB,
    IoStepKind,
    LoadBalancerAlgorithm,
    WhenDown,
    WorkInProgress,
)
from asyncflow_backend.schemas.autoscaling import Autoscaler
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
from asyncflow_backend.schemas.resilience import RateLimit
from asyncflow_backend.schemas.steps import CallStep, IoStep, Step

DB_POOL = "db"
"""The pool `db_connection_pool` makes, which `io_db` steps hold unless they name another."""


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


class EventLoop(StrictModel):
    """What each core's event loop costs in CPU besides the steps: a cost per wake-up, paid
    by a CPU burst that finds its core idle (the loop was asleep in its poll), and a cost per
    callback, paid by every CPU burst (docs/semantics.md, "Event-loop cost")."""

    per_wakeup_s: Number = Field(
        default=0.0,
        ge=0,
        le=MAX_EVENT_LOOP_COST_S,
        allow_inf_nan=False,
        description="CPU seconds a core's loop spends waking from an idle poll (the context "
        "switch, the poll's return, the timers) before the CPU burst that woke it runs. A "
        "burst that a busy loop takes from the ready queue does not pay it, so a busy spell "
        "shares one wake-up.",
    )
    per_callback_s: Number = Field(
        default=0.0,
        ge=0,
        le=MAX_EVENT_LOOP_COST_S,
        allow_inf_nan=False,
        description="CPU seconds added to every CPU burst that takes a core (a callback the "
        "loop runs: a request's first CPU steps, or those after an I/O wait or a call).",
    )

    @model_validator(mode="after")
    def _some_cost(self) -> Self:
        if self.per_wakeup_s == 0 and self.per_callback_s == 0:
            raise ValueError("event_loop needs per_wakeup_s, per_callback_s or both above 0")
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
    event_loop: EventLoop | None = Field(
        default=None,
        description="The CPU its event loops spend per wake-up and per callback, besides "
        "the steps; without it, a CPU step costs exactly its draw.",
    )
    replicas: PositiveInteger | None = Field(
        default=None,
        le=MAX_REPLICAS,
        description="A replica group: N identical servers with ids `<id>-1` .. `<id>-N`, each "
        "covered by every balancer that covers `<id>`, its edges copied for each (results per "
        "replica and per group, `replica_groups`). Unset: one server with the id itself.",
    )
    autoscaler: Autoscaler | None = Field(
        default=None,
        description="A horizontal autoscaler on the replica group (Kubernetes' HPA): the "
        "group has `max_replicas` servers, `replicas` of them in service at the start, and "
        "the autoscaler adds and removes replicas between `min_replicas` and "
        "`max_replicas`. Needs `replicas`.",
    )
    when_down: WhenDown | None = Field(
        default=None,
        description="A request that reaches the server while it is down (failed, or in an "
        "outage no balancer routes around): `wait` (the default) until it is back up, or "
        "`reject` at once (`rejected`, reason `server_down`).",
    )

    @model_validator(mode="after")
    def _autoscaled_group(self) -> Self:
        scaler = self.autoscaler
        if scaler is None:
            return self
        if self.replicas is None:
            raise ValueError(
                "autoscaler: an autoscaler scales a replica group; give `replicas` (the "
                "replicas at the start, from min_replicas to max_replicas)"
            )
        if not scaler.min_replicas <= self.replicas <= scaler.max_replicas:
            raise ValueError(
                f"replicas: {self.replicas} replicas at the start is outside the "
                f"autoscaler's min_replicas..max_replicas ({scaler.min_replicas}.."
                f"{scaler.max_replicas})"
            )
        return self

    @property
    def copies(self) -> int:
        """How many servers it stands for in a run: the autoscaler's `max_replicas`,
        `replicas`, or 1."""
        if self.autoscaler is not None:
            return self.autoscaler.max_replicas
        return self.replicas or 1

    def pool_of(self, step: Step) -> str | None:
        """The pool whose connection `step` holds, if any: the one an I/O or call step
        names, else `db` for an `io_db` step of a server with `db_connection_pool`."""
        if not isinstance(step, IoStep | CallStep):
            return None
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
