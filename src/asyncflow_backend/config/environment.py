"""How a setting is named in the environment, without loading the settings.

`asyncflow run` needs one setting, the run's memory budget; loading every setting
(pydantic-settings and the rate-limit parser) would cost it about a quarter of a
second on a small scenario, so it asks here whether the variable is set at all.
"""

import os

ENV_PREFIX = "ASYNCFLOW_"


def env_name(field: str) -> str:
    """The environment variable of a settings field: `max_run_memory_mb` is
    `ASYNCFLOW_MAX_RUN_MEMORY_MB`."""
    return f"{ENV_PREFIX}{field.upper()}"


def is_set(field: str) -> bool:
    """Whether the variable of `field` is in the environment, the only place the settings
    read from; the name is matched without regard to case, as the settings match it."""
    name = env_name(field)
    return any(variable.upper() == name for variable in os.environ)
