"""Drawing one time series: the raw line when it is short, a min-max band and mean when long."""

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.legend import Legend
from matplotlib.legend_handler import HandlerBase
from matplotlib.patches import Patch, Rectangle
from matplotlib.transforms import Transform

from asyncflow_backend.metrics.downsampling import FloatArray, bucket_means, bucket_stride

# A panel is at most ~1000 px wide: more buckets than this only add ink.
MAX_BUCKETS = 600
_BAND_ALPHA = 0.25
_MIN_BAND_ALPHA = 0.08


def draw_series(
    ax: Axes,
    values: FloatArray,
    period_s: float,
    label: str,
    *,
    colour: str | None = None,
    steps: bool = False,
    band_alpha: float = _BAND_ALPHA,
) -> float | None:
    """Draw `values[k]`, read at t = k * period_s, and return the bucket width in seconds.

    With `steps`, `values[k]` is a count over [k, k + 1) periods and is drawn as a step.

    Returns None when the series was drawn whole. Otherwise the line is the
    mean of each bucket (drawn at its midpoint) and a band of the same colour
    spans the bucket's minimum to maximum, so one-sample bursts stay visible.
    """
    stride = bucket_stride(len(values), MAX_BUCKETS)
    if stride == 1:
        if steps:
            # Each value holds for a whole period: the last step reaches the end of the run.
            times = np.arange(len(values) + 1) * period_s
            ax.step(
                times,
                np.append(values, values[-1]),
                where="post",
                color=colour,
                linewidth=1.0,
                label=label,
            )
        else:
            ax.plot(
                np.arange(len(values)) * period_s, values, color=colour, linewidth=1.0, label=label
            )
        return None
    starts = np.arange(0, len(values), stride)
    lengths = np.diff(np.append(starts, len(values)))
    times = (starts + (lengths - 1) / 2.0) * period_s
    (line,) = ax.plot(times, bucket_means(values, stride), color=colour, linewidth=1.0, label=label)
    ax.fill_between(
        times,
        np.minimum.reduceat(values, starts),
        np.maximum.reduceat(values, starts),
        color=line.get_color(),
        alpha=band_alpha,
        linewidth=0,
    )
    return float(stride * period_s)


def band_alpha_for(lines: int) -> float:
    """Opacity of each band when `lines` bands overlap: fainter as they pile up."""
    return max(_MIN_BAND_ALPHA, _BAND_ALPHA / math.sqrt(max(1, lines)))


class BandKey(Patch):
    """The legend entry of the min-max bands: a swatch in each band's colour, side by side."""

    def __init__(self, colours: Sequence[str], alpha: float, label: str) -> None:
        super().__init__(color=colours[0] if colours else None, alpha=alpha, label=label)
        self.colours = list(colours)


class _BandKeyHandler(HandlerBase):
    def create_artists(
        self,
        legend: Legend,
        orig_handle: Artist,
        xdescent: float,
        ydescent: float,
        width: float,
        height: float,
        fontsize: float,
        trans: Transform,
    ) -> list[Artist]:
        assert isinstance(orig_handle, BandKey)
        colours = orig_handle.colours or [str(orig_handle.get_facecolor())]
        step = width / len(colours)
        return [
            Rectangle(
                (-xdescent + k * step, -ydescent),
                step,
                height,
                color=colour,
                alpha=orig_handle.get_alpha(),
                linewidth=0,
                transform=trans,
            )
            for k, colour in enumerate(colours)
        ]


Legend.update_default_handler_map({BandKey: _BandKeyHandler()})


def band_legend_entry(
    bucket_s: float, colours: Sequence[str], alpha: float = _BAND_ALPHA
) -> BandKey:
    """A legend entry saying what the shaded bands around the lines are, its swatch in the
    colours of the bands (one part per line)."""
    return BandKey(colours, alpha, f"min-max per {bucket_s:.3g} s")
