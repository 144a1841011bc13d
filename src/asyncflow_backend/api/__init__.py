"""The HTTP API: the FastAPI application, its routers and its error handlers."""

from asyncflow_backend.api.app import create_api

__all__ = ["create_api"]
