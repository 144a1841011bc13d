"""Shrinking sampled series for display, on request, without dropping the originals.

Two methods, for two kinds of view:

- `bucket_means` keeps the regular time grid of the results document: it
  averages runs of `stride` consecutive samples, so value k covers
  [k * stride * period, (k + 1) * stride * period) and the series keeps its
  time average (the integral of a queue length stays the same). The last
  bucket may be shorter than the others.
- `lttb` (Largest-Triangle-Three-Buckets, Steinarsson 2013) picks real
  samples that preserve the visual shape, spikes included. It always keeps
  the first and the last point; the other points are one per bucket, the one
  forming the largest triangle with the previous pick and the mean of the
  next bucket. Times come back with the values because they are no longer
  evenly spaced.

Both return the input unchanged (as a float array) when it already has at
most `max_points` points.
"""

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

MIN_POINTS = 2
"""Fewest points a downsampled series may have: its first and its last."""


def bucket_stride(length: int, max_points: int) -> int:
    """Samples per bucket so that `length` samples fit in `max_points` buckets."""
    _check_max_points(max_points)
    return max(1, math.ceil(length / max_points))


def bucket_means(values: Sequence[float] | FloatArray, stride: int) -> FloatArray:
    """Mean of each run of `stride` consecutive samples (the last run may be shorter)."""
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    data = np.asarray(values, dtype=np.float64)
    if stride == 1 or data.size == 0:
        return data.copy()
    starts = np.arange(0, data.size, stride)
    sums = np.add.reduceat(data, starts)
    sizes = np.diff(np.append(starts, data.size))
    means: FloatArray = sums / sizes
    return means


def lttb(
    times: Sequence[float] | FloatArray, values: Sequence[float] | FloatArray, max_points: int
) -> tuple[FloatArray, FloatArray]:
    """At most `max_points` of the (time, value) points, chosen by LTTB; first and last kept."""
    _check_max_points(max_points)
    t = np.asarray(times, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if t.shape != y.shape or t.ndim != 1:
        raise ValueError(f"times and values must be equal-length vectors, got {t.shape}, {y.shape}")
    n = t.size
    if n <= max_points:
        return t.copy(), y.copy()
    if max_points == MIN_POINTS:
        return t[[0, n - 1]], y[[0, n - 1]]
    picked = np.empty(max_points, dtype=np.intp)
    picked[0], picked[-1] = 0, n - 1
    # The n - 2 inner points split into max_points - 2 buckets; edges[i]..edges[i + 1] is bucket i.
    edges = (np.arange(max_points - 1) * ((n - 2) / (max_points - 2))).astype(np.intp) + 1
    edges[-1] = n - 1
    previous = 0
    for i in range(max_points - 2):
        lo, hi = edges[i], edges[i + 1]
        # The next bucket's centroid; for the last bucket it is the last point itself.
        nxt_lo, nxt_hi = (edges[i + 1], edges[i + 2]) if i + 2 < edges.size else (n - 1, n)
        mean_t = t[nxt_lo:nxt_hi].mean()
        mean_y = y[nxt_lo:nxt_hi].mean()
        # Twice the triangle area, up to sign: (p - a) x (c - a) for each candidate p.
        area = np.abs(
            (t[lo:hi] - t[previous]) * (mean_y - y[previous])
            - (mean_t - t[previous]) * (y[lo:hi] - y[previous])
        )
        previous = lo + int(np.argmax(area))
        picked[i + 1] = previous
    return t[picked], y[picked]


def _check_max_points(max_points: int) -> None:
    if max_points < MIN_POINTS:
        raise ValueError(f"max_points must be at least {MIN_POINTS}, got {max_points}")


def merge_latency_windows(
    count: Sequence[int], percentiles: Sequence[Sequence[float | None]], stride: int
) -> tuple[list[int], list[list[float | None]]]:
    """Merge runs of `stride` latency windows: counts add up, and each percentile becomes
    the count-weighted mean of the windows' percentiles (a display approximation: the
    exact percentile of a merged window needs the latencies themselves).

    Returns the merged counts and one merged list per entry of `percentiles`.
    """
    counts = np.asarray(count, dtype=np.float64)
    merged_counts: list[int] = []
    merged: list[list[float | None]] = [[] for _ in percentiles]
    for start in range(0, len(counts), stride):
        weights = counts[start : start + stride]
        total = float(weights.sum())
        merged_counts.append(int(total))
        for out, values in zip(merged, percentiles, strict=True):
            window = np.array(
                [np.nan if v is None else v for v in values[start : start + stride]],
                dtype=np.float64,
            )
            out.append(float(np.nansum(window * weights) / total) if total else None)
    return merged_counts, merged
