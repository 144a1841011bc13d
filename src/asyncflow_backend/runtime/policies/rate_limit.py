"""A token-bucket rate limit: the policy a rate-limited load balancer consults."""

from asyncflow_backend.schemas.resilience import RateLimit


class TokenBucketLimiter:
    """Tokens flow in at `rate_per_s` up to `burst` (the bucket starts full); a request takes
    one. The bucket is refilled lazily, when a request arrives, from the time since the last
    one, so an idle balancer costs nothing.

    Over any interval of length t the limiter admits at most burst + rate x t requests,
    and over a long run min(arrival rate, rate) a second.
    """

    __slots__ = ("burst", "rate", "since", "tokens")

    def __init__(self, spec: RateLimit) -> None:
        self.rate = spec.rate_per_s
        self.burst = float(spec.burst)
        self.tokens = self.burst
        self.since = 0.0

    def admits(self, now: float) -> bool:
        """Hook: a request arrives at `now` (seconds); True (and a token spent) if it may pass."""
        tokens = min(self.burst, self.tokens + (now - self.since) * self.rate)
        self.since = now
        # A whole token, give or take the rounding of rate x elapsed time.
        if tokens >= 1.0 - 1e-9:
            self.tokens = max(0.0, tokens - 1.0)
            return True
        self.tokens = tokens
        return False
