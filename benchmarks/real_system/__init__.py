"""A harness that measures real asynchronous servers and holds the engine's predictions to them.

Real services (uvicorn with uvloop and httptools, FastAPI, asyncpg on PostgreSQL, Redis, httpx
calls between services, optionally gunicorn workers) run on pinned cores under an open-loop load
from another core; a scenario is calibrated from one low load and the engine predicts the others.
`run.py` ties the modules together; benchmarks/README.md says how to run it and what it refuses.
Nothing outside this package and its tests imports it.
"""
