"""The module each `asyncflow worker` process loads: the broker and actor from the settings.

Dramatiq's command line imports `asyncflow_backend.jobs.broker_entry:broker`
in every worker process it starts.
"""

from asyncflow_backend.config.settings import get_settings
from asyncflow_backend.jobs.redis_queue import build_broker

broker, actor = build_broker(get_settings())
