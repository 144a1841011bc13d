"""How many scenarios a caller may submit or validate: `ASYNCFLOW_SUBMIT_RATE_LIMIT` per API key.

Validating a scenario parses and checks it as submitting does, so both
spend the same allowance. A request spends one unit of it per started
`ASYNCFLOW_SUBMIT_RATE_UNIT_BYTES` of JSON body, and per started sixth of that
of YAML, whose parsing costs six times the CPU per byte (`body_cost`): one
unit is about the same parsing work in either format, so a caller sending
large bodies gets fewer of them, and no caller takes more than its share of
the API's CPU. The first unit is spent before the body is read, the rest once
its size is known, before it is parsed.

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

    def __init__(self, limit: str, retry_after_s: int, cost: int = 1) -> None:
        spent = (
            ""
            if cost == 1
            else f"; this body costs {cost} submissions, one per "
            "ASYNCFLOW_SUBMIT_RATE_UNIT_BYTES of JSON or a sixth of that of YAML"
        )
        super().__init__(
            f"too many scenarios submitted or validated: the limit is {limit} "
            f"(ASYNCFLOW_SUBMIT_RATE_LIMIT){spent}; retry in {retry_after_s} s"
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

    async def hit(self, caller: str, cost: int = 1) -> None:
        """Spend `cost` units of `caller`'s allowance, or raise `RateLimited` if it has not
        that many left. A cost above a whole window's allowance spends the whole window,
        so that every body can pass after a wait.

        Redis being down is the queue being down: `QueueUnavailableError` (503).
        """
        try:
            for item in self.items:
                if not await self.strategy.hit(item, caller, cost=min(cost, item.amount)):
                    stats = await self.strategy.get_window_stats(item, caller)
                    wait_s = max(1, math.ceil(stats.reset_time - time.time()))
                    raise RateLimited(self.text, wait_s, cost)
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


YAML_COST_FACTOR = 6
"""CPU per byte of parsing YAML over JSON: about 1.9 against 0.31 ms per KB."""


def body_cost(size_bytes: int, fmt: str, unit_bytes: int) -> int:
    """Units of the allowance a body of `size_bytes` in `fmt` ("json" or "yaml") costs:
    one per started `unit_bytes` of JSON, or of YAML times `YAML_COST_FACTOR`; at least one."""
    weight = YAML_COST_FACTOR if fmt == "yaml" else 1
    return max(1, math.ceil(size_bytes * weight / unit_bytes))


async def limit_submissions(request: Request, owner: OwnerDep) -> None:
    """Dependency of the routes that read a scenario: spends one unit of the caller's
    allowance before the body is read (`charge_body` spends the rest)."""
    limiter = get_service(request).limiter
    if limiter is not None:
        caller = caller_of(request, owner)
        await limiter.hit(caller)
        request.state.submission_caller = caller


async def charge_body(request: Request, size_bytes: int, fmt: str) -> None:
    """Spend what a body of `size_bytes` costs beyond the unit `limit_submissions` spent;
    raises `RateLimited` (429) if the caller has not that much left."""
    service = get_service(request)
    caller: str | None = getattr(request.state, "submission_caller", None)
    if service.limiter is None or caller is None:
        return
    cost = body_cost(size_bytes, fmt, service.settings.submit_rate_unit_bytes)
    if cost > 1:
        try:
            await service.limiter.hit(caller, cost - 1)
        except RateLimited as exc:
            # Say what the whole body costs, not what was left to spend of it.
            limit = service.settings.submit_rate_limit
            raise RateLimited(limit, exc.retry_after_s, cost) from None


SubmissionQuota = Annotated[None, Depends(limit_submissions)]

RATE_LIMITED_RESPONSE = {
    "description": "The caller has used its submissions for now (ASYNCFLOW_SUBMIT_RATE_LIMIT); "
    "`Retry-After` says in how many seconds it may submit again.",
    "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
}
