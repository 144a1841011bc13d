"""Detecting the end of the warm-up transient of an output sequence: MSER-5.

MSER (White, "An effective truncation heuristic for bias reduction in
simulation output", *Simulation* 69(6), 1997) truncates the first d
observations where d minimises the squared standard error of the mean of
the rest, Σ_{j>d} (x_j - x̄_d)² / (n - d)². MSER-5 (White, Cobb and Spratt,
"A comparison of five steady-state truncation heuristics", WSC 2000) applies
it to the means of consecutive batches of five, which smooths the sequence,
and searches only the first half, as a truncation point further on means the
run was too short to tell.
"""

import numpy as np

BATCH = 5


def mser5(values: np.ndarray) -> int:
    """How many leading observations MSER-5 truncates, a multiple of 5 (0 for short sequences).

    `values` is a one-dimensional sequence in the order it was produced (for
    example response times in completion order).
    """
    data = np.asarray(values, dtype=np.float64)
    batches = data.size // BATCH
    if batches < 4:
        return 0
    means = data[: batches * BATCH].reshape(batches, BATCH).mean(axis=1)
    # Sums of the last k batch means and of their squares, for k = batches .. 1.
    tail_sum = np.cumsum(means[::-1])[::-1]
    tail_square = np.cumsum((means * means)[::-1])[::-1]
    kept = np.arange(batches, 0, -1, dtype=np.float64)
    scores = (tail_square - tail_sum * tail_sum / kept) / (kept * kept)
    best = int(np.argmin(scores[: batches // 2 + 1]))
    return best * BATCH
