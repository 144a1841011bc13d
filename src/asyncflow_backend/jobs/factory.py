"""Which dispatcher a configuration gets: the Redis queue or the local process pool."""

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.session import Database
from asyncflow_backend.jobs.dispatcher import JobDispatcher


def make_dispatcher(settings: Settings, database: Database) -> JobDispatcher:
    """The Redis queue if `redis_url` is set, else a process pool inside this process."""
    if settings.redis_url is not None:
        from asyncflow_backend.jobs.redis_queue import RedisDispatcher

        return RedisDispatcher(settings)
    from asyncflow_backend.jobs.local import LocalPoolDispatcher

    return LocalPoolDispatcher(settings, database)
