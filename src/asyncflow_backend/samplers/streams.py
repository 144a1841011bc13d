"""Independent, reproducible random streams, one per purpose.

Each consumer (an edge's latency, a step's duration, the generator's users)
asks for a stream by a stable name. The stream depends only on the run's seed
and that name, so adding a server or a metric does not shift the numbers any
other component draws.
"""

import zlib

import numpy as np


class RandomStreams:
    """A factory of numpy generators keyed by name under one root seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def generator(self, name: str) -> np.random.Generator:
        """The generator for `name`; the same name always gives the same sequence."""
        key = zlib.crc32(name.encode("utf-8"))
        sequence = np.random.SeedSequence(entropy=self.seed, spawn_key=(key,))
        return np.random.Generator(np.random.PCG64(sequence))


def draw_seed() -> int:
    """A fresh seed from the operating system's entropy, small enough for JSON and SQL."""
    entropy = np.random.SeedSequence().entropy
    assert isinstance(entropy, int)
    return entropy % (2**63)
