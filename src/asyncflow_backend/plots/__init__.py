"""Charts of a results document, rendered with matplotlib to PNG or SVG.

`render_plot(name, results, events=...)` draws one of `PLOT_NAMES`; the CLI
writes them all with `asyncflow run --plots DIR` and the API serves them one
by one.
"""

from asyncflow_backend.plots.registry import (
    PLOT_NAMES,
    UnknownPlotError,
    build_figure,
    render_plot,
)

__all__ = ["PLOT_NAMES", "UnknownPlotError", "build_figure", "render_plot"]
