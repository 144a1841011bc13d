"""How many scenarios a caller may submit or validate: `ASYNCFLOW_SUBMIT_RATE_LIMIT` per API key.

Validating a scenario parses and checks it as submitting does, so both
spend the same allowance.

Counting is done by the `limits` library with its moving-window strategy: a
caller may submit N runs in any window of the configured length, never more
(a fixed window would let 2N through across a window boundary). With Redis
configured the counts live in Redis, under the queue's key prefix, so every
API process behind a load balancer shares them; without Redis they live in
the process, which is then the only API process there is.

The caller is its API key's owner id, or its client address when the API is
open (behind a proxy every client then shares the proxy's address).
"""

import math
import time
from typing import Annotated

from fastapi import Depends, Request, status
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool

from asyncflow_backend.api.auth import OwnerDep
from asyncflow_backend.api.dependencies import get_service
from asyncflow_backend.api.errors import ApiError
from asyncflow_backend.config.settings import Settings
from asyncflow_backend.jobs import QueueUnavailableError

REDIS_TIMEOUT_S = 5.0


class RateLimited(ApiError):
    """429: the caller submitted its allowance; `Retry-After` says when it may again."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS

    def __init__(self, limit: str, retry_after_s: int) -> None:
        super().__init__(
            f"too many scenarios submitted or validated: the limit is {limit} "
            "(ASYNCFLOW_SUBMIT_RATE_LIMIT); "
            f"retry in {retry_after_s} s"
        )
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class SubmissionLimiter:
    """The submission allowance of every caller, in Redis or in this process."""

    def __init__(self, settings: Settings) -> None:
        self.text = settings.submit_rate_limit
        self.items: list[RateLimitItem] = parse_many(self.text)
        self._pool: ConnectionPool | None = None
        storage: Storage
        if settings.redis_url is None:
            storage = MemoryStorage()
        else:
            self._pool = ConnectionPool.from_url(
                settings.redis_url,
                socket_connect_timeout=REDIS_TIMEOUT_S,
                socket_timeout=REDIS_TIMEOUT_S,
            )
            storage = RedisStorage(
                _storage_uri(settings.redis_url),
                implementation="redispy",
                key_prefix=f"{settings.queue_name}:submit-rate",
                wrap_exceptions=True,
                # limits types its options as scalars, but hands them all to redis-py.
                connection_pool=self._pool,  # type: ignore[arg-type]
            )
        self.strategy = MovingWindowRateLimiter(storage)

    async def hit(self, caller: str) -> None:
        """Count one submission of `caller`, or raise `RateLimited` if it has none left.

        Redis being down is the queue being down: `QueueUnavailableError` (503).
        """
        try:
            for item in self.items:
                if not await self.strategy.hit(item, caller):
                    stats = await self.strategy.get_window_stats(item, caller)
                    wait_s = max(1, math.ceil(stats.reset_time - time.time()))
                    raise RateLimited(self.text, wait_s)
        except StorageError as exc:
            raise QueueUnavailableError(f"the rate limiter's Redis is unavailable: {exc}") from exc

    async def close(self) -> None:
        """Close the Redis connections, if any."""
        if self._pool is not None:
            await self._pool.aclose()


def _storage_uri(redis_url: str) -> str:
    # limits names its async Redis schemes async+redis, async+rediss and async+redis+unix.
    scheme, _, rest = redis_url.partition("://")
    return f"async+{'redis+unix' if scheme == 'unix' else scheme}://{rest}"


def caller_of(request: Request, owner: str | None) -> str:
    """Whose allowance a request uses: its key's owner id, else its client address."""
    if owner is not None:
        return f"key:{owner}"
    client = request.client
    return f"address:{client.host if client else 'unknown'}"


async def limit_submissions(request: Request, owner: OwnerDep) -> None:
    """Dependency of the routes that read a scenario: spends one of the caller's allowance."""
    limiter = get_service(request).limiter
    if limiter is not None:
        await limiter.hit(caller_of(request, owner))


SubmissionQuota = Annotated[None, Depends(limit_submissions)]

RATE_LIMITED_RESPONSE = {
    "description": "The caller has used its submissions for now (ASYNCFLOW_SUBMIT_RATE_LIMIT); "
    "`Retry-After` says in how many seconds it may submit again.",
    "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
}
