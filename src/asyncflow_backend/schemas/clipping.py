"""Random variables whose draws go below zero: the engine clips those draws at 0.

Durations, users and rates are never negative, so a `normal` or a `uniform`
reaching below zero is drawn as max(X, 0) (`asyncflow_backend.samplers`).
That raises the mean of the draws above the one written; `clipped_variables`
warns where it does by more than `CLIPPED_MEAN_TOLERANCE`.
"""

import math
from collections.abc import Iterator
from enum import Enum
from typing import get_args

from pydantic import BaseModel

from asyncflow_backend.config.constants import Distribution
from asyncflow_backend.schemas.base import readable
from asyncflow_backend.schemas.random_variables import RVConfig
from asyncflow_backend.schemas.validation import Loc, Problem

CLIPPED_MEAN_TOLERANCE = 0.01
"""A variable whose clipped draws average more than this share above its mean is warned about."""


NEVER_BELOW_Z = 8.0
"""Past this many standard deviations above 0 a normal's clipping moves its mean by less
than 1e-15 of itself (Φ(-8) ≈ 6e-16): it is taken as never clipped."""


def clipped_moments(variable: RVConfig) -> tuple[float, float]:
    """(E[max(X, 0)], P(X < 0)) for the variable X that `variable` describes.

    For a `normal` with standard deviation s = √v and z = m / s, the mean of
    the normal censored at 0 is m Φ(z) + s φ(z), and P(X < 0) = Φ(-z) (e.g.
    Johnson, Kotz and Balakrishnan, *Continuous Univariate Distributions*
    vol. 1, ch. 13, §10). For a `uniform` on [a, b] with a = m - h < 0 < b =
    m + h (h = √(3 v)), E[max(X, 0)] = b² / (2 (b - a)) and P(X < 0) = -a / (b - a).
    Other distributions, and those that stay at or above 0, give (m, 0).
    """
    mean = variable.mean
    variance = variable.variance
    if variable.distribution is Distribution.NORMAL and variance:
        std = math.sqrt(variance)
        z = mean / std
        if z > NEVER_BELOW_Z:
            return mean, 0.0
        # Imported here: scipy.stats takes more than a second to load, which every
        # `asyncflow run` would pay, while most scenarios never need it.
        from scipy import stats

        below = float(stats.norm.sf(z))
        return mean * float(stats.norm.cdf(z)) + std * float(stats.norm.pdf(z)), below
    if variable.distribution is Distribution.UNIFORM and variance is not None:
        half = math.sqrt(3 * variance)
        low, high = mean - half, mean + half
        if low < 0:
            from scipy import stats

            # scipy's uniform(loc, scale): the same b² / (2 (b - a)), from its own cdf.
            below = float(stats.uniform.cdf(0, loc=low, scale=high - low))
            return high * high / (2 * (high - low)), below
    return mean, 0.0


def clipped_variables(root: BaseModel) -> Iterator[Problem]:
    """A warning for every random variable under `root` whose clipping at 0 raises the mean
    of its draws by more than `CLIPPED_MEAN_TOLERANCE` of its mean (any rise, for mean 0)."""
    for loc, variable in _variables(root, ()):
        drawn, below = clipped_moments(variable)
        mean = variable.mean
        if drawn - mean <= CLIPPED_MEAN_TOLERANCE * mean:
            continue
        rise = f" (+{(drawn - mean) / mean:.0%})" if mean > 0 else ""
        yield Problem(
            loc,
            f"this {variable.distribution.value} with mean {readable(mean)} and variance "
            f"{readable(variable.variance or 0.0)} is below 0 for {below:.0%} of its draws, "
            f"which become 0, so its draws average {drawn:.3g} instead of {readable(mean)}"
            f"{rise}; a log_normal has exactly this mean and variance and is never negative",
        )


def _variables(node: object, loc: Loc) -> Iterator[tuple[Loc, RVConfig]]:
    """Every random variable under `node`, with its path, in document order."""
    if isinstance(node, RVConfig):
        yield loc, node
    elif isinstance(node, BaseModel):
        if _may_hold_variables(type(node)):
            for name in type(node).model_fields:
                yield from _variables(getattr(node, name), (*loc, name))
    elif isinstance(node, list | tuple):
        for i, item in enumerate(node):
            yield from _variables(item, (*loc, i))
    elif isinstance(node, dict):
        for key, item in node.items():
            yield from _variables(item, (*loc, key.value if isinstance(key, Enum) else key))


_HOLDS: dict[type, bool] = {}


def _may_hold_variables(annotation: object, seen: frozenset[type] = frozenset()) -> bool:
    """Whether a value of this type can hold a random variable, from its fields' types: so
    that long lists of plain points (a trace, a schedule) are not walked."""
    if isinstance(annotation, type) and issubclass(annotation, RVConfig):
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in _HOLDS:
            return _HOLDS[annotation]
        if annotation in seen:
            return False  # a recursive model: its other fields decide
        found = any(
            _may_hold_variables(field.annotation, seen | {annotation})
            for field in annotation.model_fields.values()
        )
        if not seen:
            # Only a top-level answer is complete: inside a cycle a class was assumed False.
            _HOLDS[annotation] = found
        return found
    return any(_may_hold_variables(arg, seen) for arg in get_args(annotation))
