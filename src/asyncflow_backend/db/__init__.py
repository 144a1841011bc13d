"""Persistence of runs: the async database, the ORM models, repositories and migrations."""
