"""Downsampling of sampled series: bucket means on the regular grid, and LTTB."""

import numpy as np
import pytest

from asyncflow_backend.metrics.downsampling import bucket_means, bucket_stride, lttb


def _series(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return np.arange(n) * 0.5, rng.normal(10.0, 2.0, n)


@pytest.mark.parametrize(("length", "max_points", "stride"), [(10, 10, 1), (11, 10, 2), (0, 5, 1)])
def test_stride_fits_the_series_in_max_points(length: int, max_points: int, stride: int) -> None:
    assert bucket_stride(length, max_points) == stride
    assert len(bucket_means(np.ones(length), stride)) <= max_points


def test_bucket_means_average_each_run_and_the_short_tail() -> None:
    means = bucket_means([1.0, 3.0, 5.0, 7.0, 10.0], 2)
    assert means.tolist() == [2.0, 6.0, 10.0]


def test_bucket_means_keep_the_time_average_when_buckets_are_full() -> None:
    _, values = _series(1200)
    means = bucket_means(values, 4)
    assert means.size == 300
    assert means.mean() == pytest.approx(values.mean(), rel=1e-12)


def test_stride_one_returns_a_copy() -> None:
    values = [1.0, 2.0]
    out = bucket_means(values, 1)
    out[0] = 9.0
    assert values == [1.0, 2.0]


@pytest.mark.parametrize("max_points", [2, 3, 10, 999])
def test_lttb_keeps_first_and_last_and_returns_max_points(max_points: int) -> None:
    t, y = _series(5000)
    out_t, out_y = lttb(t, y, max_points)
    assert out_t.size == out_y.size == max_points
    assert (out_t[0], out_y[0]) == (t[0], y[0])
    assert (out_t[-1], out_y[-1]) == (t[-1], y[-1])
    assert np.all(np.diff(out_t) > 0)
    # Every pick is a real sample at its own time.
    idx = np.searchsorted(t, out_t)
    assert np.array_equal(y[idx], out_y)


def test_lttb_keeps_a_spike_that_bucket_means_flatten() -> None:
    t = np.arange(1000, dtype=float)
    y = np.zeros(1000)
    y[437] = 50.0
    _, out_y = lttb(t, y, 20)
    assert out_y.max() == 50.0
    assert bucket_means(y, bucket_stride(1000, 20)).max() == 1.0


def test_lttb_leaves_short_series_alone() -> None:
    t, y = _series(7)
    out_t, out_y = lttb(t, y, 7)
    assert np.array_equal(out_t, t)
    assert np.array_equal(out_y, y)
    assert lttb([], [], 5)[0].size == 0


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="max_points"):
        lttb([0.0, 1.0, 2.0], [1.0, 2.0, 3.0], 1)
    with pytest.raises(ValueError, match="max_points"):
        bucket_stride(10, 0)
    with pytest.raises(ValueError, match="stride"):
        bucket_means([1.0], 0)
    with pytest.raises(ValueError, match="equal-length"):
        lttb([0.0, 1.0], [1.0], 2)
