"""Seeds of replications: child i of numpy's `SeedSequence(root).spawn`.

Child i depends only on the root seed and i, so replication i of an
experiment can be run alone, and it is the same at every point of a sweep
or search (common random numbers: the scenario's named random streams then
draw the same numbers wherever the model lets them).
"""

import numpy as np

SEED_BOUND = 2**63
"""Seeds stay below this, to fit a signed 64-bit database column and JSON."""


def replication_seed(root: int, index: int) -> int:
    """The run seed of replication `index` (from 0) of an experiment with seed `root`.

    Equal to the first 64 bits of the state of `SeedSequence(root).spawn(index + 1)[index]`,
    reduced below 2**63. Raises `ValueError` for a negative root or index.
    """
    if root < 0 or index < 0:
        raise ValueError("the root seed and the index must not be negative")
    child = np.random.SeedSequence(root, spawn_key=(index,))
    return int(child.generate_state(1, dtype=np.uint64)[0]) % SEED_BOUND
