"""Estimates from simulation output: standard errors, t intervals, batch means, warm-up detection.

Used by the product (experiments) and by the tests against queueing theory alike.
"""

from asyncflow_backend.statistics.estimates import (
    Estimate,
    Summary,
    batch_means,
    summarise,
    t_quantile,
)
from asyncflow_backend.statistics.warmup import mser5

__all__ = ["Estimate", "Summary", "batch_means", "mser5", "summarise", "t_quantile"]
