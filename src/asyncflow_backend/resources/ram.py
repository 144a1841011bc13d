"""RAM of one server."""

from typing import TypeVar

from asyncflow_backend.resources.base import Resource

T = TypeVar("T")


class RamPool(Resource[T]):
    """`capacity` megabytes, reserved by each request for its whole stay on the server."""
