"""Documents of the /api/v1/experiments routes."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from asyncflow_backend.db.repository import RunStatus
from asyncflow_backend.experiments.report import ExperimentReport


class ExperimentLinks(BaseModel):
    """Where to follow, cancel and look at an experiment."""

    model_config = ConfigDict(populate_by_name=True)

    self_: str = Field(alias="self")
    cancel: str
    page: str = Field(description="The experiment's web page.")


class ExperimentView(BaseModel):
    """The state of one experiment, with its report so far (partial while it runs)."""

    id: str
    status: RunStatus
    kind: str = Field(description="replications, sweep or search.")
    seed: int = Field(description="Root seed: replication i runs with child i of it.")
    progress: float = Field(
        ge=0.0, le=1.0, description="Replications finished over replications planned so far."
    )
    replications_done: int
    replications_planned: int = Field(
        description="Grows while until_precise or a search adds replications."
    )
    created_at: datetime
    finished_at: datetime | None
    error: str | None
    links: ExperimentLinks
    report: ExperimentReport | None = Field(
        default=None, description="Every point so far; left out of lists."
    )


class ExperimentPage(BaseModel):
    """One page of experiments, newest first."""

    items: list[ExperimentView]
    total: int
    limit: int
    offset: int
