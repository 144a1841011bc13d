"""Response bodies of the API, declared so that the OpenAPI document matches every answer."""

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from asyncflow_backend.config.constants import SampledMetric
from asyncflow_backend.db.repository import RunStatus
from asyncflow_backend.schemas.validation import Problem


class ErrorResponse(BaseModel):
    """Any error other than invalid input: a sentence saying what went wrong."""

    detail: str = Field(examples=["no simulation run with id 5b0c7e1a-0000-4000-8000-000000000000"])


class RunConflict(ErrorResponse):
    """The run is not in a state that allows the request."""

    status: RunStatus = Field(description="The run's status when the request was refused.")


class ProblemItem(BaseModel):
    """One reason the request was refused, located in the request."""

    loc: list[str | int] = Field(
        description="Where the problem is: `body` then the path inside the scenario, "
        "or `query` / `path` / `header` then the parameter name.",
        examples=[["body", "topology_graph", "edges", 1, "target"]],
    )
    path: str = Field(
        description="`loc` written as a dotted path with list indices.",
        examples=["topology_graph.edges[1].target"],
    )
    msg: str = Field(examples=["edge 'browser-api-1' ends at unknown node 'api-2'"])
    type: str = Field(
        description="`invalid_scenario`, `limit_exceeded`, or the parameter validator's code.",
        examples=["invalid_scenario"],
    )


class WarningItem(BaseModel):
    """Legal input that is almost never meant: it runs as written, and this says what it does."""

    loc: list[str | int] = Field(
        description="`body` then the path inside the scenario.",
        examples=[["body", "topology_graph", "edges", 0, "latency"]],
    )
    path: str = Field(
        description="`loc` written as a dotted path with list indices.",
        examples=["topology_graph.edges[0].latency"],
    )
    msg: str = Field(
        examples=[
            "edge 'browser-api-1': no distribution given, so this duration is Poisson with "
            "mean 0.002 s (AsyncFlow's default): every draw is a whole number of seconds, "
            "100% of them 0 s; write distribution: exponential (or deterministic) for a "
            "duration in fractions of a second"
        ]
    )

    @classmethod
    def of(cls, warnings: Iterable[Problem]) -> "list[WarningItem]":
        """The items of `find_warnings`' answer, located under `body` like problems."""
        return [cls(loc=["body", *w.loc], path=w.path, msg=w.message) for w in warnings]


WARNINGS_DESCRIPTION = (
    "Legal input that is probably not what was meant (a duration without a distribution, "
    "the default dropout on every edge, a server offered more CPU work than it has cores, "
    "a connection pool offered more than its size); "
    "empty when there is none. Nothing is refused for a warning."
)


class ValidationErrorResponse(BaseModel):
    """422: every problem found, not only the first one."""

    detail: list[ProblemItem]
    message: str = Field(examples=["the scenario has 1 problem"])


class RunLinks(BaseModel):
    """Where to find more about a run."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    self_: str = Field(alias="self", examples=["/api/v1/simulations/5b0c7e1a"])
    results: str
    timeseries: str
    cancel: str


class RunView(BaseModel):
    """The state of one simulation run."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "5b0c7e1a2f4d4c559a3e7d1f0b2c9e11",
                    "status": "running",
                    "progress": 0.42,
                    "simulated_s": 25.2,
                    "created_at": "2025-01-31T09:30:00.120000Z",
                    "started_at": "2025-01-31T09:30:00.480000Z",
                    "finished_at": None,
                    "error": None,
                    "seed": 7,
                    "name": "ram_pressure",
                    "cancel_requested": False,
                    "attempts": 1,
                    "links": {
                        "self": "/api/v1/simulations/5b0c7e1a2f4d4c559a3e7d1f0b2c9e11",
                        "results": "/api/v1/simulations/5b0c7e1a2f4d4c559a3e7d1f0b2c9e11/results",
                        "timeseries": "/api/v1/simulations/5b0c7e1a2f4d4c559a3e7d1f0b2c9e11"
                        "/timeseries",
                        "cancel": "/api/v1/simulations/5b0c7e1a2f4d4c559a3e7d1f0b2c9e11/cancel",
                    },
                }
            ]
        }
    )

    id: str = Field(examples=["5b0c7e1a-2f4d-4c55-9a3e-7d1f0b2c9e11"])
    status: RunStatus
    progress: float = Field(ge=0.0, le=1.0, description="Simulated time done / horizon.")
    simulated_s: float = Field(ge=0.0, description="Simulated seconds done so far.")
    created_at: datetime
    started_at: datetime | None = Field(description="When a worker first took the run.")
    finished_at: datetime | None
    error: str | None = Field(description="Why the run failed; null unless `status` is failed.")
    seed: int | None = Field(description="The seed the run uses; replaying it gives the same.")
    name: str | None = Field(
        default=None, description="The scenario's `name` (or the file name it was sent from)."
    )
    cancel_requested: bool
    attempts: int = Field(ge=0, description="How many times a worker started the run.")
    links: RunLinks


class SubmittedRun(RunView):
    """202 from a submission: the new run, and the warnings its scenario raised."""

    warnings: list[WarningItem] = Field(default_factory=list, description=WARNINGS_DESCRIPTION)


class RunPage(BaseModel):
    """One page of runs, newest first."""

    items: list[RunView]
    total: int = Field(ge=0, description="Runs matching the filter, over all pages.")
    limit: int
    offset: int


class ScenarioSummary(BaseModel):
    """The size of a valid scenario."""

    servers: int = Field(description="Servers of the run: each replica of a group counts.")
    endpoints: int = Field(description="Endpoints of the run: each replica has its own.")
    edges: int = Field(description="Edges of the run: the copies of a group's edges count.")
    load_balancer: bool = Field(description="True if the scenario has any load balancer.")
    load_balancers: int = Field(ge=0, description="Load balancers, over every tier.")
    events: int
    horizon_s: float
    sample_period_s: float
    expected_requests: float = Field(description="Mean number of requests over the horizon.")
    seed: int | None


class ValidationReport(BaseModel):
    """200 from /scenarios/validate: the scenario would be accepted."""

    valid: Literal[True] = True
    summary: ScenarioSummary
    warnings: list[WarningItem] = Field(default_factory=list, description=WARNINGS_DESCRIPTION)


class SeriesView(BaseModel):
    """One sampled series, possibly downsampled: `values[i]` was read at `t[i]`."""

    metric: SampledMetric
    component: str = Field(description="Server id (queues, RAM) or edge id (connections).")
    sample_period_s: float = Field(description="Period of the original samples.")
    points_in_window: int = Field(description="Original samples inside [start, end].")
    downsampled: bool
    t: list[float] = Field(description="Simulated seconds of each kept sample.")
    values: list[float]


class TimeSeriesView(BaseModel):
    """A window of a run's sampled series, downsampled with LTTB (first and last kept)."""

    run_id: str
    method: Literal["lttb"] = "lttb"
    max_points: int
    start: float
    end: float | None
    series: list[SeriesView]


class Health(BaseModel):
    """The process is up."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Whether the database and the queue answer; 503 names what is down."""

    status: Literal["ready", "unavailable"]
    checks: dict[str, str] = Field(examples=[{"database": "ok", "queue": "ok"}])
    detail: str | None = Field(default=None, examples=["database is down"])
