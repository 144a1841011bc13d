"""Experiments: replications with confidence intervals, sweeps and capacity searches.

An experiment is many runs of one scenario (see `spec` for its document):
replication i of every point uses child seed i (`seeds`), each is measured
after its warm-up (`measure`), and `plan` decides from the finished ones what
to run next, so the same plan drives a run in this process (`local`) and one
spread over the job queue.
"""

from asyncflow_backend.experiments.local import run_experiment
from asyncflow_backend.experiments.measure import Replication, metric_names, run_replication
from asyncflow_backend.experiments.plan import Needed, Point, Step, plan
from asyncflow_backend.experiments.prepare import (
    ExperimentValidationError,
    PreparedExperiment,
    load_experiment_file,
    parse_experiment,
    prepare,
)
from asyncflow_backend.experiments.report import ExperimentReport
from asyncflow_backend.experiments.seeds import replication_seed
from asyncflow_backend.experiments.spec import ExperimentSpec

__all__ = [
    "ExperimentReport",
    "ExperimentSpec",
    "ExperimentValidationError",
    "Needed",
    "Point",
    "PreparedExperiment",
    "Replication",
    "Step",
    "load_experiment_file",
    "metric_names",
    "parse_experiment",
    "plan",
    "prepare",
    "replication_seed",
    "run_experiment",
    "run_replication",
]
