"""Random variables and arrival processes, drawn in batches from seeded numpy streams."""

from asyncflow_backend.samplers.streams import RandomStreams
from asyncflow_backend.samplers.variates import Sampler, constant, variate

__all__ = ["RandomStreams", "Sampler", "constant", "variate"]
