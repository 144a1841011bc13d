"""AsyncFlow backend: discrete-event simulations of asynchronous backends, as a service."""

from functools import cache


@cache
def engine_version() -> str:
    """The installed distribution's version, read on first use: `importlib.metadata`
    costs a tenth of a second at import, which every `asyncflow` command would pay."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("asyncflow-backend")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0"
