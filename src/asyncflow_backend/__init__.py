"""AsyncFlow backend: discrete-event simulations of asynchronous backends, as a service."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("asyncflow-backend")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
