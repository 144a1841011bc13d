"""Samplers: zero-argument callables returning the next draw of a random variable.

Draws are made in batches with numpy and handed out one Python float at a
time, so the hot path of the engine pays for a C-level `next()` rather than
a numpy call per event. Durations are never negative: distributions that can
go below zero are clipped at zero, their negative draws set to 0
(`asyncflow_backend.schemas.clipping` gives the mean that leaves, and warns).
"""

import itertools
import math
from collections.abc import Callable, Iterator

import numpy as np

from asyncflow_backend.config.constants import Distribution
from asyncflow_backend.schemas.random_variables import RVConfig

Sampler = Callable[[], float]
BATCH = 4096


def constant(value: float) -> Sampler:
    """A sampler that always returns `value`."""
    return itertools.repeat(float(value)).__next__


def variate(spec: float | RVConfig, rng: np.random.Generator) -> Sampler:
    """A sampler for a fixed number or for a random variable described by its moments."""
    if not isinstance(spec, RVConfig):
        return constant(spec)
    batch = batch_function(spec, rng)
    if batch is None:
        return constant(spec.mean)
    return batched(batch)


def batch_function(spec: RVConfig, rng: np.random.Generator) -> Callable[[int], np.ndarray] | None:
    """A function drawing `n` values of `spec`, or None when the variable is a constant."""
    mean = spec.mean
    variance = spec.variance or 0.0
    match spec.distribution:
        case Distribution.DETERMINISTIC:
            return None
        case Distribution.EXPONENTIAL:
            return lambda n: rng.exponential(mean, n)
        case Distribution.POISSON:
            return lambda n: rng.poisson(mean, n).astype(np.float64)
        case Distribution.NORMAL:
            std = math.sqrt(variance)
            return lambda n: np.maximum(rng.normal(mean, std, n), 0.0)
        case Distribution.LOG_NORMAL:
            if mean == 0:
                return None
            mu, sigma = spec.log_normal_parameters()
            return lambda n: rng.lognormal(mu, sigma, n)
        case Distribution.UNIFORM:
            # Without a variance, the widest non-negative uniform with this mean.
            half = math.sqrt(3 * variance) if spec.variance is not None else mean
            low = mean - half
            return lambda n: np.maximum(rng.uniform(low, mean + half, n), 0.0)
    raise ValueError(f"unsupported distribution {spec.distribution}")  # pragma: no cover


def batched(batch: Callable[[int], np.ndarray]) -> Sampler:
    """A sampler handing out, one at a time, the values `batch(n)` draws n at a time."""

    def batches() -> Iterator[list[float]]:
        while True:
            yield batch(BATCH).tolist()

    return itertools.chain.from_iterable(batches()).__next__
