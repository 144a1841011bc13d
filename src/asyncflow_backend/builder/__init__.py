"""A fluent Python builder for scenarios, producing the same validated `Scenario` as a file.

from asyncflow_backend.builder import ScenarioBuilder, exponential

scenario = (
    ScenarioBuilder()
    .generator("gen", users=100, rpm=20)
    .client("client")
    .server("srv-1", cores=2, ram_mb=2048)
    .endpoint("/api").parse(0.002).ram(128).io("io_db", 0.012)
    .chain("gen", "client", "srv-1", "client", latency=exponential(0.003))
    .settings(horizon=600, sample_period=0.05)
    .seed(1)
    .build()
)
"""

from asyncflow_backend.builder.random_variables import (
    Amount,
    RandomVariable,
    deterministic,
    exponential,
    log_normal,
    normal,
    poisson,
    uniform,
)
from asyncflow_backend.builder.scenario_builder import (
    BuilderUsageError,
    ScenarioBuilder,
    retry_policy,
)

__all__ = [
    "Amount",
    "BuilderUsageError",
    "RandomVariable",
    "ScenarioBuilder",
    "deterministic",
    "exponential",
    "log_normal",
    "normal",
    "poisson",
    "retry_policy",
    "uniform",
]
